/*
 * cfg.h - the configuration (YAML, ejabberd-like keys).
 *
 * Loaded once at startup on the main thread, read-only afterwards, so any
 * shard may read it without locking. Every error names file:line and the key.
 * The YAML is first read into a tree of cfg_node (each with its line) so that
 * modules can validate their own options with the same precise errors.
 */
#ifndef PL_CFG_H
#define PL_CFG_H

#include <stddef.h>
#include <stdbool.h>

#include "core/listen.h"
#include "core/log.h"

enum cfg_node_type { CFG_SCALAR, CFG_SEQ, CFG_MAP };

struct cfg_node {
	enum cfg_node_type type;
	int line;
	char *value;               /* CFG_SCALAR */
	size_t n;                  /* CFG_SEQ items / CFG_MAP pairs */
	struct cfg_node **items;   /* seq items, or map values */
	char **keys;               /* CFG_MAP keys */
	int *key_lines;
};

/* A map value by key, or NULL. */
const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key);

enum resource_conflict { RESOURCE_CLOSEOLD = 0, RESOURCE_CLOSENEW, RESOURCE_SETRESOURCE };

struct cfg {
	char *path;
	char **hosts;
	size_t nhosts;
	int threads;               /* resolved: "auto" = number of cores */
	char *data_dir;
	char *ctl_socket;          /* default DATA_DIR/parley.sock */
	char **certfiles;
	size_t ncertfiles;
	enum log_level loglevel;
	struct listen_cfg *listen;
	size_t nlisten;
	const struct cfg_node *modules;   /* NULL: the default module set */
	int store_workers;
	int scram_iterations;       /* auth_scram_iterations, default 4096 */
	enum resource_conflict resource_conflict;   /* default closeold */
	struct cfg_node *root;
};

/* The loaded configuration; valid after cfg_load() succeeded. */
extern const struct cfg *cfg;

/* Parse and validate. On error returns PL_ERR and writes
 * "FILE:LINE: key: what is wrong" into err. */
int cfg_load(const char *path, struct cfg **out, char *err, size_t errlen);
void cfg_set_current(const struct cfg *c);
void cfg_free(struct cfg *c);
bool cfg_is_local_host(const char *host);

/* Typed scalar readers used by modules for their own options; they write
 * "FILE:LINE: key: ..." into err on a bad value. */
int cfg_node_int(const struct cfg_node *n, const char *key, long min, long max,
		 long *out, char *err, size_t errlen);
int cfg_node_bool(const struct cfg_node *n, const char *key, bool *out,
		  char *err, size_t errlen);
int cfg_node_size(const struct cfg_node *n, const char *key, size_t *out,
		  char *err, size_t errlen);

#endif
