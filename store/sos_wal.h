/*  sos_wal.h: the store's write-ahead log (dir/wal): one checksummed record per committed
    write transaction, appended and fdatasync'd once per commit, and a checkpoint header that
    holds the LMDB meta page of the last snapshot known to be on disk. See sos_wal.c. */
#ifndef SOS_WAL_H
#define SOS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"

typedef struct _sos_wal_t sos_wal_t;

/*  Called for each record to replay, in order: ops/len are the record's operations (valid for
    the call only). A non-OK return stops the replay and is returned by sos_wal_replay. */
typedef sos_rc(sos_wal_apply_fn)(void *ctx, uint64_t txnid, const uint8_t *ops, size_t len);

/*  Open dir/wal; if it is missing, create it when create is set, else set *wal_p to NULL and
    return SOS_OK (a store made before the log, or a new one not yet recognised). If it holds a
   valid checkpoint, write that checkpoint's meta page back into both meta pages of dir/data.mdb and
   sync it, so that LMDB opens the checkpointed snapshot (which the running node kept intact, see
   sos_wal.c) and sos_wal_replay brings it forward. *checkpoint says whether there was one: without,
   the store is new or older than the log and LMDB's own state is taken as it is. Returns SOS_OK,
   SOS_ERR_NOMEM, SOS_ERR_IO, or SOS_ERR_CORRUPT when data.mdb does not match the checkpoint
   (another page size, a file shorter than the meta pages). */
sos_rc sos_wal_open(sos_wal_t **wal_p, const char *dir, bool create, bool *checkpoint);

/*  Hand every valid record after the checkpoint to apply, in order, stopping at the first
    torn, foreign or out-of-sequence one (a power cut's torn tail is never replayed).
    *count gets the number applied. Returns SOS_OK or apply's error. */
sos_rc sos_wal_replay(sos_wal_t *wal, sos_wal_apply_fn *apply, void *ctx, uint64_t *count);

/*  Append the record of write transaction txnid and, with sync, fdatasync the log: once this
    returns SOS_OK the transaction survives a power cut. Without sync the record is in the
    page cache only; the next synced append (or checkpoint) makes it durable with itself. A
    power cut before then may take it, and then also every record after it: replay stops at
    the first torn one. txnid must follow the last record's (or the checkpoint's). Returns
    SOS_OK, SOS_ERR_NO_SPACE or SOS_ERR_IO. */
sos_rc sos_wal_append(sos_wal_t *wal, uint64_t txnid, const uint8_t *ops, size_t len, bool sync);

/*  After the caller made LMDB's file durable (mdb_env_sync) at transaction txnid: copy the
    meta page of txnid from data_fd (page size psize) into the next header slot, sync the
    log, and start the records afresh. Returns SOS_OK, SOS_ERR_IO or SOS_ERR_CORRUPT (the
    meta page is not that of txnid). */
sos_rc sos_wal_checkpoint(sos_wal_t *wal, int data_fd, uint64_t txnid, unsigned psize);

/*  The transaction id of the last checkpoint or record: the next record must be this + 1. */
uint64_t sos_wal_last_txnid(const sos_wal_t *wal);

/*  Whether the log holds no record after its checkpoint. */
bool sos_wal_empty(const sos_wal_t *wal);

/*  Whether the log has grown enough since the checkpoint that the caller should make one. */
bool sos_wal_wants_checkpoint(const sos_wal_t *wal);

/*  Close the log. NULL-safe; nulls *wal_p. */
void sos_wal_close(sos_wal_t **wal_p);

#endif
