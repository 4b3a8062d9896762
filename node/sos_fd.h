/*  sos_fd.h: the failure detector of the gossip core: suspicion and its timeout, removal,
    exchange deadlines from round-trip estimates, local health, refutation. Pure decisions
    over plain state and times given by the caller: no clock, no socket, no store. */
#ifndef SOS_FD_H
#define SOS_FD_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_identity.h"

#define SOS_FD_CONFIRM_K      4    /* confirmations that bring a suspicion to its shortest */
#define SOS_FD_HEALTH_MAX     8    /* local health: timeouts stretch up to 9 times */
#define SOS_FD_HEALTH_DECAY   1000 /* ms: health falls by one per second on time */
#define SOS_FD_RTO_FLOOR      100  /* ms: no exchange deadline below this, whatever the RTT */
#define SOS_FD_CONFIRM_PREFIX 8    /* bytes of a confirming node's id that tell it apart */

/*  What the detector is tuned by (from sos_config_t). */
typedef struct {
    uint64_t interval_ms;         /* the gossip interval */
    uint64_t exchange_timeout_ms; /* the conservative exchange deadline (no RTT sample yet) */
    uint32_t max_failures;        /* failed exchanges, here and confirmed, before removal */
    uint32_t fanout;              /* peers a round exchanges with: how fast news spreads */
} sos_fd_config_t;

/*  The node's own side: its local health (Lifeguard), from timers that fire late. */
typedef struct {
    uint32_t health;             /* 0 healthy, up to SOS_FD_HEALTH_MAX (lagging) */
    uint64_t last_round_mono;    /* when the last round ran: its lateness feeds health */
    uint64_t health_mono;        /* when health last rose or fell: it falls once per second */
    uint64_t last_tick_mono;     /* when the last tick ran */
    uint64_t last_refute_mono;   /* refutations are rate-limited to one per interval */
    bool lagging;                /* a timer fired late since the last round */
    uint64_t srtt_ms, rttvar_ms; /* round trips to all peers as one estimate; 0: none */
} sos_fd_t;

/*  What this node knows of one peer's liveness. All zero: a peer never suspected, without
    an RTT sample. */
typedef struct {
    uint32_t fail_count;      /* failed exchanges in a row, here */
    bool probe;               /* named a suspect by another node: a candidate for a probe */
    uint64_t suspect_mono;    /* when the suspicion began; 0: not suspected here */
    uint64_t suspect_version; /* the version of its record the suspicion is about */
    uint8_t confirm[SOS_FD_CONFIRM_K][SOS_FD_CONFIRM_PREFIX]; /* other nodes that named it */
    uint32_t n_confirm;
    uint64_t srtt_ms, rttvar_ms; /* round-trip estimate as TCP's RTO (RFC 6298); 0: none */
} sos_fd_peer_t;

/*  How long a refutation takes to reach this node, with n the workers listed: the suspect
    hears of its suspicion, re-signs its record at its next round, and the new record
    spreads, each of those 1 + log_(fanout+1)(n) hops an interval plus a round trip as this
    node measures them (SRTT + 4 RTTVAR over all its peers' answers, at most the
    conservative exchange deadline E):
        S = (1 + log_(fanout+1)(max(n, 2))) * (I + min(RTO_all, E))
    On an idle network that is about the gossip spread time; on a busy machine, where
    answers come late, it grows with them. */
uint64_t sos_fd_refute_time(const sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t n_workers);

/*  How long a suspicion takes to reach every node, the part of S after the suspect's own
    round: log_(fanout+1)(max(n, 2)) * (I + min(RTO_all, E)). A suspicion named with an age
    starts here at most this much before it was named (sos_fd_named). */
uint64_t sos_fd_spread_time(const sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t n_workers);

/*  How long a suspicion of peer lasts before removal, with n the workers listed (Lifeguard):
        T(C) = I * ((F - 1) + 2 log10(max(n, 10)) * A(C)),  A(C) = 1 - log(C + 1) / log(K + 1)
    never below the exchange deadline, times (1 + health), and never below S
    (sos_fd_refute_time), which measures lateness itself and is not stretched again. */
uint64_t sos_fd_suspicion_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg,
                                  const sos_fd_peer_t *peer, uint64_t n_workers);

/*  True if peer may be removed at now: listed (a worker of the directory, not a genesis
    node), suspected, seen failing here at least once, its failures and confirmations
    together reach max_failures, and the suspicion has outlived its timeout. */
bool sos_fd_removable(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer,
                      bool listed, uint64_t n_workers, uint64_t now_mono);

/*  The deadline (ms from sending) of an exchange with peer: its RTO (SRTT + 4 RTTVAR) kept
    between a floor and the conservative default, times (1 + health). */
uint64_t sos_fd_exchange_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg,
                                 const sos_fd_peer_t *peer);

/*  How long a new connection to peer may take to come up before its first exchange counts
    as not sent: the conservative exchange deadline (peer NULL: always), as no round trip
    tells a connection still being made from a dead peer; for a suspect (suspected here, or named by
   others), 4 RTO_all (a TCP, a ZMTP and two CURVE round trips), between the RTO floor and that
    deadline. Times (1 + health). A suspect is being probed because others failed it, and
    every conservative deadline its probe waits delays the failures of its own that a
    removal needs: at 20 nodes and 200 ms, half a second per node that heard of it. */
uint64_t sos_fd_connect_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg,
                                const sos_fd_peer_t *peer);

/*  How long a helper waits for the PONG of a probe's target (peer, as the helper knows it)
    before it answers "not reached": its exchange deadline for the target if it has a round
    trip of it; else the connect deadline of a suspect (someone failed the target already)
    plus the RTO floor, at most the conservative deadline. Times (1 + health). Without a
    sample a helper waited the whole conservative deadline, and the verdict on a dead node
    with it: half a second at 200 ms. */
uint64_t sos_fd_reach_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg,
                              const sos_fd_peer_t *peer);

/*  Take one round-trip sample (ms) into peer's estimate and into the node's over all peers. */
void sos_fd_rtt_sample(sos_fd_t *fd, sos_fd_peer_t *peer, uint64_t rtt_ms);

/*  A timer of period ms fired late ms after it was due. True if that counts as lag: health
    rises at once (by one per round at most) and the node is lagging until the next round. */
bool sos_fd_lag(sos_fd_t *fd, uint64_t late, uint64_t period, uint64_t now_mono);

/*  A sign that this node itself is slow, other than a late timer: it had to refute a
    suspicion of itself, or a peer it failed to reach answered a helper (Lifeguard's local
    health). Health rises by one (once per round at most, as for lag) and the node is
    lagging until the next round. */
void sos_fd_doubt(sos_fd_t *fd, uint64_t now_mono);

/*  A round starts at now: its own lateness feeds health (true if it was late, as
    sos_fd_lag), and health falls by one per SOS_FD_HEALTH_DECAY of rounds on time. */
bool sos_fd_round(sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t now_mono);

/*  A tick of period ms runs at now: true if it was late (as sos_fd_lag). */
bool sos_fd_tick(sos_fd_t *fd, uint64_t period, uint64_t now_mono);

/*  The peer answered an exchange, or signed a record after its suspicion began: the
    suspicion is over. Keeps the RTT estimate. */
void sos_fd_clear(sos_fd_peer_t *peer);

/*  What became of a failed exchange (sos_fd_failure). */
typedef enum {
    SOS_FD_WITHHELD,  /* this node lags and nobody else suspects the peer: nobody is
                         blamed, the failure is not counted */
    SOS_FD_COUNTED,   /* counted; the suspicion, if any, was under way already */
    SOS_FD_SUSPECTED, /* counted, and a suspicion of a listed peer began at now */
} sos_fd_failure_t;

/*  An exchange with peer failed at now. listed: a worker of the directory (not only an
    address); genesis: a genesis node (never suspected, never withheld). held_version: the
    version of the peer's record held here, which a new suspicion is about. */
sos_fd_failure_t sos_fd_failure(const sos_fd_t *fd, sos_fd_peer_t *peer, bool listed, bool genesis,
                                uint64_t held_version, uint64_t now_mono);

/*  How long to wait before trying a genesis node that failed fail_count times in a row:
    the interval, doubled per failure, up to a minute. */
uint64_t sos_fd_genesis_backoff(const sos_fd_config_t *cfg, uint32_t fail_count);

/*  Another node (sender, its id's first bytes; NULL: not one to count) named peer a suspect
    at a version not older than held_version, the one held here, having suspected it for
    age_ms. The peer becomes a probe candidate, a suspicion starts if none is under way, and
    sender counts as a confirmation if distinct and fewer than K confirmed. A sender that
    counts dates the suspicion back by its age, at most cap_ms (sos_fd_spread_time): it
    began at now - min(age_ms, cap_ms), or earlier if it was under way already. Each node
    then times one suspicion from about its first node's start, not from when the news of
    it reached it, and the last nodes to hear remove about when the first do. */
void sos_fd_named(sos_fd_peer_t *peer, const uint8_t *sender, uint64_t held_version,
                  uint64_t age_ms, uint64_t cap_ms, uint64_t now_mono);

/*  How long peer has been suspected at now, in ms, for a SYNC to name (0 if it is not). */
uint32_t sos_fd_suspect_age(const sos_fd_peer_t *peer, uint64_t now_mono);

/*  What to do when another node names this node a suspect (sos_fd_refute). */
typedef enum {
    SOS_FD_REFUTE_OLD,     /* about an older record than ours: refuted already */
    SOS_FD_REFUTE_LIMITED, /* a refutation is pending, or one went out within an interval */
    SOS_FD_REFUTE,         /* re-sign our record (a higher version) at the next round; our
                              health rises (sos_fd_doubt) */
} sos_fd_refute_t;

/*  Named a suspect at version; own_version is our record's, pending whether a re-signing
    is due already. On SOS_FD_REFUTE the refutation is recorded at now. */
sos_fd_refute_t sos_fd_refute(sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t version,
                              uint64_t own_version, bool pending, uint64_t now_mono);

/* ---------------------------------------------------------- indirect probes ----

    SWIM's ping-req. Before a missed exchange makes a peer that is not suspected yet a suspect,
    the node asks up to --probe-helpers other live peers to reach it (PROBE_REQ); each helper
    sends the target a PING bound to it, and answers PROBE_ACK, reached or not, once a PONG
    signed by the target comes back or its deadline passes. One helper that reached it clears
    the failure; when none does (all said no, or the probe's deadline passed), the failure
    counts as any other. A failure of a peer already suspected counts at once: probes gate
    the start of a suspicion, not its course, so a dead node's removal is delayed by one
    probe deadline at most. Both tables are fixed arrays: nothing sized by the wire. */

#define SOS_FD_PROBE_HELPERS_MAX 8  /* --probe-helpers at most */
#define SOS_FD_PROBES_MAX        16 /* indirect probes this node waits on at once */
#define SOS_FD_HELPS_MAX         32 /* PINGs this node runs for others at once */

/*  An indirect probe of target under way: the helpers asked, each under its own req_id. */
typedef struct {
    bool used;
    uint8_t target[SOS_NODEID_BYTES];
    uint64_t deadline_mono;
    uint32_t n_helpers;
    uint8_t helper[SOS_FD_PROBE_HELPERS_MAX][SOS_NODEID_BYTES];
    uint64_t req_id[SOS_FD_PROBE_HELPERS_MAX]; /* random: nobody can guess one */
    bool answered[SOS_FD_PROBE_HELPERS_MAX];
} sos_fd_probe_t;

typedef struct {
    sos_fd_probe_t slot[SOS_FD_PROBES_MAX];
} sos_fd_probes_t;

/*  Start a probe of target, due at deadline_mono. The slot (owned by probes) to add helpers
    to; NULL if one of target is under way already or every slot is taken. */
sos_fd_probe_t *sos_fd_probe_begin(sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES],
                                   uint64_t deadline_mono);

/*  Record that helper was asked under req_id. False (nothing recorded) if the probe holds
    SOS_FD_PROBE_HELPERS_MAX helpers already. */
bool sos_fd_probe_add(sos_fd_probe_t *probe, const uint8_t helper[SOS_NODEID_BYTES],
                      uint64_t req_id);

/*  True if a probe of target is under way. */
bool sos_fd_probe_pending(const sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES]);

/*  End the probe of target, if any (it answered directly, or no helper could be asked). */
void sos_fd_probe_end(sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES]);

/*  What a PROBE_ACK means (sos_fd_probe_ack). */
typedef enum {
    SOS_FD_ACK_UNKNOWN, /* not from a helper asked, not for a req_id sent, or answered already */
    SOS_FD_ACK_WAIT,    /* this helper did not reach it; others may still */
    SOS_FD_ACK_FAILED,  /* every helper asked said no: the probe is over, the failure counts */
    SOS_FD_ACK_REACHED, /* a helper reached it: the probe is over, the failure is cleared */
} sos_fd_ack_t;

/*  A PROBE_ACK from helper for req_id about target. Taken once per helper and req_id, and
    only if target is the probe's. On FAILED and REACHED the slot is freed and its target
    copied to out_target. */
sos_fd_ack_t sos_fd_probe_ack(sos_fd_probes_t *probes, const uint8_t helper[SOS_NODEID_BYTES],
                              uint64_t req_id, const uint8_t target[SOS_NODEID_BYTES], bool reached,
                              uint8_t out_target[SOS_NODEID_BYTES]);

/*  Free one probe whose deadline passed at now, copying its target to out_target. False if
    none did. */
bool sos_fd_probe_expired(sos_fd_probes_t *probes, uint64_t now_mono,
                          uint8_t out_target[SOS_NODEID_BYTES]);

/*  A PING this node sends for another node (requester) to target. */
typedef struct {
    bool used;
    uint8_t requester[SOS_NODEID_BYTES];
    uint64_t req_id; /* the requester's, echoed in the PROBE_ACK */
    uint8_t target[SOS_NODEID_BYTES];
    uint64_t ping_id; /* ours, random, echoed in the PONG */
    uint64_t deadline_mono;
} sos_fd_help_t;

typedef struct {
    sos_fd_help_t slot[SOS_FD_HELPS_MAX];
} sos_fd_helps_t;

/*  Take on a probe: the slot's index, or -1 if every slot is taken or requester has one
    under way with the same req_id. */
int sos_fd_help_begin(sos_fd_helps_t *helps, const uint8_t requester[SOS_NODEID_BYTES],
                      uint64_t req_id, const uint8_t target[SOS_NODEID_BYTES], uint64_t ping_id,
                      uint64_t deadline_mono);

/*  A PONG from target for ping_id: the slot's index (still taken: read it, then
    sos_fd_help_end), or -1 if no PING of ours waits for it. */
int sos_fd_help_pong(const sos_fd_helps_t *helps, const uint8_t target[SOS_NODEID_BYTES],
                     uint64_t ping_id);

/*  The index of a slot whose deadline passed at now (still taken), or -1. */
int sos_fd_help_expired(const sos_fd_helps_t *helps, uint64_t now_mono);

/*  Free slot i. */
void sos_fd_help_end(sos_fd_helps_t *helps, int i);

#endif
