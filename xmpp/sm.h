/* sm.h - session manager internals shared by router.c and c2s.c (home shard only). */
#ifndef PL_XMPP_SM_H
#define PL_XMPP_SM_H

#include <stddef.h>

struct c2s;
struct shard;
struct xml_node;

void sm_shard_start(struct shard *sh);
void sm_shard_stop(struct shard *sh);
struct c2s *sm_find_session(const char *bare, const char *resource);
/* Full JIDs of this shard's sessions (caller frees each and the array). */
size_t sm_list_jids(char ***out);
/* Deliver a stanza to a local user whose home is this shard. Takes el. */
void sm_deliver(struct xml_node *el);

#endif
