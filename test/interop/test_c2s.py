"""XMPP client-to-server with a real client (slixmpp) against parleyd:
STARTTLS and direct TLS, SASL (SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with
channel binding over TLS, SCRAM-SHA-256 and SCRAM-SHA-1, PLAIN only over
TLS), resource binding and conflicts, message and iq routing between users
whose home shards differ (RFC 6120, RFC 6121 section 8, XEP-0199, XEP-0368),
and parleyctl connected_users.

Over TLS the server offers -PLUS and advertises its channel-binding types
(XEP-0440). slixmpp 1.8 binds with tls-unique whatever the TLS version, and
when made to use a SCRAM mechanism without -PLUS over TLS it sends the gs2
flag 'y' ("I could bind, but you offered nothing"), which the server must
refuse as a downgrade (RFC 5802 section 6). The exchanges themselves, byte
by byte, are tested in test_sasl_plus.py.

The server runs two shards; a user's home shard is the 32-bit FNV-1a hash
of the bare JID modulo the shard count (core/shard.c). The tests pick user
names on purpose so that the two parties of a conversation live on
different shards, and check the server's own log says so too.

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_c2s.py
"""

import re
import ssl
import time

import parley
from parley import (test, main, xmpp_session, xmpp_client, xmpp_connect,
                    xmpp_run, xmpp_sleep, xmpp_disconnect, XmppConnectError)
import xmpp_raw
from xmpp_raw import RawStream, NS_SASL, NS_SASL_CB, NS_TLS, tag

THREADS = 2

# A second c2s listener where STARTTLS is offered but optional; PLAIN stays
# TLS-only there (allow_unencrypted_plain is not set).
OPTIONAL_TLS = {'module': 'c2s', 'starttls_required': False}
LISTEN = list(parley.MODULES) + [OPTIONAL_TLS]

PASSWORD = 'pw-c2s-\u00e9t\u00e9'     # non-ASCII on purpose (SASLprep, UTF-8)
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_PING = 'urn:xmpp:ping'

MECHS_TLS = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1',
             'PLAIN']
# XEP-0440 types: tls-unique exists for TLS 1.2 only (RFC 9266 section 3)
CB_TYPES = {'TLSv1.2': ['tls-exporter', 'tls-server-end-point', 'tls-unique'],
            'TLSv1.3': ['tls-exporter', 'tls-server-end-point']}


# ------------------------------------------------------ building blocks

def home_shard(bare, shards=THREADS):
    """The server's shard_of_key(): 32-bit FNV-1a of the bare JID."""
    h = 0x811c9dc5
    for b in bare.encode('utf-8'):
        h ^= b
        h = (h * 0x01000193) & 0xffffffff
    return h % shards


def users_on_two_shards(prefix, host='localhost'):
    """Two user names, starting with prefix, whose home shards differ."""
    found = {}
    for i in range(1000):
        name = '%s%d' % (prefix, i)
        found.setdefault(home_shard('%s@%s' % (name, host)), name)
        if len(found) == THREADS:
            break
    a, b = found[0], found[1]
    assert home_shard(a + '@' + host) != home_shard(b + '@' + host)
    return a, b


def account(srv, name, password=PASSWORD):
    srv.register(name, password)
    return name


def optional_tls_port(srv):
    for item in srv.listeners:
        if item['module'] == 'c2s' and item.get('starttls_required') is False:
            return item['port']
    raise AssertionError('no c2s listener with starttls_required: false')


def mech_used(client):
    mech = client['feature_mechanisms'].mech
    return mech.name if mech is not None else None


def tls_version(client):
    obj = client.transport.get_extra_info('ssl_object') if client.transport else None
    return obj.version() if obj is not None else None


def collect(client, event='message'):
    """A list that fills with the client's events of that kind."""
    got = []
    client.add_event_handler(event, got.append)
    return got


def wait_until(pred, timeout=5.0, what='condition'):
    """Run the clients' loop until pred() holds. what may be a callable,
    evaluated only on failure (to show the last state)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %ss waiting for %s'
                                 % (timeout, what() if callable(what) else what))
        xmpp_sleep(0.02)


def sync(client):
    """A ping round trip to the server: everything the client sent before
    it has been handled by the server once this returns (one stream is
    processed in order)."""
    iq = client['xep_0199'].send_ping(client.boundjid.domain, timeout=5)
    result = xmpp_run(iq, 6)
    assert result['type'] == 'result', result


def iq_error(client, aw):
    """Run an iq send that must fail; returns the error iq."""
    # slixmpp is imported by the harness on first use, after it has
    # quietened slixmpp's import-time warnings.
    from slixmpp.exceptions import IqError
    try:
        result = xmpp_run(aw, 6)
    except IqError as e:
        return e.iq
    raise AssertionError('%s expected an iq error, got %s' % (client.boundjid, result))


def ctl_connected(srv):
    rc, out, err = srv.ctl('connected_users')
    assert rc == 0, 'connected_users: exit %d: %s' % (rc, err)
    return out.splitlines()


def bound_shards(srv):
    """{full JID: shard} from the server's 'session bound on shard N' lines."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'c2s: (\S+): session bound on shard (\d+)', srv.log())}


def assert_logged_mech(srv, user, mech):
    line = '%s@%s authenticated (%s)' % (user, srv.host, mech)
    assert srv.wait_log(line, 3), 'server log lacks %r' % line


def sent_auth(client):
    """A list that fills with (mechanism, initial response bytes) of each
    <auth/> the client sends."""
    got = []

    def capture(stanza):
        if stanza.xml.tag == tag(NS_SASL, 'auth'):
            got.append((stanza['mechanism'], stanza['value']))
        return stanza
    client.add_filter('out', capture)
    return got


def assert_tls_features(s, features):
    """<features/> after TLS: every mechanism, -PLUS first, and the binding
    types that exist for the negotiated TLS version."""
    assert features.find(tag(NS_TLS, 'starttls')) is None, \
        'STARTTLS offered again after TLS: %s' % xmpp_raw.show(features)
    assert xmpp_raw.mechanisms(features) == MECHS_TLS, xmpp_raw.mechanisms(features)
    version = s.tls_version()
    assert version in CB_TYPES, version
    cb = features.find(tag(NS_SASL_CB, 'sasl-channel-binding'))
    assert cb is not None, 'no XEP-0440 element: %s' % xmpp_raw.show(features)
    assert xmpp_raw.channel_binding_types(features) == CB_TYPES[version], \
        (version, xmpp_raw.show(cb))
    assert len(cb) == len(CB_TYPES[version]), xmpp_raw.show(cb)


def quiet(client, got, seconds=0.3):
    """Assert nothing more arrives at this client for a moment."""
    before = len(got)
    xmpp_sleep(seconds)
    assert len(got) == before, '%s got an unexpected %s' % (
        client.boundjid, got[before:][0])


# ---------------------------------------------------------------- tests

@test
def rfc6120_6_scram_sha_256_plus_over_starttls_users_on_two_shards(srv):
    a, b = users_on_two_shards('shard')
    account(srv, a)
    account(srv, b)
    ca = xmpp_session(srv, a, PASSWORD, resource='laptop')
    cb = xmpp_session(srv, b, PASSWORD, resource='phone')
    for c, user in ((ca, a), (cb, b)):
        # slixmpp ranks SCRAM-SHA-256-PLUS (74) above SCRAM-SHA-1-PLUS (72),
        # SCRAM-SHA-256 (64), SCRAM-SHA-1 (62) and PLAIN (2); the server
        # offers all five after TLS, so the strongest must be chosen.
        assert mech_used(c) == 'SCRAM-SHA-256-PLUS', (user, mech_used(c))
        assert tls_version(c) in ('TLSv1.2', 'TLSv1.3'), tls_version(c)
        assert_logged_mech(srv, user, 'SCRAM-SHA-256-PLUS')
    ja, jb = srv.jid(a, 'laptop'), srv.jid(b, 'phone')
    assert str(ca.boundjid) == ja and str(cb.boundjid) == jb, (ca.boundjid, cb.boundjid)
    shards = bound_shards(srv)
    assert shards.get(ja) == home_shard(srv.jid(a)), (ja, shards)
    assert shards.get(jb) == home_shard(srv.jid(b)), (jb, shards)
    assert shards[ja] != shards[jb], shards

    got_a, got_b = collect(ca), collect(cb)
    ca.send_presence()
    cb.send_presence()
    sync(ca)
    sync(cb)

    body = 'h\u00e9llo <b>&amp; "q" \u2603'
    ca.send_message(mto=jb, mbody=body, mtype='chat')
    wait_until(lambda: got_b, what='message to the full JID')
    m = got_b[0]
    assert m['body'] == body, repr(m['body'])
    assert str(m['from']) == ja, m['from']
    assert str(m['to']) == jb, m['to']
    assert m['type'] == 'chat', m['type']

    cb.send_message(mto=srv.jid(a), mbody='back to your bare JID', mtype='chat')
    wait_until(lambda: got_a, what='message to the bare JID')
    m = got_a[0]
    assert m['body'] == 'back to your bare JID', repr(m['body'])
    assert str(m['from']) == jb, m['from']
    quiet(cb, got_b)


@test
def rfc6120_8_1_2_1_server_stamps_from_on_outbound_stanzas(srv):
    a, b = users_on_two_shards('stamp')
    account(srv, a)
    account(srv, b)
    ca = xmpp_session(srv, a, PASSWORD, resource='r')
    cb = xmpp_session(srv, b, PASSWORD, resource='r')
    got_b = collect(cb)
    # No 'from', or the sender's own bare JID: stamped with the full JID.
    # (A 'from' of somebody else is a stream error: test_c2s_errors.py.)
    ca.send_message(mto=srv.jid(b, 'r'), mbody='no from')
    ca.send_message(mto=srv.jid(b, 'r'), mbody='bare from', mfrom=srv.jid(a))
    wait_until(lambda: len(got_b) == 2, what='two messages')
    for m in got_b:
        assert str(m['from']) == srv.jid(a, 'r'), (m['body'], str(m['from']))


@test
def rfc5802_6_scram_sha_1_plus_when_the_client_asks_for_it(srv):
    user = account(srv, 'scram1user')
    c = xmpp_client(srv.jid(user, 'test'), PASSWORD, srv.ports['c2s'],
                    sasl_mech='SCRAM-SHA-1-PLUS')
    auths = sent_auth(c)
    xmpp_connect(c)
    assert mech_used(c) == 'SCRAM-SHA-1-PLUS', mech_used(c)
    assert_logged_mech(srv, user, 'SCRAM-SHA-1-PLUS')
    # The client did bind (gs2 header p=...), to what it computes as
    # tls-unique, whatever the TLS version.
    assert len(auths) == 1 and auths[0][0] == 'SCRAM-SHA-1-PLUS', auths
    assert auths[0][1].startswith(b'p=tls-unique,,n='), auths
    sync(c)


@test
def rfc5802_6_scram_sha_256_plus_with_tls_unique_over_tls_1_2(srv):
    user = account(srv, 'scramtls12')
    c = xmpp_client(srv.jid(user, 'test'), PASSWORD, srv.ports['c2s'])
    c.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
    xmpp_connect(c)
    assert tls_version(c) == 'TLSv1.2', tls_version(c)
    assert mech_used(c) == 'SCRAM-SHA-256-PLUS', mech_used(c)
    assert_logged_mech(srv, user, 'SCRAM-SHA-256-PLUS')
    sync(c)


@test
def rfc5802_6_scram_without_plus_over_tls_refused_as_a_downgrade(srv):
    # Forced to a mechanism without -PLUS on a TLS stream, slixmpp says 'y':
    # it supports binding and believes the server does not. The server did
    # offer -PLUS, so the offer was stripped on the way: RFC 5802 section 6
    # says to fail the authentication.
    user = account(srv, 'downgrade')
    for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1'):
        c = xmpp_client(srv.jid(user, 'test'), PASSWORD, srv.ports['c2s'], sasl_mech=mech)
        auths = sent_auth(c)
        try:
            xmpp_connect(c, timeout=10)
            raise AssertionError('%s with gs2 flag y over TLS succeeded' % mech)
        except XmppConnectError as e:
            assert e.kind == 'failed_all_auth', e
            assert '%s not-authorized' % mech in str(e), e
        assert [m for m, _ in auths] == [mech], auths
        assert auths[0][1].startswith(b'y,,n=downgrade,r='), auths
        line = '%s@%s authenticated' % (user, srv.host)
        assert line not in srv.log(), 'the downgraded login was accepted'
    assert srv.alive()
    # The account is fine: the next login (with binding) works.
    c = xmpp_session(srv, user, PASSWORD)
    assert mech_used(c) == 'SCRAM-SHA-256-PLUS', mech_used(c)
    assert_logged_mech(srv, user, 'SCRAM-SHA-256-PLUS')
    sync(c)


@test
def rfc6120_6_plain_over_tls(srv):
    user = account(srv, 'plainuser')
    c = xmpp_session(srv, user, PASSWORD, sasl_mech='PLAIN')
    assert mech_used(c) == 'PLAIN', mech_used(c)
    assert tls_version(c) is not None
    assert_logged_mech(srv, user, 'PLAIN')
    sync(c)


@test
def rfc6120_5_3_1_required_starttls_is_the_only_feature_before_tls(srv):
    with RawStream(srv.ports['c2s']) as s:
        features = s.open()
        starttls = features.find(tag(NS_TLS, 'starttls'))
        assert starttls is not None, xmpp_raw.show(features)
        assert starttls.find(tag(NS_TLS, 'required')) is not None, xmpp_raw.show(features)
        assert features.find(tag(NS_SASL, 'mechanisms')) is None, \
            'SASL offered before the mandatory TLS: %s' % xmpp_raw.show(features)
        assert s.stream_attrs.get('from') == srv.host, s.stream_attrs
        assert s.stream_attrs.get('version') == '1.0', s.stream_attrs
        assert s.stream_attrs.get('id'), s.stream_attrs
        assert xmpp_raw.channel_binding_types(features) is None, xmpp_raw.show(features)
        assert_tls_features(s, s.starttls())
    # Both TLS versions: the advertised types follow the one negotiated.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with RawStream(srv.ports['c2s'], tls_max=version) as s:
            s.open()
            after = s.starttls()
            assert s.tls_version() == version.name.replace('v1_', 'v1.'), s.tls_version()
            assert_tls_features(s, after)


@test
def rfc6120_6_plain_not_offered_or_accepted_without_tls(srv):
    port = optional_tls_port(srv)
    user = account(srv, 'nottls')
    with RawStream(port) as s:
        features = s.open()
        starttls = features.find(tag(NS_TLS, 'starttls'))
        assert starttls is not None and starttls.find(tag(NS_TLS, 'required')) is None, \
            xmpp_raw.show(features)
        assert xmpp_raw.mechanisms(features) == ['SCRAM-SHA-256', 'SCRAM-SHA-1'], \
            xmpp_raw.mechanisms(features)
        # Nothing to bind to without TLS: no -PLUS, no binding types.
        assert xmpp_raw.channel_binding_types(features) is None, xmpp_raw.show(features)
        # Asking for it anyway must not authenticate.
        # (PLAIN was not offered, so invalid-mechanism is as right as
        # encryption-required, RFC 6120 sections 6.5.4 and 6.5.7.)
        cond = xmpp_raw.sasl_failure_condition(s.auth_plain(user, PASSWORD))
        assert cond in ('encryption-required', 'invalid-mechanism'), cond
    # On the same listener, once TLS is up, PLAIN is offered.
    with RawStream(port) as s:
        s.open()
        assert_tls_features(s, s.starttls())
    # A real client that may only use PLAIN cannot log in without TLS.
    c = xmpp_client(srv.jid(user, 'x'), PASSWORD, port, tls='none', sasl_mech='PLAIN')
    try:
        xmpp_connect(c, timeout=5)
        raise AssertionError('PLAIN login without TLS succeeded')
    except XmppConnectError as e:
        assert e.kind in ('no_auth', 'failed_all_auth', 'disconnected'), e


@test
def rfc6120_5_3_1_optional_starttls_scram_on_a_plain_stream(srv):
    user = account(srv, 'plainstream')
    port = optional_tls_port(srv)
    c = xmpp_session(srv, user, PASSWORD, port=port, tls='none')
    assert tls_version(c) is None
    assert mech_used(c) == 'SCRAM-SHA-256', mech_used(c)
    assert_logged_mech(srv, user, 'SCRAM-SHA-256')
    sync(c)
    # SCRAM-SHA-1 as well; without TLS the client has nothing to bind to
    # and says so with 'n'.
    c1 = xmpp_client(srv.jid(user, 'sha1'), PASSWORD, port, tls='none', sasl_mech='SCRAM-SHA-1')
    auths = sent_auth(c1)
    xmpp_connect(c1)
    assert tls_version(c1) is None
    assert mech_used(c1) == 'SCRAM-SHA-1', mech_used(c1)
    assert auths and auths[0][1].startswith(b'n,,n=plainstream,r='), auths
    assert_logged_mech(srv, user, 'SCRAM-SHA-1')
    sync(c1)


@test
def rfc6120_6_4_5_wrong_password_fails_then_right_one_works(srv):
    user = account(srv, 'wrongpw')
    # slixmpp tries each offered mechanism in turn; every one must fail the
    # same way (the -PLUS ones at the proof, the others as downgrades).
    every = ', '.join('%s not-authorized' % m for m in MECHS_TLS)
    try:
        xmpp_session(srv, user, 'not-the-password', timeout=10)
        raise AssertionError('login with a wrong password succeeded')
    except XmppConnectError as e:
        assert e.kind == 'failed_all_auth', e
        assert str(e).endswith('SASL failure: ' + every), e
    # An unknown account fails the same way (no user enumeration).
    try:
        xmpp_session(srv, 'nosuchuser', PASSWORD, timeout=10)
        raise AssertionError('login to an unknown account succeeded')
    except XmppConnectError as e:
        assert e.kind == 'failed_all_auth', e
        assert str(e).endswith('SASL failure: ' + every), e
    assert srv.alive()
    assert 'wrongpw@%s authenticated' % srv.host not in srv.log()
    c = xmpp_session(srv, user, PASSWORD)
    assert mech_used(c) == 'SCRAM-SHA-256-PLUS', mech_used(c)
    assert_logged_mech(srv, user, 'SCRAM-SHA-256-PLUS')
    sync(c)


@test
def xep0368_direct_tls_on_c2s_tls(srv):
    a, b = users_on_two_shards('direct')
    account(srv, a)
    account(srv, b)
    ca = xmpp_session(srv, a, PASSWORD, tls='direct')
    assert tls_version(ca) in ('TLSv1.2', 'TLSv1.3'), tls_version(ca)
    assert mech_used(ca) == 'SCRAM-SHA-256-PLUS', mech_used(ca)
    assert_logged_mech(srv, a, 'SCRAM-SHA-256-PLUS')
    cb = xmpp_session(srv, b, PASSWORD)         # STARTTLS on c2s
    got_b = collect(cb)
    ca.send_message(mto=cb.boundjid, mbody='over direct TLS')
    wait_until(lambda: got_b, what='message from the direct-TLS session')
    assert got_b[0]['body'] == 'over direct TLS'
    assert str(got_b[0]['from']) == str(ca.boundjid)
    # The direct-TLS port speaks TLS from the first byte: no STARTTLS there.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with RawStream(srv.ports['c2s_tls'], tls=True, tls_max=version) as s:
            assert_tls_features(s, s.open())


@test
def rfc6120_7_server_generated_resource(srv):
    user = account(srv, 'genres')
    c = xmpp_client(srv.jid(user), PASSWORD, srv.ports['c2s'])
    xmpp_connect(c)
    res = c.boundjid.resource
    assert res, 'no resource assigned: %s' % c.boundjid
    assert c.boundjid.bare == srv.jid(user), c.boundjid
    sync(c)
    assert str(c.boundjid) in ctl_connected(srv)


@test
def rfc6120_7_7_2_2_resource_conflict_closes_the_old_session(srv):
    user = account(srv, 'conflict')
    old = xmpp_session(srv, user, PASSWORD, resource='same')
    errors = collect(old, 'stream_error')
    gone = collect(old, 'disconnected')
    new = xmpp_session(srv, user, PASSWORD, resource='same')
    wait_until(lambda: errors, what='a stream error on the old session')
    assert errors[0]['condition'] == 'conflict', errors[0]
    wait_until(lambda: gone, what='the old session to be closed')
    # The new session is the one that gets the full JID's traffic.
    other = xmpp_session(srv, account(srv, 'conflictpeer'), PASSWORD)
    got = collect(new)
    other.send_message(mto=srv.jid(user, 'same'), mbody='to the survivor')
    wait_until(lambda: got, what='message to the new session')
    assert got[0]['body'] == 'to the survivor'
    jids = ctl_connected(srv)
    assert jids.count(srv.jid(user, 'same')) == 1, jids


@test
def connected_users_lists_sessions_sorted_and_drops_them(srv):
    a, b = users_on_two_shards('listed')
    account(srv, a)
    account(srv, b)
    cb = xmpp_session(srv, b, PASSWORD, resource='zeta')
    ca = xmpp_session(srv, a, PASSWORD, resource='alpha')
    ca2 = xmpp_session(srv, a, PASSWORD, resource='beta')
    mine = sorted([srv.jid(a, 'alpha'), srv.jid(a, 'beta'), srv.jid(b, 'zeta')])
    # Earlier tests' clients were aborted; their sessions must be gone too.
    wait_until(lambda: ctl_connected(srv) == mine, timeout=5,
               what=lambda: 'connected_users == %s (last: %s)' % (mine, ctl_connected(srv)))
    out = ctl_connected(srv)
    assert out == sorted(out), out
    xmpp_disconnect(ca2)
    wait_until(lambda: srv.jid(a, 'beta') not in ctl_connected(srv),
               what='the closed session to leave connected_users')
    assert ctl_connected(srv) == sorted([srv.jid(a, 'alpha'), srv.jid(b, 'zeta')]), \
        ctl_connected(srv)
    # A dropped connection (no </stream>) goes away as well.
    cb.abort()
    wait_until(lambda: ctl_connected(srv) == [srv.jid(a, 'alpha')],
               what=lambda: 'the aborted session to leave connected_users (last: %s)'
               % ctl_connected(srv))
    xmpp_disconnect(ca)
    wait_until(lambda: ctl_connected(srv) == [], what='an empty connected_users')


@test
def rfc6121_8_5_message_bounces_to_unknown_account_and_groupchat_to_offline_user(srv):
    # chat and normal messages for an account that exists but is offline
    # are stored when offline storage is on (test_offline.py); these two
    # cases bounce whatever the modules.
    a, b = users_on_two_shards('offline')
    account(srv, a)
    account(srv, b)                       # exists but never logs in
    ca = xmpp_session(srv, a, PASSWORD)
    errs = collect(ca, 'message_error')
    # RFC 6121 section 8.5.1: an account that does not exist.
    msg = ca.make_message(mto=srv.jid('nobodyhere'), mbody='are you there?', mtype='chat')
    msg['id'] = 'offline-1'
    msg.send()
    wait_until(lambda: errs, what='the bounce')
    e = errs[0]
    assert e['type'] == 'error', e
    assert e['id'] == 'offline-1', e
    assert str(e['from']) == srv.jid('nobodyhere'), e['from']
    assert str(e['to']) == str(ca.boundjid), e['to']
    assert e['error']['condition'] == 'service-unavailable', e
    assert e['error']['type'] == 'cancel', e
    # Section 8.5.2.2.1: groupchat for a user with no available resource.
    msg = ca.make_message(mto=srv.jid(b), mbody='hello?', mtype='groupchat')
    msg['id'] = 'offline-2'
    msg.send()
    wait_until(lambda: len(errs) == 2, what='the second bounce')
    assert errs[1]['id'] == 'offline-2'
    assert str(errs[1]['from']) == srv.jid(b), errs[1]['from']
    assert errs[1]['error']['condition'] == 'service-unavailable', errs[1]


@test
def xep0199_ping_and_xep0030_disco_info_answered_by_the_server(srv):
    user = account(srv, 'pinger')
    c = xmpp_session(srv, user, PASSWORD)
    result = xmpp_run(c['xep_0199'].send_ping(srv.host, timeout=5), 6)
    assert result['type'] == 'result', result
    assert str(result['from']) == srv.host, result['from']
    assert str(result['to']) == str(c.boundjid), result['to']

    iq = c.make_iq_get(queryxmlns=NS_DISCO_INFO, ito=srv.host)
    result = xmpp_run(iq.send(timeout=5), 6)
    info = result.xml.find('{%s}query' % NS_DISCO_INFO)
    assert info is not None, result
    ids = [(i.get('category'), i.get('type'))
           for i in info.findall('{%s}identity' % NS_DISCO_INFO)]
    assert ('server', 'im') in ids, ids
    features = {f.get('var') for f in info.findall('{%s}feature' % NS_DISCO_INFO)}
    assert NS_PING in features and NS_DISCO_INFO in features, features

    # RFC 6120 section 8.4: an iq the server does not understand.
    iq = c.make_iq_get(queryxmlns='urn:example:parley:nothing', ito=srv.host)
    err = iq_error(c, iq.send(timeout=5))
    assert err['error']['condition'] == 'service-unavailable', err
    assert err['error']['type'] == 'cancel', err
    assert str(err['from']) == srv.host, err['from']


@test
def rfc6121_8_5_3_iq_routed_to_a_full_jid_and_missing_resource_errors(srv):
    a, b = users_on_two_shards('iqr')
    account(srv, a)
    account(srv, b)
    ca = xmpp_session(srv, a, PASSWORD)
    cb = xmpp_session(srv, b, PASSWORD, resource='home')
    # slixmpp answers pings itself: a round trip through both shards.
    result = xmpp_run(ca['xep_0199'].send_ping(srv.jid(b, 'home'), timeout=5), 6)
    assert result['type'] == 'result', result
    assert str(result['from']) == srv.jid(b, 'home'), result['from']
    err = iq_error(ca, ca['xep_0199'].send_ping(srv.jid(b, 'nothere'), timeout=5))
    assert err['error']['condition'] == 'service-unavailable', err
    assert str(err['from']) == srv.jid(b, 'nothere'), err['from']
    # And to a user who is not online at all.
    err = iq_error(cb, cb['xep_0199'].send_ping(srv.jid('iqnobody', 'x'), timeout=5))
    assert err['error']['condition'] == 'service-unavailable', err


@test
def rfc6121_8_5_2_1_bare_jid_goes_to_highest_priority_available_resource(srv):
    a, b = users_on_two_shards('prio')
    account(srv, a)
    account(srv, b)
    ca = xmpp_session(srv, a, PASSWORD)
    hi = xmpp_session(srv, b, PASSWORD, resource='hi')
    lo = xmpp_session(srv, b, PASSWORD, resource='lo')
    silent = xmpp_session(srv, b, PASSWORD, resource='silent')   # no presence
    got = {c: collect(c) for c in (hi, lo, silent)}
    hi.send_presence(ppriority=5)
    lo.send_presence(ppriority=1)
    for c in (hi, lo, silent):
        sync(c)

    ca.send_message(mto=srv.jid(b), mbody='to bare')
    wait_until(lambda: got[hi], what='bare-JID message at the top priority')
    assert got[hi][0]['body'] == 'to bare'
    # RFC 6121 section 8.5.3.2.1: an unknown resource is treated as bare.
    ca.send_message(mto=srv.jid(b, 'unknown'), mbody='to unknown resource', mtype='chat')
    wait_until(lambda: len(got[hi]) == 2, what='unknown-resource message')
    assert got[hi][1]['body'] == 'to unknown resource'
    # An exact full JID reaches that resource even without presence.
    ca.send_message(mto=srv.jid(b, 'silent'), mbody='to silent')
    wait_until(lambda: got[silent], what='full-JID message to the silent resource')
    assert got[silent][0]['body'] == 'to silent'
    quiet(lo, got[lo])
    assert len(got[silent]) == 1 and len(got[hi]) == 2

    # The top resource goes unavailable: the next one takes over.
    hi.send_presence(ptype='unavailable')
    sync(hi)
    ca.send_message(mto=srv.jid(b), mbody='after unavailable')
    wait_until(lambda: got[lo], what='bare-JID message after the top one left')
    assert got[lo][0]['body'] == 'after unavailable'
    quiet(hi, got[hi])
    assert len(got[hi]) == 2 and len(got[silent]) == 1


@test(timeout=90)
def many_messages_both_ways_arrive_in_order_across_shards(srv):
    count = 500
    a, b = users_on_two_shards('bulk')
    account(srv, a)
    account(srv, b)
    ca = xmpp_session(srv, a, PASSWORD)
    cb = xmpp_session(srv, b, PASSWORD)
    got_a, got_b = collect(ca), collect(cb)
    for i in range(count):
        ca.send_message(mto=cb.boundjid, mbody='a2b %d' % i)
        cb.send_message(mto=ca.boundjid, mbody='b2a %d' % i)
    wait_until(lambda: len(got_a) >= count and len(got_b) >= count, timeout=40,
               what=lambda: '%d messages each way (have %d and %d)'
               % (count, len(got_a), len(got_b)))
    quiet(ca, got_a, 0.2)
    assert [m['body'] for m in got_b] == ['a2b %d' % i for i in range(count)], \
        'a->b out of order or missing'
    assert [m['body'] for m in got_a] == ['b2a %d' % i for i in range(count)], \
        'b->a out of order or missing'
    assert all(str(m['from']) == str(ca.boundjid) for m in got_b)
    assert all(str(m['from']) == str(cb.boundjid) for m in got_a)
    assert srv.alive()


if __name__ == '__main__':
    main(threads=THREADS, listen=LISTEN)
