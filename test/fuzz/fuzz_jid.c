/* fuzz-sources: xmpp/jid.c core/pl.c */
/*
 * fuzz_jid.c - JID parsing and PRECIS/IDNA normalisation on arbitrary bytes.
 *
 * Beyond "no crash": normalisation is idempotent (a parsed JID written out
 * parses back to itself), bare and full forms agree with the parts, and
 * each part's preparation accepts its own output unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pl.h"
#include "xmpp/jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_prep(char *(*prep)(const char *, size_t), const char *s, size_t n)
{
	char *once = prep(s, n);
	if (!once)
		return;
	char *twice = prep(once, strlen(once));
	if (!twice || strcmp(once, twice) != 0)
		abort();
	free(once);
	free(twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct jid j, k;

	check_prep(jid_prep_local, s, size);
	check_prep(jid_prep_domain, s, size);
	check_prep(jid_prep_resource, s, size);
	if (jid_parse(s, size, &j) != PL_OK) {
		if (j.local || j.domain || j.resource)
			abort();
		return 0;
	}
	char *full = jid_full(&j);
	if (jid_parse(full, strlen(full), &k) != PL_OK || !jid_eq(&j, &k))
		abort();
	jid_free(&k);
	char *bare = jid_bare(&j);
	if (jid_parse(bare, strlen(bare), &k) != PL_OK || !jid_eq_bare(&j, &k) || k.resource)
		abort();
	if (strncmp(full, bare, strlen(bare)) != 0)
		abort();
	jid_free(&k);
	free(full);
	free(bare);
	jid_free(&j);
	return 0;
}
