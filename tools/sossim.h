/*  sossim.h: the deterministic simulator's shared types: a seeded random source, virtual
    time with an event queue, a virtual network, and the simulated nodes (tools/sossim*.c). */
#ifndef SOSSIM_H
#define SOSSIM_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_core_digest.h"
#include "sos_core_exchange.h"
#include "sos_core_fd.h"
#include "sos_core_sync.h"
#include "sos_core_view.h"
#include "sos_fd.h"
#include "sos_gmsg.h"
#include "sos_merge.h"
#include "sos_store.h"

/* ------------------------------------------------------------ random ---- */

/*  xoshiro256**, seeded by splitmix64: every random choice of a run comes from one of these,
    so that a seed is a run. */
typedef struct {
    uint64_t s[4];
} sim_rng_t;

void sim_rng_seed(sim_rng_t *rng, uint64_t seed);
uint64_t sim_rng_next(sim_rng_t *rng);
/*  Uniform in [0, n) (n > 0). */
uint64_t sim_rng_below(sim_rng_t *rng, uint64_t n);
/*  True with probability p. */
bool sim_rng_chance(sim_rng_t *rng, double p);
void sim_rng_bytes(sim_rng_t *rng, uint8_t *out, size_t len);

/* ------------------------------------------------------------- nodes ---- */

typedef enum {
    EV_ROUND = 1,
    EV_DELIVER,
    EV_COMMIT,
    EV_DEADLINE,
    EV_RESTART,
    EV_PROBE, /* a node's indirect probes past their deadline count as failures */
    EV_HELP,  /* a helper's PINGs past their deadline are answered "not reached" */
} sim_ev_type_t;

typedef enum {
    MSG_SYNC = 1,   /* A -> B: hash, n_origins, self, suspects */
    MSG_SYNC_ACK,   /* B -> A: in sync, B's whole digest, or B's bucket sums */
    MSG_DIGEST,     /* A -> B: the buckets that differ */
    MSG_DELTA,      /* A -> B: records B lacks, and what A wants */
    MSG_DELTA_ACK,  /* B -> A: what A wanted */
    MSG_JUNK,       /* hostile: bytes that decode to nothing */
    MSG_RUMOR,      /* a record pushed at once (one-way), pushed on by whoever it is new to */
    MSG_PROBE_REQ,  /* requester -> helper: reach target (the indirect probe's body) */
    MSG_PROBE_ACK,  /* helper -> requester: reached or not */
    MSG_PING,       /* helper -> target */
    MSG_PONG,       /* target -> helper */
    MSG_DIGEST_ACK, /* B -> A: B's entries of the buckets asked, and which it covered */
} sim_msg_type_t;

typedef struct {
    uint32_t from, to;
    uint8_t type;
    uint32_t len;
    uint8_t body[];
} sim_msg_t;

typedef struct {
    uint32_t key; /* node index + 1; 0: empty */
    sos_fd_peer_t fd;
    uint64_t removed_version; /* this node removed the peer at this version (0: never) */
    uint64_t genesis_next;    /* no new exchange with this genesis node before (mono ms) */
    bool probation_failed;    /* a counted failure of it on probation was sampled (once) */
} sim_peer_t;

/*  An exchange a node started, in one of its SIM_XCHG_MAX slots: the core's exchange
    (node/sos_core_exchange.h: its state, req_id, deadline, buckets and piece asked,
    cursor), driven through the same transitions as the node's sos_peer_t's, and beside it
    what only the simulator needs. A slot serves one peer at a time, busy while its exchange
    is not idle; an idle slot stays with its last peer until another exchange takes it, so
    that an answer to a SYNC given up on still finds it (sos_exchange_late), and an
    exchange started again at once keeps its slot and its connection. */
typedef struct {
    bool used;         /* it has served a peer */
    uint32_t peer;     /* that peer's node index */
    uint64_t short_id; /* the short-lived connection it holds (sim_short_t's req_id), 0: none */
    sos_exchange_t ex;
} sim_xchg_t;

/*  A node's cursor through a bucket too large for one DIGEST_ACK at one peer (the core's,
    node/sos_core_digest.h). The node keeps it in its per-peer exchange; a simulated node
    has no per-peer struct for it, and few are needed: a table of SIM_CURSORS made at first
    use (so that runs without such buckets pay nothing), loaded into a slot's exchange when
    an exchange with that peer starts and stored back when it ends. */
typedef struct {
    uint32_t peer; /* node index + 1; 0: free */
    sos_piece_cursor_t c;
} sim_cursor_t;

#define SIM_CURSORS 4

#define SIM_XCHG_MAX 8

/*  With --active-view: the short-lived connections a node may hold at once, for exchanges
    with peers outside its active view (probes of suspects, genesis nodes not listed yet, one
    random member of the directory now and then). Each lasts from its SYNC until the
    exchange is over (done or failed; an exchange started again at once keeps it), as the
    node's DEALER is closed then. */
#define SIM_SHORT_MAX 4

typedef struct {
    uint64_t req_id; /* the exchange it was opened for; 0: free */
    uint32_t peer;
} sim_short_t;

typedef struct sim sim_t;

typedef struct {
    uint32_t idx;
    sos_identity_t id;
    char url[40];
    bool alive, genesis, hostile, ever_started;
    bool dead_key;    /* hostile: a fresh key made for --dead-keys; nothing answers at its url */
    uint32_t slow_ms; /* a slow node: work and timers late by up to this */
    uint8_t group;    /* partition group */
    sos_store_t *store;
    sos_txn_t *txn; /* the open write transaction (group commit), or NULL */
    bool commit_due;
    sim_msg_t **out; /* held until the commit that made them */
    size_t n_out, cap_out;
    uint64_t version; /* our record counter, committed in meta "version" */
    sos_record_t self;
    bool refute_pending;
    sos_fd_t fd;
    sim_peer_t *peers; /* open addressing by node index */
    size_t cap_peers, n_peers;
    uint32_t *view; /* node indexes of the workers listed (not ourselves) */
    size_t n_view, cap_view;
    uint64_t *in_view;    /* a bit per node index: in view[] (a merge asks at every worker) */
    uint32_t n_probation; /* workers of view[] never seen answering (no genesis node): the
                             core's probation count (node/sos_core_sync.h), kept as they come
                             and go */
    /*  Outcomes of its first exchanges with probation workers, which set its cap
        (sos_probation_cap), as the node keeps them. */
    sos_probation_t probation;
    uint32_t n_in_view_words;
    bool dirty;        /* the directory changed since the digest below was made */
    uint32_t *dig_idx; /* the digest: node index and version of each origin, in id order */
    uint64_t *dig_ver; /* (both in the simulator's scratch, valid after s_refresh_digest) */
    uint32_t n_dig;
    /*  The digest kept up to date by each write (s_dig_touch), by node index: what the
        store's origin table says, without reading all of it per exchange. */
    uint64_t *dig_has; /* a bit per node index: an origin of the directory */
    uint64_t *dig_at;  /* its max_version */
    uint32_t cap_dig_at;
    bool dig_reload; /* read the whole origin table again (after a start) */
    /*  Bucket sums kept for one bucket count, remade for the buckets that changed. */
    uint8_t (*sums)[16];
    uint64_t *sums_stale; /* a bit per bucket */
    uint32_t sums_nb;     /* 0: none kept */
    /*  With --cheap-digest: the digest's sum and its 1,024 finest buckets' sums, kept by
        s_dig_set (two 64-bit lanes each), and how many origins it has. */
    uint64_t msum[2];
    uint64_t (*fine)[2];
    uint32_t dig_count;
    uint8_t hash[SOS_DIGEST_HASH_BYTES];
    bool hash_stale; /* the digest was remade since hash was: hashed when a SYNC needs it */
    sim_xchg_t xchg[SIM_XCHG_MAX];
    sim_cursor_t *cursors; /* SIM_CURSORS of them, or NULL */
    uint64_t next_req;
    uint64_t epoch; /* bumped by a crash: events of an earlier life are ignored */
    /*  With --active-view: the peers this node keeps connections to (symmetric links, see
        node/sos_core_view.h) and the short-lived ones open now. */
    sos_core_view_t active;
    sim_short_t shorts[SIM_SHORT_MAX];
    uint32_t n_short;
    /*  Indirect probes (sos_fd.h) this node waits on, and PINGs it runs for others; made at
        the first use: most nodes of a run without loss never need them. */
    sos_fd_probes_t *probes;
    sos_fd_helps_t *helps;
    /*  Workers it removed lately, still named as suspects (node/sos_core_fd.h); made at
        the first removal. */
    sos_core_fd_removed_t *named_removed;
    /* counters */
    uint64_t bytes_sent, msgs_sent, dropped_bad, removals;
} sim_node_t;

typedef struct {
    uint64_t at, seq;
    uint8_t type;
    uint32_t node;
    uint64_t epoch;
    uint64_t arg;
    sim_msg_t *msg;
} sim_event_t;

/*  What a run is made of (from the command line). */
typedef struct {
    const char *scenario;
    uint32_t nodes, genesis, hostile;
    uint64_t seed;
    uint32_t rounds; /* how long the scenario runs after its changes */
    uint32_t interval_ms;
    uint32_t fanout;
    double loss, dup;
    uint32_t lat_min_ms, lat_max_ms;
    uint32_t join_window; /* rounds over which nodes join */
    bool cheap_crypto;
    bool cheap_digest; /* digest and bucket hashes as sums kept per change (sossim_node.c) */
    bool trace;
    uint32_t max_failures;
    bool active_view;       /* a bounded active view of connections instead of one per worker */
    uint32_t probe_helpers; /* helpers asked to reach a peer that missed an exchange (0: off) */
    uint32_t max_workers;   /* each node's --max-workers; 0: max(2 N + 64, 4096) */
    uint32_t dead_keys;     /* hostile: fresh worker keys each hostile peer sends a round */
} sim_opts_t;

struct sim {
    sim_opts_t o;
    sim_rng_t rng;
    uint64_t now, seq;
    sim_event_t *heap;
    size_t n_heap, cap_heap;
    sim_node_t *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *reg;               /* open addressing: node id -> index + 1 */
    sos_digest_entry_t *scratch; /* one digest expanded, to hash it */
    uint32_t cap_scratch;
    uint16_t *prefix; /* per node index: the first two bytes of its id (its digest bucket) */
    uint8_t (*pk)[SOS_NODEID_BYTES]; /* per node index: its id, packed (lookups, digests) */
    uint32_t *grp, *grp_start;       /* one digest's entries grouped by bucket (s_group) */
    uint32_t cap_grp;
    uint32_t *order;              /* node indexes in id order */
    uint32_t *dig_idx, dig_owner; /* the scratch digest (see sim_node_t) and whose it is */
    uint64_t *dig_ver;
    uint32_t cap_dig;
    bool check_digest; /* SOSSIM_CHECK_DIGEST set: compare each kept digest with the store */
    size_t cap_reg;
    sos_store_pool_t *pool;
    bool partitioned;
    crypto_generichash_state run; /* the run digest: every delivery, removal and check */
    sos_merge_ctx_t mctx;
    sos_fd_config_t fdc;
    uint64_t tombstone_ttl_ms;
    uint64_t violations;
    char first_violation[320];
    uint64_t false_removals, removals, merges_taken, records_sent;
    uint64_t dropped_loss, dropped_partition, dropped_dead;
    bool hostile_on;
    uint64_t hostile_msgs;
    uint64_t dead_keys_sent; /* --dead-keys: fresh worker records sent by hostile peers */
    uint8_t *captured[64];   /* stale records the hostile peers captured, to replay */
    size_t captured_len[64];
    size_t n_captured;
    char claim_hash[SOS_ROOMHASH_LEN + 1]; /* a room the hostile peers claim ("": none) */
    uint64_t claim_created_at;             /* the honest owner's created_at */
    /*  Connections (--active-view): the most any node held at once, the largest cap, and how
        links and short-lived connections came and went. */
    uint32_t conn_max, conn_cap_max;
    uint64_t links_opened, links_refused, links_evicted, links_failed, shorts_opened,
        shorts_refused;
    uint64_t removals_heard;    /* listed workers a peer's digest showed removed */
    uint64_t digests_by_bucket; /* exchanges diffed over a DIGEST_ACK's buckets */
    uint64_t digests_pieces;    /* of which over a piece of a too large bucket */
    uint64_t exchanges_again;   /* started again at once: a batch was cut (MORE), a DIGEST
                                   left buckets out, or a pass of pieces goes on */
    uint64_t exchanges_failed;  /* past a deadline (SYNC_ACK, DIGEST_ACK or DELTA_ACK) */
    uint64_t replies_late;      /* SYNC_ACKs to a SYNC given up on: an RTT sample each */
    uint32_t digest_max;        /* entries a DIGEST_ACK carries: SOS_DIGEST_MAX, or
                                   SOS_TEST_DIGEST_MAX as sosnode reads it */
    uint64_t probation_refused; /* new worker keys refused: probation at its cap */
    uint64_t probation_answered, probation_failed; /* samples pushed, all nodes */
    uint64_t probes_sent, probe_saves, probes_helped, probes_refused;
    sos_sign_impl_t sign_impl; /* --cheap-crypto's, set while the run lasts */
};

/*  sossim_node.c */
sos_rc sim_init(sim_t *sim, const sim_opts_t *o);
void sim_free(sim_t *sim);
/*  Add a node (not started); returns its index or UINT32_MAX. */
uint32_t sim_node_add(sim_t *sim, bool genesis, bool hostile);
/*  Start (or restart after a crash) a node: open its transaction, sign its record, schedule
    its first round within one interval. */
void sim_node_start(sim_t *sim, uint32_t idx);
/*  Start a node (not running) at virtual time at. */
void sim_node_start_at(sim_t *sim, uint32_t idx, uint64_t at);
/*  Crash: lose the open transaction and what waits for its commit; the committed store stays. */
void sim_node_crash(sim_t *sim, uint32_t idx);
/*  Run events up to virtual time t. */
void sim_run_until(sim_t *sim, uint64_t t);
/*  Record a violated invariant (the run fails; the first one is kept for the report). */
void sim_violation(sim_t *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*  Create a room at a live node: sign it with the next version and merge it (SOS_SRC_LOCAL). */
sos_rc sim_node_create_room(sim_t *sim, uint32_t idx, const char *room_hash, uint64_t created_at);
/*  The hostile peers' work for one round (flood, forgeries, stale replays, room claims). */
void sim_hostile_round(sim_t *sim);
/*  The directory hash of a node: its workers and rooms (origin, version, key), BLAKE2b-128. */
void sim_node_dir_hash(sim_t *sim, uint32_t idx, uint8_t out[16], uint64_t *workers,
                       uint64_t *rooms);
/*  The room -> origin node of a node's directory, for the ownership checks: calls fn per room. */
typedef void(sim_room_fn)(void *arg, const char *room_hash, uint32_t origin_idx);
void sim_node_rooms(sim_t *sim, uint32_t idx, sim_room_fn *fn, void *arg);
/*  The workers listed by a node (hostile ones and the dead not yet removed included). */
sos_rc sim_node_counts(sim_t *sim, uint32_t idx, uint64_t *workers);
uint32_t sim_lookup(const sim_t *sim, const uint8_t id[SOS_NODEID_BYTES]);

/*  The connections live nodes hold now: the most at one node and the mean. With
    --active-view: the active view plus the short-lived ones; without: one per worker listed,
    as sosnode holds one DEALER per worker. */
void sim_conn_now(sim_t *sim, uint32_t *max, double *mean);

/*  sossim_crypto.c: --cheap-crypto: on sets the keyed-hash signatures for the whole process
    (sos_sign_set_implementation, with sim as the hook's argument), off restores Ed25519. sim
    must stay where it is while they are set. */
void sim_crypto_cheap(sim_t *sim, bool on);

#endif
