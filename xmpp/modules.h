/*
 * modules.h - what the basic server modules (mod_version, mod_time,
 * mod_last, mod_vcard, mod_private, mod_blocking, mod_register, mod_caps,
 * mod_ping's server pings, mod_disco's contact addresses) share: a table
 * of typed options checked with file:line errors, one storage job shape,
 * mod_last's record of last logouts (presence answers probes with it), and
 * their pure pieces, exported so the unit tests can reach them.
 *
 * Option tables are read on the main thread (config check, module start).
 * modstore jobs may be submitted from any shard; done() runs back on it.
 */
#ifndef PL_XMPP_MODULES_H
#define PL_XMPP_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct c2s;
struct cfg_node;
struct xml_node;

#define NS_VERSION "jabber:iq:version"
#define NS_TIME "urn:xmpp:time"
#define NS_LAST "jabber:iq:last"
#define NS_VCARD "vcard-temp"
#define NS_PRIVATE "jabber:iq:private"
#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"
#define NS_REGISTER "jabber:iq:register"
#define NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_XDATA "jabber:x:data"
#define NS_SERVERINFO "http://jabber.org/network/serverinfo"

/* ---- options (modopt.c) ---- */

enum modopt_type {
	MODOPT_BOOL,
	MODOPT_INT,        /* min..max */
	MODOPT_SIZE,       /* bytes, "64k"; min..max */
	MODOPT_ENUM,       /* one of choices */
	MODOPT_TIMEOUT,    /* seconds min..max, or "infinity" */
	MODOPT_CUSTOM,     /* checked by the module itself */
};

struct modopt {
	const char *name;
	enum modopt_type type;
	long min, max;
	const char *const *choices;   /* MODOPT_ENUM, NULL-terminated */
};

/* Every key of opts (NULL: none given) must be in spec (ended by a NULL
 * name) and have a valid value; errors read "FILE:LINE: module 'NAME': ...". */
int modopt_check(const char *module, const struct cfg_node *opts, const struct modopt *spec,
		 char *err, size_t errlen);
/* Write "FILE:LINE: " + message into err (the config's file name is known
 * only to the config loader, so it is borrowed through a typed reader). */
int modopt_fail(int line, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Readers for a module's start(): the option's value or the default. Only
 * after modopt_check accepted opts. A MODOPT_TIMEOUT of "infinity" is -1. */
bool modopt_bool(const struct cfg_node *opts, const char *name, bool def);
long modopt_int(const struct cfg_node *opts, const char *name, long def);
size_t modopt_size(const struct cfg_node *opts, const char *name, size_t def);
const char *modopt_str(const struct cfg_node *opts, const char *name, const char *def);

/* ---- storage (modstore.c) ---- */

/* One statement run for each row of parameters, all in one transaction
 * (several items blocked at once). For a SELECT, the first column of every
 * result row comes back (NULL as ""); changes counts the rows written.
 * sql must be a string literal (the store caches statements by address). */
typedef void modstore_done_fn(void *arg, int status, char **rows, size_t nrows,
			      long changes);

void modstore_exec(const char *sql, const char *const *params, size_t ncols, size_t nrows,
		   modstore_done_fn *done, void *arg);
/* Statements run one after the other in one transaction under a
 * per-user quota: count_sql (a literal too; count_params are its one row)
 * counts the user's rows before and after. If they rose above max,
 * everything is rolled back and done() gets PL_DECLINED; replacing or
 * removing rows never counts against it. A statement without rows is
 * skipped. */
struct modstore_rows {
	const char *sql;
	const char *const *params;
	size_t ncols, nrows;
};

void modstore_exec_capped(const struct modstore_rows *stmts, size_t nstmts,
			  const char *count_sql, const char *const *count_params,
			  size_t ncount, long max, modstore_done_fn *done, void *arg);

/* An element as stored (standalone XML, every namespace declared), and
 * back: NULL unless text is exactly one well-formed element. malloc'd /
 * a new tree. */
char *modstore_xml_text(const struct xml_node *el);
struct xml_node *modstore_xml_parse(const char *text);

/* ---- last logout (mod_last.c, presence.c), the user's home shard ---- */

/* When user@host's last session closed (0: never, or mod_last is off for
 * host) and the status text of the unavailable presence it ended with ("":
 * none). fn runs at once when the shard knows, else when storage answered;
 * status is PL_ERR if storage failed. The text is fn's to copy, not keep. */
typedef void last_logout_fn(void *arg, int status, time_t when, const char *text);
void last_logout_get(const char *host, const char *user, last_logout_fn *fn, void *arg);
/* The status text of the unavailable presence session s sent last, NULL if
 * none or it was available again since. Until mod_roster's
 * c2s_session_closed handler (priority 50) has run. */
const char *presence_gone_status(const struct c2s *s);

/* ---- pure pieces ---- */

/* XEP-0082 DateTime in UTC ("2006-12-19T17:58:35Z") and the XEP-0202 zone
 * offset for gmtoff seconds east of UTC ("+01:00", "-05:30"; UTC itself is
 * "+00:00", never "Z"). */
void time_format_utc(time_t t, char out[21]);
void time_format_tzo(long gmtoff, char out[7]);
/* XEP-0203: append <delay xmlns='urn:xmpp:delay'/> with exactly from and
 * stamp (XEP-0082 UTC, as time_format_utc writes it); returns it.
 * (presence.c, for everything the server hands out late.) */
struct xml_node *stanza_add_delay(struct xml_node *el, const char *from, const char *stamp);

/* XEP-0115 §5.1: the verification string of a disco#info <query/>
 * (identities, features, XEP-0128 forms) hashed with SHA-1, base64 into out
 * (at least 29 bytes). PL_ERR if the query breaks §5.4's rules (a
 * duplicate identity, feature or FORM_TYPE); a form whose FORM_TYPE is
 * missing or not hidden is left out, as §5.4 says. */
int caps_ver(const struct xml_node *query, char *out, size_t outlen);
#define CAPS_NODE "https://parley.example/caps"

/* A vCard fits the store when its serialized form is at most max bytes. */
bool vcard_fits(const struct xml_node *vcard, size_t max, size_t *size);

/* XEP-0049: namespaces private storage refuses (not-acceptable). */
bool private_ns_forbidden(const char *ns);

/* XEP-0191 §6 (privacy-list JID matching): does an item of the block
 * list (bare, full, domain or domain/resource) cover the JID who? */
bool blocking_item_matches(const char *item, const char *who);

#endif
