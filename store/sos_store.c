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
    in the node would otherwise trip over with MDB_BAD_RSLOT. Commits are synchronous: a
    commit that returned SOS_OK is on disk. */

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
    if (self->env)
        mdb_env_close(self->env);
    if (self->lock_fd >= 0)
        close(self->lock_fd); /* releases the flock */
    free(self);
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
    s_store_free(self);
    *self_p = NULL;
}

sos_rc
sos_store_set_map_size(sos_store_t *store, uint64_t map_size)
{
    assert(store);
    /*  LMDB remaps the file: no reader may hold pointers into the old map. */
    if (map_size == 0 || map_size > SIZE_MAX || atomic_load(&store->n_txns) != 0)
        return SOS_ERR_INVALID;
    return sos_store_rc(mdb_env_set_mapsize(store->env, (size_t)map_size));
}

sos_rc
sos_store_usage(sos_store_t *store, uint64_t *map_size, uint64_t *used)
{
    assert(store);
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
    /*  A second write transaction in the writing thread would wait for the first forever
        on LMDB's writer mutex. */
    if (write && atomic_exchange(&store->writing, true))
        return SOS_ERR_INVALID;

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

sos_rc
sos_txn_commit(sos_txn_t **txn_p)
{
    assert(txn_p);
    sos_txn_t *txn = *txn_p;
    assert(txn);
    *txn_p = NULL;
    sos_rc rc;
    if (txn->err) {
        mdb_txn_abort(txn->mdb);
        rc = txn->err;
    } else
        rc = sos_store_rc(mdb_txn_commit(txn->mdb));
    rc = s_io_rc(txn->store, rc);
    s_txn_free(txn);
    return rc;
}

void
sos_txn_abort(sos_txn_t **txn_p)
{
    assert(txn_p);
    sos_txn_t *txn = *txn_p;
    if (!txn)
        return;
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
    sos_rc rc = s_write_rc(txn, mdb_put(txn->mdb, txn->store->dbi[db], &k, &v, 0));
    if (rc == SOS_ERR_EXISTS)
        txn->op_wrote = wrote; /* nothing changed */
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
    sos_rc rc = s_write_rc(txn, mdb_put(txn->mdb, txn->store->dbi[db], &k, &v, MDB_RESERVE));
    if (rc == SOS_OK)
        *out = v.mv_data;
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
    sos_rc rc = s_write_rc(txn, mdb_del(txn->mdb, txn->store->dbi[db], &k, dup ? &d : NULL));
    if (rc == SOS_ERR_NOT_FOUND)
        txn->op_wrote = wrote; /* nothing changed */
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
    return s_write_rc(txn, mdb_cursor_del(cursor, 0));
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
    if (rc == SOS_OK) {
        uint8_t buf[8];
        sos_enc_le64(buf, value);
        rc = sos_txn_put(txn, SOS_DB_META, key, klen, buf, sizeof buf);
    }
    return sos_txn_op_end(txn, rc);
}
