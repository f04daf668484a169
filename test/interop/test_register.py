"""In-Band Registration (XEP-0077) with slixmpp, aioxmpp and a raw stream:
off by default (no <register/> feature, no account made), account creation
before authentication where mod_register is enabled, its errors, the
per-IP `registration_timeout`, password change for every logged-in user
(with or without mod_register) and account removal.

Every client here connects from 127.0.0.1, so the functional tests use a
server with `registration_timeout: 0` and the limit has a server of its own.

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_register.py
"""

import time

import parley
from parley import (test, main, Server, xmpp_client, xmpp_connect, xmpp_session,
                    xmpp_run, xmpp_sleep, XmppConnectError)
from xmpp_raw import RawStream, NS_CLIENT, NS_STREAMS, tag, show

NS_REGISTER = 'jabber:iq:register'
NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'

IBR_CONFIG = '''
modules:
  mod_disco: {}
  mod_ping: {}
  mod_register: {registration_timeout: 0}
'''

_servers = {}


def ibr_server():
    """One server with in-band registration and no rate limit."""
    if 'ibr' not in _servers or not _servers['ibr'].alive():
        _servers['ibr'] = Server(threads=2, extra_config=IBR_CONFIG)
    return _servers['ibr']


def raw_after_tls(srv):
    """A raw stream past STARTTLS, before authentication; returns (stream,
    features)."""
    s = RawStream(srv.ports['c2s'])
    s.open()
    return s, s.starttls()


def raw_iq(s, payload, itype='set', iq_id='r1'):
    s.send("<iq type='%s' id='%s'>%s</iq>" % (itype, iq_id, payload))
    r = s.expect(NS_CLIENT, 'iq')
    assert r.get('id') == iq_id, show(r)
    return r


def condition(iq):
    err = iq.find('{%s}error' % NS_CLIENT)
    assert iq.get('type') == 'error' and err is not None, show(iq)
    for child in err:
        if child.tag.startswith('{%s}' % NS_STANZAS) and not child.tag.endswith('}text'):
            return child.tag.split('}', 1)[1]
    raise AssertionError('no condition: %s' % show(iq))


def register_query(user, password):
    parts = ''
    if user is not None:
        parts += '<username>%s</username>' % user
    if password is not None:
        parts += '<password>%s</password>' % password
    return "<query xmlns='%s'>%s</query>" % (NS_REGISTER, parts)


def can_login(srv, user, password):
    try:
        c = xmpp_session(srv, user, password, resource='check', plugins=('xep_0030',))
    except XmppConnectError as e:
        if e.kind == 'failed_all_auth':
            return False
        raise
    c.abort()
    return True


def slixmpp_register(srv, user, password):
    """The XEP-0077 stream feature flow as slixmpp runs it: the form, the
    answer, then SASL with the new account. Returns the logged-in client
    and what the registration answered."""
    c = xmpp_client('%s@localhost/reg' % user, password, srv.ports['c2s'],
                    plugins=('xep_0030', 'xep_0004', 'xep_0066', 'xep_0077'))
    # slixmpp 1.8 holds back stanzas until the session starts, and the
    # registration happens before: let them through, as its IBR example
    # clients must.
    c._always_send_everything = True
    result = {}

    async def on_register(form):
        result['form'] = form
        resp = c.Iq()
        resp['type'] = 'set'
        resp['register']['username'] = user
        resp['register']['password'] = password
        try:
            r = await resp.send(timeout=10)
            result['type'] = r['type']
        except Exception as e:     # IqError: the test asserts on it
            result['type'] = 'error'
            result['error'] = e.iq['error']['condition']
    c.add_event_handler('register', on_register)
    return xmpp_connect(c), result


# -------------------------------------------------------------- disabled

@test
def xep0077_off_by_default_no_feature_no_account(srv):
    s, features = raw_after_tls(srv)
    try:
        assert features.find(tag(NS_REGISTER_FEATURE, 'register')) is None, show(features)
        s.send("<iq type='set' id='r1'>%s</iq>" % register_query('sneaky', 'pw'))
        cond, _ = s.stream_error()
        assert cond == 'not-authorized', cond
    finally:
        s.close()
    assert not can_login(srv, 'sneaky', 'pw'), 'an account was created'
    srv.register('discouser', 'pw')
    c = xmpp_session(srv, 'discouser', 'pw', plugins=('xep_0030',))
    info = xmpp_run(c['xep_0030'].get_info(jid='localhost', local=False))
    assert NS_REGISTER not in info['disco_info']['features']


# -------------------------------------------------------------- enabled

@test
def xep0077_enabled_feature_form_and_disco():
    srv = ibr_server()
    s, features = raw_after_tls(srv)
    try:
        assert features.find(tag(NS_REGISTER_FEATURE, 'register')) is not None, show(features)
        r = raw_iq(s, "<query xmlns='%s'/>" % NS_REGISTER, itype='get')
        q = r.find('{%s}query' % NS_REGISTER)
        assert r.get('type') == 'result' and q is not None, show(r)
        for field in ('username', 'password', 'instructions'):
            assert q.find('{%s}%s' % (NS_REGISTER, field)) is not None, show(r)
    finally:
        s.close()
    srv.register('ibrdisco', 'pw')
    c = xmpp_session(srv, 'ibrdisco', 'pw', plugins=('xep_0030',))
    info = xmpp_run(c['xep_0030'].get_info(jid='localhost', local=False))
    assert NS_REGISTER in info['disco_info']['features']


@test
def xep0077_slixmpp_registers_then_logs_in():
    srv = ibr_server()
    c, result = slixmpp_register(srv, 'slixnew', 'slix-pw')
    assert result.get('type') == 'result', result
    assert c.boundjid.bare == 'slixnew@localhost'
    # Logged in, the account says it is registered (§3.1).
    r = xmpp_run(c['xep_0077'].get_registration())
    assert r['register']['registered'] and r['register']['username'] == 'slixnew', str(r)
    assert can_login(srv, 'slixnew', 'slix-pw')


@test
def xep0077_aioxmpp_registers_and_changes_password():
    import aioxmpp
    import aioxmpp.connector
    import aioxmpp.ibr
    import aioxmpp.node
    srv = ibr_server()
    peer = [('127.0.0.1', srv.ports['c2s'], aioxmpp.connector.STARTTLSConnector())]
    jid = aioxmpp.JID.fromstr('aionew@localhost')

    async def run():
        _, stream, _ = await aioxmpp.node.connect_xmlstream(
            jid, aioxmpp.make_security_layer(None, no_verify=True), override_peer=peer)
        fields = await aioxmpp.ibr.get_registration_fields(stream)
        used = aioxmpp.ibr.get_used_fields(fields)
        await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query('aionew', 'first'))
        stream.close()
        client = aioxmpp.PresenceManagedClient(
            jid.replace(resource='a'), aioxmpp.make_security_layer('first', no_verify=True),
            override_peer=peer)
        async with client.connected():
            await client.summon(aioxmpp.ibr.RegistrationService).change_pass('second')
        return used
    used = xmpp_run(run(), 30)
    assert (NS_REGISTER, 'username') in used and (NS_REGISTER, 'password') in used, used
    assert not can_login(srv, 'aionew', 'first')
    assert can_login(srv, 'aionew', 'second')


@test
def xep0077_errors_before_authentication():
    srv = ibr_server()
    srv.register('taken', 'pw')
    s, _ = raw_after_tls(srv)
    try:
        assert condition(raw_iq(s, register_query('taken', 'other'), iq_id='a')) == 'conflict'
        assert condition(raw_iq(s, register_query('nopass', None), iq_id='b')) == \
            'not-acceptable'
        assert condition(raw_iq(s, register_query(None, 'pw'), iq_id='c')) == 'not-acceptable'
        assert condition(raw_iq(s, register_query('bad@name', 'pw'), iq_id='d')) == \
            'jid-malformed'
        r = raw_iq(s, "<query xmlns='%s'><remove/></query>" % NS_REGISTER, iq_id='e')
        assert condition(r) == 'not-authorized'
        # The stream is still usable: a good registration after the errors.
        r = raw_iq(s, register_query('afterrors', 'pw'), iq_id='f')
        assert r.get('type') == 'result', show(r)
    finally:
        s.close()
    assert can_login(srv, 'taken', 'pw'), 'conflict changed the existing account'
    assert can_login(srv, 'afterrors', 'pw')


@test
def xep0077_not_before_tls():
    srv = ibr_server()
    s = RawStream(srv.ports['c2s'])
    try:
        features = s.open()
        assert features.find(tag(NS_REGISTER_FEATURE, 'register')) is None, show(features)
        s.send("<iq type='set' id='r1'>%s</iq>" % register_query('cleartext', 'pw'))
        cond, _ = s.stream_error()
        assert cond == 'not-authorized', cond
    finally:
        s.close()
    assert not can_login(srv, 'cleartext', 'pw')


@test
def xep0077_registration_timeout_per_ip():
    srv = Server(threads=2, extra_config='''
        modules:
          mod_disco: {}
          mod_register: {registration_timeout: 600}
        ''')
    try:
        s, _ = raw_after_tls(srv)
        r = raw_iq(s, register_query('first1', 'pw'), iq_id='a')
        assert r.get('type') == 'result', show(r)
        # A failed attempt does not use up the slot, a success does.
        r = raw_iq(s, register_query('second2', 'pw'), iq_id='b')
        assert condition(r) == 'resource-constraint', show(r)
        err = r.find('{%s}error' % NS_CLIENT)
        assert err.get('type') == 'wait', show(r)
        s.close()
        s, _ = raw_after_tls(srv)
        r = raw_iq(s, register_query('third3', 'pw'), iq_id='c')
        assert condition(r) == 'resource-constraint', show(r)
        s.close()
        assert can_login(srv, 'first1', 'pw')
        assert not can_login(srv, 'second2', 'pw')
    finally:
        assert srv.stop() == 0
    srv = Server(threads=1, extra_config='''
        modules:
          mod_disco: {}
          mod_register: {}
        ''')
    try:
        s, _ = raw_after_tls(srv)
        r = raw_iq(s, register_query('taken', 'pw'), iq_id='a')
        assert r.get('type') == 'result', show(r)
        srv.register('exists', 'pw')
        r = raw_iq(s, register_query('exists', 'pw'), iq_id='b')
        assert condition(r) == 'resource-constraint', 'default 600 s not applied: %s' % show(r)
        s.close()
    finally:
        assert srv.stop() == 0


@test
def xep0077_stanzas_sent_during_registration_keep_their_order():
    srv = ibr_server()
    s, _ = raw_after_tls(srv)
    try:
        # Pipelined: the form request must be answered after the creation.
        s.send("<iq type='set' id='p1'>%s</iq><iq type='get' id='p2'><query xmlns='%s'/>"
               "</iq>" % (register_query('pipelined', 'pw'), NS_REGISTER))
        first = s.expect(NS_CLIENT, 'iq')
        second = s.expect(NS_CLIENT, 'iq')
        assert (first.get('id'), first.get('type')) == ('p1', 'result'), show(first)
        assert (second.get('id'), second.get('type')) == ('p2', 'result'), show(second)
    finally:
        s.close()


# -------------------------------------------------- after authentication

@test
def xep0077_password_change_without_mod_register(srv):
    srv.register('changer', 'old-pw')
    c = xmpp_session(srv, 'changer', 'old-pw',
                     plugins=('xep_0030', 'xep_0004', 'xep_0066', 'xep_0077'))
    r = xmpp_run(c['xep_0077'].change_password('new-pw'))
    assert r['type'] == 'result', str(r)
    assert not can_login(srv, 'changer', 'old-pw')
    assert can_login(srv, 'changer', 'new-pw')


@test
def xep0077_only_ones_own_password_and_no_removal_when_off(srv):
    import slixmpp
    srv.register('victim', 'victim-pw')
    srv.register('mallory', 'm-pw')
    c = xmpp_session(srv, 'mallory', 'm-pw',
                     plugins=('xep_0030', 'xep_0004', 'xep_0066', 'xep_0077'))
    iq = c.Iq()
    iq['type'] = 'set'
    iq['register']['username'] = 'victim'
    iq['register']['password'] = 'owned'
    try:
        xmpp_run(iq.send(timeout=10))
        raise AssertionError('changed someone else\'s password')
    except slixmpp.exceptions.IqError as e:
        assert e.iq['error']['condition'] == 'not-allowed', str(e.iq)
    assert can_login(srv, 'victim', 'victim-pw')
    # Empty password: not-acceptable.
    iq = c.Iq()
    iq['type'] = 'set'
    iq['register']['username'] = 'mallory'
    iq['register']['password'] = ''
    try:
        xmpp_run(iq.send(timeout=10))
        raise AssertionError('accepted an empty password')
    except slixmpp.exceptions.IqError as e:
        assert e.iq['error']['condition'] == 'not-acceptable', str(e.iq)
    # Removal needs mod_register on the host.
    try:
        xmpp_run(c['xep_0077'].cancel_registration())
        raise AssertionError('removed an account without mod_register')
    except slixmpp.exceptions.IqError as e:
        assert e.iq['error']['condition'] == 'not-allowed', str(e.iq)
    assert can_login(srv, 'mallory', 'm-pw')


@test
def xep0077_cancel_removes_the_account_and_ends_sessions():
    srv = ibr_server()
    srv.register('leaver', 'pw')
    c = xmpp_session(srv, 'leaver', 'pw', resource='one',
                     plugins=('xep_0030', 'xep_0004', 'xep_0066', 'xep_0077'))
    other = RawStream(srv.ports['c2s'])
    other.login_plain('leaver', 'pw', resource='two')
    r = xmpp_run(c['xep_0077'].cancel_registration())
    assert r['type'] == 'result', str(r)
    cond, _ = other.stream_error()
    assert cond == 'not-authorized', cond
    other.wait_closed()
    assert not can_login(srv, 'leaver', 'pw')
    rc, out, _ = srv.ctl('connected_users')
    assert 'leaver@' not in out, out


if __name__ == '__main__':
    main(threads=2)
