/*  sos_core_fd.h: the failure detector's rules, once for the node (node/sos_gossip.c) and
    the simulator (tools/sossim_node.c): which suspects a SYNC names, what a suspect named by
    a peer does here and who confirms it, whether a failed exchange waits for an indirect
    probe, and what a counted failure leads to (a genesis backoff, a removal, the name a
    removal leaves). Over sos_fd's arithmetic: no frames, no clock, no socket, no log;
    inputs in, a result out; the store is read through the transaction given. */
#ifndef SOS_CORE_FD_H
#define SOS_CORE_FD_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_core_sync.h"
#include "sos_fd.h"
#include "sos_gmsg.h"

/*  How long a worker removed here is still named as a suspect, in rounds. */
#define SOS_NAME_REMOVED_ROUNDS 20
/*  Workers removed lately that are named at once; a further removal takes the slot whose
    naming ends first. */
#define SOS_NAME_REMOVED_MAX 16

/*  What the rules need to know of one peer besides its sos_fd_peer_t. */
typedef struct {
    bool listed;  /* a worker of our directory whose id we know (not only an address) */
    bool genesis; /* a genesis node: never suspected, named or removed */
} sos_core_fd_who_t;

/*  Workers removed here lately, named as suspects until until_mono (0: a free slot). */
typedef struct {
    struct {
        uint8_t id[SOS_NODEID_BYTES];
        uint64_t version;
        uint64_t since_mono; /* when its suspicion began here */
        uint64_t until_mono;
    } slot[SOS_NAME_REMOVED_MAX];
} sos_core_fd_removed_t;

/*  True if a SYNC names the peer id (who, peer) a suspect: a listed worker, no genesis
    node, that failed here at least once. *out (origin, version, age_ms) is then filled: the
    version is the highest held from id, which the suspicion is about, so that anything it
    signs later refutes it; the age, how long it has been suspected here at now. */
bool sos_core_fd_names(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                       const sos_core_fd_who_t *who, const sos_fd_peer_t *peer, uint64_t now_mono,
                       sos_digest_entry_t *out);

/*  Remove worker id after its failures (sos_core_fd_failure said remove): its worker
    record is deleted in txn and a tombstone, expiring at expires_at (wall ms), written at
    the version of that record (sos_merge_remove_worker), so that stale copies relayed by
    others do not bring it back. *named (may be NULL) receives the highest version held
    from id before, at which the removal is named (sos_core_fd_name_removed); *wrote (may be
    NULL) whether anything was written. SOS_OK or the store's error (the caller logs it; the
    transaction should then be aborted). */
sos_rc sos_core_fd_remove(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t expires_at,
                          uint64_t *named, bool *wrote);

/*  Name id, removed here at version (the highest held from it) after a suspicion that
    began at since_mono, for SOS_NAME_REMOVED_ROUNDS rounds of interval_ms from now: its own
    slot if it has one, else the slot that ends first. Nothing if version is 0 (nothing
    held: no record to be suspected about). */
void sos_core_fd_name_removed(sos_core_fd_removed_t *removed, const uint8_t id[SOS_NODEID_BYTES],
                              uint64_t version, uint64_t interval_ms, uint64_t since_mono,
                              uint64_t now_mono);

/*  Append to suspects (holding *n, room for SOS_SUSPECTS_MAX) the workers removed still
    named at now, but those named already. Returns the new count. */
uint32_t sos_core_fd_suspects_removed(const sos_core_fd_removed_t *removed, uint64_t now_mono,
                                      sos_digest_entry_t *suspects, uint32_t n);

/*  Who named a suspect (sos_core_fd_named), as the caller knows them. */
typedef struct {
    sos_core_fd_who_t suspect; /* the origin named: listed here, a genesis node */
    const uint8_t *namer;      /* the namer's id (SOS_NODEID_BYTES); NULL: unknown */
    bool namer_answered;       /* the namer is a worker we list that has answered us itself
                                  (the node: last_ok; the simulator: an RTT sample) */
} sos_core_fd_namer_t;

/*  A peer named e's origin a suspect at e's version (in a SYNC's suspects, or by a removal
    in its digest). sos_core_sync_named weighs it; beyond that, a genesis node named is
    ignored (it is never removed, so a suspicion of it could only draw probes), and so is a
    namer naming itself. On SOS_NAMED_SUSPECT the suspicion of peer (its state here, not
    NULL then) starts if none is under way (sos_fd_named, at *held), and the namer
    confirms it if it answered us itself and is distinct: fresh keys cost nothing, and must
    not shorten anyone's suspicion. Such a namer also dates the suspicion back by e's age,
    at most cap_ms (sos_fd_spread_time). *held (may be NULL) as sos_core_sync_named. On
    SOS_NAMED_REFUTE the caller refutes (sos_fd_refute). */
sos_named_t sos_core_fd_named(const sos_sync_ctx_t *ctx, sos_txn_t *txn,
                              const sos_digest_entry_t *e, const sos_core_fd_namer_t *by,
                              sos_fd_peer_t *peer, uint64_t cap_ms, uint64_t now_mono,
                              uint64_t *held);

/*  True if an exchange that peer failed waits for the verdict of an indirect probe before
    it counts (SWIM's ping-req): probes are on (probe_helpers > 0), the peer is a listed
    worker, no genesis node, neither failing here nor suspected yet (a suspect named by
    others is one here too: its failures count at once), and this node does not lag (its
    failure would be withheld anyway). The caller still needs a helper to ask; without one
    the failure counts now. */
bool sos_core_fd_probe_first(const sos_fd_t *fd, const sos_fd_peer_t *peer,
                             const sos_core_fd_who_t *who, uint32_t probe_helpers);

/*  True if the peer may be removed at now (sos_fd_removable): a listed worker, no genesis
    node. n_workers: the workers listed here. */
bool sos_core_fd_removable(const sos_fd_t *fd, const sos_fd_config_t *cfg,
                           const sos_fd_peer_t *peer, const sos_core_fd_who_t *who,
                           uint64_t n_workers, uint64_t now_mono);

/*  What a counted failure leads to (sos_core_fd_failure). */
typedef struct {
    sos_fd_failure_t fd; /* WITHHELD (nothing else holds), COUNTED or SUSPECTED */
    uint64_t retry_mono; /* a genesis node: no new exchange with it before this (0: none) */
    bool remove;         /* remove the worker now; its name then goes out
                            (sos_core_fd_name_removed) and we re-sign our own record */
} sos_core_fd_fail_t;

/*  An exchange with peer failed at now, and no probe cleared it (or none was asked for).
    probed: the verdict of an indirect probe, started while this node was healthy; it is not
    withheld if this node lags by the time it comes, since helpers failed to reach the peer
    too. held: the highest version held of the peer's record, which a new suspicion is about.
    A genesis node is never removed: it is retried after sos_fd_genesis_backoff. */
void sos_core_fd_failure(const sos_fd_t *fd, const sos_fd_config_t *cfg, sos_fd_peer_t *peer,
                         const sos_core_fd_who_t *who, bool probed, uint64_t held,
                         uint64_t n_workers, uint64_t now_mono, sos_core_fd_fail_t *out);

#endif
