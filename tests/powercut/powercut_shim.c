/*  powercut_shim.c: an LD_PRELOAD library that makes a process "lose power" at a chosen
    point: every write to a file under one directory that was not yet synced is undone, and
    the process dies of SIGKILL, leaving on disk what a power cut would have left.

    How it models the disk

    The shim writes through: every write reaches the file at once, as it would reach the page
    cache, so the process (and LMDB, which reads its pages through mmap) sees its own writes.
    Before the first unsynced write to a 4 KiB page of a file, the shim keeps the page's
    durable content (its pre-image), per inode rather than per descriptor, since LMDB writes
    one file through two descriptors. The durable size of the file is kept the same way.

    - fsync and fdatasync on any descriptor of an inode make all of it durable: the
      pre-images are dropped.
    - A write on a descriptor opened with O_DSYNC or O_SYNC is durable when it returns: its
      bytes are copied into the pre-images, so that the cut keeps them.
    - ftruncate is a write to the size, and keeps the pre-images of the pages it cuts off.
    - A file created, or a rename, is durable once its directory is fsync'd; until then the
      cut removes the file, or moves the rename back (restoring the file it replaced, which
      the shim keeps as a hard link).

    At the cut, the shim writes every pre-image back, truncates each file to its durable
    size, undoes the directory changes and sends itself SIGKILL, all under one lock that every
    intercepted call takes, so no other thread writes in between. A torn write is modelled by
    applying a prefix of whole 512-byte sectors of the write the cut happens in before the
    cut: a sector is the unit a disk writes atomically.

    Writes through a shared writable mapping (msync, LMDB's MDB_WRITEMAP) are not modelled.

    Environment
      SOS_POWERCUT_DIR       the directory whose files are tracked (required; else inert)
      SOS_POWERCUT_AFTER_MS  cut at the first tracked write or sync at least this long after
                             the library was loaded (0 or unset: never cut)
      SOS_POWERCUT_SKIP      then let this many more tracked calls pass first (default 0)
      SOS_POWERCUT_SEED      chooses where in the call the cut falls: before it, after it, or
                             in the middle of a write (a torn write)
      SOS_POWERCUT_LOG       a file that gets one line describing the cut */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PC_PAGE      4096
#define PC_SECTOR    512
#define PC_MAX_FDS   4096
#define PC_MAX_INODE 64
#define PC_MAX_DIRS  64

typedef struct {
    uint64_t index;
    uint8_t data[PC_PAGE];
} pc_page_t;

typedef struct {
    dev_t dev;
    ino_t ino;
    char path[PATH_MAX];
    int rfd;            /* our read-only descriptor of the inode, 0 until needed */
    bool dirty;         /* has unsynced changes: pages and size below are valid */
    off_t durable_size; /* the size the file had when last synced */
    pc_page_t **pages;  /* pre-images of pages below durable_size */
    size_t n_pages, cap_pages;
} pc_inode_t;

typedef struct {
    int kind;                   /* 0: a file was created; 1: a rename */
    char path[PATH_MAX];        /* created file, or the rename's new name */
    char old[PATH_MAX];         /* the rename's old name */
    char backup[PATH_MAX + 64]; /* a hard link to the file the rename replaced, or "" */
    char dir[PATH_MAX];
} pc_dirop_t;

typedef struct {
    bool used;
    bool dsync;
    bool is_dir;
    int inode; /* index in s_inodes, or -1 for a directory */
    char dir_path[PATH_MAX];
} pc_fd_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pc_fd_t s_fds[PC_MAX_FDS];
static pc_inode_t s_inodes[PC_MAX_INODE];
static int s_n_inodes;
static pc_dirop_t s_dirops[PC_MAX_DIRS];
static int s_n_dirops;
static char s_dir[PATH_MAX];
static size_t s_dir_len;
static uint64_t s_loaded_ns, s_after_ns;
static long s_skip;
static uint64_t s_seed;
static bool s_armed;
static unsigned s_backups;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
s_rand(void)
{
    /*  splitmix64: enough to pick a cut point, reproducible from the seed */
    uint64_t z = (s_seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__attribute__((constructor)) static void
s_init(void)
{
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    s_loaded_ns = s_now_ns();
    const char *dir = getenv("SOS_POWERCUT_DIR");
    if (dir && *dir && realpath(dir, s_dir)) {
        s_dir_len = strlen(s_dir);
    } else if (dir && *dir) {
        /*  the directory may not exist yet: take it as given */
        snprintf(s_dir, sizeof s_dir, "%s", dir);
        s_dir_len = strlen(s_dir);
    }
    const char *after = getenv("SOS_POWERCUT_AFTER_MS");
    const char *skip = getenv("SOS_POWERCUT_SKIP");
    const char *seed = getenv("SOS_POWERCUT_SEED");
    if (after && atoll(after) > 0) {
        s_after_ns = (uint64_t)atoll(after) * 1000000u;
        s_armed = s_dir_len > 0;
    }
    s_skip = skip ? atol(skip) : 0;
    s_seed = seed ? strtoull(seed, NULL, 10) : 1;
}

/* ------------------------------------------------------------------ bookkeeping ---- */

static void
s_abs_path(int dirfd, const char *path, char *out)
{
    if (path[0] == '/' || dirfd != AT_FDCWD) {
        /*  relative to another directory descriptor: only the data directory's own paths
            matter, and the node passes those absolute */
        snprintf(out, PATH_MAX, "%s", path);
        return;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    snprintf(out, PATH_MAX, "%s/%s", cwd, path);
}

static bool
s_tracked(const char *abs)
{
    return s_dir_len && strncmp(abs, s_dir, s_dir_len) == 0 &&
           (abs[s_dir_len] == 0 || abs[s_dir_len] == '/');
}

static void
s_parent(const char *path, char *out)
{
    snprintf(out, PATH_MAX, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = 0;
}

static pc_inode_t *
s_inode_of(int fd)
{
    if (fd < 0 || fd >= PC_MAX_FDS || !s_fds[fd].used || s_fds[fd].inode < 0)
        return NULL;
    return &s_inodes[s_fds[fd].inode];
}

static int
s_inode_find(const struct stat *st, const char *path)
{
    for (int i = 0; i < s_n_inodes; i++)
        if (s_inodes[i].dev == st->st_dev && s_inodes[i].ino == st->st_ino)
            return i;
    if (s_n_inodes == PC_MAX_INODE)
        return -1;
    pc_inode_t *in = &s_inodes[s_n_inodes];
    memset(in, 0, sizeof *in);
    in->dev = st->st_dev;
    in->ino = st->st_ino;
    snprintf(in->path, sizeof in->path, "%s", path);
    return s_n_inodes++;
}

static void
s_after_open(int fd, const char *abs, int flags, bool created)
{
    if (fd < 0 || fd >= PC_MAX_FDS || !s_tracked(abs))
        return;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    pc_fd_t *f = &s_fds[fd];
    memset(f, 0, sizeof *f);
    f->used = true;
    f->dsync = (flags & O_DSYNC) != 0 || (flags & O_SYNC) == O_SYNC;
    f->is_dir = S_ISDIR(st.st_mode);
    f->inode = -1;
    if (f->is_dir)
        snprintf(f->dir_path, sizeof f->dir_path, "%s", abs);
    else if (S_ISREG(st.st_mode)) {
        f->inode = s_inode_find(&st, abs);
        if (f->inode >= 0 && created && !s_inodes[f->inode].dirty) {
            /*  a new file: durable size 0 until it is synced */
            s_inodes[f->inode].dirty = true;
            s_inodes[f->inode].durable_size = 0;
        }
    }
    if (created && s_n_dirops < PC_MAX_DIRS) {
        pc_dirop_t *op = &s_dirops[s_n_dirops++];
        memset(op, 0, sizeof *op);
        op->kind = 0;
        snprintf(op->path, sizeof op->path, "%s", abs);
        s_parent(abs, op->dir);
    }
}

static pc_page_t *
s_page_get(pc_inode_t *in, uint64_t index)
{
    for (size_t i = 0; i < in->n_pages; i++)
        if (in->pages[i]->index == index)
            return in->pages[i];
    return NULL;
}

/*  Keep the durable content of page index of the file behind fd, if it is not kept yet. */
static void
s_page_save(int fd, pc_inode_t *in, uint64_t index)
{
    if ((off_t)(index * PC_PAGE) >= in->durable_size || s_page_get(in, index))
        return;
    if (in->n_pages == in->cap_pages) {
        size_t cap = in->cap_pages ? in->cap_pages * 2 : 64;
        pc_page_t **pages = realloc(in->pages, cap * sizeof *pages);
        if (!pages)
            abort(); /* a test harness: running out of memory is a failed run */
        in->pages = pages;
        in->cap_pages = cap;
    }
    pc_page_t *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->index = index;
    off_t off = (off_t)(index * PC_PAGE);
    size_t len = PC_PAGE;
    if (off + (off_t)len > in->durable_size)
        len = (size_t)(in->durable_size - off);
    /*  fd may be write-only (LMDB's meta descriptor): read through a descriptor of our own,
        opened on the same inode */
    if (in->rfd <= 0) {
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        in->rfd = real_open(self, O_RDONLY | O_CLOEXEC);
        if (in->rfd < 0)
            abort();
    }
    ssize_t got = pread(in->rfd, p->data, len, off);
    (void)got; /* a short read leaves zeros: what a hole reads as */
    in->pages[in->n_pages++] = p;
}

static void
s_mark_dirty(int fd, pc_inode_t *in)
{
    if (in->dirty)
        return;
    struct stat st;
    in->dirty = true;
    in->durable_size = fstat(fd, &st) == 0 ? st.st_size : 0;
}

static void
s_synced(pc_inode_t *in)
{
    for (size_t i = 0; i < in->n_pages; i++)
        free(in->pages[i]);
    in->n_pages = 0;
    in->dirty = false;
}

/*  A write of len bytes at off is about to happen on fd. */
static void
s_before_write(int fd, off_t off, size_t len)
{
    pc_inode_t *in = s_inode_of(fd);
    if (!in || !len)
        return;
    s_mark_dirty(fd, in);
    for (uint64_t p = (uint64_t)off / PC_PAGE; p <= (uint64_t)(off + (off_t)len - 1) / PC_PAGE; p++)
        s_page_save(fd, in, p);
}

/*  An O_DSYNC write of buf at off has returned: its bytes are durable. */
static void
s_after_dsync_write(int fd, const uint8_t *buf, size_t len, off_t off)
{
    pc_inode_t *in = s_inode_of(fd);
    if (!in || !len || !in->dirty)
        return;
    off_t end = off + (off_t)len;
    if (end > in->durable_size) {
        /*  the file grew durably: the pages between read as zeros until written */
        off_t old = in->durable_size;
        in->durable_size = end;
        for (uint64_t p = (uint64_t)old / PC_PAGE; p <= (uint64_t)(end - 1) / PC_PAGE; p++)
            if (!s_page_get(in, p) && (off_t)(p * PC_PAGE) >= old) {
                s_page_save(fd, in, p); /* reads current content ... */
                pc_page_t *pg = s_page_get(in, p);
                if (pg)
                    memset(pg->data, 0, PC_PAGE); /* ... but durable is zeros */
            }
    }
    for (uint64_t p = (uint64_t)off / PC_PAGE; p <= (uint64_t)(end - 1) / PC_PAGE; p++) {
        pc_page_t *pg = s_page_get(in, p);
        if (!pg)
            continue;
        off_t ps = (off_t)(p * PC_PAGE);
        off_t from = off > ps ? off : ps;
        off_t to = end < ps + PC_PAGE ? end : ps + PC_PAGE;
        memcpy(pg->data + (from - ps), buf + (from - off), (size_t)(to - from));
    }
}

/* ------------------------------------------------------------------ the cut ---- */

static void
s_log(const char *format, ...)
{
    const char *path = getenv("SOS_POWERCUT_LOG");
    if (!path)
        return;
    int fd = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[512];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    if (n > 0)
        real_write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    real_close(fd);
}

__attribute__((noreturn)) static void
s_cut(const char *where)
{
    size_t pages = 0;
    for (int i = 0; i < s_n_inodes; i++) {
        pc_inode_t *in = &s_inodes[i];
        if (!in->dirty)
            continue;
        int fd = real_open(in->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* removed since: the directory undo below brings it back or not */
        for (size_t k = 0; k < in->n_pages; k++) {
            off_t off = (off_t)(in->pages[k]->index * PC_PAGE);
            size_t len = PC_PAGE;
            if (off + (off_t)len > in->durable_size)
                len = (size_t)(in->durable_size - off);
            if (real_pwrite(fd, in->pages[k]->data, len, off) != (ssize_t)len)
                s_log("powercut: cannot restore %s at %lld\n", in->path, (long long)off);
            pages++;
        }
        if (real_ftruncate(fd, in->durable_size) != 0)
            s_log("powercut: cannot truncate %s\n", in->path);
        real_close(fd);
    }
    for (int i = s_n_dirops - 1; i >= 0; i--) {
        pc_dirop_t *op = &s_dirops[i];
        if (op->kind == 0)
            unlink(op->path);
        else {
            real_rename(op->path, op->old);
            if (op->backup[0])
                real_rename(op->backup, op->path);
        }
    }
    s_log("powercut: cut %s after %.3f s; %zu pages restored, %d directory changes undone\n", where,
          (double)(s_now_ns() - s_loaded_ns) / 1e9, pages, s_n_dirops);
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

typedef enum { PC_BEFORE, PC_TORN, PC_AFTER } pc_when_t;

/*  Called under the lock before each tracked mutating call: whether the cut falls in this
    one, and where. */
static bool
s_cut_here(pc_when_t *when, bool can_tear)
{
    if (!s_armed || s_now_ns() - s_loaded_ns < s_after_ns)
        return false;
    if (s_skip > 0) {
        s_skip--;
        return false;
    }
    uint64_t r = s_rand() % 3;
    *when = r == 0 ? PC_BEFORE : r == 1 && can_tear ? PC_TORN : PC_AFTER;
    return true;
}

static bool
s_is_tracked_fd(int fd)
{
    return fd >= 0 && fd < PC_MAX_FDS && s_fds[fd].used;
}

/* ------------------------------------------------------------------ interposed ---- */

static int
s_open_common(int dirfd, const char *path, int flags, mode_t mode, bool at)
{
    char abs[PATH_MAX];
    s_abs_path(dirfd, path, abs);
    bool tracked = s_tracked(abs);
    bool created = false;
    if (tracked && (flags & O_CREAT)) {
        struct stat st;
        created = stat(abs, &st) != 0 && errno == ENOENT;
    }
    int fd = at ? real_openat(dirfd, path, flags, mode) : real_open(path, flags, mode);
    if (fd >= 0 && tracked) {
        pthread_mutex_lock(&s_lock);
        s_after_open(fd, abs, flags, created);
        pthread_mutex_unlock(&s_lock);
    }
    return fd;
}

int
open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return s_open_common(AT_FDCWD, path, flags, mode, false);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int
openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return s_open_common(dirfd, path, flags, mode, true);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int
close(int fd)
{
    if (s_is_tracked_fd(fd)) {
        pthread_mutex_lock(&s_lock);
        memset(&s_fds[fd], 0, sizeof s_fds[fd]);
        pthread_mutex_unlock(&s_lock);
    }
    return real_close(fd);
}

/*  One write of the buffers iov at off (or at the file offset when off < 0). */
static ssize_t
s_write_common(int fd, const struct iovec *iov, int iovcnt, off_t off, bool positioned)
{
    if (!s_is_tracked_fd(fd) || s_fds[fd].is_dir) {
        if (positioned)
            return real_pwritev(fd, iov, iovcnt, off);
        return real_writev(fd, iov, iovcnt);
    }
    pthread_mutex_lock(&s_lock);
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    off_t at = positioned ? off : lseek(fd, 0, SEEK_CUR);
    s_before_write(fd, at, len);
    pc_when_t when;
    bool cut = s_cut_here(&when, len > PC_SECTOR);
    if (cut && when == PC_BEFORE)
        s_cut("before a write");
    if (cut && when == PC_TORN) {
        /*  apply whole sectors of a prefix of the write; an O_DSYNC write that is torn was
            never acknowledged, so its prefix is as unsynced as any other write */
        size_t sectors = len / PC_SECTOR;
        size_t keep = (size_t)(s_rand() % (sectors + 1)) * PC_SECTOR;
        size_t done = 0;
        for (int i = 0; i < iovcnt && done < keep; i++) {
            size_t n = iov[i].iov_len < keep - done ? iov[i].iov_len : keep - done;
            if (real_pwrite(fd, iov[i].iov_base, n, at + (off_t)done) != (ssize_t)n)
                break;
            done += n;
        }
        if (s_fds[fd].dsync) {
            /*  the torn prefix of an O_DSYNC write may have reached the platter */
            for (int i = 0, o = 0; i < iovcnt && o < (int)done; i++) {
                size_t n = iov[i].iov_len < done - (size_t)o ? iov[i].iov_len : done - (size_t)o;
                s_after_dsync_write(fd, iov[i].iov_base, n, at + o);
                o += (int)n;
            }
        }
        s_cut("in a torn write");
    }
    ssize_t rc = positioned ? real_pwritev(fd, iov, iovcnt, off) : real_writev(fd, iov, iovcnt);
    if (rc > 0 && s_fds[fd].dsync) {
        size_t left = (size_t)rc;
        off_t o = at;
        for (int i = 0; i < iovcnt && left; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            s_after_dsync_write(fd, iov[i].iov_base, n, o);
            o += (off_t)n;
            left -= n;
        }
    }
    if (cut)
        s_cut("after a write");
    pthread_mutex_unlock(&s_lock);
    return rc;
}

ssize_t
write(int fd, const void *buf, size_t count)
{
    if (!s_is_tracked_fd(fd))
        return real_write(fd, buf, count);
    struct iovec iov = {(void *)buf, count};
    return s_write_common(fd, &iov, 1, -1, false);
}

ssize_t
pwrite(int fd, const void *buf, size_t count, off_t off)
{
    if (!s_is_tracked_fd(fd))
        return real_pwrite(fd, buf, count, off);
    struct iovec iov = {(void *)buf, count};
    return s_write_common(fd, &iov, 1, off, true);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) __attribute__((alias("pwrite")));

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
    return s_write_common(fd, iov, iovcnt, -1, false);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    return s_write_common(fd, iov, iovcnt, off, true);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
    __attribute__((alias("pwritev")));

int
ftruncate(int fd, off_t length)
{
    if (!s_is_tracked_fd(fd) || s_fds[fd].inode < 0)
        return real_ftruncate(fd, length);
    pthread_mutex_lock(&s_lock);
    pc_inode_t *in = s_inode_of(fd);
    s_mark_dirty(fd, in);
    for (uint64_t p = (uint64_t)length / PC_PAGE; (off_t)(p * PC_PAGE) < in->durable_size; p++)
        s_page_save(fd, in, p);
    pc_when_t when;
    bool cut = s_cut_here(&when, false);
    if (cut && when == PC_BEFORE)
        s_cut("before an ftruncate");
    int rc = real_ftruncate(fd, length);
    if (cut)
        s_cut("after an ftruncate");
    pthread_mutex_unlock(&s_lock);
    return rc;
}

int ftruncate64(int fd, off_t length) __attribute__((alias("ftruncate")));

static int
s_sync_common(int fd, bool data_only)
{
    if (!s_is_tracked_fd(fd))
        return data_only ? real_fdatasync(fd) : real_fsync(fd);
    pthread_mutex_lock(&s_lock);
    pc_when_t when;
    bool cut = s_cut_here(&when, false);
    if (cut && when == PC_BEFORE)
        s_cut(data_only ? "before an fdatasync" : "before an fsync");
    int rc = data_only ? real_fdatasync(fd) : real_fsync(fd);
    if (rc == 0) {
        pc_fd_t *f = &s_fds[fd];
        if (f->inode >= 0)
            s_synced(&s_inodes[f->inode]);
        if (f->is_dir) {
            /*  the directory's entries are durable now */
            int kept = 0;
            for (int i = 0; i < s_n_dirops; i++)
                if (strcmp(s_dirops[i].dir, f->dir_path) != 0)
                    s_dirops[kept++] = s_dirops[i];
                else if (s_dirops[i].backup[0])
                    unlink(s_dirops[i].backup);
            s_n_dirops = kept;
        }
    }
    if (cut)
        s_cut(data_only ? "after an fdatasync" : "after an fsync");
    pthread_mutex_unlock(&s_lock);
    return rc;
}

int
fsync(int fd)
{
    return s_sync_common(fd, false);
}

int
fdatasync(int fd)
{
    return s_sync_common(fd, true);
}

int
rename(const char *old, const char *new)
{
    char abs_old[PATH_MAX], abs_new[PATH_MAX];
    s_abs_path(AT_FDCWD, old, abs_old);
    s_abs_path(AT_FDCWD, new, abs_new);
    if (!s_tracked(abs_new))
        return real_rename(old, new);
    pthread_mutex_lock(&s_lock);
    pc_when_t when;
    bool cut = s_cut_here(&when, false);
    if (cut && when == PC_BEFORE)
        s_cut("before a rename");
    char backup[PATH_MAX + 64] = "";
    struct stat st;
    if (stat(abs_new, &st) == 0) {
        snprintf(backup, sizeof backup, "%s.powercut-%d-%u", abs_new, (int)getpid(), s_backups++);
        if (link(abs_new, backup) != 0)
            backup[0] = 0;
    }
    int rc = real_rename(old, new);
    if (rc == 0 && s_n_dirops < PC_MAX_DIRS) {
        pc_dirop_t *op = &s_dirops[s_n_dirops++];
        memset(op, 0, sizeof *op);
        op->kind = 1;
        snprintf(op->path, sizeof op->path, "%s", abs_new);
        snprintf(op->old, sizeof op->old, "%s", abs_old);
        snprintf(op->backup, sizeof op->backup, "%s", backup);
        s_parent(abs_new, op->dir);
        /*  the renamed inode now answers to the new name */
        for (int i = 0; i < s_n_inodes; i++)
            if (strcmp(s_inodes[i].path, abs_old) == 0)
                snprintf(s_inodes[i].path, sizeof s_inodes[i].path, "%s", abs_new);
    } else if (backup[0])
        unlink(backup);
    if (cut)
        s_cut("after a rename");
    pthread_mutex_unlock(&s_lock);
    return rc;
}
