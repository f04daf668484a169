"""Virtual hosting: several hosts in one server, accounts and data kept
apart, each host with its own certificate (from certfiles or generated), the
right one picked by SNI."""

import os
import socket
import ssl
import subprocess
import tempfile

import parley
from parley import test, main, Server

HOSTS = ('alpha.test', 'beta.test')


def make_cert(dirname, host):
    """A certificate + key PEM for host, made with the openssl tool."""
    path = os.path.join(dirname, host + '.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj',
                    '/CN=%s' % host, '-addext', 'subjectAltName=DNS:%s' % host,
                    '-keyout', path + '.key', '-out', path + '.crt'],
                   check=True, capture_output=True)
    with open(path, 'w') as out:
        out.write(open(path + '.crt').read() + open(path + '.key').read())
    return path


def peer_cert_cn(port, server_name):
    """Direct TLS to port with SNI server_name; the certificate's CN."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(['openssl', 'x509', '-noout', '-subject'], input=pem,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split('CN', 1)[1].lstrip(' =').strip()


certdir = tempfile.mkdtemp(prefix='parley-certs-')
alpha_pem = make_cert(certdir, 'alpha.test')


def login(srv, user, host, pw, resource='r'):
    c = parley.xmpp_client('%s@%s/%s' % (user, host, resource), pw, srv.ports['c2s'])
    return parley.xmpp_connect(c)


@test
def same_username_on_two_hosts_is_two_accounts(srv):
    srv.register('sam', 'alpha-pw', host='alpha.test')
    srv.register('sam', 'beta-pw', host='beta.test')
    rc, out, _ = srv.ctl('registered_users', 'alpha.test')
    assert out.split() == ['sam'], out
    a = login(srv, 'sam', 'alpha.test', 'alpha-pw')
    b = login(srv, 'sam', 'beta.test', 'beta-pw')
    # One host's password does not open the other's account.
    try:
        login(srv, 'sam', 'beta.test', 'alpha-pw', resource='x')
        raise AssertionError('alpha password logged in on beta')
    except parley.XmppConnectError as e:
        assert e.kind == 'failed_all_auth', e
    rc, out, _ = srv.ctl('connected_users')
    assert out.split() == ['sam@alpha.test/r', 'sam@beta.test/r'], out
    parley.xmpp_disconnect(a)
    parley.xmpp_disconnect(b)


@test
def messages_cross_between_hosts(srv):
    srv.register('ann', 'pw', host='alpha.test')
    srv.register('bob', 'pw', host='beta.test')
    a = login(srv, 'ann', 'alpha.test', 'pw')
    b = login(srv, 'bob', 'beta.test', 'pw')
    a.send_presence()
    b.send_presence()
    parley.xmpp_sleep(0.2)
    a.send_message(mto='bob@beta.test', mbody='over the fence')
    m = parley.xmpp_wait(b, 'message', 5)
    assert m['body'] == 'over the fence' and str(m['from']) == 'ann@alpha.test/r', m
    parley.xmpp_disconnect(a)
    parley.xmpp_disconnect(b)


@test
def unregistering_on_one_host_leaves_the_other(srv):
    srv.register('twin', 'pw', host='alpha.test')
    srv.register('twin', 'pw', host='beta.test')
    rc, _, err = srv.ctl('unregister', 'twin', 'alpha.test')
    assert rc == 0, err
    _, out_a, _ = srv.ctl('registered_users', 'alpha.test')
    _, out_b, _ = srv.ctl('registered_users', 'beta.test')
    assert 'twin' not in out_a.split() and 'twin' in out_b.split(), (out_a, out_b)


@test
def stream_to_an_unserved_host_is_host_unknown(srv):
    from xmpp_raw import RawStream
    r = RawStream(srv.ports['c2s'])
    r.send(parley_header('gamma.test'))
    cond, _ = r.stream_error()
    assert cond == 'host-unknown', cond
    r.close()


def parley_header(to):
    from xmpp_raw import header
    return header(to=to)


@test
def sni_selects_each_hosts_certificate(srv):
    port = srv.ports['c2s_tls']
    # alpha.test's certificate comes from certfiles, beta.test's was generated.
    assert peer_cert_cn(port, 'alpha.test') == 'alpha.test'
    assert peer_cert_cn(port, 'beta.test') == 'beta.test'
    assert os.path.exists(srv.cert_path('beta.test'))
    assert not os.path.exists(srv.cert_path('alpha.test'))


@test
def xmpp_login_verifies_the_certfiles_certificate(srv):
    srv.register('ver', 'pw', host='alpha.test')
    c = parley.xmpp_client('ver@alpha.test/v', 'pw', srv.ports['c2s'], cafile=alpha_pem)
    parley.xmpp_connect(c)
    parley.xmpp_disconnect(c)


if __name__ == '__main__':
    try:
        main(threads=2, hosts=HOSTS, extra_config={'certfiles': [alpha_pem]})
    finally:
        import shutil
        shutil.rmtree(certdir, ignore_errors=True)
