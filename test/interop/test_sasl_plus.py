"""SASL channel binding (SCRAM-*-PLUS, RFC 5802 section 6; XEP-0440) driven
by a SCRAM client written here over a bare socket, so that every part of
the exchange can be chosen: the gs2 flag, the binding type, the binding
data and the gs2 header echoed in c=.

The binding data the client sends is computed on the client's side of the
TLS session: tls-server-end-point is the SHA-256 of the server
certificate's DER (the generated certificate is ECDSA with SHA-256, RFC 5929
section 4.1), tls-unique the first Finished message (Python's
get_channel_binding). Python cannot export keying material, so a correct
tls-exporter is covered by the unit test test/unit/test_tls.c; here only a
wrong one is sent.

Listeners: the default ones, plus a c2s where STARTTLS is optional, for
SCRAM on a stream without TLS (no -PLUS offered, the 'y' flag is fine).

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_sasl_plus.py
"""

import hashlib
import os
import ssl

import parley
from parley import test, main
import xmpp_raw
from xmpp_raw import RawStream, NS_SASL, NS_SASL_CB, NS_TLS, tag

THREADS = 2
OPTIONAL_TLS = {'module': 'c2s', 'starttls_required': False}
LISTEN = list(parley.MODULES) + [OPTIONAL_TLS]

PASSWORD = 'plus-pw-4711'       # ASCII: the raw client does no SASLprep
ALL_TYPES = ['tls-exporter', 'tls-server-end-point', 'tls-unique']
# ecdsa-with-SHA256 (1.2.840.10045.4.3.2) as a DER object identifier
ECDSA_SHA256_OID = bytes.fromhex('06082a8648ce3d040302')

_accounts = {}      # data_dir -> users registered on that server


# ------------------------------------------------------ building blocks

def account(srv, name):
    done = _accounts.setdefault(srv.data_dir, set())
    if name not in done:
        srv.register(name, PASSWORD)
        done.add(name)
    return name


def optional_tls_port(srv):
    for item in srv.listeners:
        if item['module'] == 'c2s' and item.get('starttls_required') is False:
            return item['port']
    raise AssertionError('no c2s listener with starttls_required: false')


def tls_stream(srv, tls_max=None, direct=False):
    """A stream on TLS (STARTTLS on c2s, or direct TLS on c2s_tls) that has
    sent its header; returns (stream, <features/> after TLS)."""
    if direct:
        s = RawStream(srv.ports['c2s_tls'], tls=True, tls_max=tls_max)
        return s, s.open()
    s = RawStream(srv.ports['c2s'], tls_max=tls_max)
    s.open()
    return s, s.starttls()


def end_point(s):
    """tls-server-end-point for the server certificate seen on s."""
    der = s.peer_cert()
    # RFC 5929 section 4.1: the hash is the certificate's signature hash;
    # that is SHA-256 only because this certificate is ECDSA-SHA256.
    assert ECDSA_SHA256_OID in der, 'the server certificate is not ecdsa-with-SHA256'
    return hashlib.sha256(der).digest()


def flipped(data):
    return bytes([data[0] ^ 0x01]) + data[1:]


def expect_success(s, reply, scram):
    assert reply is not None and reply.tag == tag(NS_SASL, 'success'), \
        'expected <success/>, got %s' % xmpp_raw.show(reply)
    assert scram.server_verified, \
        'the server signature v= in <success/> is wrong: %r' % (reply.text,)


def expect_failure(reply, condition):
    got = xmpp_raw.sasl_failure_condition(reply)
    assert got == condition, 'SASL failure <%s/>, expected <%s/>: %s' % (
        got, condition, xmpp_raw.show(reply))


def bind_and_check_log(srv, s, user, mech):
    """After <success/>: restart, bind, and the server logged the mechanism."""
    features = s.restart()
    assert features.find('{urn:ietf:params:xml:ns:xmpp-bind}bind') is not None, \
        xmpp_raw.show(features)
    jid = s.bind('plus')
    assert jid == srv.jid(user, 'plus'), jid
    line = '%s@%s authenticated (%s)' % (user, srv.host, mech)
    assert srv.wait_log(line, 3), 'server log lacks %r' % line


# ------------------------------------------------- bindings that work

@test
def rfc5929_4_tls_server_end_point_scram_sha_256_plus(srv):
    user = account(srv, 'endpoint256')
    s, features = tls_stream(srv)
    with s:
        assert 'SCRAM-SHA-256-PLUS' in xmpp_raw.mechanisms(features), xmpp_raw.show(features)
        assert 'tls-server-end-point' in xmpp_raw.channel_binding_types(features)
        # The certificate on the wire is the one the server generated.
        with open(srv.cert_path()) as f:
            pem = f.read()
        first = pem[:pem.index('-----END CERTIFICATE-----') + 25]
        assert ssl.PEM_cert_to_DER_cert(first) == s.peer_cert()
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=end_point(s))
        expect_success(s, reply, scram)
        bind_and_check_log(srv, s, user, 'SCRAM-SHA-256-PLUS')


@test
def rfc5929_4_tls_server_end_point_scram_sha_1_plus_over_direct_tls(srv):
    user = account(srv, 'endpoint1')
    s, features = tls_stream(srv, direct=True)
    with s:
        assert 'SCRAM-SHA-1-PLUS' in xmpp_raw.mechanisms(features), xmpp_raw.show(features)
        # The binding's hash is the certificate's, not SCRAM's SHA-1.
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-1-PLUS',
                                    cb_type='tls-server-end-point', cb_data=end_point(s))
        expect_success(s, reply, scram)
        bind_and_check_log(srv, s, user, 'SCRAM-SHA-1-PLUS')


@test
def rfc5929_3_tls_unique_over_tls_1_2(srv):
    user = account(srv, 'unique12')
    s, features = tls_stream(srv, tls_max=ssl.TLSVersion.TLSv1_2)
    with s:
        assert s.tls_version() == 'TLSv1.2', s.tls_version()
        assert 'tls-unique' in xmpp_raw.channel_binding_types(features)
        cb = s.tls_unique()
        assert cb is not None and len(cb) == 12, cb     # a TLS 1.2 verify_data
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-unique', cb_data=cb)
        expect_success(s, reply, scram)
        bind_and_check_log(srv, s, user, 'SCRAM-SHA-256-PLUS')


@test
def tls_unique_over_tls_1_3_as_slixmpp_computes_it(srv):
    # Not advertised under TLS 1.3 (RFC 9266 section 3), but accepted from
    # clients that take the client Finished anyway, as slixmpp 1.8 does.
    user = account(srv, 'unique13')
    s, features = tls_stream(srv, tls_max=ssl.TLSVersion.TLSv1_3)
    with s:
        assert s.tls_version() == 'TLSv1.3', s.tls_version()
        cb = s.tls_unique()
        assert cb is not None and len(cb) in (32, 48), cb
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-1-PLUS',
                                    cb_type='tls-unique', cb_data=cb)
        expect_success(s, reply, scram)
        bind_and_check_log(srv, s, user, 'SCRAM-SHA-1-PLUS')


# ------------------------------------------- bindings that must not work

@test
def rfc5802_6_wrong_end_point_data_not_authorized(srv):
    user = account(srv, 'wrongcb')
    s, _ = tls_stream(srv)
    with s:
        good = end_point(s)
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=flipped(good))
        expect_failure(reply, 'not-authorized')
        assert not scram.server_verified
        # The hash of some other certificate-sized blob: also refused.
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-server-end-point',
                                cb_data=hashlib.sha256(b'not the certificate').digest())
        expect_failure(reply, 'not-authorized')
        # No data at all after the header.
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-server-end-point', cb_data=b'')
        expect_failure(reply, 'not-authorized')
        # The same stream, the right data: the failures were the binding's.
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=good)
        expect_success(s, reply, scram)


@test
def rfc5929_3_tls_unique_of_another_connection_not_authorized(srv):
    # What a man in the middle would have: a valid binding, of its own
    # TLS session with the server.
    user = account(srv, 'otherconn')
    tls12 = ssl.TLSVersion.TLSv1_2
    a, _ = tls_stream(srv, tls_max=tls12)
    b, _ = tls_stream(srv, tls_max=tls12)
    with a, b:
        assert a.tls_unique() != b.tls_unique()
        reply, _ = b.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-unique', cb_data=a.tls_unique())
        expect_failure(reply, 'not-authorized')
        reply, _ = b.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-unique', cb_data=flipped(b.tls_unique()))
        expect_failure(reply, 'not-authorized')
        reply, scram = b.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-unique', cb_data=b.tls_unique())
        expect_success(b, reply, scram)


@test
def rfc9266_tls_exporter_with_made_up_data_not_authorized(srv):
    user = account(srv, 'exporter')
    s, features = tls_stream(srv)
    with s:
        assert 'tls-exporter' in xmpp_raw.channel_binding_types(features)
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-exporter', cb_data=os.urandom(32))
        expect_failure(reply, 'not-authorized')
        # The end point's 32 bytes are not the exporter's either.
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-exporter', cb_data=end_point(s))
        expect_failure(reply, 'not-authorized')


@test
def rfc5802_7_c_must_echo_the_gs2_header_of_client_first(srv):
    user = account(srv, 'echohdr')
    s, _ = tls_stream(srv)
    with s:
        cb = end_point(s)
        # Bound in client-first, "n,," in c=: a downgrade after the fact.
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-server-end-point', cb_data=cb, c_header='n,,')
        expect_failure(reply, 'not-authorized')
        # Another binding type named in c= than in client-first.
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-server-end-point', cb_data=cb,
                                c_header='p=tls-exporter,,')
        expect_failure(reply, 'not-authorized')
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=cb)
        expect_success(s, reply, scram)


@test
def rfc5802_6_unknown_channel_binding_type_malformed_request(srv):
    user = account(srv, 'unknowncb')
    s, _ = tls_stream(srv)
    with s:
        for cb_type in ('unknown-type', 'tls-unique-for-telnet'):
            reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type=cb_type, cb_data=end_point(s))
            expect_failure(reply, 'malformed-request')
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=end_point(s))
        expect_success(s, reply, scram)


@test
def rfc5802_6_plus_mechanism_needs_the_p_flag(srv):
    user = account(srv, 'plusflag')
    s, _ = tls_stream(srv)
    with s:
        # 'n' (no binding support) and 'y' (thinks the server has none)
        # both contradict choosing a -PLUS mechanism.
        for flag in ('n', 'y'):
            reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS', cb_flag=flag)
            expect_failure(reply, 'malformed-request')
            assert scram.server_signature is None, 'the server sent a challenge'
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-1-PLUS', cb_flag='n')
        expect_failure(reply, 'malformed-request')


@test
def rfc5802_6_p_flag_with_a_mechanism_without_plus(srv):
    user = account(srv, 'pnoplus')
    s, _ = tls_stream(srv)
    with s:
        for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1'):
            reply, scram = s.auth_scram(user, PASSWORD, mech, cb_type='tls-server-end-point',
                                        cb_data=end_point(s))
            expect_failure(reply, 'malformed-request')
            assert scram.server_signature is None, 'the server sent a challenge'


@test
def rfc5802_6_y_flag_refused_when_plus_was_offered(srv):
    # A client that could bind but saw no -PLUS offer: over TLS the offer
    # was made, so someone removed it on the way (a downgrade).
    user = account(srv, 'yflag')
    s, features = tls_stream(srv)
    with s:
        assert 'SCRAM-SHA-256-PLUS' in xmpp_raw.mechanisms(features)
        for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1'):
            reply, scram = s.auth_scram(user, PASSWORD, mech, cb_flag='y')
            expect_failure(reply, 'not-authorized')
            assert scram.server_signature is None, 'the server sent a challenge'
        # The same exchange from a client without binding support ('n'),
        # same password, same stream: that one is fine.
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256', cb_flag='n')
        expect_success(s, reply, scram)
        bind_and_check_log(srv, s, user, 'SCRAM-SHA-256')


@test
def rfc5802_6_y_flag_accepted_without_tls(srv):
    user = account(srv, 'yplain')
    port = optional_tls_port(srv)
    with RawStream(port) as s:
        features = s.open()
        assert not s.tls
        mechs = xmpp_raw.mechanisms(features)
        assert mechs == ['SCRAM-SHA-256', 'SCRAM-SHA-1'], mechs
        assert xmpp_raw.channel_binding_types(features) is None, \
            'channel binding advertised without TLS: %s' % xmpp_raw.show(features)
        # Nothing to bind to: -PLUS is not a mechanism here.
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-server-end-point', cb_data=b'\0' * 32)
        expect_failure(reply, 'invalid-mechanism')
        reply, _ = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-1', cb_type='tls-unique',
                                cb_data=b'\0' * 12)
        expect_failure(reply, 'malformed-request')
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-1', cb_flag='y')
        expect_success(s, reply, scram)
        bind_and_check_log(srv, s, user, 'SCRAM-SHA-1')
    with RawStream(port) as s:
        s.open()
        reply, scram = s.auth_scram(user, PASSWORD, 'SCRAM-SHA-256', cb_flag='y')
        expect_success(s, reply, scram)


@test
def rfc5802_wrong_password_with_a_good_binding_not_authorized(srv):
    user = account(srv, 'plusbadpw')
    s, _ = tls_stream(srv)
    with s:
        reply, scram = s.auth_scram(user, 'not-' + PASSWORD, 'SCRAM-SHA-256-PLUS',
                                    cb_type='tls-server-end-point', cb_data=end_point(s))
        expect_failure(reply, 'not-authorized')
        assert not scram.server_verified


# ------------------------------------------------------- advertisement

@test
def xep0440_binding_types_tls_1_2_include_tls_unique(srv):
    for direct in (False, True):
        s, features = tls_stream(srv, tls_max=ssl.TLSVersion.TLSv1_2, direct=direct)
        with s:
            assert s.tls_version() == 'TLSv1.2', s.tls_version()
            types = xmpp_raw.channel_binding_types(features)
            assert types == ALL_TYPES, (direct, types, xmpp_raw.show(features))
            mechs = xmpp_raw.mechanisms(features)
            assert mechs[:2] == ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'], mechs


@test
def xep0440_binding_types_tls_1_3_leave_out_tls_unique(srv):
    for direct in (False, True):
        s, features = tls_stream(srv, tls_max=ssl.TLSVersion.TLSv1_3, direct=direct)
        with s:
            assert s.tls_version() == 'TLSv1.3', s.tls_version()
            cb = features.find(tag(NS_SASL_CB, 'sasl-channel-binding'))
            assert cb is not None, xmpp_raw.show(features)
            types = xmpp_raw.channel_binding_types(features)
            assert types == ['tls-exporter', 'tls-server-end-point'], (direct, types)
            # Only channel-binding children, each with a type.
            assert all(c.tag == tag(NS_SASL_CB, 'channel-binding') and c.get('type')
                       for c in cb), xmpp_raw.show(cb)
            assert features.find(tag(NS_TLS, 'starttls')) is None


if __name__ == '__main__':
    main(threads=THREADS, listen=LISTEN)
