/*  sos_core_answer.c: the answerer's side of an anti-entropy exchange: a SYNC's answer and
    a DIGEST's, from the answerer's digest, for the node and the simulator alike. */
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
