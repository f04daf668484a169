"""Resource limits: a server out of file descriptors keeps running, keeps
serving the sessions it has, and accepts again once descriptors free up, on
the XMPP and on the HTTP listener.

Per-user limits, on a server started with small ones: a roster of at most
max_items items (RFC 6121 leaves its size to the server) refuses item
number max_items+1, whether a roster set or a subscription stanza would
add it, while updates and removals still work; subscription requests from
contacts outside the roster have a count of their own, and one past it is
denied with 'unsubscribed'. Private XML storage (XEP-0049) keeps at most
max_items namespaces of at most max_size bytes as stored. Bad values of
both options stop parleyd with FILE:LINE.

Run from the repository root: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_limits.py
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import parley
from parley import test, main, Server, run_parleyd, write_config
from xmpp_raw import RawStream, NS_STREAMS, tag
from im_clients import (PASSWORD, NS_ROSTER, im_session, send_raw_iq, roster_get, roster_set,
                        pushes, wait_push, presences, wait_presence, wait_until, settle)


def set_soft_fd_limit(pid, n):
    # Only the soft limit: the hard one cannot be raised back afterwards.
    subprocess.run(['prlimit', '--nofile=%d:' % n, '--pid', str(pid)], check=True)


def cpu_ticks(pid):
    # The process's stat line after its command name: utime and stime.
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def open_stream_ok(port):
    r = RawStream(port, timeout=5)
    try:
        features = r.open()
        return features.find(tag('urn:ietf:params:xml:ns:xmpp-tls', 'starttls')) is not None
    finally:
        r.close()


def http_status_ok(port):
    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
        s.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
        return s.recv(64).startswith(b'HTTP/1.1 200')


def exhaust_fds_then_recover(srv, port, served):
    """Fill port's backlog past the server's descriptor limit: the listener
    pauses instead of spinning, the server stays up, and once descriptors
    are free again served(port) succeeds."""
    # Room for what the server already holds plus a few connections.
    used = len(os.listdir('/proc/%d/fd' % srv.pid))
    set_soft_fd_limit(srv.pid, used + 8)
    held = []
    try:
        for _ in range(40):   # far more than the limit allows
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            held.append(s)
        srv.wait_log('out of file descriptors', timeout=10)
        # The listener is paused, not spinning: the server is idle.
        t0 = cpu_ticks(srv.pid)
        time.sleep(1.0)
        ticks = cpu_ticks(srv.pid) - t0
        assert ticks < 30, 'server burned %d CPU ticks in 1 s while out of fds' % ticks
        assert srv.alive()
    finally:
        for s in held:
            s.close()
    # Descriptors freed: new connections are served again (backlog drained).
    deadline = time.time() + 10
    while True:
        try:
            if served(port):
                break
        except Exception:
            pass
        if time.time() > deadline:
            raise AssertionError('nothing served after descriptors were freed')
        time.sleep(0.2)
    set_soft_fd_limit(srv.pid, 20000)
    rc, out, _ = srv.ctl('status')
    assert rc == 0, out


@test
def out_of_file_descriptors_pauses_accepts_and_recovers(srv):
    exhaust_fds_then_recover(srv, srv.ports['c2s'], open_stream_ok)


@test
def http_out_of_file_descriptors_pauses_accepts_and_recovers(srv):
    # The HTTP listener accepts on its own (its sockets go to
    # libwebsockets) and must pause the same way.
    exhaust_fds_then_recover(srv, srv.ports['http'], http_status_ok)


# ------------------------------------------------------ per-user limits

MAX_ITEMS = 3
MAX_PRIVATE_SIZE = 4096
LIMITED_CONFIG = '''
    modules:
      mod_disco: {}
      mod_ping: {}
      mod_roster: {max_items: %d}
      mod_private: {max_items: %d, max_size: %d}
    ''' % (MAX_ITEMS, MAX_ITEMS, MAX_PRIVATE_SIZE)
ROSTER_FULL = 'the roster is limited to %d items' % MAX_ITEMS
PRIVATE_FULL = 'private storage is limited to %d namespaces' % MAX_ITEMS
NS_PRIVATE = 'jabber:iq:private'

_limited = None


def limited():
    """The server with small per-user limits (two shards), shared by the
    tests below; a fresh one if a test left it dead."""
    global _limited
    if _limited is None or not _limited.alive():
        _limited = Server(threads=2, extra_config=LIMITED_CONFIG)
    return _limited


def accounts(srv, *names):
    for n in names:
        srv.register(n, PASSWORD)
    return [srv.jid(n) for n in names]


def refused(c, type_, payload):
    """(error type, condition, text) of an iq that must fail."""
    from slixmpp.exceptions import IqError
    try:
        res = send_raw_iq(c, type_, payload)
    except IqError as e:
        err = e.iq['error']
        return err['type'], err['condition'], err['text']
    raise AssertionError('expected an error, got %s' % ET.tostring(res, encoding='unicode'))


def presence_error(p):
    err = p['error']
    return err['type'], err['condition'], err['text']


@test
def rfc6121_2_3_roster_set_past_max_items_is_not_allowed():
    srv = limited()
    accounts(srv, 'rset')
    x = [srv.jid('x%d' % i) for i in range(1, 5)]
    c = im_session(srv, 'rset', roster=True)
    for j in x[:3]:
        roster_set(c, j)
    item = "<query xmlns='%s'><item jid='%s' name='Four'/></query>" % (NS_ROSTER, x[3])
    assert refused(c, 'set', item) == ('cancel', 'not-allowed', ROSTER_FULL)
    assert sorted(roster_get(c)[1]) == sorted(x[:3])
    # at the limit an existing item is still renamed and removed
    roster_set(c, x[1], name='Renamed', groups=['Work'])
    wait_push(c, x[1], name='Renamed')
    roster_set(c, x[0], remove=True)
    wait_push(c, x[0], subscription='remove')
    # which makes room for one
    send_raw_iq(c, 'set', item)
    wait_push(c, x[3], name='Four')
    items = roster_get(c)[1]
    assert sorted(items) == sorted(x[1:]), items
    assert items[x[1]]['name'] == 'Renamed' and items[x[1]]['groups'] == ['Work'], items
    assert refused(c, 'set', "<query xmlns='%s'><item jid='%s'/></query>"
                   % (NS_ROSTER, x[0])) == ('cancel', 'not-allowed', ROSTER_FULL)
    assert srv.alive()


@test
def rfc6121_3_subscription_that_would_add_an_item_past_max_items():
    srv = limited()
    ja, jb, js = accounts(srv, 'sfull', 'sfriend', 'sstranger')
    ca = im_session(srv, 'sfull', roster=True, presence=True)
    cb = im_session(srv, 'sfriend', roster=True, presence=True)
    cs = im_session(srv, 'sstranger', roster=True, presence=True)
    for j in (jb, srv.jid('y1'), srv.jid('y2')):
        roster_set(ca, j)
    settle(ca)
    before = len(pushes(ca))
    # asking a contact outside the full roster: a presence error, nothing sent
    ca.send_presence(pto=js, ptype='subscribe')
    err = wait_presence(ca, js, 'error')
    assert presence_error(err) == ('cancel', 'not-allowed', ROSTER_FULL), err
    assert err.xml.get('to') == str(ca.boundjid), err
    settle(ca, cs)
    assert not presences(cs, ja, 'subscribe'), 'the refused request went out'
    assert len(pushes(ca)) == before, pushes(ca)[before:]
    assert js not in roster_get(ca)[1]
    # asking a contact already in it works as ever
    ca.send_presence(pto=jb, ptype='subscribe')
    wait_push(ca, jb, ask='subscribe')
    wait_presence(cb, ja, 'subscribe')
    # the stranger's request waits (not an item); approving it would add one
    cs.send_presence(pto=ja, ptype='subscribe')
    wait_presence(ca, js, 'subscribe')
    ca.send_presence(pto=js, ptype='subscribed')
    wait_until(lambda: len(presences(ca, js, 'error')) == 2, what='a second presence error')
    assert presence_error(presences(ca, js, 'error')[1]) == \
        ('cancel', 'not-allowed', ROSTER_FULL)
    settle(ca, cs)
    assert not presences(cs, ja, 'subscribed'), 'the refused approval went out'
    # a removal makes room: the approval goes through
    roster_set(ca, srv.jid('y1'), remove=True)
    ca.send_presence(pto=js, ptype='subscribed')
    wait_push(ca, js, subscription='from')
    wait_presence(cs, ja, 'subscribed')
    assert srv.alive()


@test
def rfc6121_3_1_3_requests_past_max_items_are_denied():
    srv = limited()
    ja, jb = accounts(srv, 'rqfull', 'rqfriend')
    names = ['rqs%d' % i for i in range(1, 5)]
    strangers = accounts(srv, *names)
    ca = im_session(srv, 'rqfull', roster=True, presence=True)
    cs = [im_session(srv, n, roster=True, presence=True) for n in names]
    # a full roster does not stop requests: they have a count of their own
    for j in (jb, srv.jid('z1'), srv.jid('z2')):
        roster_set(ca, j)
    for c, j in zip(cs[:3], strangers[:3]):
        c.send_presence(pto=ja, ptype='subscribe')
        wait_presence(ca, j, 'subscribe')
    # one past it is denied as the user would deny it, and never delivered
    cs[3].send_presence(pto=ja, ptype='subscribe')
    wait_push(cs[3], ja, ask='subscribe')
    wait_presence(cs[3], ja, 'unsubscribed')
    wait_push(cs[3], ja, subscription='none', ask=None)
    settle(ca, cs[3])
    assert not presences(ca, strangers[3], 'subscribe'), 'the denied request arrived'
    # a contact in the roster can still ask
    cb = im_session(srv, 'rqfriend', roster=True, presence=True)
    cb.send_presence(pto=ja, ptype='subscribe')
    wait_presence(ca, jb, 'subscribe')
    # answering a request frees its place
    ca.send_presence(pto=strangers[0], ptype='unsubscribed')
    wait_presence(cs[0], ja, 'unsubscribed')
    cs[3].send_presence(pto=ja, ptype='subscribe')
    wait_presence(ca, strangers[3], 'subscribe')
    assert srv.alive()


def private_set(*elements):
    return "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, ''.join(elements))


def private_get(c, ns):
    res = send_raw_iq(c, 'get', private_set("<e xmlns='%s'/>" % ns))
    return res.find('{%s}query' % NS_PRIVATE)[0]


@test
def xep0049_namespaces_past_max_items_are_not_allowed():
    srv = limited()
    accounts(srv, 'pfull', 'pother')
    c = im_session(srv, 'pfull')
    el = lambda ns, v: "<e xmlns='urn:example:%s'><v>%s</v></e>" % (ns, v)
    send_raw_iq(c, 'set', private_set(el('a', 1), el('b', 1)))
    send_raw_iq(c, 'set', private_set(el('c', 1)))
    assert refused(c, 'set', private_set(el('d', 1))) == ('cancel', 'not-allowed', PRIVATE_FULL)
    # all or nothing: the replaced namespace keeps its old value
    assert refused(c, 'set', private_set(el('a', 2), el('d', 1))) == \
        ('cancel', 'not-allowed', PRIVATE_FULL)
    assert private_get(c, 'urn:example:a').find('{urn:example:a}v').text == '1'
    assert len(private_get(c, 'urn:example:d')) == 0
    # replacing works at the limit
    send_raw_iq(c, 'set', private_set(el('b', 2)))
    assert private_get(c, 'urn:example:b').find('{urn:example:b}v').text == '2'
    # an empty element removes its namespace, which makes room
    send_raw_iq(c, 'set', private_set("<e xmlns='urn:example:c'/>"))
    assert len(private_get(c, 'urn:example:c')) == 0
    send_raw_iq(c, 'set', private_set(el('d', 1)))
    assert private_get(c, 'urn:example:d').find('{urn:example:d}v').text == '1'
    # and in one set, a removal and an addition
    send_raw_iq(c, 'set', private_set("<e xmlns='urn:example:a'/>", el('e', 1)))
    assert private_get(c, 'urn:example:e').find('{urn:example:e}v').text == '1'
    # the limit is per user
    o = im_session(srv, 'pother')
    send_raw_iq(o, 'set', private_set(el('a', 9), el('b', 9), el('c', 9)))
    assert srv.alive()


@test
def xep0049_element_over_max_size_as_stored_is_not_acceptable():
    srv = limited()
    accounts(srv, 'psize')
    c = im_session(srv, 'psize')
    too_big = ('modify', 'not-acceptable',
               'a private XML element may be at most %d bytes' % MAX_PRIVATE_SIZE)
    big = "<e xmlns='urn:example:big'>%s</e>" % ('x' * MAX_PRIVATE_SIZE)
    assert refused(c, 'set', private_set(big)) == too_big
    # a stanza far under the limit that would be stored far over it: a
    # prefixed element inside another default namespace is stored with
    # its namespace declared again each time
    long_ns = 'urn:example:' + 'n' * 200
    amplified = ("<e xmlns='urn:example:amp' xmlns:p='%s'>%s</e>"
                 % (long_ns, '<p:a/><b/>' * 40))
    assert len(amplified) < MAX_PRIVATE_SIZE // 4
    assert refused(c, 'set', private_set(amplified)) == too_big
    assert len(private_get(c, 'urn:example:amp')) == 0
    # just under the limit is stored
    fits = "<e xmlns='urn:example:big'>%s</e>" % ('x' * (MAX_PRIVATE_SIZE - 100))
    send_raw_iq(c, 'set', private_set(fits))
    assert len(private_get(c, 'urn:example:big').text) == MAX_PRIVATE_SIZE - 100
    assert srv.alive()


def bad_option_config(d, module, line):
    """A config in d whose line 5 is `line` under module's options."""
    return write_config(d, 'hosts: [localhost]\n'
                           'data_dir: %s\n'
                           'modules:\n'
                           '  %s:\n'
                           '    %s\n' % (os.path.join(d, 'data'), module, line))


@test
def config_max_items_must_be_a_positive_number():
    for module, line, words in (
            ('mod_roster', 'max_items: 0', ("key 'max_items'", 'out of range 1..')),
            ('mod_roster', 'max_items: abc', ("key 'max_items'", "'abc' is not a number")),
            ('mod_private', 'max_items: -3', ("key 'max_items'", 'out of range 1..')),
            ('mod_private', 'max_items: 1.5', ("key 'max_items'", "'1.5' is not a number")),
            ('mod_private', 'max_size: 10', ("key 'max_size'", 'out of range 1024..'))):
        d = tempfile.mkdtemp(prefix='parley-limits-')
        path = bad_option_config(d, module, line)
        for args in (['-c', path, '--check-config'], ['-c', path]):
            rc, out, err = run_parleyd(args, timeout=10)
            assert rc == 1, '%s %r: exit %d: %r' % (module, line, rc, err[-400:])
            want = '%s:5: ' % path
            assert want in err, 'expected %r in %r' % (want, err[-400:])
            for w in words:
                assert w in err, 'expected %r in %r' % (w, err[-400:])
            assert parley.sanitizer_report(err) is None, err
        shutil.rmtree(d)


if __name__ == '__main__':
    main(threads=1)
