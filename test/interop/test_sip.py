"""SIP OPTIONS (RFC 3261 11) against real clients and raw sockets.

sipp (package sip-tester) runs the scenarios in test/interop/sip/: OPTIONS
over UDP and TCP answered 200 with Allow, a To-tag and Server, and OPTIONS
for a foreign domain answered 404. sipsak, when installed, pings too. Raw
sockets send what no well-behaved client would: malformed requests (400
naming the problem), garbage (no answer), broken TCP framing (400, then the
connection closes). After every bad input the server must still serve.

Run: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_sip.py
"""

import os
import re
import shutil
import socket
import struct
import subprocess
import time

import parley
from parley import test, main

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, 'sip')


def sipp(srv, scenario, domain, transport):
    if not shutil.which('sipp'):
        raise AssertionError('sipp not installed (package sip-tester)')
    workdir = os.path.join(srv.data_dir, 'sipp-%s-%s' % (scenario, transport))
    os.makedirs(workdir, exist_ok=True)
    argv = ['sipp', '-sf', os.path.join(SCENARIOS, scenario + '.xml'),
            '-key', 'domain', domain, '-m', '1', '-t', transport,
            '-i', '127.0.0.1', '-p', str(parley.free_port()),
            '-timeout', '10', '-timeout_error', '-nostdin', '-trace_err',
            '127.0.0.1:%d' % srv.ports['sip']]
    p = subprocess.run(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode('utf-8', 'replace')
    errors = ''
    for name in os.listdir(workdir):
        if name.endswith('_errors.log'):
            with open(os.path.join(workdir, name), errors='replace') as f:
                errors += f.read()
    assert p.returncode == 0, 'sipp %s over %s: exit %d\n%s\n%s' % (
        scenario, transport, p.returncode, errors[-2000:], out[-1500:])
    assert srv.alive(), 'parleyd died'


def request(method='OPTIONS', uri='sip:localhost', transport='UDP', port=None,
            headers=None, body=b'', content_length=True, branch=None):
    """A request as bytes; headers is a list that replaces the defaults'
    values (name -> value, None to drop the header)."""
    branch = branch or 'z9hG4bK-' + os.urandom(6).hex()
    sent_by = '127.0.0.1:%d' % port if port else '127.0.0.1'
    hdrs = [
        ('Via', 'SIP/2.0/%s %s;branch=%s;rport' % (transport, sent_by, branch)),
        ('Max-Forwards', '70'),
        ('From', '<sip:tester@127.0.0.1>;tag=%s' % os.urandom(4).hex()),
        ('To', '<%s>' % uri),
        ('Call-ID', os.urandom(8).hex() + '@127.0.0.1'),
        ('CSeq', '1 %s' % method),
    ]
    for name, value in (headers or []):
        hdrs = [(n, v) for n, v in hdrs if n != name]
        if value is not None:
            hdrs.append((name, value))
    if content_length:
        hdrs.append(('Content-Length', str(len(body))))
    text = '%s %s SIP/2.0\r\n' % (method, uri)
    text += ''.join('%s: %s\r\n' % h for h in hdrs)
    return text.encode() + b'\r\n' + body


def status_of(data):
    line = data.split(b'\r\n', 1)[0].decode('utf-8', 'replace')
    m = re.match(r'SIP/2\.0 (\d{3}) (.*)$', line)
    assert m, 'not a SIP response: %r' % data[:200]
    return int(m.group(1)), m.group(2)


def header(data, name):
    for line in data.split(b'\r\n\r\n', 1)[0].split(b'\r\n')[1:]:
        n, _, v = line.decode('utf-8', 'replace').partition(':')
        if n.strip().lower() == name.lower():
            return v.strip()
    return None


def udp_exchange(srv, payload, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        s.settimeout(timeout)
        s.sendto(payload, ('127.0.0.1', srv.ports['sip']))
        try:
            return s.recvfrom(65536)[0]
        except socket.timeout:
            return None


def assert_serving(srv):
    reply = udp_exchange(srv, request())
    assert reply is not None, 'no answer to a good OPTIONS'
    assert status_of(reply)[0] == 200, reply[:200]
    assert srv.alive(), 'parleyd died'


# ------------------------------------------------------------ sipp, sipsak

@test
def rfc3261_11_sipp_options_over_udp_200(srv):
    sipp(srv, 'options', 'localhost', 'u1')
    sipp(srv, 'options', '127.0.0.1', 'u1')


@test
def rfc3261_11_sipp_options_over_tcp_200(srv):
    sipp(srv, 'options', 'localhost', 't1')


@test
def rfc3261_sipp_options_foreign_domain_404(srv):
    sipp(srv, 'options_404', 'example.org', 'u1')
    sipp(srv, 'options_404', 'example.org', 't1')


@test
def rfc3261_11_sipsak_options_ping(srv):
    if not shutil.which('sipsak'):
        print('  (sipsak not installed: skipped)')
        return
    p = subprocess.run(['sipsak', '-s', 'sip:ping@127.0.0.1:%d' % srv.ports['sip'], '-vv'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode('utf-8', 'replace')
    assert p.returncode == 0 and 'SIP/2.0 200 OK' in out, \
        'sipsak: exit %d\n%s' % (p.returncode, out[-1500:])
    assert srv.alive(), 'parleyd died'


# ------------------------------------------------------------ raw UDP

@test
def rfc3261_8_2_6_options_response_headers_udp(srv):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        s.settimeout(2)
        port = s.getsockname()[1]
        req = request(port=port)
        s.sendto(req, ('127.0.0.1', srv.ports['sip']))
        data = s.recvfrom(65536)[0]
    assert status_of(data) == (200, 'OK'), data[:200]
    sent = {n: header(req, n) for n in ('From', 'Call-ID', 'CSeq')}
    for n, v in sent.items():
        assert header(data, n) == v, '%s: %r, sent %r' % (n, header(data, n), v)
    via = header(data, 'Via')
    assert 'rport=%d' % port in via and 'received=127.0.0.1' in via, via
    assert ';tag=' in header(data, 'To'), header(data, 'To')
    assert 'OPTIONS' in header(data, 'Allow'), header(data, 'Allow')
    assert header(data, 'Accept') == 'application/sdp'
    assert header(data, 'Supported') is not None
    assert header(data, 'Server').startswith('parley/'), header(data, 'Server')
    assert header(data, 'Content-Length') == '0'


@test
def rfc3261_8_2_malformed_requests_400(srv):
    cases = [
        (request(headers=[('CSeq', '1 INVITE')]), 'CSeq Method Mismatch'),
        (request(headers=[('Call-ID', None)]), 'Missing Call-ID'),
        (request(headers=[('From', None)]), 'Missing From'),
        (request(headers=[('To', None)]), 'Missing To'),
        (request(headers=[('CSeq', 'x OPTIONS')]), 'Invalid CSeq'),
        (request(content_length=False)[:-2] + b'Content-Length: 10\r\n\r\n',
         'Content-Length'),
    ]
    for payload, reason in cases:
        reply = udp_exchange(srv, payload)
        assert reply is not None, 'no answer to a request that lacks %s' % reason
        code, phrase = status_of(reply)
        assert code == 400 and reason in phrase, '%d %s, want 400 %s' % (code, phrase, reason)
        assert srv.alive(), 'parleyd died'
    assert_serving(srv)


@test
def rfc3261_8_2_2_1_foreign_domain_404_and_others_501(srv):
    reply = udp_exchange(srv, request(uri='sip:bob@example.org'))
    assert reply is not None and status_of(reply)[0] == 404, reply
    reply = udp_exchange(srv, request(method='INVITE', uri='sip:alice@localhost'))
    assert reply is not None and status_of(reply)[0] == 501, reply
    assert 'OPTIONS' in header(reply, 'Allow')


@test
def rfc3261_garbage_over_udp_is_dropped(srv):
    junk = [b'hello', b'\r\n\r\n', os.urandom(300), b'GET / HTTP/1.1\r\n\r\n',
            b'OPTIONS sip:localhost SIP/2.0\r\nFrom: <sip:a@b>\r\n\r\n',  # no Via
            b'INVITE sip:x SIP/2.0\r\n' + b'X: ' + b'a' * 60000 + b'\r\n\r\n']
    for payload in junk:
        reply = udp_exchange(srv, payload, timeout=0.4)
        # Random bytes may start like STUN; anything else must stay silent.
        if reply is not None and payload[:1] and payload[0] & 0xC0 == 0:
            continue
        assert reply is None, '%r answered with %r' % (payload[:30], reply[:100])
        assert srv.alive(), 'parleyd died after %r' % payload[:30]
    assert_serving(srv)


@test
def rfc5626_4_4_2_stun_keepalive_on_sip_port(srv):
    tid = os.urandom(12)
    req = struct.pack('!HHI', 1, 0, 0x2112A442) + tid
    reply = udp_exchange(srv, req)
    assert reply is not None, 'STUN keepalive not answered on the SIP port'
    assert reply[:2] == b'\x01\x01' and reply[8:20] == tid, reply[:20]


# ------------------------------------------------------------ raw TCP

def read_responses(sock, count, timeout=3.0):
    """count responses (Content-Length framed) from a stream."""
    sock.settimeout(timeout)
    buf, out = b'', []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        while b'\r\n\r\n' in buf and len(out) < count:
            head, rest = buf.split(b'\r\n\r\n', 1)
            n = int(header(head + b'\r\n\r\n', 'Content-Length') or 0)
            if len(rest) < n:
                break
            out.append(head + b'\r\n\r\n' + rest[:n])
            buf = rest[n:]
        if len(out) >= count:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def wait_closed(sock, timeout=3.0):
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
    return False


@test
def rfc3261_18_3_tcp_pipelined_with_keepalives(srv):
    with socket.create_connection(('127.0.0.1', srv.ports['sip']), timeout=3) as s:
        a = request(transport='TCP')
        b = request(transport='TCP', uri='sip:nobody@example.org')
        c = request(method='MESSAGE', transport='TCP', body=b'hello\r\n\r\nthere',
                    headers=[('Content-Type', 'text/plain')])
        stream = b'\r\n\r\n' + a + b'\r\n' + b + c + b'\r\n\r\n'
        s.sendall(stream[:33])
        time.sleep(0.1)
        s.sendall(stream[33:])
        got = read_responses(s, 3)
        assert [status_of(r)[0] for r in got] == [200, 404, 501], \
            [status_of(r) for r in got]
        # Still open and in step after all that.
        s.sendall(request(transport='TCP'))
        got = read_responses(s, 1)
        assert got and status_of(got[0])[0] == 200


@test
def rfc3261_18_3_tcp_missing_content_length_400_then_close(srv):
    with socket.create_connection(('127.0.0.1', srv.ports['sip']), timeout=3) as s:
        s.sendall(request(transport='TCP', content_length=False))
        got = read_responses(s, 1)
        assert got, 'no 400 before closing'
        code, phrase = status_of(got[0])
        assert code == 400 and 'Content-Length' in phrase, (code, phrase)
        assert wait_closed(s), 'connection left open after broken framing'
    assert_serving(srv)


@test
def rfc3261_18_3_tcp_oversized_message_closed(srv):
    with socket.create_connection(('127.0.0.1', srv.ports['sip']), timeout=3) as s:
        s.sendall(request(transport='TCP', headers=[('Content-Length', '70000')],
                          content_length=False))
        got = read_responses(s, 1)
        assert got and status_of(got[0])[0] == 513, got
        assert wait_closed(s)
    with socket.create_connection(('127.0.0.1', srv.ports['sip']), timeout=3) as s:
        try:
            s.sendall(b'OPTIONS sip:localhost SIP/2.0\r\nX: ' + b'a' * 70000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert wait_closed(s), 'endless headers not cut off'
    assert_serving(srv)


@test
def rfc3261_tcp_garbage_closes(srv):
    with socket.create_connection(('127.0.0.1', srv.ports['sip']), timeout=3) as s:
        s.sendall(os.urandom(64).replace(b'\r', b'x').replace(b'\n', b'x') +
                  b'\r\nContent-Length: 0\r\n\r\n')
        assert wait_closed(s), 'garbage stream left open'
    assert_serving(srv)


if __name__ == '__main__':
    main(threads=2)
