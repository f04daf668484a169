/*
 * admin.c - XMPP admin commands and the subsystem's per-shard life cycle.
 *
 * connected_users asks every shard for its sessions (each shard owns its
 * table) and answers once the last one has replied.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "core/hook.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/shard.h"
#include "xmpp/events.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

struct gather {
	struct cmd_req *req;
	pthread_mutex_t mu;
	int left;
	char **jids;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void gather_reply(void *arg)
{
	struct gather *g = arg;
	if (g->n > 1)
		qsort(g->jids, g->n, sizeof(char *), cmp_str);
	cmd_reply_list(g->req, g->jids, g->n);
	for (size_t i = 0; i < g->n; i++)
		free(g->jids[i]);
	free(g->jids);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void gather_one(void *arg)
{
	struct gather *g = arg;
	char **mine;
	size_t n = sm_list_jids(&mine);
	pthread_mutex_lock(&g->mu);
	if (g->n + n > g->cap) {
		g->cap = (g->n + n) * 2 + 16;
		g->jids = pl_realloc(g->jids, g->cap * sizeof(char *));
	}
	if (n > 0) {
		memcpy(g->jids + g->n, mine, n * sizeof(char *));
		g->n += n;
	}
	int last = --g->left == 0;
	pthread_mutex_unlock(&g->mu);
	free(mine);
	if (last)
		shard_post(g->req->shard, gather_reply, g);
}

static void cmd_connected_users(struct cmd_req *req)
{
	struct gather *g = pl_calloc(1, sizeof(*g));
	g->req = req;
	g->left = shards_count();
	pthread_mutex_init(&g->mu, NULL);
	shard_post_all(gather_one, g);
}

static const struct cmd_def connected_users_cmd = {
	.name = "connected_users",
	.desc = "list the full JIDs of every connected session",
	.args = NULL,
	.nargs = 0,
	.handler = cmd_connected_users,
};

struct xmpp_hooks xmpp_hooks;

void xmpp_register_commands(void)
{
	xml_init();
	xmpp_hooks.session_bound = hook_get("c2s_session_bound");
	xmpp_hooks.session_closed = hook_get("c2s_session_closed");
	xmpp_hooks.user_send = hook_get("user_send_packet");
	xmpp_hooks.user_receive = hook_get("user_receive_packet");
	xmpp_hooks.local_deliver = hook_get("sm_local_deliver");
	xmpp_hooks.offline_message = hook_get("offline_message");
	xmpp_hooks.presence_out = hook_get("presence_out");
	xmpp_hooks.stream_features = hook_get("c2s_stream_features");
	xmpp_hooks.unauth_iq = hook_get("c2s_unauthenticated_iq");
	cmd_register(&connected_users_cmd);
	pm_register(&mod_disco);
	pm_register(&mod_ping);
	pm_register(&mod_roster);
	pm_register(&mod_offline);
	pm_register(&mod_version);
	pm_register(&mod_time);
	pm_register(&mod_last);
	pm_register(&mod_vcard);
	pm_register(&mod_private);
	pm_register(&mod_blocking);
	pm_register(&mod_register);
	pm_register(&mod_caps);
	register_password_init();
}

static void xmpp_free_shard_state(void *arg)
{
	sm_shard_stop(arg);
}

void xmpp_shard_start(struct shard *sh)
{
	sm_shard_start(sh);
	c2s_shard_start(sh);
}

void xmpp_shard_stop(struct shard *sh)
{
	c2s_shard_stop(sh);
	/* After the conns' own deferred teardown, which still looks sessions up. */
	ev_defer(sh->loop, xmpp_free_shard_state, sh);
}
