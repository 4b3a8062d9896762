/*  sos_merge.c: directory merge rules: newer version wins, tombstones keep removed workers
    out, room creation conflicts resolve the same way everywhere, and caps hold. */
#include <stdlib.h>
#include <string.h>

#include "sos_merge.h"

static const char *s_names[SOS_MERGE_MAX] = {
    [SOS_MERGE_NEW] = "new",
    [SOS_MERGE_UPDATED] = "updated",
    [SOS_MERGE_SAME] = "same",
    [SOS_MERGE_STALE] = "stale",
    [SOS_MERGE_TOMBSTONED] = "tombstoned",
    [SOS_MERGE_CAP] = "cap",
    [SOS_MERGE_CONFLICT_LOST] = "conflict_lost",
    [SOS_MERGE_EXPIRED] = "expired",
    [SOS_MERGE_SELF] = "self",
    [SOS_MERGE_BAD_ROOM] = "bad_room",
};

const char *
sos_merge_result_name(sos_merge_result_t result)
{
    return (unsigned)result < SOS_MERGE_MAX ? s_names[result] : "unknown";
}

bool
sos_merge_taken(sos_merge_result_t result)
{
    return result == SOS_MERGE_NEW || result == SOS_MERGE_UPDATED;
}

bool
sos_room_wins(const sos_record_t *a, const sos_record_t *b)
{
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at;
    return memcmp(a->origin, b->origin, SOS_NODEID_BYTES) < 0;
}

static sos_rc
s_merge_worker(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec,
               sos_source_t src, sos_merge_result_t *result)
{
    sos_record_t *have = NULL;
    uint64_t ts_version = 0, ts_expires = 0;
    sos_rc rc = sos_dir_tombstone_get(txn, rec->origin, &ts_version, &ts_expires);
    if (rc == SOS_OK) {
        bool alive = src == SOS_SRC_DIRECT || rec->version > ts_version;
        if (!alive && ts_expires > ctx->now_ms) {
            *result = SOS_MERGE_TOMBSTONED;
            return SOS_OK;
        }
        rc = sos_dir_tombstone_del(txn, rec->origin);
        if (rc)
            return rc;
    } else if (rc != SOS_ERR_NOT_FOUND)
        return rc;

    have = malloc(sizeof *have);
    if (!have)
        return SOS_ERR_NOMEM;
    rc = sos_dir_get_worker(txn, rec->origin, have, NULL);
    if (rc == SOS_OK) {
        if (rec->version == have->version)
            *result = SOS_MERGE_SAME;
        else if (rec->version < have->version)
            *result = SOS_MERGE_STALE;
        else {
            *result = SOS_MERGE_UPDATED;
            rc = sos_dir_put(txn, rec);
        }
        goto done;
    }
    if (rc != SOS_ERR_NOT_FOUND)
        goto done;
    uint64_t workers = 0;
    rc = sos_dir_counts(txn, &workers, NULL, NULL);
    if (rc)
        goto done;
    if (workers >= ctx->max_workers) {
        *result = SOS_MERGE_CAP;
        goto done;
    }
    *result = SOS_MERGE_NEW;
    rc = sos_dir_put(txn, rec);
done:
    free(have);
    return rc;
}

static sos_rc
s_merge_room(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec,
             sos_merge_result_t *result, sos_record_t *displaced, bool *displaced_set)
{
    if (rec->expires_at <= ctx->now_ms) {
        *result = SOS_MERGE_EXPIRED;
        return SOS_OK;
    }
    if (rec->expires_at - rec->created_at > ctx->max_room_lifetime_ms ||
        rec->created_at > ctx->now_ms + ctx->clock_skew_ms) {
        *result = SOS_MERGE_BAD_ROOM;
        return SOS_OK;
    }
    sos_record_t *have = malloc(sizeof *have);
    if (!have)
        return SOS_ERR_NOMEM;
    sos_rc rc = sos_dir_get_room(txn, rec->room_hash, have);
    if (rc == SOS_OK) {
        if (memcmp(have->origin, rec->origin, SOS_NODEID_BYTES) == 0) {
            if (rec->version == have->version)
                *result = SOS_MERGE_SAME;
            else if (rec->version < have->version)
                *result = SOS_MERGE_STALE;
            else {
                *result = SOS_MERGE_UPDATED;
                rc = sos_dir_put(txn, rec);
            }
        } else if (sos_room_wins(rec, have)) {
            *result = SOS_MERGE_UPDATED;
            if (displaced)
                memcpy(displaced, have, sizeof *have);
            if (displaced_set)
                *displaced_set = true;
            rc = sos_dir_put(txn, rec);
        } else
            *result = SOS_MERGE_CONFLICT_LOST;
        goto done;
    }
    if (rc != SOS_ERR_NOT_FOUND)
        goto done;
    uint64_t rooms = 0;
    rc = sos_dir_counts(txn, NULL, &rooms, NULL);
    if (rc)
        goto done;
    sos_origin_t origin;
    uint32_t per_origin = 0;
    rc = sos_dir_get_origin(txn, rec->origin, &origin);
    if (rc == SOS_OK)
        per_origin = origin.n_rooms;
    else if (rc != SOS_ERR_NOT_FOUND)
        goto done;
    if (rooms >= ctx->max_rooms || per_origin >= ctx->max_rooms_per_origin) {
        *result = SOS_MERGE_CAP;
        rc = SOS_OK;
        goto done;
    }
    *result = SOS_MERGE_NEW;
    rc = sos_dir_put(txn, rec);
done:
    free(have);
    return rc;
}

sos_rc
sos_merge_record(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec,
                 sos_source_t src, sos_merge_result_t *result, sos_record_t *displaced,
                 bool *displaced_set)
{
    if (displaced_set)
        *displaced_set = false;
    /*  Only this node signs records about itself; a copy coming back through gossip tells
        us nothing new (the caller checks its version against our own counter). */
    if (src != SOS_SRC_LOCAL && memcmp(rec->origin, ctx->self_id, SOS_NODEID_BYTES) == 0) {
        *result = SOS_MERGE_SELF;
        return SOS_OK;
    }
    if (rec->kind == SOS_REC_WORKER)
        return s_merge_worker(txn, ctx, rec, src, result);
    return s_merge_room(txn, ctx, rec, result, displaced, displaced_set);
}
