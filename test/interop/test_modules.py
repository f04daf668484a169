"""The basic server modules against real clients: slixmpp, and aioxmpp as a
second, independent stack. Service discovery lists exactly the enabled
modules (XEP-0030), software version (XEP-0092), entity time (XEP-0202),
last activity (XEP-0012), vcard-temp (XEP-0054), private XML storage
(XEP-0049), the blocking command (XEP-0191), contact addresses (XEP-0157),
the server's entity caps in the stream features (XEP-0115) and
server-initiated pings (XEP-0199 §4.2).

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_modules.py
"""

import asyncio
import base64
import datetime
import hashlib
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET

import parley
from parley import (test, main, Server, xmpp_session, xmpp_run, xmpp_sleep,
                    xmpp_disconnect, run_parleyd, write_config)
from xmpp_raw import RawStream, NS_CLIENT, NS_STREAMS, tag, show

PASSWORD = 'modules-pw'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_XDATA = 'jabber:x:data'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'
NS_PING = 'urn:xmpp:ping'

# Every module of the default set and the namespace it announces.
DEFAULT_FEATURES = {
    'mod_ping': 'urn:xmpp:ping',
    'mod_version': 'jabber:iq:version',
    'mod_time': 'urn:xmpp:time',
    'mod_last': 'jabber:iq:last',
    'mod_vcard': 'vcard-temp',
    'mod_private': 'jabber:iq:private',
    'mod_blocking': 'urn:xmpp:blocking',
}

PLUGINS = ('xep_0030', 'xep_0092', 'xep_0202', 'xep_0012', 'xep_0054',
           'xep_0191', 'xep_0199')

_accounts = {}


def account(srv, name):
    """name@localhost on srv, registered once per server."""
    key = (srv.data_dir, name)
    if key not in _accounts:
        srv.register(name, PASSWORD)
        _accounts[key] = True
    return name


def session(srv, name, resource='test', **kw):
    account(srv, name)
    return xmpp_session(srv, name, PASSWORD, resource=resource,
                        plugins=kw.pop('plugins', PLUGINS), **kw)


def iq(client, itype, payload, to=None, timeout=10):
    """Send an iq with a raw XML payload; returns (type, reply element).
    For an error reply the element is the <error/>."""
    import slixmpp
    req = client.make_iq(ito=to, itype=itype)
    req.set_payload(ET.fromstring(payload))
    try:
        reply = xmpp_run(req.send(timeout=timeout), timeout + 1)
    except slixmpp.exceptions.IqError as e:
        return 'error', e.iq.xml.find('{%s}error' % NS_CLIENT)
    return reply['type'], reply.xml


def condition(err):
    """The RFC 6120 condition of an <error/> element."""
    for child in err:
        if child.tag.startswith('{%s}' % NS_STANZAS) and not child.tag.endswith('}text'):
            return child.tag.split('}', 1)[1]
    raise AssertionError('no condition in %s' % show(err))


def expect_error(client, itype, payload, cond, to=None, etype=None):
    kind, el = iq(client, itype, payload, to)
    assert kind == 'error', 'expected %s, got %s: %s' % (cond, kind, show(el))
    assert condition(el) == cond, 'expected %s, got %s' % (cond, show(el))
    if etype:
        assert el.get('type') == etype, 'error type %s: %s' % (el.get('type'), show(el))
    return el


def server_features(client, host='localhost'):
    info = xmpp_run(client['xep_0030'].get_info(jid=host, local=False))
    return set(info['disco_info']['features']), info


def own_server(**kw):
    """A server of the test's own (other modules or options)."""
    return Server(threads=kw.pop('threads', 2), **kw)


# ----------------------------------------------------------- XEP-0030

@test
def xep0030_default_modules_each_announce_their_namespace(srv):
    c = session(srv, 'disco1')
    features, _ = server_features(c)
    for mod, ns in DEFAULT_FEATURES.items():
        assert ns in features, '%s (%s) missing from %s' % (mod, ns, sorted(features))
    # In-band registration is off unless configured.
    assert 'jabber:iq:register' not in features, sorted(features)


@test
def xep0030_modules_key_lists_only_enabled_ones():
    srv = own_server(extra_config='''
        modules:
          mod_disco: {}
          mod_ping: {}
          mod_time: {}
        ''')
    try:
        c = session(srv, 'subset')
        features, _ = server_features(c)
        assert NS_PING in features and 'urn:xmpp:time' in features, sorted(features)
        for mod, ns in DEFAULT_FEATURES.items():
            if mod not in ('mod_ping', 'mod_time'):
                assert ns not in features, '%s announced though %s is off' % (ns, mod)
        # The disabled modules do not answer either.
        expect_error(c, 'get', "<query xmlns='jabber:iq:version'/>",
                     'service-unavailable', to='localhost')
        expect_error(c, 'get', "<vCard xmlns='vcard-temp'/>", 'service-unavailable')
        expect_error(c, 'get', "<blocklist xmlns='urn:xmpp:blocking'/>",
                     'service-unavailable')
        kind, el = iq(c, 'get', "<time xmlns='urn:xmpp:time'/>", to='localhost')
        assert kind == 'result', show(el)
    finally:
        assert srv.stop() == 0


@test
def config_unknown_module_option_names_file_and_line():
    d = tempfile.mkdtemp(prefix='parley-modcfg-')
    conf = write_config(d, '''
        hosts: [localhost]
        data_dir: %s
        modules:
          mod_vcard:
            max_size: 4096
            photo_limit: 3
        ''' % d)
    rc, out, err = run_parleyd(['-c', conf, '--check-config'])
    assert rc != 0, 'accepted: %s' % out
    want = "%s:6: module 'mod_vcard': unknown option 'photo_limit'" % conf
    assert want in err, 'expected %r in %r' % (want, err)
    conf = write_config(d, '''
        hosts: [localhost]
        data_dir: %s
        modules:
          mod_ping: {send_pings: true, timeout_action: explode}
        ''' % d)
    rc, out, err = run_parleyd(['-c', conf, '--check-config'])
    assert rc != 0 and ('%s:4:' % conf) in err and 'timeout_action' in err, err


# ----------------------------------------------------- XEP-0092, 0202

@test
def xep0092_version_of_the_server(srv):
    c = session(srv, 'ver1')
    r = xmpp_run(c['xep_0092'].get_version('localhost'))
    v = r['software_version']
    assert v['name'] == 'Parley', str(r)
    assert re.match(r'^\d+\.\d+', v['version']), str(r)
    # show_os defaults to false: the OS is not revealed.
    assert r.xml.find('.//{jabber:iq:version}os') is None, str(r)


@test
def xep0092_show_os_option():
    srv = own_server(extra_config='''
        modules:
          mod_disco: {}
          mod_version: {show_os: true}
        ''')
    try:
        c = session(srv, 'ver2')
        r = xmpp_run(c['xep_0092'].get_version('localhost'))
        assert r['software_version']['os'].startswith(os.uname().sysname), str(r)
    finally:
        assert srv.stop() == 0


@test
def xep0202_entity_time_of_the_server(srv):
    c = session(srv, 'time1')
    r = xmpp_run(c['xep_0202'].get_entity_time('localhost'))
    el = r.xml.find('{urn:xmpp:time}time')
    utc = el.find('{urn:xmpp:time}utc').text
    tzo = el.find('{urn:xmpp:time}tzo').text
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$', utc), utc
    assert re.match(r'^[+-]\d\d:\d\d$', tzo), tzo
    when = datetime.datetime.strptime(utc[:19], '%Y-%m-%dT%H:%M:%S')
    now = datetime.datetime.utcnow()
    assert abs((now - when).total_seconds()) < 5, (utc, now)


@test
def xep0092_and_0202_with_aioxmpp(srv):
    import aioxmpp
    import aioxmpp.connector
    import aioxmpp.version
    account(srv, 'aio1')

    async def run():
        client = aioxmpp.PresenceManagedClient(
            aioxmpp.JID.fromstr('aio1@localhost/aio'),
            aioxmpp.make_security_layer(PASSWORD, no_verify=True),
            override_peer=[('127.0.0.1', srv.ports['c2s'],
                            aioxmpp.connector.STARTTLSConnector())])
        async with client.connected() as stream:
            v = await aioxmpp.version.query_version(
                stream, aioxmpp.JID.fromstr('localhost'))
            disco = client.summon(aioxmpp.DiscoClient)
            info = await disco.query_info(aioxmpp.JID.fromstr('localhost'))
            return v, info
    # On the harness's loop: asyncio.run() would close it for the next tests.
    v, info = xmpp_run(run(), 20)
    assert v.name == 'Parley' and v.version, (v.name, v.version)
    for ns in DEFAULT_FEATURES.values():
        assert ns in info.features, (ns, sorted(info.features))


# ------------------------------------------------------------ XEP-0012

@test
def xep0012_server_answers_its_uptime(srv):
    c = session(srv, 'last1')
    r = xmpp_run(c['xep_0012'].get_last_activity('localhost'))
    secs = int(r['last_activity']['seconds'])
    assert 0 <= secs < 3600, str(r)
    time.sleep(1.1)
    r2 = xmpp_run(c['xep_0012'].get_last_activity('localhost'))
    assert int(r2['last_activity']['seconds']) >= secs + 1, (str(r), str(r2))


@test(timeout=40)
def xep0012_last_logout_of_a_contact(srv):
    alice = session(srv, 'lastalice', resource='a')
    bob = session(srv, 'lastbob')
    carol = session(srv, 'lastcarol')
    # Online: 0 seconds, asked by the user themself.
    kind, el = iq(alice, 'get', "<query xmlns='jabber:iq:last'/>", to='lastalice@localhost')
    assert kind == 'result' and el.find('{jabber:iq:last}query').get('seconds') == '0', show(el)
    # Bob subscribes to Alice's presence and Alice approves (RFC 6121 §3.1).
    bob.send_presence(pto='lastalice@localhost', ptype='subscribe')
    xmpp_sleep(0.5)
    alice.send_presence(pto='lastbob@localhost', ptype='subscribed')
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        xmpp_sleep(0.2)
        kind, el = iq(bob, 'get', "<query xmlns='jabber:iq:last'/>", to='lastalice@localhost')
        if kind == 'result':
            break
    assert kind == 'result', 'subscribed contact refused: %s' % show(el)
    assert el.find('{jabber:iq:last}query').get('seconds') == '0', show(el)
    xmpp_disconnect(alice)
    time.sleep(2.2)
    kind, el = iq(bob, 'get', "<query xmlns='jabber:iq:last'/>", to='lastalice@localhost')
    assert kind == 'result', show(el)
    secs = int(el.find('{jabber:iq:last}query').get('seconds'))
    assert 2 <= secs < 30, show(el)
    # Not subscribed: forbidden (XEP-0012 §4).
    expect_error(carol, 'get', "<query xmlns='jabber:iq:last'/>", 'forbidden',
                 to='lastalice@localhost')


def last_of(client, bare):
    """(seconds, text) of a jabber:iq:last query about bare."""
    kind, el = iq(client, 'get', "<query xmlns='jabber:iq:last'/>", to=bare)
    assert kind == 'result', show(el)
    q = el.find('{jabber:iq:last}query')
    return int(q.get('seconds')), q.text or ''


@test(timeout=40)
def xep0012_6_status_of_the_last_unavailable_presence(srv):
    alice = session(srv, 'lasttxtalice', resource='a')
    bob = session(srv, 'lasttxtbob')
    bob.send_presence(pto='lasttxtalice@localhost', ptype='subscribe')
    xmpp_sleep(0.5)
    alice.send_presence(pto='lasttxtbob@localhost', ptype='subscribed')
    xmpp_sleep(0.5)
    # Signing off with a status: the query's text is that status.
    alice.send_presence(pstatus='here')
    alice.send_presence(ptype='unavailable', pstatus='Gone fishing')
    xmpp_sleep(0.3)
    xmpp_disconnect(alice)
    xmpp_sleep(0.3)
    secs, text = last_of(bob, 'lasttxtalice@localhost')
    assert text == 'Gone fishing' and 0 <= secs < 30, (secs, text)
    # Online: 0 and no text.
    alice = session(srv, 'lasttxtalice', resource='b')
    assert last_of(alice, 'lasttxtalice@localhost') == (0, '')
    # Available again after an unavailable: that status no longer counts,
    # and a plain disconnect leaves none.
    alice.send_presence(ptype='unavailable', pstatus='brb')
    alice.send_presence(pstatus='back')
    xmpp_sleep(0.3)
    xmpp_disconnect(alice)
    xmpp_sleep(0.3)
    secs, text = last_of(bob, 'lasttxtalice@localhost')
    assert text == '' and 0 <= secs < 30, (secs, text)


# ------------------------------------------------------------ XEP-0054

@test
def xep0054_vcard_set_and_get(srv):
    a = session(srv, 'vcarda')
    b = session(srv, 'vcardb')
    # Nothing stored yet: an empty vCard (§3.1).
    r = xmpp_run(b['xep_0054'].get_vcard('vcarda@localhost', local=False))
    el = r.xml.find('{vcard-temp}vCard')
    assert el is not None and len(el) == 0, str(r)
    card = a['xep_0054'].make_vcard()
    card['FN'] = 'Alice \u00c5ngstr\u00f6m'
    card['NICKNAME'] = 'al'
    xmpp_run(a['xep_0054'].publish_vcard(card))
    # Own vCard (bare JID) and another user's.
    for who in (a, b):
        r = xmpp_run(who['xep_0054'].get_vcard('vcarda@localhost', local=False))
        v = r.xml.find('{vcard-temp}vCard')
        assert v.findtext('{vcard-temp}FN') == 'Alice \u00c5ngstr\u00f6m', str(r)
        assert v.findtext('{vcard-temp}NICKNAME') == 'al', str(r)
    # Replaced, not merged.
    xmpp_run(a['xep_0054'].publish_vcard(a['xep_0054'].make_vcard()))
    r = xmpp_run(b['xep_0054'].get_vcard('vcarda@localhost', local=False))
    assert len(r.xml.find('{vcard-temp}vCard')) == 0, str(r)


@test
def xep0054_setting_another_users_vcard_is_forbidden(srv):
    account(srv, 'vcardvictim')
    m = session(srv, 'vcardmallory')
    expect_error(m, 'set', "<vCard xmlns='vcard-temp'><FN>owned</FN></vCard>",
                 'forbidden', to='vcardvictim@localhost')
    r = xmpp_run(m['xep_0054'].get_vcard('vcardvictim@localhost', local=False))
    assert len(r.xml.find('{vcard-temp}vCard')) == 0, str(r)
    # No such account: service-unavailable (RFC 6121 §8.5.1).
    expect_error(m, 'get', "<vCard xmlns='vcard-temp'/>", 'service-unavailable',
                 to='nobody-here@localhost')


@test
def xep0054_vcard_over_max_size_is_refused():
    srv = own_server(extra_config='''
        modules:
          mod_disco: {}
          mod_vcard: {max_size: 2048}
        ''')
    try:
        c = session(srv, 'bigcard')
        photo = 'A' * 3000
        expect_error(c, 'set', "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>%s</BINVAL>"
                     "</PHOTO></vCard>" % photo, 'not-acceptable')
        kind, el = iq(c, 'set', "<vCard xmlns='vcard-temp'><FN>small</FN></vCard>")
        assert kind == 'result', show(el)
    finally:
        assert srv.stop() == 0


# ------------------------------------------------------------ XEP-0049

@test
def xep0049_private_storage(srv):
    c = session(srv, 'priv1')
    # Nothing stored: the empty element comes back.
    kind, el = iq(c, 'get', "<query xmlns='jabber:iq:private'>"
                  "<prefs xmlns='example:prefs'/></query>")
    assert kind == 'result', show(el)
    q = el.find('{jabber:iq:private}query')
    assert len(q) == 1 and q[0].tag == '{example:prefs}prefs' and len(q[0]) == 0, show(el)
    kind, el = iq(c, 'set', "<query xmlns='jabber:iq:private'>"
                  "<prefs xmlns='example:prefs'><colour>blue</colour></prefs>"
                  "<storage xmlns='storage:bookmarks'><conference jid='r@conf.localhost'"
                  " name='Room &amp; co'/></storage></query>")
    assert kind == 'result', show(el)
    kind, el = iq(c, 'get', "<query xmlns='jabber:iq:private'>"
                  "<storage xmlns='storage:bookmarks'/></query>")
    conf = el.find('.//{storage:bookmarks}conference')
    assert conf is not None and conf.get('name') == 'Room & co', show(el)
    kind, el = iq(c, 'get', "<query xmlns='jabber:iq:private'>"
                  "<prefs xmlns='example:prefs'/></query>")
    assert el.find('.//{example:prefs}colour').text == 'blue', show(el)


@test
def xep0049_forbidden_namespace_and_other_users(srv):
    account(srv, 'privvictim')
    c = session(srv, 'privmallory')
    for ns in ('jabber:client', 'jabber:server', 'jabber:iq:private'):
        expect_error(c, 'set', "<query xmlns='jabber:iq:private'><x xmlns='%s'/></query>"
                     % ns, 'not-acceptable', etype='modify')
        expect_error(c, 'get', "<query xmlns='jabber:iq:private'><x xmlns='%s'/></query>"
                     % ns, 'not-acceptable')
    # Someone else's storage does not exist for us.
    expect_error(c, 'get', "<query xmlns='jabber:iq:private'><p xmlns='example:p'/></query>",
                 'forbidden', to='privvictim@localhost')
    expect_error(c, 'set', "<query xmlns='jabber:iq:private'><p xmlns='example:p'/></query>",
                 'forbidden', to='privvictim@localhost')
    # A get asks for exactly one namespace.
    expect_error(c, 'get', "<query xmlns='jabber:iq:private'/>", 'bad-request')


# ------------------------------------------------------------ XEP-0191

def blocklist(client):
    r = xmpp_run(client['xep_0191'].get_blocked())
    return {str(j) for j in r['blocklist']['items']}


@test
def xep0191_block_unblock_and_pushes(srv):
    a1 = session(srv, 'blka', resource='one')
    a2 = session(srv, 'blka', resource='two')
    a3 = session(srv, 'blka', resource='three')
    assert blocklist(a1) == set()
    assert blocklist(a2) == set()      # two asked: it gets pushes, three did not
    pushes = {'two': [], 'three': []}
    a2.add_event_handler('blocked', lambda i: pushes['two'].append(('block', i)))
    a2.add_event_handler('unblocked', lambda i: pushes['two'].append(('unblock', i)))
    a3.add_event_handler('blocked', lambda i: pushes['three'].append(('block', i)))
    xmpp_run(a1['xep_0191'].block(['spam@localhost', 'evil.example']))
    assert blocklist(a1) == {'spam@localhost', 'evil.example'}
    deadline = time.monotonic() + 5
    while not pushes['two'] and time.monotonic() < deadline:
        xmpp_sleep(0.1)
    kind, push = pushes['two'][0]
    items = {str(j) for j in push['block']['items']}
    assert kind == 'block' and items == {'spam@localhost', 'evil.example'}, str(push)
    xmpp_sleep(0.3)
    assert pushes['three'] == [], 'a resource that never asked got a push'
    xmpp_run(a1['xep_0191'].unblock(['spam@localhost']))
    assert blocklist(a1) == {'evil.example'}
    # Unblock everything: <unblock/> without items.
    kind, el = iq(a1, 'set', "<unblock xmlns='urn:xmpp:blocking'/>")
    assert kind == 'result', show(el)
    assert blocklist(a1) == set()
    deadline = time.monotonic() + 5
    while len(pushes['two']) < 3 and time.monotonic() < deadline:
        xmpp_sleep(0.1)
    assert [k for k, _ in pushes['two']] == ['block', 'unblock', 'unblock'], pushes['two']
    # Bad requests.
    expect_error(a1, 'set', "<block xmlns='urn:xmpp:blocking'/>", 'bad-request')
    expect_error(a1, 'set', "<block xmlns='urn:xmpp:blocking'><item jid='a@b@c'/></block>",
                 'jid-malformed')


@test
def xep0191_blocked_contact_cannot_reach_the_user(srv):
    alice = session(srv, 'blkalice')
    bob = session(srv, 'blkbob')
    got = []
    alice.add_event_handler('message', lambda m: m['type'] != 'error' and got.append(m))
    bob_got = []
    bob.add_event_handler('message', lambda m: bob_got.append(m))
    xmpp_run(alice['xep_0191'].block('blkbob@localhost'))
    # Messages from a blocked JID are dropped.
    bob.send_message(mto='blkalice@localhost/test', mbody='hello?')
    bob.send_message(mto='blkalice@localhost', mbody='anyone?')
    # An iq get from a blocked JID: service-unavailable.
    expect_error(bob, 'get', "<query xmlns='jabber:iq:version'/>", 'service-unavailable',
                 to='blkalice@localhost/test')
    xmpp_sleep(0.5)
    assert not [m for m in got if m['body']], 'blocked messages delivered: %s' % got
    # Alice writing to Bob: not-acceptable with <blocked/> (§3.5).
    fut = asyncio.get_event_loop().create_future()
    alice.add_event_handler('message_error', lambda m: fut.done() or fut.set_result(m))
    alice.send_message(mto='blkbob@localhost', mbody='should not go')
    err = xmpp_run(fut, 5)
    e = err.xml.find('{%s}error' % NS_CLIENT)
    assert condition(e) == 'not-acceptable', str(err)
    assert e.find('{%s}blocked' % NS_BLOCKING_ERRORS) is not None, str(err)
    xmpp_sleep(0.3)
    assert not bob_got, 'a message to a blocked JID was delivered'
    # Unblocked: traffic flows again.
    xmpp_run(alice['xep_0191'].unblock('blkbob@localhost'))
    bob.send_message(mto='blkalice@localhost/test', mbody='now?')
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        xmpp_sleep(0.1)
    assert got and got[0]['body'] == 'now?', got


@test
def xep0191_blocking_holds_while_the_user_is_offline(srv):
    alice = session(srv, 'blkoffalice')
    xmpp_run(alice['xep_0191'].block('blkoffbob@localhost'))
    xmpp_disconnect(alice)
    bob = session(srv, 'blkoffbob')
    expect_error(bob, 'get', "<vCard xmlns='vcard-temp'/>", 'service-unavailable',
                 to='blkoffalice@localhost')
    carol = session(srv, 'blkoffcarol')
    kind, el = iq(carol, 'get', "<vCard xmlns='vcard-temp'/>", to='blkoffalice@localhost')
    assert kind == 'result', show(el)


def raw_authenticated(srv, user):
    """A raw stream of user's, authenticated and restarted, not yet bound."""
    account(srv, user)
    s = RawStream(srv.ports['c2s'])
    s.open()
    s.starttls()
    reply = s.auth_plain(user, PASSWORD)
    assert reply is not None and reply.tag.endswith('success'), show(reply)
    s.restart()
    return s


def bind_with_stanzas(s, resource, stanzas):
    """Bind, with stanzas in the same write as the bind request: the server
    handles them the moment the session is bound, before anything it
    starts loading for the session can be in."""
    s.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<resource>%s</resource></bind></iq>%s" % (resource, ''.join(stanzas)))
    bound = s.expect(NS_CLIENT, 'iq')
    assert bound.get('type') == 'result' and bound.get('id') == 'bind1', show(bound)


def keep_storage_busy(client, user, n=80):
    """Queue n password changes (PBKDF2 on the storage workers, to the same
    password) without waiting: storage reads submitted next wait behind
    them, which widens any window that lasts until a read is in."""
    for i in range(n):
        client.send_raw("<iq type='set' id='busy%d'><query xmlns='jabber:iq:register'>"
                        "<username>%s</username><password>%s</password></query></iq>"
                        % (i, user, PASSWORD))


def block_list_window_peers(srv):
    """bob (blocked by alice) and carol, online without initial presence
    (a probe from them would load alice's list before she logs in), each
    recording what reaches them."""
    bob = session(srv, 'winbob', resource='b')
    carol = session(srv, 'wincarol', resource='c')
    bob.got, carol.got = [], []
    for kind in ('message', 'presence'):
        bob.add_event_handler(kind, bob.got.append)
        carol.add_event_handler(kind, carol.got.append)
    return bob, carol


def from_alice(got, kind):
    return [x for x in got if x.name == kind and str(x['from']).startswith('winalice@')]


@test(timeout=90)
def xep0191_block_list_applies_from_the_first_stanza_after_login():
    """After a server start no block list is in memory: the first login
    reads it from storage, and what the client sent with its bind request
    is handled before that read can be in. It waits for the list: nothing
    reaches the blocked contact, nothing else is lost, and the blocked
    contact's burst at the moment of login reaches no one."""
    srv = own_server()
    try:
        alice = session(srv, 'winalice', resource='a')
        xmpp_run(alice['xep_0191'].block('winbob@localhost'))
        xmpp_disconnect(alice)
        srv.restart()
        bob, carol = block_list_window_peers(srv)
        raw = raw_authenticated(srv, 'winalice')
        bind_with_stanzas(raw, 'a', [
            "<presence/>",
            "<message to='winbob@localhost/b' id='m1'><body>one</body></message>",
            "<message to='wincarol@localhost/c' id='m2'><body>for carol</body></message>",
            "<iq to='winbob@localhost/b' type='get' id='v1'>"
            "<query xmlns='jabber:iq:version'/></iq>",
            "<presence to='winbob@localhost/b' id='p1'/>",
            "<message to='WinBob@localhost/b' id='m3'><body>two</body></message>",
        ])
        for i in range(20):
            bob.send_message(mto='winalice@localhost/a', mbody='burst %d' % i)
        try:
            got = read_while_looping(raw, 2.0)
        finally:
            raw.close()
        errors = {e.get('id'): e for e in got if e.get('type') == 'error'}
        for sid in ('m1', 'v1', 'p1', 'm3'):
            e = errors.get(sid)
            assert e is not None, 'no error for %s: %s' % (sid, [show(x) for x in got])
            err = e.find('{%s}error' % NS_CLIENT)
            assert condition(err) == 'not-acceptable', show(e)
            assert err.find('{%s}blocked' % NS_BLOCKING_ERRORS) is not None, show(e)
        assert 'm2' not in errors, show(errors['m2'])
        burst = [show(e) for e in got if e.tag == tag(NS_CLIENT, 'message')
                 and e.get('type') != 'error' and (e.get('from') or '').startswith('winbob@')]
        assert not burst, 'blocked messages delivered: %s' % burst
        leaked = [str(x) for x in bob.got if str(x['from']).startswith('winalice@')]
        assert not leaked, 'reached the blocked contact: %s' % leaked
        # Held is not lost: what was not blocked went out.
        deadline = time.monotonic() + 5
        while not from_alice(carol.got, 'message') and time.monotonic() < deadline:
            xmpp_sleep(0.1)
        assert [m['body'] for m in from_alice(carol.got, 'message')] == ['for carol'], carol.got

        # A client that leaves while its stanzas wait for the list (storage
        # kept busy so the list is read late): they are still decided and
        # sent, and its directed presence does not outlive it.
        xmpp_disconnect(bob)
        xmpp_disconnect(carol)
        srv.restart()
        bob, carol = block_list_window_peers(srv)
        raw = raw_authenticated(srv, 'winalice')
        keep_storage_busy(carol, 'wincarol')
        bind_with_stanzas(raw, 'gone', [
            "<presence to='wincarol@localhost/c'/>",
            "<message to='wincarol@localhost/c' id='m4'><body>parting</body></message>",
            "<message to='winbob@localhost/b' id='m5'><body>nope</body></message>",
        ])
        raw.send('</stream:stream>')
        raw.close()
        deadline = time.monotonic() + 15
        while not from_alice(carol.got, 'message') and time.monotonic() < deadline:
            xmpp_sleep(0.1)
        assert [m['body'] for m in from_alice(carol.got, 'message')] == ['parting'], carol.got
        xmpp_sleep(0.5)
        seen = from_alice(carol.got, 'presence')
        assert not seen or seen[-1]['type'] == 'unavailable', [str(p) for p in seen]
        leaked = [str(x) for x in bob.got if str(x['from']).startswith('winalice@')]
        assert not leaked, 'reached the blocked contact: %s' % leaked
        log = srv.log()
        assert 'waiting for the block list' in log, 'the client left after the list was in'
        assert 'already wait for the block list' not in log
    finally:
        assert srv.stop() == 0


# ------------------------------------------------------------ XEP-0157

@test
def xep0157_contact_addresses_in_disco_info():
    srv = own_server(extra_config='''
        modules:
          mod_disco:
            server_info:
              - modules: all
                name: abuse-addresses
                urls: ["mailto:abuse@example.test"]
              - modules: [mod_disco]
                name: support-addresses
                urls: ["xmpp:support@example.test", "https://example.test/help"]
              - modules: [mod_ping]
                name: sales-addresses
                urls: ["mailto:sales@example.test"]
        ''')
    try:
        c = session(srv, 'contact1')
        _, info = server_features(c)
        forms = info.xml.findall('.//{%s}x' % NS_XDATA)
        fields = {}
        for x in forms:
            vals = {f.get('var'): [v.text for v in f.findall('{%s}value' % NS_XDATA)]
                    for f in x.findall('{%s}field' % NS_XDATA)}
            if vals.get('FORM_TYPE') == ['http://jabber.org/network/serverinfo']:
                fields = vals
        assert fields.get('abuse-addresses') == ['mailto:abuse@example.test'], fields
        assert fields.get('support-addresses') == ['xmpp:support@example.test',
                                                   'https://example.test/help'], fields
        # An entry for another module's disco#info is not the server's.
        assert 'sales-addresses' not in fields, fields
    finally:
        assert srv.stop() == 0


# ------------------------------------------------------------ XEP-0115

def caps_hash(query):
    """XEP-0115 §5.1, written independently of the server's C."""
    s = ''
    ids = sorted((i.get('category', ''), i.get('type', ''),
                  i.get('{http://www.w3.org/XML/1998/namespace}lang', ''),
                  i.get('name', ''))
                 for i in query.findall('{%s}identity' % NS_DISCO_INFO))
    for i in ids:
        s += '/'.join(i) + '<'
    for f in sorted(f.get('var') for f in query.findall('{%s}feature' % NS_DISCO_INFO)):
        s += f + '<'
    forms = []
    for x in query.findall('{%s}x' % NS_XDATA):
        ft, rest = None, []
        for f in x.findall('{%s}field' % NS_XDATA):
            vals = sorted(v.text or '' for v in f.findall('{%s}value' % NS_XDATA))
            if f.get('var') == 'FORM_TYPE':
                ft = vals[0]
            else:
                rest.append((f.get('var'), vals))
        forms.append((ft, sorted(rest)))
    for ft, rest in sorted(forms):
        s += ft + '<'
        for var, vals in rest:
            s += var + '<' + ''.join(v + '<' for v in vals)
    return base64.b64encode(hashlib.sha1(s.encode('utf-8')).digest()).decode()


def caps_after_login(srv, user):
    """Log in over a raw stream; returns (the <c/> of the post-auth
    features, the stream) with the resource bound."""
    account(srv, user)
    s = RawStream(srv.ports['c2s'])
    features = s.open()
    assert s.tls is False
    features = s.starttls()
    assert features.find(tag(NS_CAPS, 'c')) is None, 'caps before auth: %s' % show(features)
    reply = s.auth_plain(user, PASSWORD)
    assert reply.tag.endswith('success'), show(reply)
    features = s.restart()
    c = features.find(tag(NS_CAPS, 'c'))
    assert c is not None, 'no caps in %s' % show(features)
    s.bind('caps')
    return c, s


def raw_disco(s, node=None):
    n = " node='%s'" % node if node else ''
    s.send("<iq type='get' id='d1' to='localhost'><query xmlns='%s'%s/></iq>"
           % (NS_DISCO_INFO, n))
    r = s.expect(NS_CLIENT, 'iq')
    return r


@test
def xep0115_server_caps_in_stream_features(srv):
    c, s = caps_after_login(srv, 'caps1')
    try:
        assert c.get('hash') == 'sha-1' and c.get('node'), show(c)
        r = raw_disco(s)
        q = r.find('{%s}query' % NS_DISCO_INFO)
        assert r.get('type') == 'result' and q is not None, show(r)
        assert c.get('ver') == caps_hash(q), (show(c), show(q))
        # §6.2: the node#ver query answers the same info.
        r = raw_disco(s, '%s#%s' % (c.get('node'), c.get('ver')))
        q2 = r.find('{%s}query' % NS_DISCO_INFO)
        assert r.get('type') == 'result', show(r)
        assert q2.get('node') == '%s#%s' % (c.get('node'), c.get('ver')), show(r)
        assert caps_hash(q2) == c.get('ver')
        r = raw_disco(s, '%s#wrong' % c.get('node'))
        assert r.get('type') == 'error', show(r)
    finally:
        s.close()


@test
def xep0115_ver_changes_with_the_module_set():
    srv = own_server(extra_config='''
        modules:
          mod_disco: {}
          mod_ping: {}
          mod_caps: {}
        ''')
    try:
        c1, s = caps_after_login(srv, 'caps2')
        r = raw_disco(s)
        q = r.find('{%s}query' % NS_DISCO_INFO)
        assert c1.get('ver') == caps_hash(q)
        assert {f.get('var') for f in q.findall('{%s}feature' % NS_DISCO_INFO)} == {
            NS_DISCO_INFO, 'http://jabber.org/protocol/disco#items', NS_PING}, show(q)
        s.close()
    finally:
        assert srv.stop() == 0
    c2, s = caps_after_login(parley_default(), 'caps3')
    s.close()
    assert c1.get('ver') != c2.get('ver')


_default = []


def parley_default():
    if not _default:
        _default.append(own_server())
    return _default[0]


# ------------------------------------------------------- XEP-0199 §4.2

def read_while_looping(raw, seconds):
    """Top-level elements from a raw stream until it ends or time runs
    out, letting the slixmpp clients' loop run in between."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            el = raw.next(timeout=0.05)
        except TimeoutError:
            xmpp_sleep(0.05)
            continue
        if el is None:
            break
        got.append(el)
    return got


@test(timeout=40)
def xep0199_server_pings_keep_answering_clients_and_drop_silent_ones():
    srv = own_server(extra_config='''
        modules:
          mod_disco: {}
          mod_ping: {send_pings: true, ping_interval: 2, ping_ack_timeout: 2}
        ''')
    try:
        # slixmpp answers pings (xep_0199): it stays.
        good = session(srv, 'pinggood')
        # A raw client that reads but never answers.
        account(srv, 'pingbad')
        raw = RawStream(srv.ports['c2s'], timeout=10)
        raw.login_plain('pingbad', PASSWORD, resource='silent')
        t0 = time.monotonic()
        # Read the raw stream while slixmpp's loop runs (it must answer).
        got = read_while_looping(raw, 9)
        waited = time.monotonic() - t0
        assert len(got) == 2, 'expected a ping and a stream error: %s' % [show(e) for e in got]
        ping, err = got
        assert ping.get('type') == 'get' and ping.find('{%s}ping' % NS_PING) is not None, \
            show(ping)
        assert ping.get('from') == 'localhost' and ping.get('to') == 'pingbad@localhost/silent'
        assert err.tag == tag(NS_STREAMS, 'error'), show(err)
        assert err.find('{urn:ietf:params:xml:ns:xmpp-streams}connection-timeout') is not None, \
            show(err)
        raw.wait_closed(timeout=1)
        # ping_interval 2 s of quiet, then ping_ack_timeout 2 s.
        assert 3.0 <= waited <= 7, 'dropped after %.1fs' % waited
        xmpp_sleep(2.5)
        rc, out, _ = srv.ctl('connected_users')
        assert 'pinggood@localhost/test' in out, out
        assert 'pingbad' not in out, out
        assert good.transport is not None, 'the answering client was dropped'
    finally:
        assert srv.stop() == 0


@test
def xep0199_no_server_pings_by_default(srv):
    account(srv, 'nopings')
    raw = RawStream(srv.ports['c2s'])
    try:
        raw.login_plain('nopings', PASSWORD, resource='r')
        try:
            el = raw.next(timeout=2.5)
        except TimeoutError:
            el = None
        assert el is None, 'unexpected: %s' % show(el)
    finally:
        raw.close()


if __name__ == '__main__':
    main(threads=2)
