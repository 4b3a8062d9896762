/*  sos_node_int.h: the node's internal state and the calls between its modules. Who owns
    what: the node (sos_node.c) is the reactor and the adapter to the outside, owning the
    sockets and loop, the output budgets, the pass (its LMDB transaction and queued output)
    and the counters (sos_stats_t); gossip (sos_gossip.c, its state in sos_gossip_t, defined
    in sos_gossip_int.h) owns the peers and every piece of gossip state, which others reach
    only through the sos_gossip_ functions below; rooms (sos_rooms.c, sos_rooms_t) owns the
    rooms. */
#ifndef SOS_NODE_INT_H
#define SOS_NODE_INT_H

#include <czmq.h>
#include <msgpack.h>
#include <sodium.h>

#include "sos_budget.h"
#include "sos_client.h"
#include "sos_config.h"
#include "sos_core_digest.h"
#include "sos_core_fd.h"
#include "sos_core_sync.h"
#include "sos_core_view.h"
#include "sos_core_exchange.h"
#include "sos_gate.h"
#include "sos_envelope.h"
#include "sos_fd.h"
#include "sos_gmsg.h"
#include "sos_http.h"
#include "sos_identity.h"
#include "sos_log.h"
#include "sos_merge.h"
#include "sos_mp.h"
#include "sos_node.h"

#define SOS_CURVE_CACHE 64 /* senders whose CURVE key is remembered: a power of 2 */

/*  A sender's node id and its CURVE key in hex ("" if the entry is unused): see
    sos_node_sender_key_ok. */
typedef struct {
    uint8_t id[SOS_NODEID_BYTES];
    char key[SOS_NODEID_HEX + 1];
} sos_curve_cache_t;
#include "sos_record.h"
#include "sos_store.h"

/*  Why an incoming frame or record was dropped; each has a counter shown by `status`. */
typedef enum {
    SOS_DROP_MALFORMED,          /* does not decode */
    SOS_DROP_OVERSIZED,          /* over a size ceiling */
    SOS_DROP_BAD_SIGNATURE,      /* an envelope or record signature does not verify */
    SOS_DROP_BAD_VERSION,        /* unknown protocol version, message type or record kind */
    SOS_DROP_REPLAY_WINDOW,      /* timestamp outside the window */
    SOS_DROP_NONCE_REUSED,       /* nonce seen before */
    SOS_DROP_WRONG_SENDER,       /* a reply signed by another node than the peer asked */
    SOS_DROP_UNEXPECTED,         /* a reply nobody waits for, or a message in the wrong place */
    SOS_DROP_SELF,               /* gossip claiming to be from this node */
    SOS_DROP_BAD_REQUEST,        /* a client request that does not decode */
    SOS_DROP_OUTPUT_FULL,        /* an outgoing frame over its connection's or the total byte
                                    budget, or to a connection whose pipe is full */
    SOS_DROP_CONNECTION_REFUSED, /* a connection past the total or per-address cap */
    SOS_DROP_WRONG_RECEIVER,     /* an envelope bound to another node, or wrongly to nobody */
    SOS_DROP_BEFORE_START,       /* an envelope dated before this node started (a replay) */
    SOS_DROP_BAD_ENDPOINT,       /* a record naming an endpoint this node may not connect to */
    SOS_DROP_OVER_BUDGET,        /* records whose verification the sender's budget cannot pay */
    SOS_DROP_TRANSPORT_KEY,      /* a gossip envelope from another node than the connection's
                                    CURVE key is (wrong_transport_key) */
    SOS_DROP_NULL_TRANSPORT,     /* a connection speaking another mechanism (NULL: version 2) */
    SOS_DROP_HANDSHAKE_REFUSED,  /* a CURVE handshake past the rate per address or in total */
    SOS_DROP_MAX
} sos_drop_t;

typedef struct {
    uint64_t rounds;
    uint64_t exchanges_ok;
    uint64_t exchanges_failed;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t rumors_in;
    uint64_t rumors_out;
    uint64_t records_sent;
    uint64_t workers_removed;
    uint64_t exchanges_started;   /* SYNCs sent to start an exchange */
    uint64_t round_started;       /* peers the last round picked (fanout, probes, genesis) */
    uint64_t suspects;            /* peers suspected here at the last round */
    uint64_t probes;              /* exchanges started with a suspect, beyond the fanout */
    uint64_t suspicions;          /* peers that became suspect here (a missed exchange) */
    uint64_t suspicions_withheld; /* missed exchanges not blamed: this node was lagging */
    uint64_t suspected;           /* SYNCs naming this node as a suspect at its version */
    uint64_t removals_heard;      /* listed workers a peer's digest showed removed */
    uint64_t digests_by_bucket;   /* exchanges diffed over a DIGEST_ACK's buckets */
    uint64_t digests_answered;    /* DIGESTs answered with our entries of their buckets */
    uint64_t digests_refused;     /* bucket sums, DIGESTs, DIGEST_ACKs refused as broken */
    uint64_t digests_pieces;      /* exchanges diffed over a piece of a too large bucket */
    uint64_t refutations;         /* own record re-signed to refute a suspicion */
    uint64_t health_late;         /* rounds or ticks that fired late (local health) */
    uint64_t probes_sent;         /* PROBE_REQs sent to helpers (indirect probes) */
    uint64_t probes_answered;     /* PROBE_ACKs taken from helpers we asked */
    uint64_t probe_saves;         /* missed exchanges cleared: a helper reached the peer */
    uint64_t down_again;          /* a DEALER found still down again: failed, not blamed */
    uint64_t probes_helped;       /* PROBE_REQs taken on as a helper */
    uint64_t probes_refused;      /* PROBE_REQs refused: rate, cap, unknown target or sender */
    uint64_t requests;
    uint64_t forwards;
    uint64_t forward_failures;
    uint64_t commits;
    uint64_t commits_lazy; /* of those, not waited for on disk (sos_node_txn_lazy) */
    uint64_t commit_failures;
    uint64_t sends;
    uint64_t send_dups;
    /* times the rooms' message-id tables reached their cap and were all dropped */
    uint64_t msgid_tables_dropped;
    uint64_t sockets_refused;    /* a DEALER could not be made (socket or file limit) */
    uint64_t connections_closed; /* DEALERs closed: least recently used at the cap, or idle */
    uint64_t connections_lost;   /* view members found with no connection at a tick, and
                                    exchanged with then (s_view_watch in sos_gossip.c) */
    uint64_t connections_capped; /* a connection refused: the cap held only busy peers */
    uint64_t view_joined;        /* peers that joined the active view (sos_gossip.c) */
    uint64_t view_left;          /* and left it: two failed exchanges, removal, a closed link */
    uint64_t view_renewed;       /* members replaced to keep the view a uniform sample */
    uint64_t short_opened;       /* DEALERs opened outside the view (probes, forwards, ...) */
    uint64_t short_closed;       /* and closed */
    uint64_t short_refused;      /* gossip that waited: SOS_SHORT_MAX short-lived were open */
    uint64_t exchanges_outside;  /* exchanges started with a worker outside the view */
    uint64_t suspicion_pushes;   /* exchanges started early to tell a new suspicion */
    uint64_t rounds_at_rest;     /* rounds that exchanged with one peer, not fanout */
    uint64_t rumors_deferred;    /* RUMORs not sent to a view member: its sending budget */
    uint64_t exchanges_deferred; /* exchanges put off for a later round: the same budget */
    uint64_t replies_late;       /* answers to SYNCs given up on: round-trip samples only */
    uint64_t gaps_dropped;       /* gap entries dropped: the table's cap, expiry, origin gone */
    uint64_t verifications;      /* Ed25519 verifications of envelopes and records */
    uint64_t envelopes_unsigned; /* envelopes taken on the word of a CURVE connection */
    uint64_t verify_skipped;     /* records not verified: held byte for byte, or stale */
    uint64_t verify_refused;     /* records not verified: the sender's budget was spent */
    uint64_t probation_refused;  /* new workers refused: every probation slot is taken */
    uint64_t refused_rate;       /* joins and sends over --client-rate */
    uint64_t refused_pending;    /* long polls and forwards over --max-pending(-total) */
    uint64_t members_idle;       /* quiet members removed to let a new one into a full room */
    uint64_t refused_create;     /* room creations inside the --rate-limit delays */
    uint64_t refused_full;       /* joins to a full room */
    uint64_t drops[SOS_DROP_MAX];
    uint64_t merges[SOS_MERGE_MAX];
    /* round trips of SYNC -> SYNC_ACK: count, sum (ms), and per bucket of
       SOS_EXCHANGE_BUCKETS_MS the number at or below it (`status` gossip_exchange_ms) */
    uint64_t exchange_count;
    uint64_t exchange_sum_ms;
    uint64_t exchange_hist[SOS_EXCHANGE_BUCKETS];
    sos_log_limit_t drop_log[SOS_DROP_MAX];   /* lines written about drops, per reason */
    sos_log_limit_t merge_log[SOS_MERGE_MAX]; /* lines about refused records, per result */
} sos_stats_t;

/*  Count one gossip exchange's round trip. */
static inline void
sos_stats_exchange_time(sos_stats_t *st, uint64_t ms)
{
    static const uint64_t bounds[SOS_EXCHANGE_BUCKETS] = SOS_EXCHANGE_BUCKETS_MS;
    st->exchange_count++;
    st->exchange_sum_ms += ms;
    for (int i = 0; i < SOS_EXCHANGE_BUCKETS; i++)
        if (ms <= bounds[i])
            st->exchange_hist[i]++;
}

typedef struct {
    struct _sos_node_t *node; /* the owner (borrowed) */
    char url[SOS_URL_MAX + 1];
    bool id_known;
    uint8_t id[SOS_NODEID_BYTES];
    char hex[SOS_NODEID_HEX + 1];
    bool is_genesis;
    bool pinned;     /* a genesis given as ID@ENDPOINT */
    bool id_heard;   /* a genesis: id is the one that last answered there (SYNCs are bound to it) */
    bool in_dir;     /* a worker of the directory (not only a genesis address or a forward) */
    zsock_t *dealer; /* NULL while closed (the open ones are bounded) */
    uint64_t created_mono;      /* when the DEALER was opened */
    bool down_counted;          /* the DEALER's "not connected" counted once (sos_gossip.c) */
    bool probe_soon;            /* newly named a suspect: probed at the next tick, not round */
    uint64_t remove_retry_mono; /* a removal that did not commit: the tick's next try */
    uint64_t last_used_mono;    /* last send or receive: the least recently used is closed */
    bool retired;               /* out of the tables; freed by sos_gossip_reap (sos_gossip.c) */
    uint64_t retired_tick;      /* the node's tick count when it was retired */
    bool removing;              /* its worker's deletion waits for the pass to commit */
    double verify_tokens;       /* record verifications it may still cost us (sos_gossip.c) */
    uint64_t verify_mono;       /* when verify_tokens was last refilled */
    double probe_tokens;        /* PROBE_REQs it may still send us (sos_gossip.c) */
    uint64_t probe_mono;        /* when probe_tokens was last refilled */
    /* failure counting (fd.fail_count): authoritative here, written to the store's local
       stats; suspicion from the first missed exchange until it answers, a newer record of
       it arrives, or it is removed; the round-trip estimate (sos_fd.h) */
    sos_fd_peer_t fd;
    uint64_t last_ok;   /* wall ms */
    uint64_t last_seen; /* wall ms */
    bool stats_dirty;
    uint64_t next_try_mono; /* genesis backoff */
    uint32_t ex_fails;      /* exchanges failed in a row, probes aside: the view drops it at 2 */
    bool probation_failed;  /* a counted failure of it on probation was sampled (once) */
    uint32_t view_listed;   /* workers listed when it joined the view (renewal, sos_gossip.c) */
    bool short_conn;        /* its open DEALER was opened short-lived (short_opened/closed) */
    uint64_t forward_mono;  /* last forward through its DEALER: kept open SOS_PEER_IDLE_MS */
    sos_exchange_t ex;      /* the exchange under way with it (sos_core_exchange.h) */

    /* CURVE (sos_peer_open): the id whose key the open DEALER requires; a forward's target
       whose id is not known is keyed by the id of the room record (sos_gossip_peer_for_url) */
    uint8_t dealer_key[SOS_NODEID_BYTES];
    bool fwd_id_set;
    uint8_t fwd_id[SOS_NODEID_BYTES];

    /* the DEALER is watched through its ZMQ_FD (sos_peer.c, "Reading a DEALER") */
    zloop_reader_fn *reader;
    zmq_pollitem_t item;
    bool read_again; /* input may wait that the descriptor will not signal: read it soon */
} sos_peer_t;

/*  What a queued frame is, which says what becomes of it when the pass's commit fails. */
typedef enum {
    SOS_OUT_PEER = 0, /* a gossip reply: dropped (the peer retries in a later round) */
    SOS_OUT_CLIENT,   /* a reply to a client, made in this pass's transaction: it may report
                         a write that is now lost or data read from it, so it becomes an
                         `unavailable` error to the same request id */
    SOS_OUT_RELAY,    /* a room owner's reply relayed to a client: sent as it is */
} sos_out_kind_t;

/*  An outgoing frame queued during a pass, sent after the pass commits. */
typedef struct {
    zsock_t *sock;
    zframe_t *routing; /* ROUTER: the client's routing id (owned); NULL on a DEALER */
    uint8_t *data;     /* owned: from sos_budget_alloc, charged to the connection */
    size_t size;
    uint64_t req_id; /* client replies: to rewrite on failure */
    sos_out_kind_t kind;
} sos_out_t;

/*  One pass of the reactor: everything received in one wake-up shares one write
    transaction (group commit), and replies leave only after it commits. */
typedef struct {
    bool active;
    sos_txn_t *txn;
    bool durable; /* the pass took its transaction through sos_node_txn: commit synced */
    bool wrote;
    sos_out_t *out;
    size_t n_out;
    size_t cap_out;
    /* records taken from rumors or made here, to push on at once */
    uint8_t (*rumor_wires)[SOS_RECORD_MAX];
    size_t *rumor_lens;
    size_t n_rumors;
    sos_peer_t *rumor_from;
    zlistx_t *woken_rooms; /* room hashes (owned strings) with new messages */
    zlistx_t *lost_rooms;  /* room hashes (owned strings) the merge gave to another owner:
                              the node hands them to the rooms module before the commit */
} sos_pass_t;

typedef struct _sos_rooms_t sos_rooms_t;
typedef struct _sos_gossip_t sos_gossip_t; /* sos_gossip_int.h: seen by sos_gossip.c only */

#define SOS_SENT_MAX 16 /* DEALERs remembered as sent on in one pass */

/*  The node: what its reactor needs itself. Gossip's state is in gossip (opaque here),
    the rooms' in rooms. */
struct _sos_node_t {
    sos_config_t cfg;
    sos_identity_t id;
    char id_hex[SOS_NODEID_HEX + 1];
    sos_store_t *store;
    zsock_t *router;
    sos_budget_t *budget;     /* output bytes held per connection (ROUTER and DEALERs) */
    sos_gate_t *gate;         /* connection caps on the ROUTER; NULL if the process has another */
    uint32_t max_connections; /* cfg's, lowered to fit the open files limit */
    zloop_t *loop;
    int round_timer;
    uint64_t start_mono;
    uint64_t start_floor_ms; /* envelopes dated before it are refused (wall ms, kept rising;
                                set before the bind, raised by sos_gossip_start) */
    sos_pass_t pass;
    sos_gossip_t *gossip; /* peers and gossip state (sos_gossip.c) */
    sos_rooms_t *rooms;
    sos_stats_t stats;
    msgpack_sbuffer buf;  /* scratch for encoding */
    msgpack_sbuffer buf2; /* scratch for encoding */
    /* the HTTP front end (sos_http.c): it reaches the ROUTER at `inproc` from a DEALER
       whose routing id is local_id, a random secret, which is how the ROUTER knows a
       request comes from this process and may carry its client's address */
    char inproc[64];
    uint8_t local_id[16];
    char conn_key[SOS_NODEID_HEX + 1]; /* the CURVE key (hex) of the connection the frame being
                                          handled came on; "" for none (sos_node_sender_key_ok) */
    bool conn_local; /* that connection is inproc (this process): no key to check */
    sos_curve_cache_t curve_cache[SOS_CURVE_CACHE]; /* by the id's first byte */
    sos_http_t *http;
    /* the reactor watches the ROUTER through its ZMQ_FD (see s_recv_router) */
    bool router_sent; /* the ROUTER sent since it was last drained or checked */
    int router_again; /* a zero-delay timer that runs a pass again, or -1 */
    /* DEALERs sent on since they were last read or checked (compared, never dereferenced;
       past SOS_SENT_MAX every open DEALER is checked) */
    zsock_t *dealers_sent[SOS_SENT_MAX];
    size_t n_dealers_sent;
    bool dealers_sent_many;
    int dealers_again; /* a zero-delay timer that reads the DEALERs marked read_again, or -1 */
};

/* --- sos_node.c: passes and output ------------------------------------------------ */

/*  The pass's write transaction, begun on first use. NULL (and a log line) if the store
    cannot begin one. The pass then commits durably (sos_txn_commit): what it acknowledges
    or signs survives a power cut. */
sos_txn_t *sos_node_txn(sos_node_t *self);
/*  The same transaction, for what needs no durability of its own: records of others
    merged from gossip (peers hold them and give them again), counters about peers, reads.
    A pass that only ever asked for it commits with sos_txn_commit_lazy, without waiting for
    the disk; any sos_node_txn in the same pass makes the whole commit durable. */
sos_txn_t *sos_node_txn_lazy(sos_node_t *self);
/*  Queue a frame for after the commit. Takes a copy of data, charged to the connection's
    output budget (sos_budget.h); takes ownership of *routing_p. A frame over the budget is
    not queued: it is counted and logged as an output_full drop. */
void sos_node_queue(sos_node_t *self, zsock_t *sock, zframe_t **routing_p, const void *data,
                    size_t size, uint64_t req_id, sos_out_kind_t kind);
void sos_node_drop(sos_node_t *self, sos_drop_t reason, const char *what);
/*  True if a gossip envelope from sender may come on the connection of the frame being
    handled: its CURVE key is the one derived from sender (or the node runs the test-only
    NULL transport). Else counts SOS_DROP_TRANSPORT_KEY, logs, and returns false. */
bool sos_node_sender_key_ok(sos_node_t *self, const uint8_t sender[SOS_NODEID_BYTES]);
/*  True if the connection of the frame being handled proves its sender: a CURVE connection,
    whose key sos_node_sender_key_ok then checks, or an inproc one from this process. An
    unsigned gossip envelope is taken only then. */
bool sos_node_transport_auth(sos_node_t *self);
void sos_node_pass_begin(sos_node_t *self);
void sos_node_pass_end(sos_node_t *self);
/*  A client reply (not gossip) arrived on peer's DEALER: the node hands it to the module
    that forwarded the request (sos_rooms_on_forward_reply). */
void sos_node_route_reply(sos_node_t *self, const sos_peer_t *peer, const uint8_t *frame,
                          size_t size);
/*  True while a module needs the connection to url kept open (a forward waits on it). */
bool sos_node_peer_busy(sos_node_t *self, const char *url);
/*  Sign a record as this node, store it and push it (sos_gossip_publish), for the modules
    that make records (rooms). */
sos_rc sos_node_publish(sos_node_t *self, sos_record_t *rec);
/*  Send a frame on a DEALER now; false (and nothing queued) if the peer is not connected,
    its pipe is full or the frame is over the connection's output budget (output_full). */
bool sos_node_send_now(sos_node_t *self, zsock_t *sock, const void *data, size_t size);
/*  Ask each open DEALER sent on since the last check for ZMQ_EVENTS, and read those with
    input waiting from the next turn of the loop (sos_peer.c, "Reading a DEALER"). Run at
    the end of every pass and after a send outside one. */
void sos_node_dealers_check(sos_node_t *self);
/*  Read the peers marked read_again from the next turn of the loop. */
void sos_node_read_again(sos_node_t *self);
/*  Send a frame to the client or peer at routing (borrowed) on the ROUTER now, without
    waiting for a commit, charged to its output budget. false if it was not sent: over the
    budget or a full pipe (counted as output_full), or the connection is gone. */
bool sos_node_reply_now(sos_node_t *self, const zframe_t *routing, const void *data, size_t size);

/* --- sos_gossip.c ------------------------------------------------------------------ */

/*  Gossip's state (sos_gossip_int.h) for node (borrowed: it must outlive the object), with
    empty peer tables and a digest to build. NULL without memory. */
sos_gossip_t *sos_gossip_new(sos_node_t *node);
/*  Free gossip's state, its peers (retired ones too) and their DEALERs. NULL-safe; nulls
    the caller's pointer. Called by the node's destroy, after the reactor's loop is gone. */
void sos_gossip_destroy(sos_gossip_t **self_p);
/*  The directory changed outside gossip (a room expired, tombstones swept, a commit
    failed): the digest is built anew before it is next used. */
void sos_gossip_dirty(sos_node_t *self);
/*  Begin gossip (once, after sos_gossip_new and before the loop runs): the genesis peers,
    the directory's workers as peers, our record signed anew, in a pass of its own. SOS_OK;
    SOS_ERR_NOMEM, SOS_ERR_INVALID (a bad SOS_TEST_DIGEST_MAX), or the store's error. */
sos_rc sos_gossip_start(sos_node_t *self);
/*  Tell the view's members and some other workers that this node leaves (LEAVE), inside a
    pass, when the loop has ended. The state stays until sos_gossip_destroy. */
void sos_gossip_stop(sos_node_t *self);
/*  An envelope frame received on the ROUTER (from a peer's DEALER). */
void sos_gossip_on_request(sos_node_t *self, zframe_t **routing_p, const uint8_t *frame,
                           size_t size);
/*  The round, the exchange timeouts, the stats flush. */
void sos_gossip_round(sos_node_t *self);
void sos_gossip_tick(sos_node_t *self);
/*  Input on a peer's DEALER, as the reactor handles it (sos_node_step). */
void sos_gossip_on_dealer(sos_node_t *self, zsock_t *dealer);
void sos_gossip_flush_stats(sos_node_t *self);
/*  Sign a record as this node (next version of the counter), store it, push it. */
sos_rc sos_gossip_publish(sos_node_t *self, sos_record_t *rec);
/*  Send queued rumors (called by pass_end after a commit). */
void sos_gossip_push_rumors(sos_node_t *self);
/*  The end of a pass: committed says whether its transaction committed. Peers whose
    worker was deleted in it are retired, or kept if the deletion was rolled back; our own
    record signed in it becomes the one SYNCs carry, or is forgotten. */
void sos_gossip_pass_end(sos_node_t *self, bool committed);
/*  Free retired peers: called outside any reader of their sockets, and before anything of
    the current iteration retires more (see "Peers" in sos_gossip.c). */
void sos_gossip_reap(sos_node_t *self);
/*  Peer for a url, created if absent, with its DEALER open (the least recently used idle
    peer is closed at the cap). id_hex (may be NULL) is the id of the node expected there,
    from a record it signed: its CURVE key, for a peer whose id is not known yet. NULL if
    the url is ours, no id is known, or on socket errors and at the cap (counted). The peer
    is borrowed until the end of the current pass. */
sos_peer_t *sos_gossip_peer_for_url(sos_node_t *self, const char *url, const char *id_hex);
/*  The peer's DEALER is open but cannot send (not connected): close it and connect anew
    at once, instead of after ZeroMQ's reconnect backoff, if it is older than min_age_ms and
    no exchange is under way on it. The peer stays borrowed; it may be left closed. */
void sos_gossip_peer_redial(sos_node_t *self, sos_peer_t *peer, uint64_t min_age_ms);
/*  Called for each peer in the table (retired ones are out of it) by
    sos_gossip_foreach_peer; non-zero stops the walk. The peer is borrowed until the end of
    the pass; fn must not add, retire or free peers. */
typedef int(sos_gossip_peer_fn)(void *arg, sos_peer_t *peer);
/*  Walk the peer table; returns the non-zero that stopped it, else 0. */
int sos_gossip_foreach_peer(sos_node_t *self, sos_gossip_peer_fn *fn, void *arg);
/*  The peer whose id (hex) is id_hex, or NULL. Borrowed until the end of the pass. */
sos_peer_t *sos_gossip_peer_find(sos_node_t *self, const char *id_hex);

/*  What `status` shows of gossip's state (its counters are the node's, sos_stats_t). */
typedef struct {
    uint64_t peers;          /* peers in the table (workers, genesis addresses, forwards) */
    uint64_t record_version; /* this node's record counter */
    uint64_t health;         /* local health multiplier (sos_fd.h) */
    uint64_t rtt_ms;         /* round trips to all peers: smoothed, and its variation */
    uint64_t rttvar_ms;
    uint64_t refute_ms; /* how long a refutation takes to get here: the suspicion floor */
    /* open DEALERs: all of them, those of the active view, the short-lived ones of gossip
       (exchanges outside the view, probes, PINGs), at most connections_short_max at once;
       the rest (open - view - short) are held for forwards */
    uint64_t connections_open;
    uint64_t connections_view;
    uint64_t connections_short;
    uint64_t connections_short_max;
    uint64_t view_size;
    uint64_t view_cap;
    uint64_t gaps; /* origins with a hole */
    /* workers listed that this node never exchanged with successfully ("Probation"), and
       probation's measure (sos_core_sync.h) */
    uint64_t workers_probation;
    uint64_t probation_cap;
    uint64_t probation_samples;
    uint64_t probation_answered;
    uint64_t probation_share_pct;
} sos_gossip_status_t;

/*  Fill *out with gossip's figures for `status`. */
void sos_gossip_status(sos_node_t *self, sos_gossip_status_t *out);

/* --- sos_rooms.c ------------------------------------------------------------------- */

sos_rooms_t *sos_rooms_new(sos_node_t *node);
void sos_rooms_destroy(sos_rooms_t **self_p);
/*  A room operation from a client (or a forwarding node). Takes *routing_p. */
void sos_rooms_on_request(sos_node_t *self, zframe_t **routing_p, const char *peer_address,
                          const sos_request_t *req);
/*  A reply to a request this node forwarded, received on peer's DEALER (borrowed); taken
    only if it answers a forward that went out on that peer. */
void sos_rooms_on_forward_reply(sos_node_t *self, const sos_peer_t *peer, const uint8_t *frame,
                                size_t size);
/*  After a commit: answer long polls of rooms that got messages. */
void sos_rooms_wake(sos_node_t *self);
/*  Store and forget the room state the pass's sends hold (sos_rooms.c, "Room state per
    pass"): before a pass commits, and before anything but a send is handled in one. */
void sos_rooms_forget_pass(sos_node_t *self);
void sos_rooms_tick(sos_node_t *self);
/*  True while a forward to the owner at url waits for its answer (or to be sent): its
    connection must stay open. */
bool sos_rooms_forwarding_to(sos_node_t *self, const char *url);
/*  Expire rooms whose time has come (directory and owned data). */
void sos_rooms_expire(sos_node_t *self);
/*  Another owner won a creation conflict for a room we owned. */
void sos_rooms_lost(sos_node_t *self, const char *room_hash);

#endif
