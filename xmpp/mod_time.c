/*
 * mod_time.c - Entity Time (XEP-0202): the server's UTC time (XEP-0082
 * DateTime) and its zone offset from UTC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

void time_format_utc(time_t t, char out[21])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	if (strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

void time_format_tzo(long gmtoff, char out[7])
{
	char sign = gmtoff < 0 ? '-' : '+';
	long a = labs(gmtoff);
	/* Zones are whole minutes and under a day; the modulo only keeps a
	 * nonsense offset from overflowing the fixed-width text. */
	long h = a / 3600 % 100, m = a % 3600 / 60;
	snprintf(out, 7, "%c%02ld:%02ld", sign, h, m);
}

static void time_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	time_t now = time(NULL);
	struct tm local;
	char utc[21], tzo[7];
	localtime_r(&now, &local);
	time_format_utc(now, utc);
	time_format_tzo(local.tm_gmtoff, tzo);
	struct xml_node *t = xml_new("time", NS_TIME);
	xml_add_text(xml_add_child(t, "tzo", NULL), tzo, strlen(tzo));
	xml_add_text(xml_add_child(t, "utc", NULL), utc, strlen(utc));
	iq_result(req, t);
}

static int time_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	iq_handler_add(host, NS_TIME, IQ_SERVER, time_iq);
	disco_add_feature(host, NS_TIME);
	return PL_OK;
}

static void time_stop(const char *host)
{
	iq_handler_remove(host, NS_TIME, IQ_SERVER);
	disco_remove_feature(host, NS_TIME);
}

const struct pm_module mod_time = {
	.name = "mod_time",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = time_start,
	.stop = time_stop,
};
