/*
 * builtin.h - what is linked into parleyd: listen modules, server modules
 * and admin commands of every subsystem, registered at startup. The one
 * place that knows every subsystem; core knows none of them.
 */
#ifndef PL_BUILTIN_H
#define PL_BUILTIN_H

struct shard;

/* Register everything (main thread, before the config is read). */
void builtin_register(void);
/* On each shard's thread once its listeners are open / before it stops. */
int builtin_shard_start(struct shard *sh, char *err, size_t errlen);
void builtin_shard_stop(struct shard *sh);

#endif
