/* ping.c - mod_ping: answers XMPP Ping (XEP-0199) addressed to the server. */
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/xmpp.h"

static void ping_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "service-unavailable");
		return;
	}
	iq_result(req, NULL);
}

static int ping_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	iq_handler_add(host, NS_PING, IQ_SERVER, ping_iq);
	disco_add_feature(host, NS_PING);
	return PL_OK;
}

static void ping_stop(const char *host)
{
	iq_handler_remove(host, NS_PING, IQ_SERVER);
	disco_remove_feature(host, NS_PING);
}

const struct pm_module mod_ping = {
	.name = "mod_ping",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = ping_start,
	.stop = ping_stop,
};
