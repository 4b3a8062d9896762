/*  sos_core_check.h: what the gossip core does with a record before paying for its
    signature: verify it, or skip it as held, stale, tombstoned or naming a forbidden
    endpoint; and the token bucket that bounds the verifications a sender may cost. Reads
    the store through its API; times are given. */
#ifndef SOS_CORE_CHECK_H
#define SOS_CORE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_record.h"
#include "sos_store.h"

typedef enum {
    SOS_CHECK_VERIFY = 0, /* verify and apply */
    SOS_CHECK_HELD,       /* held byte for byte: no merge (it would say `same`), but it is
                             as good as verified for settling gaps */
    SOS_CHECK_STALE,      /* older than what we hold of its key: skip */
    SOS_CHECK_TOMBSTONED, /* a removed worker's, not newer than its removal: skip */
    SOS_CHECK_ENDPOINT,   /* names an endpoint we may not connect to: skip (bad_endpoint) */
} sos_check_t;

/*  Triage rec (decoded, not verified) against what txn holds. A record of self_id (ours)
    is always verified: the merge must see it (a counter ahead of ours). allow_private:
    records may name non-public addresses (sos_endpoint_allowed). have is scratch space
    for the record held under the same key. */
sos_check_t sos_core_check_record(sos_txn_t *txn, const uint8_t self_id[SOS_NODEID_BYTES],
                                  bool allow_private, const sos_record_t *rec, sos_record_t *have);

/*  Take n from a bucket of *tokens refilled at rate per second up to rate (a burst of one
    second), last refilled at *last_mono (0: never, the bucket starts full). True if
    granted; false, and nothing taken, if fewer than n are left. */
bool sos_core_tokens_take(double *tokens, uint64_t *last_mono, double rate, uint32_t n,
                          uint64_t now_mono);

/*  The same bucket holding up to burst tokens (rate * seconds of burst). */
bool sos_core_tokens_take_burst(double *tokens, uint64_t *last_mono, double rate, double burst,
                                uint32_t n, uint64_t now_mono);

#endif
