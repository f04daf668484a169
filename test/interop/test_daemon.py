"""The daemon's life cycle: start, readiness, stop, crash recovery, the
data_dir lock, ports already in use, and the exit codes of parleyd and
parleyctl (0 ok, 1 config/command error, 2 startup failure / usage of
parleyctl, 3 usage of parleyd / server not running for parleyctl).

Every test runs its own parleyd so that it can kill it.
"""

import os
import re
import signal
import socket
import time

import parley
from parley import test, main, Server

TCP_MODULES = ('c2s', 'c2s_tls', 'http', 'sip', 'stun')
UDP_MODULES = ('sip', 'stun')


def tcp_accepts(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=2):
            return True
    except OSError:
        return False


def udp_bound(port):
    """True if something holds the UDP port (our bind without
    SO_REUSEPORT then fails)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(('127.0.0.1', port))
        return False
    except OSError:
        return True


def serving(srv):
    rc = srv.ctl('status')[0]
    return srv.alive() and rc == 0 and tcp_accepts(srv.ports['c2s'])


@test
def daemon_sigterm_exits_0_and_logs_stop():
    with Server() as srv:
        before = len(srv.log())
        rc = srv.stop()
        assert rc == 0, 'exit %s after SIGTERM; log:\n%s' % (rc, srv.log_tail())
        after = srv.log()[before:]
        assert re.search(r'\bstop', after, re.I), \
            'no "stop..." line logged after SIGTERM:\n%s' % after[-1500:]
        rc, out, err = srv.ctl('status')
        assert rc == 3, 'parleyctl status after stop: exit %d, want 3' % rc
        assert not tcp_accepts(srv.ports['c2s']), 'c2s port still open after exit'


@test
def daemon_sigint_exits_0():
    with Server() as srv:
        srv.signal(signal.SIGINT)
        rc = srv.proc.wait(10)
        assert rc == 0, 'exit %s after SIGINT; log:\n%s' % (rc, srv.log_tail())


@test
def daemon_parleyctl_stop_exits_0():
    with Server() as srv:
        rc, out, err = srv.ctl('stop')
        assert rc == 0, 'parleyctl stop: exit %d: %s' % (rc, err)
        srv.stopped = True
        try:
            code = srv.proc.wait(10)
        except Exception:
            raise AssertionError('parleyd still running 10 s after parleyctl stop')
        assert code == 0, 'exit %s after parleyctl stop; log:\n%s' % (
            code, srv.log_tail())


@test
def daemon_restarts_on_same_data_dir_after_kill9():
    with Server() as srv:
        srv.kill()
        # The stale socket and lock file are still there: they must not
        # block the next start.
        srv.start()
        assert serving(srv), 'restarted parleyd is not serving'
        assert srv.stop() == 0


@test
def daemon_registered_account_survives_kill9():
    with Server() as srv:
        srv.register('survivor', 's3cret-pw')
        srv.kill()
        srv.start()
        rc, out, err = srv.ctl('registered_users', srv.host)
        assert rc == 0, 'registered_users: exit %d: %s' % (rc, err)
        assert 'survivor' in out.split(), out
        assert srv.stop() == 0


@test
def daemon_second_instance_same_config_exits_2_first_keeps_serving():
    with Server() as srv:
        rc, out, err = parley.run_parleyd(['-c', srv.conf_path], timeout=15)
        assert rc == 2, 'second parleyd: exit %d, want 2; stderr: %s' % (rc, err[-800:])
        # The loser must not have removed the winner's socket or ports.
        assert os.path.exists(srv.sock), 'control socket removed by the second parleyd'
        assert serving(srv), 'first parleyd no longer serving'
        assert srv.stop() == 0


@test
def daemon_second_instance_same_data_dir_names_data_dir():
    with Server() as first:
        # Other ports and another control socket: only the data_dir is shared,
        # so the lock is the one thing that can stop the second one.
        other = Server(start=False)
        with open(other.conf_path) as f:
            text = f.read()
        text = text.replace('data_dir: "%s"' % other.data_dir,
                            'data_dir: "%s"' % first.data_dir)
        assert first.data_dir in text
        parley.write_config(other.data_dir, text)
        rc, out, err = parley.run_parleyd(['-c', other.conf_path], timeout=15)
        other.cleanup()
        assert rc == 2, 'second parleyd: exit %d, want 2; stderr: %s' % (rc, err[-800:])
        assert first.data_dir in err, \
            'message does not name the data_dir %s: %s' % (first.data_dir, err[-800:])
        for module in TCP_MODULES:
            assert not tcp_accepts(other.ports[module]), \
                'second parleyd left %s port %d open' % (module, other.ports[module])
        assert serving(first), 'first parleyd no longer serving'
        assert first.stop() == 0


@test
def daemon_status_answers_only_once_listeners_are_bound():
    srv = Server(start=False)
    try:
        srv.spawn()
        deadline = time.monotonic() + 15
        while srv.ctl('status')[0] != 0:
            assert srv.alive(), 'parleyd exited with %s:\n%s' % (
                srv.returncode, srv.log_tail())
            assert time.monotonic() < deadline, 'status never answered'
            time.sleep(0.01)
        # The first successful status: everything must already be bound.
        for module in TCP_MODULES:
            assert tcp_accepts(srv.ports[module]), \
                'status answered before %s TCP port %d accepted' % (
                    module, srv.ports[module])
        for module in UDP_MODULES:
            assert udp_bound(srv.ports[module]), \
                'status answered before %s UDP port %d was bound' % (
                    module, srv.ports[module])
        assert srv.stop() == 0
    finally:
        srv.cleanup()


def assert_port_in_use_fails(module, blocker, port, srv):
    rc, out, err = parley.run_parleyd(['-c', srv.conf_path], timeout=15)
    assert rc == 2, 'parleyd with %s port %d taken: exit %d, want 2; stderr: %s' % (
        module, port, rc, err[-800:])
    assert re.search(r'\b%d\b' % port, err), \
        'message does not name port %d: %s' % (port, err[-800:])
    assert parley.sanitizer_report(err) is None, err


@test
def daemon_tcp_port_in_use_exits_2_naming_port():
    srv = Server(start=False)
    try:
        port = srv.ports['c2s']
        with socket.socket() as blocker:
            blocker.bind(('127.0.0.1', port))
            blocker.listen(1)
            assert_port_in_use_fails('c2s', blocker, port, srv)
        # A failed start leaves nothing behind that blocks the next one.
        srv.start()
        assert serving(srv)
        assert srv.stop() == 0
    finally:
        srv.cleanup()


@test
def daemon_udp_port_in_use_exits_2_naming_port():
    srv = Server(start=False)
    try:
        port = srv.ports['stun']
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
            blocker.bind(('127.0.0.1', port))
            assert_port_in_use_fails('stun', blocker, port, srv)
    finally:
        srv.cleanup()


@test
def daemon_unknown_option_is_usage_error_3():
    rc, out, err = parley.run_parleyd(['--no-such-option'], timeout=10)
    assert rc == 3, 'exit %d, want 3; stderr: %s' % (rc, err[-500:])
    assert err.strip(), 'no usage message on stderr'


@test
def parleyctl_without_server_exits_3():
    srv = Server(start=False)
    try:
        rc, out, err = srv.ctl('status')
        assert rc == 3, 'parleyctl status, no server: exit %d, want 3' % rc
        assert err.strip(), 'no message on stderr'
    finally:
        srv.cleanup()


@test
def parleyctl_usage_errors_exit_2():
    with Server() as srv:
        rc, out, err = srv.ctl()
        assert rc == 2, 'parleyctl without a command: exit %d, want 2' % rc
        rc, out, err = srv.ctl('register', 'only-a-user')
        assert rc == 2, 'parleyctl register USER (missing args): exit %d, want 2' % rc
        assert srv.stop() == 0


if __name__ == '__main__':
    main()
