/*
 * modopt.c - module options declared as a table (after nginx's directives):
 * the check in the config loader and the readers in start() come from the
 * same declaration, so a module cannot accept what it then cannot read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/pl.h"
#include "xmpp/modules.h"

int modopt_fail(int line, char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return PL_ERR;
	/* A reader fed a value it must refuse writes "FILE:LINE: ..."; keep the
	 * "FILE:LINE: " it knows and put our message after it. */
	struct cfg_node probe = { .type = CFG_SEQ, .line = line };
	long unused;
	cfg_node_int(&probe, "", 0, 0, &unused, err, errlen);
	char mark[32];
	snprintf(mark, sizeof(mark), ":%d: ", line);
	char *at = strstr(err, mark);
	size_t keep = at ? (size_t)(at - err) + strlen(mark) : 0;
	if (keep >= errlen)
		return PL_ERR;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + keep, errlen - keep, fmt, ap);
	va_end(ap);
	return PL_ERR;
}

static const struct modopt *modopt_find(const struct modopt *spec, const char *name)
{
	for (; spec && spec->name; spec++)
		if (strcmp(spec->name, name) == 0)
			return spec;
	return NULL;
}

static int modopt_check_one(const char *module, const struct modopt *o, const struct cfg_node *v,
			    char *err, size_t errlen)
{
	bool b;
	long l;
	size_t sz;

	switch (o->type) {
	case MODOPT_BOOL:
		return cfg_node_bool(v, o->name, &b, err, errlen);
	case MODOPT_INT:
		return cfg_node_int(v, o->name, o->min, o->max, &l, err, errlen);
	case MODOPT_SIZE:
		if (cfg_node_size(v, o->name, &sz, err, errlen) != PL_OK)
			return PL_ERR;
		if ((long)sz < o->min || (long)sz > o->max)
			return modopt_fail(v->line, err, errlen,
					   "module '%s': key '%s': %zu bytes is out of range %ld..%ld",
					   module, o->name, sz, o->min, o->max);
		return PL_OK;
	case MODOPT_TIMEOUT:
		if (v->type == CFG_SCALAR && strcmp(v->value, "infinity") == 0)
			return PL_OK;
		return cfg_node_int(v, o->name, o->min, o->max, &l, err, errlen);
	case MODOPT_ENUM:
		if (v->type == CFG_SCALAR)
			for (const char *const *c = o->choices; c && *c; c++)
				if (strcmp(v->value, *c) == 0)
					return PL_OK;
		char list[256] = "";
		for (const char *const *c = o->choices; c && *c; c++) {
			size_t n = strlen(list);
			snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", *c);
		}
		return modopt_fail(v->line, err, errlen, "module '%s': key '%s': '%s' is not one of %s",
				   module, o->name, v->type == CFG_SCALAR ? v->value : "(a list)",
				   list);
	case MODOPT_CUSTOM:
		return PL_OK;
	}
	return PL_ERR;
}

int modopt_check(const char *module, const struct cfg_node *opts, const struct modopt *spec,
		 char *err, size_t errlen)
{
	if (!opts)
		return PL_OK;
	if (opts->type != CFG_MAP)
		return modopt_fail(opts->line, err, errlen, "module '%s': options must be a mapping",
				   module);
	for (size_t i = 0; i < opts->n; i++) {
		const struct modopt *o = modopt_find(spec, opts->keys[i]);
		if (!o)
			return modopt_fail(opts->key_lines[i], err, errlen,
					   "module '%s': unknown option '%s'", module, opts->keys[i]);
		if (modopt_check_one(module, o, opts->items[i], err, errlen) != PL_OK)
			return PL_ERR;
	}
	return PL_OK;
}

bool modopt_bool(const struct cfg_node *opts, const char *name, bool def)
{
	const struct cfg_node *v = cfg_map_get(opts, name);
	bool b = def;
	if (v && cfg_node_bool(v, name, &b, NULL, 0) != PL_OK)
		b = def;
	return b;
}

long modopt_int(const struct cfg_node *opts, const char *name, long def)
{
	const struct cfg_node *v = cfg_map_get(opts, name);
	long l = def;
	if (!v)
		return def;
	if (v->type == CFG_SCALAR && strcmp(v->value, "infinity") == 0)
		return -1;
	if (cfg_node_int(v, name, -2147483647L, 2147483647L, &l, NULL, 0) != PL_OK)
		l = def;
	return l;
}

size_t modopt_size(const struct cfg_node *opts, const char *name, size_t def)
{
	const struct cfg_node *v = cfg_map_get(opts, name);
	size_t sz = def;
	if (v && cfg_node_size(v, name, &sz, NULL, 0) != PL_OK)
		sz = def;
	return sz;
}

const char *modopt_str(const struct cfg_node *opts, const char *name, const char *def)
{
	const struct cfg_node *v = cfg_map_get(opts, name);
	return v && v->type == CFG_SCALAR ? v->value : def;
}
