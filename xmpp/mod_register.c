/*
 * mod_register.c - In-Band Registration (XEP-0077).
 *
 * Before authentication (mod_register enabled on the host): the
 * registration form, account creation, at most one registration per client
 * IP address every `registration_timeout` seconds (ejabberd's option,
 * default 600; "infinity" or 0: no limit). The stream waits (c2s_hold)
 * while the account is created, so the client's next stanzas keep their
 * order and the session cannot be freed under the callback.
 *
 * After authentication: a user may change their password on every host,
 * with mod_register or without (a forgotten default must not lock anyone
 * into a leaked password), and remove their account where mod_register is
 * enabled; the user's sessions are then closed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/hook.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/users.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/jid.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define REG_DEFAULT_TIMEOUT 600
#define REG_MAX_HOSTS 64
#define REG_MAX_IPS 4096

struct reg_host {
	char *host;
	long timeout;      /* seconds; 0: no limit */
};

/* Filled at start (main thread), read-only after. */
static struct reg_host reg_hosts[REG_MAX_HOSTS];

/* Registrations are rare and come in on any shard: one small table under a
 * lock is simpler than a shard owning it, and never on a hot path. */
struct reg_ip {
	char ip[64];
	time_t at;
};
static pthread_mutex_t reg_ips_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reg_ip reg_ips[REG_MAX_IPS];
static size_t reg_nips;

static long reg_timeout(const char *host)
{
	for (size_t i = 0; i < REG_MAX_HOSTS; i++)
		if (reg_hosts[i].host && strcasecmp(reg_hosts[i].host, host) == 0)
			return reg_hosts[i].timeout;
	return REG_DEFAULT_TIMEOUT;
}

/* May ip register now? If so the attempt is recorded (a failure gives the
 * slot back with reg_ip_forget). */
static bool reg_ip_admit(const char *ip, long timeout)
{
	if (timeout <= 0)
		return true;
	time_t now = time(NULL);
	bool ok = true;
	pthread_mutex_lock(&reg_ips_mu);
	size_t j = 0;
	for (size_t i = 0; i < reg_nips; i++) {
		if (now - reg_ips[i].at >= timeout)
			continue;   /* expired: drop while compacting */
		if (strcmp(reg_ips[i].ip, ip) == 0)
			ok = false;
		reg_ips[j++] = reg_ips[i];
	}
	reg_nips = j;
	if (ok && reg_nips < REG_MAX_IPS) {
		snprintf(reg_ips[reg_nips].ip, sizeof(reg_ips[reg_nips].ip), "%s", ip);
		reg_ips[reg_nips++].at = now;
	} else if (ok) {
		ok = false;   /* a flood from many addresses: refuse, do not forget */
	}
	pthread_mutex_unlock(&reg_ips_mu);
	return ok;
}

static void reg_ip_forget(const char *ip)
{
	pthread_mutex_lock(&reg_ips_mu);
	for (size_t i = 0; i < reg_nips; i++) {
		if (strcmp(reg_ips[i].ip, ip) == 0) {
			reg_ips[i] = reg_ips[--reg_nips];
			break;
		}
	}
	pthread_mutex_unlock(&reg_ips_mu);
}

static const char *child_text(const struct xml_node *q, const char *name)
{
	const struct xml_node *c = xml_child(q, name, NS_REGISTER);
	return c ? xml_text(c) : NULL;
}

static void add_text_child(struct xml_node *parent, const char *name, const char *text)
{
	struct xml_node *c = xml_add_child(parent, name, NULL);
	if (text)
		xml_add_text(c, text, strlen(text));
}

/* ---- before authentication: answers go straight to the stream ---- */

static void reg_reply(struct c2s *s, const char *id, const char *etype, const char *cond,
		      const char *text, struct xml_node *payload)
{
	struct xml_node *r = xml_new("iq", NS_CLIENT);
	xml_set_attr(r, "type", cond ? "error" : "result");
	xml_set_attr(r, "id", id);
	if (payload)
		xml_add_copy(r, payload);
	if (cond)
		stanza_add_error(r, etype, cond, text);
	c2s_send(s, r);
	xml_free(r);
	xml_free(payload);
}

struct reg_new {
	struct c2s *s;
	char *id, *ip, *host, *user;
};

static void reg_created(void *arg, int status)
{
	struct reg_new *rn = arg;
	if (status == USERS_OK) {
		log_info("register: %s@%s registered from %s", rn->user, rn->host, rn->ip);
		reg_reply(rn->s, rn->id, NULL, NULL, NULL, NULL);
	} else {
		reg_ip_forget(rn->ip);
		if (status == USERS_EXISTS)
			reg_reply(rn->s, rn->id, "cancel", "conflict", "the account exists", NULL);
		else if (status == USERS_INVALID)
			reg_reply(rn->s, rn->id, "modify", "not-acceptable", NULL, NULL);
		else
			reg_reply(rn->s, rn->id, "wait", "internal-server-error", NULL, NULL);
	}
	c2s_release(rn->s);
	free(rn->id);
	free(rn->ip);
	free(rn->host);
	free(rn->user);
	free(rn);
}

static void reg_form(struct c2s *s, const char *id)
{
	struct xml_node *q = xml_new("query", NS_REGISTER);
	add_text_child(q, "instructions",
		       "Choose a username and password to register with this server.");
	add_text_child(q, "username", NULL);
	add_text_child(q, "password", NULL);
	reg_reply(s, id, NULL, NULL, NULL, q);
}

static void reg_create(struct c2s *s, const char *host, const char *id,
		       const struct xml_node *q)
{
	const char *name = child_text(q, "username");
	const char *password = child_text(q, "password");
	if (!name || !*name || !password || !*password) {
		reg_reply(s, id, "modify", "not-acceptable", "username and password are required",
			  NULL);
		return;
	}
	char *user = jid_prep_local(name, strlen(name));
	if (!user) {
		reg_reply(s, id, "modify", "jid-malformed", "that username is not allowed", NULL);
		return;
	}
	char ip[64];
	c2s_peer_ip(s, ip, sizeof(ip));
	if (!reg_ip_admit(ip, reg_timeout(host))) {
		log_info("register: %s@%s refused: %s registered less than %lds ago", user, host,
			 ip, reg_timeout(host));
		reg_reply(s, id, "wait", "resource-constraint",
			  "Users are not allowed to register accounts so quickly", NULL);
		free(user);
		return;
	}
	struct reg_new *rn = pl_calloc(1, sizeof(*rn));
	rn->s = s;
	rn->id = pl_strdup(id);
	rn->ip = pl_strdup(ip);
	rn->host = pl_strdup(host);
	rn->user = user;
	c2s_hold(s);
	users_register(host, user, password, reg_created, rn);
}

static int reg_unauth_iq(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	PL_UNUSED(arg);
	struct xml_node *q = xml_first_child_el(ev->el);
	const char *to = xml_attr(ev->el, "to");
	const char *type = xml_attr(ev->el, "type");
	const char *id = xml_attr(ev->el, "id");
	if (!q || !xml_is(q, "query", NS_REGISTER) || (to && strcasecmp(to, host) != 0))
		return PL_OK;
	if (!id || !type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
		reg_reply(ev->s, id ? id : "", "modify", "bad-request", NULL, NULL);
	else if (strcmp(type, "get") == 0)
		reg_form(ev->s, id);
	else if (xml_child(q, "remove", NS_REGISTER))
		reg_reply(ev->s, id, "auth", "not-authorized", "log in to remove an account", NULL);
	else
		reg_create(ev->s, host, id, q);
	xml_free(ev->el);
	return PL_DONE;
}

/* ---- after authentication: the user's own account ---- */

struct reg_change {
	struct xml_node *iq;
	char *host, *user;
	bool removed;
};

static void reg_change_free(struct reg_change *rc)
{
	free(rc->host);
	free(rc->user);
	free(rc);
}

static void reg_answer(struct xml_node *iq, struct xml_node *payload)
{
	struct xml_node *r = xml_new("iq", NS_CLIENT);
	const char *to = xml_attr(iq, "to");
	xml_set_attr(r, "type", "result");
	xml_set_attr(r, "id", xml_attr(iq, "id"));
	if (to)
		xml_set_attr(r, "from", to);
	xml_set_attr(r, "to", xml_attr(iq, "from"));
	if (payload) {
		xml_add_copy(r, payload);
		xml_free(payload);
	}
	xml_free(iq);
	router_route(r);
}

/* After removal the account's sessions end (the result is queued first). */
static void reg_kick(const char *host, const char *user)
{
	size_t n = strlen(user) + strlen(host) + 2;
	char *bare = pl_malloc(n);
	snprintf(bare, n, "%s@%s", user, host);
	struct c2s *sess[64];
	size_t k = sm_sessions_of(bare, sess, PL_ARRAY_LEN(sess));
	free(bare);
	for (size_t i = 0; i < k; i++)
		c2s_stream_error(sess[i], "not-authorized", "the account was removed");
}

static void reg_changed(void *arg, int status)
{
	struct reg_change *rc = arg;
	if (status == USERS_OK) {
		log_info("register: %s@%s %s", rc->user, rc->host,
			 rc->removed ? "removed the account" : "changed the password");
		reg_answer(rc->iq, NULL);
		if (rc->removed)
			reg_kick(rc->host, rc->user);
	} else if (status == USERS_INVALID) {
		router_bounce(rc->iq, "modify", "not-acceptable");
	} else if (status == USERS_NOT_FOUND) {
		router_bounce(rc->iq, "cancel", "item-not-found");
	} else {
		router_bounce(rc->iq, "wait", "internal-server-error");
	}
	reg_change_free(rc);
}

/* Is this iq for the sender's own account: no 'to', the server, or the
 * user's bare JID? */
static bool reg_for_self(const char *to, const char *host, const char *user)
{
	if (!to || strcasecmp(to, host) == 0)
		return true;
	struct jid j;
	if (jid_parse(to, strlen(to), &j) != PL_OK)
		return false;
	bool self = j.local && !j.resource && strcmp(j.local, user) == 0 &&
		strcmp(j.domain, host) == 0;
	jid_free(&j);
	return self;
}

static int reg_user_send(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	struct xml_node *el = ev->el;
	PL_UNUSED(arg);
	if (strcmp(el->name, "iq") != 0)
		return PL_OK;
	struct xml_node *q = xml_first_child_el(el);
	const char *type = xml_attr(el, "type");
	const char *user = c2s_user(ev->s);
	if (!q || !xml_is(q, "query", NS_REGISTER) || !type || !user ||
	    (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) ||
	    !reg_for_self(xml_attr(el, "to"), host, user))
		return PL_OK;
	if (strcmp(type, "get") == 0) {
		struct xml_node *r = xml_new("query", NS_REGISTER);
		xml_add_child(r, "registered", NULL);
		add_text_child(r, "username", user);
		add_text_child(r, "password", NULL);
		reg_answer(el, r);
		return PL_DONE;
	}
	bool remove = xml_child(q, "remove", NS_REGISTER) != NULL;
	const char *name = child_text(q, "username");
	const char *password = child_text(q, "password");
	if (remove && !pm_enabled(host, "mod_register")) {
		router_bounce(el, "cancel", "not-allowed");
		return PL_DONE;
	}
	if (!remove && (!password || !*password)) {
		router_bounce(el, "modify", "not-acceptable");
		return PL_DONE;
	}
	if (!remove && name && *name) {
		/* §3.3: only one's own password. */
		char *norm = jid_prep_local(name, strlen(name));
		bool mine = norm && strcmp(norm, user) == 0;
		free(norm);
		if (!mine) {
			router_bounce(el, "cancel", "not-allowed");
			return PL_DONE;
		}
	}
	struct reg_change *rc = pl_calloc(1, sizeof(*rc));
	rc->iq = el;
	rc->host = pl_strdup(host);
	rc->user = pl_strdup(user);
	rc->removed = remove;
	if (remove)
		users_unregister(host, user, reg_changed, rc);
	else
		users_set_password(host, user, password, reg_changed, rc);
	return PL_DONE;
}

void register_password_init(void)
{
	/* Every host, whatever its modules (see the top of the file). */
	hook_add(xmpp_hooks.user_send, NULL, reg_user_send, NULL, 50);
}

/* ---- the module ---- */

/* <register/> next to the SASL mechanisms (XEP-0077 §4). */
static int reg_features(const char *host, void *event, void *arg)
{
	struct features_event *fe = event;
	PL_UNUSED(host);
	PL_UNUSED(arg);
	if (!fe->authenticated)
		xml_add_child(fe->features, "register", NS_REGISTER_FEATURE);
	return PL_OK;
}

static const struct modopt reg_opts[] = {
	{ "registration_timeout", MODOPT_TIMEOUT, 0, 7L * 24 * 3600, NULL },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static int reg_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_register", opts, reg_opts, err, errlen);
}

static int reg_start(const char *host, const struct cfg_node *opts)
{
	long t = modopt_int(opts, "registration_timeout", REG_DEFAULT_TIMEOUT);
	for (size_t i = 0; i < REG_MAX_HOSTS; i++) {
		if (!reg_hosts[i].host) {
			reg_hosts[i].host = pl_strdup(host);
			reg_hosts[i].timeout = t < 0 ? 0 : t;
			break;
		}
	}
	hook_add(xmpp_hooks.unauth_iq, host, reg_unauth_iq, NULL, 0);
	hook_add(xmpp_hooks.stream_features, host, reg_features, NULL, 0);
	disco_add_feature(host, NS_REGISTER);
	return PL_OK;
}

static void reg_stop(const char *host)
{
	hook_remove(xmpp_hooks.unauth_iq, host, reg_unauth_iq);
	hook_remove(xmpp_hooks.stream_features, host, reg_features);
	disco_remove_feature(host, NS_REGISTER);
	for (size_t i = 0; i < REG_MAX_HOSTS; i++) {
		if (reg_hosts[i].host && strcasecmp(reg_hosts[i].host, host) == 0) {
			free(reg_hosts[i].host);
			reg_hosts[i].host = NULL;
		}
	}
}

const struct pm_module mod_register = {
	.name = "mod_register",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = false,
	.check = reg_check,
	.start = reg_start,
	.stop = reg_stop,
};
