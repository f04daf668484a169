/*
 * tls.h - OpenSSL contexts per virtual host.
 *
 * Built at startup (main thread), read-only afterwards. Certificates come
 * from `certfiles` (PEM files holding a certificate chain and key, matched to
 * hosts by their names), or, for a host without one, a self-signed
 * certificate generated at first start into DATA_DIR/certs/HOST.pem.
 * TLS 1.2 is the minimum; SSL_MODE_RELEASE_BUFFERS keeps idle sessions small.
 */
#ifndef PL_TLS_H
#define PL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

int tls_init(char *err, size_t errlen);
/* The context for a host (falls back to the first host's). */
SSL_CTX *tls_ctx_for(const char *host);
void tls_shutdown(void);

/* Channel binding data of a server-side TLS session (RFC 5929
 * tls-server-end-point and tls-unique, RFC 9266 tls-exporter) into out.
 * Returns the length, or 0 if the type is unknown or not available. */
size_t tls_channel_binding(SSL *ssl, const char *type, uint8_t *out, size_t outlen);
/* Is that binding type defined on this session (TLS 1.2 needs Extended
 * Master Secret for tls-exporter and tls-unique)? */
bool tls_binding_usable(SSL *ssl, const char *type);

#endif
