/*  sos_store.c: the LMDB environment of a node's data directory: the exclusive lock, opening
    and recognising a sosnode store, transactions, the meta table and LMDB error conversion. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "sos_store_int.h"
#include "sos_store_mem.h"
#include "sos_wal.h"

/*  Opening a data directory

    LMDB lets several processes share an environment, which is exactly what we must not
    allow: two nodes on one directory would sign records from the same version counter. So
    before LMDB sees the directory we take flock(LOCK_EX | LOCK_NB) on a separate file,
    dir/lock, and hold it until sos_store_destroy. flock locks belong to the open file
    description, so a second sos_store_open of the same directory fails with SOS_ERR_LOCKED
    even inside one process, and the kernel drops the lock if the process dies.

    A store is recognised by the key "format" in the named database meta, written in the
    same transaction that creates the databases. An environment whose main database is empty
    is new and gets created; one that holds anything else (no meta, no format, another
    format, a named database of the wrong kind) is not ours and gives SOS_ERR_CORRUPT rather
    than being written to. Files LMDB cannot read as an environment at all (MDB_INVALID,
    MDB_VERSION_MISMATCH), and a data file shorter than its meta page says, give
    SOS_ERR_CORRUPT too.

    The environment uses MDB_NOTLS so that read transactions belong to their handle rather
    than to the thread: one thread may then hold two read transactions, which nested helpers
    in the node would otherwise trip over with MDB_BAD_RSLOT. Commits are durable: a commit
    that returned SOS_OK is on disk, by way of the write-ahead log (sos_wal.c says why and
    how): LMDB runs with MDB_NOSYNC once the log is open, every commit appends its puts and
    deletes to the log with one fdatasync, and a checkpoint (mdb_env_sync, the meta page into
    the log's header) bounds the log; the store holds a read transaction on the checkpointed
    snapshot so that LMDB never overwrites its pages before the next checkpoint. A lazy
    commit (sos_txn_commit_lazy) appends its record without the fdatasync: the next synced
    one carries it to the disk, and until then a power cut may take it (and every lazy one
    after it), as replay stops at the first torn record. */

#define SOS_STORE_FORMAT    "sosnode-store-1"
#define SOS_STORE_MAXDBS    16
#define SOS_META_KEY_MAX    64
#define SOS_META_FORMAT     "format"
#define SOS_STORE_LOW_SPACE (1024 * 1024) /* less free space than this: the disk is full */

static const char *s_db_names[SOS_DB_COUNT] = {
    [SOS_DB_META] = "meta",       [SOS_DB_WORKERS] = "workers",
    [SOS_DB_ROOMS] = "rooms",     [SOS_DB_BY_ORIGIN] = "by_origin",
    [SOS_DB_ORIGINS] = "origins", [SOS_DB_TOMBSTONES] = "tombstones",
    [SOS_DB_EXPIRY] = "expiry",   [SOS_DB_RSTATE] = "rstate",
    [SOS_DB_MEMBERS] = "members", [SOS_DB_MESSAGES] = "messages",
    [SOS_DB_MSGIDS] = "msgids",
};

/*  by_origin may hold two records of one origin under one version (an origin that lost its
    counter), so it keeps duplicates; see sos_dir.c. */
static const unsigned s_db_flags[SOS_DB_COUNT] = {
    [SOS_DB_BY_ORIGIN] = MDB_DUPSORT,
};

sos_rc
sos_store_rc(int mdb_rc)
{
    switch (mdb_rc) {
    case MDB_SUCCESS:
        return SOS_OK;
    case MDB_NOTFOUND:
        return SOS_ERR_NOT_FOUND;
    case MDB_KEYEXIST:
        return SOS_ERR_EXISTS;
    case MDB_MAP_FULL:
        return SOS_ERR_MAP_FULL;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return SOS_ERR_CORRUPT;
    case ENOMEM:
        return SOS_ERR_NOMEM;
    case ENOSPC:
    case EDQUOT:
        return SOS_ERR_NO_SPACE;
    default:
        return SOS_ERR_IO;
    }
}

bool
sos_store_room_hash_ok(const char *s)
{
    return s && sos_room_hash_valid(s, strnlen(s, SOS_ROOMHASH_LEN + 1));
}

/* ---------------------------------------------------------------- open, close ---- */

static sos_rc
s_lock_dir(sos_store_t *self, const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return SOS_ERR_IO;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/lock", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return SOS_ERR_INVALID;
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0)
        return SOS_ERR_IO;
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? SOS_ERR_LOCKED : SOS_ERR_IO;
    return SOS_OK;
}

/*  Check that an existing environment is a sosnode store. */
static int
s_check_format(MDB_txn *txn)
{
    MDB_dbi meta;
    int mrc = mdb_dbi_open(txn, s_db_names[SOS_DB_META], 0, &meta);
    if (mrc == MDB_NOTFOUND)
        return MDB_INVALID;
    if (mrc)
        return mrc;
    MDB_val key = {strlen(SOS_META_FORMAT), SOS_META_FORMAT};
    MDB_val val;
    mrc = mdb_get(txn, meta, &key, &val);
    if (mrc == MDB_NOTFOUND)
        return MDB_INVALID;
    if (mrc)
        return mrc;
    if (val.mv_size != strlen(SOS_STORE_FORMAT) ||
        memcmp(val.mv_data, SOS_STORE_FORMAT, val.mv_size) != 0)
        return MDB_INVALID;
    return MDB_SUCCESS;
}

/*  Recognise or create the store, and open the named databases. */
static sos_rc
s_open_dbs(sos_store_t *self)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(self->env, NULL, 0, &txn);
    if (mrc)
        return sos_store_rc(mrc);

    MDB_dbi main_dbi;
    MDB_stat st;
    mrc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (mrc)
        goto fail;
    mrc = mdb_stat(txn, main_dbi, &st);
    if (mrc)
        goto fail;
    bool fresh = st.ms_entries == 0;
    if (!fresh) {
        mrc = s_check_format(txn);
        if (mrc)
            goto fail;
    }
    for (int i = 0; i < SOS_DB_COUNT; i++) {
        mrc = mdb_dbi_open(txn, s_db_names[i], MDB_CREATE | s_db_flags[i], &self->dbi[i]);
        if (mrc)
            goto fail;
    }
    if (fresh) {
        MDB_val key = {strlen(SOS_META_FORMAT), SOS_META_FORMAT};
        MDB_val val = {strlen(SOS_STORE_FORMAT), SOS_STORE_FORMAT};
        mrc = mdb_put(txn, self->dbi[SOS_DB_META], &key, &val, 0);
        if (mrc)
            goto fail;
    }
    return sos_store_rc(mdb_txn_commit(txn));

fail:
    mdb_txn_abort(txn);
    return sos_store_rc(mrc);
}

/*  LMDB maps the data file and trusts its meta page for how many pages there are: a file
    cut short (a partial copy, a full disk while copying) would have it touch pages past the
    end of the file, and the process would die of SIGBUS. Compare the file with the meta page
    before reading anything else. */
static sos_rc
s_check_size(sos_store_t *self, const char *dir)
{
    MDB_envinfo info;
    MDB_stat st;
    int mrc = mdb_env_info(self->env, &info);
    if (!mrc)
        mrc = mdb_env_stat(self->env, &st);
    if (mrc)
        return sos_store_rc(mrc);
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return SOS_ERR_INVALID;
    struct stat fst;
    if (stat(path, &fst) != 0)
        return SOS_ERR_IO;
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fst.st_size < need)
        return SOS_ERR_CORRUPT;
    return SOS_OK;
}

/*  LMDB sizes its lock file lock.mdb with ftruncate and writes to it through a shared
    mapping: on a full file system the first write to a page that has no block yet kills the
    process with SIGBUS. Give the file its blocks first (LMDB's own size with its default 126
    readers; LMDB keeps a larger file as it is), so that a full disk is SOS_ERR_NO_SPACE here.
    Where the file system cannot allocate ahead, LMDB goes on as it would without this. */
#define SOS_LOCK_FILE_SIZE 8192

static sos_rc
s_no_space(const char *dir, int err)
{
    struct statvfs vfs;
    if (err == ENOSPC || err == EDQUOT)
        return SOS_ERR_NO_SPACE;
    if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < SOS_STORE_LOW_SPACE)
        return SOS_ERR_NO_SPACE;
    return SOS_ERR_IO;
}

static sos_rc
s_prepare_lock_file(const char *dir)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/lock.mdb", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return SOS_ERR_INVALID;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_no_space(dir, errno);
    struct stat st;
    off_t size = SOS_LOCK_FILE_SIZE;
    if (fstat(fd, &st) == 0 && st.st_size > size)
        size = st.st_size;
    int err = posix_fallocate(fd, 0, size);
    close(fd);
    return err == ENOSPC || err == EDQUOT ? SOS_ERR_NO_SPACE : SOS_OK;
}

static void
s_store_free(sos_store_t *self)
{
    if (self->pin)
        mdb_txn_abort(self->pin);
    if (self->env)
        mdb_env_close(self->env);
    sos_wal_close(&self->wal);
    if (self->lock_fd >= 0)
        close(self->lock_fd); /* releases the flock */
    free(self);
}

/* ------------------------------------------------------------ the log's side ---- */

/*  A transaction's record: each put or delete as kind (1), db (1), key length (4), value
    length (4), key, value; S_OP_DEL_DUP deletes one duplicate (the value) of a DUPSORT key. */
enum { S_OP_PUT = 1, S_OP_DEL = 2, S_OP_DEL_DUP = 3 };
#define SOS_PIN_GROWTH 2048 /* pages (8 MiB of 4 KiB) the file may grow between checkpoints */
#define S_OP_HDR       10
#define S_KEY_MAX      511 /* LMDB's default largest key */

static void
s_put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
s_get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*  Copy a reserved value into the record once the caller has filled it: LMDB's pointer is
    valid only until the next write in the transaction. */
static void
s_log_settle(sos_txn_t *txn)
{
    if (txn->reserve) {
        memcpy(txn->log + txn->reserve_at, txn->reserve, txn->reserve_len);
        txn->reserve = NULL;
    }
}

/*  Add an operation to the transaction's record; returns where its value goes, or NULL
    (and spoils the transaction) when out of memory. Without a log, does nothing. */
static uint8_t *
s_log_add(sos_txn_t *txn, int kind, sos_db_t db, const MDB_val *key, const MDB_val *val)
{
    static uint8_t none;
    if (!txn->store->wal)
        return &none;
    size_t vlen = val ? val->mv_size : 0;
    size_t need = txn->log_len + S_OP_HDR + key->mv_size + vlen;
    if (need > txn->log_cap) {
        size_t cap = txn->log_cap ? txn->log_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *log = realloc(txn->log, cap);
        if (!log) {
            if (txn->err == SOS_OK)
                txn->err = SOS_ERR_NOMEM;
            return NULL;
        }
        txn->log = log;
        txn->log_cap = cap;
    }
    uint8_t *p = txn->log + txn->log_len;
    p[0] = (uint8_t)kind;
    p[1] = (uint8_t)db;
    s_put32le(p + 2, (uint32_t)key->mv_size);
    s_put32le(p + 6, (uint32_t)vlen);
    memcpy(p + S_OP_HDR, key->mv_data, key->mv_size);
    uint8_t *v = p + S_OP_HDR + key->mv_size;
    if (val && val->mv_data && vlen)
        memcpy(v, val->mv_data, vlen);
    txn->log_len = need;
    return v;
}

typedef struct {
    sos_store_t *store;
    MDB_txn *txn;
} s_replay_t;

/*  Apply one record of the log. The log's checksum vouches that we wrote it, but it is
    still disk input: every length is checked against the record. */
static sos_rc
s_replay_apply(void *ctx, uint64_t txnid, const uint8_t *ops, size_t len)
{
    s_replay_t *r = ctx;
    size_t off = 0;
    while (off < len) {
        if (len - off < S_OP_HDR)
            return SOS_ERR_CORRUPT;
        int kind = ops[off];
        unsigned db = ops[off + 1];
        uint32_t klen = s_get32le(ops + off + 2), vlen = s_get32le(ops + off + 6);
        off += S_OP_HDR;
        if (db >= SOS_DB_COUNT || klen == 0 || klen > S_KEY_MAX || len - off < klen ||
            len - off - klen < vlen)
            return SOS_ERR_CORRUPT;
        MDB_val k = {klen, (void *)(ops + off)};
        MDB_val v = {vlen, (void *)(ops + off + klen)};
        off += (size_t)klen + vlen;
        int mrc;
        if (kind == S_OP_PUT)
            mrc = mdb_put(r->txn, r->store->dbi[db], &k, &v, 0);
        else if (kind == S_OP_DEL)
            mrc = mdb_del(r->txn, r->store->dbi[db], &k, NULL);
        else if (kind == S_OP_DEL_DUP)
            mrc = mdb_del(r->txn, r->store->dbi[db], &k, &v);
        else
            return SOS_ERR_CORRUPT;
        if (mrc && mrc != MDB_NOTFOUND && mrc != MDB_KEYEXIST)
            return sos_store_rc(mrc);
    }
    return SOS_OK;
}

/*  Whether LMDB's state is the log's checkpoint already: nothing to make durable. A store
    opened and closed without a write (a refused start) then leaves every file as it was. */
static bool
s_checkpointed(sos_store_t *self)
{
    MDB_envinfo info;
    return self->pin && sos_wal_empty(self->wal) && mdb_env_info(self->env, &info) == 0 &&
           info.me_last_txnid == sos_wal_last_txnid(self->wal);
}

/*  Make LMDB's file durable, move the pin to the snapshot now on disk, and record that
    snapshot's meta page in the log. The new pin is taken before the log names the new
    snapshot, and the old one released only after: at every moment the snapshot the log
    names is pinned. */
static sos_rc
s_checkpoint(sos_store_t *self)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_filehandle_t fd;
    MDB_txn *pin = NULL;
    int mrc = mdb_env_sync(self->env, 1);
    if (!mrc)
        mrc = mdb_env_info(self->env, &info);
    if (!mrc)
        mrc = mdb_env_stat(self->env, &st);
    if (!mrc)
        mrc = mdb_env_get_fd(self->env, &fd);
    if (!mrc)
        mrc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &pin);
    if (mrc)
        return sos_store_rc(mrc);
    sos_rc rc = sos_wal_checkpoint(self->wal, fd, info.me_last_txnid, st.ms_psize);
    if (rc) {
        mdb_txn_abort(pin);
        return rc;
    }
    if (self->pin)
        mdb_txn_abort(self->pin);
    self->pin = pin;
    self->pin_pgno = info.me_last_pgno;
    return SOS_OK;
}

/*  Bring LMDB forward from the checkpoint with the log's records (one transaction: only
    the end state matters), then checkpoint, make the directory entries durable and let LMDB
    commit without syncing from now on. */
static sos_rc
s_log_start(sos_store_t *self, const char *dir, bool had_checkpoint)
{
    if (had_checkpoint) {
        s_replay_t r = {self, NULL};
        int mrc = mdb_txn_begin(self->env, NULL, 0, &r.txn);
        if (mrc)
            return sos_store_rc(mrc);
        uint64_t count = 0;
        sos_rc rc = sos_wal_replay(self->wal, s_replay_apply, &r, &count);
        if (rc) {
            mdb_txn_abort(r.txn);
            return rc;
        }
        rc = sos_store_rc(mdb_txn_commit(r.txn));
        if (rc)
            return rc;
    }
    MDB_envinfo info;
    int mrc = mdb_env_info(self->env, &info);
    if (mrc)
        return sos_store_rc(mrc);
    sos_rc rc;
    if (had_checkpoint && sos_wal_empty(self->wal) &&
        info.me_last_txnid == sos_wal_last_txnid(self->wal)) {
        /*  closed cleanly: the checkpoint is LMDB's state; pin it */
        rc = sos_store_rc(mdb_txn_begin(self->env, NULL, MDB_RDONLY, &self->pin));
        if (rc)
            self->pin = NULL;
        self->pin_pgno = info.me_last_pgno;
    } else
        rc = s_checkpoint(self);
    if (rc)
        return rc;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return SOS_ERR_IO;
    int err = fsync(dfd);
    close(dfd);
    if (err)
        return SOS_ERR_IO;
    return sos_store_rc(mdb_env_set_flags(self->env, MDB_NOSYNC, 1));
}

sos_rc
sos_store_open(sos_store_t **self_p, const char *dir, uint64_t map_size)
{
    assert(self_p);
    *self_p = NULL;
    if (!dir || !*dir)
        return SOS_ERR_INVALID;
    if (map_size == 0)
        map_size = SOS_STORE_MAP_DEFAULT;
    if (map_size > SIZE_MAX)
        return SOS_ERR_INVALID;

    sos_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return SOS_ERR_NOMEM;
    self->lock_fd = -1;
    atomic_init(&self->writing, false);
    atomic_init(&self->n_txns, 0);

    sos_rc rc = s_lock_dir(self, dir);
    if (rc)
        goto fail;
    /*  A data file this call creates and cannot finish (a full disk) is removed again, so
        that the directory does not look damaged once there is room. */
    char data_path[PATH_MAX];
    struct stat st;
    int n = snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
    if (n < 0 || (size_t)n >= sizeof data_path) {
        rc = SOS_ERR_INVALID;
        goto fail;
    }
    bool creating = stat(data_path, &st) != 0 && errno == ENOENT;
    rc = s_prepare_lock_file(dir);
    if (rc)
        goto fail;
    bool use_log = true;
#ifdef SOS_TEST_UNSAFE_SYNC
    const char *weak_log = getenv("SOS_TEST_MDB_FLAGS");
    use_log = !weak_log || (strcmp(weak_log, "nosync") != 0 && strcmp(weak_log, "nometasync") != 0);
    self->wal_nosync = weak_log && strcmp(weak_log, "walnosync") == 0;
#endif
    bool had_checkpoint = false;
    if (use_log) {
        rc = sos_wal_open(&self->wal, dir, false, &had_checkpoint);
        if (rc)
            goto fail;
    }
    int mrc = mdb_env_create(&self->env);
    if (mrc) {
        self->env = NULL;
        rc = sos_store_rc(mrc);
        goto fail;
    }
    mrc = mdb_env_set_maxdbs(self->env, SOS_STORE_MAXDBS);
    if (!mrc)
        mrc = mdb_env_set_mapsize(self->env, (size_t)map_size);
    unsigned env_flags = MDB_NOTLS;
#ifdef SOS_TEST_UNSAFE_SYNC
    /*  Test builds only: a store that skips syncs, which the power-cut test must catch. */
    const char *weak = getenv("SOS_TEST_MDB_FLAGS");
    if (weak && strcmp(weak, "nosync") == 0)
        env_flags |= MDB_NOSYNC;
    else if (weak && strcmp(weak, "nometasync") == 0)
        env_flags |= MDB_NOMETASYNC;
#endif
    if (!mrc)
        mrc = mdb_env_open(self->env, dir, env_flags, 0600);
    if (mrc) {
        rc = sos_store_rc(mrc);
        goto fail_created;
    }
    rc = s_check_size(self, dir);
    if (rc)
        goto fail_created;
    rc = s_open_dbs(self);
    if (rc)
        goto fail_created;
    /*  The log is made only once the directory is known to be a sosnode store */
    bool log_created = false;
    if (use_log && !self->wal) {
        rc = sos_wal_open(&self->wal, dir, true, &had_checkpoint);
        if (rc)
            goto fail_created;
        log_created = true;
    }
    if (self->wal) {
        rc = s_log_start(self, dir, had_checkpoint);
        if (rc) {
            if (log_created) {
                char wal_path[PATH_MAX + 8];
                snprintf(wal_path, sizeof wal_path, "%s/wal", dir);
                unlink(wal_path);
            }
            goto fail_created;
        }
    }
    *self_p = self;
    return SOS_OK;

fail_created:
    if (rc == SOS_ERR_IO)
        rc = s_no_space(dir, 0);
    s_store_free(self);
    if (creating)
        unlink(data_path);
    return rc;

fail:
    s_store_free(self);
    return rc;
}

void
sos_store_destroy(sos_store_t **self_p)
{
    assert(self_p);
    sos_store_t *self = *self_p;
    if (!self)
        return;
    assert(atomic_load(&self->n_txns) == 0);
    if (self->mem) {
        sos_mem_destroy(self);
        *self_p = NULL;
        return;
    }
    /*  A clean close leaves LMDB's file durable and the log empty */
    if (self->wal && !self->broken && !s_checkpointed(self) && s_checkpoint(self) != SOS_OK)
        fprintf(stderr,
                "sosnode: store: the closing checkpoint failed; the log replays at start\n");
    s_store_free(self);
    *self_p = NULL;
}

sos_rc
sos_store_set_map_size(sos_store_t *store, uint64_t map_size)
{
    assert(store);
    if (store->mem)
        return SOS_OK;
    /*  LMDB remaps the file: no reader may hold pointers into the old map. */
    if (map_size == 0 || map_size > SIZE_MAX || atomic_load(&store->n_txns) != 0)
        return SOS_ERR_INVALID;
    if (!store->wal)
        return sos_store_rc(mdb_env_set_mapsize(store->env, (size_t)map_size));
    /*  No transaction, not even the pin, may be open: make the pin unneeded first */
    sos_rc rc = s_checkpoint(store);
    if (rc)
        return rc;
    mdb_txn_abort(store->pin);
    store->pin = NULL;
    rc = sos_store_rc(mdb_env_set_mapsize(store->env, (size_t)map_size));
    int mrc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &store->pin);
    if (mrc) {
        store->pin = NULL;
        store->broken = sos_store_rc(mrc);
        return store->broken;
    }
    return rc;
}

sos_rc
sos_store_usage(sos_store_t *store, uint64_t *map_size, uint64_t *used)
{
    assert(store);
    if (store->mem)
        return sos_mem_usage(store, map_size, used);
    MDB_envinfo info;
    MDB_stat st;
    int mrc = mdb_env_info(store->env, &info);
    if (!mrc)
        mrc = mdb_env_stat(store->env, &st);
    if (mrc)
        return sos_store_rc(mrc);
    if (map_size)
        *map_size = info.me_mapsize;
    if (used)
        *used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    return SOS_OK;
}

/* ---------------------------------------------------------------- transactions ---- */

sos_rc
sos_txn_begin(sos_store_t *store, bool write, sos_txn_t **txn_p)
{
    assert(store);
    assert(txn_p);
    *txn_p = NULL;
    if (store->mem)
        return sos_mem_txn_begin(store, write, txn_p);
    /*  A second write transaction in the writing thread would wait for the first forever
        on LMDB's writer mutex. */
    if (write && atomic_exchange(&store->writing, true))
        return SOS_ERR_INVALID;
    if (write && store->broken) {
        atomic_store(&store->writing, false);
        return store->broken;
    }

    sos_txn_t *txn = calloc(1, sizeof *txn);
    if (!txn) {
        if (write)
            atomic_store(&store->writing, false);
        return SOS_ERR_NOMEM;
    }
    int mrc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &txn->mdb);
    if (mrc) {
        free(txn);
        if (write)
            atomic_store(&store->writing, false);
        return sos_store_rc(mrc);
    }
    txn->store = store;
    txn->write = write;
    MDB_envinfo info;
    if (write && store->wal && mdb_env_info(store->env, &info) == 0)
        txn->id = info.me_last_txnid + 1;
    atomic_fetch_add(&store->n_txns, 1);
    *txn_p = txn;
    return SOS_OK;
}

static void
s_txn_free(sos_txn_t *txn)
{
    if (txn->write)
        atomic_store(&txn->store->writing, false);
    atomic_fetch_sub(&txn->store->n_txns, 1);
    free(txn->log);
    free(txn);
}

/*  LMDB reports a short write as EIO, and a short write is what a full file system gives
    once it has handed out its last blocks: tell that apart from other I/O errors by the
    space left (SOS_STORE_LOW_SPACE), so that the log and the clients say what to fix. */

static sos_rc
s_io_rc(sos_store_t *store, sos_rc rc)
{
    mdb_filehandle_t fd;
    struct statvfs vfs;
    if (rc == SOS_ERR_IO && mdb_env_get_fd(store->env, &fd) == 0 && fstatvfs(fd, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < SOS_STORE_LOW_SPACE)
        return SOS_ERR_NO_SPACE;
    return rc;
}

/*  LMDB has committed (to the page cache): make it durable. An empty transaction gets no
    new id from LMDB and needs no record. If the log cannot take the record, a checkpoint
    makes LMDB's own file durable instead; if that fails too, the store refuses writes from
    now on rather than acknowledge what a power cut may take. */
static sos_rc
s_commit_log(sos_txn_t *txn)
{
    sos_store_t *store = txn->store;
    MDB_envinfo info;
    int mrc = mdb_env_info(store->env, &info);
    if (mrc)
        return sos_store_rc(mrc);
    if (info.me_last_txnid != txn->id)
        return SOS_OK;
    sos_rc rc = SOS_ERR_INVALID;
    if (!store->wal_nosync)
        rc = sos_wal_append(store->wal, txn->id, txn->log, txn->log_len, !txn->lazy);
#ifdef SOS_TEST_UNSAFE_SYNC
    else
        rc = SOS_OK; /* test builds: a log that is never synced, which tests must catch */
#endif
    /*  Checkpoint when the log is long, or when the file has grown by SOS_PIN_GROWTH pages
        since the pin: LMDB reuses no page freed after the pinned snapshot until then */
    if (rc == SOS_OK && !sos_wal_wants_checkpoint(store->wal) &&
        info.me_last_pgno < store->pin_pgno + SOS_PIN_GROWTH)
        return SOS_OK;
    sos_rc crc = s_checkpoint(store);
    if (crc == SOS_OK)
        return SOS_OK;
    if (rc != SOS_OK) {
        store->broken = crc;
        return crc;
    }
    /*  The record is durable; only the checkpoint failed: the next commit retries it, and a
        log that keeps growing is replayed whole at start */
    return SOS_OK;
}

sos_rc
sos_txn_commit(sos_txn_t **txn_p)
{
    assert(txn_p);
    sos_txn_t *txn = *txn_p;
    assert(txn);
    *txn_p = NULL;
    if (txn->store->mem)
        return sos_mem_txn_commit(txn);
    sos_rc rc;
    if (txn->err) {
        mdb_txn_abort(txn->mdb);
        rc = txn->err;
    } else if (txn->write && txn->store->wal) {
        s_log_settle(txn);
        rc = sos_store_rc(mdb_txn_commit(txn->mdb));
        if (rc == SOS_OK)
            rc = s_commit_log(txn);
    } else
        rc = sos_store_rc(mdb_txn_commit(txn->mdb));
    rc = s_io_rc(txn->store, rc);
    s_txn_free(txn);
    return rc;
}

sos_rc
sos_txn_commit_lazy(sos_txn_t **txn_p)
{
    assert(txn_p && *txn_p);
    (*txn_p)->lazy = true;
    return sos_txn_commit(txn_p);
}

void
sos_txn_abort(sos_txn_t **txn_p)
{
    assert(txn_p);
    sos_txn_t *txn = *txn_p;
    if (!txn)
        return;
    *txn_p = NULL;
    if (txn->store->mem) {
        sos_mem_txn_abort(txn);
        return;
    }
    mdb_txn_abort(txn->mdb);
    s_txn_free(txn);
    *txn_p = NULL;
}

sos_rc
sos_txn_op_begin(sos_txn_t *txn)
{
    assert(txn);
    if (!txn->write)
        return SOS_ERR_INVALID;
    if (txn->err)
        return txn->err;
    txn->op_wrote = false;
    return SOS_OK;
}

sos_rc
sos_txn_op_end(sos_txn_t *txn, sos_rc rc)
{
    if (rc != SOS_OK && txn->write && txn->op_wrote && txn->err == SOS_OK)
        txn->err = rc;
    txn->op_wrote = false;
    return rc;
}

/*  A failed LMDB write leaves the LMDB transaction unusable whatever the operation does
    next, so record it now: commit then reports this code instead of MDB_BAD_TXN. */
static sos_rc
s_write_rc(sos_txn_t *txn, int mrc)
{
    sos_rc rc = sos_store_rc(mrc);
    if (rc != SOS_OK && rc != SOS_ERR_NOT_FOUND && rc != SOS_ERR_EXISTS && txn->err == SOS_OK)
        txn->err = rc;
    return rc;
}

sos_rc
sos_txn_get(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, MDB_val *val)
{
    if (txn->err)
        return txn->err;
    MDB_val k = {klen, (void *)key};
    return sos_store_rc(mdb_get(txn->mdb, txn->store->dbi[db], &k, val));
}

sos_rc
sos_txn_put(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!txn->write)
        return SOS_ERR_INVALID;
    if (txn->err)
        return txn->err;
    MDB_val k = {klen, (void *)key};
    MDB_val v = {vlen, (void *)val};
    bool wrote = txn->op_wrote;
    txn->op_wrote = true;
    s_log_settle(txn);
    sos_rc rc = s_write_rc(txn, mdb_put(txn->mdb, txn->store->dbi[db], &k, &v, 0));
    if (rc == SOS_ERR_EXISTS)
        txn->op_wrote = wrote; /* nothing changed */
    if (rc == SOS_OK && !s_log_add(txn, S_OP_PUT, db, &k, &v))
        return txn->err;
    return rc;
}

sos_rc
sos_txn_reserve(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, size_t vlen,
                uint8_t **out)
{
    if (!txn->write)
        return SOS_ERR_INVALID;
    if (txn->err)
        return txn->err;
    MDB_val k = {klen, (void *)key};
    MDB_val v = {vlen, NULL};
    txn->op_wrote = true;
    s_log_settle(txn);
    sos_rc rc = s_write_rc(txn, mdb_put(txn->mdb, txn->store->dbi[db], &k, &v, MDB_RESERVE));
    if (rc == SOS_OK) {
        MDB_val space = {vlen, NULL};
        uint8_t *at = s_log_add(txn, S_OP_PUT, db, &k, &space);
        if (!at)
            return txn->err;
        if (txn->store->wal) {
            txn->reserve = v.mv_data;
            txn->reserve_at = (size_t)(at - txn->log);
            txn->reserve_len = vlen;
        }
        *out = v.mv_data;
    }
    return rc;
}

sos_rc
sos_txn_del(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, const void *dup,
            size_t duplen)
{
    if (!txn->write)
        return SOS_ERR_INVALID;
    if (txn->err)
        return txn->err;
    MDB_val k = {klen, (void *)key};
    MDB_val d = {duplen, (void *)dup};
    bool wrote = txn->op_wrote;
    txn->op_wrote = true;
    s_log_settle(txn);
    sos_rc rc = s_write_rc(txn, mdb_del(txn->mdb, txn->store->dbi[db], &k, dup ? &d : NULL));
    if (rc == SOS_ERR_NOT_FOUND)
        txn->op_wrote = wrote; /* nothing changed */
    if (rc == SOS_OK && !s_log_add(txn, dup ? S_OP_DEL_DUP : S_OP_DEL, db, &k, dup ? &d : NULL))
        return txn->err;
    return rc;
}

sos_rc
sos_txn_cursor(sos_txn_t *txn, sos_db_t db, MDB_cursor **cursor)
{
    if (txn->err)
        return txn->err;
    return sos_store_rc(mdb_cursor_open(txn->mdb, txn->store->dbi[db], cursor));
}

sos_rc
sos_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *val, MDB_cursor_op op)
{
    return sos_store_rc(mdb_cursor_get(cursor, key, val, op));
}

sos_rc
sos_cursor_del(sos_txn_t *txn, MDB_cursor *cursor)
{
    if (!txn->write)
        return SOS_ERR_INVALID;
    txn->op_wrote = true;
    s_log_settle(txn);
    /*  The record names what is deleted: the key, and for a DUPSORT database the value */
    MDB_val k, v;
    int db = -1;
    MDB_dbi dbi = mdb_cursor_dbi(cursor);
    for (int i = 0; i < SOS_DB_COUNT; i++)
        if (txn->store->dbi[i] == dbi)
            db = i;
    sos_rc rc = sos_store_rc(mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT));
    if (rc == SOS_OK && db < 0)
        rc = SOS_ERR_INVALID;
    if (rc)
        return s_write_rc(txn, rc == SOS_ERR_NOT_FOUND ? MDB_NOTFOUND : MDB_BAD_TXN);
    /*  the key and value point into the page the delete changes: log them first */
    bool dup = s_db_flags[db] & MDB_DUPSORT;
    size_t mark = txn->log_len;
    if (!s_log_add(txn, dup ? S_OP_DEL_DUP : S_OP_DEL, (sos_db_t)db, &k, dup ? &v : NULL))
        return txn->err;
    rc = s_write_rc(txn, mdb_cursor_del(cursor, 0));
    if (rc)
        txn->log_len = mark;
    return rc;
}

sos_rc
sos_txn_del_prefix(sos_txn_t *txn, sos_db_t db, const void *prefix, size_t len, uint64_t *count)
{
    MDB_cursor *cur;
    uint64_t n = 0;
    sos_rc rc = sos_txn_cursor(txn, db, &cur);
    if (rc)
        return rc;
    for (;;) {
        /*  Seek afresh after each delete rather than trust where the cursor lands. */
        MDB_val key = {len, (void *)prefix};
        MDB_val val;
        rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc == SOS_ERR_NOT_FOUND || (rc == SOS_OK && !sos_key_has_prefix(&key, prefix, len))) {
            rc = SOS_OK;
            break;
        }
        if (rc == SOS_OK)
            rc = sos_cursor_del(txn, cur);
        if (rc)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (count)
        *count = n;
    return rc;
}

sos_rc
sos_txn_entries(sos_txn_t *txn, sos_db_t db, uint64_t *entries)
{
    if (txn->err)
        return txn->err;
    MDB_stat st;
    int mrc = mdb_stat(txn->mdb, txn->store->dbi[db], &st);
    if (mrc)
        return sos_store_rc(mrc);
    *entries = st.ms_entries;
    return SOS_OK;
}

/* ------------------------------------------------------------------------ meta ---- */

static sos_rc
s_meta_key(const char *key, size_t *klen)
{
    if (!key)
        return SOS_ERR_INVALID;
    *klen = strnlen(key, SOS_META_KEY_MAX + 1);
    if (*klen == 0 || *klen > SOS_META_KEY_MAX || strcmp(key, SOS_META_FORMAT) == 0)
        return SOS_ERR_INVALID;
    return SOS_OK;
}

sos_rc
sos_meta_get_u64(sos_txn_t *txn, const char *key, uint64_t *value)
{
    assert(txn);
    size_t klen;
    sos_rc rc = s_meta_key(key, &klen);
    if (rc)
        return rc;
    if (txn->store->mem)
        return sos_mem_meta_get_u64(txn, key, klen, value);
    MDB_val val;
    rc = sos_txn_get(txn, SOS_DB_META, key, klen, &val);
    if (rc)
        return rc;
    if (val.mv_size != 8)
        return SOS_ERR_CORRUPT;
    if (value)
        *value = sos_dec_le64(val.mv_data);
    return SOS_OK;
}

sos_rc
sos_meta_put_u64(sos_txn_t *txn, const char *key, uint64_t value)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    size_t klen;
    rc = s_meta_key(key, &klen);
    if (rc == SOS_OK && txn->store->mem)
        return sos_txn_op_end(txn, sos_mem_meta_put_u64(txn, key, klen, value));
    if (rc == SOS_OK) {
        uint8_t buf[8];
        sos_enc_le64(buf, value);
        rc = sos_txn_put(txn, SOS_DB_META, key, klen, buf, sizeof buf);
    }
    return sos_txn_op_end(txn, rc);
}
