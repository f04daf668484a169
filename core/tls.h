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

#include <openssl/ssl.h>

int tls_init(char *err, size_t errlen);
/* The context for a host (falls back to the first host's). */
SSL_CTX *tls_ctx_for(const char *host);
void tls_shutdown(void);

#endif
