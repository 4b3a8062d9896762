/*  sos_core_fd.c: the failure detector's rules shared by the node and the simulator (whom a
    SYNC names, what a named suspect does, probe first or count, when to remove), over
    sos_fd's arithmetic. */
#include <string.h>

#include "sos_core_fd.h"

bool
sos_core_fd_names(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], const sos_core_fd_who_t *who,
                  const sos_fd_peer_t *peer, uint64_t now_mono, sos_digest_entry_t *out)
{
    /*  Genesis nodes are never removed: naming one would only draw probes to it. */
    if (!who->listed || who->genesis || peer->fail_count == 0)
        return false;
    memset(out, 0, sizeof *out);
    memcpy(out->origin, id, SOS_NODEID_BYTES);
    sos_dir_held_max(txn, id, &out->version);
    out->age_ms = sos_fd_suspect_age(peer, now_mono);
    return true;
}

sos_rc
sos_core_fd_remove(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t expires_at,
                   uint64_t *named, bool *wrote)
{
    uint64_t held = 0;
    sos_dir_held_max(txn, id, &held);
    if (named)
        *named = held;
    return sos_merge_remove_worker(txn, id, 0, expires_at, wrote);
}

void
sos_core_fd_name_removed(sos_core_fd_removed_t *removed, const uint8_t id[SOS_NODEID_BYTES],
                         uint64_t version, uint64_t interval_ms, uint64_t since_mono,
                         uint64_t now_mono)
{
    if (!version)
        return;
    size_t k = 0;
    for (size_t i = 0; i < SOS_NAME_REMOVED_MAX; i++) {
        if (memcmp(removed->slot[i].id, id, SOS_NODEID_BYTES) == 0) {
            k = i;
            break;
        }
        if (removed->slot[i].until_mono < removed->slot[k].until_mono)
            k = i;
    }
    memcpy(removed->slot[k].id, id, SOS_NODEID_BYTES);
    removed->slot[k].version = version;
    removed->slot[k].since_mono = since_mono && since_mono <= now_mono ? since_mono : now_mono;
    removed->slot[k].until_mono = now_mono + (uint64_t)SOS_NAME_REMOVED_ROUNDS * interval_ms;
}

uint32_t
sos_core_fd_suspects_removed(const sos_core_fd_removed_t *removed, uint64_t now_mono,
                             sos_digest_entry_t *suspects, uint32_t n)
{
    for (size_t i = 0; i < SOS_NAME_REMOVED_MAX && n < SOS_SUSPECTS_MAX; i++) {
        if (removed->slot[i].until_mono <= now_mono)
            continue;
        bool named = false;
        for (uint32_t k = 0; k < n && !named; k++)
            named = memcmp(suspects[k].origin, removed->slot[i].id, SOS_NODEID_BYTES) == 0;
        if (named)
            continue; /* listed again, and failing: named at the version held */
        sos_digest_entry_t *e = &suspects[n++];
        memset(e, 0, sizeof *e);
        memcpy(e->origin, removed->slot[i].id, SOS_NODEID_BYTES);
        e->version = removed->slot[i].version;
        uint64_t age = now_mono - removed->slot[i].since_mono;
        e->age_ms = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
    }
    return n;
}

sos_named_t
sos_core_fd_named(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_digest_entry_t *e,
                  const sos_core_fd_namer_t *by, sos_fd_peer_t *peer, uint64_t cap_ms,
                  uint64_t now_mono, uint64_t *held)
{
    uint64_t h = 0;
    /*  A genesis node named is ignored wherever it is named (a SYNC or a digest): it is
        never removed, so its suspicion could only draw probes and confirmations to it. */
    bool listed = by->suspect.listed && !by->suspect.genesis && peer;
    sos_named_t named = sos_core_sync_named(ctx, txn, e, listed, &h);
    if (held)
        *held = h;
    bool by_itself = by->namer && memcmp(by->namer, e->origin, SOS_NODEID_BYTES) == 0;
    if (named != SOS_NAMED_SUSPECT)
        return named;
    if (by_itself)
        return SOS_NAMED_IGNORE; /* a peer's word about itself is no report */
    sos_fd_named(peer, by->namer_answered ? by->namer : NULL, h, e->age_ms, cap_ms, now_mono);
    return SOS_NAMED_SUSPECT;
}

bool
sos_core_fd_probe_first(const sos_fd_t *fd, const sos_fd_peer_t *peer, const sos_core_fd_who_t *who,
                        uint32_t probe_helpers)
{
    return probe_helpers > 0 && who->listed && !who->genesis && peer->fail_count == 0 &&
           !peer->suspect_mono && fd->health == 0;
}

bool
sos_core_fd_removable(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer,
                      const sos_core_fd_who_t *who, uint64_t n_workers, uint64_t now_mono)
{
    return sos_fd_removable(fd, cfg, peer, who->listed && !who->genesis, n_workers, now_mono);
}

void
sos_core_fd_failure(const sos_fd_t *fd, const sos_fd_config_t *cfg, sos_fd_peer_t *peer,
                    const sos_core_fd_who_t *who, bool probed, uint64_t held, uint64_t n_workers,
                    uint64_t now_mono, sos_core_fd_fail_t *out)
{
    memset(out, 0, sizeof *out);
    sos_fd_t f = *fd;
    if (probed)
        f.health = 0;
    out->fd = sos_fd_failure(&f, peer, who->listed, who->genesis, held, now_mono);
    if (out->fd == SOS_FD_WITHHELD)
        return;
    if (who->genesis) {
        /*  Genesis nodes are never removed: retried with exponential backoff, up to a
            minute. */
        out->retry_mono = now_mono + sos_fd_genesis_backoff(cfg, peer->fail_count);
        return;
    }
    out->remove = sos_core_fd_removable(fd, cfg, peer, who, n_workers, now_mono);
}
