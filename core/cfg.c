/*
 * cfg.c - YAML configuration: a node tree with line numbers, then typed
 * validation. Every error is "FILE:LINE: key 'NAME': what is wrong".
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>
#include <arpa/inet.h>

#include "core/cfg.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/shard.h"

#define SHARD_LIMIT SHARD_MAX

const struct cfg *cfg;
static const char *cur_path;   /* for error messages during load */

static int cfg_fail(char *err, size_t errlen, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cfg_fail(char *err, size_t errlen, int line, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "%s:%d: ", cur_path ? cur_path : "config", line);
	if (n < 0 || (size_t)n >= errlen)
		return PL_ERR;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return PL_ERR;
}

/* ---- YAML document -> cfg_node tree ---- */

static struct cfg_node *node_from_yaml(yaml_document_t *doc, yaml_node_t *yn, int depth)
{
	struct cfg_node *n = pl_calloc(1, sizeof(*n));
	n->line = (int)yn->start_mark.line + 1;
	if (depth > 32) {   /* aliases can build cycles; configs are shallow */
		n->type = CFG_SCALAR;
		n->value = pl_strdup("");
		return n;
	}
	switch (yn->type) {
	case YAML_SCALAR_NODE:
		n->type = CFG_SCALAR;
		n->value = pl_strndup((const char *)yn->data.scalar.value, yn->data.scalar.length);
		break;
	case YAML_SEQUENCE_NODE: {
		n->type = CFG_SEQ;
		size_t cnt = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
		n->items = pl_calloc(cnt, sizeof(*n->items));
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_t *c = yaml_document_get_node(doc, yn->data.sequence.items.start[i]);
			n->items[n->n++] = node_from_yaml(doc, c, depth + 1);
		}
		break;
	}
	case YAML_MAPPING_NODE: {
		n->type = CFG_MAP;
		size_t cnt = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
		n->items = pl_calloc(cnt, sizeof(*n->items));
		n->keys = pl_calloc(cnt, sizeof(*n->keys));
		n->key_lines = pl_calloc(cnt, sizeof(*n->key_lines));
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_pair_t *p = &yn->data.mapping.pairs.start[i];
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			yaml_node_t *v = yaml_document_get_node(doc, p->value);
			n->keys[n->n] = k->type == YAML_SCALAR_NODE
				? pl_strndup((const char *)k->data.scalar.value, k->data.scalar.length)
				: pl_strdup("?");
			n->key_lines[n->n] = (int)k->start_mark.line + 1;
			n->items[n->n++] = node_from_yaml(doc, v, depth + 1);
		}
		break;
	}
	default:
		n->type = CFG_SCALAR;
		n->value = pl_strdup("");
	}
	return n;
}

static void node_free(struct cfg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		node_free(n->items[i]);
		if (n->keys)
			free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n->key_lines);
	free(n->value);
	free(n);
}

const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key)
{
	if (!map || map->type != CFG_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i], key) == 0)
			return map->items[i];
	return NULL;
}

static int read_yaml(const char *path, struct cfg_node **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return PL_ERR;
	}
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int rc = PL_OK;
	if (!yaml_parser_load(&parser, &doc)) {
		rc = cfg_fail(err, errlen, (int)parser.problem_mark.line + 1, "YAML syntax error: %s%s%s",
			      parser.problem ? parser.problem : "unknown",
			      parser.context ? " " : "", parser.context ? parser.context : "");
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root)
			rc = cfg_fail(err, errlen, 1, "the file is empty");
		else if (root->type != YAML_MAPPING_NODE)
			rc = cfg_fail(err, errlen, (int)root->start_mark.line + 1,
				      "the top level must be a mapping of options");
		else
			*out = node_from_yaml(&doc, root, 0);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* ---- typed readers ---- */

static int want_scalar(const struct cfg_node *n, const char *key, char *err, size_t errlen)
{
	if (n->type != CFG_SCALAR)
		return cfg_fail(err, errlen, n->line, "key '%s': expected a single value", key);
	return PL_OK;
}

int cfg_node_int(const struct cfg_node *n, const char *key, long min, long max,
		 long *out, char *err, size_t errlen)
{
	if (want_scalar(n, key, err, errlen) != PL_OK)
		return PL_ERR;
	char *end;
	errno = 0;
	long v = strtol(n->value, &end, 10);
	if (errno || end == n->value || *end != '\0')
		return cfg_fail(err, errlen, n->line, "key '%s': '%s' is not a number", key, n->value);
	if (v < min || v > max)
		return cfg_fail(err, errlen, n->line, "key '%s': %ld is out of range %ld..%ld",
				key, v, min, max);
	*out = v;
	return PL_OK;
}

int cfg_node_bool(const struct cfg_node *n, const char *key, bool *out, char *err, size_t errlen)
{
	if (want_scalar(n, key, err, errlen) != PL_OK)
		return PL_ERR;
	if (!strcasecmp(n->value, "true") || !strcasecmp(n->value, "yes") || !strcmp(n->value, "on"))
		*out = true;
	else if (!strcasecmp(n->value, "false") || !strcasecmp(n->value, "no") ||
		 !strcmp(n->value, "off"))
		*out = false;
	else
		return cfg_fail(err, errlen, n->line, "key '%s': '%s' is not true or false", key,
				n->value);
	return PL_OK;
}

int cfg_node_size(const struct cfg_node *n, const char *key, size_t *out, char *err, size_t errlen)
{
	if (want_scalar(n, key, err, errlen) != PL_OK)
		return PL_ERR;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(n->value, &end, 10);
	if (errno || end == n->value || n->value[0] == '-')
		return cfg_fail(err, errlen, n->line, "key '%s': '%s' is not a size", key, n->value);
	unsigned long long mul = 1;
	if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
		mul = 1024;
	else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
		mul = 1024 * 1024;
	else if (*end)
		return cfg_fail(err, errlen, n->line, "key '%s': '%s' is not a size", key, n->value);
	*out = (size_t)(v * mul);
	return PL_OK;
}

static int cfg_string(const struct cfg_node *n, const char *key, char **out, char *err, size_t errlen)
{
	if (want_scalar(n, key, err, errlen) != PL_OK)
		return PL_ERR;
	if (!n->value[0])
		return cfg_fail(err, errlen, n->line, "key '%s': must not be empty", key);
	free(*out);
	*out = pl_strdup(n->value);
	return PL_OK;
}

static int cfg_string_list(const struct cfg_node *n, const char *key, char ***out, size_t *nout,
			   char *err, size_t errlen)
{
	if (n->type != CFG_SEQ)
		return cfg_fail(err, errlen, n->line, "key '%s': expected a list", key);
	*out = pl_calloc(n->n, sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		(*out)[i] = NULL;
		if (cfg_string(n->items[i], key, &(*out)[i], err, errlen) != PL_OK)
			return PL_ERR;
		(*nout)++;
	}
	return PL_OK;
}

/* Paths in the config are relative to the config file's folder. */
static char *cfg_path_rel(const char *cfgdir, const char *p)
{
	if (p[0] == '/')
		return pl_strdup(p);
	size_t n = strlen(cfgdir) + strlen(p) + 2;
	char *r = pl_malloc(n);
	snprintf(r, n, "%s/%s", cfgdir, p);
	return r;
}

/* ---- listen entries ---- */

static const char *const listen_common_keys[] = { "port", "ip", "module", "max_stanza_size", NULL };

static bool key_in(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

static int cfg_listen_entry(const struct cfg_node *e, struct listen_cfg *lc, char *err, size_t errlen)
{
	if (e->type != CFG_MAP)
		return cfg_fail(err, errlen, e->line, "listen: each entry must be a mapping");
	lc->line = e->line;
	lc->node = e;
	lc->ip = "::";
	lc->max_stanza_size = 65536;
	const struct cfg_node *mod = cfg_map_get(e, "module");
	if (!mod)
		return cfg_fail(err, errlen, e->line, "listen: entry has no 'module'");
	if (want_scalar(mod, "module", err, errlen) != PL_OK)
		return PL_ERR;
	lc->lm = listen_find(mod->value);
	if (!lc->lm)
		return cfg_fail(err, errlen, mod->line,
				"key 'module': unknown listen module '%s' (one of c2s, c2s_tls, s2s, "
				"http, sip, stun, proxy65)", mod->value);
	lc->module = lc->lm->name;
	for (size_t i = 0; i < e->n; i++) {
		const char *k = e->keys[i];
		const struct cfg_node *v = e->items[i];
		long l;
		if (strcmp(k, "port") == 0) {
			if (cfg_node_int(v, "port", 1, 65535, &l, err, errlen) != PL_OK)
				return PL_ERR;
			lc->port = (int)l;
		} else if (strcmp(k, "ip") == 0) {
			if (want_scalar(v, "ip", err, errlen) != PL_OK)
				return PL_ERR;
			char tmp[sizeof(struct in6_addr)];
			if (inet_pton(AF_INET, v->value, tmp) != 1 && inet_pton(AF_INET6, v->value, tmp) != 1)
				return cfg_fail(err, errlen, v->line, "key 'ip': '%s' is not an IP address",
						v->value);
			lc->ip = v->value;
		} else if (strcmp(k, "max_stanza_size") == 0) {
			if (cfg_node_size(v, "max_stanza_size", &lc->max_stanza_size, err, errlen) != PL_OK)
				return PL_ERR;
			if (lc->max_stanza_size < 1024)
				return cfg_fail(err, errlen, v->line,
						"key 'max_stanza_size': at least 1024 bytes");
		} else if (!key_in(k, listen_common_keys) && !key_in(k, lc->lm->options)) {
			return cfg_fail(err, errlen, e->key_lines[i],
					"key '%s': unknown option for listen module %s", k, lc->module);
		}
	}
	if (!cfg_map_get(e, "port"))
		return cfg_fail(err, errlen, e->line, "listen: %s entry has no 'port'", lc->module);
	return PL_OK;
}

static int cfg_listen(const struct cfg_node *n, struct cfg *c, char *err, size_t errlen)
{
	if (n->type != CFG_SEQ)
		return cfg_fail(err, errlen, n->line, "key 'listen': expected a list of entries");
	c->listen = pl_calloc(n->n, sizeof(*c->listen));
	for (size_t i = 0; i < n->n; i++) {
		if (cfg_listen_entry(n->items[i], &c->listen[i], err, errlen) != PL_OK)
			return PL_ERR;
		c->nlisten++;
		for (size_t j = 0; j < i; j++) {
			const struct listen_cfg *a = &c->listen[j], *b = &c->listen[i];
			unsigned shared = a->lm->transports & b->lm->transports;
			if (a->port == b->port && shared && strcmp(a->ip, b->ip) == 0)
				return cfg_fail(err, errlen, b->line,
						"listen: port %d is already used by the %s entry at line %d",
						b->port, a->module, a->line);
		}
	}
	return PL_OK;
}

static int cfg_modules(const struct cfg_node *n, char *err, size_t errlen)
{
	if (n->type != CFG_MAP)
		return cfg_fail(err, errlen, n->line, "key 'modules': expected a mapping of modules");
	for (size_t i = 0; i < n->n; i++) {
		const struct pm_module *m = pm_find(n->keys[i]);
		if (!m)
			return cfg_fail(err, errlen, n->key_lines[i], "modules: unknown module '%s'",
					n->keys[i]);
		const struct cfg_node *opts = n->items[i];
		bool empty = opts->type == CFG_SCALAR && opts->value[0] == '\0';
		if (!empty && opts->type != CFG_MAP)
			return cfg_fail(err, errlen, opts->line,
					"module '%s': options must be a mapping ({} for none)", n->keys[i]);
		if (m->check && m->check(empty ? NULL : opts, err, errlen) != PL_OK)
			return PL_ERR;
		if (!m->check && !empty && opts->n > 0)
			return cfg_fail(err, errlen, opts->key_lines[0],
					"module '%s': unknown option '%s'", n->keys[i], opts->keys[0]);
	}
	return PL_OK;
}

/* ---- the whole file ---- */

static int cfg_validate(struct cfg *c, const char *cfgdir, char *err, size_t errlen)
{
	const struct cfg_node *root = c->root;
	char *data_dir = NULL, *ctl_socket = NULL;
	int rc = PL_ERR;
	for (size_t i = 0; i < root->n; i++) {
		const char *k = root->keys[i];
		const struct cfg_node *v = root->items[i];
		long l;
		if (strcmp(k, "hosts") == 0) {
			if (cfg_string_list(v, k, &c->hosts, &c->nhosts, err, errlen) != PL_OK)
				goto out;
			for (size_t h = 0; h < c->nhosts; h++)
				for (char *p = c->hosts[h]; *p; p++)
					*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		} else if (strcmp(k, "threads") == 0) {
			if (v->type == CFG_SCALAR && strcmp(v->value, "auto") == 0) {
				c->threads = 0;
			} else {
				if (cfg_node_int(v, k, 1, SHARD_LIMIT, &l, err, errlen) != PL_OK)
					goto out;
				c->threads = (int)l;
			}
		} else if (strcmp(k, "data_dir") == 0) {
			if (cfg_string(v, k, &data_dir, err, errlen) != PL_OK)
				goto out;
		} else if (strcmp(k, "ctl_socket") == 0) {
			if (cfg_string(v, k, &ctl_socket, err, errlen) != PL_OK)
				goto out;
		} else if (strcmp(k, "certfiles") == 0) {
			if (cfg_string_list(v, k, &c->certfiles, &c->ncertfiles, err, errlen) != PL_OK)
				goto out;
			for (size_t f = 0; f < c->ncertfiles; f++) {
				char *abs = cfg_path_rel(cfgdir, c->certfiles[f]);
				free(c->certfiles[f]);
				c->certfiles[f] = abs;
			}
		} else if (strcmp(k, "loglevel") == 0) {
			if (want_scalar(v, k, err, errlen) != PL_OK)
				goto out;
			if (log_level_parse(v->value, &c->loglevel) != PL_OK) {
				cfg_fail(err, errlen, v->line,
					 "key 'loglevel': '%s' is not one of error, warning, info, debug",
					 v->value);
				goto out;
			}
		} else if (strcmp(k, "listen") == 0) {
			if (cfg_listen(v, c, err, errlen) != PL_OK)
				goto out;
		} else if (strcmp(k, "modules") == 0) {
			if (cfg_modules(v, err, errlen) != PL_OK)
				goto out;
			c->modules = v;
		} else if (strcmp(k, "auth_scram_iterations") == 0) {
			if (cfg_node_int(v, k, 4096, 1000000, &l, err, errlen) != PL_OK)
				goto out;
			c->scram_iterations = (int)l;
		} else if (strcmp(k, "resource_conflict") == 0) {
			if (want_scalar(v, k, err, errlen) != PL_OK)
				goto out;
			if (strcmp(v->value, "closeold") == 0) {
				c->resource_conflict = RESOURCE_CLOSEOLD;
			} else if (strcmp(v->value, "closenew") == 0) {
				c->resource_conflict = RESOURCE_CLOSENEW;
			} else if (strcmp(v->value, "setresource") == 0) {
				c->resource_conflict = RESOURCE_SETRESOURCE;
			} else {
				cfg_fail(err, errlen, v->line, "key 'resource_conflict': '%s' is not one "
					 "of closeold, closenew, setresource", v->value);
				goto out;
			}
		} else if (strcmp(k, "sql_pool_size") == 0) {
			if (cfg_node_int(v, k, 1, 32, &l, err, errlen) != PL_OK)
				goto out;
			c->store_workers = (int)l;
		} else {
			cfg_fail(err, errlen, root->key_lines[i], "key '%s': unknown option", k);
			goto out;
		}
	}
	if (c->nhosts == 0) {
		cfg_fail(err, errlen, root->line, "key 'hosts': at least one host must be configured");
		goto out;
	}
	c->data_dir = cfg_path_rel(cfgdir, data_dir ? data_dir : "/var/lib/parley");
	if (ctl_socket) {
		c->ctl_socket = cfg_path_rel(cfgdir, ctl_socket);
	} else {
		size_t n = strlen(c->data_dir) + sizeof("/parley.sock");
		c->ctl_socket = pl_malloc(n);
		snprintf(c->ctl_socket, n, "%s/parley.sock", c->data_dir);
	}
	if (strlen(c->ctl_socket) >= 108) {
		cfg_fail(err, errlen, root->line, "key 'ctl_socket': path '%s' is too long for a "
			 "unix socket (at most 107 bytes)", c->ctl_socket);
		goto out;
	}
	rc = PL_OK;
out:
	free(data_dir);
	free(ctl_socket);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, char *err, size_t errlen)
{
	struct cfg *c = pl_calloc(1, sizeof(*c));
	c->path = pl_strdup(path);
	c->threads = 0;
	c->loglevel = LOG_INFO;
	c->scram_iterations = 4096;
	c->store_workers = 2;
	cur_path = c->path;
	char *tmp = pl_strdup(path);
	char *dir = dirname(tmp);
	char absdir[PATH_MAX];
	if (!realpath(dir, absdir))
		snprintf(absdir, sizeof(absdir), "%s", dir);
	free(tmp);
	int rc = read_yaml(path, &c->root, err, errlen);
	if (rc == PL_OK)
		rc = cfg_validate(c, absdir, err, errlen);
	if (rc == PL_OK && c->threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->threads = n < 1 ? 1 : (n > SHARD_LIMIT ? SHARD_LIMIT : (int)n);
	}
	cur_path = NULL;
	if (rc != PL_OK) {
		cfg_free(c);
		return PL_ERR;
	}
	*out = c;
	return PL_OK;
}

void cfg_set_current(const struct cfg *c)
{
	cfg = c;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	if (cfg == c)
		cfg = NULL;
	for (size_t i = 0; i < c->nhosts; i++)
		free(c->hosts[i]);
	free(c->hosts);
	for (size_t i = 0; i < c->ncertfiles; i++)
		free(c->certfiles[i]);
	free(c->certfiles);
	free(c->listen);
	free(c->data_dir);
	free(c->ctl_socket);
	free(c->path);
	node_free(c->root);
	free(c);
}

bool cfg_is_local_host(const char *host)
{
	if (!cfg || !host)
		return false;
	for (size_t i = 0; i < cfg->nhosts; i++)
		if (strcasecmp(cfg->hosts[i], host) == 0)
			return true;
	return false;
}
