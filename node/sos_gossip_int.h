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
    zhashx_t *peers;      /* url -> sos_peer_t (owned) */
    zhashx_t *peers_id;   /* id hex -> sos_peer_t (borrowed) */
    zlistx_t *retired;    /* sos_peer_t (owned) out of the tables, to free at the next tick */
    size_t n_open;        /* peers with an open DEALER */
    uint64_t ticks;       /* sos_gossip_tick calls: retired peers are freed a tick later */
    double verify_tokens; /* the verification budget shared by senders that are no peers */
    uint64_t verify_mono;
    bool allow_private;    /* records may name non-public addresses (see sos_gossip_start) */
    sos_replay_t *replay;  /* nonces of envelopes seen (only gossip speaks in envelopes) */
    uint64_t my_version;   /* this node's record counter */
    sos_record_t self_rec; /* our record as committed: what SYNCs carry */
    sos_record_t self_rec_pending; /* signed in this pass; becomes self_rec on commit */
    bool self_rec_pending_set;
    uint64_t next_req_id;
    uint64_t exchange_timeout_ms;
    uint64_t tombstone_ttl_ms;
    sos_gaps_t *gaps; /* origins with a hole: we need their records after a version */
    bool digest_dirty;
    bool republish;     /* re-sign our worker record at the next round (see s_failure) */
    bool push_due;      /* a suspicion began here: tell the view at the next tick */
    bool probe_due;     /* a peer was newly named a suspect: probe it at the next tick */
    uint64_t push_mono; /* when the view was last told: once per interval at most */
    uint64_t news_mark; /* the counters that say something changed, summed (s_round_fanout) */
    uint64_t news_mono; /* when they last moved: the directory is at rest after a while */
    sos_fd_t fd;        /* local health, round and tick times, the last refutation (sos_fd.h) */

    /* indirect probes (sos_fd.h, sos_gossip.c): those we wait on, the PINGs we run for
       others, and each one's requester (help_routing[i], owned, NULL for a free slot) */
    sos_fd_probes_t probes;
    sos_fd_helps_t helps;
    zframe_t *help_routing[SOS_FD_HELPS_MAX];
    bool help_unsent[SOS_FD_HELPS_MAX]; /* its PING waits for a short-lived connection */

    /* the active view (sos_core_view.h): peers kept connected for rounds and rumors, as
       handles (uintptr_t) of sos_peer_t, each with its DEALER open; any other open DEALER
       is short-lived (sos_gossip.c, "Connections") */
    sos_core_view_t view;
    uint32_t view_listed_max; /* the most workers listed at a round so far (renewal) */
    uint64_t view_grew_round; /* the round at which that grew last */
    /* workers removed here lately, still named as suspects in SYNCs (sos_gossip.c,
       s_suspects): id, the version removed, until when (mono ms; 0: a free slot) */
    sos_core_fd_removed_t removed_named;
    /* probation's measure: outcomes of first exchanges with workers on probation, which set
       how many may be at once (sos_core_sync.h, sos_probation_cap) */
    sos_probation_t probation;

    uint8_t digest_hash[SOS_DIGEST_HASH_BYTES];
    uint32_t digest_n;
    sos_digest_entry_t *digest_cache; /* the digest_n entries digest_hash was made of */
    uint32_t sums_nb; /* the bucket count sums_cache holds (0: none; reset with the digest) */
    uint8_t (*sums_cache)[SOS_DIGEST_HASH_BYTES]; /* digest_cache's bucket sums, sums_nb */
    uint32_t digest_max; /* digest entries a DIGEST_ACK carries: SOS_DIGEST_MAX, lowered only
                            by tests (SOS_TEST_DIGEST_MAX, sos_gossip_start) */
};

#endif
