/*
 * ping.c - mod_ping: answers XMPP Ping (XEP-0199) addressed to the server
 * and, with `send_pings: true`, pings clients that have been quiet for
 * `ping_interval` seconds; one that does not answer within
 * `ping_ack_timeout` seconds is disconnected (`timeout_action: kill`, the
 * default) or only logged (`none`). ejabberd's option names.
 *
 * Each bound session gets one ev_timer on its home shard (no extra fd), in
 * the module's session slot. Reads do not re-arm it: the timer, when it
 * fires, looks at the time of the client's last stanza and sleeps again
 * for the rest of the interval, so a busy session costs one heap operation
 * per interval, not one per stanza.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ev.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/shard.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define PING_MAX_HOSTS 64

struct ping_host {
	char *host;
	uint64_t interval_ms, ack_ms;
	bool kill;
};

/* Hosts with send_pings; filled at start (main thread), read-only after. */
static struct ping_host ping_hosts[PING_MAX_HOSTS];

struct ping_sess {
	struct ev_timer timer;
	struct c2s *s;
	const struct ping_host *ph;
	uint64_t last_rx_ms;
	uint32_t seq;
	bool waiting;
	char id[24];
};

static const char *const ping_actions[] = { "kill", "none", NULL };

static const struct modopt ping_opts[] = {
	{ "send_pings", MODOPT_BOOL, 0, 0, NULL },
	{ "ping_interval", MODOPT_INT, 1, 86400, NULL },
	{ "ping_ack_timeout", MODOPT_INT, 1, 3600, NULL },
	{ "timeout_action", MODOPT_ENUM, 0, 0, ping_actions },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static void ping_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "service-unavailable");
		return;
	}
	iq_result(req, NULL);
}

static const struct ping_host *ping_host(const char *host)
{
	for (size_t i = 0; i < PING_MAX_HOSTS; i++)
		if (ping_hosts[i].host && strcasecmp(ping_hosts[i].host, host) == 0)
			return &ping_hosts[i];
	return NULL;
}

static void ping_send(struct ping_sess *ps)
{
	snprintf(ps->id, sizeof(ps->id), "s2c-ping-%u", ++ps->seq);
	struct xml_node *iq = xml_new("iq", NS_CLIENT);
	xml_set_attr(iq, "type", "get");
	xml_set_attr(iq, "id", ps->id);
	xml_set_attr(iq, "from", ps->ph->host);
	xml_set_attr(iq, "to", c2s_full_jid(ps->s));
	xml_add_child(iq, "ping", NS_PING);
	c2s_send(ps->s, iq);
	xml_free(iq);
	ps->waiting = true;
}

static void ping_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct ping_sess *ps = t->data;
	uint64_t now = ev_now(loop);
	if (ps->waiting) {
		if (ps->ph->kill) {
			log_info("ping: %s: no answer to a ping within %llu s, disconnecting",
				 c2s_full_jid(ps->s), (unsigned long long)(ps->ph->ack_ms / 1000));
			/* The session's close frees ps later (c2s_session_closed). */
			c2s_stream_error(ps->s, "connection-timeout", "no answer to a ping");
			return;
		}
		log_info("ping: %s: no answer to a ping", c2s_full_jid(ps->s));
		ps->waiting = false;
		ps->last_rx_ms = now;
	}
	uint64_t quiet = now - ps->last_rx_ms;
	if (quiet < ps->ph->interval_ms) {
		ev_timer_start(loop, t, ps->ph->interval_ms - quiet);
		return;
	}
	ping_send(ps);
	ev_timer_start(loop, t, ps->ph->ack_ms);
}

static int ping_session_bound(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	const struct ping_host *ph = ping_host(host);
	if (!ph)
		return PL_OK;
	struct ev_loop *loop = shard_self()->loop;
	struct ping_sess *ps = pl_calloc(1, sizeof(*ps));
	ps->s = s;
	ps->ph = ph;
	ps->last_rx_ms = ev_now(loop);
	ev_timer_init(&ps->timer, ping_timer, ps);
	ev_timer_start(loop, &ps->timer, ph->interval_ms);
	c2s_set_data(s, C2S_SLOT_MODULE1, ps);
	return PL_OK;
}

static int ping_session_closed(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(host);
	PL_UNUSED(arg);
	struct ping_sess *ps = c2s_get_data(s, C2S_SLOT_MODULE1);
	if (!ps)
		return PL_OK;
	ev_timer_stop(shard_self()->loop, &ps->timer);
	c2s_set_data(s, C2S_SLOT_MODULE1, NULL);
	free(ps);
	return PL_OK;
}

/* Any stanza shows the client is alive; the answer to our ping is ours. */
static int ping_user_send(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	PL_UNUSED(host);
	PL_UNUSED(arg);
	struct ping_sess *ps = c2s_get_data(ev->s, C2S_SLOT_MODULE1);
	if (!ps)
		return PL_OK;
	struct ev_loop *loop = shard_self()->loop;
	ps->last_rx_ms = ev_now(loop);
	if (!ps->waiting || strcmp(ev->el->name, "iq") != 0)
		return PL_OK;
	const char *type = xml_attr(ev->el, "type");
	const char *id = xml_attr(ev->el, "id");
	if (!type || !id || strcmp(id, ps->id) != 0 ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return PL_OK;
	/* An error (a client without XEP-0199) is an answer too. */
	ps->waiting = false;
	ev_timer_stop(loop, &ps->timer);
	ev_timer_start(loop, &ps->timer, ps->ph->interval_ms);
	xml_free(ev->el);
	return PL_DONE;
}

static int ping_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_ping", opts, ping_opts, err, errlen);
}

static int ping_start(const char *host, const struct cfg_node *opts)
{
	iq_handler_add(host, NS_PING, IQ_SERVER, ping_iq);
	disco_add_feature(host, NS_PING);
	if (!modopt_bool(opts, "send_pings", false))
		return PL_OK;
	for (size_t i = 0; i < PING_MAX_HOSTS; i++) {
		struct ping_host *ph = &ping_hosts[i];
		if (ph->host)
			continue;
		ph->host = pl_strdup(host);
		ph->interval_ms = (uint64_t)modopt_int(opts, "ping_interval", 60) * 1000;
		ph->ack_ms = (uint64_t)modopt_int(opts, "ping_ack_timeout", 32) * 1000;
		ph->kill = strcmp(modopt_str(opts, "timeout_action", "kill"), "kill") == 0;
		hook_add(xmpp_hooks.session_bound, host, ping_session_bound, NULL, 0);
		hook_add(xmpp_hooks.session_closed, host, ping_session_closed, NULL, 0);
		/* First, so a ping's answer is taken before anything else sees it. */
		hook_add(xmpp_hooks.user_send, host, ping_user_send, NULL, 1000);
		break;
	}
	return PL_OK;
}

static void ping_stop(const char *host)
{
	iq_handler_remove(host, NS_PING, IQ_SERVER);
	disco_remove_feature(host, NS_PING);
	hook_remove(xmpp_hooks.session_bound, host, ping_session_bound);
	hook_remove(xmpp_hooks.session_closed, host, ping_session_closed);
	hook_remove(xmpp_hooks.user_send, host, ping_user_send);
	for (size_t i = 0; i < PING_MAX_HOSTS; i++) {
		if (ping_hosts[i].host && strcasecmp(ping_hosts[i].host, host) == 0) {
			free(ping_hosts[i].host);
			ping_hosts[i].host = NULL;
		}
	}
}

const struct pm_module mod_ping = {
	.name = "mod_ping",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = ping_check,
	.start = ping_start,
	.stop = ping_stop,
};
