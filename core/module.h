/*
 * module.h - server modules (mod_ping, mod_offline, ...), enabled per host.
 *
 * A module is one const struct (after nginx): its name as ejabberd spells
 * it, whether it is on when the config has no `modules:` key, a check of its
 * options (run by the config loader, so errors carry file:line), and
 * start/stop per virtual host (on the main thread, before/after shards run).
 * Built-ins register at startup; dlopen-ed ones later use the same struct.
 */
#ifndef PL_MODULE_H
#define PL_MODULE_H

#include <stdbool.h>
#include <stddef.h>

struct cfg_node;

#define PARLEY_MODULE_API_VERSION 1

struct pm_module {
	const char *name;
	int api_version;
	bool default_enabled;
	/* Validate options (may be NULL: no options). Write "FILE:LINE: ..."
	 * via the cfg_node_* readers on error. */
	int (*check)(const struct cfg_node *opts, char *err, size_t errlen);
	int (*start)(const char *host, const struct cfg_node *opts);
	void (*stop)(const char *host);
};

void pm_register(const struct pm_module *m);
const struct pm_module *pm_find(const char *name);
size_t pm_all(const struct pm_module **out, size_t max);
/* Is module `name` enabled on `host` (after cfg_load)? */
bool pm_enabled(const char *host, const char *name);
/* Start/stop the enabled modules on every host. */
int pm_start_all(char *err, size_t errlen);
void pm_stop_all(void);

#endif
