"""STUN Binding (RFC 8489) against real clients and raw sockets.

Clients: stun-client's `stun` (an RFC 3489 client: no magic cookie, wants
MAPPED-ADDRESS) and coturn's turnutils_stunclient (RFC 5389/8489, reads
XOR-MAPPED-ADDRESS). Raw sockets cover what the clients do not: garbage is
never answered and does not disturb the server, unknown attributes get 420,
other methods 400, and Binding works over TCP, framed by the length field.

Run: PARLEY_BUILD=BUILD_DIR /usr/bin/python3 test/interop/test_stun.py
"""

import binascii
import os
import re
import shutil
import socket
import struct
import subprocess
import time

import parley
from parley import test, main

MAGIC = 0x2112A442
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A


# ------------------------------------------------------------ codec

def attr(atype, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack('!HH', atype, len(value)) + value + b'\0' * pad


def message(mtype, tid, attrs=b'', fingerprint=False, cookie=MAGIC):
    body = attrs
    if fingerprint:
        head = struct.pack('!HHI', mtype, len(body) + 8, cookie) + tid
        crc = (binascii.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += attr(FINGERPRINT, struct.pack('!I', crc))
    return struct.pack('!HHI', mtype, len(body), cookie) + tid + body


def binding_request(tid=None, attrs=b'', fingerprint=True):
    tid = tid or os.urandom(12)
    return tid, message(0x0001, tid, attrs, fingerprint)


def parse(data):
    """(type, cookie, tid, [(type, value)]) of a well-formed message."""
    assert len(data) >= 20, 'short response: %r' % data
    mtype, length, cookie = struct.unpack('!HHI', data[:8])
    assert length + 20 == len(data), 'length field %d, %d bytes' % (length, len(data))
    attrs, off = [], 20
    while off < len(data):
        atype, alen = struct.unpack('!HH', data[off:off + 4])
        attrs.append((atype, data[off + 4:off + 4 + alen]))
        off += 4 + alen + (4 - alen % 4) % 4
    assert off == len(data), 'attributes overrun the message'
    return mtype, cookie, data[8:20], attrs


def find(attrs, atype):
    for t, v in attrs:
        if t == atype:
            return v
    return None


def xor_address(value, tid):
    family, xport = struct.unpack('!xBH', value[:4])
    port = xport ^ (MAGIC >> 16)
    if family == 1:
        ip = struct.unpack('!I', value[4:8])[0] ^ MAGIC
        return socket.inet_ntop(socket.AF_INET, struct.pack('!I', ip)), port
    key = struct.pack('!I', MAGIC) + tid
    raw = bytes(a ^ b for a, b in zip(value[4:20], key))
    return socket.inet_ntop(socket.AF_INET6, raw), port


def plain_address(value):
    family, port = struct.unpack('!xBH', value[:4])
    if family == 1:
        return socket.inet_ntop(socket.AF_INET, value[4:8]), port
    return socket.inet_ntop(socket.AF_INET6, value[4:20]), port


def check_fingerprint(data):
    assert struct.unpack('!H', data[-8:-6])[0] == FINGERPRINT, 'FINGERPRINT not last'
    crc = (binascii.crc32(data[:-8]) ^ 0x5354554E) & 0xFFFFFFFF
    assert struct.unpack('!I', data[-4:])[0] == crc, 'bad FINGERPRINT'


def error_code(attrs):
    v = find(attrs, ERROR_CODE)
    assert v is not None, 'no ERROR-CODE'
    return (v[2] & 7) * 100 + v[3]


# ------------------------------------------------------------ plumbing

def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    s.settimeout(2)
    return s


def exchange(srv, payload, timeout=2.0):
    """Send one datagram to the stun port; the reply or None."""
    with udp_socket() as s:
        s.settimeout(timeout)
        s.sendto(payload, ('127.0.0.1', srv.ports['stun']))
        try:
            return s.recvfrom(2048)[0]
        except socket.timeout:
            return None


def assert_binding_answered(srv):
    """A Binding request still gets a success answer (the server is up)."""
    with udp_socket() as s:
        tid, req = binding_request()
        s.sendto(req, ('127.0.0.1', srv.ports['stun']))
        mtype, _, rtid, attrs = parse(s.recvfrom(2048)[0])
        assert mtype == 0x0101 and rtid == tid, 'no Binding success (type %#x)' % mtype
        assert xor_address(find(attrs, XOR_MAPPED_ADDRESS), tid) == s.getsockname()
    assert srv.alive(), 'parleyd died'


def run_tool(argv, timeout=20):
    if not shutil.which(argv[0]):
        raise AssertionError('%s not installed (tools/install-deps --test)' % argv[0])
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode('utf-8', 'replace')


# ------------------------------------------------------------ real clients

@test
def rfc3489_stun_client_prints_our_mapped_address(srv):
    src = parley.free_port()
    rc, out = run_tool(['stun', '127.0.0.1:%d' % srv.ports['stun'], '1', '-v',
                        '-p', str(src)])
    want = 'MappedAddress = 127.0.0.1:%d' % src
    assert want in out, 'stun printed no %r (exit %d):\n%s' % (want, rc, out[-1500:])
    assert srv.alive(), 'parleyd died'


@test
def rfc3489_stun_client_nat_discovery_sees_open_internet(srv):
    # The full RFC 3489 discovery: test I is answered; the change requests
    # (tests II and III) are refused, which a client on loopback reads as
    # an open path, not as a blocked server.
    rc, out = run_tool(['stun', '127.0.0.1:%d' % srv.ports['stun']])
    assert 'Blocked' not in out and 'Open' in out, \
        'stun NAT discovery: exit %d:\n%s' % (rc, out[-1500:])
    assert srv.alive(), 'parleyd died'


@test
def rfc8489_turnutils_stunclient_prints_reflexive_address(srv):
    rc, out = run_tool(['turnutils_stunclient', '-p', str(srv.ports['stun']),
                        '127.0.0.1'])
    m = re.search(r'UDP reflexive addr: ([0-9.]+):(\d+)', out)
    assert m, 'no reflexive address printed (exit %d):\n%s' % (rc, out[-1500:])
    assert m.group(1) == '127.0.0.1', 'mapped address %s' % m.group(1)
    # The client cannot choose its port: check the one it printed is the
    # one the server saw the request come from.
    srv.wait_log('stun: udp 127.0.0.1:%s: ' % m.group(2), timeout=5)
    assert srv.alive(), 'parleyd died'


# ------------------------------------------------------------ raw UDP

@test
def rfc8489_binding_over_udp(srv):
    with udp_socket() as s:
        tid, req = binding_request(fingerprint=True)
        s.sendto(req, ('127.0.0.1', srv.ports['stun']))
        data = s.recvfrom(2048)[0]
        mtype, cookie, rtid, attrs = parse(data)
        assert mtype == 0x0101, 'type %#x' % mtype
        assert cookie == MAGIC and rtid == tid
        assert xor_address(find(attrs, XOR_MAPPED_ADDRESS), tid) == s.getsockname()
        assert plain_address(find(attrs, MAPPED_ADDRESS)) == s.getsockname()
        assert find(attrs, SOFTWARE).startswith(b'parley'), find(attrs, SOFTWARE)
        check_fingerprint(data)

        # Without FINGERPRINT in the request, none in the response.
        tid, req = binding_request(fingerprint=False)
        s.sendto(req, ('127.0.0.1', srv.ports['stun']))
        _, _, _, attrs = parse(s.recvfrom(2048)[0])
        assert find(attrs, FINGERPRINT) is None


@test
def rfc8489_garbage_is_never_answered(srv):
    tid = os.urandom(12)
    good = message(0x0001, tid, fingerprint=True)
    bad_fp = good[:-1] + bytes([good[-1] ^ 1])
    junk = [
        b'hello world',
        os.urandom(100),
        b'\0' * 20,                                        # no cookie, type 0
        good[:19],                                         # short header
        good + b'\0\0\0\0',                                # length mismatch
        bad_fp,                                            # bad FINGERPRINT
        message(0x0003, tid, cookie=0x01020304),           # wrong cookie
        b'\x80' + good[1:],                                # top bits set
        struct.pack('!HHI', 1, 8, MAGIC) + tid + struct.pack('!HH', 0x8001, 40),
    ]
    for payload in junk:
        reply = exchange(srv, payload, timeout=0.4)
        assert reply is None, 'garbage %r answered with %r' % (payload[:24], reply[:24])
        assert srv.alive(), 'parleyd died after %r' % payload[:24]
    assert_binding_answered(srv)


@test
def rfc8489_indication_is_not_answered(srv):
    tid = os.urandom(12)
    assert exchange(srv, message(0x0011, tid), timeout=0.4) is None
    assert_binding_answered(srv)


@test
def rfc8489_unknown_required_attribute_420(srv):
    tid = os.urandom(12)
    req = message(0x0001, tid, attr(0x7FF0, b'\0\0\0\0') + attr(0xC001, b'x'),
                  fingerprint=True)
    data = exchange(srv, req)
    assert data is not None, 'no answer'
    mtype, _, rtid, attrs = parse(data)
    assert mtype == 0x0111 and rtid == tid, 'type %#x' % mtype
    assert error_code(attrs) == 420
    assert find(attrs, UNKNOWN_ATTRIBUTES) == struct.pack('!H', 0x7FF0)
    check_fingerprint(data)


@test
def rfc8489_other_method_400(srv):
    tid = os.urandom(12)
    data = exchange(srv, message(0x0003, tid))   # Allocate: no TURN yet
    assert data is not None, 'no answer'
    mtype, _, rtid, attrs = parse(data)
    assert mtype == 0x0113 and rtid == tid, 'type %#x' % mtype
    assert error_code(attrs) == 400


# ------------------------------------------------------------ TCP

def recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssertionError('connection closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def recv_message(sock):
    head = recv_exact(sock, 20)
    return head + recv_exact(sock, struct.unpack('!H', head[2:4])[0])


@test
def rfc8489_binding_over_tcp(srv):
    with socket.create_connection(('127.0.0.1', srv.ports['stun']), timeout=3) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tid1, req1 = binding_request(fingerprint=True)
        tid2, req2 = binding_request(fingerprint=False)
        # The first request cut inside its header, the second glued to it.
        s.sendall(req1[:7])
        time.sleep(0.1)
        s.sendall(req1[7:] + req2)
        for tid in (tid1, tid2):
            mtype, _, rtid, attrs = parse(recv_message(s))
            assert mtype == 0x0101 and rtid == tid, 'type %#x' % mtype
            assert xor_address(find(attrs, XOR_MAPPED_ADDRESS), tid) == s.getsockname()


@test
def rfc8489_garbage_on_tcp_closes_the_connection(srv):
    with socket.create_connection(('127.0.0.1', srv.ports['stun']), timeout=3) as s:
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        deadline = time.monotonic() + 3
        data = b'x'
        while data and time.monotonic() < deadline:
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b''
        assert data == b'', 'connection still open, got %r' % data
    assert_binding_answered(srv)


if __name__ == '__main__':
    main(threads=2)
