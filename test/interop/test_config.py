"""Configuration errors: parleyd names FILE:LINE and the key, and exits 1.

Each bad file is tried twice: with --check-config and as a normal start
(which must refuse to run, not start with a half-read configuration).
"""

import os
import re
import shutil
import socket
import tempfile

import parley
from parley import test, main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Conf:
    """A config file in a fresh directory, built line by line so a test
    knows the line number of what it broke."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='parley-cfg-')
        self.lines = []

    def add(self, *lines):
        """Append lines; returns the (1-based) number of the first one."""
        first = len(self.lines) + 1
        self.lines.extend(lines)
        return first

    def valid_base(self, listen=('c2s', 'stun')):
        """A complete valid config; returns {module: (port line, port)}."""
        self.add('hosts:', '  - localhost',
                 'threads: 1',
                 'data_dir: data',
                 'listen:')
        where = {}
        for module in listen:
            port = parley.free_port()
            n = self.add('  - port: %d' % port, '    ip: "127.0.0.1"',
                         '    module: %s' % module)
            where[module] = (n, port)
        return where

    def write(self):
        self.path = parley.write_config(self.dir, '\n'.join(self.lines) + '\n')
        return self.path

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def located(err):
    """The FILE:LINE positions in parleyd's message."""
    return [int(n) for n in re.findall(r'parley\.yml:(\d+)', err)]


def assert_config_error(conf, line, *words):
    """Both --check-config and a normal start exit 1 naming parley.yml:LINE
    (line None: any line) and every word."""
    path = conf.write()
    for args in (['-c', path, '--check-config'], ['-c', path]):
        rc, out, err = parley.run_parleyd(args, timeout=10)
        what = 'parleyd %s' % ' '.join(args[2:]) if len(args) > 2 else 'parleyd (start)'
        assert rc == 1, '%s: exit %d, want 1; stderr: %r' % (what, rc, err[-500:])
        lines = located(err)
        assert lines, '%s: no parley.yml:LINE in stderr: %r' % (what, err[-500:])
        if line is not None:
            assert line in lines, '%s: want line %d, got %s: %r' % (
                what, line, lines, err[-500:])
        for w in words:
            assert w in err, '%s: %r not named in stderr: %r' % (what, w, err[-500:])
        assert parley.sanitizer_report(err) is None, err
    conf.remove()


@test
def config_unknown_top_level_key_names_file_line_and_key():
    c = Conf()
    c.valid_base()
    n = c.add('frobnicate_level: 3')
    c.add('loglevel: info')
    assert_config_error(c, n, 'frobnicate_level')


@test
def config_unknown_key_before_others_is_reported_at_its_line():
    # The error must come from the key's own line, not the end of the file.
    c = Conf()
    n = c.add('colour: blue')
    c.valid_base()
    assert_config_error(c, n, 'colour')


@test
def config_listen_port_zero_rejected():
    c = Conf()
    c.valid_base(listen=('c2s',))
    n = c.add('  - port: 0', '    module: stun')
    assert_config_error(c, n, 'port')


@test
def config_listen_port_70000_rejected():
    c = Conf()
    c.valid_base(listen=('c2s',))
    n = c.add('  - port: 70000', '    module: sip')
    assert_config_error(c, n, 'port')


@test
def config_listen_port_not_a_number_rejected():
    c = Conf()
    c.valid_base(listen=('c2s',))
    n = c.add('  - port: "abc"', '    module: http')
    assert_config_error(c, n, 'port')


@test
def config_listen_unknown_module_rejected():
    c = Conf()
    c.valid_base(listen=('c2s',))
    c.add('  - port: %d' % parley.free_port())
    n = c.add('    module: xmpp_frobnicator')
    assert_config_error(c, n, 'xmpp_frobnicator')


@test
def config_listen_unknown_option_rejected():
    c = Conf()
    c.valid_base(listen=('c2s',))
    c.add('  - port: %d' % parley.free_port(), '    module: stun')
    n = c.add('    max_frobs: 3')
    assert_config_error(c, n, 'max_frobs')


@test
def config_missing_hosts_rejected():
    c = Conf()
    c.add('threads: 1', 'data_dir: data', 'listen:',
          '  - port: %d' % parley.free_port(), '    ip: "127.0.0.1"',
          '    module: c2s')
    assert_config_error(c, None, 'hosts')


@test
def config_bad_loglevel_rejected():
    c = Conf()
    c.valid_base()
    n = c.add('loglevel: chatty')
    assert_config_error(c, n, 'loglevel')


@test
def config_yaml_syntax_error_names_line():
    c = Conf()
    c.valid_base()
    n = c.add('modules: {mod_ping: [unclosed')
    c.add('certfiles: []')
    path = c.write()
    rc, out, err = parley.run_parleyd(['-c', path, '--check-config'], timeout=10)
    assert rc == 1, 'exit %d, want 1: %r' % (rc, err[-500:])
    lines = located(err)
    assert lines, 'no parley.yml:LINE in %r' % err[-500:]
    # libyaml reports where it noticed the problem: this line or the next.
    assert any(n <= line <= n + 2 for line in lines), (n, lines, err[-500:])
    c.remove()


@test
def config_missing_file_is_a_config_error():
    d = tempfile.mkdtemp(prefix='parley-cfg-')
    path = os.path.join(d, 'nope.yml')
    rc, out, err = parley.run_parleyd(['-c', path, '--check-config'], timeout=10)
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 1, 'exit %d, want 1: %r' % (rc, err[-500:])
    assert 'nope.yml' in err, err


def port_free(port):
    try:
        with socket.socket() as s:
            s.bind(('127.0.0.1', port))
        return True
    except OSError:
        return False


@test
def config_valid_check_config_exits_0_quietly_and_binds_nothing():
    c = Conf()
    where = c.valid_base(listen=('c2s', 'c2s_tls', 'http', 'sip', 'stun'))
    c.add('loglevel: debug', 'certfiles: []', 'auth_scram_iterations: 4096')
    path = c.write()
    rc, out, err = parley.run_parleyd(['-c', path, '--check-config'], timeout=10)
    assert rc == 0, 'exit %d: %r' % (rc, err[-800:])
    text = out + err
    assert not re.search(r'error|warning|fatal|runtime error', text, re.I), text
    # Checking is not starting: no socket, every port still free.
    assert not os.path.exists(os.path.join(c.dir, 'data', 'parley.sock'))
    for module, (_, port) in where.items():
        assert port_free(port), '%s port %d bound by --check-config' % (module, port)
    c.remove()


@test
def config_sample_conf_parley_yml_is_valid():
    # The shipped sample must always pass --check-config; run it from a
    # copy so that its relative data_dir does not touch the repository.
    sample = os.path.join(ROOT, 'conf', 'parley.yml')
    d = tempfile.mkdtemp(prefix='parley-cfg-')
    os.mkdir(os.path.join(d, 'conf'))
    path = os.path.join(d, 'conf', 'parley.yml')
    shutil.copy(sample, path)
    rc, out, err = parley.run_parleyd(['-c', path, '--check-config'], timeout=10)
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, 'exit %d: %r' % (rc, err[-800:])
    assert not re.search(r'error|fatal', out + err, re.I), out + err


@test
def config_harness_config_is_valid():
    # Every other interop test relies on the harness's generated file.
    srv = parley.Server(start=False)
    rc, out, err = parley.run_parleyd(['-c', srv.conf_path, '--check-config'],
                                      timeout=10)
    srv.cleanup()
    assert rc == 0, 'exit %d: %r' % (rc, err[-800:])


@test
def sample_config_lists_exactly_the_default_module_set():
    """Without modules: the default set runs; the sample config spells that
    set out, so the two must not drift apart."""
    import subprocess
    out = subprocess.run([parley._binary('parleyd'), '--list-modules'], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out
    defaults = sorted(l.split()[0] for l in out.stdout.splitlines() if l.endswith(' default'))
    assert 'mod_ping' in defaults and 'mod_disco' in defaults, out.stdout
    text = open(os.path.join(ROOT, 'conf', 'parley.yml')).read()
    block = text[text.index('\nmodules:\n'):]
    listed = sorted(re.findall(r'^  (mod_\w+):', block, re.M))
    assert listed == defaults, 'sample lists %s, default set is %s' % (listed, defaults)


if __name__ == '__main__':
    main()
