/* builtin.c - registers every subsystem linked into parleyd. */
#include <stddef.h>

#include "core/cmd.h"
#include "core/ctl.h"
#include "core/http.h"
#include "core/listen.h"
#include "core/pl.h"
#include "core/shard.h"
#include "ice/stun.h"
#include "server/builtin.h"
#include "sip/sip.h"
#include "webadmin/webadmin.h"
#include "xmpp/xmpp.h"

/* Listen modules of later issues: accepted in the config so an ejabberd-like
 * file loads, but not served yet (logged at startup). */
static const struct listen_module s2s_listen_module = {
	.name = "s2s", .transports = LISTEN_TCP, .implemented = 0,
};
static const struct listen_module proxy65_listen_module = {
	.name = "proxy65", .transports = LISTEN_TCP, .implemented = 0,
};

void builtin_register(void)
{
	listen_register(&c2s_listen_module);
	listen_register(&c2s_tls_listen_module);
	listen_register(&s2s_listen_module);
	listen_register(&proxy65_listen_module);
	listen_register(&http_listen_module);
	listen_register(&sip_listen_module);
	listen_register(&stun_listen_module);
	ctl_register_builtin_commands();
	xmpp_register_commands();
	webadmin_register();
	http_echo_register();
	sip_init();
}

int builtin_shard_start(struct shard *sh, char *err, size_t errlen)
{
	PL_UNUSED(err);
	PL_UNUSED(errlen);
	xmpp_shard_start(sh);
	return PL_OK;
}

void builtin_shard_stop(struct shard *sh)
{
	xmpp_shard_stop(sh);
}
