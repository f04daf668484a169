"""parleyctl against a running parleyd: account commands, their exit codes
(0 ok, 1 command error, 2 usage, 3 server not running) and messages,
status, help, stop, and the data_dir lock.

The stored credentials are checked straight in parley.db: the SCRAM keys
must be those of the password given (RFC 5802 section 3), so a password
with spaces or a changed password is verified without a client login.
"""

import base64
import hashlib
import hmac
import os
import socket
import sqlite3
import subprocess
import tempfile
import time

import parley
from parley import test, main, Server

LIST_HOST = 'list.test'     # a second host, used only by the listing test


def stored_creds(srv, user, host='localhost'):
    """(salt, iterations, stored_key) of the SCRAM-SHA-256 keys, or None."""
    db = sqlite3.connect('file:%s?mode=ro' % os.path.join(srv.data_dir, 'parley.db'),
                         uri=True, timeout=10)
    try:
        row = db.execute('SELECT sha256_salt, sha256_iterations, sha256_stored_key'
                         ' FROM users WHERE host = ? AND username = ?',
                         (host, user)).fetchone()
    finally:
        db.close()
    return row


def stored_key_for(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
    return hashlib.sha256(client_key).digest()


def assert_password(srv, user, password, host='localhost'):
    row = stored_creds(srv, user, host)
    assert row is not None, 'no row for %s@%s in parley.db' % (user, host)
    salt, iterations, key = row
    assert len(salt) == 16 and iterations >= 4096, (len(salt), iterations)
    assert stored_key_for(password, salt, iterations) == key, \
        'stored key of %s@%s is not that of %r' % (user, host, password)


def ctl_env(srv, *args, env_sock=None):
    """parleyctl without -s, the socket given by PARLEY_CTL_SOCKET."""
    env = dict(os.environ)
    if env_sock is not None:
        env['PARLEY_CTL_SOCKET'] = env_sock
    p = subprocess.run([os.path.join(parley.build_dir(), 'parleyctl')] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=15, env=env)
    return p.returncode, p.stdout, p.stderr


@test
def register_creates_account_exit_0(srv):
    rc, out, err = srv.ctl('register', 'alice', 'localhost', 's3cret')
    assert rc == 0, 'exit %d: %s' % (rc, err)
    assert 'alice@localhost' in out, out
    assert err == '', err
    assert_password(srv, 'alice', 's3cret')


@test
def register_duplicate_exit_1(srv):
    srv.register('dup', 'first')
    rc, out, err = srv.ctl('register', 'dup', 'localhost', 'second')
    assert rc == 1, 'exit %d, want 1: %s' % (rc, err)
    assert 'dup@localhost already exists' in err, err
    assert out == '', out
    # the first password still stands
    assert_password(srv, 'dup', 'first')


@test
def register_password_with_spaces(srv):
    rc, out, err = srv.ctl('register', 'spacey', 'localhost', 'correct horse  battery ')
    assert rc == 0, 'exit %d: %s' % (rc, err)
    assert_password(srv, 'spacey', 'correct horse  battery ')


@test
def registered_users_sorted(srv):
    for name in ('zed', 'bob', 'amy', 'mike'):
        srv.register(name, 'pw', host=LIST_HOST)
    rc, out, err = srv.ctl('registered_users', LIST_HOST)
    assert rc == 0, 'exit %d: %s' % (rc, err)
    assert out.splitlines() == ['amy', 'bob', 'mike', 'zed'], repr(out)
    # accounts are per host
    rc, out, err = srv.ctl('registered_users', 'localhost')
    assert rc == 0 and 'zed' not in out.split(), (rc, out, err)


@test
def change_password_replaces_keys(srv):
    srv.register('carol', 'old password')
    before = stored_creds(srv, 'carol')
    rc, out, err = srv.ctl('change_password', 'carol', 'localhost', 'new password')
    assert rc == 0, 'exit %d: %s' % (rc, err)
    assert 'carol@localhost' in out, out
    assert_password(srv, 'carol', 'new password')
    assert stored_creds(srv, 'carol')[0] != before[0], 'salt not renewed'


@test
def change_password_of_missing_user_exit_1(srv):
    rc, out, err = srv.ctl('change_password', 'ghost', 'localhost', 'pw')
    assert rc == 1, 'exit %d, want 1' % rc
    assert 'ghost@localhost does not exist' in err, err


@test
def unregister_removes_account(srv):
    srv.register('dave', 'pw')
    rc, out, err = srv.ctl('unregister', 'dave', 'localhost')
    assert rc == 0, 'exit %d: %s' % (rc, err)
    assert stored_creds(srv, 'dave') is None, 'row still in parley.db'
    rc, out, err = srv.ctl('registered_users', 'localhost')
    assert 'dave' not in out.split(), out


@test
def unregister_missing_user_exit_1_clear_message(srv):
    rc, out, err = srv.ctl('unregister', 'nobody', 'localhost')
    assert rc == 1, 'exit %d, want 1' % rc
    assert err.strip() == 'user nobody@localhost does not exist', repr(err)
    assert out == '', out


@test
def wrong_argument_count_exit_2(srv):
    rc, out, err = srv.ctl('register', 'eve', 'localhost')
    assert rc == 2, 'exit %d, want 2' % rc
    assert 'usage: register USER HOST PASSWORD' in err, err
    rc, out, err = srv.ctl('registered_users')
    assert rc == 2 and 'usage: registered_users HOST' in err, (rc, err)
    rc, out, err = srv.ctl('status', 'extra')
    assert rc == 2, 'status with an argument: exit %d' % rc
    assert stored_creds(srv, 'eve') is None


@test
def bad_arguments_exit_2(srv):
    rc, out, err = srv.ctl('register', 'eve', 'not-served.test', 'pw')
    assert rc == 2, 'unknown host: exit %d, want 2' % rc
    assert "host 'not-served.test' is not served here" in err, err
    # an empty argument cannot travel (the request ends with an empty
    # netstring): parleyctl refuses it itself
    rc, out, err = srv.ctl('register', '', 'localhost', 'pw')
    assert rc == 2 and 'argument 1 is empty' in err, (rc, err)
    rc, out, err = srv.ctl('register', 'eve', 'localhost', '')
    assert rc == 2 and 'argument 3 is empty' in err, (rc, err)
    # requests are bounded (64 KiB): refused with a reason, not a hang
    rc, out, err = srv.ctl('register', 'big', 'localhost', 'x' * 70000)
    assert rc == 2 and 'malformed request' in err, (rc, err[:300])
    assert stored_creds(srv, 'big') is None
    rc, out, err = srv.ctl('no_such_command')
    assert rc == 2 and "unknown command 'no_such_command'" in err, (rc, err)


@test
def no_command_prints_usage_exit_2(srv):
    rc, out, err = srv.ctl()
    assert rc == 2, 'exit %d, want 2' % rc
    assert err.startswith('usage: parleyctl'), err


@test
def status_exit_0(srv):
    rc, out, err = srv.ctl('status')
    assert rc == 0, 'exit %d: %s' % (rc, err)
    assert out.startswith('parleyd '), out
    assert 'running: 2 shards, 2 hosts, uptime ' in out, out


@test
def help_lists_commands(srv):
    rc, out, err = srv.ctl('help')
    assert rc == 0, 'exit %d: %s' % (rc, err)
    lines = out.splitlines()
    for want in ('register USER HOST PASSWORD - ', 'unregister USER HOST - ',
                 'change_password USER HOST PASSWORD - ', 'registered_users HOST - ',
                 'status - ', 'stop - '):
        assert any(l.startswith(want) for l in lines), '%r missing in:\n%s' % (want, out)
    names = [l.split()[0] for l in lines]
    assert names == sorted(names), names


@test
def socket_from_environment(srv):
    rc, out, err = ctl_env(srv, 'status', env_sock=srv.sock)
    assert rc == 0, 'exit %d: %s' % (rc, err)
    # -s beats the environment
    rc, out, err = ctl_env(srv, '-s', srv.sock, 'status', env_sock='/nonexistent/x.sock')
    assert rc == 0, 'exit %d: %s' % (rc, err)


@test
def dead_socket_exit_3():
    with tempfile.TemporaryDirectory(prefix='parley-ctl-') as d:
        missing = os.path.join(d, 'missing.sock')
        rc, out, err = ctl_env(None, '-s', missing, 'status')
        assert rc == 3, 'no socket file: exit %d, want 3' % rc
        assert 'parleyctl: cannot connect to %s: server not running?' % missing in err, err
        # a socket file left by a killed server: nobody listens
        stale = os.path.join(d, 'stale.sock')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        rc, out, err = ctl_env(None, '-s', stale, 'register', 'a', 'localhost', 'b')
        assert rc == 3, 'stale socket: exit %d, want 3' % rc
        assert 'server not running?' in err, err


@test
def stop_makes_server_exit_0():
    with Server() as srv:
        rc, out, err = srv.ctl('stop')
        assert rc == 0, 'exit %d: %s' % (rc, err)
        assert 'stopping' in out, out
        try:
            code = srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError('parleyd still running 15 s after stop:\n%s'
                                 % srv.log_tail())
        srv._reaped(code)
        assert code == 0, 'parleyd exited %d after stop:\n%s' % (code, srv.log_tail())
        assert not os.path.exists(srv.sock), 'control socket left behind'
        rc, out, err = srv.ctl('status')
        assert rc == 3, 'status after stop: exit %d, want 3' % rc


@test
def second_parleyd_on_same_data_dir_refused():
    with Server() as first:
        first.register('keeper', 'pw')
        # everything else differs: ports, control socket, config file
        other = Server(start=False)
        try:
            with open(other.conf_path) as f:
                text = f.read()
            text = text.replace('data_dir: "%s"' % other.data_dir,
                                'data_dir: "%s"' % first.data_dir)
            assert first.data_dir in text, text
            conf = parley.write_config(other.data_dir, text, name='second.yml')
            rc, out, err = parley.run_parleyd(['-c', conf], timeout=20)
        finally:
            other.cleanup()
        assert rc == 2, 'second parleyd: exit %d, want 2; stderr: %s' % (rc, err[-800:])
        lock = os.path.join(first.data_dir, 'parley.lock')
        want = 'data_dir %s is in use by another parleyd (lock %s)' % (first.data_dir, lock)
        assert want in err, 'want %r in: %s' % (want, err[-800:])
        # the first one is untouched and still answers
        rc, out, err = first.ctl('status')
        assert rc == 0, 'first parleyd: status exit %d: %s' % (rc, err)
        rc, out, err = first.ctl('registered_users', 'localhost')
        assert 'keeper' in out.split(), out
        assert first.stop() == 0


if __name__ == '__main__':
    main(threads=2, hosts=('localhost', LIST_HOST))
