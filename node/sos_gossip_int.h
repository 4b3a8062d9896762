/*  sos_gossip_int.h: gossip's own state, seen only by sos_gossip.c (and test harnesses that
    drive a node's internals). Everything else reaches it through the gossip functions of
    sos_node_int.h. */
#ifndef SOS_GOSSIP_INT_H
#define SOS_GOSSIP_INT_H

#include "sos_node_int.h"

/*  Owned by the node (sos_node_t.gossip), made by sos_gossip_new and freed by
    sos_gossip_destroy. Its peers are freed only by sos_gossip_reap (and by
    sos_gossip_destroy, with the node); see "Peers" in sos_gossip.c. */
struct _sos_gossip_t {
    zhashx_t *peers;    /* url -> sos_peer_t (owned) */
    zhashx_t *peers_id; /* id hex -> sos_peer_t (borrowed) */
    zlistx_t *retired;  /* sos_peer_t (owned) out of the tables, to free at the next tick */
    size_t n_open;      /* peers with an open DEALER */
    uint64_t ticks;     /* sos_gossip_tick calls: retired peers are freed a tick later */
    sos_gaps_t *gaps;   /* origins with a hole: we need their records after a version */
    bool digest_dirty;
    uint8_t digest_hash[SOS_DIGEST_HASH_BYTES];
    uint32_t digest_n;
    sos_digest_entry_t *digest_cache; /* the digest_n entries digest_hash was made of */
    uint32_t sums_nb; /* the bucket count sums_cache holds (0: none; reset with the digest) */
    uint8_t (*sums_cache)[SOS_DIGEST_HASH_BYTES]; /* digest_cache's bucket sums, sums_nb */
    uint32_t digest_max; /* digest entries a DIGEST_ACK carries: SOS_DIGEST_MAX, lowered only
                            by tests (SOS_TEST_DIGEST_MAX, sos_gossip_start) */
};

#endif
