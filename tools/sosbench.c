/*  sosbench.c: the benchmark of sosnode. It starts real sosnode processes on loopback and
    measures convergence, gossip cost and footprint of an overlay, and the message load a room
   takes.

    Everything is measured against live processes: the nodes are started with fork and exec,
    each with its own temporary data directory, and are asked through their public endpoint
    (sos_conn) exactly as any client would ask them. Every child is killed with SIGKILL when
    the program ends, whatever the path: normal end, failure, SIGINT or SIGTERM (through
    czmq's zsys_interrupted, which every wait loop checks), and the death of sosbench itself
    (PR_SET_PDEATHSIG in the child, see sos_spawn.h).

    Polling many nodes must not become the load it measures: each node has one DEALER, at
    most S_INFLIGHT_MAX requests are out at any time, a node is asked again only after its
    poll interval, and a node that has met the condition is not asked again. Times are
    taken when the reply that shows the condition arrives, so they are upper bounds with the
    poll interval as resolution. */
#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sos_client.h"
#include "sos_conn.h"
#include "sos_identity.h"
#include "sos_mp.h"
#include "sos_record.h"
#include "sos_serf.h"
#include "sos_spawn.h"
#include "sos_stress.h"
#include "sosbench_redis.h"

//  Exit codes
#define S_EXIT_OK    0
#define S_EXIT_FAIL  1
#define S_EXIT_USAGE 2

#define S_NODES_MAX       1000
#define S_CLIENTS_MAX     900 /* a room has at most 1000 members */
#define S_WINDOW_MAX      1000
#define S_CONTENT_MAX     (64 * 1024)
#define S_MEMBER_MAX      64 /* bytes of a member id kept */
#define S_ID_MAX          24 /* bytes of the message ids this program makes */
#define S_INFLIGHT_MAX    32 /* requests out at once while polling nodes */
#define S_CALL_TIMEOUT_MS 10000
#define S_REQUEST_TIMEOUT (5 * S_NS_PER_S) /* a polling request is given up after this */
#define S_NS_PER_S        1000000000ULL
#define S_NS_PER_MS       1000000ULL
#define S_FIGURES_MAX     64
#define S_LOG_TAIL        1500 /* bytes of a dead node's log shown */
#define S_POLL_PAGE       1000 /* messages in one poll reply, at most (the node's limit) */
#define S_DELAY_PARK_MS   5    /* time given to a long poll to reach the owner */
#define S_HISTORY_MAX     100000
#define S_CREATE_INFLIGHT 4 /* creates out at once on one node when filling the directory */

static const char *s_usage_text =
    "NAME\n"
    "    sosbench - measure a sosnode overlay: convergence, gossip cost, footprint, messages\n"
    "\n"
    "SYNOPSIS\n"
    "    sosbench [--sosnode PATH] [--dir DIR] [--keep] [--timeout S] COMMAND [OPTIONS]\n"
    "\n"
    "    sosbench converge [--nodes N] [--interval MS] [--fanout K] [--max-failures F]\n"
    "                      [--rooms R] [--big-rooms B] [--create-rate R] [--measure S]\n"
    "                      [--poll MS] [--compare serf] [--stress PCT] [--hold S]\n"
    "    sosbench messages [--clients C] [--size B] [--via owner|other] [--duration S]\n"
    "                      [--window W] [--history H] [--fill M] [--delays D]\n"
    "                      [--interval MS]\n"
    "    sosbench --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    sosbench starts real sosnode processes on 127.0.0.1 (free ports, one temporary data\n"
    "    directory each, removed at the end), drives them through their public endpoint as\n"
    "    a client would, and prints what it measured: first a table for people, then one\n"
    "    key=value line per figure for scripts. Every number is measured on this run.\n"
    "\n"
    "    Every node it started is killed (SIGKILL) when it ends, also on failure, SIGINT or\n"
    "    SIGTERM; if sosbench itself is killed, its nodes die with it (only the temporary\n"
    "    directory is then left behind). Nodes log at warning level (--log-level) to nodeI.log\n"
    "    in the temporary directory.\n"
    "\n"
    "    sosbench is not a test: it asserts no time. It fails (exit 1) only when it cannot\n"
    "    measure (a node dies, a phase times out, requests fail) or when the message check\n"
    "    finds a lost, repeated or reordered message.\n"
    "\n"
    "COMMANDS\n"
    "    converge\n"
    "        Starts node 0 (the genesis of all others), then nodes 1 to N-1 back to back,\n"
    "        with --rate-limit off and the other limits on clients and strangers lifted,\n"
    "        and measures in this order:\n"
    "\n"
    "        join       time from the last node's start until every node's `workers` lists\n"
    "                   all N nodes; also in gossip rounds (time / interval).\n"
    "        cost       gossip bytes sent per node per second (the delta of `status`\n"
    "                   gossip.bytes_out over a window of --measure seconds, minus the\n"
    "                   replies to sosbench's own requests): at rest; with 10 rooms in\n"
    "                   the directory; while rooms are created at --create-rate per second\n"
    "                   (round-robin over the nodes); and at rest with --big-rooms rooms.\n"
    "                   The rest figures should not grow with the directory.\n"
    "        spread     time from a `create` (random room hash) until every node's `rooms`\n"
    "                   listing has the room, median and max over --rooms rooms created on\n"
    "                   different nodes.\n"
    "        footprint  RSS (VmRSS of /proc/PID/status) per node, median and max, at rest\n"
    "                   and at rest with --big-rooms rooms, and the anonymous part of it\n"
    "                   (RssAnon; the rest is mostly shared library pages, counted in every\n"
    "                   node); CPU per idle node (utime + stime of /proc/PID/stat over the\n"
    "                   rest window) as % of one core.\n"
    "        failure    kill -9 of one node (not the genesis), once every node's local\n"
    "                   health is 0 (the wait is failure_settle_s); time until every other\n"
    "                   node has removed it from `workers`, in seconds and in rounds (time /\n"
    "                   interval, and the `rounds` counter delta of node 0).\n"
    "        join_one   time from the start of one more node until all nodes list it and\n"
    "                   it lists them all.\n"
    "\n"
    "        With --stress PCT, busy processes (stress-ng --cpu-load, else spinning children\n"
    "        of sosbench) take PCT % of every CPU from before the first start (of serf's\n"
    "        agents too, with --compare serf) through join, hold, the first rest window and\n"
    "        spread; such a run ends after spread. With --hold S (or --stress), after join\n"
    "        the network is left alone for S seconds, and the live workers removed anywhere\n"
    "        (the sum over nodes of gossip.workers_removed; no node is stopped before the\n"
    "        failure phase, so every removal until then is a false one) are counted, during\n"
    "        join and during hold. If join does not complete within --timeout, the run\n"
    "        reports how many nodes were still incomplete and the nodes' exchanges_ok,\n"
    "        exchanges_failed and workers_removed, and fails.\n"
    "\n"
    "        With --compare serf, and serf on PATH, the same number of serf agents is run\n"
    "        first on loopback (the first, then all others with -join to it, -profile=lan)\n"
    "        and measured the same way, through serf's msgpack RPC (-rpc-addr): join is\n"
    "        the time from the last agent's start until every agent's `members` lists all\n"
    "        N alive, polled every --poll ms; spread is the time from an RPC `event` (a\n"
    "        user event, not coalesced) on one agent until every agent's RPC `stream` of\n"
    "        user events has delivered it, for --rooms events fired on different agents;\n"
    "        memory is RssAnon per idle agent. serf's agent has no setting for the gossip\n"
    "        interval or fanout: -profile=lan is memberlist's LAN profile (gossip every\n"
    "        200 ms to 3 nodes), which the report states beside the nodes' own. Then the\n"
    "        agents are killed and sosnode is measured; the ratios are sosnode / serf.\n"
    "        Without serf on PATH, the comparison is skipped with a message.\n"
    "\n"
    "    messages\n"
    "        Starts two nodes, the owner of a room and another node, creates the room on\n"
    "        the owner, and measures:\n"
    "\n"
    "        send       C clients (threads, one DEALER each) join the room and send durable\n"
    "                   messages (op send: B bytes of base64 text, a unique msg_id) through\n"
    "                   the owner or through the other node (which forwards each to the\n"
    "                   owner) for S seconds, each with W requests outstanding; sends per\n"
    "                   second (acknowledged), and latency p50, p99 and max per request\n"
    "                   (monotonic clock, from the request to its reply). The CPU used by\n"
    "                   each node and by sosbench itself in that time shows which one bounds\n"
    "                   the rate.\n"
    "        poll       messages per second delivered to a reader catching up on the full\n"
    "                   room: `poll` since 0, then since the last seq, until last_seq.\n"
    "                   If the room holds fewer than --fill messages, it is filled up first\n"
    "                   (pipelined sends to the owner). Read through the owner, and also\n"
    "                   through the other node with --via other.\n"
    "        check      the catch-up read must show seq strictly increasing, every\n"
    "                   acknowledged message exactly once with the seq its acknowledgement\n"
    "                   gave, and no two acknowledgements with one seq; messages that fell\n"
    "                   out of the room's history (--history) are counted, not checked.\n"
    "                   Any violation fails the run.\n"
    "        delay      D times: a reader long-polls (wait_ms 20000) through the other node,\n"
    "                   then a message is sent to the owner; the time from the send's\n"
    "                   acknowledgement to the reader's reply (negative if the reply came\n"
    "                   first), median and p99, and from the send's request to the reply.\n"
    "\n"
    "GLOBAL OPTIONS\n"
    "    --sosnode PATH     The sosnode binary (default: sosnode next to sosbench).\n"
    "    --dir DIR          Where the temporary directory is made (default $TMPDIR, else\n"
    "                       /tmp). The nodes' stores are there: its file system decides\n"
    "                       the cost of each commit's fsync.\n"
    "    --keep             Keep the temporary directory (stores and logs) at the end.\n"
    "    --log-level LEVEL  The nodes' log level (default warning; info logs every failure,\n"
    "                       suspicion and removal, with --keep to read them after).\n"
    "    --timeout S        Give up a phase that has not finished in S seconds (default 120).\n"
    "    -h, --help         Print this text and exit.\n"
    "    -V, --version      Print the version and exit.\n"
    "\n"
    "CONVERGE OPTIONS\n"
    "    --nodes N          Nodes to start, 3 to 1000 (default 20).\n"
    "    --interval MS      The nodes' gossip interval (default 200).\n"
    "    --fanout K         The nodes' fanout (default 3).\n"
    "    --max-failures F   The nodes' failures before removal (default: the node's, 5).\n"
    "    --rooms R          Rooms whose spread is timed (default 5).\n"
    "    --big-rooms B      Rooms in the directory for the last rest window (default 1000).\n"
    "    --create-rate R    Rooms created per second in the create window (default 20).\n"
    "    --measure S        Length of each cost and CPU window in seconds (default 5).\n"
    "    --poll MS          Interval between two requests to one node while waiting\n"
    "                       (default 50, or 100 above 50 nodes).\n"
    "    --compare serf     Measure serf agents too, in the same run (see above).\n"
    "    --stress PCT       Busy processes take PCT % (1 to 100) of the CPUs (see above).\n"
    "    --join-trace FILE  Write a line per `status` answer during join to FILE: seconds\n"
    "                       since the join's first poll, node index, workers listed, and\n"
    "                       the node's exchanges_ok, exchanges_failed, health, view_renewed\n"
    "                       and rumors_in, to see which nodes lag and why.\n"
    "    --hold S           Seconds after join counting false removals (default 0, or 60\n"
    "                       with --stress).\n"
    "\n"
    "MESSAGES OPTIONS\n"
    "    --clients C        Client threads, 1 to 900 (default 10).\n"
    "    --size B           Bytes of content per message, 1 to 65536 (default 256).\n"
    "    --via owner|other  Where the clients send (default owner).\n"
    "    --duration S       Seconds of sending (default 5).\n"
    "    --window W         Requests outstanding per client (default 1).\n"
    "    --history H        The owner's --history, up to 100000 (default 100000).\n"
    "    --fill M           Messages the room must hold for the poll figure (default 50000).\n"
    "    --delays D         Messages timed to a long-polling reader (default 200).\n"
    "    --interval MS      The nodes' gossip interval (default 200).\n"
    "    --compare null     Instead of the phases above, measure what CURVE costs: the\n"
    "                       send phase (sends per second, latency) and the round trip of\n"
    "                       one client with one request out, with the nodes on CURVE (as\n"
    "                       always) and on two new nodes with --transport null (sosbench\n"
    "                       sets SOS_ALLOW_NULL_TRANSPORT=1 for them), twice each in turns,\n"
    "                       the best of each side, and the ratios CURVE / NULL.\n"
    "    --compare redis    Then run redis-server (appendonly yes, appendfsync always; its\n"
    "                       directory beside the nodes' stores) with the same clients, window\n"
    "                       and message size, XADD to one stream, and print its figures and\n"
    "                       the ratios. Skipped, saying so, without redis-server or hiredis.\n"
    "\n"
    "OUTPUT\n"
    "    A table with one figure per line (name, value, unit, and the target where the\n"
    "    project states one), then the parameters and figures as key=value lines, e.g.\n"
    "    \"join_s=1.234\", ending with \"result=ok\" or \"result=fail\". Byte rates are bytes of\n"
    "    gossip frames, without ZeroMQ and TCP framing. The parameters include\n"
    "    busy_before_pct, the share of all CPUs busy in the second before the run: other\n"
    "    work on the machine skews every figure. Progress lines go to stderr.\n"
    "\n"
    "ENVIRONMENT\n"
    "    TMPDIR     Where the temporary directory is made, unless --dir is given.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 when every figure was measured, 1 when a measurement failed or the message check\n"
    "    failed (one line on stderr says why), 2 on bad arguments.\n"
    "\n"
    "EXAMPLES\n"
    "    $ sosbench converge --nodes 50\n"
    "    $ sosbench messages --clients 50 --via other\n"
    "    $ sosbench converge --nodes 20 | grep '^spread_max_s='\n";

/* ------------------------------------------------------------------ options ---- */

typedef enum { S_CMD_NONE, S_CMD_CONVERGE, S_CMD_MESSAGES } s_cmd_t;

typedef struct {
    s_cmd_t cmd;
    char sosnode[PATH_MAX];
    const char *dir;
    bool keep;
    const char *log_level; /* the nodes' --log-level */
    int timeout_s;
    //  converge
    int nodes;
    int interval_ms;
    int fanout;
    int max_failures; /* 0: the node's default */
    int rooms;
    int big_rooms;
    int create_rate;
    int measure_s;
    int poll_ms;
    bool compare_serf;
    int stress_pct;         /* 0: no stress */
    int hold_s;             /* -1: not given */
    const char *join_trace; /* --join-trace FILE, or NULL */
    //  messages
    int clients;
    int size;
    bool via_other;
    int duration_s;
    int window;
    int history;
    int fill;
    int delays;
    bool compare_redis;
    bool compare_null; /* --compare null: CURVE against the NULL transport */
} s_opts_t;

/* ------------------------------------------------------------------ figures ---- */

typedef struct {
    char key[48];
    double value;
    int decimals;
    char unit[16];
    char label[64];
    char target[40];
} s_figure_t;

typedef struct {
    char title[400];
    s_figure_t items[S_FIGURES_MAX];
    size_t n;
    char params[512]; /* key=value pairs, space separated */
    bool failed;
} s_report_t;

static void
s_fig(s_report_t *r, const char *key, double value, int decimals, const char *unit,
      const char *label, const char *target)
{
    if (r->n == S_FIGURES_MAX)
        return;
    s_figure_t *f = &r->items[r->n++];
    snprintf(f->key, sizeof f->key, "%s", key);
    f->value = value;
    f->decimals = decimals;
    snprintf(f->unit, sizeof f->unit, "%s", unit);
    snprintf(f->label, sizeof f->label, "%s", label);
    snprintf(f->target, sizeof f->target, "%s", target ? target : "");
}

static void
s_report_print(const s_report_t *r)
{
    printf("\n%s\n\n", r->title);
    printf("  %-44s %14s  %-8s %s\n", "figure", "value", "unit", "target");
    for (size_t i = 0; i < r->n; i++) {
        const s_figure_t *f = &r->items[i];
        printf("  %-44s %14.*f  %-8s %s\n", f->label, f->decimals, f->value, f->unit, f->target);
    }
    printf("\n");
    //  The parameters, then the figures, one key=value per line
    char params[sizeof r->params];
    snprintf(params, sizeof params, "%s", r->params);
    for (char *save = NULL, *kv = strtok_r(params, " ", &save); kv; kv = strtok_r(NULL, " ", &save))
        printf("%s\n", kv);
    for (size_t i = 0; i < r->n; i++)
        printf("%s=%.*f\n", r->items[i].key, r->items[i].decimals, r->items[i].value);
    printf("result=%s\n", r->failed ? "fail" : "ok");
    fflush(stdout);
}

/* -------------------------------------------------------------- utilities ---- */

__attribute__((format(printf, 1, 2))) static int
s_fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("sosbench: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    return S_EXIT_FAIL;
}

__attribute__((format(printf, 1, 2))) static int
s_usage_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("sosbench: ", stderr);
    vfprintf(stderr, format, args);
    fputs(" (see sosbench --help)\n", stderr);
    va_end(args);
    return S_EXIT_USAGE;
}

__attribute__((format(printf, 1, 2))) static void
s_progress(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("sosbench: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
}

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double
s_secs(uint64_t ns)
{
    return (double)ns / (double)S_NS_PER_S;
}

//  Sleep ms, in slices, returning false if interrupted meanwhile
static bool
s_sleep_ms(uint64_t ms)
{
    uint64_t end = s_now_ns() + ms * S_NS_PER_MS;
    while (!zsys_interrupted) {
        uint64_t now = s_now_ns();
        if (now >= end)
            return true;
        uint64_t left = (end - now) / S_NS_PER_MS;
        zclock_sleep(left > 50 ? 50 : left ? (int)left : 1);
    }
    return false;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

//  The q-quantile (nearest rank) of n values, sorting them in place; 0 if n is 0
static double
s_quantile(double *v, size_t n, double q)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, s_cmp_double);
    size_t rank = (size_t)ceil(q * (double)n);
    return v[rank ? rank - 1 : 0];
}

static double
s_max(const double *v, size_t n)
{
    double m = n ? v[0] : 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static void
s_random_hex(char *out, size_t bytes)
{
    uint8_t buf[32];
    assert(bytes <= sizeof buf);
    randombytes_buf(buf, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, buf, bytes);
}

//  Copy a msgpack str into dest (size bytes with the NUL); false if absent or too long
static bool
s_body_str(const msgpack_object *body, const char *key, char *dest, size_t size)
{
    const char *p;
    size_t len;
    if (!sos_mp_str(sos_mp_map_get(body, key), &p, &len, size - 1))
        return false;
    memcpy(dest, p, len);
    dest[len] = 0;
    return true;
}

static uint64_t
s_body_uint(const msgpack_object *body, const char *key)
{
    uint64_t value = 0;
    sos_mp_uint(sos_mp_map_get(body, key), &value);
    return value;
}

//  The size of a reply's frame as the node sent it and counted it in its bytes_out: msgpack
//  packs every value in its shortest form, so packing the decoded frame again gives it back.
static size_t
s_reply_frame_size(const sos_conn_reply_t *reply)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_uint64(&pk, sos_conn_reply_req_id(reply));
    sos_mp_pack_str(&pk, sos_conn_reply_status(reply));
    msgpack_pack_object(&pk, *sos_conn_reply_body(reply));
    size_t size = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return size;
}

/* ---------------------------------------------------------------- /proc ---- */

//  A field in KiB of /proc/PID/status ("VmRSS:", "RssAnon:"), 0 if it cannot be read
static uint64_t
s_proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    uint64_t kib = 0;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0) {
            kib = strtoull(line + len, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

//  utime + stime of a process in clock ticks, 0 if it cannot be read
static uint64_t
s_proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    //  The command name may hold spaces: fields are counted from its closing parenthesis
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

//  Total and idle CPU time of the machine, in ticks, from /proc/stat
static bool
s_machine_ticks(uint64_t *total, uint64_t *idle)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return false;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return false;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += v[i];
    *idle = v[3] + v[4]; /* idle and iowait */
    return true;
}

//  The share of the machine's CPUs busy over the next ms milliseconds; -1 if unknown
static double
s_machine_busy_pct(int ms)
{
    uint64_t t0, i0, t1, i1;
    if (!s_machine_ticks(&t0, &i0))
        return -1;
    zclock_sleep(ms);
    if (!s_machine_ticks(&t1, &i1) || t1 == t0)
        return -1;
    return 100.0 * (1.0 - (double)(i1 - i0) / (double)(t1 - t0));
}

static double
s_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- nodes ---- */

typedef struct {
    int index;
    pid_t pid; /* 0 when not running */
    int port;
    char endpoint[64];
    char data[PATH_MAX];
    char log[PATH_MAX];
    char id[SOS_NODEID_HEX + 1];
    char target[SOS_NODEID_HEX + 72]; /* ID@ENDPOINT (CURVE), or the endpoint (NULL) */
    uint64_t start_ns;
    sos_conn_t *conn;
    //  Polling: one request out at a time
    uint64_t req_id; /* of the request out, 0 if none */
    uint64_t sent_ns;
    uint64_t due_ns;
    bool waiting; /* the condition waited for is not yet met here */
    uint64_t done_ns;
    uint64_t seen;   /* what the last reply showed (a count), for the error message */
    bool confirming; /* s_wait_all with pre_check: the cheap check held, confirming now */
    char note[96];   /* what the last listing lacked, for the error message */
    //  Bytes of replies to our requests, which the node counts in its bytes_out
    uint64_t client_bytes;
    //  Creates out (req ids), when filling the directory
    uint64_t creates[S_CREATE_INFLIGHT];
    uint32_t creates_out;
} s_node_t;

typedef struct {
    const s_opts_t *opts;
    char dir[PATH_MAX];
    s_node_t *nodes;
    size_t n_nodes; /* the nodes in play */
    size_t n_made;  /* the nodes made, some perhaps not yet in play */
    size_t cap_nodes;
    char interval[16];
    char fanout[16];
    char max_failures[16];
    long max_fd;
    bool null_transport; /* the nodes run --transport null (--compare null) */
} s_cluster_t;

static void s_cluster_destroy(s_cluster_t **self_p);

static s_cluster_t *
s_cluster_new(const s_opts_t *opts, size_t cap_nodes)
{
    s_cluster_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = opts;
    self->nodes = calloc(cap_nodes, sizeof *self->nodes);
    self->cap_nodes = cap_nodes;
    const char *base = opts->dir ? opts->dir : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(self->dir, sizeof self->dir, "%s/sosbench-XXXXXX", base);
    if (!self->nodes || !mkdtemp(self->dir)) {
        s_fail("cannot make a temporary directory in %s: %s", base, strerror(errno));
        self->dir[0] = 0;
        s_cluster_destroy(&self);
        return NULL;
    }
    snprintf(self->interval, sizeof self->interval, "%d", opts->interval_ms);
    snprintf(self->fanout, sizeof self->fanout, "%d", opts->fanout);
    snprintf(self->max_failures, sizeof self->max_failures, "%d", opts->max_failures);
    self->max_fd = sysconf(_SC_OPEN_MAX);
    if (self->max_fd < 0 || self->max_fd > 65536)
        self->max_fd = 65536;
    return self;
}

//  The tail of a node's log on stderr, to show why it died
static void
s_node_log_tail(const s_node_t *node)
{
    FILE *f = fopen(node->log, "r");
    if (!f)
        return;
    char buf[S_LOG_TAIL + 1];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > S_LOG_TAIL ? size - S_LOG_TAIL : 0, SEEK_SET);
    size_t n = fread(buf, 1, S_LOG_TAIL, f);
    fclose(f);
    buf[n] = 0;
    fprintf(stderr, "--- end of %s ---\n%s\n---\n", node->log, buf);
}

static void
s_node_kill(s_node_t *node)
{
    if (node->pid > 0) {
        kill(node->pid, SIGKILL);
        waitpid(node->pid, NULL, 0);
        node->pid = 0;
    }
}

static void
s_cluster_destroy(s_cluster_t **self_p)
{
    s_cluster_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n_made; i++) {
        s_node_kill(&self->nodes[i]);
        sos_conn_destroy(&self->nodes[i].conn);
    }
    if (self->dir[0]) {
        if (self->opts->keep)
            s_progress("kept %s", self->dir);
        else {
            zdir_t *dir = zdir_new(self->dir, NULL);
            if (dir) {
                zdir_remove(dir, true);
                zdir_destroy(&dir);
            }
            rmdir(self->dir);
        }
    }
    free(self->nodes);
    free(self);
    *self_p = NULL;
}

//  n free TCP ports on 127.0.0.1: all are held open together so that they differ, then
//  released for the nodes to bind
static int
s_free_ports(int *ports, size_t n)
{
    int *fds = calloc(n, sizeof *fds);
    if (!fds)
        return -1;
    int rc = 0;
    size_t opened = 0;
    for (; opened < n; opened++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
            if (fd >= 0)
                close(fd);
            rc = -1;
            break;
        }
        fds[opened] = fd;
        ports[opened] = ntohs(sa.sin_port);
    }
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    return rc;
}

//  Add a node (not started) on port, with its data directory and log in the cluster's
//  directory
static s_node_t *
s_node_add(s_cluster_t *self, int port)
{
    if (self->n_made == self->cap_nodes)
        return NULL;
    s_node_t *node = &self->nodes[self->n_made];
    memset(node, 0, sizeof *node);
    node->index = (int)self->n_made;
    node->port = port;
    snprintf(node->endpoint, sizeof node->endpoint, "tcp://127.0.0.1:%d", port);
    if (snprintf(node->data, sizeof node->data, "%s/node%d", self->dir, node->index) >=
            (int)sizeof node->data ||
        snprintf(node->log, sizeof node->log, "%s/node%d.log", self->dir, node->index) >=
            (int)sizeof node->log)
        return NULL;
    //  Every connection is CURVE, keyed by the node id: ask the node's id of its data
    //  directory before it starts (sosnode --print-id makes the identity there)
    snprintf(node->target, sizeof node->target, "%s", node->endpoint);
    if (!self->null_transport) {
        char cmd[PATH_MAX * 2 + 64];
        snprintf(cmd, sizeof cmd, "'%s' --data '%s' --print-id", self->opts->sosnode, node->data);
        FILE *p = popen(cmd, "r");
        char line[128] = "";
        bool got = p && fgets(line, sizeof line, p) != NULL;
        if (p)
            pclose(p);
        line[strcspn(line, "\n")] = '\0';
        if (!got || strlen(line) != SOS_NODEID_HEX) {
            s_fail("cannot read the node id of %s with %s --print-id", node->data,
                   self->opts->sosnode);
            return NULL;
        }
        snprintf(node->id, sizeof node->id, "%s", line);
        snprintf(node->target, sizeof node->target, "%s@%s", line, node->endpoint);
    }
    node->conn = sos_conn_new(node->target);
    if (!node->conn)
        return NULL;
    self->n_made++;
    self->n_nodes = self->n_made;
    return node;
}

//  Fork and exec sosnode for node, with genesis (or NULL) and extra arguments (NULL-ended)
static int
s_node_start(s_cluster_t *self, s_node_t *node, const s_node_t *genesis, const char *const *extra)
{
    const s_opts_t *o = self->opts;
    const char *argv[48];
    size_t n = 0;
    argv[n++] = o->sosnode;
    argv[n++] = "--data";
    argv[n++] = node->data;
    argv[n++] = "--listen";
    argv[n++] = node->endpoint;
    argv[n++] = "--gossip-interval";
    argv[n++] = self->interval;
    argv[n++] = "--fanout";
    argv[n++] = self->fanout;
    if (o->max_failures) {
        argv[n++] = "--max-failures";
        argv[n++] = self->max_failures;
    }
    argv[n++] = "--rate-limit";
    argv[n++] = "off";
    argv[n++] = "--max-pending";
    argv[n++] = "0";
    argv[n++] = "--room-quota";
    argv[n++] = "0";
    argv[n++] = "--max-rooms-unvouched";
    argv[n++] = "0";
    argv[n++] = "--log-level";
    argv[n++] = o->log_level ? o->log_level : "warning";
    if (self->null_transport) {
        argv[n++] = "--transport"; /* SOS_ALLOW_NULL_TRANSPORT=1 is set (s_compare_null) */
        argv[n++] = "null";
    }
    if (genesis) {
        argv[n++] = "--genesis";
        argv[n++] = genesis->target;
    }
    for (size_t i = 0; extra && extra[i] && n < sizeof argv / sizeof argv[0] - 1; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t pid = sos_spawn(argv, node->log, self->max_fd);
    if (pid < 0)
        return s_fail("cannot fork: %s", strerror(errno));
    node->pid = pid;
    node->start_ns = s_now_ns();
    return 0;
}

//  Check that every node that should run still does; a dead one fails the phase
static int
s_cluster_reap(s_cluster_t *self)
{
    for (size_t i = 0; i < self->n_nodes; i++) {
        s_node_t *node = &self->nodes[i];
        if (node->pid <= 0)
            continue;
        int status;
        if (waitpid(node->pid, &status, WNOHANG) == node->pid) {
            node->pid = 0;
            s_node_log_tail(node);
            if (WIFSIGNALED(status))
                return s_fail("node %d died of signal %d", node->index, WTERMSIG(status));
            return s_fail("node %d exited with code %d", node->index, WEXITSTATUS(status));
        }
    }
    return 0;
}

/* --------------------------------------------------------------- requests ---- */

//  A synchronous request on a node: rc 0 and *reply_p (to destroy) if the node replied "ok"
static int
s_call(s_node_t *node, sos_conn_reply_t **reply_p, const char *what)
{
    *reply_p = NULL;
    sos_conn_reply_t *reply = NULL;
    sos_rc rc = sos_conn_call(node->conn, S_CALL_TIMEOUT_MS, &reply);
    if (rc)
        return s_fail("%s on node %d: %s", what, node->index, sos_strerror(rc));
    if (!sos_conn_reply_ok(reply)) {
        s_fail("%s on node %d: %s: %s", what, node->index, sos_conn_reply_status(reply),
               sos_conn_reply_message(reply));
        sos_conn_reply_destroy(&reply);
        return S_EXIT_FAIL;
    }
    *reply_p = reply;
    return 0;
}

typedef struct {
    char id[SOS_NODEID_HEX + 1];
    uint64_t workers;
    uint64_t rooms;
    uint64_t rounds;
    uint64_t bytes_out;
    uint64_t exchanges_ok;
    uint64_t exchanges_failed;
    uint64_t workers_removed;
    size_t frame_size;
} s_status_t;

static void
s_status_parse(const sos_conn_reply_t *reply, s_status_t *st)
{
    const msgpack_object *body = sos_conn_reply_body(reply);
    memset(st, 0, sizeof *st);
    s_body_str(body, "node_id", st->id, sizeof st->id);
    st->workers = s_body_uint(body, "workers");
    st->rooms = s_body_uint(body, "rooms");
    const msgpack_object *gossip = sos_mp_map_get(body, "gossip");
    st->rounds = s_body_uint(gossip, "rounds");
    st->bytes_out = s_body_uint(gossip, "bytes_out");
    st->exchanges_ok = s_body_uint(gossip, "exchanges_ok");
    st->exchanges_failed = s_body_uint(gossip, "exchanges_failed");
    st->workers_removed = s_body_uint(gossip, "workers_removed");
    st->frame_size = s_reply_frame_size(reply);
}

static int
s_status(s_node_t *node, s_status_t *st)
{
    msgpack_pack_map(sos_conn_begin(node->conn, "status"), 0);
    sos_conn_reply_t *reply;
    if (s_call(node, &reply, "status"))
        return S_EXIT_FAIL;
    s_status_parse(reply, st);
    sos_conn_reply_destroy(&reply);
    return 0;
}

//  Pack a room request's first fields; the caller adds n_more pairs
static msgpack_packer *
s_room_begin(sos_conn_t *conn, const char *op, const char *room, size_t n_more)
{
    msgpack_packer *pk = sos_conn_begin(conn, op);
    msgpack_pack_map(pk, 1 + n_more);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    return pk;
}

//  Join room through conn; the member id into member
static int
s_join(s_node_t *node, sos_conn_t *conn, const char *room, const char *nick, char *member)
{
    msgpack_packer *pk = s_room_begin(conn, "join", room, 1);
    sos_mp_pack_kv_str(pk, "nickname", nick);
    sos_conn_reply_t *reply = NULL;
    sos_rc rc = sos_conn_call(conn, S_CALL_TIMEOUT_MS, &reply);
    if (rc)
        return s_fail("join through node %d: %s", node->index, sos_strerror(rc));
    int result = 0;
    if (!sos_conn_reply_ok(reply))
        result = s_fail("join through node %d: %s: %s", node->index, sos_conn_reply_status(reply),
                        sos_conn_reply_message(reply));
    else if (!s_body_str(sos_conn_reply_body(reply), "member_id", member, S_MEMBER_MAX + 1))
        result = s_fail("join through node %d: no member_id in the reply", node->index);
    sos_conn_reply_destroy(&reply);
    return result;
}

/* ---------------------------------------------------------------- polling ---- */

//  A condition polled on every node: op and its args (pack), and check, which returns 1 when
//  the reply shows the condition met, 0 if not yet, -1 on a fatal error (after a message).
//  With pre_check, a node is asked the cheap `status` until pre_check holds, and only then
//  op, whose check confirms (or sends the node back to status): a listing of a hundred
//  workers ten times a second from a hundred nodes would be a load of its own.
typedef struct {
    const char *op;
    void (*pack)(void *ctx, s_node_t *node, msgpack_packer *pk);
    int (*check)(void *ctx, s_node_t *node, const sos_conn_reply_t *reply);
    void *ctx;
    const char *counted; /* what the checks leave in node->seen, or NULL */
    int (*pre_check)(void *ctx, s_node_t *node, const sos_conn_reply_t *reply);
} s_probe_t;

static void s_pack_none(void *ctx, s_node_t *node, msgpack_packer *pk);

//  Wait until check holds on every running node with waiting set, at most the phase timeout.
//  Each node's done_ns is the time its first positive reply came in; *last_ns (if given) the
//  latest of them.
static int
s_wait_all(s_cluster_t *self, const s_probe_t *probe, const char *what, uint64_t *last_ns)
{
    uint64_t poll_ns = (uint64_t)self->opts->poll_ms * S_NS_PER_MS;
    uint64_t start = s_now_ns();
    uint64_t deadline = start + (uint64_t)self->opts->timeout_s * S_NS_PER_S;
    uint64_t next_reap = start;
    size_t n = self->n_nodes, inflight = 0;
    zmq_pollitem_t *items = calloc(n, sizeof *items);
    s_node_t **which = calloc(n, sizeof *which);
    if (!items || !which) {
        free(items);
        free(which);
        return s_fail("out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        s_node_t *node = &self->nodes[i];
        node->req_id = 0;
        node->due_ns = start;
        node->seen = 0;
        node->note[0] = 0;
        node->confirming = false;
        if (node->pid <= 0)
            node->waiting = false;
    }
    int result = 0;
    if (last_ns)
        *last_ns = 0;
    while (true) {
        uint64_t now = s_now_ns();
        size_t pending = 0, k = 0;
        uint64_t next_due = now + 50 * S_NS_PER_MS;
        for (size_t i = 0; i < n; i++) {
            s_node_t *node = &self->nodes[i];
            if (!node->waiting)
                continue;
            pending++;
            if (node->req_id && now - node->sent_ns > S_REQUEST_TIMEOUT) {
                node->req_id = 0; /* a late reply is dropped by its req_id */
                inflight--;
            }
            if (!node->req_id && node->due_ns <= now && inflight < S_INFLIGHT_MAX) {
                if (probe->pre_check && !node->confirming)
                    s_pack_none(NULL, node, sos_conn_begin(node->conn, "status"));
                else
                    probe->pack(probe->ctx, node, sos_conn_begin(node->conn, probe->op));
                if (sos_conn_post(node->conn) == SOS_OK) {
                    node->req_id = sos_conn_req_id(node->conn);
                    node->sent_ns = now;
                    inflight++;
                }
                node->due_ns = now + poll_ns;
            }
            if (node->req_id) {
                items[k].socket = zsock_resolve(sos_conn_sock(node->conn));
                items[k].events = ZMQ_POLLIN;
                items[k].revents = 0;
                which[k++] = node;
            } else if (node->due_ns < next_due)
                next_due = node->due_ns;
        }
        if (!pending)
            break;
        if (zsys_interrupted) {
            result = s_fail("interrupted");
            break;
        }
        if (now > deadline) {
            result = s_fail("%s: %zu of %zu nodes not there after %d s", what, pending, n,
                            self->opts->timeout_s);
            for (size_t i = 0, shown = 0; probe->counted && i < n && shown < 8; i++) {
                s_node_t *node = &self->nodes[i];
                if (!node->waiting)
                    continue;
                //  Ask once more, with op itself, to say what is missing
                probe->pack(probe->ctx, node, sos_conn_begin(node->conn, probe->op));
                sos_conn_reply_t *reply;
                if (sos_conn_call(node->conn, 2000, &reply) == SOS_OK) {
                    probe->check(probe->ctx, node, reply);
                    sos_conn_reply_destroy(&reply);
                }
                s_progress("  node %d (%s) listed %" PRIu64 " %s %s", node->index, node->endpoint,
                           node->seen, probe->counted, node->note);
                shown++;
            }
            break;
        }
        if (now >= next_reap) {
            if (s_cluster_reap(self)) {
                result = S_EXIT_FAIL;
                break;
            }
            next_reap = now + 100 * S_NS_PER_MS;
        }
        long wait_ms =
            next_due > now ? (long)((next_due - now + S_NS_PER_MS - 1) / S_NS_PER_MS) : 0;
        if (wait_ms < 1)
            wait_ms = 1;
        if (zmq_poll(items, (int)k, wait_ms) < 0 && errno != EINTR) {
            result = s_fail("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        for (size_t j = 0; j < k && result == 0; j++) {
            if (!(items[j].revents & ZMQ_POLLIN))
                continue;
            s_node_t *node = which[j];
            sos_conn_reply_t *reply;
            while (result == 0 && sos_conn_recv(node->conn, 0, &reply) == SOS_OK) {
                if (sos_conn_reply_req_id(reply) == node->req_id) {
                    uint64_t at = s_now_ns();
                    node->req_id = 0;
                    inflight--;
                    bool pre = probe->pre_check && !node->confirming;
                    int met = pre ? probe->pre_check(probe->ctx, node, reply)
                                  : probe->check(probe->ctx, node, reply);
                    //  status says yes: confirm at once; a confirmation says no: back to status
                    node->confirming = pre && met > 0;
                    if (met < 0)
                        result = S_EXIT_FAIL;
                    else if (node->confirming)
                        node->due_ns = at;
                    else if (met > 0 && !pre) {
                        node->waiting = false;
                        node->done_ns = at;
                        if (last_ns && at > *last_ns)
                            *last_ns = at;
                    }
                }
                sos_conn_reply_destroy(&reply);
            }
        }
        if (result)
            break;
    }
    //  Replies still on their way are dropped later by their req_id
    for (size_t i = 0; i < n; i++)
        self->nodes[i].req_id = 0;
    free(items);
    free(which);
    return result;
}

static void
s_pack_none(void *ctx, s_node_t *node, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}

//  status answered: the node is up; keep its id
static int
s_check_ready(void *ctx, s_node_t *node, const sos_conn_reply_t *reply)
{
    if (!sos_conn_reply_ok(reply))
        return 0;
    s_status_t st;
    s_status_parse(reply, &st);
    if (strlen(st.id) != SOS_NODEID_HEX)
        return 0;
    memcpy(node->id, st.id, sizeof node->id);
    return 1;
}

//  status: the directory holds exactly *ctx rooms
static int
s_check_room_count(void *ctx, s_node_t *node, const sos_conn_reply_t *reply)
{
    if (!sos_conn_reply_ok(reply))
        return 0;
    s_status_t st;
    s_status_parse(reply, &st);
    node->seen = st.rooms;
    return st.rooms == *(uint64_t *)ctx;
}

//  status: the node's loop runs on time (gossip.health 0: its deadlines and suspicion
//  timeouts are not stretched)
static int
s_check_healthy(void *ctx, s_node_t *node, const sos_conn_reply_t *reply)
{
    (void)ctx;
    if (!sos_conn_reply_ok(reply))
        return 0;
    uint64_t health = s_body_uint(sos_mp_map_get(sos_conn_reply_body(reply), "gossip"), "health");
    node->seen = health;
    return health == 0;
}

typedef struct {
    s_cluster_t *cluster;
    const s_node_t *absent; /* if set: only check that this one is gone */
    FILE *trace;            /* --join-trace, or NULL */
    uint64_t trace_t0;
} s_workers_ctx_t;

//  status: the directory holds as many workers as there are nodes running
static int
s_check_worker_count(void *ctx, s_node_t *node, const sos_conn_reply_t *reply)
{
    s_workers_ctx_t *w = ctx;
    const s_cluster_t *cluster = w->cluster;
    if (!sos_conn_reply_ok(reply))
        return 0;
    s_status_t st;
    s_status_parse(reply, &st);
    if (w->trace) {
        const msgpack_object *g = sos_mp_map_get(sos_conn_reply_body(reply), "gossip");
        uint64_t now = s_now_ns();
        if (!w->trace_t0)
            w->trace_t0 = now;
        fprintf(w->trace,
                "%.3f %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                s_secs(now - w->trace_t0), node->index, st.workers, st.exchanges_ok,
                st.exchanges_failed, s_body_uint(g, "health"), s_body_uint(g, "view_renewed"),
                s_body_uint(g, "rumors_in"));
    }
    size_t running = 0;
    for (size_t i = 0; i < cluster->n_nodes; i++)
        running += cluster->nodes[i].pid > 0;
    node->seen = st.workers;
    return st.workers == running;
}

//  workers: the listing holds exactly the ids of the running nodes, or (absent) lacks the id
//  of that node

static int
s_check_workers(void *ctx, s_node_t *node, const sos_conn_reply_t *reply)
{
    s_workers_ctx_t *w = ctx;
    s_cluster_t *c = w->cluster;
    if (!sos_conn_reply_ok(reply))
        return 0;
    const msgpack_object *items;
    uint32_t count;
    if (!sos_mp_array(sos_mp_map_get(sos_conn_reply_body(reply), "workers"), &items, &count,
                      UINT32_MAX))
        return 0;
    node->seen = count;
    bool *listed = calloc(c->n_nodes ? c->n_nodes : 1, sizeof *listed);
    if (!listed)
        return 0;
    size_t others = 0;
    for (uint32_t i = 0; i < count; i++) {
        char id[SOS_NODEID_HEX + 1];
        size_t j = 0;
        if (s_body_str(&items[i], "node_id", id, sizeof id))
            while (j < c->n_nodes && !streq(id, c->nodes[j].id))
                j++;
        if (j < c->n_nodes)
            listed[j] = true;
        else
            others++;
    }
    //  What is wrong, for the message if the wait times out
    int met = 1;
    size_t len = (size_t)snprintf(node->note, sizeof node->note, "%zu unknown ids; lacks", others);
    for (size_t j = 0; j < c->n_nodes; j++) {
        const s_node_t *peer = &c->nodes[j];
        bool wanted = w->absent ? peer != w->absent && peer->pid > 0 : peer->pid > 0;
        if (w->absent ? peer == w->absent && listed[j] : listed[j] != wanted)
            met = 0;
        if (wanted && !listed[j] && len < sizeof node->note)
            len += (size_t)snprintf(node->note + len, sizeof node->note - len, " %d", peer->index);
    }
    if (len < sizeof node->note)
        len += (size_t)snprintf(node->note + len, sizeof node->note - len, "; stopped but listed");
    for (size_t j = 0; j < c->n_nodes && len < sizeof node->note; j++)
        if (listed[j] && c->nodes[j].pid <= 0)
            len += (size_t)snprintf(node->note + len, sizeof node->note - len, " %d",
                                    c->nodes[j].index);
    if (!w->absent && others)
        met = 0;
    free(listed);
    return met;
}

//  rooms: the listing has the room. The listing is in room-hash order and "after" is
//  exclusive, so one entry after the hash just below it answers.
typedef struct {
    char room[SOS_ROOMHASH_LEN + 1];
    char after[SOS_ROOMHASH_LEN + 1]; /* "" if the room hash is the lowest */
} s_room_ctx_t;

static void
s_pack_room_probe(void *ctx, s_node_t *node, msgpack_packer *pk)
{
    s_room_ctx_t *r = ctx;
    msgpack_pack_map(pk, r->after[0] ? 2 : 1);
    sos_mp_pack_kv_uint(pk, "limit", 1);
    if (r->after[0])
        sos_mp_pack_kv_str(pk, "after", r->after);
}

static int
s_check_room(void *ctx, s_node_t *node, const sos_conn_reply_t *reply)
{
    s_room_ctx_t *r = ctx;
    if (!sos_conn_reply_ok(reply))
        return 0;
    const msgpack_object *items;
    uint32_t count;
    char hash[SOS_ROOMHASH_LEN + 1];
    if (!sos_mp_array(sos_mp_map_get(sos_conn_reply_body(reply), "rooms"), &items, &count,
                      UINT32_MAX) ||
        count == 0 || !s_body_str(&items[0], "room_hash", hash, sizeof hash))
        return 0;
    return streq(hash, r->room);
}

static void
s_room_ctx_init(s_room_ctx_t *r, const char *room)
{
    memcpy(r->room, room, sizeof r->room);
    uint64_t value = strtoull(room, NULL, 16);
    if (value)
        snprintf(r->after, sizeof r->after, "%016" PRIx64, value - 1);
    else
        r->after[0] = 0;
}

static void
s_set_waiting(s_cluster_t *self, const s_node_t *except)
{
    for (size_t i = 0; i < self->n_nodes; i++)
        self->nodes[i].waiting = self->nodes[i].pid > 0 && &self->nodes[i] != except;
}

/* --------------------------------------------------------------- creates ---- */

//  Create count rooms round-robin over the running nodes, at most rate per second (0: as
//  fast as the nodes answer, S_CREATE_INFLIGHT out per node), until count are created or,
//  with until_ns, that time. Reply bytes are added to each node's client_bytes.
static int
s_create_rooms(s_cluster_t *self, size_t count, double rate, uint64_t until_ns, size_t *created)
{
    size_t n = self->n_nodes, posted = 0, done = 0, next_node = 0;
    zmq_pollitem_t *items = calloc(n, sizeof *items);
    if (!items)
        return s_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        self->nodes[i].creates_out = 0;
        items[i].socket = zsock_resolve(sos_conn_sock(self->nodes[i].conn));
        items[i].events = ZMQ_POLLIN;
    }
    uint64_t start = s_now_ns();
    uint64_t deadline = start + (uint64_t)self->opts->timeout_s * S_NS_PER_S;
    uint32_t per_node = rate > 0 ? 1 : S_CREATE_INFLIGHT;
    int result = 0;
    while (result == 0) {
        uint64_t now = s_now_ns();
        bool stop = (until_ns && now >= until_ns) || posted == count;
        if (stop && posted == done)
            break;
        if (zsys_interrupted) {
            result = s_fail("interrupted");
            break;
        }
        if (now > deadline) {
            result = s_fail("creating rooms: %zu of %zu done after %d s", done, count,
                            self->opts->timeout_s);
            break;
        }
        //  Post what is due: by the rate, to nodes in turn
        for (size_t tries = 0; !stop && tries < n; tries++) {
            if (rate > 0 && (double)posted >= rate * s_secs(now - start))
                break;
            s_node_t *node = &self->nodes[next_node];
            next_node = (next_node + 1) % n;
            if (node->pid <= 0 || node->creates_out >= per_node)
                continue;
            char room[SOS_ROOMHASH_LEN + 1];
            s_random_hex(room, SOS_ROOMHASH_LEN / 2);
            msgpack_packer *pk = s_room_begin(node->conn, "create", room, 1);
            sos_mp_pack_kv_str(pk, "description", "sosbench");
            if (sos_conn_post(node->conn) != SOS_OK)
                continue;
            node->creates[node->creates_out++] = sos_conn_req_id(node->conn);
            posted++;
            stop = posted == count || (until_ns && now >= until_ns);
        }
        int wait_ms = 1;
        if (rate > 0 && !stop) {
            double next = (double)(posted + 1) / rate * 1e3 - (double)(now - start) / 1e6;
            wait_ms = next < 1 ? 1 : next > 50 ? 50 : (int)next;
        } else if (stop || posted - done >= n * per_node)
            wait_ms = 50;
        if (zmq_poll(items, (int)n, wait_ms) < 0 && errno != EINTR) {
            result = s_fail("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        for (size_t i = 0; i < n && result == 0; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            s_node_t *node = &self->nodes[i];
            sos_conn_reply_t *reply;
            while (result == 0 && sos_conn_recv(node->conn, 0, &reply) == SOS_OK) {
                uint64_t req_id = sos_conn_reply_req_id(reply);
                uint32_t j = 0;
                while (j < node->creates_out && node->creates[j] != req_id)
                    j++;
                if (j == node->creates_out) {
                    sos_conn_reply_destroy(&reply); /* a late reply to an earlier request */
                    continue;
                }
                node->creates[j] = node->creates[--node->creates_out];
                node->client_bytes += s_reply_frame_size(reply);
                done++;
                if (!sos_conn_reply_ok(reply))
                    result = s_fail("create on node %d: %s: %s", node->index,
                                    sos_conn_reply_status(reply), sos_conn_reply_message(reply));
                sos_conn_reply_destroy(&reply);
            }
        }
        if (result == 0 && s_cluster_reap(self))
            result = S_EXIT_FAIL;
    }
    free(items);
    *created = done;
    return result;
}

/* ----------------------------------------------------------------- windows ---- */

//  What one measurement window saw, per node
typedef struct {
    double bytes_per_s_mean; /* gossip bytes out per node per second */
    double bytes_per_s_max;
    double cpu_pct_median; /* % of one core */
    double cpu_pct_max;
    double rss_mib_median;
    double rss_mib_max;
    double anon_mib_median; /* RssAnon: the part not shared with other processes' files */
    size_t rooms_created;
} s_window_t;

//  Measure over seconds: gossip bytes, CPU and RSS per node. With rate > 0, rooms are
//  created at that rate meanwhile (their replies are not counted as gossip).
static int
s_measure(s_cluster_t *self, int seconds, double rate, s_window_t *w)
{
    size_t n = self->n_nodes, k = 0;
    long hz = sysconf(_SC_CLK_TCK);
    s_status_t *st0 = calloc(n, sizeof *st0);
    uint64_t *ticks0 = calloc(n, sizeof *ticks0);
    uint64_t *t0 = calloc(n, sizeof *t0);
    double *bytes = calloc(n, sizeof *bytes), *cpu = calloc(n, sizeof *cpu),
           *rss = calloc(n, sizeof *rss), *anon = calloc(n, sizeof *anon);
    int result = S_EXIT_FAIL;
    memset(w, 0, sizeof *w);
    if (!st0 || !ticks0 || !t0 || !bytes || !cpu || !rss || !anon) {
        s_fail("out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        s_node_t *node = &self->nodes[i];
        if (node->pid <= 0)
            continue;
        if (s_status(node, &st0[i]))
            goto done;
        t0[i] = s_now_ns();
        ticks0[i] = s_proc_cpu_ticks(node->pid);
        //  The reply to this status is counted after the figure it holds
        node->client_bytes = st0[i].frame_size;
    }
    uint64_t end = s_now_ns() + (uint64_t)seconds * S_NS_PER_S;
    if (rate > 0) {
        if (s_create_rooms(self, SIZE_MAX, rate, end, &w->rooms_created))
            goto done;
    } else if (!s_sleep_ms((uint64_t)seconds * 1000)) {
        s_fail("interrupted");
        goto done;
    }
    if (s_cluster_reap(self))
        goto done;
    for (size_t i = 0; i < n; i++) {
        s_node_t *node = &self->nodes[i];
        if (node->pid <= 0)
            continue;
        uint64_t ticks1 = s_proc_cpu_ticks(node->pid);
        s_status_t st1;
        if (s_status(node, &st1))
            goto done;
        double dt = s_secs(s_now_ns() - t0[i]);
        double out = (double)(st1.bytes_out - st0[i].bytes_out) - (double)node->client_bytes;
        bytes[k] = (out > 0 ? out : 0) / dt;
        cpu[k] = (double)(ticks1 - ticks0[i]) / (double)hz / dt * 100.0;
        rss[k] = (double)s_proc_status_kib(node->pid, "VmRSS:") / 1024.0;
        anon[k] = (double)s_proc_status_kib(node->pid, "RssAnon:") / 1024.0;
        k++;
    }
    double sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += bytes[i];
    w->bytes_per_s_mean = k ? sum / (double)k : 0;
    w->bytes_per_s_max = s_max(bytes, k);
    w->cpu_pct_max = s_max(cpu, k);
    w->cpu_pct_median = s_quantile(cpu, k, 0.5);
    w->rss_mib_max = s_max(rss, k);
    w->rss_mib_median = s_quantile(rss, k, 0.5);
    w->anon_mib_median = s_quantile(anon, k, 0.5);
    result = 0;
done:
    free(st0);
    free(ticks0);
    free(t0);
    free(bytes);
    free(cpu);
    free(rss);
    free(anon);
    return result;
}

//  Wait until every running node's directory holds exactly rooms rooms, then let gossip
//  settle
static int
s_wait_rooms(s_cluster_t *self, uint64_t rooms, uint64_t settle_ms)
{
    s_set_waiting(self, NULL);
    s_probe_t probe = {.op = "status",
                       .pack = s_pack_none,
                       .check = s_check_room_count,
                       .ctx = &rooms,
                       .counted = "rooms"};
    char what[64];
    snprintf(what, sizeof what, "%" PRIu64 " rooms in every directory", rooms);
    if (s_wait_all(self, &probe, what, NULL))
        return S_EXIT_FAIL;
    return s_sleep_ms(settle_ms) ? 0 : s_fail("interrupted");
}

/* ---------------------------------------------------------------- converge ---- */

//  The gossip counters summed over the running nodes that answer status
typedef struct {
    uint64_t exchanges_ok;
    uint64_t exchanges_failed;
    uint64_t workers_removed;
    uint64_t removed_max; /* on one node */
    size_t answered;
} s_counters_t;

/*  Ask every running node once, all at once, and wait for the answers up to the phase
    timeout. Collapsing nodes answer clients many seconds late: one by one, each with its own
    timeout, or re-asked every few seconds as the waits do, none would be heard. Those that
    do not answer in time are left out of the sum (answered says how many are in). */
static void
s_counters(s_cluster_t *c, s_counters_t *sum)
{
    memset(sum, 0, sizeof *sum);
    size_t n = c->n_nodes, k = 0;
    zmq_pollitem_t *items = calloc(n, sizeof *items);
    s_node_t **which = calloc(n, sizeof *which);
    if (!items || !which)
        goto done;
    for (size_t i = 0; i < n; i++) {
        s_node_t *node = &c->nodes[i];
        node->req_id = 0;
        if (node->pid <= 0)
            continue;
        msgpack_pack_map(sos_conn_begin(node->conn, "status"), 0);
        if (sos_conn_post(node->conn) != SOS_OK)
            continue;
        node->req_id = sos_conn_req_id(node->conn);
        items[k] = (zmq_pollitem_t){.socket = zsock_resolve(sos_conn_sock(node->conn)),
                                    .events = ZMQ_POLLIN};
        which[k++] = node;
    }
    uint64_t deadline = s_now_ns() + (uint64_t)c->opts->timeout_s * S_NS_PER_S;
    size_t pending = k;
    while (pending && s_now_ns() < deadline && !zsys_interrupted) {
        if (zmq_poll(items, (int)k, 100) < 0 && errno != EINTR)
            break;
        for (size_t j = 0; j < k; j++) {
            if (!(items[j].revents & ZMQ_POLLIN))
                continue;
            s_node_t *node = which[j];
            sos_conn_reply_t *reply;
            while (sos_conn_recv(node->conn, 0, &reply) == SOS_OK) {
                if (node->req_id && sos_conn_reply_req_id(reply) == node->req_id) {
                    node->req_id = 0;
                    pending--;
                    if (sos_conn_reply_ok(reply)) {
                        s_status_t st;
                        s_status_parse(reply, &st);
                        sum->exchanges_ok += st.exchanges_ok;
                        sum->exchanges_failed += st.exchanges_failed;
                        sum->workers_removed += st.workers_removed;
                        if (st.workers_removed > sum->removed_max)
                            sum->removed_max = st.workers_removed;
                        sum->answered++;
                    }
                }
                sos_conn_reply_destroy(&reply);
            }
        }
    }
    if (pending)
        s_progress("the nodes' counters: %zu of %zu nodes did not answer in %d s", pending, k,
                   c->opts->timeout_s);
done:
    for (size_t i = 0; i < n; i++)
        c->nodes[i].req_id = 0; /* a late reply is dropped by its req_id */
    free(items);
    free(which);
}

static void
s_fig_counters(s_report_t *r, const char *prefix, const char *when, const s_counters_t *sum)
{
    char key[48], label[64];
    snprintf(key, sizeof key, "%s_nodes_answered", prefix);
    snprintf(label, sizeof label, "%s: nodes that answered status", when);
    s_fig(r, key, (double)sum->answered, 0, "nodes", label, NULL);
    snprintf(key, sizeof key, "%s_exchanges_ok", prefix);
    snprintf(label, sizeof label, "%s: exchanges ok, all nodes", when);
    s_fig(r, key, (double)sum->exchanges_ok, 0, "", label, NULL);
    snprintf(key, sizeof key, "%s_exchanges_failed", prefix);
    snprintf(label, sizeof label, "%s: exchanges failed, all nodes", when);
    s_fig(r, key, (double)sum->exchanges_failed, 0, "", label, NULL);
    snprintf(key, sizeof key, "%s_workers_removed", prefix);
    snprintf(label, sizeof label, "%s: live workers removed, all nodes", when);
    s_fig(r, key, (double)sum->workers_removed, 0, "", label, "0");
    snprintf(key, sizeof key, "%s_workers_removed_max", prefix);
    snprintf(label, sizeof label, "%s:   worst node, since start", when);
    s_fig(r, key, (double)sum->removed_max, 0, "", label, NULL);
}

//  sosnode / serf, when serf measured it
static void
s_fig_ratio(s_report_t *r, const char *key, double ours, double theirs, const char *label)
{
    if (theirs > 0)
        s_fig(r, key, ours / theirs, 2, "x", label, NULL);
}

//  The serf side of --compare serf, first in the report
static int
s_converge_serf(s_cluster_t *c, s_report_t *r, sos_serf_bench_result_t *serf)
{
    const s_opts_t *o = c->opts;
    char path[PATH_MAX];
    memset(serf, 0, sizeof *serf);
    if (!sos_serf_find(path, sizeof path)) {
        s_progress("serf is not on PATH: the comparison with serf is skipped");
        size_t len = strlen(r->params);
        snprintf(r->params + len, sizeof r->params - len, " serf=absent");
        return 0;
    }
    sos_serf_bench_opts_t so = {.serf = path,
                                .dir = c->dir,
                                .nodes = o->nodes,
                                .poll_ms = o->poll_ms,
                                .timeout_s = o->timeout_s,
                                .events = o->rooms,
                                .idle_s = o->measure_s,
                                .stop = &zsys_interrupted};
    if (sos_serf_bench_run(&so, serf))
        return s_fail("the serf agents could not be measured");
    s_progress("%s", serf->settings);
    if (o->interval_ms != 200 || o->fanout != 3)
        s_progress("note: the nodes gossip every %d ms to %d peers, serf every 200 ms to 3",
                   o->interval_ms, o->fanout);
    size_t len = strlen(r->params);
    snprintf(r->params + len, sizeof r->params - len,
             " serf=%s serf_profile=lan serf_gossip_interval_ms=200 serf_gossip_nodes=3", path);
    if (serf->joined)
        s_fig(r, "serf_join_s", serf->join_s, 3, "s", "serf: all see all N alive (from last start)",
              NULL);
    else
        s_fig(r, "serf_join_incomplete", serf->join_incomplete, 0, "agents",
              "serf: agents NOT seeing all alive at timeout", NULL);
    if (serf->events_ok) {
        s_fig(r, "serf_event_median_s", serf->event_median_s, 3, "s",
              "serf: a user event to all, median", NULL);
        s_fig(r, "serf_event_max_s", serf->event_max_s, 3, "s", "serf: a user event to all, max",
              NULL);
    }
    s_fig(r, "serf_rss_anon_median_mib", serf->anon_mib_median, 2, "MiB",
          "serf: RssAnon per idle agent, median", NULL);
    s_fig(r, "serf_rss_median_mib", serf->rss_mib_median, 2, "MiB",
          "serf: RSS per idle agent, median", NULL);
    return 0;
}

static int s_converge_phases(s_cluster_t *c, s_report_t *r, sos_stress_t **stress);

//  When the nodes became complete, from the last start: the median, the 90th percentile, and
//  the slowest few by index (start order), which tells a slow tail from a slow whole
static void
s_join_spread(s_cluster_t *c, s_report_t *r, uint64_t last_start)
{
    size_t n = c->n_nodes;
    double *each = calloc(n, sizeof *each);
    if (!each)
        return;
    for (size_t i = 0; i < n; i++)
        each[i] = c->nodes[i].done_ns > last_start ? s_secs(c->nodes[i].done_ns - last_start) : 0;
    s_fig(r, "join_median_s", s_quantile(each, n, 0.5), 3, "s", "  median over nodes", NULL);
    s_fig(r, "join_p90_s", s_quantile(each, n, 0.9), 3, "s", "  90th percentile over nodes", NULL);
    char line[256] = "";
    size_t len = 0;
    uint64_t below = UINT64_MAX; /* the next slowest is the latest done before this */
    for (int shown = 0; shown < 5 && len < sizeof line; shown++) {
        size_t worst = n;
        for (size_t i = 0; i < n; i++) {
            uint64_t t = c->nodes[i].done_ns;
            if (t < below && (worst == n || t > c->nodes[worst].done_ns))
                worst = i;
        }
        if (worst == n)
            break;
        below = c->nodes[worst].done_ns;
        len += (size_t)snprintf(line + len, sizeof line - len, " %d:%.3f", c->nodes[worst].index,
                                s_secs(below > last_start ? below - last_start : 0));
    }
    s_progress("join: slowest nodes (index:s)%s", line);
    free(each);
}

static int
s_converge_run(s_cluster_t *c, s_report_t *r)
{
    const s_opts_t *o = c->opts;
    sos_stress_t *stress = NULL;
    if (o->stress_pct) {
        //  Bounded: the busy processes stop by themselves after every phase could have ended
        int max_s = o->timeout_s * 4 + o->hold_s + 600;
        stress = sos_stress_new(o->stress_pct, max_s);
        if (!stress)
            return s_fail("cannot start the busy processes");
        s_progress("stress: %s", sos_stress_how(stress));
        size_t len = strlen(r->params);
        snprintf(r->params + len, sizeof r->params - len, " stress_pct=%d", o->stress_pct);
        if (!s_sleep_ms(1000))
            return s_fail("interrupted");
        double busy = s_machine_busy_pct(1000);
        s_fig(r, "stress_busy_pct", busy, 0, "%", "stress: CPUs busy before the start", NULL);
    }
    int rc = s_converge_phases(c, r, &stress);
    sos_stress_destroy(&stress);
    return rc;
}

static int
s_converge_phases(s_cluster_t *c, s_report_t *r, sos_stress_t **stress)
{
    const s_opts_t *o = c->opts;
    sos_serf_bench_result_t serf = {0};
    if (o->compare_serf && s_converge_serf(c, r, &serf))
        return S_EXIT_FAIL;
    size_t n = (size_t)o->nodes;
    double interval_s = o->interval_ms / 1000.0;
    uint64_t settle_ms = o->interval_ms * 10 > 2000 ? (uint64_t)o->interval_ms * 10 : 2000;
    int *ports = calloc(n + 1, sizeof *ports);
    if (!ports || s_free_ports(ports, n + 1))
        return s_fail("cannot find %zu free ports", n + 1);
    for (size_t i = 0; i <= n; i++)
        if (!s_node_add(c, ports[i])) {
            free(ports);
            return s_fail("cannot make a client socket");
        }
    free(ports);
    c->n_nodes = n; /* the last one joins later */

    //  Start: the genesis, then all others back to back
    s_progress("starting %zu nodes", n);
    s_node_t *genesis = &c->nodes[0];
    if (s_node_start(c, genesis, NULL, NULL))
        return S_EXIT_FAIL;
    c->n_nodes = 1;
    s_set_waiting(c, NULL);
    s_probe_t ready = {.op = "status", .pack = s_pack_none, .check = s_check_ready};
    if (s_wait_all(c, &ready, "the genesis node to answer", NULL))
        return S_EXIT_FAIL;
    c->n_nodes = n;
    for (size_t i = 1; i < n; i++)
        if (s_node_start(c, &c->nodes[i], genesis, NULL))
            return S_EXIT_FAIL;
    uint64_t last_start = c->nodes[n - 1].start_ns;
    s_set_waiting(c, NULL);
    genesis->waiting = false;
    uint64_t ready_ns;
    if (s_wait_all(c, &ready, "nodes to answer status", &ready_ns))
        return S_EXIT_FAIL;

    //  join
    s_workers_ctx_t wctx = {.cluster = c};
    if (o->join_trace) {
        wctx.trace = fopen(o->join_trace, "w");
        if (!wctx.trace)
            return s_fail("cannot write %s: %s", o->join_trace, strerror(errno));
        fprintf(wctx.trace, "# t_s node workers exchanges_ok exchanges_failed health "
                            "view_renewed rumors_in\n");
    }
    s_probe_t all_workers = {.op = "workers",
                             .pack = s_pack_none,
                             .check = s_check_workers,
                             .ctx = &wctx,
                             .counted = "workers",
                             .pre_check = s_check_worker_count};
    s_set_waiting(c, NULL);
    uint64_t joined_ns, wait_start = s_now_ns();
    double cpu_self = s_self_cpu_s();
    s_counters_t sum;
    int joined = s_wait_all(c, &all_workers, "every node listing every node", &joined_ns);
    if (wctx.trace) {
        fclose(wctx.trace);
        wctx.trace = NULL;
    }
    if (joined) {
        //  What the nodes did meanwhile says why they did not converge
        size_t incomplete = 0;
        for (size_t i = 0; i < n; i++)
            incomplete += c->nodes[i].waiting;
        s_fig(r, "join_incomplete", (double)incomplete, 0, "nodes",
              "join: nodes NOT listing all at timeout", NULL);
        s_fig(r, "join_timeout_s", o->timeout_s, 0, "s", "  after (--timeout)", NULL);
        s_counters(c, &sum);
        s_fig_counters(r, "join", "at timeout", &sum);
        return S_EXIT_FAIL;
    }
    double polling_pct = (s_self_cpu_s() - cpu_self) / s_secs(s_now_ns() - wait_start) * 100;
    double join_s = s_secs(joined_ns - last_start);
    s_progress("join: %.3f s", join_s);
    s_fig(r, "ready_s", s_secs(ready_ns - last_start), 3, "s",
          "start: all answer status (from last start)", NULL);
    s_fig(r, "join_s", join_s, 3, "s", "join: all list all N (from last start)",
          "< 3 s (50 nodes)");
    s_fig(r, "join_rounds", join_s / interval_s, 1, "rounds", "join in rounds", NULL);
    s_join_spread(c, r, last_start);
    //  What the start cost the machine: the span of the starts, and the CPU all nodes used from
    //  their start to the end of the join, against the CPU the machine had in that time
    uint64_t first_start = c->nodes[n > 1 ? 1 : 0].start_ns;
    double spawn_s = s_secs(last_start - first_start);
    uint64_t node_ticks = 0;
    for (size_t i = 0; i < n; i++)
        node_ticks += s_proc_cpu_ticks(c->nodes[i].pid);
    double node_cpu_s = (double)node_ticks / (double)sysconf(_SC_CLK_TCK);
    double window_s = s_secs(joined_ns - first_start);
    s_fig(r, "join_spawn_s", spawn_s, 3, "s", "  starting nodes 1..N-1 took", NULL);
    s_fig(r, "join_node_cpu_s", node_cpu_s, 2, "s", "  CPU of all nodes by the end of the join",
          NULL);
    s_fig(r, "join_node_cpu_pct", window_s > 0 ? node_cpu_s / window_s * 100 : 0, 0, "%core",
          "    over the start and the join", NULL);
    s_fig(r, "bench_cpu_join_pct", polling_pct, 1, "%core", "  sosbench CPU while polling", NULL);
    if (serf.joined)
        s_fig_ratio(r, "join_ratio_serf", join_s, serf.join_s, "  join, sosnode / serf");

    //  hold: nothing is stopped yet, so every removal so far and meanwhile is a false one
    if (o->stress_pct || o->hold_s) {
        s_counters_t before;
        s_counters(c, &before);
        s_fig_counters(r, "join", "join", &before);
        s_progress("hold (%d s)", o->hold_s);
        for (int t = 0; t < o->hold_s; t++)
            if (!s_sleep_ms(1000) || s_cluster_reap(c))
                return S_EXIT_FAIL;
        s_counters(c, &sum);
        s_counters_t delta = {
            .exchanges_ok = sum.exchanges_ok - before.exchanges_ok,
            .exchanges_failed = sum.exchanges_failed - before.exchanges_failed,
            .workers_removed = sum.workers_removed - before.workers_removed,
            .removed_max = sum.removed_max,
            .answered = sum.answered,
        };
        char when[32];
        snprintf(when, sizeof when, "hold %d s", o->hold_s);
        s_fig_counters(r, "hold", when, &delta);
        //  Still converged at the end of the hold?
        s_set_waiting(c, NULL);
        if (s_wait_all(c, &all_workers, "every node listing every node after the hold", NULL))
            return S_EXIT_FAIL;
    }
    if (!s_sleep_ms(settle_ms))
        return s_fail("interrupted");

    //  At rest, no rooms
    s_window_t w;
    s_progress("cost at rest (%d s)", o->measure_s);
    if (s_measure(c, o->measure_s, 0, &w))
        return S_EXIT_FAIL;
    s_fig(r, "cost_rest_bps", w.bytes_per_s_mean, 0, "B/s", "gossip out per node, at rest", NULL);
    s_fig(r, "cost_rest_max_bps", w.bytes_per_s_max, 0, "B/s", "  the busiest node", NULL);
    s_fig(r, "cpu_idle_median_pct", w.cpu_pct_median, 2, "%core", "CPU per idle node, median",
          NULL);
    s_fig(r, "cpu_idle_max_pct", w.cpu_pct_max, 2, "%core", "CPU per idle node, max", NULL);
    s_fig(r, "rss_median_mib", w.rss_mib_median, 2, "MiB", "RSS per node at rest, median",
          "< 10 MiB");
    s_fig(r, "rss_max_mib", w.rss_mib_max, 2, "MiB", "RSS per node at rest, max", "< 10 MiB");
    s_fig(r, "rss_anon_median_mib", w.anon_mib_median, 2, "MiB",
          "  of which anonymous (RssAnon), median", NULL);
    s_fig_ratio(r, "rss_anon_ratio_serf", w.anon_mib_median, serf.anon_mib_median,
                "  RssAnon, sosnode / serf");

    //  spread: rooms created on different nodes, one at a time
    size_t n_spread = (size_t)o->rooms;
    double *spread = calloc(n_spread, sizeof *spread);
    if (!spread)
        return s_fail("out of memory");
    for (size_t i = 0; i < n_spread; i++) {
        s_node_t *creator = &c->nodes[(1 + i * 7) % n];
        s_room_ctx_t rctx;
        char room[SOS_ROOMHASH_LEN + 1];
        s_random_hex(room, SOS_ROOMHASH_LEN / 2);
        s_room_ctx_init(&rctx, room);
        msgpack_packer *pk = s_room_begin(creator->conn, "create", room, 1);
        sos_mp_pack_kv_str(pk, "description", "sosbench spread");
        uint64_t t0 = s_now_ns();
        sos_conn_reply_t *reply;
        if (s_call(creator, &reply, "create")) {
            free(spread);
            return S_EXIT_FAIL;
        }
        sos_conn_reply_destroy(&reply);
        s_set_waiting(c, NULL);
        s_probe_t has_room = {
            .op = "rooms", .pack = s_pack_room_probe, .check = s_check_room, .ctx = &rctx};
        uint64_t last;
        if (s_wait_all(c, &has_room, "a new room in every directory", &last)) {
            free(spread);
            return S_EXIT_FAIL;
        }
        spread[i] = s_secs(last - t0);
        s_progress("spread of room %zu (from node %d): %.3f s", i + 1, creator->index, spread[i]);
        if (!s_sleep_ms(500)) {
            free(spread);
            return s_fail("interrupted");
        }
    }
    double spread_max = s_max(spread, n_spread);
    double spread_median = s_quantile(spread, n_spread, 0.5);
    free(spread);
    s_fig(r, "spread_median_s", spread_median, 3, "s", "spread: a new room to all, median",
          "< 1 s (50 nodes)");
    s_fig(r, "spread_max_s", spread_max, 3, "s", "spread: a new room to all, max",
          "< 1 s (50 nodes)");
    if (serf.events_ok) {
        s_fig_ratio(r, "spread_median_ratio_serf", spread_median, serf.event_median_s,
                    "  spread median, sosnode / serf event");
        s_fig_ratio(r, "spread_max_ratio_serf", spread_max, serf.event_max_s,
                    "  spread max, sosnode / serf event");
    }
    if (*stress) {
        //  The load test ends here: the phases after it measure cost and failure on their own
        sos_stress_destroy(stress);
        s_progress("stress stopped; a run with --stress ends after spread");
        return 0;
    }

    //  At rest with 10 rooms
    size_t rooms = n_spread, made;
    if (rooms < 10) {
        if (s_create_rooms(c, 10 - rooms, 0, 0, &made))
            return S_EXIT_FAIL;
        rooms += made;
    }
    if (s_wait_rooms(c, rooms, settle_ms))
        return S_EXIT_FAIL;
    s_progress("cost at rest with %zu rooms (%d s)", rooms, o->measure_s);
    if (s_measure(c, o->measure_s, 0, &w))
        return S_EXIT_FAIL;
    char label[64];
    snprintf(label, sizeof label, "gossip out per node, at rest, %zu rooms", rooms);
    s_fig(r, "cost_rest_10_bps", w.bytes_per_s_mean, 0, "B/s", label, NULL);

    //  While rooms are created
    s_progress("cost while creating %d rooms/s (%d s)", o->create_rate, o->measure_s);
    if (s_measure(c, o->measure_s, o->create_rate, &w))
        return S_EXIT_FAIL;
    rooms += w.rooms_created;
    snprintf(label, sizeof label, "gossip out per node, creating %d rooms/s", o->create_rate);
    s_fig(r, "cost_create_bps", w.bytes_per_s_mean, 0, "B/s", label, NULL);
    s_fig(r, "create_rate_per_s", (double)w.rooms_created / o->measure_s, 1, "rooms/s",
          "  rooms created per second (measured)", NULL);

    //  At rest with the big directory
    if (rooms < (size_t)o->big_rooms) {
        s_progress("creating %zu rooms", (size_t)o->big_rooms - rooms);
        if (s_create_rooms(c, (size_t)o->big_rooms - rooms, 0, 0, &made))
            return S_EXIT_FAIL;
        rooms += made;
    }
    if (s_wait_rooms(c, rooms, settle_ms))
        return S_EXIT_FAIL;
    s_progress("cost at rest with %zu rooms (%d s)", rooms, o->measure_s);
    if (s_measure(c, o->measure_s, 0, &w))
        return S_EXIT_FAIL;
    snprintf(label, sizeof label, "gossip out per node, at rest, %zu rooms", rooms);
    s_fig(r, "cost_rest_big_bps", w.bytes_per_s_mean, 0, "B/s", label, NULL);
    s_fig(r, "big_rooms", (double)rooms, 0, "rooms", "  rooms in that directory", NULL);
    snprintf(label, sizeof label, "CPU per idle node, %zu rooms, median", rooms);
    s_fig(r, "cpu_idle_big_median_pct", w.cpu_pct_median, 2, "%core", label, NULL);
    snprintf(label, sizeof label, "RSS per node, %zu rooms, median", rooms);
    s_fig(r, "rss_big_median_mib", w.rss_mib_median, 2, "MiB", label, NULL);
    snprintf(label, sizeof label, "RSS per node, %zu rooms, max", rooms);
    s_fig(r, "rss_big_max_mib", w.rss_mib_max, 2, "MiB", label, NULL);

    //  failure: kill -9 one node that is not the genesis, once every node's loop runs on
    //  time again: creating the rooms above makes loops late, and a lagging node stretches
    //  its suspicion timeouts by design (PROTOCOL.md, "Local health"); this phase measures
    //  the bound of a healthy network
    s_set_waiting(c, NULL);
    s_probe_t healthy = {
        .op = "status", .pack = s_pack_none, .check = s_check_healthy, .counted = "health"};
    uint64_t settle0 = s_now_ns(), settled;
    if (s_wait_all(c, &healthy, "every node healthy (gossip.health 0)", &settled))
        return S_EXIT_FAIL;
    s_fig(r, "failure_settle_s", s_secs(settled - settle0), 3, "s",
          "failure: wait for every node's health 0 before the kill", NULL);
    s_node_t *victim = &c->nodes[n / 2];
    s_node_t *observer = genesis;
    s_status_t obs0, obs1;
    if (s_status(observer, &obs0))
        return S_EXIT_FAIL;
    s_progress("kill -9 node %d", victim->index);
    uint64_t killed = s_now_ns();
    s_node_t gone = *victim;
    s_node_kill(victim);
    s_set_waiting(c, NULL);
    wctx.absent = &gone;
    uint64_t removed_ns;
    if (s_wait_all(c, &all_workers, "every node removing the killed node", &removed_ns))
        return S_EXIT_FAIL;
    if (s_status(observer, &obs1))
        return S_EXIT_FAIL;
    double *each = calloc(n, sizeof *each);
    size_t k = 0;
    for (size_t i = 0; each && i < n; i++)
        if (c->nodes[i].pid > 0)
            each[k++] = s_secs(c->nodes[i].done_ns - killed);
    double failure_median = each ? s_quantile(each, k, 0.5) : 0;
    free(each);
    double failure_s = s_secs(removed_ns - killed);
    s_progress("failure: %.3f s", failure_s);
    s_fig(r, "failure_s", failure_s, 3, "s", "failure: all removed a killed node", NULL);
    s_fig(r, "failure_median_s", failure_median, 3, "s", "  median over nodes", NULL);
    s_fig(r, "failure_rounds", failure_s / interval_s, 1, "rounds", "  in rounds (time/interval)",
          NULL);
    s_fig(r, "failure_observer_rounds", (double)(obs1.rounds - obs0.rounds), 0, "rounds",
          "  rounds counted by node 0", NULL);

    //  join_one: one more node into the running overlay
    wctx.absent = NULL;
    c->n_nodes = n + 1;
    s_node_t *late = &c->nodes[n];
    if (s_node_start(c, late, genesis, NULL))
        return S_EXIT_FAIL;
    s_set_waiting(c, NULL);
    for (size_t i = 0; i < n; i++)
        c->nodes[i].waiting = false;
    if (s_wait_all(c, &ready, "the new node to answer", NULL))
        return S_EXIT_FAIL;
    s_set_waiting(c, NULL);
    uint64_t one_ns;
    if (s_wait_all(c, &all_workers, "every node listing the new node", &one_ns))
        return S_EXIT_FAIL;
    s_fig(r, "join_one_s", s_secs(one_ns - late->start_ns), 3, "s",
          "join_one: a new node and all list each other", NULL);
    return 0;
}

/* ---------------------------------------------------------------- messages ---- */

typedef struct {
    uint64_t req_id;
    uint64_t t0;
    uint32_t no;
} s_slot_t;

typedef struct {
    int index;
    sos_conn_t *conn;
    const char *room;
    char member[S_MEMBER_MAX + 1];
    const char *content;
    size_t size;
    uint32_t window;
    uint64_t start_ns;
    uint64_t deadline_ns; /* 0: send max_msgs */
    uint32_t max_msgs;
    uint64_t interval_ns; /* a paced load: at most one request each interval_ns; 0: as fast */
    //  Results
    uint64_t *lat_ns;
    size_t n_lat;
    uint64_t *acked_seq; /* by message number; 0: not acknowledged */
    uint8_t *seen;
    uint32_t n_posted;
    uint32_t cap_msgs;
    uint64_t acked;
    uint64_t errors;
    uint64_t timeouts;
    uint64_t end_ns;
    char error[160];
} s_client_t;

static void
s_msg_id(char *out, int client, uint32_t no)
{
    snprintf(out, S_ID_MAX, "m%d-%" PRIu32, client, no);
}

//  Parse "m<client>-<no>" of len bytes; false if it is not one
static bool
s_msg_id_parse(const char *id, size_t len, uint32_t *client, uint32_t *no)
{
    if (len < 4 || id[0] != 'm')
        return false;
    uint64_t parts[2] = {0, 0};
    size_t part = 0, digits = 0;
    for (size_t i = 1; i < len; i++) {
        if (id[i] == '-' && part == 0 && digits) {
            part = 1;
            digits = 0;
        } else if (id[i] >= '0' && id[i] <= '9' && digits < 9) {
            parts[part] = parts[part] * 10 + (uint64_t)(id[i] - '0');
            digits++;
        } else
            return false;
    }
    if (part != 1 || !digits)
        return false;
    *client = (uint32_t)parts[0];
    *no = (uint32_t)parts[1];
    return true;
}

//  Room for one more message; latencies never outnumber messages, so they share the capacity
static bool
s_client_grow(s_client_t *self)
{
    if (self->n_posted < self->cap_msgs)
        return true;
    uint32_t cap = self->cap_msgs ? self->cap_msgs * 2 : 4096;
    uint64_t *seqs = realloc(self->acked_seq, cap * sizeof *seqs);
    if (!seqs)
        return false;
    memset(seqs + self->cap_msgs, 0, (cap - self->cap_msgs) * sizeof *seqs);
    self->acked_seq = seqs;
    uint64_t *lat = realloc(self->lat_ns, cap * sizeof *lat);
    if (!lat)
        return false;
    self->lat_ns = lat;
    self->cap_msgs = cap;
    return true;
}

static void
s_sleep_until(uint64_t ns)
{
    struct timespec at = {(time_t)(ns / S_NS_PER_S), (long)(ns % S_NS_PER_S)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
}

//  Send durable messages from start_ns until deadline_ns (or max_msgs), window requests
//  outstanding; with interval_ns, one every interval_ns at most (a paced load)
static void *
s_client_run(void *arg)
{
    s_client_t *self = arg;
    s_slot_t slots[S_WINDOW_MAX];
    uint32_t out = 0, first = self->n_posted;
    if (self->start_ns)
        s_sleep_until(self->start_ns);
    uint64_t progress = s_now_ns();
    while (!zsys_interrupted) {
        uint64_t now = s_now_ns();
        bool more = self->deadline_ns ? now < self->deadline_ns : self->n_posted < self->max_msgs;
        uint64_t due = self->start_ns + (uint64_t)(self->n_posted - first) * self->interval_ns;
        while (more && out < self->window && due <= now) {
            if (!s_client_grow(self)) {
                snprintf(self->error, sizeof self->error, "out of memory");
                return NULL;
            }
            char id[S_ID_MAX];
            s_msg_id(id, self->index, self->n_posted);
            msgpack_packer *pk = s_room_begin(self->conn, "send", self->room, 3);
            sos_mp_pack_kv_str(pk, "member_id", self->member);
            sos_mp_pack_kv_str(pk, "msg_id", id);
            sos_mp_pack_str(pk, "content");
            sos_mp_pack_strn(pk, self->content, self->size);
            uint64_t t0 = s_now_ns();
            sos_rc rc = sos_conn_post(self->conn);
            if (rc) {
                snprintf(self->error, sizeof self->error, "send: %s", sos_strerror(rc));
                self->errors++;
                return NULL;
            }
            slots[out++] = (s_slot_t){sos_conn_req_id(self->conn), t0, self->n_posted++};
            due += self->interval_ns;
            more = self->deadline_ns ? t0 < self->deadline_ns : self->n_posted < self->max_msgs;
        }
        if (!out && !more)
            break;
        if (!out) {
            s_sleep_until(due); /* paced: nothing out, the next one is not due yet */
            continue;
        }
        //  Wait for a reply, or until the next request of a paced load is due
        int wait_ms = S_CALL_TIMEOUT_MS;
        if (more && out < self->window && self->interval_ns && due > now)
            wait_ms = (int)((due - now + S_NS_PER_MS - 1) / S_NS_PER_MS);
        sos_conn_reply_t *reply;
        sos_rc rc = sos_conn_recv(self->conn, wait_ms, &reply);
        if (rc == SOS_ERR_TIMEOUT && s_now_ns() - progress < S_CALL_TIMEOUT_MS * S_NS_PER_MS)
            continue;
        if (rc) {
            if (rc == SOS_ERR_TIMEOUT)
                self->timeouts += out;
            snprintf(self->error, sizeof self->error, "waiting for replies: %s", sos_strerror(rc));
            break;
        }
        uint64_t t1 = s_now_ns();
        progress = t1;
        uint64_t req_id = sos_conn_reply_req_id(reply);
        for (uint32_t i = 0; i < out; i++) {
            if (slots[i].req_id != req_id)
                continue;
            if (sos_conn_reply_ok(reply)) {
                uint64_t seq = s_body_uint(sos_conn_reply_body(reply), "seq");
                self->acked_seq[slots[i].no] = seq;
                self->acked++;
                self->lat_ns[self->n_lat++] = t1 - slots[i].t0;
                self->end_ns = t1;
            } else {
                if (!self->errors)
                    snprintf(self->error, sizeof self->error, "send: %s: %s",
                             sos_conn_reply_status(reply), sos_conn_reply_message(reply));
                self->errors++;
            }
            slots[i] = slots[--out];
            break;
        }
        sos_conn_reply_destroy(&reply);
    }
    return NULL;
}

static void
s_client_free(s_client_t *self)
{
    sos_conn_destroy(&self->conn);
    free(self->lat_ns);
    free(self->acked_seq);
    free(self->seen);
}

typedef struct {
    uint64_t seq;
    uint8_t id_len;
    char id[S_ID_MAX];
} s_readmsg_t;

typedef struct {
    s_readmsg_t *msgs;
    size_t n;
    size_t cap;
    uint64_t last_seq;
    uint64_t elapsed_ns;
    size_t polls;
} s_read_t;

//  Read a whole room as a reader catching up: poll since 0, then since the last seq
//  received, until the room's last_seq. Keeps (seq, id) of each message for the check.
static int
s_read_room(s_node_t *via, const char *room, const char *member, s_read_t *rd)
{
    uint64_t since = 0;
    rd->n = 0;
    rd->polls = 0;
    uint64_t t0 = s_now_ns();
    while (!zsys_interrupted) {
        msgpack_packer *pk = s_room_begin(via->conn, "poll", room, 3);
        sos_mp_pack_kv_str(pk, "member_id", member);
        sos_mp_pack_kv_uint(pk, "since", since);
        sos_mp_pack_kv_uint(pk, "wait_ms", 0);
        sos_conn_reply_t *reply;
        if (s_call(via, &reply, "poll"))
            return S_EXIT_FAIL;
        rd->polls++;
        const msgpack_object *body = sos_conn_reply_body(reply);
        const msgpack_object *items;
        uint32_t count = 0;
        if (!sos_mp_array(sos_mp_map_get(body, "messages"), &items, &count, UINT32_MAX)) {
            sos_conn_reply_destroy(&reply);
            return s_fail("poll through node %d: no messages in the reply", via->index);
        }
        rd->last_seq = s_body_uint(body, "last_seq");
        if (rd->n + count > rd->cap) {
            size_t cap = rd->cap ? rd->cap * 2 : 65536;
            while (cap < rd->n + count)
                cap *= 2;
            s_readmsg_t *msgs = realloc(rd->msgs, cap * sizeof *msgs);
            if (!msgs) {
                sos_conn_reply_destroy(&reply);
                return s_fail("out of memory");
            }
            rd->msgs = msgs;
            rd->cap = cap;
        }
        for (uint32_t i = 0; i < count; i++) {
            s_readmsg_t *m = &rd->msgs[rd->n++];
            const char *id = "";
            size_t len = 0;
            m->seq = s_body_uint(&items[i], "seq");
            sos_mp_str(sos_mp_map_get(&items[i], "id"), &id, &len, SIZE_MAX);
            m->id_len = (uint8_t)(len < S_ID_MAX ? len : S_ID_MAX);
            memcpy(m->id, id, m->id_len);
            since = m->seq;
        }
        sos_conn_reply_destroy(&reply);
        if (since >= rd->last_seq)
            break;
        if (count == 0)
            return s_fail("poll through node %d: no messages after %" PRIu64
                          " but last_seq %" PRIu64,
                          via->index, since, rd->last_seq);
    }
    rd->elapsed_ns = s_now_ns() - t0;
    return zsys_interrupted ? s_fail("interrupted") : 0;
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    uint64_t read;
    uint64_t acked;
    uint64_t checked;
    uint64_t trimmed; /* acknowledged, then dropped by the history limit */
    uint64_t unacked; /* stored without an acknowledgement (a request that timed out) */
    uint64_t foreign; /* messages of ids this run did not send in its clients */
} s_check_t;

//  Every acknowledged message exactly once, in order, with its acknowledged seq
static int
s_check(s_client_t *clients, size_t n_clients, const s_read_t *rd, s_check_t *ck)
{
    memset(ck, 0, sizeof *ck);
    ck->read = rd->n;
    for (size_t c = 0; c < n_clients; c++) {
        free(clients[c].seen);
        clients[c].seen = calloc(clients[c].n_posted ? clients[c].n_posted : 1, 1);
        if (!clients[c].seen)
            return s_fail("out of memory");
    }
    uint64_t prev = 0;
    for (size_t i = 0; i < rd->n; i++) {
        const s_readmsg_t *m = &rd->msgs[i];
        if (m->seq <= prev)
            return s_fail("CHECK FAILED: seq %" PRIu64 " after %" PRIu64
                          " (message %zu of the read)",
                          m->seq, prev, i);
        prev = m->seq;
        uint32_t client, no;
        if (!s_msg_id_parse(m->id, m->id_len, &client, &no) || client >= n_clients ||
            no >= clients[client].n_posted) {
            ck->foreign++;
            continue;
        }
        s_client_t *cl = &clients[client];
        if (cl->seen[no])
            return s_fail("CHECK FAILED: message %.*s read twice (seq %" PRIu64 ")", m->id_len,
                          m->id, m->seq);
        cl->seen[no] = 1;
        if (!cl->acked_seq[no])
            ck->unacked++;
        else if (cl->acked_seq[no] != m->seq)
            return s_fail("CHECK FAILED: message %.*s read at seq %" PRIu64
                          " but acknowledged with seq %" PRIu64,
                          m->id_len, m->id, m->seq, cl->acked_seq[no]);
    }
    if (rd->n && prev != rd->last_seq)
        return s_fail("CHECK FAILED: the read ended at seq %" PRIu64
                      ", the room's last_seq is %" PRIu64,
                      prev, rd->last_seq);
    uint64_t first = rd->n ? rd->msgs[0].seq : UINT64_MAX;
    size_t n_acked = 0;
    for (size_t c = 0; c < n_clients; c++)
        n_acked += clients[c].acked;
    uint64_t *all = calloc(n_acked ? n_acked : 1, sizeof *all);
    if (!all)
        return s_fail("out of memory");
    size_t k = 0;
    int result = 0;
    for (size_t c = 0; c < n_clients && result == 0; c++) {
        s_client_t *cl = &clients[c];
        for (uint32_t no = 0; no < cl->n_posted; no++) {
            uint64_t seq = cl->acked_seq[no];
            if (!seq)
                continue;
            if (k < n_acked)
                all[k++] = seq;
            if (seq < first)
                ck->trimmed++;
            else if (!cl->seen[no]) {
                result = s_fail("CHECK FAILED: message m%zu-%" PRIu32
                                " acknowledged with seq %" PRIu64 " was not read back",
                                c, no, seq);
                break;
            } else
                ck->checked++;
        }
    }
    ck->acked = k;
    qsort(all, k, sizeof *all, s_cmp_u64);
    for (size_t i = 1; i < k && result == 0; i++)
        if (all[i] == all[i - 1])
            result = s_fail("CHECK FAILED: two messages acknowledged with seq %" PRIu64, all[i]);
    free(all);
    return result;
}

//  Messages per second of a read, 0 if it took no time
static double
s_read_rate(const s_read_t *rd)
{
    return rd->elapsed_ns ? (double)rd->n / s_secs(rd->elapsed_ns) : 0;
}

//  D times: a long poll through the other node, then a send to the owner; the time from the
//  send's acknowledgement (and from its request) to the poll's reply
static int
s_delays(s_node_t *owner, s_node_t *other, const char *room, const char *content, size_t size,
         int count, uint64_t since, double *after_ack, double *after_send)
{
    char reader_member[S_MEMBER_MAX + 1], sender_member[S_MEMBER_MAX + 1];
    if (s_join(other, other->conn, room, "reader", reader_member) ||
        s_join(owner, owner->conn, room, "sender", sender_member))
        return S_EXIT_FAIL;
    void *reader_sock = zsock_resolve(sos_conn_sock(other->conn));
    void *sender_sock = zsock_resolve(sos_conn_sock(owner->conn));
    for (int i = 0; i < count; i++) {
        msgpack_packer *pk = s_room_begin(other->conn, "poll", room, 3);
        sos_mp_pack_kv_str(pk, "member_id", reader_member);
        sos_mp_pack_kv_uint(pk, "since", since);
        sos_mp_pack_kv_uint(pk, "wait_ms", 20000);
        if (sos_conn_post(other->conn))
            return s_fail("cannot post a poll");
        uint64_t poll_id = sos_conn_req_id(other->conn);
        if (!s_sleep_ms(S_DELAY_PARK_MS))
            return s_fail("interrupted");
        char id[S_ID_MAX];
        snprintf(id, sizeof id, "d%d", i);
        pk = s_room_begin(owner->conn, "send", room, 3);
        sos_mp_pack_kv_str(pk, "member_id", sender_member);
        sos_mp_pack_kv_str(pk, "msg_id", id);
        sos_mp_pack_str(pk, "content");
        sos_mp_pack_strn(pk, content, size);
        uint64_t t_send = s_now_ns();
        if (sos_conn_post(owner->conn))
            return s_fail("cannot post a send");
        uint64_t send_id = sos_conn_req_id(owner->conn);
        uint64_t t_ack = 0, t_recv = 0, seq = 0;
        uint64_t deadline = t_send + 25 * S_NS_PER_S;
        while (!t_ack || !t_recv) {
            if (zsys_interrupted)
                return s_fail("interrupted");
            uint64_t now = s_now_ns();
            if (now > deadline)
                return s_fail("delay %d: no %s within 25 s", i, t_ack ? "poll reply" : "ack");
            zmq_pollitem_t items[2] = {{reader_sock, 0, ZMQ_POLLIN, 0},
                                       {sender_sock, 0, ZMQ_POLLIN, 0}};
            if (zmq_poll(items, 2, 100) < 0 && errno != EINTR)
                return s_fail("zmq_poll: %s", zmq_strerror(errno));
            uint64_t at = s_now_ns();
            sos_conn_reply_t *reply;
            while (sos_conn_recv(owner->conn, 0, &reply) == SOS_OK) {
                if (sos_conn_reply_req_id(reply) == send_id) {
                    if (!sos_conn_reply_ok(reply)) {
                        s_fail("delay %d: send: %s: %s", i, sos_conn_reply_status(reply),
                               sos_conn_reply_message(reply));
                        sos_conn_reply_destroy(&reply);
                        return S_EXIT_FAIL;
                    }
                    t_ack = at;
                    seq = s_body_uint(sos_conn_reply_body(reply), "seq");
                }
                sos_conn_reply_destroy(&reply);
            }
            while (sos_conn_recv(other->conn, 0, &reply) == SOS_OK) {
                if (sos_conn_reply_req_id(reply) != poll_id) {
                    sos_conn_reply_destroy(&reply);
                    continue;
                }
                const msgpack_object *msgs = NULL;
                uint32_t n = 0;
                char got[S_ID_MAX] = "";
                bool ok = sos_conn_reply_ok(reply) &&
                          sos_mp_array(sos_mp_map_get(sos_conn_reply_body(reply), "messages"),
                                       &msgs, &n, UINT32_MAX) &&
                          n == 1 && s_body_str(&msgs[0], "id", got, sizeof got) && streq(got, id);
                if (!ok) {
                    s_fail("CHECK FAILED: delay %d: the long poll returned %s with %" PRIu32
                           " messages, not the one message %s",
                           i, sos_conn_reply_status(reply), n, id);
                    sos_conn_reply_destroy(&reply);
                    return S_EXIT_FAIL;
                }
                since = s_body_uint(&msgs[0], "seq");
                t_recv = at;
                sos_conn_reply_destroy(&reply);
            }
        }
        if (since != seq)
            return s_fail("CHECK FAILED: delay %d: read seq %" PRIu64 ", acknowledged %" PRIu64, i,
                          since, seq);
        after_ack[i] = ((double)t_recv - (double)t_ack) / 1e6;
        after_send[i] = (double)(t_recv - t_send) / 1e6;
    }
    return 0;
}

//  What one send phase measured
typedef struct {
    double rate; /* acknowledged sends per second */
    uint64_t acked;
    double p50, p99, max;                   /* latency, ms */
    double owner_cpu, other_cpu, bench_cpu; /* % of one core */
} s_phase_t;

//  Run the clients for the duration, as fast as they go (rate 0) or paced at rate sends per
//  second in all; fails if any send failed or timed out
static int
s_send_phase(s_cluster_t *c, s_client_t *clients, size_t n, double rate, s_phase_t *ph)
{
    const s_opts_t *o = c->opts;
    s_node_t *owner = &c->nodes[0], *other = &c->nodes[1];
    memset(ph, 0, sizeof *ph);
    pthread_t *threads = calloc(n, sizeof *threads);
    if (!threads)
        return s_fail("out of memory");
    uint64_t ticks_owner = s_proc_cpu_ticks(owner->pid), ticks_other = s_proc_cpu_ticks(other->pid);
    double cpu_self = s_self_cpu_s();
    uint64_t start = s_now_ns() + 100 * S_NS_PER_MS;
    uint64_t acked0 = 0;
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        acked0 += clients[i].acked;
        clients[i].n_lat = 0;
        clients[i].start_ns = start;
        clients[i].deadline_ns = start + (uint64_t)o->duration_s * S_NS_PER_S;
        clients[i].interval_ns = rate > 0 ? (uint64_t)((double)n / rate * 1e9) : 0;
        if (pthread_create(&threads[i], NULL, s_client_run, &clients[i]) != 0) {
            s_fail("cannot start a client thread");
            break;
        }
        started++;
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    if (started < n)
        return S_EXIT_FAIL;
    uint64_t end = start, errors = 0, timeouts = 0;
    size_t n_lat = 0;
    for (size_t i = 0; i < n; i++) {
        if (clients[i].end_ns > end)
            end = clients[i].end_ns;
        n_lat += clients[i].n_lat;
        ph->acked += clients[i].acked;
        errors += clients[i].errors;
        timeouts += clients[i].timeouts;
    }
    ph->acked -= acked0;
    double elapsed = s_secs(end - start);
    long hz = sysconf(_SC_CLK_TCK);
    if (elapsed > 0) {
        ph->rate = (double)ph->acked / elapsed;
        ph->owner_cpu =
            (double)(s_proc_cpu_ticks(owner->pid) - ticks_owner) / (double)hz / elapsed * 100;
        ph->other_cpu =
            (double)(s_proc_cpu_ticks(other->pid) - ticks_other) / (double)hz / elapsed * 100;
        ph->bench_cpu = (s_self_cpu_s() - cpu_self) / elapsed * 100;
    }
    if (errors || timeouts) {
        for (size_t i = 0; i < n; i++)
            if (clients[i].error[0]) {
                s_fail("client %zu: %s", i, clients[i].error);
                break;
            }
        return s_fail("%" PRIu64 " sends failed, %" PRIu64 " timed out", errors, timeouts);
    }
    double *lat = calloc(n_lat ? n_lat : 1, sizeof *lat);
    if (!lat)
        return s_fail("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < clients[i].n_lat; j++)
            lat[k++] = (double)clients[i].lat_ns[j] / 1e6;
    ph->max = s_max(lat, k);
    ph->p99 = s_quantile(lat, k, 0.99);
    ph->p50 = s_quantile(lat, k, 0.5);
    free(lat);
    return 0;
}

//  The same load on redis-server in its durable mode, beside the nodes' stores; its figures
//  and the node's ratios to them. Without redis-server or hiredis: says so, and skips.
static int
s_redis_compare(s_cluster_t *c, s_report_t *r, const char *room, const char *content,
                const s_phase_t *sos)
{
    const s_opts_t *o = c->opts;
    char dir[PATH_MAX + 8], stream[SOS_ROOMHASH_LEN + 8];
    snprintf(dir, sizeof dir, "%s/redis", c->dir);
    snprintf(stream, sizeof stream, "room:%s", room);
    sosbench_redis_opts_t ro = {.dir = dir,
                                .stream = stream,
                                .content = content,
                                .size = o->size,
                                .clients = o->clients,
                                .window = o->window,
                                .duration_s = o->duration_s};
    sosbench_redis_result_t res;
    s_progress("Redis: %d clients, XADD for %d s (appendonly yes, appendfsync always)", o->clients,
               o->duration_s);
    int rc = sosbench_redis_run(&ro, &res);
    if (rc == SOSBENCH_REDIS_SKIPPED) {
        s_progress("%s", res.error);
        return 0;
    }
    if (rc)
        return s_fail("Redis: %s", res.error);
    s_progress("Redis: %.0f/s, p50 %.3f ms, p99 %.3f ms", res.rate, res.p50, res.p99);
    s_fig(r, "redis_sends_per_s", res.rate, 0, "msg/s", "Redis XADD (appendfsync always) per s",
          NULL);
    s_fig(r, "redis_p50_ms", res.p50, 3, "ms", "  Redis latency p50", NULL);
    s_fig(r, "redis_p99_ms", res.p99, 3, "ms", "  Redis latency p99", NULL);
    s_fig(r, "redis_max_ms", res.max, 3, "ms", "  Redis latency max", NULL);
    s_fig(r, "redis_cpu_pct", res.server_cpu, 1, "%core", "  redis-server CPU while sending", NULL);
    s_fig(r, "vs_redis_rate", res.rate > 0 ? sos->rate / res.rate : 0, 2, "x",
          "sosnode / Redis: sends per second", ">= 1");
    s_fig(r, "vs_redis_p50", res.p50 > 0 ? sos->p50 / res.p50 : 0, 2, "x",
          "sosnode / Redis: latency p50", "<= 1 (1 client)");
    s_fig(r, "vs_redis_p99", res.p99 > 0 ? sos->p99 / res.p99 : 0, 2, "x",
          "sosnode / Redis: latency p99", NULL);
    return 0;
}

//  Start the owner and the other node, and create the room on the owner (known to both)
static int
s_messages_start(s_cluster_t *c, char *room)
{
    const s_opts_t *o = c->opts;
    int ports[2];
    if (s_free_ports(ports, 2))
        return s_fail("cannot find free ports");
    s_node_t *owner = s_node_add(c, ports[0]);
    s_node_t *other = s_node_add(c, ports[1]);
    if (!owner || !other)
        return s_fail("cannot make a client socket");
    char history[16];
    snprintf(history, sizeof history, "%d", o->history);
    const char *owner_args[] = {"--history", history, NULL};
    s_progress("starting the owner and the other node");
    if (s_node_start(c, owner, NULL, owner_args) || s_node_start(c, other, owner, NULL))
        return S_EXIT_FAIL;
    s_set_waiting(c, NULL);
    s_probe_t ready = {.op = "status", .pack = s_pack_none, .check = s_check_ready};
    if (s_wait_all(c, &ready, "nodes to answer status", NULL))
        return S_EXIT_FAIL;
    s_workers_ctx_t wctx = {.cluster = c};
    s_probe_t all_workers = {.op = "workers",
                             .pack = s_pack_none,
                             .check = s_check_workers,
                             .ctx = &wctx,
                             .counted = "workers",
                             .pre_check = s_check_worker_count};
    s_set_waiting(c, NULL);
    if (s_wait_all(c, &all_workers, "the two nodes listing each other", NULL))
        return S_EXIT_FAIL;

    //  The room, on the owner, known to the other node
    s_random_hex(room, SOS_ROOMHASH_LEN / 2);
    msgpack_packer *pk = s_room_begin(owner->conn, "create", room, 1);
    sos_mp_pack_kv_str(pk, "nickname", "owner");
    sos_conn_reply_t *reply;
    if (s_call(owner, &reply, "create"))
        return S_EXIT_FAIL;
    sos_conn_reply_destroy(&reply);
    s_room_ctx_t rctx;
    s_room_ctx_init(&rctx, room);
    s_probe_t has_room = {
        .op = "rooms", .pack = s_pack_room_probe, .check = s_check_room, .ctx = &rctx};
    s_set_waiting(c, NULL);
    if (s_wait_all(c, &has_room, "the room in both directories", NULL))
        return S_EXIT_FAIL;
    return 0;
}

static int
s_messages_run(s_cluster_t *c, s_report_t *r)
{
    const s_opts_t *o = c->opts;
    char room[SOS_ROOMHASH_LEN + 1];
    if (s_messages_start(c, room))
        return S_EXIT_FAIL;
    s_node_t *owner = &c->nodes[0], *other = &c->nodes[1];
    sos_conn_reply_t *reply;

    //  Content: base64 text of random bytes
    size_t size = (size_t)o->size;
    size_t raw = size * 3 / 4 + 3;
    uint8_t *bytes = malloc(raw);
    char *content = malloc(sodium_base64_ENCODED_LEN(raw, sodium_base64_VARIANT_ORIGINAL));
    //  One client more than asked: the filler, which tops the room up for the poll figure
    size_t n_clients = (size_t)o->clients + 1;
    s_client_t *clients = calloc(n_clients, sizeof *clients);
    s_read_t rd = {0};
    double *after_ack = NULL, *after_send = NULL;
    int result = S_EXIT_FAIL;
    if (!bytes || !content || !clients) {
        s_fail("out of memory");
        goto done;
    }
    randombytes_buf(bytes, raw);
    sodium_bin2base64(content, sodium_base64_ENCODED_LEN(raw, sodium_base64_VARIANT_ORIGINAL),
                      bytes, raw, sodium_base64_VARIANT_ORIGINAL);
    content[size] = 0;

    s_node_t *via = o->via_other ? other : owner;
    s_progress("%d clients joining through the %s", o->clients,
               o->via_other ? "other node" : "owner");
    for (size_t i = 0; i < n_clients; i++) {
        s_client_t *cl = &clients[i];
        bool filler = i == n_clients - 1;
        s_node_t *to = filler ? owner : via;
        cl->index = (int)i;
        cl->room = room;
        cl->content = content;
        cl->size = size;
        cl->window = filler ? 64 : (uint32_t)o->window;
        cl->conn = sos_conn_new(to->target);
        if (!cl->conn) {
            s_fail("cannot make a client socket");
            goto done;
        }
        char nick[24];
        snprintf(nick, sizeof nick, "bench%zu", i);
        if (s_join(to, cl->conn, room, nick, cl->member))
            goto done;
    }

    //  send: as fast as the clients go, then paced at half that rate
    s_phase_t full, half;
    s_progress("sending for %d s", o->duration_s);
    if (s_send_phase(c, clients, n_clients - 1, 0, &full))
        goto done;
    s_progress("send: %.0f/s, p50 %.3f ms, p99 %.3f ms", full.rate, full.p50, full.p99);
    s_fig(r, "sends_per_s", full.rate, 0, "msg/s", "durable sends (acknowledged) per second",
          o->via_other ? ">= 25000 (50 clients)" : ">= 50000 (50 clients)");
    s_fig(r, "sends", (double)full.acked, 0, "msgs", "  acknowledged sends", NULL);
    s_fig(r, "send_p50_ms", full.p50, 3, "ms", "send latency p50", NULL);
    s_fig(r, "send_p99_ms", full.p99, 3, "ms", "send latency p99", NULL);
    s_fig(r, "send_max_ms", full.max, 3, "ms", "send latency max", NULL);
    s_fig(r, "owner_cpu_pct", full.owner_cpu, 1, "%core", "  owner node CPU while sending", NULL);
    if (o->via_other)
        s_fig(r, "other_cpu_pct", full.other_cpu, 1, "%core", "  other node CPU while sending",
              NULL);
    s_fig(r, "bench_cpu_pct", full.bench_cpu, 1, "%core", "  sosbench CPU while sending", NULL);
    s_progress("sending at half that rate for %d s", o->duration_s);
    if (s_send_phase(c, clients, n_clients - 1, full.rate / 2, &half))
        goto done;
    s_progress("send at half load: %.0f/s, p50 %.3f ms, p99 %.3f ms", half.rate, half.p50,
               half.p99);
    s_fig(r, "half_sends_per_s", half.rate, 0, "msg/s", "sends per second at half load", NULL);
    s_fig(r, "half_p50_ms", half.p50, 3, "ms", "send latency p50 at half load", NULL);
    s_fig(r, "half_p99_ms", half.p99, 3, "ms", "send latency p99 at half load", "< 5 ms");
    s_fig(r, "half_max_ms", half.max, 3, "ms", "send latency max at half load", NULL);

    //  Top the room up for the poll figure
    s_room_begin(owner->conn, "info", room, 0);
    if (s_call(owner, &reply, "info"))
        goto done;
    uint64_t kept = s_body_uint(sos_conn_reply_body(reply), "message_count");
    sos_conn_reply_destroy(&reply);
    if (kept < (uint64_t)o->fill) {
        s_client_t *filler = &clients[n_clients - 1];
        filler->max_msgs = (uint32_t)((uint64_t)o->fill - kept);
        s_progress("filling the room up with %" PRIu32 " messages", filler->max_msgs);
        s_client_run(filler);
        if (filler->errors || filler->timeouts || filler->error[0]) {
            s_fail("filling the room: %s", filler->error);
            goto done;
        }
    }

    //  poll and check: a reader catching up through the owner
    char reader[S_MEMBER_MAX + 1];
    if (s_join(owner, owner->conn, room, "catchup", reader))
        goto done;
    s_progress("reading the room back");
    if (s_read_room(owner, room, reader, &rd))
        goto done;
    double poll_rate = s_read_rate(&rd);
    s_fig(r, "poll_msgs_per_s", poll_rate, 0, "msg/s", "poll: catch-up read from the owner",
          ">= 200000");
    s_fig(r, "poll_msgs", (double)rd.n, 0, "msgs", "  messages read", NULL);
    s_check_t ck;
    if (s_check(clients, n_clients, &rd, &ck)) {
        s_fig(r, "check_ok", 0, 0, "", "check: acknowledged = read back", NULL);
        r->failed = true;
        goto done;
    }
    if (o->via_other) {
        char reader2[S_MEMBER_MAX + 1];
        if (s_join(other, other->conn, room, "catchup2", reader2))
            goto done;
        if (s_read_room(other, room, reader2, &rd))
            goto done;
        s_fig(r, "poll_other_msgs_per_s", s_read_rate(&rd), 0, "msg/s",
              "poll: catch-up read through the other", NULL);
        s_check_t ck2;
        if (s_check(clients, n_clients, &rd, &ck2)) {
            s_fig(r, "check_ok", 0, 0, "", "check: acknowledged = read back", NULL);
            r->failed = true;
            goto done;
        }
    }
    s_fig(r, "check_ok", 1, 0, "", "check: every ack read back once, in order", NULL);
    s_fig(r, "check_checked", (double)ck.checked, 0, "msgs", "  acknowledged messages checked",
          NULL);
    s_fig(r, "check_trimmed", (double)ck.trimmed, 0, "msgs", "  acknowledged, out of the history",
          NULL);
    s_fig(r, "check_unacked", (double)ck.unacked, 0, "msgs", "  stored without an ack", NULL);

    //  delay: a long-polling reader on the other node
    s_progress("timing %d messages to a long-polling reader", o->delays);
    after_ack = calloc((size_t)o->delays, sizeof *after_ack);
    after_send = calloc((size_t)o->delays, sizeof *after_send);
    if (!after_ack || !after_send) {
        s_fail("out of memory");
        goto done;
    }
    if (s_delays(owner, other, room, content, size, o->delays, rd.last_seq, after_ack,
                 after_send)) {
        r->failed = true;
        goto done;
    }
    s_fig(r, "delay_p50_ms", s_quantile(after_ack, (size_t)o->delays, 0.5), 3, "ms",
          "delay: ack to long-poll reply (other), p50", NULL);
    s_fig(r, "delay_p99_ms", s_quantile(after_ack, (size_t)o->delays, 0.99), 3, "ms",
          "delay: ack to long-poll reply (other), p99", NULL);
    s_fig(r, "delay_send_p50_ms", s_quantile(after_send, (size_t)o->delays, 0.5), 3, "ms",
          "  send request to long-poll reply, p50", NULL);
    s_fig(r, "delay_send_p99_ms", s_quantile(after_send, (size_t)o->delays, 0.99), 3, "ms",
          "  send request to long-poll reply, p99", NULL);
    if (o->compare_redis && s_redis_compare(c, r, room, content, &full))
        goto done;
    result = 0;
done:
    for (size_t i = 0; clients && i < n_clients; i++)
        s_client_free(&clients[i]);
    free(clients);
    free(bytes);
    free(content);
    free(rd.msgs);
    free(after_ack);
    free(after_send);
    return result;
}

/* ---------------------------------------------------------- compare null ---- */

//  One side of --compare null: the nodes of c (CURVE, or NULL with c->null_transport), the
//  send phase of the clients asked, then one client with one request out (its round trip)
static int
s_compare_side(s_cluster_t *c, s_phase_t *full, s_phase_t *rtt)
{
    const s_opts_t *o = c->opts;
    char room[SOS_ROOMHASH_LEN + 1];
    if (s_messages_start(c, room))
        return S_EXIT_FAIL;
    s_node_t *via = o->via_other ? &c->nodes[1] : &c->nodes[0];
    size_t size = (size_t)o->size;
    char *content = malloc(size + 1);
    s_client_t *clients = calloc((size_t)o->clients, sizeof *clients);
    int result = S_EXIT_FAIL;
    if (!content || !clients) {
        s_fail("out of memory");
        goto done;
    }
    memset(content, 'x', size);
    content[size] = 0;
    for (int i = 0; i < o->clients; i++) {
        s_client_t *cl = &clients[i];
        cl->index = i;
        cl->room = room;
        cl->content = content;
        cl->size = size;
        cl->window = (uint32_t)o->window;
        cl->conn = sos_conn_new(via->target);
        char nick[24];
        snprintf(nick, sizeof nick, "bench%d", i);
        if (!cl->conn || s_join(via, cl->conn, room, nick, cl->member))
            goto done;
    }
    s_progress("%s: sending for %d s", c->null_transport ? "NULL" : "CURVE", o->duration_s);
    if (s_send_phase(c, clients, (size_t)o->clients, 0, full))
        goto done;
    s_progress("%s: %.0f sends/s, p50 %.3f ms", c->null_transport ? "NULL" : "CURVE", full->rate,
               full->p50);
    clients[0].window = 1;
    if (s_send_phase(c, clients, 1, 0, rtt))
        goto done;
    s_progress("%s: round trip of one client p50 %.3f ms", c->null_transport ? "NULL" : "CURVE",
               rtt->p50);
    result = 0;
done:
    for (int i = 0; clients && i < o->clients; i++)
        s_client_free(&clients[i]);
    free(clients);
    free(content);
    return result;
}

//  --compare null: the same measurements on CURVE nodes and on NULL nodes, twice each in
//  turns (CURVE, NULL, CURVE, NULL), keeping each side's best rate and best round trip:
//  other load on the machine then skews both sides alike rather than one.
static int
s_compare_null(const s_opts_t *o, s_report_t *r)
{
    s_phase_t full[2] = {{0}}, rtt[2] = {{0}};
    for (int turn = 0; turn < 4; turn++) {
        int side = turn % 2;
        s_cluster_t *c = s_cluster_new(o, 2);
        if (!c)
            return S_EXIT_FAIL;
        c->null_transport = side == 1;
        if (c->null_transport)
            setenv("SOS_ALLOW_NULL_TRANSPORT", "1", 1);
        s_phase_t f, t;
        int rc = s_compare_side(c, &f, &t);
        s_cluster_destroy(&c);
        if (rc)
            return rc;
        if (f.rate > full[side].rate)
            full[side] = f;
        if (turn < 2 || t.p50 < rtt[side].p50)
            rtt[side] = t;
    }
    s_fig(r, "curve_sends_per_s", full[0].rate, 0, "msg/s", "sends per second, CURVE", NULL);
    s_fig(r, "null_sends_per_s", full[1].rate, 0, "msg/s", "sends per second, NULL", NULL);
    double ratio = full[1].rate > 0 ? full[0].rate / full[1].rate : 0;
    s_fig(r, "sends_ratio", ratio, 3, "", "  CURVE / NULL", NULL);
    s_fig(r, "curve_cost_pct", (1 - ratio) * 100, 1, "%", "  throughput CURVE costs", "< 10 %");
    s_fig(r, "curve_send_p50_ms", full[0].p50, 3, "ms", "send latency p50, CURVE", NULL);
    s_fig(r, "null_send_p50_ms", full[1].p50, 3, "ms", "send latency p50, NULL", NULL);
    s_fig(r, "curve_owner_cpu_pct", full[0].owner_cpu, 1, "%core", "  owner CPU, CURVE", NULL);
    s_fig(r, "null_owner_cpu_pct", full[1].owner_cpu, 1, "%core", "  owner CPU, NULL", NULL);
    s_fig(r, "curve_rtt_p50_ms", rtt[0].p50, 3, "ms", "one client's round trip p50, CURVE", NULL);
    s_fig(r, "null_rtt_p50_ms", rtt[1].p50, 3, "ms", "one client's round trip p50, NULL", NULL);
    s_fig(r, "rtt_ratio", rtt[1].p50 > 0 ? rtt[0].p50 / rtt[1].p50 : 0, 3, "", "  CURVE / NULL",
          NULL);
    return 0;
}

/* ------------------------------------------------------------------- main ---- */

static bool
s_parse_int(const char *text, int min, int max, int *out)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || *end || value < min || value > max)
        return false;
    *out = (int)value;
    return true;
}

//  Locate sosnode next to this program
static bool
s_default_sosnode(char *path, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return false;
    *slash = 0;
    return snprintf(path, size, "%s/sosnode", self) < (int)size;
}

enum {
    S_O_SOSNODE = 256,
    S_O_DIR,
    S_O_KEEP,
    S_O_LOGLEVEL,
    S_O_TIMEOUT,
    S_O_NODES,
    S_O_INTERVAL,
    S_O_FANOUT,
    S_O_MAXFAIL,
    S_O_ROOMS,
    S_O_BIG,
    S_O_RATE,
    S_O_MEASURE,
    S_O_POLL,
    S_O_STRESS,
    S_O_HOLD,
    S_O_TRACE,
    S_O_CLIENTS,
    S_O_SIZE,
    S_O_VIA,
    S_O_DURATION,
    S_O_WINDOW,
    S_O_HISTORY,
    S_O_FILL,
    S_O_DELAYS,
    S_O_COMPARE,
};

//  Which command an option belongs to (0: global or both)
static s_cmd_t
s_option_command(int opt)
{
    switch (opt) {
    case S_O_NODES:
    case S_O_FANOUT:
    case S_O_MAXFAIL:
    case S_O_ROOMS:
    case S_O_BIG:
    case S_O_RATE:
    case S_O_MEASURE:
    case S_O_POLL:
    case S_O_STRESS:
    case S_O_HOLD:
    case S_O_TRACE:
        return S_CMD_CONVERGE;
    case S_O_CLIENTS:
    case S_O_SIZE:
    case S_O_VIA:
    case S_O_DURATION:
    case S_O_WINDOW:
    case S_O_HISTORY:
    case S_O_FILL:
    case S_O_DELAYS:
        return S_CMD_MESSAGES;
    default:
        return S_CMD_NONE;
    }
}

static int
s_parse_args(s_opts_t *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"sosnode", required_argument, NULL, S_O_SOSNODE},
        {"dir", required_argument, NULL, S_O_DIR},
        {"keep", no_argument, NULL, S_O_KEEP},
        {"log-level", required_argument, NULL, S_O_LOGLEVEL},
        {"timeout", required_argument, NULL, S_O_TIMEOUT},
        {"nodes", required_argument, NULL, S_O_NODES},
        {"interval", required_argument, NULL, S_O_INTERVAL},
        {"fanout", required_argument, NULL, S_O_FANOUT},
        {"max-failures", required_argument, NULL, S_O_MAXFAIL},
        {"rooms", required_argument, NULL, S_O_ROOMS},
        {"big-rooms", required_argument, NULL, S_O_BIG},
        {"create-rate", required_argument, NULL, S_O_RATE},
        {"measure", required_argument, NULL, S_O_MEASURE},
        {"poll", required_argument, NULL, S_O_POLL},
        {"stress", required_argument, NULL, S_O_STRESS},
        {"hold", required_argument, NULL, S_O_HOLD},
        {"join-trace", required_argument, NULL, S_O_TRACE},
        {"clients", required_argument, NULL, S_O_CLIENTS},
        {"size", required_argument, NULL, S_O_SIZE},
        {"via", required_argument, NULL, S_O_VIA},
        {"duration", required_argument, NULL, S_O_DURATION},
        {"window", required_argument, NULL, S_O_WINDOW},
        {"history", required_argument, NULL, S_O_HISTORY},
        {"fill", required_argument, NULL, S_O_FILL},
        {"delays", required_argument, NULL, S_O_DELAYS},
        {"compare", required_argument, NULL, S_O_COMPARE},
        {NULL, 0, NULL, 0},
    };
    *o = (s_opts_t){.timeout_s = 120,
                    .nodes = 20,
                    .interval_ms = 200,
                    .fanout = 3,
                    .rooms = 5,
                    .big_rooms = 1000,
                    .create_rate = 20,
                    .measure_s = 5,
                    .hold_s = -1,
                    .clients = 10,
                    .size = 256,
                    .duration_s = 5,
                    .window = 1,
                    .history = S_HISTORY_MAX,
                    .fill = 50000,
                    .delays = 200};
    bool have_sosnode = false;
    s_cmd_t given[S_O_COMPARE + 1] = {0};
    const char *given_name[S_O_COMPARE + 1] = {0};
    opterr = 0;
    int opt, index;
    while ((opt = getopt_long(argc, argv, "+:hV", longopts, &index)) != -1 ||
           (optind < argc && o->cmd == S_CMD_NONE)) {
        if (opt == -1) {
            //  The command word; options may follow it
            const char *word = argv[optind++];
            if (streq(word, "converge"))
                o->cmd = S_CMD_CONVERGE;
            else if (streq(word, "messages"))
                o->cmd = S_CMD_MESSAGES;
            else
                return s_usage_error("unknown command '%s'", word);
            continue;
        }
        const char *arg = optarg;
        bool ok = true;
        if (opt >= S_O_SOSNODE && opt <= S_O_COMPARE) {
            given[opt] = s_option_command(opt);
            given_name[opt] = longopts[index].name;
        }
        switch (opt) {
        case 'h':
            fputs(s_usage_text, stdout);
            exit(S_EXIT_OK);
        case 'V':
            printf("sosbench %s\n", SOS_VERSION);
            exit(S_EXIT_OK);
        case S_O_SOSNODE:
            ok = snprintf(o->sosnode, sizeof o->sosnode, "%s", arg) < (int)sizeof o->sosnode;
            have_sosnode = true;
            break;
        case S_O_DIR:
            o->dir = arg;
            break;
        case S_O_KEEP:
            o->keep = true;
            break;
        case S_O_LOGLEVEL:
            o->log_level = arg;
            break;
        case S_O_TIMEOUT:
            ok = s_parse_int(arg, 1, 86400, &o->timeout_s);
            break;
        case S_O_NODES:
            ok = s_parse_int(arg, 3, S_NODES_MAX, &o->nodes);
            break;
        case S_O_INTERVAL:
            ok = s_parse_int(arg, 10, 600000, &o->interval_ms);
            break;
        case S_O_FANOUT:
            ok = s_parse_int(arg, 1, 64, &o->fanout);
            break;
        case S_O_MAXFAIL:
            ok = s_parse_int(arg, 1, 1000, &o->max_failures);
            break;
        case S_O_ROOMS:
            ok = s_parse_int(arg, 1, 1000, &o->rooms);
            break;
        case S_O_BIG:
            ok = s_parse_int(arg, 0, 100000, &o->big_rooms);
            break;
        case S_O_RATE:
            ok = s_parse_int(arg, 1, 100000, &o->create_rate);
            break;
        case S_O_MEASURE:
            ok = s_parse_int(arg, 1, 3600, &o->measure_s);
            break;
        case S_O_POLL:
            ok = s_parse_int(arg, 1, 10000, &o->poll_ms);
            break;
        case S_O_STRESS:
            ok = s_parse_int(arg, 1, 100, &o->stress_pct);
            break;
        case S_O_HOLD:
            ok = s_parse_int(arg, 0, 86400, &o->hold_s);
            break;
        case S_O_TRACE:
            o->join_trace = arg;
            break;
        case S_O_CLIENTS:
            ok = s_parse_int(arg, 1, S_CLIENTS_MAX, &o->clients);
            break;
        case S_O_SIZE:
            ok = s_parse_int(arg, 1, S_CONTENT_MAX, &o->size);
            break;
        case S_O_VIA:
            ok = streq(arg, "owner") || streq(arg, "other");
            o->via_other = ok && streq(arg, "other");
            break;
        case S_O_DURATION:
            ok = s_parse_int(arg, 1, 3600, &o->duration_s);
            break;
        case S_O_WINDOW:
            ok = s_parse_int(arg, 1, S_WINDOW_MAX, &o->window);
            break;
        case S_O_HISTORY:
            ok = s_parse_int(arg, 1, S_HISTORY_MAX, &o->history);
            break;
        case S_O_FILL:
            ok = s_parse_int(arg, 0, 10000000, &o->fill);
            break;
        case S_O_DELAYS:
            ok = s_parse_int(arg, 1, 100000, &o->delays);
            break;
        case S_O_COMPARE:
            //  One option of both commands: what it compares with says which command
            o->compare_serf = streq(arg, "serf");
            o->compare_redis = streq(arg, "redis");
            o->compare_null = streq(arg, "null");
            ok = o->compare_serf || o->compare_redis || o->compare_null;
            if (ok)
                given[opt] = o->compare_serf ? S_CMD_CONVERGE : S_CMD_MESSAGES;
            break;
        case ':':
            return s_usage_error("%s needs a value", argv[optind - 1]);
        default:
            return s_usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (!ok)
            return s_usage_error("invalid value '%s' for --%s", arg, longopts[index].name);
    }
    if (optind < argc)
        return s_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->cmd == S_CMD_NONE)
        return s_usage_error("no command given: converge or messages");
    for (int i = 0; i <= S_O_COMPARE; i++)
        if (given[i] != S_CMD_NONE && given[i] != o->cmd)
            return s_usage_error("--%s is not an option of %s", given_name[i],
                                 o->cmd == S_CMD_CONVERGE ? "converge" : "messages");
    if (!have_sosnode && !s_default_sosnode(o->sosnode, sizeof o->sosnode))
        return s_usage_error("cannot locate sosnode; give --sosnode PATH");
    if (access(o->sosnode, X_OK) != 0)
        return s_usage_error("%s is not an executable sosnode", o->sosnode);
    if (!o->poll_ms)
        o->poll_ms = o->cmd == S_CMD_CONVERGE && o->nodes > 50 ? 100 : 50;
    if (o->hold_s < 0)
        o->hold_s = o->stress_pct ? 60 : 0;
    return S_EXIT_OK;
}

//  The machine, for the report: cores, CPU model, memory
static void
s_machine(char *out, size_t size)
{
    char model[120] = "unknown CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 2;
                p[strcspn(p, "\n")] = 0;
                snprintf(model, sizeof model, "%s", p);
            }
            break;
        }
    if (f)
        fclose(f);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    snprintf(out, size, "%ld cores, %s, %.1f GiB", sysconf(_SC_NPROCESSORS_ONLN), model,
             (double)pages * (double)page / (1024.0 * 1024 * 1024));
}

int
main(int argc, char **argv)
{
    s_opts_t opts;
    int rc = s_parse_args(&opts, argc, argv);
    if (rc)
        return rc;
    //  czmq's handler sets zsys_interrupted on SIGINT and SIGTERM; every wait checks it
    zsys_init();
    if (sodium_init() < 0)
        return s_fail("libsodium failed to initialise");

    s_report_t *report = calloc(1, sizeof *report);
    size_t cap = opts.cmd == S_CMD_CONVERGE ? (size_t)opts.nodes + 1 : 2;
    s_cluster_t *cluster = report ? s_cluster_new(&opts, cap) : NULL;
    if (!cluster) {
        free(report);
        return S_EXIT_FAIL;
    }
    char machine[200];
    s_machine(machine, sizeof machine);
    double busy_before = s_machine_busy_pct(1000);
    if (opts.cmd == S_CMD_CONVERGE) {
        snprintf(report->title, sizeof report->title,
                 "sosbench converge: %d nodes, interval %d ms, fanout %d, poll %d ms (%s)",
                 opts.nodes, opts.interval_ms, opts.fanout, opts.poll_ms, machine);
        snprintf(report->params, sizeof report->params,
                 "command=converge nodes=%d interval_ms=%d fanout=%d max_failures=%d "
                 "poll_ms=%d measure_s=%d",
                 opts.nodes, opts.interval_ms, opts.fanout,
                 opts.max_failures ? opts.max_failures : 5, opts.poll_ms, opts.measure_s);
        rc = s_converge_run(cluster, report);
    } else {
        snprintf(report->title, sizeof report->title,
                 "sosbench messages: %d clients, %d B, via %s, window %d, %d s (%s)", opts.clients,
                 opts.size, opts.via_other ? "other" : "owner", opts.window, opts.duration_s,
                 machine);
        snprintf(report->params, sizeof report->params,
                 "command=messages clients=%d size=%d via=%s window=%d duration_s=%d history=%d",
                 opts.clients, opts.size, opts.via_other ? "other" : "owner", opts.window,
                 opts.duration_s, opts.history);
        if (opts.compare_null) {
            size_t len = strlen(report->params);
            snprintf(report->params + len, sizeof report->params - len, " compare=null");
            rc = s_compare_null(&opts, report);
        } else
            rc = s_messages_run(cluster, report);
    }
    s_cluster_destroy(&cluster);
    if (rc)
        report->failed = true;
    //  Other load on the machine skews every figure: show what there was before the run
    if (busy_before >= 0) {
        size_t len = strlen(report->params);
        snprintf(report->params + len, sizeof report->params - len, " busy_before_pct=%.0f",
                 busy_before);
    }
    s_report_print(report);
    free(report);
    return rc ? S_EXIT_FAIL : S_EXIT_OK;
}
