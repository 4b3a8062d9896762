/*  sosbench_redis.c: the Redis side of `sosbench messages --compare redis`: starts redis-server
    with its durable settings next to the nodes' stores and drives it as the node is driven.

    Redis is the yardstick because its durable mode makes the same promise as a node's send:
    with appendonly yes and appendfsync always, a write is acknowledged after its event-loop
    batch was appended to the AOF and fsync'd. Each client thread has its own connection and
    keeps `window` XADDs outstanding (pipelined), as a node's client keeps `window` sends out;
    all clients append to one stream, as they all send to one room. hiredis is optional: a
    build without it says so and skips the comparison. */
#define _GNU_SOURCE
#include "sosbench_redis.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SOS_HAVE_HIREDIS

int
sosbench_redis_run(const sosbench_redis_opts_t *opts, sosbench_redis_result_t *result)
{
    memset(result, 0, sizeof *result);
    snprintf(result->error, sizeof result->error,
             "sosbench was built without hiredis (libhiredis-dev): no Redis comparison");
    return SOSBENCH_REDIS_SKIPPED;
}

#else

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define S_NS_PER_S        1000000000ULL
#define S_READY_MS        10000 /* redis-server must answer PING within this */
#define S_RING_MAX        1000  /* the largest window */
#define S_CONNECT_TIMEOUT 5

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S_NS_PER_S + (uint64_t)ts.tv_nsec;
}

//  redis-server's path on PATH, or false
static bool
s_find_server(char *path, size_t size)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", env ? env : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        int n = snprintf(path, size, "%s/redis-server", d);
        if (n > 0 && (size_t)n < size && access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static pid_t
s_server_start(const char *server, const char *dir, int port)
{
    char port_s[16], log[PATH_MAX];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execl(server, server, "--port", port_s, "--bind", "127.0.0.1", "--dir", dir, "--appendonly",
          "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--protected-mode",
          "no", (char *)NULL);
    _exit(127);
}

static uint64_t
s_proc_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    if (p &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
        return utime + stime;
    return 0;
}

typedef struct {
    const sosbench_redis_opts_t *opts;
    int port;
    uint64_t start_ns, deadline_ns;
    uint64_t *lat_ns;
    size_t n_lat, cap_lat;
    uint64_t end_ns;
    char error[160];
} s_rclient_t;

static void *
s_rclient_run(void *arg)
{
    s_rclient_t *self = arg;
    const sosbench_redis_opts_t *o = self->opts;
    struct timeval tv = {S_CONNECT_TIMEOUT, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", self->port, tv);
    if (!ctx || ctx->err) {
        snprintf(self->error, sizeof self->error, "connect: %s", ctx ? ctx->errstr : "no memory");
        redisFree(ctx);
        return NULL;
    }
    uint64_t ring[S_RING_MAX];
    size_t head = 0, out = 0;
    struct timespec at = {(time_t)(self->start_ns / S_NS_PER_S),
                          (long)(self->start_ns % S_NS_PER_S)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    for (;;) {
        uint64_t now = s_now_ns();
        bool more = now < self->deadline_ns;
        while (more && out < (size_t)o->window) {
            if (redisAppendCommand(ctx, "XADD %s * m %b", o->stream, o->content, (size_t)o->size) !=
                REDIS_OK) {
                snprintf(self->error, sizeof self->error, "XADD: %s", ctx->errstr);
                goto done;
            }
            ring[(head + out) % S_RING_MAX] = s_now_ns();
            out++;
        }
        if (!out)
            break;
        redisReply *reply = NULL;
        if (redisGetReply(ctx, (void **)&reply) != REDIS_OK || !reply) {
            snprintf(self->error, sizeof self->error, "XADD reply: %s", ctx->errstr);
            goto done;
        }
        uint64_t t1 = s_now_ns();
        bool ok = reply->type == REDIS_REPLY_STRING;
        if (!ok)
            snprintf(self->error, sizeof self->error, "XADD: %s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        freeReplyObject(reply);
        if (!ok)
            goto done;
        if (self->n_lat == self->cap_lat) {
            size_t cap = self->cap_lat ? self->cap_lat * 2 : 4096;
            uint64_t *lat = realloc(self->lat_ns, cap * sizeof *lat);
            if (!lat) {
                snprintf(self->error, sizeof self->error, "out of memory");
                goto done;
            }
            self->lat_ns = lat;
            self->cap_lat = cap;
        }
        self->lat_ns[self->n_lat++] = t1 - ring[head];
        self->end_ns = t1;
        head = (head + 1) % S_RING_MAX;
        out--;
    }
done:
    redisFree(ctx);
    return NULL;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

//  The q-quantile (nearest rank, as sosbench.c) of n sorted values; 0 if n is 0
static double
s_quantile(const double *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t rank = (size_t)ceil(q * (double)n);
    return v[rank ? rank - 1 : 0];
}

//  Wait until the server answers PING, or it died, or S_READY_MS passed
static bool
s_server_ready(pid_t pid, int port)
{
    uint64_t deadline = s_now_ns() + (uint64_t)S_READY_MS * 1000000ULL;
    while (s_now_ns() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return false;
        struct timeval tv = {1, 0};
        redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
        redisReply *reply = ctx && !ctx->err ? redisCommand(ctx, "PING") : NULL;
        bool ok = reply && reply->type == REDIS_REPLY_STATUS;
        if (reply)
            freeReplyObject(reply);
        redisFree(ctx);
        if (ok)
            return true;
        usleep(50000);
    }
    return false;
}

int
sosbench_redis_run(const sosbench_redis_opts_t *o, sosbench_redis_result_t *result)
{
    memset(result, 0, sizeof *result);
    char server[PATH_MAX];
    if (!s_find_server(server, sizeof server)) {
        snprintf(result->error, sizeof result->error,
                 "redis-server is not installed (Debian: redis-server): no Redis comparison");
        return SOSBENCH_REDIS_SKIPPED;
    }
    if (o->window > S_RING_MAX) {
        snprintf(result->error, sizeof result->error, "window over %d", S_RING_MAX);
        return SOSBENCH_REDIS_FAILED;
    }
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(result->error, sizeof result->error, "cannot make %s: %s", o->dir,
                 strerror(errno));
        return SOSBENCH_REDIS_FAILED;
    }
    int port = s_free_port();
    pid_t pid = port > 0 ? s_server_start(server, o->dir, port) : -1;
    if (pid < 0) {
        snprintf(result->error, sizeof result->error, "cannot start redis-server");
        return SOSBENCH_REDIS_FAILED;
    }
    int rc = SOSBENCH_REDIS_FAILED;
    s_rclient_t *clients = calloc((size_t)o->clients, sizeof *clients);
    pthread_t *threads = calloc((size_t)o->clients, sizeof *threads);
    double *lat = NULL;
    if (!clients || !threads) {
        snprintf(result->error, sizeof result->error, "out of memory");
        goto done;
    }
    if (!s_server_ready(pid, port)) {
        snprintf(result->error, sizeof result->error,
                 "redis-server did not answer PING (see %s/redis.log)", o->dir);
        goto done;
    }
    uint64_t start = s_now_ns() + S_NS_PER_S / 10;
    uint64_t ticks0 = s_proc_ticks(pid);
    int started = 0;
    for (int i = 0; i < o->clients; i++) {
        clients[i] = (s_rclient_t){.opts = o,
                                   .port = port,
                                   .start_ns = start,
                                   .deadline_ns = start + (uint64_t)o->duration_s * S_NS_PER_S};
        if (pthread_create(&threads[i], NULL, s_rclient_run, &clients[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (started < o->clients) {
        snprintf(result->error, sizeof result->error, "cannot start a client thread");
        goto done;
    }
    uint64_t end = start;
    size_t n = 0;
    for (int i = 0; i < o->clients; i++) {
        if (clients[i].error[0]) {
            snprintf(result->error, sizeof result->error, "client %d: %s", i, clients[i].error);
            goto done;
        }
        if (clients[i].end_ns > end)
            end = clients[i].end_ns;
        n += clients[i].n_lat;
    }
    double elapsed = (double)(end - start) / 1e9;
    lat = calloc(n ? n : 1, sizeof *lat);
    if (!lat || elapsed <= 0) {
        snprintf(result->error, sizeof result->error, lat ? "nothing measured" : "out of memory");
        goto done;
    }
    size_t k = 0;
    for (int i = 0; i < o->clients; i++)
        for (size_t j = 0; j < clients[i].n_lat; j++)
            lat[k++] = (double)clients[i].lat_ns[j] / 1e6;
    qsort(lat, k, sizeof *lat, s_cmp_double);
    result->acked = k;
    result->rate = (double)k / elapsed;
    result->p50 = s_quantile(lat, k, 0.5);
    result->p99 = s_quantile(lat, k, 0.99);
    result->max = k ? lat[k - 1] : 0;
    result->server_cpu =
        (double)(s_proc_ticks(pid) - ticks0) / (double)sysconf(_SC_CLK_TCK) / elapsed * 100;
    rc = SOSBENCH_REDIS_OK;
done:
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    for (int i = 0; clients && i < o->clients; i++)
        free(clients[i].lat_ns);
    free(clients);
    free(threads);
    free(lat);
    return rc;
}

#endif
