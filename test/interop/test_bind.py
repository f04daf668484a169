"""Resource binding (RFC 6120 §7): server-generated resources, the three
resource_conflict policies (ejabberd's closeold, closenew, setresource), and
the legacy session element (RFC 3921 §3)."""

import parley
from parley import test, main, Server
from xmpp_raw import RawStream, NS_CLIENT, NS_BIND, NS_STANZA_ERRORS, tag, show

NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'


def login_until_bind(srv, user, pw):
    r = RawStream(srv.ports['c2s'])
    features = r.open()
    features = r.starttls()
    reply = r.auth_plain(user, pw)
    assert reply.tag.endswith('success'), show(reply)
    features = r.restart()
    assert features.find(tag(NS_BIND, 'bind')) is not None, show(features)
    return r


def bind_raw(r, resource, iq_id):
    r.send("<iq type='set' id='%s'><bind xmlns='%s'><resource>%s</resource></bind></iq>"
           % (iq_id, NS_BIND, resource))
    return r.expect(NS_CLIENT, 'iq')


def run_policy(policy):
    srv = Server(threads=2, extra_config={'resource_conflict': policy})
    try:
        srv.register('dup', 'pw')
        first = login_until_bind(srv, 'dup', 'pw')
        iq = bind_raw(first, 'phone', 'b1')
        assert iq.get('type') == 'result', show(iq)
        second = login_until_bind(srv, 'dup', 'pw')
        iq2 = bind_raw(second, 'phone', 'b2')
        return srv, first, second, iq2
    except Exception:
        srv.stop()
        srv.cleanup()
        raise


def finish(srv, *streams):
    for s in streams:
        s.close()
    rc = srv.stop()
    srv.cleanup()
    assert rc == 0, 'parleyd exited %s' % rc


@test
def rfc6120_7_6_server_generates_a_resource_when_none_is_asked(srv):
    srv.register('gen', 'pw')
    r = login_until_bind(srv, 'gen', 'pw')
    jid = r.bind(None, iq_id='g1')
    assert jid.startswith('gen@localhost/') and len(jid) > len('gen@localhost/'), jid
    r.close()


@test
def rfc3921_3_legacy_session_is_answered(srv):
    srv.register('legacy', 'pw')
    r = login_until_bind(srv, 'legacy', 'pw')
    r.bind('old', iq_id='l1')
    r.send("<iq type='set' id='s1'><session xmlns='%s'/></iq>" % NS_SESSION)
    iq = r.expect(NS_CLIENT, 'iq')
    assert iq.get('type') == 'result' and iq.get('id') == 's1', show(iq)
    r.close()


@test
def resource_conflict_closeold_replaces_the_old_session():
    srv, first, second, iq2 = run_policy('closeold')
    assert iq2.get('type') == 'result', show(iq2)
    jid = iq2.find('%s/%s' % (tag(NS_BIND, 'bind'), tag(NS_BIND, 'jid'))).text
    assert jid == 'dup@localhost/phone', jid
    cond, _ = first.stream_error()
    assert cond == 'conflict', cond
    rc, out, _ = srv.ctl('connected_users')
    assert out.split() == ['dup@localhost/phone'], out
    finish(srv, first, second)


@test
def resource_conflict_closenew_refuses_the_bind_and_allows_another():
    srv, first, second, iq2 = run_policy('closenew')
    assert iq2.get('type') == 'error', show(iq2)
    err = iq2.find(tag(NS_CLIENT, 'error'))
    assert err is not None and err.find(tag(NS_STANZA_ERRORS, 'conflict')) is not None, show(iq2)
    # The first session is untouched; the second may bind another resource.
    iq3 = bind_raw(second, 'laptop', 'b3')
    assert iq3.get('type') == 'result', show(iq3)
    rc, out, _ = srv.ctl('connected_users')
    assert out.split() == ['dup@localhost/laptop', 'dup@localhost/phone'], out
    first.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    pong = first.expect(NS_CLIENT, 'iq')
    assert pong.get('type') == 'result', show(pong)
    finish(srv, first, second)


@test
def resource_conflict_setresource_gives_the_new_session_another_resource():
    srv, first, second, iq2 = run_policy('setresource')
    assert iq2.get('type') == 'result', show(iq2)
    jid = iq2.find('%s/%s' % (tag(NS_BIND, 'bind'), tag(NS_BIND, 'jid'))).text
    assert jid.startswith('dup@localhost/') and jid != 'dup@localhost/phone', jid
    rc, out, _ = srv.ctl('connected_users')
    assert sorted(out.split()) == sorted(['dup@localhost/phone', jid]), out
    finish(srv, first, second)


@test
def resource_conflict_bad_value_is_a_config_error():
    d = parley.tempfile.mkdtemp(prefix='parley-bind-')
    path = parley.write_config(d, 'hosts: [localhost]\nresource_conflict: kickboth\n')
    rc, out, err = parley.run_parleyd(['-c', path, '--check-config'])
    assert rc == 1, (rc, out, err)
    assert '%s:2:' % path in err and 'resource_conflict' in err, err
    parley.shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main(threads=2)
