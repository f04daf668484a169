"""Resource limits: a server out of file descriptors keeps running, keeps
serving the sessions it has, and accepts again once descriptors free up."""

import socket
import subprocess
import time

import parley
from parley import test, main
from xmpp_raw import RawStream, NS_STREAMS, tag


def set_soft_fd_limit(pid, n):
    # Only the soft limit: the hard one cannot be raised back afterwards.
    subprocess.run(['prlimit', '--nofile=%d:' % n, '--pid', str(pid)], check=True)


def cpu_ticks(pid):
    # The process's stat line after its command name: utime and stime.
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def open_stream_ok(port):
    r = RawStream(port, timeout=5)
    try:
        features = r.open()
        return features.find(tag('urn:ietf:params:xml:ns:xmpp-tls', 'starttls')) is not None
    finally:
        r.close()


@test
def out_of_file_descriptors_pauses_accepts_and_recovers(srv):
    port = srv.ports['c2s']
    # Room for what the server already holds plus a few connections.
    used = len(__import__('os').listdir('/proc/%d/fd' % srv.pid))
    set_soft_fd_limit(srv.pid, used + 8)
    held = []
    try:
        for _ in range(40):   # far more than the limit allows
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            held.append(s)
        srv.wait_log('out of file descriptors', timeout=10)
        # The listener is paused, not spinning: the server is idle.
        t0 = cpu_ticks(srv.pid)
        time.sleep(1.0)
        ticks = cpu_ticks(srv.pid) - t0
        assert ticks < 30, 'server burned %d CPU ticks in 1 s while out of fds' % ticks
        assert srv.alive()
    finally:
        for s in held:
            s.close()
    # Descriptors freed: new streams are served again (backlog drained).
    deadline = time.time() + 10
    while True:
        try:
            if open_stream_ok(port):
                break
        except Exception:
            pass
        if time.time() > deadline:
            raise AssertionError('no stream served after descriptors were freed')
        time.sleep(0.2)
    set_soft_fd_limit(srv.pid, 20000)
    rc, out, _ = srv.ctl('status')
    assert rc == 0, out


if __name__ == '__main__':
    main(threads=1)
