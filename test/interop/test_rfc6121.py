"""RFC 6121 with real clients against parleyd: rosters (section 2) with
pushes and versioning (XEP-0237), presence subscriptions (section 3 and
Appendix A) between users on different shards, pre-approval (3.4),
pending requests re-delivered at login, presence (section 4): probes and
broadcast at login and logout, replayed presence marked with XEP-0203
<delay/>, directed presence; and the error and edge cases the RFC names.

Two independent client stacks: slixmpp (through the harness) and aioxmpp.
Each test makes its own accounts; a conversation's two users live on
different shards (the server runs two).

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_rfc6121.py
"""

import time

import parley
from parley import test, main, xmpp_disconnect
from xmpp_raw import RawStream, tag
from im_clients import (THREADS, PASSWORD, NS_ROSTER, users_on_two_shards, wait_until,
                        sync, settle, im_session, iq_error, send_raw_iq, roster_get,
                        roster_set, pushes, wait_push, presences, wait_presence, delay_of,
                        assert_delay, quiet, aio_connect, aio_disconnect, aio_close_all,
                        aio_jid, aio_items, home_shard)

NS_ROSTERVER = 'urn:xmpp:features:rosterver'
NS_PREAPPROVAL = 'urn:xmpp:features:pre-approval'


def jid(srv, user):
    return srv.jid(user)


def state(c, contact):
    """The contact's item in c's roster (a fresh roster get), or None."""
    _, items = roster_get(c)
    return items.get(contact)


def sub(item):
    """(subscription, ask, approved) of an item dict, None for no item."""
    if item is None:
        return None
    return item['subscription'], item['ask'], item['approved']


# ---------------------------------------------------------- section 2

@test
def rfc6121_2_roster_set_pushed_to_interested_resources_then_removed(srv):
    a, b = users_on_two_shards(srv, 'rost')
    r1 = im_session(srv, a, 'one', roster=True)
    r2 = im_session(srv, a, 'two', roster=True)
    r3 = im_session(srv, a, 'three')          # never asked for the roster
    contact = jid(srv, b)

    roster_set(r1, contact, name='Bee', groups=['Friends', 'Caf\u00e9'])
    for r in (r1, r2):
        it = wait_push(r, contact, subscription='none')
        assert it == {'jid': contact, 'subscription': 'none', 'ask': None, 'approved': None,
                      'name': 'Bee', 'groups': ['Caf\u00e9', 'Friends']}, it
    sync(r3)
    quiet(r3, r3.got_pushes)
    ver, items = roster_get(r3)
    assert items == {contact: pushes(r1)[0][1]}, items

    # an update replaces name and groups; a push for each interested resource
    roster_set(r2, contact, name='B', groups=['Work'])
    for r in (r1, r2):
        wait_push(r, contact, name='B')
    assert state(r1, contact)['groups'] == ['Work']

    # section 2.5: remove, pushed as subscription='remove'
    roster_set(r1, contact, remove=True)
    for r in (r1, r2):
        wait_push(r, contact, subscription='remove')
    assert state(r2, contact) is None
    versions = [int(v) for v, _ in pushes(r1)]
    assert versions == sorted(versions) and len(set(versions)) == 3, versions


@test
def rfc6121_2_3_3_roster_set_errors(srv):
    a, b = users_on_two_shards(srv, 'rerr')
    c = im_session(srv, a, roster=True)
    contact = jid(srv, b)
    two = ("<query xmlns='%s'><item jid='%s'/><item jid='x@%s'/></query>"
           % (NS_ROSTER, contact, srv.host))
    assert iq_error(c, 'set', two) == ('modify', 'bad-request')
    dup = ("<query xmlns='%s'><item jid='%s'><group>G</group><group>G</group></item></query>"
           % (NS_ROSTER, contact))
    assert iq_error(c, 'set', dup) == ('modify', 'bad-request')
    empty = ("<query xmlns='%s'><item jid='%s'><group></group></item></query>"
             % (NS_ROSTER, contact))
    assert iq_error(c, 'set', empty) == ('modify', 'not-acceptable')
    long_name = "<query xmlns='%s'><item jid='%s' name='%s'/></query>" % (
        NS_ROSTER, contact, 'n' * 2000)
    assert iq_error(c, 'set', long_name) == ('modify', 'not-acceptable')
    nojid = "<query xmlns='%s'><item name='x'/></query>" % NS_ROSTER
    assert iq_error(c, 'set', nojid) == ('modify', 'bad-request')
    remove_unknown = ("<query xmlns='%s'><item jid='%s' subscription='remove'/></query>"
                      % (NS_ROSTER, contact))
    assert iq_error(c, 'set', remove_unknown) == ('cancel', 'item-not-found')
    # a client cannot set the subscription state itself (section 2.1.2.5)
    forged = ("<query xmlns='%s'><item jid='%s' subscription='both' ask='subscribe'/></query>"
              % (NS_ROSTER, contact))
    send_raw_iq(c, 'set', forged)
    assert sub(state(c, contact)) == ('none', None, None), state(c, contact)
    assert srv.alive()


@test
def rfc6121_2_1_5_the_roster_of_another_user_is_forbidden(srv):
    a, b = users_on_two_shards(srv, 'forb')
    ca = im_session(srv, a)
    cb = im_session(srv, b, roster=True)
    roster_set(cb, jid(srv, a), name='secret')
    q = "<query xmlns='%s'/>" % NS_ROSTER
    assert iq_error(ca, 'get', q, to=jid(srv, b)) == ('auth', 'forbidden')
    setq = "<query xmlns='%s'><item jid='%s'/></query>" % (NS_ROSTER, jid(srv, a))
    assert iq_error(ca, 'set', setq, to=jid(srv, b)) == ('auth', 'forbidden')
    assert state(cb, jid(srv, a))['name'] == 'secret'


@test
def xep0237_roster_versioning_and_stream_features(srv):
    a, b = users_on_two_shards(srv, 'ver')
    # the features after authentication advertise versioning and
    # pre-approval (RFC 6121 2.6.1, 3.4)
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.starttls()
        reply = s.auth_plain(a, PASSWORD)
        assert reply is not None and reply.tag.endswith('success'), reply
        features = s.restart()
        assert features.find(tag(NS_ROSTERVER, 'ver')) is not None
        assert features.find(tag(NS_PREAPPROVAL, 'sub')) is not None
    c = im_session(srv, a)
    assert 'rosterver' in c.features and 'preapproval' in c.features, c.features
    ver0, items = roster_get(c, ver='')
    assert ver0 is not None and items == {}, (ver0, items)
    # unchanged: an empty result (XEP-0237 4.2)
    assert roster_get(c, ver=ver0) == (None, None)
    roster_set(c, jid(srv, b), name='one')
    wait_push(c, jid(srv, b))
    v1 = pushes(c)[-1][0]
    assert v1 and v1 != ver0, (ver0, v1)
    assert roster_get(c, ver=v1) == (None, None)
    # an old version gets the whole roster with the current version
    ver, items = roster_get(c, ver=ver0)
    assert ver == v1 and list(items) == [jid(srv, b)], (ver, items)
    # so does a version the server never handed out
    ver, items = roster_get(c, ver='bogus')
    assert ver == v1 and list(items) == [jid(srv, b)], (ver, items)


def befriend(srv, ca, cb):
    """Mutual subscription ('both') between two online slixmpp clients."""
    ja, jb = str(ca.boundjid.bare), str(cb.boundjid.bare)
    for x, y, jx, jy in ((ca, cb, ja, jb), (cb, ca, jb, ja)):
        x.send_presence(pto=jy, ptype='subscribe')
        wait_presence(y, jx, 'subscribe')
        y.send_presence(pto=jx, ptype='subscribed')
    wait_push(ca, jb, subscription='both')
    wait_push(cb, ja, subscription='both')


# ---------------------------------------------------------- section 3

@test
def rfc6121_3_subscription_cycle_across_shards_with_exact_states(srv):
    a, b = users_on_two_shards(srv, 'cyc')
    assert home_shard(jid(srv, a)) != home_shard(jid(srv, b))
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)

    # 3.1: a asks b
    ca.send_presence(pto=jb, ptype='subscribe')
    wait_push(ca, jb, subscription='none', ask='subscribe')
    req = wait_presence(cb, ja, 'subscribe')
    assert req.xml.get('from') == ja, req      # stamped with the bare JID
    assert state(cb, ja) is None               # a request is not a roster item
    # b approves: b gets 'from', a gets 'to' and then b's presence
    cb.send_presence(pto=ja, ptype='subscribed')
    wait_push(cb, ja, subscription='from')
    wait_push(ca, jb, subscription='to')
    wait_presence(ca, jb, 'subscribed')
    p = wait_presence(ca, jb, 'available')
    assert p.xml.get('from') == srv.jid(b, 'r'), p
    assert sub(state(ca, jb)) == ('to', None, None)
    assert sub(state(cb, ja)) == ('from', None, None)

    # b asks back; a approves: both
    cb.send_presence(pto=ja, ptype='subscribe')
    wait_push(cb, ja, subscription='from', ask='subscribe')
    wait_presence(ca, jb, 'subscribe')
    ca.send_presence(pto=jb, ptype='subscribed')
    wait_push(ca, jb, subscription='both')
    wait_push(cb, ja, subscription='both')
    assert sub(state(ca, jb)) == ('both', None, None)
    assert sub(state(cb, ja)) == ('both', None, None)

    # 3.3: a unsubscribes from b; b's server says b went unavailable to a
    before = len(presences(ca, jb, 'unavailable'))
    ca.send_presence(pto=jb, ptype='unsubscribe')
    wait_push(ca, jb, subscription='from')
    wait_push(cb, ja, subscription='to')
    wait_presence(cb, ja, 'unsubscribe')
    wait_until(lambda: len(presences(ca, jb, 'unavailable')) > before,
               what='unavailable from b after unsubscribing')

    # 3.2: b cancels a's subscription to b... which a no longer has; then
    # a cancels b's subscription to a: none on both sides
    ca.send_presence(pto=jb, ptype='unsubscribed')
    wait_push(ca, jb, subscription='none')
    wait_push(cb, ja, subscription='none')
    wait_presence(cb, ja, 'unsubscribed')
    wait_presence(cb, ja, 'unavailable')      # a's presence withdrawn from b
    settle(ca, cb)
    assert sub(state(ca, jb)) == ('none', None, None)
    assert sub(state(cb, ja)) == ('none', None, None)


@test
def rfc6121_3_4_pre_approval(srv):
    a, b = users_on_two_shards(srv, 'pre')
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)
    # a approves before being asked: recorded, not sent
    ca.send_presence(pto=jb, ptype='subscribed')
    wait_push(ca, jb, subscription='none', approved='true')
    settle(ca, cb)
    assert not presences(cb, ja, 'subscribed'), 'a pre-approval was routed'
    # b asks: the server answers for a, a's client never sees the request
    cb.send_presence(pto=ja, ptype='subscribe')
    wait_presence(cb, ja, 'subscribed')
    wait_push(cb, ja, subscription='to')
    wait_push(ca, jb, subscription='from')
    wait_presence(cb, ja, 'available')       # and a's presence follows
    settle(ca, cb)
    assert not presences(ca, jb, 'subscribe'), 'the pre-approved request reached a'
    assert sub(state(ca, jb)) == ('from', None, None)
    assert sub(state(cb, ja)) == ('to', None, None)

    # withdrawing a pre-approval with unsubscribed (section 3.4.2)
    ca.send_presence(pto=srv.jid(b + 'x'), ptype='subscribed')
    wait_push(ca, srv.jid(b + 'x'), approved='true')
    ca.send_presence(pto=srv.jid(b + 'x'), ptype='unsubscribed')
    wait_until(lambda: [i for _, i in pushes(ca)
                        if i['jid'] == srv.jid(b + 'x') and i['approved'] is None],
               what='push without approved')
    assert sub(state(ca, srv.jid(b + 'x'))) == ('none', None, None)


@test
def rfc6121_3_1_3_pending_request_redelivered_at_each_login(srv):
    a, b = users_on_two_shards(srv, 'pend')
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    ca.send_presence(pto=jb, ptype='subscribe', pstatus='let me in')
    wait_push(ca, jb, ask='subscribe')
    settle(ca)
    t_sent = time.time()
    for round_ in range(2):
        cb = im_session(srv, b, 'r%d' % round_, roster=True)
        sync(cb)
        assert not presences(cb, ja, 'subscribe'), 'delivered before initial presence'
        cb.send_presence()
        req = wait_presence(cb, ja, 'subscribe')
        assert req['status'] == 'let me in', req
        # replayed from storage: marked with when the server got it
        assert_delay(req, srv.host, not_after=t_sent)
        xmpp_disconnect(cb)
    cb = im_session(srv, b, 'last', roster=True, presence=True)
    wait_presence(cb, ja, 'subscribe')
    cb.send_presence(pto=ja, ptype='subscribed')
    wait_push(ca, jb, subscription='to')
    xmpp_disconnect(cb)
    cb = im_session(srv, b, 'after', roster=True, presence=True)
    settle(cb, ca)
    assert not presences(cb, ja, 'subscribe'), 'an answered request came again'
    assert sub(state(cb, ja)) == ('from', None, None)


@test
def rfc6121_3_edge_cases_self_stray_unsubscribed_and_unknown_user(srv):
    a, b = users_on_two_shards(srv, 'edge')
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)
    # a user is implicitly subscribed to itself (4.2.2): asked, it answers
    # 'subscribed' at once and nothing enters the roster
    ca.send_presence(pto=ja, ptype='subscribe')
    wait_presence(ca, ja, 'subscribed')
    # 'unsubscribed' without any subscription: A.2.4 "no state change",
    # nothing routed, no push
    ca.send_presence(pto=jb, ptype='unsubscribed')
    ca.send_presence(pto=jb, ptype='unsubscribe')   # routed, but A.3.2 drops it
    settle(ca, cb)
    assert not pushes(ca) and not pushes(cb), (pushes(ca), pushes(cb))
    assert not presences(cb, ja, 'unsubscribed') and not presences(cb, ja, 'unsubscribe')
    assert roster_get(ca)[1] == {} and roster_get(cb)[1] == {}
    # an answer to a request never made: A.3.3 "no state change", not delivered
    cb.send_presence(pto=ja, ptype='subscribed')
    settle(ca, cb)
    assert not presences(ca, jb, 'subscribed') and not pushes(ca)
    # a subscription to an account that does not exist is refused (3.1.3)
    ghost = srv.jid('nobody-here')
    ca.send_presence(pto=ghost, ptype='subscribe')
    wait_push(ca, ghost, ask='subscribe')
    wait_presence(ca, ghost, 'unsubscribed')
    wait_push(ca, ghost, subscription='none', ask=None)
    assert sub(state(ca, ghost)) == ('none', None, None)


@test
def rfc6121_2_5_removing_an_item_ends_both_subscriptions(srv):
    a, b = users_on_two_shards(srv, 'rem')
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)
    befriend(srv, ca, cb)
    roster_set(ca, jb, remove=True)
    wait_push(ca, jb, subscription='remove')
    wait_presence(cb, ja, 'unsubscribe')
    wait_presence(cb, ja, 'unsubscribed')
    wait_presence(cb, ja, 'unavailable')
    wait_push(cb, ja, subscription='none')
    settle(ca, cb)
    assert state(ca, jb) is None
    assert sub(state(cb, ja)) == ('none', None, None)


# ---------------------------------------------------------- section 4

@test
def rfc6121_4_probes_and_broadcast_at_login_and_logout(srv):
    a, b = users_on_two_shards(srv, 'bc')
    ja = jid(srv, a)
    ca = im_session(srv, a, 'desk', roster=True, presence=True)
    cb = im_session(srv, b, 'phone', roster=True, presence=True)
    befriend(srv, ca, cb)
    ca.send_presence(pstatus='at my desk', ppriority=5)
    wait_until(lambda: [p for p in presences(cb, ja) if p['status'] == 'at my desk'],
               what='subsequent presence broadcast')
    t_a = time.time()
    xmpp_disconnect(cb)
    wait_until(lambda: presences(ca, srv.jid(b, 'phone'), 'unavailable'),
               what='unavailable broadcast when b logged out')

    # b logs in again: the probe to a is answered with a's last presence,
    # replayed from what the server kept: with a <delay/>
    cb = im_session(srv, b, 'tablet', roster=True)
    cb.send_presence(pstatus='back')
    p = wait_presence(cb, srv.jid(a, 'desk'))
    assert p['status'] == 'at my desk' and p['priority'] == 5, p
    assert_delay(p, srv.host, not_after=t_a + 1)
    # and a sees b's initial presence, live (no delay)
    wait_until(lambda: [q for q in presences(ca, srv.jid(b, 'tablet'))
                        if q['status'] == 'back'], what="b's initial presence at a")
    live = [q for q in presences(ca, srv.jid(b, 'tablet')) if q['status'] == 'back']
    assert delay_of(live[0]) is None, live[0]

    # a's second resource comes up: b hears of it; it hears of b (probe)
    # and of a's first resource (the user's own resources)
    ca2 = im_session(srv, a, 'laptop', roster=True)
    ca2.send_presence(pstatus='laptop too')
    wait_presence(cb, srv.jid(a, 'laptop'))
    q = wait_presence(ca2, srv.jid(b, 'tablet'))
    assert_delay(q, srv.host)
    own = wait_presence(ca2, srv.jid(a, 'desk'))
    assert own['status'] == 'at my desk', own
    wait_presence(ca, srv.jid(a, 'laptop'))     # and the other way round

    # a client that drops its connection: the server says unavailable
    ca2.abort()
    wait_presence(cb, srv.jid(a, 'laptop'), 'unavailable')
    wait_presence(ca, srv.jid(a, 'laptop'), 'unavailable')
    # an explicit unavailable from the client goes out too
    ca.send_presence(ptype='unavailable')
    wait_presence(cb, srv.jid(a, 'desk'), 'unavailable')


@test
def rfc6121_4_3_probe_of_offline_contact_and_of_non_contact(srv):
    a, b = users_on_two_shards(srv, 'prb')
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)
    befriend(srv, ca, cb)
    xmpp_disconnect(cb)
    wait_presence(ca, srv.jid(b, 'r'), 'unavailable')
    # a comes back: b is offline, so the answer to the probe is unavailable
    # from b's bare JID
    xmpp_disconnect(ca)
    ca = im_session(srv, a, 'again', roster=True, presence=True)
    wait_presence(ca, jb, 'unavailable')
    assert not presences(ca, jb, 'available')
    # a stranger's probe reveals nothing: a's server answers 'unsubscribed'
    # (4.3.2), which the stranger's server, holding no subscription, keeps
    # from its client (A.3.4)
    stranger = users_on_two_shards(srv, 'stranger')[0]
    cs = im_session(srv, stranger, roster=True, presence=True)
    cs.send_presence(pto=ja, ptype='probe')
    settle(cs, ca)
    assert not presences(cs, ja), [str(p) for p in presences(cs, ja)]
    assert not pushes(cs) and roster_get(cs)[1] == {}


def sign_off(c, status=None):
    """Leave, after an unavailable presence with status (None: just drop
    the stream); returns the time just before."""
    t = time.time()
    if status is not None:
        c.send_presence(ptype='unavailable', pstatus=status)
        sync(c)
    xmpp_disconnect(c)
    return t


def probe_answer(srv, a, resource, jb):
    """a logs in (and so probes its contacts); b's answer, which must be
    the only presence of b's that a gets."""
    ca = im_session(srv, a, resource, roster=True, presence=True)
    p = wait_presence(ca, jb, 'unavailable')
    quiet(ca, ca.got_presence)
    assert len(presences(ca, jb)) == 1, [str(q) for q in presences(ca, jb)]
    xmpp_disconnect(ca)
    return p


@test(timeout=60)
def rfc6121_4_3_2_probe_of_offline_contact_tells_its_last_unavailable_presence(srv):
    a, b = users_on_two_shards(srv, 'gone')
    jb = jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)
    befriend(srv, ca, cb)
    xmpp_disconnect(ca)
    t_out = sign_off(cb, 'Gone fishing')
    # later, so the stamp can only be the logout's and not the probe's
    time.sleep(2.5)
    p = probe_answer(srv, a, 'back', jb)
    assert p.xml.get('from') == jb and p['status'] == 'Gone fishing', p
    stamp = assert_delay(p, srv.host, not_before=t_out, not_after=t_out + 0.5)
    # after a restart the same comes from storage
    srv.restart()
    p = probe_answer(srv, a, 'restarted', jb)
    assert p['status'] == 'Gone fishing', p
    assert assert_delay(p, srv.host) == stamp, (delay_of(p), stamp)
    # a plain disconnect leaves no status, only the time
    cb = im_session(srv, b, 'again', roster=True, presence=True)
    t_out = sign_off(cb)
    p = probe_answer(srv, a, 'third', jb)
    assert not p.xml.findall('{jabber:client}status'), p
    assert_delay(p, srv.host, not_before=t_out, not_after=time.time())


@test(timeout=60)
def rfc6121_4_3_2_probe_answer_without_a_known_logout_has_no_delay():
    # without mod_last no logout is recorded: unavailable, and nothing more
    srv = parley.Server(threads=THREADS, extra_config='''
        modules:
          mod_roster: {}
          mod_ping: {}
          mod_disco: {}
        ''')
    try:
        a, b = users_on_two_shards(srv, 'nolast')
        jb = jid(srv, b)
        ca = im_session(srv, a, roster=True, presence=True)
        cb = im_session(srv, b, roster=True, presence=True)
        befriend(srv, ca, cb)
        xmpp_disconnect(ca)
        sign_off(cb, 'not kept')
        p = probe_answer(srv, a, 'back', jb)
        assert delay_of(p) is None and not p.xml.findall('{jabber:client}status'), p
    finally:
        assert srv.stop() == 0


@test
def rfc6121_4_6_directed_presence_and_unavailable_on_disconnect(srv):
    a, b = users_on_two_shards(srv, 'dir')
    ca = im_session(srv, a, presence=True)
    cb = im_session(srv, b, presence=True)
    # no subscription either way; a tells b directly
    ca.send_presence(pto=srv.jid(b, 'r'), pstatus='just for you')
    p = wait_presence(cb, srv.jid(a, 'r'))
    assert p['status'] == 'just for you', p
    # b may probe a now and hears the directed presence again
    cb.send_presence(pto=srv.jid(a), ptype='probe')
    wait_until(lambda: len(presences(cb, srv.jid(a, 'r'), 'available')) >= 2,
               what='probe answered for a directed-presence recipient')
    # a's ordinary broadcast does not reach b (no subscription)...
    before = len(presences(cb, srv.jid(a, 'r')))
    ca.send_presence(pstatus='everyone')
    settle(ca, cb)
    assert len(presences(cb, srv.jid(a, 'r'))) == before
    # ...but when a's connection drops, b is told a is gone (4.6.3)
    ca.abort()
    wait_presence(cb, srv.jid(a, 'r'), 'unavailable')


# ---------------------------------------------------------- aioxmpp

@test
def aioxmpp_subscription_cycle_and_versioned_roster_with_slixmpp_peer(srv):
    a, b = users_on_two_shards(srv, 'aio')
    ja, jb = jid(srv, a), jid(srv, b)
    try:
        client, roster, presence = aio_connect(srv, a)
        cb = im_session(srv, b, roster=True, presence=True)
        roster.subscribe(aio_jid(srv, b))
        wait_presence(cb, ja, 'subscribe')
        cb.send_presence(pto=ja, ptype='subscribed')
        wait_until(lambda: aio_items(roster).get(jb) == ('to', None, False),
                   what=lambda: 'aioxmpp roster %s' % aio_items(roster))
        # aioxmpp sees b's presence (sent after the approval)
        wait_until(lambda: presence.get_most_available_stanza(aio_jid(srv, b)) is not None,
                   what="b's presence at the aioxmpp client")
        # b asks back; aioxmpp approves
        asked = []
        roster.on_subscribe.connect(lambda st: asked.append(st))
        cb.send_presence(pto=ja, ptype='subscribe')
        wait_until(lambda: asked, what='subscribe at the aioxmpp client')
        roster.approve(aio_jid(srv, b))
        wait_push(cb, ja, subscription='both')
        wait_until(lambda: aio_items(roster).get(jb) == ('both', None, False),
                   what=lambda: 'aioxmpp roster %s' % aio_items(roster))
        # set a name and group with aioxmpp; slixmpp's resource of a sees it
        ca = im_session(srv, a, 'slix', roster=True)
        parley.xmpp_run(roster.set_entry(aio_jid(srv, b), name='Bob',
                                         add_to_groups={'Team'}), 10)
        wait_push(ca, jb, name='Bob', subscription='both')
        version = roster.version
        assert version and version == roster_get(ca)[0], (version, roster_get(ca)[0])
        # reconnecting with the version it has: the server says unchanged
        # and aioxmpp keeps its items
        aio_disconnect(client)
        client, roster2, _ = aio_connect(srv, a, 'aio2')
        assert aio_items(roster2).get(jb) == ('both', None, False), aio_items(roster2)
        assert roster2.items[aio_jid(srv, b)].name == 'Bob'
        assert roster2.groups.get('Team'), roster2.groups
        wait_presence(cb, srv.jid(a, 'aio2'))
        assert sub(state(cb, ja)) == ('both', None, None)
    finally:
        aio_close_all()


@test
def rfc6121_roster_change_acknowledged_survives_kill_9(srv):
    a, b = users_on_two_shards(srv, 'dur')
    c = im_session(srv, a, roster=True)
    roster_set(c, jid(srv, b), name='kept', groups=['G'])
    # the result came back: the change is committed. Crash now.
    srv.kill()
    srv.start()
    c = im_session(srv, a, 'again')
    _, items = roster_get(c)
    assert items[jid(srv, b)]['name'] == 'kept' and items[jid(srv, b)]['groups'] == ['G']



@test
def xep0191_3_3_blocking_a_contact_withholds_presence_until_unblocked(srv):
    a, b = users_on_two_shards(srv, 'blkp')
    ja, jb = jid(srv, a), jid(srv, b)
    ca = im_session(srv, a, roster=True, presence=True)
    cb = im_session(srv, b, roster=True, presence=True)
    befriend(srv, ca, cb)
    wait_presence(cb, ja, 'available')
    # Blocking b: b sees a go unavailable at once...
    send_raw_iq(ca, 'set', "<block xmlns='urn:xmpp:blocking'><item jid='%s'/></block>" % jb)
    wait_presence(cb, ja, 'unavailable')
    # ...and no presence of a's reaches b while blocked.
    del cb.got_presence[:]
    ca.send_presence(pshow='away', pstatus='not for b')
    quiet(cb, cb.got_presence)
    assert not presences(cb, ja), [str(p) for p in cb.got_presence]
    # Unblocking: b gets a's current presence back.
    send_raw_iq(ca, 'set', "<unblock xmlns='urn:xmpp:blocking'><item jid='%s'/></unblock>" % jb)
    p = wait_presence(cb, ja, 'available')
    assert p.xml.findtext('{jabber:client}status') == 'not for b', str(p)
    xmpp_disconnect(ca)
    xmpp_disconnect(cb)

if __name__ == '__main__':
    main(threads=THREADS)
