/*  sosbench_redis.h: the Redis side of `sosbench messages --compare redis`: a redis-server in
    its durable mode (appendonly yes, appendfsync always), driven like the node is driven. */
#ifndef SOSBENCH_REDIS_H
#define SOSBENCH_REDIS_H

#include <stdint.h>

typedef struct {
    const char *dir;     /* redis-server's working directory: made, left for the caller */
    const char *stream;  /* the stream key every client appends to (one stream per room) */
    const char *content; /* size bytes of message content */
    int size;
    int clients;    /* client threads, each with its own connection */
    int window;     /* requests outstanding per client (pipelined) */
    int duration_s; /* seconds of sending */
} sosbench_redis_opts_t;

typedef struct {
    double rate; /* acknowledged XADDs per second */
    uint64_t acked;
    double p50, p99, max; /* latency, ms */
    double server_cpu;    /* redis-server's CPU while sending, % of one core */
    char error[200];      /* why it failed or was skipped */
} sosbench_redis_result_t;

#define SOSBENCH_REDIS_OK      0
#define SOSBENCH_REDIS_FAILED  1
#define SOSBENCH_REDIS_SKIPPED 2 /* no redis-server on PATH, or built without hiredis */

/*  Start redis-server in opts->dir, run opts->clients clients for opts->duration_s seconds
    (XADD of the content to opts->stream, opts->window outstanding each), stop the server and
    fill *result. Returns SOSBENCH_REDIS_OK, SOSBENCH_REDIS_FAILED or SOSBENCH_REDIS_SKIPPED;
    result->error says why when not OK. */
int sosbench_redis_run(const sosbench_redis_opts_t *opts, sosbench_redis_result_t *result);

#endif
