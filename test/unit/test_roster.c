/*
 * Unit tests of the presence subscription state machine: RFC 6121
 * Appendix A, every row of the eight tables, plus pre-approval (§3.4);
 * and of the roster size limit as the cache counts it.
 *
 * States are written as the RFC names them; "+P" marks a pre-approval.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pl.h"
#include "xmpp/roster.h"

enum st {
	NONE, NONE_PO, NONE_PI, NONE_POPI, TO, TO_PI, FROM, FROM_PO, BOTH,
	NONE_P, NONE_PO_P, TO_P,
	NSTATES
};

static const char *const st_names[NSTATES] = {
	"None", "None + Pending Out", "None + Pending In", "None + Pending Out+In",
	"To", "To + Pending In", "From", "From + Pending Out", "Both",
	"None +P", "None + Pending Out +P", "To +P",
};

static struct roster_state mk(enum st s)
{
	struct roster_state r = { 0 };
	switch (s) {
	case NONE: break;
	case NONE_PO: r.ask = true; break;
	case NONE_PI: r.pending_in = true; break;
	case NONE_POPI: r.ask = r.pending_in = true; break;
	case TO: r.sub = ROSTER_SUB_TO; break;
	case TO_PI: r.sub = ROSTER_SUB_TO; r.pending_in = true; break;
	case FROM: r.sub = ROSTER_SUB_FROM; break;
	case FROM_PO: r.sub = ROSTER_SUB_FROM; r.ask = true; break;
	case BOTH: r.sub = ROSTER_SUB_TO | ROSTER_SUB_FROM; break;
	case NONE_P: r.approved = true; break;
	case NONE_PO_P: r.ask = r.approved = true; break;
	case TO_P: r.sub = ROSTER_SUB_TO; r.approved = true; break;
	case NSTATES: break;
	}
	return r;
}

static bool same(struct roster_state a, struct roster_state b)
{
	return a.sub == b.sub && a.ask == b.ask && a.pending_in == b.pending_in &&
	       a.approved == b.approved;
}

struct row {
	enum st from;
	enum st to;
	bool forward;       /* route (outbound) / deliver (inbound) */
	bool auto_reply;    /* inbound subscribe only */
};

static void check_table(const char *what, const struct row *rows, size_t n, bool outbound,
			enum roster_subtype t)
{
	for (size_t i = 0; i < n; i++) {
		struct roster_state cur = mk(rows[i].from);
		struct roster_verdict v;
		if (outbound)
			roster_sub_outbound(&cur, t, &v);
		else
			roster_sub_inbound(&cur, t, &v);
		char msg[160];
		snprintf(msg, sizeof(msg), "%s in state %s", what, st_names[rows[i].from]);
		if (!same(v.next, mk(rows[i].to)))
			fail_msg("%s: expected %s", msg, st_names[rows[i].to]);
		if (v.forward != rows[i].forward)
			fail_msg("%s: forward should be %d", msg, rows[i].forward);
		if (v.auto_reply != rows[i].auto_reply)
			fail_msg("%s: auto-reply should be %d", msg, rows[i].auto_reply);
		if (v.changed != !same(cur, v.next))
			fail_msg("%s: 'changed' is wrong", msg);
	}
}

/* A.2.1: the user's server routes a subscribe in every state (so a
 * contact's server that lost its state hears of it again). */
static void rfc6121_a_2_1_outbound_subscribe(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE_PO, true, false },
		{ NONE_PO, NONE_PO, true, false },
		{ NONE_PI, NONE_POPI, true, false },
		{ NONE_POPI, NONE_POPI, true, false },
		{ TO, TO, true, false },
		{ TO_PI, TO_PI, true, false },
		{ FROM, FROM_PO, true, false },
		{ FROM_PO, FROM_PO, true, false },
		{ BOTH, BOTH, true, false },
		{ NONE_P, NONE_PO_P, true, false },
		{ TO_P, TO_P, true, false },
	};
	check_table("outbound subscribe", rows, PL_ARRAY_LEN(rows), true, ROSTER_SUBSCRIBE);
}

static void rfc6121_a_2_2_outbound_unsubscribe(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE, true, false },
		{ NONE_PO, NONE, true, false },
		{ NONE_PI, NONE_PI, true, false },
		{ NONE_POPI, NONE_PI, true, false },
		{ TO, NONE, true, false },
		{ TO_PI, NONE_PI, true, false },
		{ FROM, FROM, true, false },
		{ FROM_PO, FROM, true, false },
		{ BOTH, FROM, true, false },
		{ TO_P, NONE_P, true, false },
	};
	check_table("outbound unsubscribe", rows, PL_ARRAY_LEN(rows), true, ROSTER_UNSUBSCRIBE);
}

/* A.2.3 with §3.4: where the RFC says "no state change" for lack of a
 * pending request, a server that supports pre-approval records one and
 * does not route the stanza. */
static void rfc6121_a_2_3_outbound_subscribed_and_3_4_preapproval(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE_P, false, false },
		{ NONE_PO, NONE_PO_P, false, false },
		{ NONE_PI, FROM, true, false },
		{ NONE_POPI, FROM_PO, true, false },
		{ TO, TO_P, false, false },
		{ TO_PI, BOTH, true, false },
		{ FROM, FROM, false, false },
		{ FROM_PO, FROM_PO, false, false },
		{ BOTH, BOTH, false, false },
		{ NONE_P, NONE_P, false, false },
		{ TO_P, TO_P, false, false },
	};
	check_table("outbound subscribed", rows, PL_ARRAY_LEN(rows), true, ROSTER_SUBSCRIBED);
}

/* A.2.4, and §3.4's cancelling of a pre-approval (not routed: the contact
 * never knew of it). */
static void rfc6121_a_2_4_outbound_unsubscribed(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE, false, false },
		{ NONE_PO, NONE_PO, false, false },
		{ NONE_PI, NONE, true, false },
		{ NONE_POPI, NONE_PO, true, false },
		{ TO, TO, false, false },
		{ TO_PI, TO, true, false },
		{ FROM, NONE, true, false },
		{ FROM_PO, NONE_PO, true, false },
		{ BOTH, TO, true, false },
		{ NONE_P, NONE, false, false },
		{ NONE_PO_P, NONE_PO, false, false },
		{ TO_P, TO, false, false },
	};
	check_table("outbound unsubscribed", rows, PL_ARRAY_LEN(rows), true, ROSTER_UNSUBSCRIBED);
}

/* A.3.1: delivered only when it creates a pending request; a contact that
 * already has 'from' gets 'subscribed' from the server; a pre-approval is
 * used up without asking the user (§3.4). */
static void rfc6121_a_3_1_inbound_subscribe(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE_PI, true, false },
		{ NONE_PO, NONE_POPI, true, false },
		{ NONE_PI, NONE_PI, false, false },
		{ NONE_POPI, NONE_POPI, false, false },
		{ TO, TO_PI, true, false },
		{ TO_PI, TO_PI, false, false },
		{ FROM, FROM, false, true },
		{ FROM_PO, FROM_PO, false, true },
		{ BOTH, BOTH, false, true },
		{ NONE_P, FROM, false, true },
		{ NONE_PO_P, FROM_PO, false, true },
		{ TO_P, BOTH, false, true },
	};
	check_table("inbound subscribe", rows, PL_ARRAY_LEN(rows), false, ROSTER_SUBSCRIBE);
}

static void rfc6121_a_3_2_inbound_unsubscribe(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE, false, false },
		{ NONE_PO, NONE_PO, false, false },
		{ NONE_PI, NONE, true, false },
		{ NONE_POPI, NONE_PO, true, false },
		{ TO, TO, false, false },
		{ TO_PI, TO, true, false },
		{ FROM, NONE, true, false },
		{ FROM_PO, NONE_PO, true, false },
		{ BOTH, TO, true, false },
	};
	check_table("inbound unsubscribe", rows, PL_ARRAY_LEN(rows), false, ROSTER_UNSUBSCRIBE);
}

static void rfc6121_a_3_3_inbound_subscribed(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE, false, false },
		{ NONE_PO, TO, true, false },
		{ NONE_PI, NONE_PI, false, false },
		{ NONE_POPI, TO_PI, true, false },
		{ TO, TO, false, false },
		{ TO_PI, TO_PI, false, false },
		{ FROM, FROM, false, false },
		{ FROM_PO, BOTH, true, false },
		{ BOTH, BOTH, false, false },
		{ NONE_PO_P, TO_P, true, false },
	};
	check_table("inbound subscribed", rows, PL_ARRAY_LEN(rows), false, ROSTER_SUBSCRIBED);
}

static void rfc6121_a_3_4_inbound_unsubscribed(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ NONE, NONE, false, false },
		{ NONE_PO, NONE, true, false },
		{ NONE_PI, NONE_PI, false, false },
		{ NONE_POPI, NONE_PI, true, false },
		{ TO, NONE, true, false },
		{ TO_PI, NONE_PI, true, false },
		{ FROM, FROM, false, false },
		{ FROM_PO, FROM, true, false },
		{ BOTH, FROM, true, false },
	};
	check_table("inbound unsubscribed", rows, PL_ARRAY_LEN(rows), false, ROSTER_UNSUBSCRIBED);
}

/* A full cycle between two servers' views: each side's outbound verdict
 * feeds the other's inbound table, ending where RFC 6121 §3 says. */
static void rfc6121_3_full_cycle_both_sides_agree(void **state)
{
	(void)state;
	struct roster_state user = { 0 }, contact = { 0 };
	struct roster_verdict v;

	roster_sub_outbound(&user, ROSTER_SUBSCRIBE, &v);      /* user asks */
	user = v.next;
	assert_true(v.forward);
	roster_sub_inbound(&contact, ROSTER_SUBSCRIBE, &v);
	contact = v.next;
	assert_true(v.forward && contact.pending_in);
	roster_sub_outbound(&contact, ROSTER_SUBSCRIBED, &v);  /* contact approves */
	contact = v.next;
	assert_true(v.forward);
	roster_sub_inbound(&user, ROSTER_SUBSCRIBED, &v);
	user = v.next;
	assert_int_equal(user.sub, ROSTER_SUB_TO);
	assert_int_equal(contact.sub, ROSTER_SUB_FROM);
	assert_false(user.ask);
	assert_false(contact.pending_in);

	roster_sub_outbound(&user, ROSTER_UNSUBSCRIBE, &v);    /* user leaves */
	user = v.next;
	roster_sub_inbound(&contact, ROSTER_UNSUBSCRIBE, &v);
	contact = v.next;
	assert_true(v.forward);
	assert_int_equal(user.sub, 0);
	assert_int_equal(contact.sub, 0);

	/* a second, stray unsubscribed changes nothing and is not delivered */
	roster_sub_inbound(&user, ROSTER_UNSUBSCRIBED, &v);
	assert_false(v.changed);
	assert_false(v.forward);
}

static void names_round_trip_and_reject_others(void **state)
{
	(void)state;
	static const char *const subs[] = { "none", "to", "from", "both" };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(roster_sub_parse(subs[i]), i);
		assert_string_equal(roster_sub_name((uint8_t)i), subs[i]);
	}
	assert_int_equal(roster_sub_name(ROSTER_SUB_TO | ROSTER_SUB_FROM)[0], 'b');
	assert_int_equal(roster_sub_parse("remove"), -1);
	assert_int_equal(roster_sub_parse(NULL), -1);
	assert_int_equal(roster_subtype_parse("subscribe"), ROSTER_SUBSCRIBE);
	assert_int_equal(roster_subtype_parse("unsubscribed"), ROSTER_UNSUBSCRIBED);
	assert_string_equal(roster_subtype_name(ROSTER_UNSUBSCRIBE), "unsubscribe");
	assert_int_equal(roster_subtype_parse("probe"), -1);
	assert_int_equal(roster_subtype_parse("Subscribe"), -1);
	assert_int_equal(roster_subtype_parse(""), -1);
	assert_int_equal(roster_subtype_parse(NULL), -1);
}

/* ---- the roster size limit (mod_roster max_items) ---- */

static struct roster_item *add(struct roster_user *u, const char *jid, bool in_roster)
{
	struct roster_item *it = roster_item_add(u, jid);
	it->in_roster = in_roster;
	it->st.pending_in = !in_roster;
	return it;
}

static void roster_limit_counts_items_and_requests_apart(void **state)
{
	(void)state;
	struct roster_user u = { 0 };

	assert_true(roster_fits(&u, "a@example.test", true, 3));
	assert_true(roster_fits(&u, "a@example.test", false, 3));
	add(&u, "a@example.test", true);
	add(&u, "b@example.test", true);
	assert_true(roster_fits(&u, "c@example.test", true, 3));   /* item number 3 */
	add(&u, "c@example.test", true);
	/* item number max+1 is refused, updating an item is not */
	assert_false(roster_fits(&u, "d@example.test", true, 3));
	assert_true(roster_fits(&u, "b@example.test", true, 3));
	assert_true(roster_fits(&u, "b@example.test", false, 3));
	/* requests from strangers have their own count */
	assert_true(roster_fits(&u, "s1@example.test", false, 3));
	add(&u, "s1@example.test", false);
	add(&u, "s2@example.test", false);
	add(&u, "s3@example.test", false);
	assert_false(roster_fits(&u, "s4@example.test", false, 3));
	assert_true(roster_fits(&u, "s2@example.test", false, 3));   /* asked again */
	/* taking a request into the full roster makes an item */
	assert_false(roster_fits(&u, "s2@example.test", true, 3));
	/* a removal makes room */
	roster_item_remove(&u, roster_find(&u, "a@example.test"));
	assert_true(roster_fits(&u, "d@example.test", true, 3));
	assert_true(roster_fits(&u, "s2@example.test", true, 3));
	/* above a lowered limit: existing items still update, nothing is added */
	assert_true(roster_fits(&u, "c@example.test", true, 1));
	assert_false(roster_fits(&u, "d@example.test", true, 1));
	assert_false(roster_fits(&u, "s4@example.test", false, 1));
	while (u.n)
		roster_item_remove(&u, u.items[0]);
	free(u.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc6121_a_2_1_outbound_subscribe),
		cmocka_unit_test(rfc6121_a_2_2_outbound_unsubscribe),
		cmocka_unit_test(rfc6121_a_2_3_outbound_subscribed_and_3_4_preapproval),
		cmocka_unit_test(rfc6121_a_2_4_outbound_unsubscribed),
		cmocka_unit_test(rfc6121_a_3_1_inbound_subscribe),
		cmocka_unit_test(rfc6121_a_3_2_inbound_unsubscribe),
		cmocka_unit_test(rfc6121_a_3_3_inbound_subscribed),
		cmocka_unit_test(rfc6121_a_3_4_inbound_unsubscribed),
		cmocka_unit_test(rfc6121_3_full_cycle_both_sides_agree),
		cmocka_unit_test(names_round_trip_and_reject_others),
		cmocka_unit_test(roster_limit_counts_items_and_requests_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
