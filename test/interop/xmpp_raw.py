"""XMPP over a bare socket, for tests that must send what no real client
would: malformed XML, restricted XML, the wrong namespaces, stanzas before
authentication. Every read is bounded in time.

    s = RawStream(srv.ports['c2s'])
    features = s.open()                  # sends the header, returns <features/>
    s.starttls()                         # <starttls/>, <proceed/>, TLS, restart
    s.send("<message ...")
    cond, text = s.stream_error()        # 'not-well-formed', 'text or None'
    s.wait_closed()                      # </stream:stream> and then EOF

SASL SCRAM (RFC 5802, RFC 7677) with or without channel binding, so a
test can choose every part of what the client says:

    reply, scram = s.auth_scram('alice', 'pw', 'SCRAM-SHA-256-PLUS',
                                cb_type='tls-server-end-point',
                                cb_data=hashlib.sha256(s.peer_cert()).digest())
    assert reply.tag == tag(NS_SASL, 'success') and scram.server_verified

The server's side of the stream is parsed with expat (XMLPullParser), so a
reply that is itself not well-formed fails the test loudly; top-level
elements come back as xml.etree Elements, tags in '{namespace}name' form.
"""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import time
import xml.etree.ElementTree as ET

NS_STREAMS = 'http://etherx.jabber.org/streams'
NS_CLIENT = 'jabber:client'
NS_SERVER = 'jabber:server'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZA_ERRORS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'

DEFAULT_TIMEOUT = 5.0


def tag(ns, name):
    return '{%s}%s' % (ns, name)


def split_tag(t):
    """'{ns}name' -> ('ns', 'name'); 'name' -> ('', 'name')."""
    if t.startswith('{'):
        ns, name = t[1:].split('}', 1)
        return ns, name
    return '', t


def show(el):
    """An element as text, for assertion messages."""
    if el is None:
        return '(end of stream)'
    return ET.tostring(el, encoding='unicode')


def header(to='localhost', ns=NS_CLIENT, stream_ns=NS_STREAMS, version='1.0',
           root='stream:stream', decl=True):
    """A client stream header; every part can be made wrong on purpose."""
    attrs = []
    if to is not None:
        attrs.append("to='%s'" % to)
    if ns is not None:
        attrs.append("xmlns='%s'" % ns)
    if stream_ns is not None:
        attrs.append("xmlns:stream='%s'" % stream_ns)
    if version is not None:
        attrs.append("version='%s'" % version)
    return "%s<%s %s>" % ("<?xml version='1.0'?>" if decl else '', root,
                          ' '.join(attrs))


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode('ascii')


class RawStream:
    """One client connection to a c2s listener. tls=True starts TLS at once
    (the c2s_tls port); otherwise plain TCP until starttls(). tls_max (an
    ssl.TLSVersion) caps the protocol version the client offers."""

    def __init__(self, port, host='127.0.0.1', tls=False, timeout=DEFAULT_TIMEOUT,
                 server_name='localhost', tls_max=None):
        self.timeout = timeout
        self.server_name = server_name
        self.tls_max = tls_max
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.tls = False
        self.eof = False          # the server closed the TCP connection
        self.closed = False       # the server sent </stream:stream>
        self.reset_seen = False   # the connection was reset (RST)
        self.stream_attrs = None  # the server's stream header attributes
        self.raw = bytearray()    # everything read, for failure messages
        self._ready = []
        self._new_parser()
        if tls:
            self._wrap_tls()

    # -- transport

    def _wrap_tls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if self.tls_max is not None:
            ctx.maximum_version = self.tls_max
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.server_name)
        self.tls = True

    def tls_version(self):
        """'TLSv1.2', 'TLSv1.3', or None before TLS."""
        return self.sock.version() if self.tls else None

    def peer_cert(self):
        """The server certificate's DER bytes (what tls-server-end-point
        hashes, RFC 5929 section 4)."""
        if not self.tls:
            raise AssertionError('no TLS on this stream')
        return self.sock.getpeercert(binary_form=True)

    def tls_unique(self):
        """The first Finished message of the handshake (RFC 5929 section 3)
        as this client's TLS library computes it."""
        if not self.tls:
            raise AssertionError('no TLS on this stream')
        return self.sock.get_channel_binding('tls-unique')

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _recv(self, deadline):
        """Read once into the parser; False once the server closed."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('no data from the server within %ss; read so far: %r'
                               % (self.timeout, self._tail()))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError('no data from the server within the time limit; '
                               'read so far: %r' % self._tail()) from None
        except ssl.SSLEOFError:
            data = b''
        except ConnectionResetError:
            self.reset_seen = True
            data = b''
        if not data:
            self.eof = True
            return False
        self.raw += data
        try:
            self.parser.feed(data)
        except ET.ParseError as e:
            raise AssertionError('the server sent XML that is not well-formed (%s): %r'
                                 % (e, self._tail())) from None
        self._collect()
        return True

    def _tail(self, n=600):
        return bytes(self.raw[-n:]).decode('utf-8', 'replace')

    # -- parsing the server's stream

    def _new_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.root = None

    def _collect(self):
        for event, el in self.parser.read_events():
            if event == 'start':
                self.depth += 1
                if self.depth == 1:
                    if el.tag != tag(NS_STREAMS, 'stream'):
                        raise AssertionError('the server stream root is %s' % el.tag)
                    self.root = el
                    self.stream_attrs = dict(el.attrib)
                continue
            self.depth -= 1
            if self.depth == 1:
                self._ready.append(el)
                # A long stream should not keep every stanza under its root.
                self.root.remove(el)
            elif self.depth == 0:
                self.closed = True

    def next(self, timeout=None):
        """The server's next top-level element; None when the stream ended
        (</stream:stream> or the connection closed) without one."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._ready:
            if self.closed or self.eof:
                return None
            self._recv(deadline)
        return self._ready.pop(0)

    def expect(self, ns, name, timeout=None):
        el = self.next(timeout)
        if el is None or el.tag != tag(ns, name):
            raise AssertionError('expected <%s xmlns=%r>, got %s' % (name, ns, show(el)))
        return el

    # -- stream negotiation

    def open(self, to='localhost', **kw):
        """Send a stream header and return the server's <features/>."""
        self.send(header(to=to, **kw))
        return self.expect(NS_STREAMS, 'features')

    def restart(self, to='localhost'):
        """A stream restart (RFC 6120 section 4.3.3): new header, new parser."""
        self._new_parser()
        return self.open(to=to)

    def starttls(self, to='localhost'):
        """<starttls/>, <proceed/>, TLS handshake, restart; returns the new
        <features/>."""
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.expect(NS_TLS, 'proceed')
        self._wrap_tls()
        return self.restart(to)

    def auth_plain(self, user, password, authzid=''):
        """SASL PLAIN with an initial response; returns <success/> or
        <failure/> (whatever came)."""
        msg = '%s\0%s\0%s' % (authzid, user, password)
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, b64(msg)))
        return self.next()

    def auth_scram(self, user, password, mech='SCRAM-SHA-256', cb_flag=None,
                   cb_type=None, cb_data=b'', c_header=None, authzid=None):
        """A SCRAM exchange. The gs2 flag is 'p=cb_type' when cb_type is
        given, else cb_flag ('n' by default); c_header replaces the gs2
        header echoed in c= (to send one that does not match). Returns the
        server's last element (<success/> or <failure/>) and the
        ScramClient, whose server_verified says whether v= was right."""
        scram = ScramClient(mech, user, password, cb_flag=cb_flag, cb_type=cb_type,
                            cb_data=cb_data, c_header=c_header, authzid=authzid)
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                  % (NS_SASL, mech, b64(scram.client_first())))
        el = self.next()
        if el is None or el.tag != tag(NS_SASL, 'challenge'):
            return el, scram
        final = scram.client_final(base64.b64decode(el.text or '', validate=True))
        self.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(final)))
        el = self.next()
        if el is not None and el.tag == tag(NS_SASL, 'success'):
            scram.verify_server_final(base64.b64decode(el.text or '', validate=True))
        return el, scram

    def bind(self, resource=None, iq_id='bind1'):
        """Resource binding; returns the full JID the server assigned."""
        res = '<resource>%s</resource>' % resource if resource else ''
        self.send("<iq type='set' id='%s'><bind xmlns='%s'>%s</bind></iq>"
                  % (iq_id, NS_BIND, res))
        iq = self.expect(NS_CLIENT, 'iq')
        if iq.get('type') != 'result' or iq.get('id') != iq_id:
            raise AssertionError('bind failed: %s' % show(iq))
        jid = iq.find('%s/%s' % (tag(NS_BIND, 'bind'), tag(NS_BIND, 'jid')))
        if jid is None or not jid.text:
            raise AssertionError('bind result without a JID: %s' % show(iq))
        return jid.text

    def login_plain(self, user, password, resource='raw', to='localhost'):
        """Open, (STARTTLS if the server requires or offers it and we are
        not on TLS yet), PLAIN, restart, bind. Returns the full JID."""
        features = self.open(to=to)
        if not self.tls and features.find(tag(NS_TLS, 'starttls')) is not None:
            features = self.starttls(to)
        if not has_mechanism(features, 'PLAIN'):
            raise AssertionError('PLAIN not offered: %s' % show(features))
        reply = self.auth_plain(user, password)
        if reply is None or reply.tag != tag(NS_SASL, 'success'):
            raise AssertionError('PLAIN login failed: %s' % show(reply))
        self.restart(to)
        return self.bind(resource)

    # -- errors and the end of the stream

    def stream_error(self, timeout=None):
        """Wait for <stream:error/>; returns (condition, text or None).
        Anything else before it fails the test."""
        el = self.next(timeout)
        if el is None or el.tag != tag(NS_STREAMS, 'error'):
            raise AssertionError('expected a stream error, got %s (reset: %s); raw tail: %r'
                                 % (show(el), self.reset_seen, self._tail()))
        cond, text = None, None
        for child in el:
            ns, name = split_tag(child.tag)
            if ns != NS_STREAM_ERRORS:
                continue
            if name == 'text':
                text = child.text
            elif cond is None:
                cond = name
        if cond is None:
            raise AssertionError('stream error without a condition in %s: %s'
                                 % (NS_STREAM_ERRORS, show(el)))
        return cond, text

    def wait_closed(self, timeout=None):
        """Assert the server ends the stream (</stream:stream>) and closes
        the connection, within timeout. Elements after the error fail."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            if self._ready:
                raise AssertionError('data after the end of the stream: %s'
                                     % show(self._ready[0]))
            self._recv(deadline)
        if self._ready:
            raise AssertionError('data after the end of the stream: %s'
                                 % show(self._ready[0]))
        if not self.closed:
            raise AssertionError('connection closed without </stream:stream>; '
                                 'raw tail: %r' % self._tail())


class ScramClient:
    """The client side of SCRAM-SHA-1/SCRAM-SHA-256 (RFC 5802 section 3,
    RFC 7677), with or without -PLUS. Passwords are used as UTF-8 without
    SASLprep: keep them ASCII."""

    HASHES = {'SCRAM-SHA-1': 'sha1', 'SCRAM-SHA-256': 'sha256'}

    def __init__(self, mech, user, password, cb_flag=None, cb_type=None, cb_data=b'',
                 c_header=None, authzid=None, nonce=None):
        base = mech[:-5] if mech.endswith('-PLUS') else mech
        if base not in self.HASHES:
            raise ValueError('not a SCRAM mechanism: %s' % mech)
        self.hash = self.HASHES[base]
        self.user = user
        self.password = password.encode('utf-8')
        if cb_type is not None:
            flag = 'p=' + cb_type
        else:
            flag = cb_flag or 'n'
        authz = 'a=' + self._saslname(authzid) if authzid else ''
        self.gs2_header = ('%s,%s,' % (flag, authz)).encode()
        self.c_header = self.gs2_header if c_header is None else c_header.encode()
        self.cb_data = cb_data if cb_type is not None else b''
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = 'n=%s,r=%s' % (self._saslname(user), self.nonce)
        self.server_signature = None
        self.server_verified = False

    @staticmethod
    def _saslname(name):
        return name.replace('=', '=3D').replace(',', '=2C')

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hash).digest()

    def client_first(self):
        return self.gs2_header + self.client_first_bare.encode()

    def client_final(self, server_first):
        """client-final-message for the server-first-message (bytes)."""
        attrs = dict(a.split('=', 1) for a in server_first.decode().split(','))
        nonce, salt, iterations = attrs['r'], attrs['s'], int(attrs['i'])
        if not nonce.startswith(self.nonce) or len(nonce) <= len(self.nonce):
            raise AssertionError('server nonce %r does not extend ours %r' % (nonce, self.nonce))
        salted = hashlib.pbkdf2_hmac(self.hash, self.password,
                                     base64.b64decode(salt, validate=True), iterations)
        client_key = self._hmac(salted, b'Client Key')
        stored_key = hashlib.new(self.hash, client_key).digest()
        cbind = base64.b64encode(self.c_header + self.cb_data).decode()
        without_proof = 'c=%s,r=%s' % (cbind, nonce)
        auth_message = ('%s,%s,%s' % (self.client_first_bare, server_first.decode(),
                                      without_proof)).encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = self._hmac(salted, b'Server Key')
        self.server_signature = self._hmac(server_key, auth_message)
        return ('%s,p=%s' % (without_proof, base64.b64encode(proof).decode())).encode()

    def verify_server_final(self, server_final):
        """Check v= (RFC 5802 section 3: the client authenticates the
        server). Sets and returns server_verified."""
        text = server_final.decode()
        self.server_verified = (
            self.server_signature is not None and text.startswith('v=') and
            hmac.compare_digest(base64.b64decode(text[2:], validate=True),
                                self.server_signature))
        return self.server_verified


def has_mechanism(features, name):
    mechs = features.find(tag(NS_SASL, 'mechanisms'))
    if mechs is None:
        return False
    return any((m.text or '').strip() == name
               for m in mechs.findall(tag(NS_SASL, 'mechanism')))


def mechanisms(features):
    mechs = features.find(tag(NS_SASL, 'mechanisms'))
    if mechs is None:
        return []
    return [(m.text or '').strip() for m in mechs.findall(tag(NS_SASL, 'mechanism'))]


def channel_binding_types(features):
    """The XEP-0440 channel-binding types advertised in <features/>, in
    order; None when there is no <sasl-channel-binding/> element."""
    cb = features.find(tag(NS_SASL_CB, 'sasl-channel-binding'))
    if cb is None:
        return None
    return [c.get('type') for c in cb.findall(tag(NS_SASL_CB, 'channel-binding'))]


def sasl_failure_condition(el):
    """The condition of a SASL <failure/>; fails on anything else."""
    if el is None or el.tag != tag(NS_SASL, 'failure'):
        raise AssertionError('expected a SASL failure, got %s' % show(el))
    for child in el:
        ns, name = split_tag(child.tag)
        if ns == NS_SASL and name != 'text':
            return name
    raise AssertionError('SASL failure without a condition: %s' % show(el))
