/*
 * mod_last.c - Last Activity (XEP-0012). Asked of the server: its uptime.
 * Asked of an account (its bare JID): 0 while the user has a session,
 * otherwise the seconds since the last session closed, stored when the
 * user's last resource went away. Only the user and contacts subscribed to
 * the user's presence may ask (§4: anyone else gets forbidden); the roster
 * lives on the user's home shard, where account iqs are handled.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hook.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/roster.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

/* Set by the first start on the main thread, read by every shard after. */
static uint64_t last_started_ms;

static void last_answer(struct iq_req *req, long long seconds, const char *status)
{
	char num[24];
	snprintf(num, sizeof(num), "%lld", seconds < 0 ? 0 : seconds);
	struct xml_node *q = xml_new("query", NS_LAST);
	xml_set_attr(q, "seconds", num);
	if (status && *status)
		xml_add_text(q, status, strlen(status));
	iq_result(req, q);
}

static void last_server_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	last_answer(req, (long long)((pl_now_ms() - last_started_ms) / 1000), NULL);
}

static void last_stored(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct iq_req *req = arg;
	PL_UNUSED(changes);
	if (status != PL_OK) {
		iq_error(req, "wait", "internal-server-error");
		return;
	}
	if (nrows == 0) {
		iq_error(req, "cancel", "item-not-found");
		return;
	}
	/* "SECONDS STATUS" */
	char *rest;
	long long when = strtoll(rows[0], &rest, 10);
	if (*rest == ' ')
		rest++;
	last_answer(req, (long long)time(NULL) - when, rest);
}

/* Authorised: online means 0, else what the last logout stored. */
static void last_of_account(struct iq_req *req)
{
	char *bare = jid_bare(&req->to);
	struct c2s *one;
	size_t online = sm_sessions_of(bare, &one, 1);
	free(bare);
	if (online > 0) {
		last_answer(req, 0, NULL);
		return;
	}
	const char *params[] = { req->to.domain, req->to.local };
	modstore_exec("SELECT seconds || ' ' || status FROM last_activity"
		      " WHERE host = ?1 AND username = ?2", params, 2, 1, last_stored, req);
}

static void last_roster_checked(struct roster_user *u, void *arg)
{
	struct iq_req *req = arg;
	char *asker = jid_bare(&req->from);
	const struct roster_item *it = roster_find(u, asker);
	free(asker);
	if (!it || !roster_item_from(it)) {
		iq_error(req, "auth", "forbidden");
		return;
	}
	last_of_account(req);
}

static void last_account_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	if (!req->to.local) {
		last_server_iq(req);
		return;
	}
	if (req->from_self) {
		last_of_account(req);
		return;
	}
	if (!pm_enabled(req->host, "mod_roster")) {
		iq_error(req, "auth", "forbidden");
		return;
	}
	roster_use(req->to.domain, req->to.local, last_roster_checked, req);
}

static void last_written(void *arg, int status, char **rows, size_t nrows, long changes)
{
	PL_UNUSED(arg);
	PL_UNUSED(status);
	PL_UNUSED(rows);
	PL_UNUSED(nrows);
	PL_UNUSED(changes);
}

/* The last resource of a user went away: remember when. */
static int last_session_closed(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	const char *user = c2s_user(s);
	if (!user)
		return PL_OK;
	size_t n = strlen(user) + strlen(host) + 2;
	char *bare = pl_malloc(n);
	snprintf(bare, n, "%s@%s", user, host);
	struct c2s *one;
	size_t left = sm_sessions_of(bare, &one, 1);
	free(bare);
	if (left > 0)
		return PL_OK;
	char when[24];
	snprintf(when, sizeof(when), "%lld", (long long)time(NULL));
	const char *params[] = { host, user, when };
	modstore_exec("INSERT INTO last_activity (host, username, seconds, status)"
		      " VALUES (?1, ?2, ?3, '') ON CONFLICT (host, username)"
		      " DO UPDATE SET seconds = excluded.seconds, status = excluded.status",
		      params, 3, 1, last_written, NULL);
	return PL_OK;
}

static int last_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	if (!last_started_ms)
		last_started_ms = pl_now_ms();
	iq_handler_add(host, NS_LAST, IQ_SERVER, last_server_iq);
	iq_handler_add(host, NS_LAST, IQ_ACCOUNT, last_account_iq);
	hook_add(xmpp_hooks.session_closed, host, last_session_closed, NULL, 0);
	disco_add_feature(host, NS_LAST);
	return PL_OK;
}

static void last_stop(const char *host)
{
	iq_handler_remove(host, NS_LAST, IQ_SERVER);
	iq_handler_remove(host, NS_LAST, IQ_ACCOUNT);
	hook_remove(xmpp_hooks.session_closed, host, last_session_closed);
	disco_remove_feature(host, NS_LAST);
}

const struct pm_module mod_last = {
	.name = "mod_last",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = last_start,
	.stop = last_stop,
};
