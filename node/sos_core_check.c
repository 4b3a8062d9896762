/*  sos_core_check.c: record triage before verification, and the verification budget. */
#include <string.h>

#include "sos_core_check.h"
#include "sos_endpoint.h"

sos_check_t
sos_core_check_record(sos_txn_t *txn, const uint8_t self_id[SOS_NODEID_BYTES], bool allow_private,
                      const sos_record_t *rec, sos_record_t *have)
{
    if (memcmp(rec->origin, self_id, SOS_NODEID_BYTES) == 0)
        return SOS_CHECK_VERIFY;
    if (!sos_endpoint_allowed(rec->url, allow_private, NULL))
        return SOS_CHECK_ENDPOINT; /* refused whatever its signature: not worth checking */
    sos_rc rc = rec->kind == SOS_REC_WORKER ? sos_dir_get_worker(txn, rec->origin, have, NULL)
                                            : sos_dir_get_room(txn, rec->room_hash, have);
    if (rc == SOS_OK && memcmp(have->origin, rec->origin, SOS_NODEID_BYTES) == 0) {
        if (have->version == rec->version && have->wire_len == rec->wire_len &&
            memcmp(have->wire, rec->wire, rec->wire_len) == 0)
            return SOS_CHECK_HELD;
        if (have->version > rec->version)
            return SOS_CHECK_STALE;
    }
    uint64_t ts_version = 0, ts_expires = 0;
    if (rec->kind == SOS_REC_WORKER &&
        sos_dir_tombstone_get(txn, rec->origin, &ts_version, &ts_expires) == SOS_OK &&
        ts_version >= rec->version)
        return SOS_CHECK_TOMBSTONED; /* the merge would refuse it */
    return SOS_CHECK_VERIFY;
}

bool
sos_core_tokens_take(double *tokens, uint64_t *last_mono, double rate, uint32_t n,
                     uint64_t now_mono)
{
    return sos_core_tokens_take_burst(tokens, last_mono, rate, rate, n, now_mono);
}

bool
sos_core_tokens_take_burst(double *tokens, uint64_t *last_mono, double rate, double burst,
                           uint32_t n, uint64_t now_mono)
{
    if (*last_mono == 0)
        *tokens = burst;
    else if (now_mono > *last_mono)
        *tokens += rate * (double)(now_mono - *last_mono) / 1000.0;
    if (*tokens > burst)
        *tokens = burst;
    *last_mono = now_mono ? now_mono : 1;
    if (*tokens < n)
        return false;
    *tokens -= n;
    return true;
}
