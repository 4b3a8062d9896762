/*  sos_core_exchange.h: one anti-entropy exchange with a peer as a state machine of the
    gossip core: the transitions of SYNC -> SYNC_ACK (-> DIGEST -> DIGEST_ACK) -> DELTA ->
    DELTA_ACK and their deadlines, as functions that take what happened and say what to do
    next. No frames, no clock, no socket: the caller encodes, sends and reads the time.

        state            event                    action                        next
        IDLE             picked, connected        send SYNC                     WAIT_SYNC_ACK
        IDLE             picked, not connected    open the connection           CONNECTING
        CONNECTING       tick                     send SYNC                     WAIT_SYNC_ACK
        any              SYNC not sent, the       failure                       IDLE
                         connection older than
                         the conservative deadline
        any              SYNC not sent, younger   wait for it                   CONNECTING
        WAIT_SYNC_ACK    SYNC_ACK, in sync        success                       IDLE
        WAIT_SYNC_ACK    SYNC_ACK with digest     success; send DELTA           WAIT_DELTA_ACK
        WAIT_SYNC_ACK    SYNC_ACK with bucket     success; send DIGEST naming   WAIT_DIGEST_ACK
                         sums, some differ        the buckets that differ
        WAIT_SYNC_ACK    SYNC_ACK with bucket     success                       IDLE
                         sums, none differs
        WAIT_SYNC_ACK    SYNC_ACK with bucket     success; send DIGEST asking   WAIT_DIGEST_ACK
                         sums, the cursor's       the cursor's piece alone
                         bucket differs
        WAIT_DIGEST_ACK  DIGEST_ACK (entries of   send DELTA over the buckets   WAIT_DELTA_ACK
                         buckets asked)           and the piece it covered;
                                                  move the cursor
        WAIT_DELTA_ACK   DELTA_ACK                apply; if either side had     IDLE, or
                                                  more, or buckets that differ  WAIT_SYNC_ACK
                                                  were left out, or a bucket's
                                                  pass of pieces goes on, SYNC
                                                  again at once
        WAIT_*           deadline passes          failure                       IDLE
        any              a reply not awaited      drop it (unexpected)          unchanged */
#ifndef SOS_CORE_EXCHANGE_H
#define SOS_CORE_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_core_digest.h"
#include "sos_gmsg.h"

typedef enum {
    SOS_EX_IDLE,
    SOS_EX_WAIT_SYNC_ACK,
    SOS_EX_WAIT_DELTA_ACK,
    SOS_EX_CONNECTING,      /* picked for an exchange, its connection just opened: SYNC once up */
    SOS_EX_WAIT_DIGEST_ACK, /* a DIGEST asked for the entries of the buckets that differ */
} sos_exchange_state_t;

/*  The kinds of reply an exchange waits for. */
typedef enum {
    SOS_EX_REPLY_SYNC_ACK = 0,
    SOS_EX_REPLY_DELTA_ACK = 1,
    SOS_EX_REPLY_DIGEST_ACK = 2,
} sos_exchange_reply_t;

/*  The exchange with one peer. All zero: idle. */
typedef struct {
    sos_exchange_state_t state;
    uint64_t req_id;        /* the request whose reply we wait for; 0: none */
    uint64_t sent_mono;     /* when the SYNC left: where the round trip starts */
    uint64_t deadline_mono; /* when a state other than IDLE fails */
    bool again;             /* start another exchange at once (a batch was truncated) */
    uint64_t late_req_id;   /* the last SYNC given up on: its answer may still come */
    uint64_t late_sent_mono;
    uint32_t nb;                          /* WAIT_DIGEST_ACK: the bucket count asked in */
    uint64_t asked[SOS_BUCKETS_MAX / 64]; /* and the buckets asked, bit b of word b / 64 */
    bool piece_asked;                     /* and the piece asked, if any */
    sos_bucket_piece_t piece;
    sos_piece_cursor_t cursor; /* through a bucket too large for one answer; kept across
                                  exchanges with this peer (sos_core_digest.h) */
} sos_exchange_t;

/*  What the caller does next. */
typedef enum {
    SOS_EX_DO_NOTHING,
    SOS_EX_DO_OPEN,   /* open the connection, then sos_exchange_connecting */
    SOS_EX_DO_SYNC,   /* send a SYNC, then sos_exchange_sync_sent or sos_exchange_not_sent */
    SOS_EX_DO_DELTA,  /* count a success; send a DELTA, then sos_exchange_delta_sent or
                         sos_exchange_failed */
    SOS_EX_DO_DONE,   /* count a success; the exchange is over */
    SOS_EX_DO_FAIL,   /* count a failure (the exchange is over, idle) */
    SOS_EX_DO_DROP,   /* a reply nobody waits for: drop it, count it unexpected */
    SOS_EX_DO_TAKE,   /* a reply awaited: decode its records, then sos_exchange_sync_ack,
                         sos_exchange_sums, sos_exchange_digest_ack or sos_exchange_delta_ack */
    SOS_EX_DO_DIGEST, /* count a success; send a DIGEST, then sos_exchange_digest_sent or
                         sos_exchange_failed */
} sos_exchange_do_t;

/*  Picked for an exchange: DO_SYNC if open (the connection exists), DO_OPEN if not; DO_NOTHING
    if an exchange is under way (but for CONNECTING, which retries its SYNC). */
sos_exchange_do_t sos_exchange_pick(const sos_exchange_t *ex, bool open);

/*  The connection was opened at opened_mono: wait for it until the conservative deadline. */
void sos_exchange_connecting(sos_exchange_t *ex, uint64_t opened_mono, uint64_t timeout_ms);

/*  The SYNC req_id left at now; its answer is due timeout_ms later. */
void sos_exchange_sync_sent(sos_exchange_t *ex, uint64_t req_id, uint64_t now_mono,
                            uint64_t timeout_ms);

/*  The SYNC could not leave (not connected). A connection opened at opened_mono, less than
    timeout_ms (the conservative deadline) ago, may still be connecting: CONNECTING, and
    DO_NOTHING. Older: DO_FAIL (idle). */
sos_exchange_do_t sos_exchange_not_sent(sos_exchange_t *ex, uint64_t opened_mono,
                                        uint64_t timeout_ms, uint64_t now_mono);

/*  A reply of kind arrived. DO_TAKE if it is the one awaited (kind and req_id), else
    DO_DROP. State unchanged. */
sos_exchange_do_t sos_exchange_reply(const sos_exchange_t *ex, sos_exchange_reply_t kind,
                                     uint64_t req_id);

/*  The awaited SYNC_ACK, in sync or with the whole digest: DO_DONE (idle) if in sync, else
    DO_DELTA. */
sos_exchange_do_t sos_exchange_sync_ack(sos_exchange_t *ex, bool in_sync);

/*  The awaited SYNC_ACK with bucket sums, of which n_differ differ from ours (and fit the
    DIGEST): DO_DIGEST, or DO_DONE (idle) if none does. */
sos_exchange_do_t sos_exchange_sums(sos_exchange_t *ex, uint32_t n_differ);

/*  The DIGEST req_id left at now, asking for the buckets asked[0..n) of nb (each < nb, nb
    at most SOS_BUCKETS_MAX) and the piece (NULL: none; sos_piece_cursor_ask on ex->cursor
    gives it); its answer is due timeout_ms later: WAIT_DIGEST_ACK. more: buckets that
    differ were left out, so the exchange is started again once it ends, as for a
    truncated batch. */
void sos_exchange_digest_sent(sos_exchange_t *ex, uint64_t req_id, uint32_t nb,
                              const uint16_t *asked, uint32_t n, const sos_bucket_piece_t *piece,
                              bool more, uint64_t now_mono, uint64_t timeout_ms);

/*  The awaited DIGEST_ACK, checked by the caller against ex->asked and ex->piece
    (sos_digest_buckets_check): it covered the whole buckets covered[0..n_covered) and the
    piece (NULL: none asked). Moves the cursor (sos_piece_cursor_answered), and marks the
    exchange to start again at once if a pass of pieces goes on. DO_DELTA: the caller diffs
    over what was covered and sends the DELTA. */
sos_exchange_do_t sos_exchange_digest_ack(sos_exchange_t *ex, const uint16_t *covered,
                                          uint32_t n_covered, const sos_bucket_piece_t *piece);

/*  The DELTA req_id left at now; more: its batch was truncated (or the DIGEST before it
    left buckets out). */
void sos_exchange_delta_sent(sos_exchange_t *ex, uint64_t req_id, bool more, uint64_t now_mono,
                             uint64_t timeout_ms);

/*  The awaited DELTA_ACK (more: the peer's batch was truncated): idle, and DO_SYNC if
    either side had more to send, else DO_DONE. */
sos_exchange_do_t sos_exchange_delta_ack(sos_exchange_t *ex, bool more);

/*  A tick at now: DO_SYNC for a CONNECTING exchange (try the SYNC again), DO_FAIL for a
    waiting one past its deadline (the caller then calls sos_exchange_failed), else
    DO_NOTHING. */
sos_exchange_do_t sos_exchange_tick(const sos_exchange_t *ex, uint64_t now_mono);

/*  The exchange failed, or the peer is retired: idle. A SYNC that was waiting for its answer
    is remembered, so that the answer, if it comes, still measures the round trip. */
void sos_exchange_failed(sos_exchange_t *ex);

/*  A reply that is not awaited (sos_exchange_reply said DO_DROP): true if it is a SYNC_ACK
    and answers the
    SYNC last given up on, with the round trip from that SYNC in *rtt_ms. Once per SYNC.
    The deadline was too short for this peer, and TCP's estimator learns from such samples
    (each req_id is sent once, so the sample is not ambiguous, unlike a retransmission's):
    without them a node whose answers all come late keeps an estimate from before it
    slowed down, and fails every exchange with it. */
bool sos_exchange_late(sos_exchange_t *ex, sos_exchange_reply_t kind, uint64_t req_id,
                       uint64_t now_mono, uint64_t *rtt_ms);

/*  A short name of a state, for logs and tests. */
const char *sos_exchange_state_name(sos_exchange_state_t state);

#endif
