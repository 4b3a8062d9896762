/*  sos_core_sync.c: the decisions of an anti-entropy exchange (what a DELTA and a
    DELTA_ACK carry, which records are worth a signature check, what becomes of a
    verified record, what a named suspect means), shared by the node and the simulator. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sos_core_sync.h"
#include "sos_endpoint.h"

bool
sos_core_sync_in_sync(const uint8_t ours[SOS_DIGEST_HASH_BYTES], uint32_t n_ours,
                      const uint8_t theirs[SOS_DIGEST_HASH_BYTES], uint32_t n_theirs)
{
    return n_ours == n_theirs && sodium_memcmp(ours, theirs, SOS_DIGEST_HASH_BYTES) == 0;
}

bool
sos_core_sync_self_ok(const sos_record_t *self_rec, const uint8_t sender[SOS_NODEID_BYTES])
{
    return self_rec->kind == SOS_REC_WORKER &&
           memcmp(self_rec->origin, sender, SOS_NODEID_BYTES) == 0;
}

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
        theirs, which the decoder bounds: nothing here is sized by more than that bound. */
    if (n_theirs > SOS_DIGEST_MAX)
        return SOS_ERR_TOO_LARGE;
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

/*  Probation. A worker record costs its maker one signature under a fresh key, so caps
    alone let a few strangers fill --max-workers on every node with workers that do not
    exist. A worker this node has never exchanged with successfully is on probation, and a
    new worker key is refused while as many as the cap are: until a probation worker is
    promoted by a successful exchange or removed after --max-failures failed ones.

    A fixed cap (a quarter of --max-workers, the first rule) does not scale: with a bounded
    view a node exchanges with a few workers a round, so it could never list more than about
    a quarter of --max-workers workers it had not talked to yet, and a join of more nodes
    than that stalled. So the cap follows what this node measures: cap = Q + (M - Q) * s,
    Q = M / 4, where s is a lower bound on the share of its probation workers that answer.
    Each first outcome of an exchange with a worker while it is on probation is a sample:
    it answered (and is promoted), or its exchange failed and the failure was counted (once
    per worker and probation, so one dead key picked again and again counts once). The last
    64 are kept. The node's picks (view refills, the exchange outside the view) are uniform
    among the workers it lists, so the samples are an unbiased sample of its probation
    workers: when fresh keys naming endpoints where nothing answers come in, they are picked
    like any other, s falls and the cap with it, back to Q. Nothing listed is evicted by the
    rule (it only refuses), and the failure detector removes the dead keys as before. A node
    that has sampled nothing (a new one) admits Q, as before.

    s is the Wilson score interval's lower bound at z = 2, not the raw share: with k of n
    answered it is (k + 2 - 2 sqrt(k (n - k) / n + 1)) / (n + 4), which is 0 without samples,
    0.2 after one answer, 0.5 after four, 0.94 after 64, and falls faster than the raw share
    as failures come in (3 of 4: 0.29). The plainer (k - 2 sqrt n) / n would stay at 0 for
    the first four answers but never pass 0.75 with 64 of them, so honest networks could
    never list more than 81 % of M without talking to it; Wilson reaches 96 %. Genesis nodes
    are never on probation and are not sampled, and a newer record of a worker held already
    is not a new key: it is always weighed by the merge rules. */
void
sos_probation_push(sos_probation_t *self, bool answered)
{
    self->bits = (self->bits << 1) | (answered ? 1u : 0u);
    if (self->n < SOS_PROBATION_SAMPLES)
        self->n++;
}

uint32_t
sos_probation_answered(const sos_probation_t *self)
{
    uint64_t kept = self->n >= 64 ? UINT64_MAX : ((uint64_t)1 << self->n) - 1;
    return (uint32_t)__builtin_popcountll(self->bits & kept);
}

bool
sos_probation_outcome(sos_probation_t *self, bool on_probation, bool answered, bool *failed_sampled)
{
    if (!on_probation)
        return false; /* promoted already, or a genesis node */
    if (!answered) {
        if (*failed_sampled)
            return false;
        *failed_sampled = true;
    }
    sos_probation_push(self, answered);
    return true;
}

double
sos_probation_share(const sos_probation_t *self)
{
    if (!self || self->n == 0)
        return 0;
    double n = self->n, k = sos_probation_answered(self);
    double lb = (k + 2 - 2 * sqrt(k * (n - k) / n + 1)) / (n + 4);
    return lb > 0 ? lb : 0;
}

uint32_t
sos_probation_cap(uint32_t max_workers, const sos_probation_t *samples)
{
    uint32_t q = max_workers / 4 ? max_workers / 4 : 1;
    if (q >= max_workers)
        return q;
    uint32_t cap = q + (uint32_t)((double)(max_workers - q) * sos_probation_share(samples));
    return cap < max_workers ? cap : max_workers;
}

/*  True if rec may be weighed (probation above says when); *cap the cap. */
static bool
s_probation_admits(const sos_sync_take_ctx_t *tc, sos_txn_t *txn, const sos_record_t *rec,
                   uint32_t *cap)
{
    const sos_sync_peers_t *p = tc->peers;
    *cap = sos_probation_cap(tc->merge->max_workers, tc->probation);
    if (p && p->known && p->known(p->arg, rec->origin))
        return true; /* listed already, or a genesis node */
    if (sos_dir_get_worker(txn, rec->origin, NULL, NULL) == SOS_OK)
        return true; /* held without a peer of its own */
    return !p || !p->probation || p->probation(p->arg) < *cap;
}

/*  Why a worker record names an endpoint where that worker cannot be reached, or NULL:
    the endpoint is ours, or another worker answers there. */
static const char *
s_endpoint_taken(const sos_sync_take_ctx_t *tc, const sos_record_t *rec)
{
    if (tc->our_url && strcmp(rec->url, tc->our_url) == 0)
        return "that is our own endpoint";
    const sos_sync_peers_t *p = tc->peers;
    if (p && p->answers_at && p->answers_at(p->arg, rec->url, rec->origin))
        return "another worker answers at that endpoint";
    return NULL;
}

sos_rc
sos_core_sync_take(const sos_sync_ctx_t *ctx, const sos_sync_take_ctx_t *tc, sos_txn_t *txn,
                   const sos_record_t *rec, sos_source_t src, sos_take_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->merge = SOS_MERGE_MAX;
    bool own = memcmp(rec->origin, ctx->self_id, SOS_NODEID_BYTES) == 0;
    if (src != SOS_SRC_LOCAL && !own && !sos_endpoint_allowed(rec->url, ctx->allow_private, NULL)) {
        out->take = SOS_TAKE_BAD_ENDPOINT;
        return SOS_OK;
    }
    if (rec->kind == SOS_REC_WORKER && src != SOS_SRC_LOCAL && !own &&
        !s_probation_admits(tc, txn, rec, &out->probation_cap)) {
        out->take = SOS_TAKE_PROBATION;
        return SOS_OK;
    }
    /*  Another worker's record naming an endpoint taken is stale (a node that was there
        before, with another identity) or false: we would never exchange with that worker,
        so never count its failures, and it would stay listed for good. Refused like a
        removed worker, with a tombstone at its version so that the copies others still
        relay stay out too; a newer record, or the worker talking to us once the endpoint
        is free, brings it back. */
    const char *why = rec->kind == SOS_REC_WORKER && !own ? s_endpoint_taken(tc, rec) : NULL;
    if (why) {
        out->take = SOS_TAKE_ENDPOINT_TAKEN;
        out->why = why;
        uint64_t ts_version = 0, ts_expires = 0;
        if (sos_dir_tombstone_get(txn, rec->origin, &ts_version, &ts_expires) == SOS_OK &&
            ts_version >= rec->version) {
            out->merge = SOS_MERGE_TOMBSTONED;
            return SOS_OK;
        }
        sos_rc rc =
            sos_merge_remove_worker(txn, rec->origin, rec->version, tc->tombstone_expires, NULL);
        out->removed = rc == SOS_OK;
        return rc;
    }
    out->take = SOS_TAKE_MERGED;
    /*  A record that arrived out of the exchange's order (a rumor, the sender's own) may
        skip versions of its origin we never saw: a gap, until an exchange fills it. */
    bool track_gap = src == SOS_SRC_RUMOR || src == SOS_SRC_DIRECT;
    uint64_t before = track_gap ? sos_digest_version(ctx->gaps, txn, rec->origin) : 0;
    sos_rc rc = sos_merge_record(txn, tc->merge, rec, src, &out->merge, &out->displaced,
                                 &out->displaced_set);
    if (rc)
        return rc;
    if (sos_merge_taken(out->merge) && track_gap && rec->prev > before) {
        out->gap = true;
        out->gap_version = before;
    }
    return SOS_OK;
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
