/*
 * mod_version.c - Software Version (XEP-0092) of the server: name and
 * version always, the operating system only with `show_os: true` (it tells
 * an attacker which exploits to try, so ejabberd's default of hiding it is
 * kept).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "config.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define VERSION_MAX_HOSTS 64

/* Hosts with show_os set; filled at start (main thread), read-only after. */
static char *show_os_hosts[VERSION_MAX_HOSTS];

static bool version_show_os(const char *host)
{
	for (size_t i = 0; i < VERSION_MAX_HOSTS; i++)
		if (show_os_hosts[i] && strcasecmp(show_os_hosts[i], host) == 0)
			return true;
	return false;
}

static void add_text_child(struct xml_node *parent, const char *name, const char *text)
{
	xml_add_text(xml_add_child(parent, name, NULL), text, strlen(text));
}

static void version_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	struct xml_node *q = xml_new("query", NS_VERSION);
	add_text_child(q, "name", "Parley");
	add_text_child(q, "version", PACKAGE_VERSION);
	if (version_show_os(req->host)) {
		struct utsname u;
		char os[2 * sizeof(u.sysname) + 2];
		if (uname(&u) == 0) {
			snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
			add_text_child(q, "os", os);
		}
	}
	iq_result(req, q);
}

static const struct modopt version_opts[] = {
	{ "show_os", MODOPT_BOOL, 0, 0, NULL },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static int version_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_version", opts, version_opts, err, errlen);
}

static int version_start(const char *host, const struct cfg_node *opts)
{
	if (modopt_bool(opts, "show_os", false)) {
		for (size_t i = 0; i < VERSION_MAX_HOSTS; i++) {
			if (!show_os_hosts[i]) {
				show_os_hosts[i] = pl_strdup(host);
				break;
			}
		}
	}
	iq_handler_add(host, NS_VERSION, IQ_SERVER, version_iq);
	disco_add_feature(host, NS_VERSION);
	return PL_OK;
}

static void version_stop(const char *host)
{
	iq_handler_remove(host, NS_VERSION, IQ_SERVER);
	disco_remove_feature(host, NS_VERSION);
	for (size_t i = 0; i < VERSION_MAX_HOSTS; i++) {
		if (show_os_hosts[i] && strcasecmp(show_os_hosts[i], host) == 0) {
			free(show_os_hosts[i]);
			show_os_hosts[i] = NULL;
		}
	}
}

const struct pm_module mod_version = {
	.name = "mod_version",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = version_check,
	.start = version_start,
	.stop = version_stop,
};
