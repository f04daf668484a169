/*
 * roster_sub.c - the presence subscription state machine of RFC 6121
 * Appendix A, for one (user, contact) pair, as pure functions: the tables
 * A.2.1-A.2.4 (the user's server sending) and A.3.1-A.3.4 (the user's
 * server receiving), plus pre-approval (§3.4). roster.c turns a verdict
 * into storage writes, roster pushes and stanzas.
 */
#include <string.h>

#include "xmpp/roster.h"

static const char *const subtype_names[] = {
	[ROSTER_SUBSCRIBE] = "subscribe",
	[ROSTER_SUBSCRIBED] = "subscribed",
	[ROSTER_UNSUBSCRIBE] = "unsubscribe",
	[ROSTER_UNSUBSCRIBED] = "unsubscribed",
};

static const char *const sub_names[] = { "none", "to", "from", "both" };

int roster_subtype_parse(const char *type)
{
	if (!type)
		return -1;
	for (int i = 0; i < (int)(sizeof(subtype_names) / sizeof(subtype_names[0])); i++)
		if (strcmp(type, subtype_names[i]) == 0)
			return i;
	return -1;
}

const char *roster_subtype_name(enum roster_subtype t)
{
	return subtype_names[t];
}

const char *roster_sub_name(uint8_t sub)
{
	return sub_names[sub & 3];
}

int roster_sub_parse(const char *s)
{
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, sub_names[i]) == 0)
			return i;
	return -1;
}

static bool state_eq(const struct roster_state *a, const struct roster_state *b)
{
	return a->sub == b->sub && a->ask == b->ask && a->pending_in == b->pending_in &&
	       a->approved == b->approved;
}

static void verdict_init(struct roster_verdict *v, const struct roster_state *cur)
{
	memset(v, 0, sizeof(*v));
	v->next = *cur;
}

void roster_sub_outbound(const struct roster_state *cur, enum roster_subtype t,
			 struct roster_verdict *v)
{
	struct roster_state *n = &v->next;

	verdict_init(v, cur);
	switch (t) {
	case ROSTER_SUBSCRIBE:
		/* A.2.1: a request is pending unless one already is or the
		 * subscription exists. The stanza goes out in every state, so
		 * a contact's server that lost its state learns it again. */
		if (!(cur->sub & ROSTER_SUB_TO))
			n->ask = true;
		v->forward = true;
		break;
	case ROSTER_UNSUBSCRIBE:
		/* A.2.2: drop 'to' and any pending request. */
		n->sub &= (uint8_t)~ROSTER_SUB_TO;
		n->ask = false;
		v->forward = true;
		break;
	case ROSTER_SUBSCRIBED:
		/* A.2.3: approving a pending request gives the contact 'from';
		 * without one, it is a pre-approval (§3.4), which stays on the
		 * user's server. */
		if (cur->sub & ROSTER_SUB_FROM)
			break;
		if (cur->pending_in) {
			n->sub |= ROSTER_SUB_FROM;
			n->pending_in = false;
			n->approved = false;
			v->forward = true;
		} else {
			n->approved = true;
		}
		break;
	case ROSTER_UNSUBSCRIBED:
		/* A.2.4: deny a pending request or cancel 'from'; either way
		 * the contact is told. Without them it only withdraws a
		 * pre-approval, which the contact never knew about. */
		if (cur->pending_in || (cur->sub & ROSTER_SUB_FROM)) {
			n->sub &= (uint8_t)~ROSTER_SUB_FROM;
			n->pending_in = false;
			v->forward = true;
		}
		n->approved = false;
		break;
	}
	v->changed = !state_eq(cur, n);
}

void roster_sub_inbound(const struct roster_state *cur, enum roster_subtype t,
			struct roster_verdict *v)
{
	struct roster_state *n = &v->next;

	verdict_init(v, cur);
	switch (t) {
	case ROSTER_SUBSCRIBE:
		/* A.3.1 */
		if (cur->sub & ROSTER_SUB_FROM) {
			v->auto_reply = true;      /* already subscribed: say so again */
		} else if (cur->approved) {
			/* §3.4: pre-approved, so approved now without asking */
			n->sub |= ROSTER_SUB_FROM;
			n->approved = false;
			v->auto_reply = true;
		} else if (!cur->pending_in) {
			n->pending_in = true;
			v->forward = true;
		}
		break;
	case ROSTER_UNSUBSCRIBE:
		/* A.3.2: the contact no longer wants the user's presence */
		if (cur->pending_in || (cur->sub & ROSTER_SUB_FROM)) {
			n->sub &= (uint8_t)~ROSTER_SUB_FROM;
			n->pending_in = false;
			v->forward = true;
		}
		break;
	case ROSTER_SUBSCRIBED:
		/* A.3.3: only an answer to a request the user made counts */
		if (cur->ask) {
			n->sub |= ROSTER_SUB_TO;
			n->ask = false;
			v->forward = true;
		}
		break;
	case ROSTER_UNSUBSCRIBED:
		/* A.3.4: denied, or an existing subscription cancelled */
		if (cur->ask || (cur->sub & ROSTER_SUB_TO)) {
			n->sub &= (uint8_t)~ROSTER_SUB_TO;
			n->ask = false;
			v->forward = true;
		}
		break;
	}
	v->changed = !state_eq(cur, n);
}
