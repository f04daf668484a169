/* Unit tests of the basic server modules' pure pieces: option checks with
 * file:line errors, XEP-0082/0202 time formatting, the vCard size limit,
 * XEP-0115 caps hashes (the XEP's own examples), XEP-0049 forbidden
 * namespaces, XEP-0191 JID matching and stored-element round trips; and
 * the storage job's per-user quota against a real store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/listen.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/store.h"
#include "xmpp/disco.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

static char dir[64];
static char path[128];
static char store_dir[128];

static int setup(void **state)
{
	(void)state;
	pm_register(&mod_disco);
	pm_register(&mod_ping);
	pm_register(&mod_version);
	pm_register(&mod_time);
	pm_register(&mod_last);
	pm_register(&mod_vcard);
	pm_register(&mod_private);
	pm_register(&mod_blocking);
	pm_register(&mod_register);
	pm_register(&mod_caps);
	pm_register(&mod_roster);
	strcpy(dir, "/tmp/parley-mods-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/parley.yml", dir);
	snprintf(store_dir, sizeof(store_dir), "%s/data", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

/* ---- options ---- */

static int load(const char *modules, struct cfg **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("hosts: [localhost]\n", f);     /* line 1 */
	fputs("modules:\n", f);               /* line 2 */
	fputs(modules, f);                    /* from line 3 */
	fclose(f);
	err[0] = '\0';
	return cfg_load(path, out, err, errlen);
}

static void expect_error(const char *modules, int line, const char *needle)
{
	struct cfg *c = NULL;
	char err[512];
	assert_int_equal(load(modules, &c, err, sizeof(err)), PL_ERR);
	assert_null(c);
	char where[160];
	snprintf(where, sizeof(where), "%s:%d: ", path, line);
	if (strncmp(err, where, strlen(where)) != 0 || !strstr(err, needle))
		fail_msg("expected '%s...%s', got '%s'", where, needle, err);
}

static struct cfg *expect_ok(const char *modules)
{
	struct cfg *c = NULL;
	char err[512];
	if (load(modules, &c, err, sizeof(err)) != PL_OK)
		fail_msg("config refused: %s", err);
	return c;
}

static void options_unknown_key_names_file_line(void **state)
{
	(void)state;
	expect_error("  mod_version:\n"
		     "    shw_os: true\n", 4, "module 'mod_version': unknown option 'shw_os'");
	expect_error("  mod_ping:\n"
		     "    send_pings: true\n"
		     "    ping_intervall: 5\n", 5, "unknown option 'ping_intervall'");
	/* A module without options of its own refuses any. */
	expect_error("  mod_time:\n"
		     "    zone: utc\n", 4, "unknown option 'zone'");
}

static void options_bad_values_name_file_line(void **state)
{
	(void)state;
	expect_error("  mod_version: {show_os: maybe}\n", 3, "'maybe' is not true or false");
	expect_error("  mod_ping:\n"
		     "    ping_interval: 0\n", 4, "out of range 1..86400");
	expect_error("  mod_ping:\n"
		     "    ping_ack_timeout: soon\n", 4, "'soon' is not a number");
	expect_error("  mod_ping:\n"
		     "    timeout_action: explode\n", 4,
		     "key 'timeout_action': 'explode' is not one of kill, none");
	expect_error("  mod_vcard:\n"
		     "    max_size: 100\n", 4, "100 bytes is out of range 1024..");
	expect_error("  mod_register:\n"
		     "    registration_timeout: -5\n", 4, "out of range 0..");
	expect_error("  mod_register:\n"
		     "    registration_timeout: [1]\n", 4, "expected a single value");
	expect_error("  mod_roster:\n"
		     "    max_items: 0\n", 4, "out of range 1..1000000");
	expect_error("  mod_roster:\n"
		     "    versioning: true\n"
		     "    max_items: abc\n", 5, "'abc' is not a number");
	expect_error("  mod_private: {max_items: -1}\n", 3, "out of range 1..1000000");
	expect_error("  mod_private:\n"
		     "    max_items: 100\n"
		     "    max_size: 10\n", 5, "10 bytes is out of range 1024..");
}

static void options_valid_values_are_read_back(void **state)
{
	(void)state;
	struct cfg *c = expect_ok("  mod_ping: {send_pings: true, ping_interval: 2,"
				  " ping_ack_timeout: 1, timeout_action: none}\n"
				  "  mod_vcard: {max_size: 8k}\n"
				  "  mod_register: {registration_timeout: infinity}\n"
				  "  mod_roster: {max_items: 3}\n"
				  "  mod_private: {max_items: 7, max_size: 2k}\n"
				  "  mod_version: {}\n");
	const struct cfg_node *ping = cfg_map_get(c->modules, "mod_ping");
	assert_true(modopt_bool(ping, "send_pings", false));
	assert_int_equal(modopt_int(ping, "ping_interval", 60), 2);
	assert_int_equal(modopt_int(ping, "ping_ack_timeout", 32), 1);
	assert_string_equal(modopt_str(ping, "timeout_action", "kill"), "none");
	assert_int_equal(modopt_size(cfg_map_get(c->modules, "mod_vcard"), "max_size", 1), 8192);
	assert_int_equal(modopt_int(cfg_map_get(c->modules, "mod_roster"), "max_items", 1000), 3);
	const struct cfg_node *priv = cfg_map_get(c->modules, "mod_private");
	assert_int_equal(modopt_int(priv, "max_items", 100), 7);
	assert_int_equal(modopt_size(priv, "max_size", 1), 2048);
	/* "infinity" reads as -1: no limit. */
	assert_int_equal(modopt_int(cfg_map_get(c->modules, "mod_register"),
				    "registration_timeout", 600), -1);
	/* Absent options give the defaults. */
	const struct cfg_node *ver = cfg_map_get(c->modules, "mod_version");
	assert_false(modopt_bool(ver, "show_os", false));
	assert_int_equal(modopt_int(NULL, "x", 7), 7);
	cfg_free(c);
}

static void options_default_set_has_everything_but_register(void **state)
{
	(void)state;
	struct cfg *c = NULL;
	char err[512];
	FILE *f = fopen(path, "w");
	fputs("hosts: [localhost]\n", f);
	fclose(f);
	assert_int_equal(cfg_load(path, &c, err, sizeof(err)), PL_OK);
	cfg_set_current(c);
	assert_true(pm_enabled("localhost", "mod_version"));
	assert_true(pm_enabled("localhost", "mod_blocking"));
	assert_true(pm_enabled("localhost", "mod_caps"));
	assert_false(pm_enabled("localhost", "mod_register"));
	cfg_free(c);
	c = expect_ok("  mod_register: {}\n");
	cfg_set_current(c);
	assert_true(pm_enabled("localhost", "mod_register"));
	assert_false(pm_enabled("localhost", "mod_version"));
	cfg_free(c);
}

static void xep0157_server_info_checked(void **state)
{
	(void)state;
	struct cfg *c = expect_ok("  mod_disco:\n"
				  "    server_info:\n"
				  "      - modules: all\n"
				  "        name: abuse-addresses\n"
				  "        urls: [\"mailto:abuse@example.test\"]\n"
				  "      - modules: [mod_disco]\n"
				  "        name: admin-addresses\n"
				  "        urls: [\"xmpp:admin@example.test\", \"mailto:a@example.test\"]\n");
	cfg_free(c);
	expect_error("  mod_disco:\n"
		     "    server_info:\n"
		     "      - name: spam-addresses\n"
		     "        urls: [\"mailto:x@example.test\"]\n", 5,
		     "'spam-addresses' is not one of the XEP-0157 names");
	expect_error("  mod_disco:\n"
		     "    server_info:\n"
		     "      - name: abuse-addresses\n"
		     "        urls: mailto:x@example.test\n", 6, "expected a list of URIs");
	expect_error("  mod_disco:\n"
		     "    server_info:\n"
		     "      - name: abuse-addresses\n"
		     "        urls: [\"not a uri\"]\n", 6, "'not a uri' is not a URI");
	expect_error("  mod_disco:\n"
		     "    server_info:\n"
		     "      - name: abuse-addresses\n"
		     "        urls: [\"mailto:x@example.test\"]\n"
		     "        modules: [mod_nothing]\n", 7, "'mod_nothing' is not a module");
	expect_error("  mod_disco:\n"
		     "    server_info:\n"
		     "      - name: abuse-addresses\n"
		     "        url: [\"mailto:x@example.test\"]\n", 6, "unknown option 'url'");
	expect_error("  mod_disco:\n"
		     "    server_info: abuse\n", 4, "expected a list");
}

/* ---- XEP-0082 / XEP-0202 ---- */

static void xep0202_utc_is_xep0082_datetime(void **state)
{
	(void)state;
	char out[21];
	time_format_utc(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	/* XEP-0202 §4's example instant. */
	time_format_utc(1166551115, out);
	assert_string_equal(out, "2006-12-19T17:58:35Z");
	time_format_utc(951782400, out);   /* a leap day */
	assert_string_equal(out, "2000-02-29T00:00:00Z");
}

static void xep0202_tzo_is_signed_hours_minutes(void **state)
{
	(void)state;
	char out[7];
	time_format_tzo(0, out);
	assert_string_equal(out, "+00:00");
	time_format_tzo(-6 * 3600, out);   /* XEP-0202 §4: -06:00 */
	assert_string_equal(out, "-06:00");
	time_format_tzo(5 * 3600 + 1800, out);
	assert_string_equal(out, "+05:30");
	time_format_tzo(-(3 * 3600 + 1800), out);
	assert_string_equal(out, "-03:30");
	time_format_tzo(14 * 3600, out);
	assert_string_equal(out, "+14:00");
}

/* ---- vCard size ---- */

static void xep0054_vcard_size_limit(void **state)
{
	(void)state;
	struct xml_node *v = xml_new("vCard", NS_VCARD);
	xml_add_text(xml_add_child(v, "FN", NULL), "Juliet Capulet", 14);
	size_t size = 0;
	assert_true(vcard_fits(v, 65536, &size));
	/* <vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard> */
	assert_int_equal(size, strlen("<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>"));
	assert_true(vcard_fits(v, size, NULL));
	assert_false(vcard_fits(v, size - 1, NULL));
	/* Escaping counts: what is stored is the serialized form. */
	struct xml_node *w = xml_new("vCard", NS_VCARD);
	xml_add_text(xml_add_child(w, "FN", NULL), "<&>", 3);
	size_t wsize = 0;
	vcard_fits(w, 65536, &wsize);
	assert_int_equal(wsize, size - 14 + strlen("&lt;&amp;&gt;"));
	/* A big photo goes over a small limit. */
	char *blob = pl_malloc(70000);
	memset(blob, 'A', 70000);
	xml_add_text(xml_add_child(xml_add_child(v, "PHOTO", NULL), "BINVAL", NULL), blob, 70000);
	free(blob);
	assert_false(vcard_fits(v, 65536, &size));
	assert_true(size > 70000);
	xml_free(v);
	xml_free(w);
}

/* ---- XEP-0115 ---- */

static struct xml_node *disco_query(void)
{
	return xml_new("query", NS_DISCO_INFO);
}

static void add_identity(struct xml_node *q, const char *cat, const char *type,
			 const char *lang, const char *name)
{
	struct xml_node *id = xml_add_child(q, "identity", NULL);
	xml_set_attr(id, "category", cat);
	xml_set_attr(id, "type", type);
	if (lang)
		xml_set_attr(id, "xml:lang", lang);
	xml_set_attr(id, "name", name);
}

static void add_feature(struct xml_node *q, const char *var)
{
	xml_set_attr(xml_add_child(q, "feature", NULL), "var", var);
}

static void add_field(struct xml_node *x, const char *var, const char *type,
		      const char *const *values)
{
	struct xml_node *f = xml_add_child(x, "field", NULL);
	xml_set_attr(f, "var", var);
	if (type)
		xml_set_attr(f, "type", type);
	for (; *values; values++)
		xml_add_text(xml_add_child(f, "value", NULL), *values, strlen(*values));
}

static void xep0115_5_2_simple_example(void **state)
{
	(void)state;
	struct xml_node *q = disco_query();
	add_identity(q, "client", "pc", NULL, "Exodus 0.9.1");
	/* Out of order on purpose: the algorithm sorts. */
	add_feature(q, "http://jabber.org/protocol/muc");
	add_feature(q, "http://jabber.org/protocol/disco#info");
	add_feature(q, "http://jabber.org/protocol/caps");
	add_feature(q, "http://jabber.org/protocol/disco#items");
	char ver[32];
	assert_int_equal(caps_ver(q, ver, sizeof(ver)), PL_OK);
	assert_string_equal(ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
	xml_free(q);
}

static struct xml_node *complex_example(void)
{
	struct xml_node *q = disco_query();
	add_identity(q, "client", "pc", "en", "Psi 0.11");
	add_identity(q, "client", "pc", "el", "\xce\xa8 0.11");
	add_feature(q, "http://jabber.org/protocol/caps");
	add_feature(q, "http://jabber.org/protocol/disco#info");
	add_feature(q, "http://jabber.org/protocol/disco#items");
	add_feature(q, "http://jabber.org/protocol/muc");
	struct xml_node *x = xml_add_child(q, "x", NS_XDATA);
	xml_set_attr(x, "type", "result");
	add_field(x, "FORM_TYPE", "hidden",
		  (const char *const[]){ "urn:xmpp:dataforms:softwareinfo", NULL });
	add_field(x, "ip_version", NULL, (const char *const[]){ "ipv6", "ipv4", NULL });
	add_field(x, "os", NULL, (const char *const[]){ "Mac", NULL });
	add_field(x, "os_version", NULL, (const char *const[]){ "10.5.1", NULL });
	add_field(x, "software", NULL, (const char *const[]){ "Psi", NULL });
	add_field(x, "software_version", NULL, (const char *const[]){ "0.11", NULL });
	return q;
}

static void xep0115_5_3_complex_example_with_form(void **state)
{
	(void)state;
	struct xml_node *q = complex_example();
	char ver[32];
	assert_int_equal(caps_ver(q, ver, sizeof(ver)), PL_OK);
	assert_string_equal(ver, "q07IKJEyjvHSyhy//CH0CxmKi8w=");
	xml_free(q);
}

static void xep0115_5_4_duplicates_are_ill_formed(void **state)
{
	(void)state;
	char ver[32];
	struct xml_node *q = disco_query();
	add_identity(q, "server", "im", NULL, "Parley");
	add_feature(q, "urn:xmpp:ping");
	add_feature(q, "urn:xmpp:ping");
	assert_int_equal(caps_ver(q, ver, sizeof(ver)), PL_ERR);
	xml_free(q);
	q = disco_query();
	add_identity(q, "server", "im", NULL, "Parley");
	add_identity(q, "server", "im", NULL, "Parley");
	assert_int_equal(caps_ver(q, ver, sizeof(ver)), PL_ERR);
	xml_free(q);
	/* Two forms of one FORM_TYPE. */
	q = complex_example();
	struct xml_node *x = xml_add_child(q, "x", NS_XDATA);
	add_field(x, "FORM_TYPE", "hidden",
		  (const char *const[]){ "urn:xmpp:dataforms:softwareinfo", NULL });
	assert_int_equal(caps_ver(q, ver, sizeof(ver)), PL_ERR);
	xml_free(q);
	/* Too small an output buffer. */
	q = disco_query();
	add_feature(q, "urn:xmpp:ping");
	assert_int_equal(caps_ver(q, ver, 10), PL_ERR);
	xml_free(q);
}

static void xep0115_5_4_form_without_hidden_form_type_is_ignored(void **state)
{
	(void)state;
	char with[32], without[32];
	struct xml_node *q = disco_query();
	add_identity(q, "client", "pc", NULL, "Exodus 0.9.1");
	add_feature(q, "http://jabber.org/protocol/caps");
	add_feature(q, "http://jabber.org/protocol/disco#info");
	add_feature(q, "http://jabber.org/protocol/disco#items");
	add_feature(q, "http://jabber.org/protocol/muc");
	assert_int_equal(caps_ver(q, without, sizeof(without)), PL_OK);
	struct xml_node *x = xml_add_child(q, "x", NS_XDATA);
	add_field(x, "FORM_TYPE", NULL, (const char *const[]){ "urn:example:form", NULL });
	add_field(x, "a", NULL, (const char *const[]){ "b", NULL });
	assert_int_equal(caps_ver(q, with, sizeof(with)), PL_OK);
	assert_string_equal(with, without);
	assert_string_equal(with, "QgayPKawpkPSDYmwT/WM94uAlu0=");
	xml_free(q);
}

static void xep0115_server_ver_follows_features(void **state)
{
	(void)state;
	const char *host = "caps.example.test";
	assert_null(disco_caps_ver(host));
	disco_add_feature(host, "urn:xmpp:ping");
	char first[32];
	assert_non_null(disco_caps_ver(host));
	snprintf(first, sizeof(first), "%s", disco_caps_ver(host));
	/* The same answer the server gives, hashed independently. */
	struct xml_node *q = disco_query();
	add_identity(q, "server", "im", NULL, "Parley");
	add_feature(q, "urn:xmpp:ping");
	char expect[32];
	assert_int_equal(caps_ver(q, expect, sizeof(expect)), PL_OK);
	assert_string_equal(first, expect);
	disco_add_feature(host, "urn:xmpp:time");
	assert_string_not_equal(disco_caps_ver(host), first);
	disco_remove_feature(host, "urn:xmpp:time");
	assert_string_equal(disco_caps_ver(host), first);
	disco_remove_feature(host, "urn:xmpp:ping");
	xml_free(q);
}

/* ---- XEP-0049 ---- */

static void xep0049_forbidden_namespaces(void **state)
{
	(void)state;
	assert_true(private_ns_forbidden("jabber:client"));
	assert_true(private_ns_forbidden("jabber:server"));
	assert_true(private_ns_forbidden("jabber:iq:private"));
	assert_false(private_ns_forbidden("storage:bookmarks"));
	assert_false(private_ns_forbidden("jabber:iq:privates"));
	assert_false(private_ns_forbidden("exodus:prefs"));
}

/* ---- XEP-0191 ---- */

static void xep0191_6_jid_matching(void **state)
{
	(void)state;
	/* user@domain/resource: only that resource. */
	assert_true(blocking_item_matches("romeo@montague.net/orchard", "romeo@montague.net/orchard"));
	assert_false(blocking_item_matches("romeo@montague.net/orchard", "romeo@montague.net/home"));
	assert_false(blocking_item_matches("romeo@montague.net/orchard", "romeo@montague.net"));
	/* user@domain: any resource, and the bare JID. */
	assert_true(blocking_item_matches("romeo@montague.net", "romeo@montague.net/orchard"));
	assert_true(blocking_item_matches("romeo@montague.net", "romeo@montague.net"));
	assert_false(blocking_item_matches("romeo@montague.net", "juliet@montague.net"));
	assert_false(blocking_item_matches("romeo@montague.net", "romeo@montague.network"));
	assert_false(blocking_item_matches("romeo@montague.net", "montague.net"));
	/* domain/resource: that JID only. */
	assert_true(blocking_item_matches("montague.net/bot", "montague.net/bot"));
	assert_false(blocking_item_matches("montague.net/bot", "romeo@montague.net/bot"));
	assert_false(blocking_item_matches("montague.net/bot", "montague.net"));
	/* domain: everyone there and the domain itself. */
	assert_true(blocking_item_matches("montague.net", "romeo@montague.net/orchard"));
	assert_true(blocking_item_matches("montague.net", "montague.net"));
	assert_true(blocking_item_matches("montague.net", "montague.net/bot"));
	assert_false(blocking_item_matches("montague.net", "capulet.com"));
	assert_false(blocking_item_matches("montague.net", "romeo@sub.montague.net"));
	/* An '@' inside a resource is not a local part. */
	assert_false(blocking_item_matches("romeo@montague.net", "montague.net/romeo@montague.net"));
	assert_true(blocking_item_matches("montague.net/a@b", "montague.net/a@b"));
}

/* ---- stored elements ---- */

static void stored_elements_round_trip(void **state)
{
	(void)state;
	struct xml_node *s = xml_new("storage", "storage:bookmarks");
	struct xml_node *c = xml_add_child(s, "conference", NULL);
	xml_set_attr(c, "jid", "council@conference.example.test");
	xml_set_attr(c, "name", "It's <hot> & \"loud\"");
	xml_add_text(xml_add_child(c, "nick", NULL), "Puck", 4);
	char *text = modstore_xml_text(s);
	struct xml_node *back = modstore_xml_parse(text);
	assert_non_null(back);
	assert_true(xml_is(back, "storage", "storage:bookmarks"));
	struct xml_node *bc = xml_child(back, "conference", "storage:bookmarks");
	assert_non_null(bc);
	assert_string_equal(xml_attr(bc, "name"), "It's <hot> & \"loud\"");
	assert_string_equal(xml_text(xml_child(bc, "nick", NULL)), "Puck");
	char *again = modstore_xml_text(back);
	assert_string_equal(text, again);
	free(text);
	free(again);
	xml_free(s);
	xml_free(back);
	/* Damaged rows come back as nothing, never as a crash. */
	assert_null(modstore_xml_parse(""));
	assert_null(modstore_xml_parse("<a>"));
	assert_null(modstore_xml_parse("<a/><b/>"));
	assert_null(modstore_xml_parse("</stream:stream>"));
	assert_null(modstore_xml_parse("<!DOCTYPE x><a/>"));
}

/* What is stored can be larger than what arrived: a prefix used inside
 * another default namespace is declared again on every element, which is
 * why mod_private measures the stored form, not the stanza. The parser
 * bounds the growth (the declarations count against its limit), so a form
 * that would grow without end is refused rather than stored. */
static char *repeat_prefixed(char *in, size_t cap, const char *ns, int reps)
{
	int len = snprintf(in, cap, "<x xmlns='example:x' xmlns:p='%s'>", ns);
	for (int i = 0; i < reps; i++)
		len += snprintf(in + len, cap - (size_t)len, "<p:a/><b/>");
	snprintf(in + len, cap - (size_t)len, "</x>");
	return in;
}

static void stored_form_can_outgrow_the_stanza(void **state)
{
	(void)state;
	char ns[201];
	memset(ns, 'n', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = '\0';
	char in[4096];
	repeat_prefixed(in, sizeof(in), ns, 3);
	struct xml_node *el = modstore_xml_parse(in);
	assert_non_null(el);
	char *text = modstore_xml_text(el);
	assert_true(strlen(text) > 2 * strlen(in));
	free(text);
	xml_free(el);
	repeat_prefixed(in, sizeof(in), ns, 100);
	assert_null(modstore_xml_parse(in));
}

/* ---- the quota of modstore_exec_capped, on a real store ---- */

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;

struct q_result {
	bool done;
	int status;
	long changes;
	char first[32];
};

static void q_done(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct q_result *r = arg;
	pthread_mutex_lock(&q_mu);
	r->status = status;
	r->changes = changes;
	snprintf(r->first, sizeof(r->first), "%s", nrows ? rows[0] : "");
	r->done = true;
	pthread_cond_broadcast(&q_cv);
	pthread_mutex_unlock(&q_mu);
}

static void q_wait(struct q_result *r)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&q_mu);
	while (!r->done && pthread_cond_timedwait(&q_cv, &q_mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&q_mu);
	assert_true(r->done);
}

#define Q_COUNT "SELECT COUNT(*) FROM private_storage WHERE host = ?1 AND username = ?2"

/* Removes the namespaces in del and stores those in put (xml 'v<ns>') for
 * user under max, all in one job; returns its status. */
static int q_change(const char *user, const char *const *del, size_t ndel,
		    const char *const *put, size_t nput, long max)
{
	const char *dparams[16 * 3], *pparams[16 * 4];
	char vals[16][40];
	for (size_t i = 0; i < ndel; i++) {
		dparams[i * 3] = "localhost";
		dparams[i * 3 + 1] = user;
		dparams[i * 3 + 2] = del[i];
	}
	for (size_t i = 0; i < nput; i++) {
		snprintf(vals[i], sizeof(vals[i]), "v%s", put[i]);
		pparams[i * 4] = "localhost";
		pparams[i * 4 + 1] = user;
		pparams[i * 4 + 2] = put[i];
		pparams[i * 4 + 3] = vals[i];
	}
	const struct modstore_rows stmts[] = {
		{ "DELETE FROM private_storage WHERE host = ?1 AND username = ?2"
		  " AND namespace = ?3", dparams, 3, ndel },
		{ "INSERT OR REPLACE INTO private_storage (host, username, namespace, xml)"
		  " VALUES (?1, ?2, ?3, ?4)", pparams, 4, nput },
	};
	const char *who[] = { "localhost", user };
	struct q_result r = { 0 };
	modstore_exec_capped(stmts, 2, Q_COUNT, who, 2, max, q_done, &r);
	q_wait(&r);
	return r.status;
}

static int q_store(const char *user, const char *const *nss, size_t n, long max)
{
	return q_change(user, NULL, 0, nss, n, max);
}

static int q_count(const char *user)
{
	const char *params[] = { "localhost", user };
	struct q_result r = { 0 };
	modstore_exec(Q_COUNT, params, 2, 1, q_done, &r);
	q_wait(&r);
	assert_int_equal(r.status, PL_OK);
	return atoi(r.first);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void modstore_capped_set_is_all_or_nothing(void **state)
{
	(void)state;
	char err[256];
	if (store_open(store_dir, 2, err, sizeof(err)) != PL_OK)
		fail_msg("store_open: %s", err);
	const char *ab[] = { "a", "b" }, *cd[] = { "c", "d" }, *ac[] = { "a", "c" };
	const char *b[] = { "b" }, *d[] = { "d" }, *e[] = { "e" }, *ef[] = { "e", "f" };

	assert_int_equal(q_store("u", ab, 2, 3), PL_OK);
	/* two new namespaces where one fits: neither is stored */
	assert_int_equal(q_store("u", cd, 2, 3), PL_DECLINED);
	assert_int_equal(q_count("u"), 2);
	/* one replaced, one new: item number 3 fits */
	assert_int_equal(q_store("u", ac, 2, 3), PL_OK);
	assert_int_equal(q_count("u"), 3);
	assert_int_equal(q_store("u", d, 1, 3), PL_DECLINED);
	/* replacing always works at the limit, and above a lowered one */
	assert_int_equal(q_store("u", b, 1, 3), PL_OK);
	assert_int_equal(q_store("u", b, 1, 1), PL_OK);
	assert_int_equal(q_store("u", e, 1, 1), PL_DECLINED);
	assert_int_equal(q_count("u"), 3);
	/* a removal in the same change makes room, all or nothing */
	assert_int_equal(q_change("u", ab, 1, d, 1, 3), PL_OK);
	assert_int_equal(q_count("u"), 3);
	assert_int_equal(q_change("u", b, 1, ef, 2, 3), PL_DECLINED);
	assert_int_equal(q_count("u"), 3);
	assert_int_equal(q_change("u", b, 1, e, 1, 3), PL_OK);
	/* the quota is per user */
	assert_int_equal(q_store("v", cd, 2, 3), PL_OK);
	assert_int_equal(q_count("v"), 2);
}

/* Also after a failed assertion, so no database is left behind. */
static int store_teardown(void **state)
{
	(void)state;
	store_close();
	nftw(store_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options_unknown_key_names_file_line),
		cmocka_unit_test(options_bad_values_name_file_line),
		cmocka_unit_test(options_valid_values_are_read_back),
		cmocka_unit_test(options_default_set_has_everything_but_register),
		cmocka_unit_test(xep0157_server_info_checked),
		cmocka_unit_test(xep0202_utc_is_xep0082_datetime),
		cmocka_unit_test(xep0202_tzo_is_signed_hours_minutes),
		cmocka_unit_test(xep0054_vcard_size_limit),
		cmocka_unit_test(xep0115_5_2_simple_example),
		cmocka_unit_test(xep0115_5_3_complex_example_with_form),
		cmocka_unit_test(xep0115_5_4_duplicates_are_ill_formed),
		cmocka_unit_test(xep0115_5_4_form_without_hidden_form_type_is_ignored),
		cmocka_unit_test(xep0115_server_ver_follows_features),
		cmocka_unit_test(xep0049_forbidden_namespaces),
		cmocka_unit_test(xep0191_6_jid_matching),
		cmocka_unit_test(stored_elements_round_trip),
		cmocka_unit_test(stored_form_can_outgrow_the_stanza),
		cmocka_unit_test_teardown(modstore_capped_set_is_all_or_nothing, store_teardown),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
