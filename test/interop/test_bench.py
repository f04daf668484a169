#!/usr/bin/python3
"""parley-bench against a real parleyd: the load generator logs in, chats
and reports what happened, so the numbers in docs/benchmarks.md come from a
tool that is itself tested. Small and bounded (well under 30 s): this is a
smoke test of the tool, not a benchmark."""

import os
import subprocess

import parley
from parley import test, main

USERS = 50
PASSWORD = 'bench-pw'

PLAIN_C2S = {'module': 'c2s', 'starttls_required': False,
             'allow_unencrypted_plain': True}


def bench(*args, timeout=25):
    """Run parley-bench; returns (exit code, RESULT fields, stderr)."""
    exe = os.path.join(parley.build_dir(), 'parley-bench')
    assert os.access(exe, os.X_OK), '%s not built' % exe
    p = subprocess.run([exe] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    assert len(lines) == 1, 'no RESULT line (exit %d): %s %s' % (
        p.returncode, p.stdout[-500:], p.stderr[-1500:])
    fields = dict(kv.split('=', 1) for kv in lines[0].split()[1:])
    return p.returncode, fields, p.stderr


_registered = set()


def ensure_users(srv, n):
    """Create user1..userN once per server through the control socket."""
    if (srv.sock, n) in _registered:
        return
    rc, r, err = bench('register', '--ctl', srv.sock, '--users', n,
                       '--password', PASSWORD, '--concurrency', 8)
    assert rc == 0, 'register: exit %d: %s' % (rc, err[-800:])
    assert int(r['registered']) + int(r['existed']) == n, r
    assert r['failed'] == '0', r
    _registered.add((srv.sock, n))


def common(srv):
    return ['--port', srv.ports['c2s'], '--domain', srv.host,
            '--password', PASSWORD, '--timeout', 20]


@test(timeout=40)
def bench_register_creates_accounts_and_counts_existing(srv):
    ensure_users(srv, USERS)
    # A second pass finds every account there already: nothing fails.
    rc, r, err = bench('register', '--ctl', srv.sock, '--users', 5,
                       '--password', PASSWORD, '--quiet')
    assert rc == 0, err
    assert r['existed'] == '5' and r['registered'] == '0', r
    rc, out, _ = srv.ctl('registered_users', srv.host)
    assert rc == 0
    names = set(out.split())
    assert {'user1', 'user%d' % USERS} <= names, sorted(names)[:5]


@test(timeout=40)
def rfc6120_chat_closed_loop_delivers_every_message(srv):
    ensure_users(srv, USERS)
    rc, r, err = bench('chat', *common(srv), '--users', USERS, '--inflight', 2,
                       '--warmup', 0.5, '--duration', 2, '--drain', 3)
    assert r['sessions'] == str(USERS) and r['logged_in'] == str(USERS), r
    assert r['login_failed'] == '0' and r['dropped'] == '0', r
    sent, got = int(r['window_sent']), int(r['window_delivered'])
    assert sent > 1000, 'only %d messages sent in 2 s: %s' % (sent, r)
    assert r['lost'] == '0', r
    assert r['seq_errors'] == '0' and r['bad_messages'] == '0', r
    assert r['stanza_errors'] == '0' and r['stream_errors'] == '0', r
    assert int(r['delivered']) == int(r['sent']), r
    assert float(r['msgs_per_s']) > 0 and got > 0, r
    assert 0 < float(r['p50_ms']) <= float(r['p99_ms']) <= float(r['max_ms']), r
    assert rc == 0, 'exit %d: %s' % (rc, err[-800:])
    # Progress lines came while it ran.
    assert 'measure sessions=%d' % USERS in err, err[-800:]


@test(timeout=40)
def rfc6120_chat_open_loop_sends_the_offered_rate(srv):
    ensure_users(srv, USERS)
    rc, r, err = bench('chat', *common(srv), '--users', USERS, '--rate', 1000,
                       '--warmup', 0.5, '--duration', 2, '--drain', 3)
    assert rc == 0, 'exit %d: %s %s' % (rc, r, err[-800:])
    assert r['loop'] == 'open', r
    # 1000/s for 2 s is 2000 messages, give or take the tick at each edge.
    sent = int(r['window_sent'])
    assert 1990 <= sent <= 2010, r
    assert int(r['window_delivered']) >= sent - 20, r
    assert r['lost'] == '0', r
    # A loopback server far from saturation answers in milliseconds.
    assert float(r['p50_ms']) < 50, r


@test(timeout=40)
def bench_idle_holds_sessions_and_reads_server_rss(srv):
    ensure_users(srv, USERS)
    rc, r, err = bench('idle', *common(srv), '--users', USERS, '--duration', 1,
                       '--server-pid', srv.pid, '--src-addrs', 3)
    assert rc == 0, 'exit %d: %s' % (rc, err[-800:])
    assert r['sessions'] == str(USERS) and r['login_failed'] == '0', r
    assert int(r['rss_before_kb']) > 0 and int(r['rss_after_kb']) > 0, r
    assert 'rss_per_session_kib' in r, r
    assert float(r['login_rate']) > 0, r


@test(timeout=40)
def rfc6120_6_5_wrong_password_is_reported_as_failed_logins(srv):
    ensure_users(srv, USERS)
    args = common(srv)
    args[args.index('--password') + 1] = 'not-the-password'
    rc, r, err = bench('idle', *args, '--users', 4, '--duration', 0.2)
    assert rc != 0, r
    assert r['sessions'] == '0' and r['login_failed'] == '4', r
    assert 'not-authorized' in err, err[-800:]


@test(timeout=40)
def xep0368_direct_tls_sessions(srv):
    ensure_users(srv, USERS)
    args = common(srv)
    args[args.index('--port') + 1] = srv.ports['c2s_tls']
    rc, r, err = bench('chat', *args, '--tls', 'direct', '--users', 10,
                       '--warmup', 0.2, '--duration', 1, '--inflight', 1)
    assert rc == 0, 'exit %d: %s' % (rc, err[-800:])
    assert r['tls'] == 'direct' and r['sessions'] == '10', r
    assert int(r['window_delivered']) > 0 and r['lost'] == '0', r


if __name__ == '__main__':
    main(threads=2, listen=[PLAIN_C2S, 'c2s_tls'])
