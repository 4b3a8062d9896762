/*  sos_core_exchange.c: the transitions of one gossip exchange (see the table in
    sos_core_exchange.h). */
#include <string.h>

#include "sos_core_exchange.h"

sos_exchange_do_t
sos_exchange_pick(const sos_exchange_t *ex, bool open)
{
    if (ex->state != SOS_EX_IDLE && ex->state != SOS_EX_CONNECTING)
        return SOS_EX_DO_NOTHING;
    return open ? SOS_EX_DO_SYNC : SOS_EX_DO_OPEN;
}

void
sos_exchange_connecting(sos_exchange_t *ex, uint64_t opened_mono, uint64_t timeout_ms)
{
    ex->state = SOS_EX_CONNECTING;
    ex->deadline_mono = opened_mono + timeout_ms;
}

void
sos_exchange_sync_sent(sos_exchange_t *ex, uint64_t req_id, uint64_t now_mono, uint64_t timeout_ms)
{
    ex->state = SOS_EX_WAIT_SYNC_ACK;
    ex->req_id = req_id;
    ex->again = false;
    ex->sent_mono = now_mono;
    ex->deadline_mono = now_mono + timeout_ms;
}

sos_exchange_do_t
sos_exchange_not_sent(sos_exchange_t *ex, uint64_t opened_mono, uint64_t timeout_ms,
                      uint64_t now_mono)
{
    ex->again = false;
    if (now_mono - opened_mono > timeout_ms)
        return SOS_EX_DO_FAIL;
    sos_exchange_connecting(ex, opened_mono, timeout_ms);
    return SOS_EX_DO_NOTHING;
}

sos_exchange_do_t
sos_exchange_reply(const sos_exchange_t *ex, sos_exchange_reply_t kind, uint64_t req_id)
{
    sos_exchange_state_t want = kind == SOS_EX_REPLY_DELTA_ACK    ? SOS_EX_WAIT_DELTA_ACK
                                : kind == SOS_EX_REPLY_DIGEST_ACK ? SOS_EX_WAIT_DIGEST_ACK
                                                                  : SOS_EX_WAIT_SYNC_ACK;
    /*  req_id 0 is never sent: it cannot match an idle exchange's. */
    if (ex->state != want || req_id != ex->req_id || req_id == 0)
        return SOS_EX_DO_DROP;
    return SOS_EX_DO_TAKE;
}

sos_exchange_do_t
sos_exchange_sync_ack(sos_exchange_t *ex, bool in_sync)
{
    if (!in_sync)
        return SOS_EX_DO_DELTA;
    ex->state = SOS_EX_IDLE;
    ex->req_id = 0;
    return SOS_EX_DO_DONE;
}

sos_exchange_do_t
sos_exchange_sums(sos_exchange_t *ex, uint32_t n_differ)
{
    if (n_differ)
        return SOS_EX_DO_DIGEST;
    ex->state = SOS_EX_IDLE;
    ex->req_id = 0;
    return SOS_EX_DO_DONE;
}

void
sos_exchange_digest_sent(sos_exchange_t *ex, uint64_t req_id, uint32_t nb, const uint16_t *asked,
                         uint32_t n, const sos_bucket_piece_t *piece, bool more, uint64_t now_mono,
                         uint64_t timeout_ms)
{
    ex->state = SOS_EX_WAIT_DIGEST_ACK;
    ex->again = more;
    ex->req_id = req_id;
    ex->deadline_mono = now_mono + timeout_ms;
    ex->nb = nb;
    memset(ex->asked, 0, sizeof ex->asked);
    for (uint32_t i = 0; i < n; i++)
        if (asked[i] < nb && asked[i] < SOS_BUCKETS_MAX)
            ex->asked[asked[i] / 64] |= 1ULL << (asked[i] % 64);
    ex->piece_asked = piece != NULL;
    if (piece)
        ex->piece = *piece;
}

sos_exchange_do_t
sos_exchange_digest_ack(sos_exchange_t *ex, const uint16_t *covered, uint32_t n_covered,
                        const sos_bucket_piece_t *piece)
{
    if (sos_piece_cursor_answered(&ex->cursor, ex->nb, ex->asked, covered, n_covered,
                                  ex->piece_asked ? piece : NULL))
        ex->again = true;
    ex->piece_asked = false;
    return SOS_EX_DO_DELTA;
}

void
sos_exchange_delta_sent(sos_exchange_t *ex, uint64_t req_id, bool more, uint64_t now_mono,
                        uint64_t timeout_ms)
{
    ex->state = SOS_EX_WAIT_DELTA_ACK;
    ex->req_id = req_id;
    ex->again = ex->again || more; /* sync_sent cleared it; a DIGEST may have set it */
    ex->deadline_mono = now_mono + timeout_ms;
}

sos_exchange_do_t
sos_exchange_delta_ack(sos_exchange_t *ex, bool more)
{
    bool again = ex->again || more;
    ex->state = SOS_EX_IDLE;
    ex->req_id = 0;
    return again ? SOS_EX_DO_SYNC : SOS_EX_DO_DONE;
}

sos_exchange_do_t
sos_exchange_tick(const sos_exchange_t *ex, uint64_t now_mono)
{
    if (ex->state == SOS_EX_CONNECTING)
        return SOS_EX_DO_SYNC;
    if (ex->state != SOS_EX_IDLE && now_mono >= ex->deadline_mono)
        return SOS_EX_DO_FAIL;
    return SOS_EX_DO_NOTHING;
}

void
sos_exchange_failed(sos_exchange_t *ex)
{
    if (ex->state == SOS_EX_WAIT_SYNC_ACK && ex->req_id) {
        ex->late_req_id = ex->req_id;
        ex->late_sent_mono = ex->sent_mono;
    }
    ex->state = SOS_EX_IDLE;
    ex->req_id = 0;
    ex->again = false;
}

bool
sos_exchange_late(sos_exchange_t *ex, sos_exchange_reply_t kind, uint64_t req_id, uint64_t now_mono,
                  uint64_t *rtt_ms)
{
    if (kind != SOS_EX_REPLY_SYNC_ACK || req_id == 0 || req_id != ex->late_req_id)
        return false;
    ex->late_req_id = 0;
    *rtt_ms = now_mono > ex->late_sent_mono ? now_mono - ex->late_sent_mono : 0;
    return true;
}

const char *
sos_exchange_state_name(sos_exchange_state_t state)
{
    switch (state) {
    case SOS_EX_IDLE:
        return "idle";
    case SOS_EX_WAIT_SYNC_ACK:
        return "wait_sync_ack";
    case SOS_EX_WAIT_DELTA_ACK:
        return "wait_delta_ack";
    case SOS_EX_CONNECTING:
        return "connecting";
    case SOS_EX_WAIT_DIGEST_ACK:
        return "wait_digest_ack";
    }
    return "?";
}
