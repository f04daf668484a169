/* module.c - the table of server modules and which are enabled. */
#include <stdio.h>
#include <string.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"

#define PM_MAX 64

static const struct pm_module *modules[PM_MAX];
static size_t nmodules;

void pm_register(const struct pm_module *m)
{
	if (pm_find(m->name) || nmodules >= PM_MAX)
		return;
	modules[nmodules++] = m;
}

const struct pm_module *pm_find(const char *name)
{
	for (size_t i = 0; i < nmodules; i++)
		if (strcmp(modules[i]->name, name) == 0)
			return modules[i];
	return NULL;
}

size_t pm_all(const struct pm_module **out, size_t max)
{
	size_t n = nmodules < max ? nmodules : max;
	memcpy(out, modules, n * sizeof(*out));
	return n;
}

bool pm_enabled(const char *host, const char *name)
{
	PL_UNUSED(host);   /* per-host module sets come with host_config */
	const struct pm_module *m = pm_find(name);
	if (!m || !cfg)
		return false;
	if (!cfg->modules)
		return m->default_enabled;
	return cfg_map_get(cfg->modules, name) != NULL;
}

static const struct cfg_node *pm_opts(const char *name)
{
	return cfg && cfg->modules ? cfg_map_get(cfg->modules, name) : NULL;
}

int pm_start_all(char *err, size_t errlen)
{
	for (size_t h = 0; h < cfg->nhosts; h++) {
		for (size_t i = 0; i < nmodules; i++) {
			const struct pm_module *m = modules[i];
			if (!pm_enabled(cfg->hosts[h], m->name) || !m->start)
				continue;
			if (m->start(cfg->hosts[h], pm_opts(m->name)) != PL_OK) {
				snprintf(err, errlen, "%s: cannot start on host %s", m->name,
					 cfg->hosts[h]);
				return PL_ERR;
			}
			log_debug("module %s started on %s", m->name, cfg->hosts[h]);
		}
	}
	return PL_OK;
}

void pm_stop_all(void)
{
	if (!cfg)
		return;
	for (size_t h = 0; h < cfg->nhosts; h++)
		for (size_t i = nmodules; i-- > 0;)
			if (pm_enabled(cfg->hosts[h], modules[i]->name) && modules[i]->stop)
				modules[i]->stop(cfg->hosts[h]);
}
