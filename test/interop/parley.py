"""Harness for Parley's interop tests: runs the real parleyd on loopback.

A test file registers functions with @test and ends with main():

    import parley
    from parley import test, main

    @test
    def rfc8489_binding_over_udp(srv):     # srv is a running parley.Server
        port = srv.ports['stun']
        ...

    if __name__ == '__main__':
        main(threads=2)

main() starts one Server for the file (only if some test takes an argument),
runs every test (or only those named on the command line) with a time limit,
prints "PASS name" / "FAIL name: why", restarts the server if a test killed
it, and finally fails the run if the server did not exit 0 or its log shows
a sanitizer report. The last line is "N passed, N failed"; the exit code is 1
when anything failed.

A test may also run its own servers: Server(start=False, listen=[...],
extra_config=...) writes the config only; srv.start(), srv.stop() (exit
code), srv.kill(), srv.ctl('status') -> (rc, out, err). One-shot runs such
as --check-config: run_parleyd(['-c', path, '--check-config']).

XMPP tests use slixmpp (python3-slixmpp) on one shared asyncio loop:

    srv.register('alice', 'pw')
    a = parley.xmpp_session(srv, 'alice', 'pw')      # connected and bound
    a.send_message(mto=srv.jid('bob'), mbody='hi')
    msg = parley.xmpp_wait(b, 'message')              # b's next message
    parley.xmpp_run(some_coroutine(), timeout=5)

The build directory comes from $PARLEY_BUILD (default: the current
directory): it must hold parleyd and parleyctl. Run with /usr/bin/python3.
Set PARLEY_XMPP_DEBUG=1 to see slixmpp's log.
"""

import asyncio
import atexit
import inspect
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

__all__ = ['test', 'main', 'Server', 'ServerError', 'TestTimeout',
           'run_parleyd', 'write_config', 'free_port', 'build_dir',
           'xmpp_client', 'xmpp_connect', 'xmpp_session', 'xmpp_run', 'xmpp_wait',
           'xmpp_sleep', 'xmpp_disconnect', 'XmppConnectError']

MODULES = ('c2s', 'c2s_tls', 'http', 'sip', 'stun')

# Ports a developer's machine may already serve (ejabberd, prosody, coturn,
# a SIP phone...): never hand them out even if they look free right now.
_WELL_KNOWN = {3478, 3479, 5060, 5061, 5222, 5223, 5269, 5280, 5281, 5349,
               5350, 7777, 8080, 8443}

START_TIMEOUT = 10.0
DEFAULT_TEST_TIMEOUT = 60


class ServerError(Exception):
    """parleyd failed to start, died, or would not stop."""


class TestTimeout(Exception):
    """A test ran past its time limit."""


def build_dir():
    return os.path.abspath(os.environ.get('PARLEY_BUILD') or os.getcwd())


def _binary(name):
    path = os.path.join(build_dir(), name)
    if not os.access(path, os.X_OK):
        raise ServerError('%s not found or not executable (set PARLEY_BUILD '
                          'to the build directory)' % path)
    return path


def _child_env():
    """The environment for parleyd: sanitizer defaults unless the caller
    chose its own. Leaks are the unit suite's job; a leak report at exit
    would turn every clean stop into a failure here."""
    env = dict(os.environ)
    env.setdefault('ASAN_OPTIONS', 'detect_leaks=0')
    env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
    return env


# ---------------------------------------------------------------- ports

_handed_out = set()


def free_port():
    """A port number free for both TCP and UDP on 127.0.0.1, not one of the
    well-known ones and never the same twice in this process (two servers
    started by one test file must not collide)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(('127.0.0.1', 0))
            port = t.getsockname()[1]
            if port < 1024 or port in _WELL_KNOWN or port in _handed_out:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(('127.0.0.1', port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise ServerError('no free TCP+UDP port found')


# --------------------------------------------------------------- config

def _yaml_scalar(value):
    # JSON is valid YAML flow style, and it quotes what needs quoting.
    return json.dumps(value)


def _yaml_block(mapping):
    return ''.join('%s: %s\n' % (k, _yaml_scalar(v)) for k, v in mapping.items())


def write_config(dir, text, name='parley.yml'):
    """Write a config file (text is dedented) into dir; returns its path."""
    path = os.path.join(dir, name)
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text).lstrip('\n'))
    return path


def run_parleyd(args, timeout=15, env=None):
    """Run parleyd once (e.g. ['-c', conf, '--check-config']) and return
    (exit code, stdout, stderr). A parleyd still running after timeout is
    killed and ServerError raised."""
    cmd = [_binary('parleyd')] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout,
                           env=env if env is not None else _child_env())
    except subprocess.TimeoutExpired as e:
        raise ServerError('parleyd %s still running after %ss; stderr: %s'
                          % (' '.join(map(str, args)), timeout,
                             _tail(e.stderr or b''))) from None
    return p.returncode, p.stdout, p.stderr


def _tail(text, lines=30):
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return '\n'.join(text.splitlines()[-lines:])


SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                   'runtime error:')


def sanitizer_report(text):
    """The first sanitizer report line in text, or None."""
    for line in text.splitlines():
        if any(m in line for m in SANITIZER_MARKS):
            return line.strip()
    return None


# --------------------------------------------------------------- server

_servers = []


class Server:
    """One parleyd on loopback with its own temporary data_dir and ports.

    listen: None for every listener (c2s, c2s_tls, http, sip, stun), or a
    list whose items are module names or dicts of listener options
    ({'module': 'c2s', 'max_stanza_size': 4096}); a port is chosen for each
    item that has none. srv.ports maps a module name to its (first) port.
    extra_config: YAML text, or a dict of top-level keys, added to the file.
    """

    def __init__(self, threads=2, hosts=('localhost',), extra_config=None,
                 listen=None, start=True, loglevel='debug',
                 start_timeout=START_TIMEOUT):
        self.threads = threads
        self.hosts = tuple(hosts)
        self.host = self.hosts[0]
        self.start_timeout = start_timeout
        self.proc = None
        self.returncode = None
        self.stopped = False      # True once stop()/kill() was asked for
        self.removed = False
        self.data_dir = tempfile.mkdtemp(prefix='parley-')
        self.sock = os.path.join(self.data_dir, 'parley.sock')
        self.log_path = os.path.join(self.data_dir, 'parleyd.log')
        self.listeners = self._listeners(listen)
        self.ports = {}
        for item in self.listeners:
            self.ports.setdefault(item['module'], item['port'])
        self.conf_path = write_config(
            self.data_dir, self._config_text(extra_config, loglevel))
        self._logf = None
        _servers.append(self)
        if start:
            self.start()

    @staticmethod
    def _listeners(listen):
        items = []
        for item in (MODULES if listen is None else listen):
            entry = {'module': item} if isinstance(item, str) else dict(item)
            entry.setdefault('ip', '127.0.0.1')
            if 'port' not in entry:
                entry['port'] = free_port()
            items.append(entry)
        return items

    def _config_text(self, extra, loglevel):
        lines = ['# written by the interop harness', 'hosts:']
        lines += ['  - %s' % _yaml_scalar(h) for h in self.hosts]
        lines += ['threads: %s' % self.threads,
                  'data_dir: %s' % _yaml_scalar(self.data_dir),
                  'ctl_socket: %s' % _yaml_scalar(self.sock),
                  'loglevel: %s' % loglevel,
                  'listen:']
        for entry in self.listeners:
            first = True
            for k in ('port', 'ip', 'module'):
                lines.append('%s%s: %s' % ('  - ' if first else '    ', k,
                                           _yaml_scalar(entry[k])))
                first = False
            for k, v in entry.items():
                if k not in ('port', 'ip', 'module'):
                    lines.append('    %s: %s' % (k, _yaml_scalar(v)))
        text = '\n'.join(lines) + '\n'
        if isinstance(extra, dict):
            text += _yaml_block(extra)
        elif extra:
            text += textwrap.dedent(extra).strip('\n') + '\n'
        return text

    # -- life cycle

    def start(self, timeout=None):
        """Start parleyd and wait until `parleyctl status` answers."""
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self):
        """Start parleyd without waiting for it (see wait_ready)."""
        if self.alive():
            raise ServerError('parleyd already running (pid %d)' % self.pid)
        parleyd = _binary('parleyd')
        _binary('parleyctl')
        self.returncode = None
        self.stopped = False
        self._logf = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [parleyd, '-c', self.conf_path], stdin=subprocess.DEVNULL,
            stdout=self._logf, stderr=self._logf, env=_child_env(),
            start_new_session=True)
        return self

    def wait_ready(self, timeout=None, interval=0.1):
        """Poll `parleyctl status` until it exits 0. If parleyd dies or time
        runs out (parleyd is then killed), ServerError with the log tail."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise ServerError('parleyd exited with %s during startup:\n%s'
                                  % (self.returncode, self.log_tail()))
            if self.ctl('status', timeout=5)[0] == 0:
                return self
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        self._kill()
        raise ServerError('parleyctl status did not answer within %ss:\n%s'
                          % (timeout, self.log_tail()))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        if self.proc is None:
            return False
        rc = self.proc.poll()
        if rc is not None:
            self._reaped(rc)
            return False
        return True

    def _reaped(self, rc):
        self.returncode = rc
        if self._logf:
            self._logf.close()
            self._logf = None

    def signal(self, sig):
        """Send sig to this server's own process (never to anything else)."""
        if self.alive():
            if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL,
                       signal.SIGQUIT, signal.SIGABRT):
                self.stopped = True
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit code. After timeout: SIGKILL and
        ServerError."""
        if self.proc is None:
            return None
        if not self.alive():
            return self.returncode
        self.stopped = True
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise ServerError('parleyd did not stop within %ss of SIGTERM:\n%s'
                              % (timeout, self.log_tail())) from None
        self._reaped(rc)
        return rc

    def kill(self):
        """SIGKILL (as after a crash); returns the exit code (-9)."""
        return self._kill()

    def _kill(self):
        if self.proc is None:
            return None
        self.stopped = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(10)
        self._reaped(rc)
        return rc

    def restart(self, timeout=10):
        rc = self.stop(timeout)
        self.start()
        return rc

    def cleanup(self):
        """Stop if needed and remove the data_dir."""
        if self.alive():
            self._kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.removed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            rc = self.stop()
        except ServerError:
            if exc_type is None:
                raise
            return False
        if exc_type is None and rc in (0, None) and not self.sanitizer_report():
            self.cleanup()
        return False

    # -- inspection

    def log(self):
        """parleyd's stderr (and stdout) so far."""
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_tail(self, lines=30):
        return _tail(self.log(), lines)

    def sanitizer_report(self):
        return sanitizer_report(self.log())

    def wait_log(self, text, timeout=10):
        """Wait until text appears in the log; returns True if it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return text in self.log()

    def ctl(self, *args, check=False, timeout=15):
        """Run parleyctl -s SOCK ARGS...; returns (rc, stdout, stderr)."""
        cmd = [_binary('parleyctl'), '-s', self.sock] + [str(a) for a in args]
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ServerError('parleyctl %s hung for %ss'
                              % (' '.join(map(str, args)), timeout)) from None
        if check and p.returncode != 0:
            raise AssertionError('parleyctl %s: exit %d: %s'
                                 % (' '.join(map(str, args)), p.returncode,
                                    p.stderr.strip()))
        return p.returncode, p.stdout, p.stderr

    def register(self, user, password, host=None):
        rc, out, err = self.ctl('register', user, host or self.host, password)
        assert rc == 0, 'register %s@%s: exit %d: %s' % (
            user, host or self.host, rc, err.strip())
        return out

    def jid(self, user, resource=None):
        j = '%s@%s' % (user, self.host)
        return j + '/' + resource if resource else j

    def cert_path(self, host=None):
        return os.path.join(self.data_dir, 'certs', '%s.pem' % (host or self.host))

    def __repr__(self):
        return '<parley.Server pid=%s dir=%s>' % (self.pid, self.data_dir)


def _kill_leftovers():
    # A harness that dies must not leave daemons behind on the machine.
    for s in _servers:
        if s.proc is not None and s.proc.poll() is None:
            try:
                os.kill(s.proc.pid, signal.SIGKILL)
                s.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_leftovers)


# ---------------------------------------------------------------- tests

_tests = []


def test(fn=None, *, timeout=DEFAULT_TEST_TIMEOUT):
    """Register a test: @test or @test(timeout=SECONDS). A test taking one
    argument gets the file's running Server; one taking none gets nothing."""
    def register(f):
        wants = len(inspect.signature(f).parameters) > 0
        _tests.append((f.__name__, f, timeout, wants))
        return f
    if fn is not None:
        return register(fn)
    return register


_current_limit = 0


def _on_alarm(signum, frame):
    raise TestTimeout('timed out after %ss' % _current_limit)


def _reason(exc):
    """One line for the FAIL line, then where it happened (the last frames
    of the test, not the harness) and the rest of a multi-line message."""
    msg = str(exc)
    lines = msg.splitlines()
    first = '%s: %s' % (type(exc).__name__, lines[0]) if lines else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.name not in ('main', '_on_alarm')]
    # The test's own frames say most; the innermost frame (in the harness,
    # asyncio, slixmpp...) says what it was doing when it failed.
    here = os.path.abspath(__file__)
    stdlib = os.path.dirname(os.__file__)

    def is_test_code(f):
        path = os.path.abspath(f.filename)
        return not (path == here or path.startswith(stdlib)
                    or '-packages' + os.sep in path)
    own = [f for f in frames if is_test_code(f)]
    shown = own[-3:]
    if frames and (not shown or frames[-1] is not shown[-1]):
        shown.append(frames[-1])
    where = ['at %s:%d in %s: %s' % (os.path.basename(f.filename), f.lineno,
                                     f.name, (f.line or '').strip())
             for f in shown]
    return first, where + ['  ' + l for l in lines[1:][-25:]]


def _say(text):
    print(text, flush=True)


def main(**server_kwargs):
    """Run the registered tests (or those named in sys.argv) and exit."""
    global _current_limit
    names = [a for a in sys.argv[1:] if not a.startswith('-')]
    known = {t[0] for t in _tests}
    unknown = [n for n in names if n not in known]
    if unknown:
        _say('unknown test(s): %s; known: %s'
             % (', '.join(unknown), ', '.join(sorted(known))))
        sys.exit(2)
    selected = [t for t in _tests if not names or t[0] in names]

    passed = failed = 0
    srv = None
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    for name, fn, limit, wants in selected:
        try:
            if wants and (srv is None or not srv.alive()):
                srv = Server(**server_kwargs)
            _current_limit = limit
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                fn(srv) if wants else fn()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            _close_clients()
            if wants and not srv.stopped and not srv.alive():
                raise ServerError('parleyd exited with %s during the test:\n%s'
                                  % (srv.returncode, srv.log_tail()))
            passed += 1
            _say('PASS %s' % name)
        except BaseException as e:       # noqa: B902 -- report and go on
            signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(e, KeyboardInterrupt):
                raise
            _close_clients()
            failed += 1
            first, more = _reason(e)
            _say('FAIL %s: %s' % (name, first))
            for line in more:
                _say('    ' + line)
            if srv is not None and srv.proc is not None and not srv.alive():
                _say('    parleyd (pid %s) exited with %s; log tail:'
                     % (srv.pid, srv.returncode))
                for line in srv.log_tail(25).splitlines():
                    _say('      | ' + line)
                srv = None               # the next test gets a fresh one
    signal.signal(signal.SIGALRM, old_handler)

    # The servers (the file's, and any a test made itself) must stop
    # cleanly and without sanitizer reports.
    for s in list(_servers):
        label = 'parleyd %s' % (s.data_dir)
        if s.alive():
            try:
                rc = s.stop()
            except ServerError as e:
                failed += 1
                _say('FAIL shutdown: %s: %s' % (label, str(e).splitlines()[0]))
                continue
            if rc != 0:
                failed += 1
                _say('FAIL shutdown: %s exited with %s after SIGTERM; log tail:'
                     % (label, rc))
                for line in s.log_tail(15).splitlines():
                    _say('      | ' + line)
        report = s.sanitizer_report()
        if report:
            failed += 1
            _say('FAIL sanitizers: %s: %s' % (label, report))
    for s in list(_servers):
        if s.removed:
            continue
        if failed == 0:
            s.cleanup()
        elif s.proc is not None:
            _say('kept %s (log: %s)' % (s.data_dir, s.log_path))
        else:
            shutil.rmtree(s.data_dir, ignore_errors=True)

    _say('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


# ----------------------------------------------------------------- xmpp
#
# All clients share one asyncio loop so that several of them can talk to
# each other inside one test; tests run on the main thread, so the loop is
# simply the thread's current loop.

_loop = None
_clients = []


class XmppConnectError(Exception):
    """Connecting or logging in failed; .kind names the slixmpp event
    (failed_all_auth, connection_failed, disconnected, timeout...)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def xmpp_loop():
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def xmpp_client(jid, password, port, host='127.0.0.1', tls='starttls',
                plugins=('xep_0030', 'xep_0199'), cafile=None, **kw):
    """A slixmpp.ClientXMPP for jid, not yet connected; connect it with
    xmpp_connect(). tls: 'starttls' (required, the default), 'auto' (if the
    server offers it), 'none', or 'direct' (TLS from the first byte, for
    the c2s_tls port). The server's self-signed certificate is trusted
    without verification unless cafile (e.g. srv.cert_path()) is given.
    Other keyword arguments go to ClientXMPP (e.g. sasl_mech='PLAIN')."""
    if os.environ.get('PARLEY_XMPP_DEBUG'):
        logging.basicConfig(level=logging.DEBUG)
    else:
        # slixmpp logs what the tests assert on anyway (auth failures) and
        # warnings that are not ours (slow stringprep).
        logging.getLogger('slixmpp').setLevel(logging.CRITICAL)
    import slixmpp
    if tls not in ('starttls', 'auto', 'none', 'direct'):
        raise ValueError('tls must be starttls, auto, none or direct')
    loop = xmpp_loop()
    c = slixmpp.ClientXMPP(jid, password, **kw)
    c.loop = loop
    ctx = ssl.create_default_context()
    if cafile:
        ctx.load_verify_locations(cafile=cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    c.ssl_context = ctx
    # SNI and the stream's 'to' are the domain even though we dial an IP.
    c.default_domain = slixmpp.JID(jid).domain
    c.whitespace_keepalive = False
    for p in plugins:
        c.register_plugin(p)
    c.parley_address = (host, int(port))
    c.parley_tls = tls

    # Dial exactly host:port: slixmpp would otherwise resolve the domain
    # (localhost may be ::1 first) because default_domain is set.
    async def fixed_address(domain, port=None):
        return [(c.default_domain, c.parley_address[0], c.parley_address[1])]
    c.get_dns_records = fixed_address
    _clients.append(c)
    return c


def xmpp_session(srv, user, password, resource='test', port=None,
                 timeout=10, **kw):
    """A client for user@srv.host/resource, connected and bound (the
    account must exist: srv.register). port defaults to srv's c2s port,
    or c2s_tls with tls='direct'. Other arguments as for xmpp_client."""
    if port is None:
        port = srv.ports['c2s_tls' if kw.get('tls') == 'direct' else 'c2s']
    c = xmpp_client(srv.jid(user, resource), password, port, **kw)
    return xmpp_connect(c, timeout)


def xmpp_run(aw, timeout=10):
    """Run a coroutine (or future) on the clients' loop; TimeoutError after
    timeout seconds. Returns its result."""
    loop = xmpp_loop()
    return loop.run_until_complete(asyncio.wait_for(aw, timeout))


def xmpp_wait(client, event, timeout=10):
    """Wait for the client's next slixmpp event; returns its data."""
    return xmpp_run(client.wait_until(event, timeout), timeout + 1)


def xmpp_sleep(seconds):
    """Let the loop run (deliver stanzas) for a while."""
    xmpp_run(asyncio.sleep(seconds), seconds + 1)


def xmpp_connect(client, timeout=10):
    """Connect, negotiate TLS as configured, authenticate and bind; returns
    when session_start fired. Raises XmppConnectError otherwise."""
    loop = client.loop
    done = loop.create_future()
    events = ('session_start', 'failed_all_auth', 'no_auth',
              'connection_failed', 'disconnected', 'stream_error',
              'ssl_invalid_chain')

    def handler(kind):
        def on(data=None):
            if not done.done():
                done.set_result((kind, data))
        return on

    failures = []

    def on_failed_auth(stanza=None):
        # slixmpp goes on to the next mechanism: remember why this one failed.
        try:
            failures.append('%s %s' % (client['feature_mechanisms'].mech.name,
                                       stanza['condition']))
        except Exception:
            failures.append(str(stanza))

    handlers = [(ev, handler(ev)) for ev in events]
    handlers.append(('failed_auth', on_failed_auth))
    for ev, h in handlers:
        client.add_event_handler(ev, h)
    tls = client.parley_tls
    client.connect(client.parley_address,
                   use_ssl=(tls == 'direct'),
                   force_starttls=(tls == 'starttls'),
                   disable_starttls=(tls in ('none', 'direct')))
    try:
        kind, data = xmpp_run(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        kind, data = 'timeout', 'no session within %ss' % timeout
    finally:
        for ev, h in handlers:
            client.del_event_handler(ev, h)
    if kind == 'session_start':
        return client
    # The server may have closed the stream already; asyncio's TLS
    # transport then has nothing left to abort and says so with an
    # AttributeError. The failure to report is the login's.
    for cleanup in (client.cancel_connection_attempt, client.abort):
        try:
            cleanup()
        except Exception:
            pass
    if failures:
        data = 'SASL failure: %s' % ', '.join(failures)
    raise XmppConnectError(kind, '%s: %s: %s' % (client.boundjid, kind, data))


def xmpp_disconnect(client, timeout=5):
    """Close the stream politely (waits for the server's </stream>)."""
    if client.transport is None:
        return
    try:
        xmpp_run(client.disconnect(wait=min(2.0, timeout)), timeout)
    except asyncio.TimeoutError:
        client.abort()


def _close_clients():
    # Left-over connections would leak into the next test's expectations.
    while _clients:
        c = _clients.pop()
        try:
            c.cancel_connection_attempt()
            if c.transport is not None:
                c.abort()
        except Exception:
            pass
    if _loop is None or _loop.is_closed():
        return
    # Cancel what the clients left running (their send-filter tasks) so the
    # loop is empty for the next test and nothing is reported at exit.
    pending = [t for t in asyncio.all_tasks(_loop) if not t.done()]
    for t in pending:
        t.cancel()
    try:
        _loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    except Exception:
        pass
