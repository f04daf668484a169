"""Offline messages (XEP-0160) with real clients against parleyd: messages
for a user with no available resource are stored durably, replayed at the
next non-negative initial presence with a XEP-0203 <delay/> (from the
server's domain, stamped when the server took them), then deleted; a full
queue bounces with <service-unavailable/> and a <text/>; a stored message
survives kill -9.

Senders: go-sendxmpp (a Go client stack) and slixmpp; the recipient logs
in with slixmpp or aioxmpp. Sender and recipient live on different shards.

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_offline.py
"""

import os
import sqlite3
import subprocess
import time

import parley
from parley import test, main, xmpp_disconnect
from im_clients import (THREADS, PASSWORD, users_on_two_shards, wait_until, sync, settle,
                        im_session, assert_delay, delay_of, quiet, send_raw_iq,
                        aio_connect, aio_close_all)
import aioxmpp
import aioxmpp.dispatcher

NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
LIMIT = 3


def go_sendxmpp(srv, user, to, text, timeout=20):
    """Send one chat message with go-sendxmpp (STARTTLS, the server's
    self-signed certificate not verified). No retries: a failed STARTTLS
    negotiation is a server bug this must show."""
    p = subprocess.run(['go-sendxmpp', '-u', srv.jid(user), '-p', PASSWORD,
                        '-j', '127.0.0.1:%d' % srv.ports['c2s'], '-n',
                        '--timeout', '10', to],
                       input=text, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, 'go-sendxmpp: exit %d: %s' % (p.returncode, p.stderr)


def stored(srv, user):
    """Rows of the offline table for user, read from the database file
    (WAL: a reader sees what parleyd committed)."""
    db = sqlite3.connect(os.path.join(srv.data_dir, 'parley.db'), timeout=5)
    try:
        return db.execute('SELECT stamp, xml FROM offline WHERE host = ? AND username = ?'
                          ' ORDER BY id', (srv.host, user)).fetchall()
    finally:
        db.close()


def wait_stored(srv, user, n, timeout=5):
    wait_until(lambda: len(stored(srv, user)) >= n, timeout,
               lambda: '%d stored messages for %s, have %d' % (n, user, len(stored(srv, user))))


def bodies(c):
    return [m['body'] for m in c.got_messages if m['body']]


@test
def xep0160_stored_and_replayed_at_initial_presence_with_delay(srv):
    a, b = users_on_two_shards(srv, 'off')
    t0 = time.time()
    go_sendxmpp(srv, a, srv.jid(b), 'first, from go-sendxmpp')
    ca = im_session(srv, a, presence=True)
    ca.send_message(mto=srv.jid(b), mbody='second, normal', mtype='normal')
    ca.send_message(mto=srv.jid(b, 'gone'), mbody='third, to a full JID', mtype='chat')
    # not kept: headline (RFC 6121 8.5.2.1.1), chat states alone (XEP-0085)
    ca.send_message(mto=srv.jid(b), mbody='headline', mtype='headline')
    ca.send_raw("<message to='%s' type='chat'><composing "
                "xmlns='http://jabber.org/protocol/chatstates'/></message>" % srv.jid(b))
    sync(ca)
    wait_stored(srv, b, 3)
    t1 = time.time()
    settle(ca)
    assert len(stored(srv, b)) == 3, stored(srv, b)
    assert not ca.got_messages, 'a got an error: %s' % ca.got_messages[0]

    # bound but not yet available: nothing yet (XEP-0160 step 4)
    cb = im_session(srv, b, roster=True)
    sync(cb)
    quiet(cb, cb.got_messages)
    cb.send_presence()
    wait_until(lambda: len(bodies(cb)) == 3, what=lambda: 'three messages, got %s' % bodies(cb))
    assert bodies(cb) == ['first, from go-sendxmpp', 'second, normal',
                          'third, to a full JID'], bodies(cb)
    for m in cb.got_messages:
        assert str(m['from']).split('/')[0] == srv.jid(a), m
        assert_delay(m, srv.host, not_before=t0, not_after=t1)
    assert cb.got_messages[0]['type'] == 'chat'
    assert cb.got_messages[1]['type'] == 'normal'
    # delivered, then deleted: the next login gets nothing
    wait_until(lambda: not stored(srv, b), what='the delivered rows deleted')
    xmpp_disconnect(cb)
    cb = im_session(srv, b, 'again', presence=True)
    settle(cb)
    assert not cb.got_messages, bodies(cb)
    # live messages carry no delay
    ca.send_message(mto=srv.jid(b), mbody='live', mtype='chat')
    wait_until(lambda: bodies(cb) == ['live'], what=lambda: bodies(cb))
    assert delay_of(cb.got_messages[0]) is None


@test
def xep0160_negative_priority_does_not_take_offline_messages(srv):
    a, b = users_on_two_shards(srv, 'neg')
    ca = im_session(srv, a, presence=True)
    ca.send_message(mto=srv.jid(b), mbody='wait for me', mtype='chat')
    wait_stored(srv, b, 1)
    cb = im_session(srv, b, 'lurker')
    cb.send_presence(ppriority=-1)
    settle(cb)
    assert not cb.got_messages and len(stored(srv, b)) == 1
    # a negative-priority resource is not "available" for messages to the
    # bare JID (RFC 6121 8.5.2.1.1): new ones are stored too
    ca.send_message(mto=srv.jid(b), mbody='still offline', mtype='chat')
    wait_stored(srv, b, 2)
    cb2 = im_session(srv, b, 'real')
    cb2.send_presence(ppriority=0)
    wait_until(lambda: bodies(cb2) == ['wait for me', 'still offline'],
               what=lambda: bodies(cb2))
    assert not cb.got_messages
    xmpp_disconnect(cb2)
    # the lurker raising its priority to 0 later takes what came meanwhile
    ca.send_message(mto=srv.jid(b), mbody='third', mtype='chat')

    def only_third():
        rows = [xml for _, xml in stored(srv, b)]
        return len(rows) == 1 and '>third<' in rows[0]
    wait_until(only_third, what=lambda: 'only the third message stored: %s' % stored(srv, b))
    cb.send_presence(ppriority=0)
    wait_until(lambda: bodies(cb) == ['third'], what=lambda: bodies(cb))


@test
def xep0160_recipient_on_aioxmpp(srv):
    a, b = users_on_two_shards(srv, 'aoff')
    go_sendxmpp(srv, a, srv.jid(b), 'for the aioxmpp client')
    wait_stored(srv, b, 1)
    got = []
    try:
        # aioxmpp sends its initial presence as it connects: listen first
        aio_connect_with_listener(srv, b, got.append)
        wait_until(lambda: got, what='the stored message at aioxmpp')
        msg = got[0]
        assert list(msg.body.values()) == ['for the aioxmpp client'], msg.body
        assert msg.type_ == aioxmpp.MessageType.CHAT, msg.type_
        delay = msg.xep0203_delay
        assert delay, 'no delay at aioxmpp'
        assert str(delay[0].from_) == srv.host, delay[0].from_
    finally:
        aio_close_all()


def aio_connect_with_listener(srv, user, on_message):
    """aio_connect, with a message listener installed before the stream
    (and so the initial presence) is up."""
    orig = aioxmpp.PresenceManagedClient.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)
        disp = self.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        disp.register_callback(None, None, on_message)
    aioxmpp.PresenceManagedClient.__init__ = init
    try:
        return aio_connect(srv, user)
    finally:
        aioxmpp.PresenceManagedClient.__init__ = orig


@test
def xep0160_full_queue_bounces_service_unavailable_with_text():
    limited = parley.Server(threads=THREADS, extra_config="""
        modules:
          mod_disco: {}
          mod_ping: {}
          mod_roster: {}
          mod_offline:
            max_messages: %d
        """ % LIMIT)
    a, b = users_on_two_shards(limited, 'full')
    ca = im_session(limited, a, presence=True)
    for i in range(LIMIT + 2):
        ca.send_message(mto=limited.jid(b), mbody='m%d' % i, mtype='chat')
    wait_until(lambda: len(ca.got_messages) == 2,
               what=lambda: 'two bounces, got %s' % [str(m) for m in ca.got_messages])
    for m in ca.got_messages:
        assert m['type'] == 'error', m
        err = m.xml.find('{jabber:client}error')
        assert err.get('type') == 'cancel', m
        assert err.find('{%s}service-unavailable' % NS_STANZAS) is not None, m
        text = err.find('{%s}text' % NS_STANZAS)
        assert text is not None and 'full' in text.text, m
        assert m['from'] == limited.jid(b), m['from']
    assert sorted(m['body'] for m in ca.got_messages) == ['m3', 'm4'], ca.got_messages
    assert len(stored(limited, b)) == LIMIT
    # disco: the module's feature (XEP-0160 section 4)
    info = send_raw_iq(ca, 'get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=limited.host)
    features = {f.get('var') for f in info.iter('{%s}feature' % NS_DISCO_INFO)}
    assert 'msgoffline' in features, features
    cb = im_session(limited, b, presence=True)
    wait_until(lambda: bodies(cb) == ['m0', 'm1', 'm2'], what=lambda: bodies(cb))
    # a message to an account that does not exist is not stored
    ca.got_messages.clear()
    ca.send_message(mto=limited.jid('nobody-at-all'), mbody='void', mtype='chat')
    wait_until(lambda: ca.got_messages, what='bounce for an unknown user')
    err = ca.got_messages[0].xml.find('{jabber:client}error')
    assert err.find('{%s}service-unavailable' % NS_STANZAS) is not None
    assert not stored(limited, 'nobody-at-all')
    parley._close_clients()
    assert limited.stop() == 0
    assert not limited.sanitizer_report(), limited.sanitizer_report()


@test
def xep0160_stored_message_survives_kill_9(srv):
    a, b = users_on_two_shards(srv, 'crash')
    go_sendxmpp(srv, a, srv.jid(b), 'written before the crash')
    wait_stored(srv, b, 1)
    srv.kill()
    srv.start()
    cb = im_session(srv, b, presence=True)
    wait_until(lambda: bodies(cb) == ['written before the crash'], what=lambda: bodies(cb))
    assert_delay(cb.got_messages[0], srv.host)


@test
def xep0160_disco_advertises_msgoffline(srv):
    a, _ = users_on_two_shards(srv, 'disco')
    c = im_session(srv, a)
    info = send_raw_iq(c, 'get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=srv.host)
    features = {f.get('var') for f in info.iter('{%s}feature' % NS_DISCO_INFO)}
    assert 'msgoffline' in features, features


if __name__ == '__main__':
    main(threads=THREADS)
