/*  sos_core_sync.c: the decisions of an anti-entropy exchange (what a DELTA and a
    DELTA_ACK carry, which records are worth a signature check, what a named suspect
    means), shared by the node and the simulator. */
#include <stdlib.h>
#include <string.h>

#include "sos_core_sync.h"

static void
s_batch_init(const sos_sync_ctx_t *ctx, sos_sync_delta_t *out)
{
    memset(out, 0, sizeof *out);
    out->batch.max_bytes = ctx->max_bytes;
}

sos_rc
sos_core_sync_delta(const sos_sync_ctx_t *ctx, sos_txn_t *txn, sos_digest_entry_t *mine,
                    uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs,
                    sos_sync_delta_t *out)
{
    s_batch_init(ctx, out);
    /*  give has at most one entry per origin of ours, want and removed one per origin of
        theirs (bounded by the decoder): nothing here is sized by more than the two digests. */
    sos_digest_entry_t *give = calloc(n_mine ? n_mine : 1, sizeof *give);
    out->want = calloc(n_theirs ? n_theirs : 1, sizeof *out->want);
    out->removed = calloc(n_theirs ? n_theirs : 1, sizeof *out->removed);
    if (!give || !out->want || !out->removed) {
        free(give);
        sos_sync_delta_release(out);
        return SOS_ERR_NOMEM;
    }
    uint32_t n_give = 0;
    sos_digest_diff(ctx->self_id, mine, n_mine, theirs, n_theirs, give, &n_give, out->want,
                    &out->n_want, out->removed, &out->n_removed);
    sos_digest_collect(ctx->gaps, txn, give, n_give, &out->batch);
    free(give);
    out->more = out->batch.full;
    return SOS_OK;
}

sos_rc
sos_core_sync_delta_ack(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_digest_entry_t *want,
                        uint32_t n_want, sos_sync_delta_t *out)
{
    s_batch_init(ctx, out);
    sos_digest_collect(ctx->gaps, txn, want, n_want, &out->batch);
    out->more = out->batch.full;
    return SOS_OK;
}

void
sos_sync_delta_release(sos_sync_delta_t *out)
{
    if (!out)
        return;
    sos_batch_release(&out->batch);
    free(out->want);
    free(out->removed);
    memset(out, 0, sizeof *out);
}

sos_rc
sos_core_sync_triage(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_record_t *records,
                     uint32_t n, uint8_t *checks, sos_sync_triage_t *count)
{
    memset(count, 0, sizeof *count);
    if (!n)
        return SOS_OK;
    sos_record_t *have = malloc(sizeof *have);
    if (!have)
        return SOS_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        sos_check_t c =
            sos_core_check_record(txn, ctx->self_id, ctx->allow_private, &records[i], have);
        checks[i] = (uint8_t)c;
        switch (c) {
        case SOS_CHECK_VERIFY:
            count->verify++;
            break;
        case SOS_CHECK_HELD:
            count->held++;
            break;
        case SOS_CHECK_STALE:
            count->stale++;
            break;
        case SOS_CHECK_TOMBSTONED:
            count->tombstoned++;
            break;
        case SOS_CHECK_ENDPOINT:
            count->endpoint++;
            break;
        }
    }
    free(have);
    return SOS_OK;
}

sos_rc
sos_core_sync_verify(const sos_record_t *records, uint32_t n, const uint8_t *checks,
                     sos_sync_verified_fn *verified, void *arg, uint32_t *n_checked)
{
    uint32_t k = 0;
    sos_rc rc = SOS_OK;
    sos_record_t *tmp = NULL;
    for (uint32_t i = 0; i < n && rc == SOS_OK; i++) {
        if (checks[i] != SOS_CHECK_VERIFY || (verified && verified(arg, &records[i])))
            continue;
        if (!tmp && !(tmp = malloc(sizeof *tmp))) {
            rc = SOS_ERR_NOMEM;
            break;
        }
        k++;
        /*  Decoding the bytes again checks the signature and every bound. */
        if (sos_record_decode(tmp, records[i].wire, records[i].wire_len) != SOS_OK)
            rc = SOS_ERR_SIGNATURE;
    }
    free(tmp);
    if (n_checked)
        *n_checked = k;
    return rc;
}

bool
sos_core_sync_settle(sos_gaps_t *gaps, sos_txn_t *txn, const sos_record_t *records, uint32_t n,
                     const uint8_t *checks, uint64_t now_mono)
{
    bool changed = false;
    for (uint32_t i = 0; gaps && i < n; i++) {
        if (checks[i] != SOS_CHECK_VERIFY && checks[i] != SOS_CHECK_HELD)
            continue; /* not verified: its version tells nothing */
        if (sos_gaps_settle(gaps, txn, &records[i], now_mono))
            changed = true;
    }
    return changed;
}

sos_named_t
sos_core_sync_named(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_digest_entry_t *named,
                    bool listed, uint64_t *held)
{
    uint64_t h = 0;
    sos_dir_held_max(txn, named->origin, &h);
    if (held)
        *held = h;
    if (memcmp(named->origin, ctx->self_id, SOS_NODEID_BYTES) == 0)
        return SOS_NAMED_REFUTE;
    /*  A suspicion about an older record than we hold from the suspect is refuted by it. */
    if (!listed || named->version < h)
        return SOS_NAMED_IGNORE;
    return SOS_NAMED_SUSPECT;
}
