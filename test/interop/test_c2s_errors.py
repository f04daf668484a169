"""XMPP stream errors (RFC 6120 section 4.9) and SASL failures provoked
over a bare socket: each test sends what a broken or hostile client would,
asserts the exact condition the server answers with and that it ends the
stream (</stream:stream>, then the TCP connection closes), and then that the
server still serves a normal client login.

Listeners: the default c2s (STARTTLS required) and a second c2s that
allows PLAIN without TLS and has a small max_stanza_size, so the raw
client can authenticate without TLS and a big stanza is cheap to build.
SASL failures from channel binding (SCRAM-*-PLUS) count like any other.

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_c2s_errors.py
"""

import hashlib

import parley
from parley import test, main, xmpp_session, xmpp_run, xmpp_disconnect
import xmpp_raw
from xmpp_raw import (RawStream, NS_SASL, NS_SASL_CB, NS_TLS, NS_CLIENT, NS_SERVER, tag,
                      header)

THREADS = 2
SMALL_STANZA = 4096
PLAIN_OK = {'module': 'c2s', 'starttls_required': False,
            'allow_unencrypted_plain': True, 'max_stanza_size': SMALL_STANZA}
LISTEN = list(parley.MODULES) + [PLAIN_OK]

PASSWORD = 'errors-pw'
_accounts = {}      # data_dir -> users registered on that server


# ------------------------------------------------------ building blocks

def account(srv, name):
    done = _accounts.setdefault(srv.data_dir, set())
    if name not in done:
        srv.register(name, PASSWORD)
        done.add(name)
    return name


def plain_port(srv):
    for item in srv.listeners:
        if item['module'] == 'c2s' and item.get('allow_unencrypted_plain') is True:
            return item['port']
    raise AssertionError('no c2s listener with allow_unencrypted_plain')


def expect_stream_error(s, condition):
    """The server answers with <condition/> and closes the stream.
    condition may be a tuple of acceptable conditions."""
    got, text = s.stream_error()
    wanted = condition if isinstance(condition, tuple) else (condition,)
    assert got in wanted, 'stream error <%s/> (text %r), expected <%s/>' % (
        got, text, '/> or <'.join(wanted))
    s.wait_closed()
    return got


def assert_still_serving(srv):
    """The daemon is alive and a real client can still log in and get an
    answer from the server."""
    assert srv.alive(), 'parleyd died:\n%s' % srv.log_tail()
    user = account(srv, 'survivor')
    c = xmpp_session(srv, user, PASSWORD, resource='after')
    mech = c['feature_mechanisms'].mech
    assert mech is not None and mech.name == 'SCRAM-SHA-256-PLUS', mech and mech.name
    result = xmpp_run(c['xep_0199'].send_ping(srv.host, timeout=5), 6)
    assert result['type'] == 'result', result
    xmpp_disconnect(c)


def raw_session(srv, user, resource='raw'):
    """A raw stream on the PLAIN-without-TLS listener, authenticated and
    bound; returns (stream, full JID)."""
    s = RawStream(plain_port(srv))
    jid = s.login_plain(account(srv, user), PASSWORD, resource=resource)
    return s, jid


def connected(srv):
    rc, out, err = srv.ctl('connected_users')
    assert rc == 0, err
    return out.splitlines()


# ------------------------------------------------------ malformed input

@test
def rfc6120_4_9_3_13_not_well_formed_before_authentication(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.send('<message><body>mismatched</bdoy></message>')
        expect_stream_error(s, 'not-well-formed')
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_13_not_well_formed_in_a_bound_session(srv):
    s, jid = raw_session(srv, 'badxml')
    with s:
        # Whitespace between stanzas is allowed (keepalives, RFC 6120 4.6.1).
        s.send("  \n\t <iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>\n")
        pong = s.expect(NS_CLIENT, 'iq')
        assert pong.get('type') == 'result' and pong.get('id') == 'p1', xmpp_raw.show(pong)
        assert jid in connected(srv), connected(srv)
        s.send("<message to='a@localhost'><body a='1' a='2'>dup attr</body></message>")
        expect_stream_error(s, 'not-well-formed')
    assert jid not in connected(srv), 'the failed session is still listed: %s' % connected(srv)
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_9_invalid_from_for_someone_elses_address(srv):
    s, jid = raw_session(srv, 'spoofer', resource='r1')
    with s:
        # Its own bare and full JID are fine (RFC 6120 8.1.2.1).
        bare = jid.split('/')[0]
        for i, frm in enumerate((bare, jid)):
            s.send("<iq type='get' id='ok%d' from='%s' to='localhost'>"
                   "<ping xmlns='urn:xmpp:ping'/></iq>" % (i, frm))
            pong = s.expect(NS_CLIENT, 'iq')
            assert pong.get('type') == 'result', xmpp_raw.show(pong)
        # Another resource of the same account, or another account: not.
        s.send("<message from='%s/other' to='%s'><body>x</body></message>" % (bare, bare))
        expect_stream_error(s, 'invalid-from')
    assert jid not in connected(srv), connected(srv)
    s2, jid2 = raw_session(srv, 'spoofer2', resource='r1')
    with s2:
        s2.send("<message from='somebody@localhost/x' to='%s'><body>x</body></message>" % jid2)
        expect_stream_error(s2, 'invalid-from')
    assert_still_serving(srv)


@test
def rfc6120_11_6_invalid_utf8_closes_the_stream(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.send(b"<message to='a@localhost'><body>\xff\xfe\xc3</body></message>")
        # Ill-formed UTF-8 breaks well-formedness (section 11.3); section
        # 11.6 suggests unsupported-encoding for data that is not UTF-8.
        # Both are right; anything else (or no error) is not.
        expect_stream_error(s, ('not-well-formed', 'unsupported-encoding'))
    assert_still_serving(srv)


# --------------------------------------------------------------- limits

@test
def rfc6120_4_9_3_14_policy_violation_stanza_over_max_stanza_size(srv):
    s, jid = raw_session(srv, 'bigstanza')
    with s:
        # Under the limit passes: a result to a ping with ~3 KB of id.
        small = 'x' * (SMALL_STANZA - 1024)
        s.send("<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>" % small)
        pong = s.expect(NS_CLIENT, 'iq')
        assert pong.get('type') == 'result', xmpp_raw.show(pong)
        body = 'y' * (SMALL_STANZA + 2000)
        s.send("<message to='%s'><body>%s</body></message>" % (jid, body))
        expect_stream_error(s, 'policy-violation')
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_14_policy_violation_stanza_that_would_grow_when_written(srv):
    # Under 1 KB as sent, but the long prefixed namespace would have to be
    # declared again on each of its 20 elements when written to the
    # recipient (about 5 KB): refused like an oversize stanza.
    s, jid = raw_session(srv, 'nsgrow')
    with s:
        uri = 'urn:' + 'u' * 200
        inner = '<y><p:x>' * 20 + '</p:x></y>' * 20
        s.send("<message to='%s'><p:x xmlns:p='%s'>%s</p:x></message>" % (jid, uri, inner))
        expect_stream_error(s, 'policy-violation')
    # The same shape with a short namespace goes through to the user.
    s, jid = raw_session(srv, 'nsgrow2')
    with s:
        inner = '<y><p:x>' * 20 + '</p:x></y>' * 20
        s.send("<message to='%s' id='ok'><p:x xmlns:p='urn:p'>%s</p:x></message>" % (jid, inner))
        got = s.expect(NS_CLIENT, 'message')
        assert got.get('id') == 'ok', xmpp_raw.show(got)
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_14_policy_violation_unterminated_attribute_value(srv):
    # libxml2 buffers an open attribute value without any callback: the
    # limit must hold for bytes held unparsed too.
    with RawStream(plain_port(srv)) as s:
        s.open()
        s.send("<message to='" + 'z' * (SMALL_STANZA + 2000))
        expect_stream_error(s, 'policy-violation')
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_14_policy_violation_after_five_sasl_failures(srv):
    user = account(srv, 'fivefail')
    with RawStream(plain_port(srv)) as s:
        s.open()
        for attempt in range(1, 6):
            cond = xmpp_raw.sasl_failure_condition(s.auth_plain(user, 'wrong-%d' % attempt))
            assert cond == 'not-authorized', (attempt, cond)
        # RFC 6120 6.4.5: past the allowed retries the stream is closed.
        expect_stream_error(s, 'policy-violation')
    # Retries below the limit still allow the right password afterwards.
    with RawStream(plain_port(srv)) as s:
        s.open()
        for attempt in range(2):
            assert xmpp_raw.sasl_failure_condition(s.auth_plain(user, 'nope')) == 'not-authorized'
        ok = s.auth_plain(user, PASSWORD)
        assert ok is not None and ok.tag == tag(NS_SASL, 'success'), xmpp_raw.show(ok)
    assert_still_serving(srv)


@test
def rfc6120_6_4_5_channel_binding_failures_count_toward_the_limit(srv):
    user = account(srv, 'cbfail')
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.starttls()
        good = hashlib.sha256(s.peer_cert()).digest()
        # Each a different way to fail: a downgrade ('y' while -PLUS was
        # offered), wrong binding data, an unknown binding type, 'n' with
        # -PLUS, wrong binding data again.
        attempts = [
            (dict(mech='SCRAM-SHA-256', cb_flag='y'), 'not-authorized'),
            (dict(mech='SCRAM-SHA-256-PLUS', cb_type='tls-server-end-point',
                  cb_data=bytes(32)), 'not-authorized'),
            (dict(mech='SCRAM-SHA-1-PLUS', cb_type='no-such-binding', cb_data=good),
             'malformed-request'),
            (dict(mech='SCRAM-SHA-1-PLUS', cb_flag='n'), 'malformed-request'),
            (dict(mech='SCRAM-SHA-1-PLUS', cb_type='tls-server-end-point',
                  cb_data=good[::-1]), 'not-authorized'),
        ]
        for i, (kw, want) in enumerate(attempts, 1):
            reply, _ = s.auth_scram(user, PASSWORD, **kw)
            cond = xmpp_raw.sasl_failure_condition(reply)
            assert cond == want, (i, kw, cond)
        expect_stream_error(s, 'policy-violation')
    # Four such failures leave the fifth attempt free to succeed.
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.starttls()
        good = hashlib.sha256(s.peer_cert()).digest()
        for _ in range(4):
            reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-1', cb_flag='y')
            assert xmpp_raw.sasl_failure_condition(reply) == 'not-authorized'
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=good)
        assert reply is not None and reply.tag == tag(NS_SASL, 'success'), xmpp_raw.show(reply)
        assert scram.server_verified, xmpp_raw.show(reply)
    assert_still_serving(srv)


# ------------------------------------------------------- stream header

@test
def rfc6120_4_9_3_6_host_unknown_for_a_foreign_domain(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.send(header(to='not-served.example'))
        expect_stream_error(s, 'host-unknown')
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_10_invalid_namespace_for_the_streams_prefix(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.send(header(stream_ns='http://example.com/not-streams'))
        expect_stream_error(s, 'invalid-namespace')
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_10_invalid_namespace_jabber_server_on_c2s(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.send(header(ns=NS_SERVER))
        expect_stream_error(s, 'invalid-namespace')
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_10_non_stream_root_element(srv):
    # A root in no streams namespace at all.
    with RawStream(srv.ports['c2s']) as s:
        s.send("<?xml version='1.0'?><hello xmlns='jabber:client' to='localhost'>")
        expect_stream_error(s, 'invalid-namespace')
    # The right namespace but not <stream/>.
    with RawStream(srv.ports['c2s']) as s:
        s.send(header(root='stream:features'))
        expect_stream_error(s, ('bad-format', 'invalid-namespace'))
    assert_still_serving(srv)


@test
def rfc6120_4_9_3_25_unsupported_version(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.send(header(version='2.0'))
        expect_stream_error(s, 'unsupported-version')
        assert s.stream_attrs.get('version') == '1.0', s.stream_attrs
    assert_still_serving(srv)


# ------------------------------------------------- restricted XML (11.1)

@test
def rfc6120_11_1_restricted_xml_document_type_declaration(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'boom'>]>"
               + header(decl=False))
        expect_stream_error(s, 'restricted-xml')
    assert_still_serving(srv)


@test
def rfc6120_11_1_restricted_xml_comment(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.send('<!-- a comment -->')
        expect_stream_error(s, 'restricted-xml')
    assert_still_serving(srv)


@test
def rfc6120_11_1_restricted_xml_processing_instruction(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.send("<?parley please?>")
        expect_stream_error(s, 'restricted-xml')
    assert_still_serving(srv)


@test
def rfc6120_11_1_restricted_xml_comment_inside_a_stanza(srv):
    s, jid = raw_session(srv, 'comment')
    with s:
        s.send("<message to='%s'><body>hi<!-- hidden --></body></message>" % jid)
        expect_stream_error(s, 'restricted-xml')
    assert_still_serving(srv)


@test
def rfc6120_11_1_undeclared_entity_reference(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.send("<message to='a@localhost'><body>&boom;</body></message>")
        # Section 11.1: no entity references but the five predefined ones.
        expect_stream_error(s, 'restricted-xml')
    assert_still_serving(srv)


# ------------------------------------------------------ order of things

@test
def rfc6120_4_9_3_12_not_authorized_for_stanzas_before_authentication(srv):
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.send("<message to='someone@localhost'><body>too early</body></message>")
        expect_stream_error(s, 'not-authorized')
    # After TLS but still before SASL: the same.
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        s.starttls()
        s.send("<iq type='get' id='q1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        expect_stream_error(s, 'not-authorized')
    assert_still_serving(srv)


@test
def rfc6120_7_not_authorized_for_stanzas_before_resource_binding(srv):
    user = account(srv, 'nobind')
    with RawStream(plain_port(srv)) as s:
        s.open()
        ok = s.auth_plain(user, PASSWORD)
        assert ok is not None and ok.tag == tag(NS_SASL, 'success'), xmpp_raw.show(ok)
        features = s.restart()
        assert features.find('{urn:ietf:params:xml:ns:xmpp-bind}bind') is not None, \
            xmpp_raw.show(features)
        assert features.find(tag(NS_SASL, 'mechanisms')) is None, \
            'SASL offered again after success: %s' % xmpp_raw.show(features)
        s.send("<message to='%s@localhost'><body>unbound</body></message>" % user)
        expect_stream_error(s, 'not-authorized')
    assert_still_serving(srv)


@test
def rfc6120_6_4_6_no_sasl_or_binding_types_after_plus_success(srv):
    user = account(srv, 'afterplus')
    with RawStream(srv.ports['c2s']) as s:
        s.open()
        features = s.starttls()
        assert features.find(tag(NS_SASL_CB, 'sasl-channel-binding')) is not None, \
            xmpp_raw.show(features)
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point',
                                    cb_data=hashlib.sha256(s.peer_cert()).digest())
        assert reply is not None and reply.tag == tag(NS_SASL, 'success'), xmpp_raw.show(reply)
        assert scram.server_verified
        after = s.restart()
        assert after.find('{urn:ietf:params:xml:ns:xmpp-bind}bind') is not None, \
            xmpp_raw.show(after)
        assert after.find(tag(NS_SASL, 'mechanisms')) is None, xmpp_raw.show(after)
        assert after.find(tag(NS_SASL_CB, 'sasl-channel-binding')) is None, \
            'binding types offered after authentication: %s' % xmpp_raw.show(after)
        # A second authentication on the same stream is a protocol error.
        s.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
               % (NS_SASL, xmpp_raw.b64('n,,n=%s,r=again' % user)))
        expect_stream_error(s, 'policy-violation')
    assert_still_serving(srv)


@test
def rfc6120_6_5_4_encryption_required_for_sasl_before_starttls(srv):
    user = account(srv, 'needtls')
    with RawStream(srv.ports['c2s']) as s:
        features = s.open()
        assert features.find(tag(NS_TLS, 'starttls')) is not None
        cond = xmpp_raw.sasl_failure_condition(s.auth_plain(user, PASSWORD))
        assert cond == 'encryption-required', cond
        # A SASL failure is not a stream error: the stream stays open, and
        # the client is still not authenticated.
        s.send("<message to='%s@localhost'><body>sneak</body></message>" % user)
        expect_stream_error(s, 'not-authorized')
    assert_still_serving(srv)


if __name__ == '__main__':
    main(threads=THREADS, listen=LISTEN)
