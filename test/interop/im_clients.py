"""What the IM tests (RFC 6121 rosters and presence, XEP-0160 offline
messages) share: users whose home shards differ, slixmpp sessions that
record what they receive (and leave subscriptions to the test), raw roster
queries, and a second, independent client stack (aioxmpp) on the same
asyncio loop as the harness's slixmpp clients.

Every wait is bounded; nothing here talks to anything but 127.0.0.1.
"""

import asyncio
import logging
import time
import xml.etree.ElementTree as ET

from parley import xmpp_session, xmpp_run, xmpp_sleep, xmpp_loop

THREADS = 2
PASSWORD = 'pw-im-\u00e9t\u00e9'
NS_ROSTER = 'jabber:iq:roster'
NS_DELAY = 'urn:xmpp:delay'
NS_CLIENT = 'jabber:client'


# ------------------------------------------------------------ accounts

def home_shard(bare, shards=THREADS):
    """The server's shard_of_key(): 32-bit FNV-1a of the bare JID."""
    h = 0x811c9dc5
    for b in bare.encode('utf-8'):
        h ^= b
        h = (h * 0x01000193) & 0xffffffff
    return h % shards


def users_on_two_shards(srv, prefix):
    """Two fresh accounts, named prefix + a number, on different shards."""
    found = {}
    for i in range(1000):
        name = '%s%d' % (prefix, i)
        found.setdefault(home_shard('%s@%s' % (name, srv.host)), name)
        if len(found) == THREADS:
            break
    a, b = found[0], found[1]
    srv.register(a, PASSWORD)
    srv.register(b, PASSWORD)
    return a, b


# ------------------------------------------------------------- waiting

def wait_until(pred, timeout=5.0, what='condition'):
    """Run the clients' loop until pred() is true; what (text or a
    callable for the last state) goes into the failure message."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %ss waiting for %s'
                                 % (timeout, what() if callable(what) else what))
        xmpp_sleep(0.02)


def sync(c):
    """A ping round trip: the server has handled all c sent before."""
    result = xmpp_run(c['xep_0199'].send_ping(c.boundjid.domain, timeout=5), 6)
    assert result['type'] == 'result', result


def settle(*clients):
    """Let in-flight stanzas (storage commits, other shards) arrive."""
    for c in clients:
        sync(c)
    xmpp_sleep(0.3)


# ------------------------------------------------------------- slixmpp

def im_session(srv, user, resource='r', roster=False, presence=False, **kw):
    """A slixmpp session that records every presence (c.got_presence),
    message (c.got_messages) and roster push (c.got_pushes), and answers
    no subscription by itself. roster: ask for the roster (so pushes come);
    presence: send initial presence."""
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
    c = xmpp_session(srv, user, PASSWORD, resource=resource, **kw)
    c.auto_authorize = None
    c.auto_subscribe = False
    c.got_presence, c.got_messages, c.got_pushes = [], [], []
    c.add_event_handler('presence', c.got_presence.append)
    c.add_event_handler('message', c.got_messages.append)

    def on_roster_iq(iq):
        if iq['type'] == 'set':
            c.got_pushes.append(iq)
    c.register_handler(Callback('im roster pushes',
                                MatchXPath('{%s}iq/{%s}query' % (NS_CLIENT, NS_ROSTER)),
                                on_roster_iq))
    if roster:
        roster_get(c)
    if presence:
        c.send_presence()
        sync(c)
    return c


def send_raw_iq(c, type_, payload, to=None, timeout=5):
    """Send <iq type=type_>payload</iq> (payload: XML text); returns the
    result's XML element. An error answer raises slixmpp's IqError."""
    iq = c.Iq()
    iq['type'] = type_
    if to:
        iq['to'] = to
    iq.xml.append(ET.fromstring(payload))
    return xmpp_run(iq.send(timeout=timeout), timeout + 1).xml


def iq_error(c, type_, payload, to=None):
    """Like send_raw_iq for a request that must fail: (error type,
    condition)."""
    from slixmpp.exceptions import IqError
    try:
        res = send_raw_iq(c, type_, payload, to)
    except IqError as e:
        return e.iq['error']['type'], e.iq['error']['condition']
    raise AssertionError('expected an error, got %s' % ET.tostring(res, encoding='unicode'))


def item_dict(item):
    return {'jid': item.get('jid'), 'subscription': item.get('subscription'),
            'ask': item.get('ask'), 'approved': item.get('approved'),
            'name': item.get('name'),
            'groups': sorted(g.text or '' for g in item.findall('{%s}group' % NS_ROSTER))}


def roster_get(c, ver=None):
    """(ver, {jid: item}) of a roster get; ver None in the request means no
    versioning asked for. An empty result (XEP-0237 'unchanged') gives
    (None, None)."""
    q = "<query xmlns='%s'%s/>" % (NS_ROSTER, '' if ver is None else " ver='%s'" % ver)
    res = send_raw_iq(c, 'get', q)
    query = res.find('{%s}query' % NS_ROSTER)
    if query is None:
        return None, None
    return query.get('ver'), {i.get('jid'): item_dict(i)
                              for i in query.findall('{%s}item' % NS_ROSTER)}


def roster_set(c, jid, name=None, groups=(), remove=False):
    attrs = "jid='%s'" % jid
    if name is not None:
        attrs += " name='%s'" % name
    if remove:
        attrs += " subscription='remove'"
    body = ''.join('<group>%s</group>' % g for g in groups)
    return send_raw_iq(c, 'set', "<query xmlns='%s'><item %s>%s</item></query>"
                       % (NS_ROSTER, attrs, body))


def pushes(c):
    """[(ver, item dict)] of the roster pushes c received so far."""
    out = []
    for iq in c.got_pushes:
        q = iq.xml.find('{%s}query' % NS_ROSTER)
        for i in q.findall('{%s}item' % NS_ROSTER):
            out.append((q.get('ver'), item_dict(i)))
    return out


def wait_push(c, jid, timeout=5, **want):
    """Wait for a push about jid whose attributes include want; returns it."""
    def found():
        for _, it in pushes(c):
            if it['jid'] == jid and all(it.get(k) == v for k, v in want.items()):
                return it
        return None
    wait_until(lambda: found() is not None, timeout,
               lambda: 'push %s %s; got %s' % (jid, want, pushes(c)))
    return found()


def presences(c, frm=None, ptype=None):
    """The presence stanzas c received (from: full or bare JID match;
    ptype: 'available' for no type)."""
    out = []
    for p in c.got_presence:
        t = p.xml.get('type') or 'available'
        f = p.xml.get('from') or ''
        if ptype is not None and t != ptype:
            continue
        if frm is not None and f != frm and f.split('/')[0] != frm:
            continue
        out.append(p)
    return out


def wait_presence(c, frm, ptype='available', timeout=5):
    wait_until(lambda: presences(c, frm, ptype), timeout,
               lambda: 'presence %s from %s at %s; got %s'
               % (ptype, frm, c.boundjid, [str(p) for p in c.got_presence]))
    return presences(c, frm, ptype)[0]


def delay_of(stanza):
    """The attributes of its <delay xmlns='urn:xmpp:delay'/>, or None."""
    d = stanza.xml.find('{%s}delay' % NS_DELAY)
    return dict(d.attrib) if d is not None else None


def assert_delay(stanza, domain, not_before=None, not_after=None):
    """XEP-0203 exactly as the server must write it: from and stamp only,
    the stamp in UTC with a 'Z'."""
    d = delay_of(stanza)
    assert d is not None, 'no <delay/> in %s' % stanza
    assert set(d) == {'from', 'stamp'}, d
    assert d['from'] == domain, d
    stamp = d['stamp']
    assert stamp.endswith('Z') and 'T' in stamp, d
    t = time.mktime(time.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ')) - time.timezone
    if not_before is not None:
        assert t >= int(not_before) - 1, (stamp, not_before)
    if not_after is not None:
        assert t <= not_after + 1, (stamp, not_after)
    return t


def quiet(c, got, seconds=0.4):
    """Nothing more arrives in the list got for a moment."""
    before = len(got)
    xmpp_sleep(seconds)
    assert len(got) == before, '%s got an unexpected %s' % (c.boundjid, got[before:][0])


# ------------------------------------------------------------- aioxmpp

_aio = []


def aio_connect(srv, user, resource='aio', timeout=15):
    """An aioxmpp PresenceManagedClient for user, connected over STARTTLS
    (certificate not verified) with available presence, and its
    RosterClient and PresenceClient: (client, roster, presence)."""
    import aioxmpp
    import aioxmpp.connector
    logging.getLogger('aioxmpp').setLevel(logging.CRITICAL)
    xmpp_loop()
    client = aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr('%s@%s/%s' % (user, srv.host, resource)),
        aioxmpp.make_security_layer(PASSWORD, no_verify=True),
        override_peer=[('127.0.0.1', srv.ports['c2s'],
                        aioxmpp.connector.STARTTLSConnector())],
        logger=logging.getLogger('aioxmpp.im'))
    roster = client.summon(aioxmpp.RosterClient)
    presence = client.summon(aioxmpp.PresenceClient)
    received = asyncio.Event()
    roster.on_initial_roster_received.connect(lambda: received.set())
    cm = client.connected()
    xmpp_run(cm.__aenter__(), timeout)
    xmpp_run(received.wait(), timeout)
    _aio.append((client, cm))
    return client, roster, presence


def aio_disconnect(client, timeout=10):
    for i, (c, cm) in enumerate(_aio):
        if c is client:
            del _aio[i]
            xmpp_run(cm.__aexit__(None, None, None), timeout)
            return


def aio_close_all():
    while _aio:
        client, cm = _aio.pop()
        try:
            xmpp_run(cm.__aexit__(None, None, None), 10)
        except Exception:
            client.stop()


def aio_jid(srv, user):
    import aioxmpp
    return aioxmpp.JID.fromstr('%s@%s' % (user, srv.host))


def aio_items(roster):
    """{bare JID: (subscription, ask, approved)} of an aioxmpp roster."""
    return {str(j): (it.subscription, it.ask, it.approved) for j, it in roster.items.items()}
