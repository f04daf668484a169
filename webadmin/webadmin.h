/*
 * webadmin.h - the admin web UI on the shared HTTP listener.
 *
 * Architecture rule: webadmin learns about the server only through the
 * command registry (core/cmd.h), the way an administrator would, so every
 * page shows what parleyctl shows. Registered at startup, before the shards
 * start.
 */
#ifndef PL_WEBADMIN_H
#define PL_WEBADMIN_H

/* The status page at "/" (logs an error if the route is taken). */
void webadmin_register(void);

#endif
