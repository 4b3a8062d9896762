/*  sos_core_answer.c: the answers of an anti-entropy exchange, for the node and the
    simulator alike: a SYNC's answer and a DIGEST's from the answerer's digest, and what the
    initiator does with a SYNC_ACK and a DIGEST_ACK, and the DELTA it sends. */
#include <stdlib.h>
#include <string.h>

#include "sos_core_answer.h"
#include "sos_core_sync.h"

sos_answer_sync_t
sos_core_answer_sync(const sos_digest_view_t *mine, const sos_gmsg_t *sync, sos_gmsg_t *reply)
{
    memset(reply, 0, sizeof *reply);
    reply->req_id = sync->req_id;
    memcpy(reply->hash, mine->hash, sizeof reply->hash);
    reply->n_origins = mine->n;
    if (sos_core_sync_in_sync(mine->hash, mine->n, sync->hash, sync->n_origins)) {
        reply->flags = SOS_GMSG_IN_SYNC;
        return SOS_ANSWER_IN_SYNC;
    }
    if (mine->n <= SOS_DIGEST_WHOLE_MAX) {
        reply->digest = (sos_digest_entry_t *)mine->entries; /* borrowed: see the header */
        reply->n_digest = mine->entries ? mine->n : 0;
        return SOS_ANSWER_WHOLE;
    }
    /*  Too large to send whole: a hash per bucket, cut finely enough for the larger of the
        two digests (the count is capped, whatever the SYNC says). */
    reply->has_buckets = true;
    reply->nb = sos_digest_nbuckets(mine->n > sync->n_origins ? mine->n : sync->n_origins);
    reply->n_sums = reply->nb;
    return SOS_ANSWER_SUMS;
}

/*  The shape of a DIGEST beyond what the decoder checks (which parts a type carries): a
    bucket element asking for buckets or a piece, and nothing else. A piece asked runs from
    its start to as far as fits: it names no end. The decoder's own checks (buckets
    ascending below a valid nb, the piece a valid one of another bucket) are repeated, so
    that the take's preconditions never rest on the caller. */
static bool
s_digest_ok(const sos_gmsg_t *m)
{
    if (!m->has_buckets || (m->n_buckets == 0 && !m->has_piece) || m->n_sums || m->n_digest ||
        m->n_want || m->n_records || m->has_self || (m->has_piece && !m->piece.to_end))
        return false;
    if (!sos_digest_nb_ok(m->nb) || m->n_buckets > m->nb || (m->n_buckets && !m->buckets))
        return false;
    for (uint32_t i = 0; i < m->n_buckets; i++) {
        if (m->buckets[i] >= m->nb || (i && m->buckets[i] <= m->buckets[i - 1]))
            return false;
        if (m->has_piece && m->buckets[i] == m->piece.bucket)
            return false;
    }
    return !m->has_piece || sos_digest_piece_ok(m->nb, &m->piece);
}

sos_rc
sos_core_answer_digest(const sos_digest_view_t *mine, const sos_gmsg_t *digest,
                       uint32_t max_entries, sos_digest_answer_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s_digest_ok(digest))
        return SOS_ERR_MALFORMED;
    if (max_entries == 0 || !mine->entries)
        return SOS_ERR_INVALID;
    uint32_t room = mine->n < max_entries ? mine->n : max_entries;
    out->entries = malloc((room ? room : 1) * sizeof *out->entries);
    out->covered = malloc((digest->n_buckets ? digest->n_buckets : 1) * sizeof *out->covered);
    if (!out->entries || !out->covered) {
        sos_digest_answer_release(out);
        return SOS_ERR_NOMEM;
    }
    sos_gmsg_t *r = &out->reply;
    r->req_id = digest->req_id;
    memcpy(r->hash, mine->hash, sizeof r->hash);
    r->n_origins = mine->n;
    r->has_buckets = true;
    r->nb = digest->nb;
    r->buckets = out->covered;
    r->has_piece = digest->has_piece;
    r->n_buckets =
        sos_digest_buckets_take(mine->entries, mine->n, digest->nb, digest->buckets,
                                digest->n_buckets, digest->has_piece ? &digest->piece : NULL,
                                out->entries, room, &r->n_digest, out->covered, &r->piece);
    r->digest = out->entries;
    return SOS_OK;
}

void
sos_digest_answer_release(sos_digest_answer_t *a)
{
    if (!a)
        return;
    free(a->entries);
    free(a->covered);
    memset(a, 0, sizeof *a);
}

sos_rc
sos_core_answer_delta(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_gmsg_t *delta,
                      sos_sync_delta_t *d, sos_gmsg_t *reply)
{
    memset(reply, 0, sizeof *reply);
    memset(d, 0, sizeof *d);
    sos_rc rc = sos_core_sync_delta_ack(ctx, txn, delta->want, delta->n_want, d);
    if (rc != SOS_OK) {
        sos_sync_delta_release(d);
        return rc;
    }
    reply->req_id = delta->req_id;
    reply->flags = d->more ? SOS_GMSG_MORE : 0;
    return SOS_OK;
}

sos_rc
sos_core_delta_out(const sos_sync_ctx_t *ctx, sos_txn_t *txn, sos_digest_entry_t *mine,
                   uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs, uint64_t req_id,
                   sos_delta_out_t *out)
{
    memset(out, 0, sizeof *out);
    sos_rc rc = sos_core_sync_delta(ctx, txn, mine, n_mine, theirs, n_theirs, &out->d);
    if (rc != SOS_OK) {
        sos_delta_out_release(out);
        return rc;
    }
    out->msg.req_id = req_id;
    out->msg.flags = out->d.more ? SOS_GMSG_MORE : 0;
    out->msg.want = out->d.want;
    out->msg.n_want = out->d.n_want;
    return SOS_OK;
}

void
sos_delta_out_release(sos_delta_out_t *out)
{
    if (!out)
        return;
    sos_sync_delta_release(&out->d);
    memset(out, 0, sizeof *out);
}

bool
sos_core_sync_ack_ok(const sos_gmsg_t *ack)
{
    if (!ack->has_buckets)
        return true;
    return !(ack->flags & SOS_GMSG_IN_SYNC) && ack->n_sums == ack->nb && !ack->n_buckets &&
           !ack->has_piece && !ack->n_digest && !ack->n_records && sos_digest_nb_ok(ack->nb) &&
           ack->sums;
}

sos_rc
sos_core_take_sync_ack(const sos_digest_view_t *mine, const sos_gmsg_t *ack,
                       sos_piece_cursor_t *cursor, sos_random_fn *rnd, void *rnd_arg,
                       uint32_t max_entries, sos_ack_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    if (!sos_core_sync_ack_ok(ack))
        return SOS_ERR_MALFORMED;
    if (!ack->has_buckets) {
        plan->what = (ack->flags & SOS_GMSG_IN_SYNC) ? SOS_ACK_DONE : SOS_ACK_DELTA;
        return SOS_OK;
    }
    if (!mine->entries || !mine->sums || !max_entries)
        return SOS_ERR_INVALID;
    uint32_t nb = ack->nb;
    const uint8_t(*ours)[SOS_DIGEST_HASH_BYTES] = mine->sums(mine->sums_arg, nb);
    if (!ours)
        return SOS_ERR_NOMEM;
    const uint8_t(*theirs)[SOS_DIGEST_HASH_BYTES] =
        (const uint8_t(*)[SOS_DIGEST_HASH_BYTES])ack->sums;
    plan->nb = nb;
    if (sos_piece_cursor_ask(cursor, nb, ours, theirs, &plan->piece)) {
        plan->has_piece = true; /* the rest waits for the pass to end */
        plan->what = SOS_ACK_DIGEST;
        return SOS_OK;
    }
    plan->asked = malloc(nb * sizeof *plan->asked);
    if (!plan->asked)
        return SOS_ERR_NOMEM;
    uint32_t n_differ = 0;
    uint32_t start = sos_piece_cursor_start(cursor, nb, sos_core_uniform(rnd, rnd_arg, nb));
    plan->n_asked =
        sos_digest_buckets_pick(mine->entries, mine->n, nb, ours, theirs, ack->n_origins, start,
                                max_entries, plan->asked, &n_differ);
    plan->more = n_differ > plan->n_asked;
    plan->what = plan->n_asked ? SOS_ACK_DIGEST : SOS_ACK_DONE;
    return SOS_OK;
}

sos_exchange_do_t
sos_ack_plan_step(const sos_ack_plan_t *plan, sos_exchange_t *ex)
{
    if (plan->what == SOS_ACK_DELTA)
        return sos_exchange_sync_ack(ex, false);
    return sos_exchange_sums(ex,
                             plan->what == SOS_ACK_DIGEST ? plan->n_asked + plan->has_piece : 0);
}

void
sos_ack_plan_digest(const sos_ack_plan_t *plan, uint64_t req_id, sos_gmsg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->req_id = req_id;
    msg->has_buckets = true;
    msg->nb = plan->nb;
    msg->buckets = plan->asked;
    msg->n_buckets = plan->n_asked;
    msg->has_piece = plan->has_piece;
    msg->piece = plan->piece;
}

void
sos_ack_plan_release(sos_ack_plan_t *plan)
{
    if (!plan)
        return;
    free(plan->asked);
    memset(plan, 0, sizeof *plan);
}

sos_rc
sos_core_take_digest_ack(const sos_digest_view_t *mine, const sos_gmsg_t *ack, uint32_t nb,
                         const uint64_t asked[SOS_BUCKET_WORDS],
                         const sos_bucket_piece_t *piece_asked, sos_digest_entry_t **mine_out,
                         uint32_t *n_mine)
{
    *mine_out = NULL;
    *n_mine = 0;
    const sos_bucket_piece_t *piece = ack->has_piece ? &ack->piece : NULL;
    if (!ack->has_buckets || ack->nb != nb || ack->n_sums || ack->n_records ||
        (ack->n_buckets && !ack->buckets) ||
        !sos_digest_buckets_check(ack->nb, asked, piece_asked, ack->buckets, ack->n_buckets, piece,
                                  ack->digest, ack->n_digest))
        return SOS_ERR_MALFORMED;
    if (!mine->entries)
        return SOS_ERR_INVALID;
    sos_digest_entry_t *out = malloc((mine->n ? mine->n : 1) * sizeof *out);
    if (!out)
        return SOS_ERR_NOMEM;
    *n_mine = sos_digest_buckets_mine(mine->entries, mine->n, ack->nb, ack->buckets, ack->n_buckets,
                                      piece, out);
    *mine_out = out;
    return SOS_OK;
}
