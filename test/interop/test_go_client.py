"""A second, independent client stack (go-sendxmpp, Go's XMPP and TLS
code) logging in repeatedly over STARTTLS. Go pipelines its ClientHello
right behind <proceed/> and its stream header right behind the handshake,
which once exposed a STARTTLS race in the server; every login must work."""

import subprocess

import parley
from parley import test, main

PASSWORD = 'go-pass'


def send(srv, user, to, text):
    p = subprocess.run(['go-sendxmpp', '-u', srv.jid(user), '-p', PASSWORD,
                        '-j', '127.0.0.1:%d' % srv.ports['c2s'], '-n', '--timeout', '10', to],
                       input=text, capture_output=True, text=True, timeout=20)
    return p.returncode, p.stderr


@test(timeout=120)
def go_sendxmpp_logs_in_over_starttls_every_time(srv):
    srv.register('gopher', PASSWORD)
    srv.register('burrow', PASSWORD)
    r = parley.xmpp_session(srv, 'burrow', PASSWORD, resource='home')
    r.send_presence()
    got = []
    r.add_event_handler('message', lambda m: got.append(m['body']))
    parley.xmpp_sleep(0.2)
    failures = []
    for i in range(20):
        rc, err = send(srv, 'gopher', srv.jid('burrow'), 'note %d' % i)
        if rc != 0:
            failures.append((i, err.strip()))
    assert not failures, failures
    deadline = 50
    while len(got) < 20 and deadline > 0:
        parley.xmpp_sleep(0.1)
        deadline -= 1
    assert sorted(got) == sorted('note %d' % i for i in range(20)), got
    assert 'stream error' not in srv.log(), srv.log_tail()


if __name__ == '__main__':
    main(threads=2)
