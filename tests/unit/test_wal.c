/*  test_wal.c: unit tests of the store's write-ahead log: commits of a process that died
    without closing come back from the log, lazy commits too, and a torn record is cut off,
    never replayed, even when LMDB's own file (in the page cache) holds that transaction. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_store.h"

static char s_tmp[64];

static void
s_put(sos_store_t *store, const char *key, uint64_t value)
{
    sos_txn_t *txn;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, key, value), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

/*  The value of key, or 0 if there is none */
static uint64_t
s_get(sos_store_t *store, const char *key)
{
    sos_txn_t *txn;
    uint64_t v = 0;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    if (sos_meta_get_u64(txn, key, &v) != SOS_OK)
        v = 0;
    sos_txn_abort(&txn);
    return v;
}

/*  In a child that dies without closing the store: commit each key in its own transaction,
    lazily (sos_txn_commit_lazy) those whose name starts with "lazy" */
static void
s_crash_after(const char *dir, const char *const *keys)
{
    pid_t pid = fork();
    if (pid == 0) {
        sos_store_t *store;
        if (sos_store_open(&store, dir, 0) != SOS_OK)
            _exit(2);
        for (int i = 0; keys[i]; i++) {
            sos_txn_t *txn;
            if (sos_txn_begin(store, true, &txn) || sos_meta_put_u64(txn, keys[i], 100 + i))
                _exit(3);
            sos_rc rc =
                strncmp(keys[i], "lazy", 4) == 0 ? sos_txn_commit_lazy(&txn) : sos_txn_commit(&txn);
            if (rc)
                _exit(3);
        }
        _exit(0); /* no close: no checkpoint, the log holds the commits */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*  Flip a byte of the last occurrence of text in file: the record holding it is torn */
static bool
s_tear(const char *file, const char *text)
{
    FILE *f = fopen(file, "r+b");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    char *buf = malloc((size_t)size);
    bool ok = false;
    if (buf && fseek(f, 0, SEEK_SET) == 0 && fread(buf, 1, (size_t)size, f) == (size_t)size) {
        char *hit = NULL;
        for (char *p = buf; (p = memmem(p, (size_t)(buf + size - p), text, strlen(text))); p++)
            hit = p;
        if (hit) {
            fseek(f, hit - buf, SEEK_SET);
            fputc(hit[0] ^ 0x20, f);
            ok = true;
        }
    }
    free(buf);
    fclose(f);
    return ok;
}

int
main(void)
{
    if (sos_crypto_init() != SOS_OK)
        return 1;
    snprintf(s_tmp, sizeof s_tmp, "/tmp/test_wal.XXXXXX");
    if (!mkdtemp(s_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char dir[128], wal[160];
    snprintf(dir, sizeof dir, "%s/store", s_tmp);
    snprintf(wal, sizeof wal, "%s/wal", dir);

    SECTION("commits of a process that died come back");
    sos_store_t *store;
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    s_put(store, "before", 1);
    sos_store_destroy(&store);
    const char *keys[] = {"wal-a", "wal-b", "wal-c", NULL};
    s_crash_after(dir, keys);
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK(s_get(store, "before") == 1);
    CHECK(s_get(store, "wal-a") == 100 && s_get(store, "wal-b") == 101);
    CHECK(s_get(store, "wal-c") == 102);
    sos_store_destroy(&store);

    SECTION("a torn record is cut off with everything after it");
    const char *more[] = {"wal-d", "wal-e", "wal-f", NULL};
    s_crash_after(dir, more);
    CHECK(s_tear(wal, "wal-e"));
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK(s_get(store, "wal-c") == 102 && s_get(store, "wal-d") == 100);
    CHECK(s_get(store, "wal-e") == 0); /* LMDB had it in the page cache: rolled back */
    CHECK(s_get(store, "wal-f") == 0);

    SECTION("after the replay, commits go on and survive");
    s_put(store, "after", 7);
    sos_store_destroy(&store);
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK(s_get(store, "after") == 7 && s_get(store, "wal-d") == 100);
    sos_store_destroy(&store);

    SECTION("lazy commits go to the log as well: kill -9 keeps them, interleaved with synced");
    const char *lazy[] = {"lazy-g", "wal-h", "lazy-i", "lazy-j", NULL};
    s_crash_after(dir, lazy);
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK(s_get(store, "lazy-g") == 100 && s_get(store, "wal-h") == 101);
    CHECK(s_get(store, "lazy-i") == 102 && s_get(store, "lazy-j") == 103);
    sos_store_destroy(&store);

    SECTION("a lazy record lost to a power cut takes the lazy ones after it, nothing before");
    const char *tail[] = {"wal-k", "lazy-l", "lazy-m", NULL};
    s_crash_after(dir, tail);
    CHECK(s_tear(wal, "lazy-l"));
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK(s_get(store, "wal-k") == 100 && s_get(store, "lazy-j") == 103);
    CHECK(s_get(store, "lazy-l") == 0 && s_get(store, "lazy-m") == 0);
    sos_store_destroy(&store);

    SECTION("a small store writes a small log; a busy one grows it in doubling steps");
    {
        char dir2[128], wal2[160];
        snprintf(dir2, sizeof dir2, "%s/small", s_tmp);
        snprintf(wal2, sizeof wal2, "%s/wal", dir2);
        CHECK_RC(sos_store_open(&store, dir2, 0), SOS_OK);
        s_put(store, "one", 1);
        struct stat st;
        CHECK(stat(wal2, &st) == 0);
        /*  the two header slots (2 x 68 KiB) and a first step as large as those, not the
            whole MiB that a busy log grows by */
        CHECK(st.st_size > 0 && st.st_size < 512 * 1024);
        off_t first = st.st_size;
        /*  commits well past the first step: the zero-fill keeps ahead of them */
        for (int i = 0; i < 150; i++) {
            sos_txn_t *txn;
            CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
            for (int j = 0; j < 80; j++) {
                char key[48];
                snprintf(key, sizeof key, "busy-%d-%d-with-a-longer-key-name", i, j);
                CHECK_RC(sos_meta_put_u64(txn, key, (uint64_t)i * 100 + (uint64_t)j), SOS_OK);
            }
            CHECK_RC(sos_txn_commit(&txn), SOS_OK);
        }
        CHECK(stat(wal2, &st) == 0);
        CHECK(st.st_size > first);
        sos_store_destroy(&store);
        CHECK_RC(sos_store_open(&store, dir2, 0), SOS_OK);
        CHECK(s_get(store, "one") == 1);
        CHECK(s_get(store, "busy-149-79-with-a-longer-key-name") == 14979);
        sos_store_destroy(&store);
    }

    test_rmtree(s_tmp);
    return test_done("test_wal");
}
