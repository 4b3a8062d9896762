/*  sos_merge.c: directory merge rules: newer version wins, tombstones keep removed workers
    out, room creation conflicts resolve the same way everywhere, and caps hold. */
#include <stdlib.h>
#include <string.h>

#include "sos_log.h"
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
    [SOS_MERGE_CONTESTED] = "contested",
    [SOS_MERGE_UNVOUCHED] = "unvouched",
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
    /*  A tombstone goes only with the record that overrides it: one refused at the cap
        leaves it, or an older copy relayed later would bring the removed worker back. */
    bool lift = rc == SOS_OK;
    if (rc == SOS_OK) {
        bool alive = src == SOS_SRC_DIRECT || rec->version > ts_version;
        if (!alive && ts_expires > ctx->now_ms) {
            *result = SOS_MERGE_TOMBSTONED;
            return SOS_OK;
        }
    } else if (rc != SOS_ERR_NOT_FOUND)
        return rc;

    have = malloc(sizeof *have);
    if (!have)
        return SOS_ERR_NOMEM;
    rc = sos_dir_get_worker(txn, rec->origin, have, NULL);
    if (rc == SOS_OK) {
        rc = lift ? sos_dir_tombstone_del(txn, rec->origin) : SOS_OK;
        if (rc)
            goto done;
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
    rc = lift ? sos_dir_tombstone_del(txn, rec->origin) : SOS_OK;
    if (rc == SOS_OK)
        rc = sos_dir_put(txn, rec);
done:
    free(have);
    return rc;
}

/*  Room creation conflicts

    Two records with one room_hash and two origins: the earlier created_at wins, then the
    lower origin id. Every node applies the same order, so honest creations converge; but
    created_at is the claimant's word, and room hashes are public, so on its own the rule
    hands any room to whoever signs a record dated earlier. Two local facts close that:

      - first_seen: when this node first stored a record for the hash (kept in the store,
        across restarts and changes of owner);
      - B, the spread bound: a record reaches every node within B of its creation.

    A claim may displace the held record only if now <= first_seen + B (the hash is still
    new here) and created_at + B >= first_seen (the claim is not dated before the hash can
    have existed). An honest winner W always passes both: W is the earliest creation, so
    every record of the hash, including the first one this node saw, was made at or after
    W.created_at, hence first_seen >= W.created_at and W arrives by W.created_at + B <=
    first_seen + B; and W itself arrived by W.created_at + B, hence first_seen <=
    W.created_at + B. So honest nodes decide by created_at alone, as before, and a record
    dated days back, or any claim after the hash has been held for B, is refused: counted
    (merge_contested), the hash marked contested, logged the first time. What is left to a
    stranger is written in protocol/PROTOCOL.md. */
static sos_rc
s_room_contest(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec,
               const sos_record_t *have, bool *refused)
{
    uint64_t spread = ctx->room_spread_ms ? ctx->room_spread_ms : SOS_ROOM_SPREAD_MS;
    sos_room_local_t local = {0}; /* none: held since before first-seen times were kept */
    sos_rc rc = sos_dir_room_local_get(txn, rec->room_hash, &local);
    if (rc && rc != SOS_ERR_NOT_FOUND)
        return rc;
    *refused =
        ctx->now_ms > local.first_seen + spread || rec->created_at + spread < local.first_seen;
    if (!*refused || local.contested)
        return SOS_OK;
    char claimant[SOS_NODEID_HEX + 1], holder[SOS_NODEID_HEX + 1];
    sos_hex(claimant, rec->origin, SOS_NODEID_BYTES);
    sos_hex(holder, have->origin, SOS_NODEID_BYTES);
    sos_log_notice("room %s contested: refused the claim of %.16s (created_at %llu, first "
                   "seen here %llu); the room stays with %.16s",
                   rec->room_hash, claimant, (unsigned long long)rec->created_at,
                   (unsigned long long)local.first_seen, holder);
    local.contested = true;
    if (rc == SOS_ERR_NOT_FOUND)
        local.first_seen = 0;
    return sos_dir_room_local_put(txn, rec->room_hash, &local);
}

static sos_rc
s_origin_rooms(sos_txn_t *txn, const uint8_t *origin, uint32_t *n_rooms)
{
    sos_origin_t o;
    *n_rooms = 0;
    sos_rc rc = sos_dir_get_origin(txn, origin, &o);
    if (rc == SOS_OK)
        *n_rooms = o.n_rooms;
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

/*  rec and the held record have is the same room hash from two origins. */
static sos_rc
s_room_conflict(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec,
                const sos_record_t *have, sos_merge_result_t *result, sos_record_t *displaced,
                bool *displaced_set)
{
    if (!sos_room_wins(rec, have)) {
        *result = SOS_MERGE_CONFLICT_LOST;
        return SOS_OK;
    }
    bool refused = false;
    sos_rc rc = s_room_contest(txn, ctx, rec, have, &refused);
    if (rc)
        return rc;
    if (refused) {
        *result = SOS_MERGE_CONTESTED;
        return SOS_OK;
    }
    /*  Taking a room over must not let one key hold more rooms than new rooms would. */
    uint32_t per_origin = 0;
    rc = s_origin_rooms(txn, rec->origin, &per_origin);
    if (rc)
        return rc;
    if (per_origin >= ctx->max_rooms_per_origin) {
        *result = SOS_MERGE_CAP;
        return SOS_OK;
    }
    *result = SOS_MERGE_UPDATED;
    if (displaced)
        memcpy(displaced, have, sizeof *have);
    if (displaced_set)
        *displaced_set = true;
    return sos_dir_put(txn, rec);
}

/*  What filling the room caps costs

    A room record costs its maker one signature, so --max-rooms alone could be filled by a
    handful of throwaway keys, on every node, for 30 days. A room counts freely only if its
    origin is vouched for: this node, or a worker in the directory that this node has had a
    successful exchange with in the last SOS_ROOM_VOUCH_MS (its local last_ok, which only a
    node that answers our SYNCs from its advertised endpoint, with its key, can earn). Rooms
    from other origins share a pool of max_rooms_unvouched; when the pool is full they are
    refused for now (counted as merge_unvouched), and anti-entropy offers them again, so an
    honest owner's room gets in once this node has exchanged with it. Filling the rest of
    the directory then takes live workers, each with its own reachable endpoint, each held
    to max_rooms_per_origin. */
static sos_rc
s_room_pool(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec, bool *pooled,
            sos_merge_result_t *result)
{
    *pooled = false;
    *result = SOS_MERGE_NEW;
    if (!ctx->max_rooms_unvouched || memcmp(rec->origin, ctx->self_id, SOS_NODEID_BYTES) == 0)
        return SOS_OK;
    sos_worker_local_t local = {0};
    sos_rc rc = sos_dir_get_worker(txn, rec->origin, NULL, &local);
    if (rc && rc != SOS_ERR_NOT_FOUND)
        return rc;
    /*  A last_ok ahead of our clock (it was stepped back) counts as recent. */
    if (rc == SOS_OK && local.last_ok &&
        (local.last_ok >= ctx->now_ms || ctx->now_ms - local.last_ok < SOS_ROOM_VOUCH_MS))
        return SOS_OK;
    uint64_t n = 0;
    rc = sos_dir_rooms_pooled(txn, &n);
    if (rc)
        return rc;
    if (n >= ctx->max_rooms_unvouched)
        *result = SOS_MERGE_UNVOUCHED;
    else
        *pooled = true;
    return SOS_OK;
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
    uint32_t per_origin = 0;
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
        } else
            rc = s_room_conflict(txn, ctx, rec, have, result, displaced, displaced_set);
        goto done;
    }
    if (rc != SOS_ERR_NOT_FOUND)
        goto done;
    uint64_t rooms = 0;
    rc = sos_dir_counts(txn, NULL, &rooms, NULL);
    if (rc == SOS_OK)
        rc = s_origin_rooms(txn, rec->origin, &per_origin);
    if (rc)
        goto done;
    if (rooms >= ctx->max_rooms || per_origin >= ctx->max_rooms_per_origin) {
        *result = SOS_MERGE_CAP;
        goto done;
    }
    bool pooled = false;
    rc = s_room_pool(txn, ctx, rec, &pooled, result);
    if (rc || *result == SOS_MERGE_UNVOUCHED)
        goto done;
    *result = SOS_MERGE_NEW;
    rc = sos_dir_put(txn, rec);
    if (rc == SOS_OK) {
        sos_room_local_t local = {.first_seen = ctx->now_ms, .pooled = pooled};
        rc = sos_dir_room_local_put(txn, rec->room_hash, &local);
    }
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

sos_rc
sos_merge_remove_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t floor,
                        uint64_t expires_at, bool *wrote)
{
    if (wrote)
        *wrote = false;
    sos_record_t *have = malloc(sizeof *have);
    if (!have)
        return SOS_ERR_NOMEM;
    uint64_t version = floor;
    sos_rc rc = sos_dir_get_worker(txn, id, have, NULL);
    if (rc == SOS_OK) {
        if (have->version > version)
            version = have->version;
        rc = sos_dir_del_worker(txn, id);
    } else if (rc == SOS_ERR_NOT_FOUND)
        rc = SOS_OK;
    free(have);
    if (rc == SOS_OK && version > 0)
        rc = sos_dir_tombstone_put(txn, id, version, expires_at);
    if (rc == SOS_OK && wrote)
        *wrote = version > 0;
    return rc;
}
