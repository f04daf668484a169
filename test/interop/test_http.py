"""The shared HTTP/WebSocket listener against real clients: curl for HTTP,
python3-websocket (websocket-client) for RFC 6455, on a two-shard parleyd.

Run: PARLEY_BUILD=build/asan /usr/bin/python3 test/interop/test_http.py
"""

import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import parley
from parley import test, main

try:
    import websocket                             # Debian: python3-websocket
except ImportError:                              # pragma: no cover
    websocket = None


def curl(srv, path, *args):
    """(status, body) of one request with the real curl."""
    url = 'http://127.0.0.1:%d%s' % (srv.ports['http'], path)
    out = subprocess.run(['curl', '-sS', '--max-time', '10', '-o', '-',
                          '-w', '\n%{http_code}', *args, url],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, 'curl failed: %s' % out.stderr.strip()
    body, _, code = out.stdout.rpartition('\n')
    return int(code), body


def ws_url(srv, path='/echo'):
    return 'ws://127.0.0.1:%d%s' % (srv.ports['http'], path)


def need_websocket():
    assert websocket is not None, \
        'python3-websocket is missing (tools/install-deps --test)'


@test
def status_page_is_html_with_parley(srv):
    code, body = curl(srv, '/')
    assert code == 200, 'GET / answered %d' % code
    assert '<title>Parley</title>' in body, body[:300]
    for field in ('Version', 'Uptime', 'Shards', 'Hosts'):
        assert '<th>%s</th>' % field in body, '%s missing: %s' % (field, body[:600])
    assert '<th>Shards</th><td>2</td>' in body, body[:600]
    assert 'localhost' in body, body[:600]


@test
def rfc9110_unknown_path_is_404(srv):
    code, _ = curl(srv, '/nope')
    assert code == 404, 'GET /nope answered %d' % code


@test
def rfc9110_wrong_method_is_405(srv):
    out = subprocess.run(['curl', '-sS', '--max-time', '10', '-o', '/dev/null',
                          '-D', '-', '-X', 'DELETE',
                          'http://127.0.0.1:%d/' % srv.ports['http']],
                         capture_output=True, text=True, timeout=20)
    head = out.stdout.lower()
    assert head.startswith('http/1.1 405'), out.stdout
    assert 'allow: get, head' in head, out.stdout


@test
def rfc6455_echo_text_and_binary(srv):
    need_websocket()
    ws = websocket.create_connection(ws_url(srv), timeout=10)
    try:
        ws.send('hello, parley \u00e9\u2603')
        op, data = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_TEXT, op
        assert data.decode('utf-8') == 'hello, parley \u00e9\u2603', data
        blob = bytes(range(256)) * 300           # 76800 bytes, several reads
        ws.send_binary(blob)
        op, data = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_BINARY, op
        assert data == blob, 'binary echo differs (%d bytes back)' % len(data)
    finally:
        ws.close()


@test
def rfc6455_subprotocol_echo(srv):
    need_websocket()
    ws = websocket.create_connection(ws_url(srv), timeout=10, subprotocols=['echo'])
    try:
        assert ws.getsubprotocol() == 'echo', ws.getsubprotocol()
        ws.send('with a subprotocol')
        assert ws.recv() == 'with a subprotocol'
    finally:
        ws.close()


@test
def rfc6455_upgrade_to_unknown_path_refused(srv):
    need_websocket()
    try:
        ws = websocket.create_connection(ws_url(srv, '/nope'), timeout=10)
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code == 404, e.status_code
        return
    ws.close()
    raise AssertionError('a WebSocket opened on /nope')


def one_echo(srv, i):
    ws = websocket.create_connection(ws_url(srv), timeout=15)
    try:
        for n in range(3):
            msg = 'client %d message %d' % (i, n)
            ws.send(msg)
            got = ws.recv()
            if got != msg:
                return 'client %d: sent %r, got %r' % (i, msg, got)
    finally:
        ws.close()
    return None


@test(timeout=90)
def fifty_parallel_websockets_all_echo_on_both_shards(srv):
    need_websocket()
    before = len(srv.log())
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(one_echo, srv, i) for i in range(50)]
        errors = []
        for f in futures:
            try:
                err = f.result(timeout=60)
            except Exception as e:               # noqa: BLE001
                err = '%s: %s' % (type(e).__name__, e)
            if err:
                errors.append(err)
    assert not errors, '%d of 50 failed: %s' % (len(errors), errors[:3])
    # SO_REUSEPORT spreads the connections: both shards must have served.
    shards = set(re.findall(r'http: shard (\d+): .* opened WebSocket', srv.log()[before:]))
    assert shards == {'0', '1'}, 'WebSockets opened on shards %s only' % sorted(shards)


@test
def garbage_does_not_hurt_the_server(srv):
    junk = [b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + os.urandom(200),
            b'GET / HTTP/9.9\r\n\x00\x01\x02\r\n\r\n',
            b'\xff' * 5000,
            b'GET /' + b'a' * 20000 + b' HTTP/1.1\r\n\r\n',
            b'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
            b'\r\n\r\n\r\n']
    for blob in junk:
        with socket.create_connection(('127.0.0.1', srv.ports['http']), timeout=10) as s:
            try:
                s.sendall(blob)
                s.settimeout(5)
                while s.recv(65536):
                    pass
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                pass
    assert srv.alive(), 'parleyd died:\n' + srv.log_tail()
    code, body = curl(srv, '/')
    assert code == 200 and 'Parley' in body, 'GET / after garbage: %d' % code


@test
def half_open_connections_do_not_block_others(srv):
    # Connections that send half a request and stall must not hold up others.
    stalled = []
    try:
        for _ in range(20):
            s = socket.create_connection(('127.0.0.1', srv.ports['http']), timeout=10)
            s.sendall(b'GET / HTTP/1.1\r\nHost: local')
            stalled.append(s)
        t0 = time.monotonic()
        code, _ = curl(srv, '/')
        assert code == 200, code
        assert time.monotonic() - t0 < 5, 'GET / took %.1f s' % (time.monotonic() - t0)
    finally:
        for s in stalled:
            s.close()


@test(timeout=60)
def rfc6455_shutdown_closes_websockets_with_1001(srv):
    need_websocket()
    ws = websocket.create_connection(ws_url(srv), timeout=10)
    try:
        ws.send('still here')
        assert ws.recv() == 'still here'
        srv.signal(signal.SIGTERM)
        frame = ws.recv_frame()
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE, frame.opcode
        code = frame.data[0] << 8 | frame.data[1]
        assert code == 1001, 'close code %d' % code
        ws.send_close()                          # answer, as a browser does
    finally:
        ws.shutdown()
    rc = srv.stop()
    assert rc == 0, 'parleyd exited %s:\n%s' % (rc, srv.log_tail())


EVLIB = '/usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so'


@test
def missing_libuv_evlib_fails_startup_with_hint():
    # Hide the plugin from this one parleyd only: a private mount namespace
    # (root, as on every Parley machine) with /dev/null bound over it.
    assert os.path.exists(EVLIB), EVLIB + ' is not installed at all'
    with tempfile.TemporaryDirectory(prefix='parley-evlib-') as d:
        conf = parley.write_config(d, """
            hosts: [localhost]
            threads: 2
            data_dir: %s
            listen:
              - {port: %d, ip: "127.0.0.1", module: http}
            """ % (d, parley.free_port()))
        parleyd = os.path.join(parley.build_dir(), 'parleyd')
        env = dict(os.environ, ASAN_OPTIONS='detect_leaks=0')
        p = subprocess.run(['unshare', '-m', 'sh', '-c',
                            'mount --bind /dev/null "$0" && exec "$1" -c "$2"',
                            EVLIB, parleyd, conf],
                           capture_output=True, text=True, timeout=30, env=env)
    assert 'mount' not in p.stderr.split('\n')[0], 'cannot hide the plugin: ' + p.stderr
    hint = ("http: libwebsockets' libuv event library is missing: "
            "apt-get install libwebsockets-evlib-uv")
    assert hint in p.stderr, p.stderr[-2000:]
    assert p.stderr.count(hint) == 1, 'hint repeated:\n' + p.stderr[-2000:]
    assert p.returncode == 2, 'exit %d:\n%s' % (p.returncode, p.stderr[-2000:])


if __name__ == '__main__':
    main(threads=2)
