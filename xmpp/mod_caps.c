/*
 * mod_caps.c - the server's entity capabilities (XEP-0115 §6.3) in the
 * stream features after authentication, so a client knows the server's
 * disco#info without asking on every login. The hash is disco.c's, kept
 * current as modules add and remove features.
 */
#include "core/hook.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

static int caps_features(const char *host, void *event, void *arg)
{
	struct features_event *fe = event;
	PL_UNUSED(arg);
	const char *ver = disco_caps_ver(host);
	if (!fe->authenticated || !ver)
		return PL_OK;
	struct xml_node *c = xml_add_child(fe->features, "c", NS_CAPS);
	xml_set_attr(c, "hash", "sha-1");
	xml_set_attr(c, "node", CAPS_NODE);
	xml_set_attr(c, "ver", ver);
	return PL_OK;
}

static int caps_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	hook_add(xmpp_hooks.stream_features, host, caps_features, NULL, 0);
	return PL_OK;
}

static void caps_stop(const char *host)
{
	hook_remove(xmpp_hooks.stream_features, host, caps_features);
}

const struct pm_module mod_caps = {
	.name = "mod_caps",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = caps_start,
	.stop = caps_stop,
};
