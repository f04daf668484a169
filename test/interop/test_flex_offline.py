"""Flexible Offline Message Retrieval (XEP-0013) against parleyd, with
slixmpp's xep_0013 plugin and raw iqs: a client that logs in without
presence counts its stored messages (disco#info on the node
'http://jabber.org/protocol/offline'), lists their headers (disco#items),
views and removes single ones, fetches and purges them all; messages stay
stored until removed, and once the client used the count, the headers or a
fetch, initial presence (its own, or another resource's while it is
connected) floods nothing. A client that does none of this still gets the
XEP-0160 flood. Errors: forbidden for another user's messages,
item-not-found for a node that is not stored, bad-request for what the
XEP does not define.

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_flex_offline.py
"""

import os
import sqlite3

from parley import test, main, xmpp_disconnect, xmpp_loop, xmpp_run
from im_clients import (THREADS, users_on_two_shards, wait_until, sync, settle,
                        im_session, assert_delay, quiet, send_raw_iq, iq_error)

NS_FLEX = 'http://jabber.org/protocol/offline'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_XDATA = 'jabber:x:data'
PLUGINS = ('xep_0030', 'xep_0199', 'xep_0013')


# ------------------------------------------------------------- helpers

def stored(srv, user):
    """The stored XML of user's offline rows, oldest first (WAL: a reader
    sees what parleyd committed)."""
    db = sqlite3.connect(os.path.join(srv.data_dir, 'parley.db'), timeout=5)
    try:
        return [x for (x,) in db.execute('SELECT xml FROM offline WHERE host = ? AND'
                                         ' username = ? ORDER BY id', (srv.host, user))]
    finally:
        db.close()


def store_damaged_row(srv, user):
    db = sqlite3.connect(os.path.join(srv.data_dir, 'parley.db'), timeout=5)
    try:
        db.execute("INSERT INTO offline (host, username, stamp, xml) VALUES"
                   " (?, ?, '2020-01-01T00:00:00Z', '<message><body>cut')", (srv.host, user))
        db.commit()
    finally:
        db.close()


def send_offline(srv, sender, to_user, bodies):
    """sender (an available session) sends chat messages to to_user, who
    has no available resource; returns once they are all stored."""
    before = len(stored(srv, to_user))
    for b in bodies:
        sender.send_message(mto=srv.jid(to_user), mbody=b, mtype='chat')
    wait_until(lambda: len(stored(srv, to_user)) == before + len(bodies),
               what=lambda: '%d stored for %s, have %d'
               % (before + len(bodies), to_user, len(stored(srv, to_user))))


def count(c):
    """number_of_messages of the disco#info form (§2.2), after checking the
    rest of the answer."""
    res = xmpp_run(c['xep_0013'].get_count(timeout=5), 6).xml
    q = res.find('{%s}query' % NS_DISCO_INFO)
    assert q.get('node') == NS_FLEX, q.attrib
    ids = [(i.get('category'), i.get('type')) for i in q.findall('{%s}identity' % NS_DISCO_INFO)]
    assert ids == [('automation', 'message-list')], ids
    fields = {f.get('var'): [v.text for v in f.findall('{%s}value' % NS_XDATA)]
              for f in q.iter('{%s}field' % NS_XDATA)}
    assert fields['FORM_TYPE'] == [NS_FLEX], fields
    return int(fields['number_of_messages'][0])


def headers(c):
    """[(jid, node, name)] of the disco#items answer (§2.3)."""
    res = xmpp_run(c['xep_0013'].get_headers(timeout=5), 6).xml
    q = res.find('{%s}query' % NS_DISCO_ITEMS)
    assert q.get('node') == NS_FLEX, q.attrib
    return [(i.get('jid'), i.get('node'), i.get('name'))
            for i in q.findall('{%s}item' % NS_DISCO_ITEMS)]


def plugin_call(fn, *args):
    """A slixmpp xep_0013 call that reports through a callback (it runs only
    on a result): the result iq."""
    fut = xmpp_loop().create_future()
    fn(*args, timeout=5, callback=lambda iq: fut.done() or fut.set_result(iq))
    return xmpp_run(fut, 6)


def offline_iq(c, type_, children):
    return send_raw_iq(c, type_, "<offline xmlns='%s'>%s</offline>" % (NS_FLEX, children))


def item(action, node):
    return "<item action='%s' node='%s'/>" % (action, node)


def node_of(msg):
    it = msg.xml.find('{%s}offline/{%s}item' % (NS_FLEX, NS_FLEX))
    return it.get('node') if it is not None else None


def bodies(msgs):
    return [m['body'] for m in msgs]


# --------------------------------------------------------------- tests

@test
def xep0013_2_1_feature_in_server_disco(srv):
    a, _ = users_on_two_shards(srv, 'flexdisco')
    c = im_session(srv, a)
    info = send_raw_iq(c, 'get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=srv.host)
    features = {f.get('var') for f in info.iter('{%s}feature' % NS_DISCO_INFO)}
    assert NS_FLEX in features and 'msgoffline' in features, features


@test
def xep0013_count_headers_view_remove_fetch_purge_without_flood(srv):
    a, b = users_on_two_shards(srv, 'flex')
    ca = im_session(srv, a, presence=True)
    send_offline(srv, ca, b, ['m1', 'm2', 'm3', 'm4'])

    # logged in, no presence: count and headers (§2.2, §2.3)
    cb = im_session(srv, b, plugins=PLUGINS)
    assert count(cb) == 4
    hs = headers(cb)
    assert [j for j, _, _ in hs] == [srv.jid(b)] * 4, hs
    assert [name for _, _, name in hs] == [srv.jid(a, 'r')] * 4, hs
    nodes = [n for _, n, _ in hs]
    assert len(set(nodes)) == 4 and nodes == sorted(nodes), nodes

    # view one (§2.4): it comes with its node and a delay, and stays stored
    res = plugin_call(cb['xep_0013'].view, nodes[1])
    assert res['type'] == 'result', res
    wait_until(lambda: cb.got_messages, what='the viewed message')
    assert bodies(cb.got_messages) == ['m2'], bodies(cb.got_messages)
    assert node_of(cb.got_messages[0]) == nodes[1], cb.got_messages[0]
    assert str(cb.got_messages[0]['from']) == srv.jid(a, 'r')
    assert_delay(cb.got_messages[0], srv.host)
    assert len(stored(srv, b)) == 4

    # remove one (§2.5)
    res = plugin_call(cb['xep_0013'].remove, nodes[0])
    assert res['type'] == 'result', res
    rows = stored(srv, b)
    assert len(rows) == 3 and not any('>m1<' in x for x in rows), rows
    assert [n for _, n, _ in headers(cb)] == nodes[1:]
    # all or nothing: a removal naming one node that is gone removes none
    assert iq_error(cb, 'set', "<offline xmlns='%s'>%s%s</offline>"
                    % (NS_FLEX, item('remove', nodes[1]), item('remove', nodes[0]))) \
        == ('cancel', 'item-not-found')
    assert len(stored(srv, b)) == 3

    # fetch all (§2.6, a get): in order, each with its node; still stored
    cb.got_messages.clear()
    offline_iq(cb, 'get', '<fetch/>')
    wait_until(lambda: len(cb.got_messages) == 3, what=lambda: bodies(cb.got_messages))
    assert bodies(cb.got_messages) == ['m2', 'm3', 'm4'], bodies(cb.got_messages)
    assert [node_of(m) for m in cb.got_messages] == nodes[1:]
    for m in cb.got_messages:
        assert_delay(m, srv.host)
    assert len(stored(srv, b)) == 3

    # initial presence now floods nothing, and deletes nothing (§2.2)
    cb.got_messages.clear()
    cb.send_presence()
    settle(cb)
    assert not cb.got_messages, bodies(cb.got_messages)
    assert len(stored(srv, b)) == 3
    # ... nor for another resource while this one is connected
    cb2 = im_session(srv, b, 'second', presence=True)
    settle(cb2)
    assert not cb2.got_messages, bodies(cb2.got_messages)
    assert not cb.got_messages, bodies(cb.got_messages)
    assert len(stored(srv, b)) == 3
    # in-session messages arrive as usual, without the marker
    ca.send_message(mto=srv.jid(b, 'r'), mbody='live', mtype='chat')
    wait_until(lambda: bodies(cb.got_messages) == ['live'], what=lambda: bodies(cb.got_messages))
    assert node_of(cb.got_messages[0]) is None

    # purge (§2.7)
    res = plugin_call(cb['xep_0013'].purge)
    assert res['type'] == 'result', res
    assert stored(srv, b) == []
    assert count(cb) == 0 and headers(cb) == []


@test
def xep0013_2_2_count_alone_turns_the_flood_off_for_the_session(srv):
    a, b = users_on_two_shards(srv, 'flexcount')
    ca = im_session(srv, a, presence=True)
    send_offline(srv, ca, b, ['kept'])
    cb = im_session(srv, b, plugins=PLUGINS)
    assert count(cb) == 1
    cb.send_presence()
    settle(cb)
    assert not cb.got_messages, bodies(cb.got_messages)
    assert len(stored(srv, b)) == 1
    # the choice is the session's: the next login without XEP-0013 gets
    # the flood (XEP-0160), messages and all
    xmpp_disconnect(cb)
    cb = im_session(srv, b, 'plain', presence=True)
    wait_until(lambda: bodies(cb.got_messages) == ['kept'], what=lambda: bodies(cb.got_messages))
    assert node_of(cb.got_messages[0]) is None
    wait_until(lambda: not stored(srv, b), what='the flooded row deleted')


@test
def xep0160_user_without_flexible_retrieval_still_gets_the_flood(srv):
    a, b = users_on_two_shards(srv, 'flexnot')
    ca = im_session(srv, a, presence=True)
    send_offline(srv, ca, b, ['one', 'two'])
    # another user of the server using XEP-0013 changes nothing for b
    cf = im_session(srv, a, 'flex', plugins=PLUGINS)
    assert count(cf) == 0
    cb = im_session(srv, b, presence=True)
    wait_until(lambda: bodies(cb.got_messages) == ['one', 'two'],
               what=lambda: bodies(cb.got_messages))
    wait_until(lambda: not stored(srv, b), what='the flooded rows deleted')


@test
def xep0013_errors_and_damaged_rows(srv):
    a, b = users_on_two_shards(srv, 'flexerr')
    ca = im_session(srv, a, presence=True)
    send_offline(srv, ca, b, ['private'])
    cb = im_session(srv, b, plugins=PLUGINS)
    node = headers(cb)[0][1]

    # another user's messages: forbidden, for disco and <offline/> alike
    spy = im_session(srv, a, 'spy', plugins=PLUGINS)
    for ns in (NS_DISCO_INFO, NS_DISCO_ITEMS):
        assert iq_error(spy, 'get', "<query xmlns='%s' node='%s'/>" % (ns, NS_FLEX),
                        to=srv.jid(b)) == ('auth', 'forbidden'), ns
    for type_, child in (('get', '<fetch/>'), ('get', item('view', node)),
                         ('set', item('remove', node)), ('set', '<purge/>')):
        assert iq_error(spy, type_, "<offline xmlns='%s'>%s</offline>" % (NS_FLEX, child),
                        to=srv.jid(b)) == ('auth', 'forbidden'), child
    settle(spy)
    assert not spy.got_messages, bodies(spy.got_messages)
    assert len(stored(srv, b)) == 1

    # nodes that are not stored
    gone = '%019d' % (int(node) + 1000)
    for n in (gone, '42', '2003-02-27T22:49:17.008Z', ''):
        assert iq_error(cb, 'get', "<offline xmlns='%s'>%s</offline>"
                        % (NS_FLEX, item('view', n))) == ('cancel', 'item-not-found'), n
    assert iq_error(cb, 'set', "<offline xmlns='%s'>%s</offline>"
                    % (NS_FLEX, item('remove', gone))) == ('cancel', 'item-not-found')

    # requests XEP-0013 does not define
    for type_, child in (('set', '<fetch/>'),          # slixmpp's fetch sends a set
                         ('get', '<purge/>'),
                         ('get', ''),
                         ('get', "<item action='view'/>"),
                         ('get', item('remove', node)),
                         ('set', item('view', node)),
                         ('get', '<fetch/>' + item('view', node)),
                         ('get', '<list/>')):
        assert iq_error(cb, type_, "<offline xmlns='%s'>%s</offline>" % (NS_FLEX, child)) \
            == ('modify', 'bad-request'), (type_, child)
    assert iq_error(cb, 'get', "<offline xmlns='%s'><fetch/></offline>" % NS_FLEX,
                    to=srv.host) == ('cancel', 'service-unavailable')
    settle(cb)
    assert not cb.got_messages, bodies(cb.got_messages)
    assert len(stored(srv, b)) == 1

    # a row that no longer parses: listed without a name, never sent,
    # removable; the server goes on
    store_damaged_row(srv, b)
    hs = headers(cb)
    assert len(hs) == 2 and hs[0][2] == srv.jid(a, 'r') and hs[1][2] is None, hs
    offline_iq(cb, 'get', '<fetch/>')
    wait_until(lambda: cb.got_messages, what='the good message')
    quiet(cb, cb.got_messages)
    assert bodies(cb.got_messages) == ['private'], bodies(cb.got_messages)
    offline_iq(cb, 'set', item('remove', hs[1][1]))
    assert len(stored(srv, b)) == 1 and count(cb) == 1
    sync(ca)


if __name__ == '__main__':
    main(threads=THREADS)
