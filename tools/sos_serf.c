/*  sos_serf.c: a client of serf's msgpack agent RPC, and a run of serf agents measured the
    way sosbench measures sosnode, for a comparison in one run. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sos_mp.h"
#include "sos_serf.h"
#include "sos_spawn.h"

#define S_BUF_MAX      (8 * 1024 * 1024) /* bytes of one reply, at most */
#define S_READ_CHUNK   65536
#define S_INFLIGHT_MAX 32 /* members requests out at once, as sosbench's own polling */
#define S_NS_PER_MS    1000000ULL
#define S_NS_PER_S     1000000000ULL
#define S_CALL_MS      5000 /* a synchronous RPC call is given up after this */

/* ------------------------------------------------------------------ the RPC ---- */

typedef enum { S_BODY_NONE, S_BODY_MEMBERS, S_BODY_EVENT } s_body_t;

struct sos_serf_rpc_t {
    int fd;
    uint8_t *buf; /* bytes received, not yet consumed */
    size_t len;
    size_t cap;
    uint64_t seq;         /* of the last request sent */
    uint64_t members_seq; /* of the members request out, 0 if none */
    uint64_t stream_seq;  /* of the user-event stream, 0 if none */
    bool stream_acked;    /* its first (bodiless) reply came */
    uint64_t ack_seq;     /* a bodiless reply waited for (handshake, event, stream) */
    bool acked;
    s_body_t body; /* what the next object is, after a header */
};

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S_NS_PER_S + (uint64_t)ts.tv_nsec;
}

sos_serf_rpc_t *
sos_serf_rpc_connect(int port, int timeout_ms)
{
    sos_serf_rpc_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (self->fd < 0) {
        free(self);
        return NULL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(self->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    //  Loopback connects at once or is refused: a blocking connect is enough
    if (connect(self->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        fcntl(self->fd, F_SETFL, O_NONBLOCK) < 0) {
        sos_serf_rpc_destroy(&self);
        return NULL;
    }
    //  handshake {Version: 1}
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    sos_mp_pack_kv_str(&pk, "Command", "handshake");
    sos_mp_pack_kv_uint(&pk, "Seq", ++self->seq);
    msgpack_pack_map(&pk, 1);
    sos_mp_pack_kv_uint(&pk, "Version", 1);
    self->ack_seq = self->seq;
    self->acked = false;
    bool ok = send(self->fd, sb.data, sb.size, MSG_NOSIGNAL) == (ssize_t)sb.size;
    msgpack_sbuffer_destroy(&sb);
    if (ok) {
        //  Wait for the acknowledgement
        uint64_t end = s_now_ns() + (uint64_t)timeout_ms * S_NS_PER_MS;
        sos_serf_msg_t msg;
        while (ok && !self->acked) {
            int rc = sos_serf_rpc_read(self, &msg);
            if (rc < 0)
                ok = false;
            else if (rc == 0 && !self->acked) {
                uint64_t now = s_now_ns();
                struct pollfd p = {.fd = self->fd, .events = POLLIN};
                if (now >= end || poll(&p, 1, (int)((end - now) / S_NS_PER_MS) + 1) < 0)
                    ok = false;
            }
        }
    }
    if (!ok)
        sos_serf_rpc_destroy(&self);
    return self;
}

void
sos_serf_rpc_destroy(sos_serf_rpc_t **self_p)
{
    sos_serf_rpc_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close(self->fd);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

int
sos_serf_rpc_fd(const sos_serf_rpc_t *self)
{
    return self->fd;
}

bool
sos_serf_rpc_members_out(const sos_serf_rpc_t *self)
{
    return self->members_seq != 0;
}

//  Send a header {Command, Seq} and the body the command takes (stream: user events; event:
//  name, with no payload)
static int
s_send(sos_serf_rpc_t *self, const char *command, const char *name)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    sos_mp_pack_kv_str(&pk, "Command", command);
    sos_mp_pack_kv_uint(&pk, "Seq", ++self->seq);
    if (strcmp(command, "stream") == 0) {
        msgpack_pack_map(&pk, 1);
        sos_mp_pack_kv_str(&pk, "Type", "user");
    } else if (strcmp(command, "event") == 0) {
        msgpack_pack_map(&pk, 3);
        sos_mp_pack_kv_str(&pk, "Name", name);
        sos_mp_pack_str(&pk, "Payload");
        sos_mp_pack_bin(&pk, "", 0);
        sos_mp_pack_str(&pk, "Coalesce");
        msgpack_pack_false(&pk);
    }
    //  Requests are a few dozen bytes: the socket buffer takes them whole
    ssize_t sent = send(self->fd, sb.data, sb.size, MSG_NOSIGNAL);
    int rc = sent == (ssize_t)sb.size ? 0 : -1;
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int
sos_serf_rpc_members_post(sos_serf_rpc_t *self)
{
    if (self->members_seq || s_send(self, "members", NULL))
        return -1;
    self->members_seq = self->seq;
    return 0;
}

//  Send a request with a bodiless acknowledgement and wait for it
static int
s_call_ack(sos_serf_rpc_t *self, const char *command, const char *name, int timeout_ms)
{
    if (s_send(self, command, name))
        return -1;
    self->ack_seq = self->seq;
    self->acked = false;
    if (strcmp(command, "stream") == 0) {
        self->stream_seq = self->seq;
        self->stream_acked = false;
    }
    uint64_t end = s_now_ns() + (uint64_t)timeout_ms * S_NS_PER_MS;
    while (!self->acked && !(self->stream_seq == self->ack_seq && self->stream_acked)) {
        sos_serf_msg_t msg;
        int rc = sos_serf_rpc_read(self, &msg);
        if (rc < 0)
            return -1;
        //  The read may have taken the acknowledgement before it found nothing more
        if (rc == 0 && !self->acked && !(self->stream_seq == self->ack_seq && self->stream_acked)) {
            uint64_t now = s_now_ns();
            struct pollfd p = {.fd = self->fd, .events = POLLIN};
            if (now >= end || poll(&p, 1, (int)((end - now) / S_NS_PER_MS) + 1) < 0)
                return -1;
        }
    }
    self->ack_seq = 0;
    return 0;
}

int
sos_serf_rpc_stream_user(sos_serf_rpc_t *self, int timeout_ms)
{
    return s_call_ack(self, "stream", NULL, timeout_ms);
}

int
sos_serf_rpc_event(sos_serf_rpc_t *self, const char *name, int timeout_ms)
{
    return s_call_ack(self, "event", name, timeout_ms);
}

//  Receive what the socket holds, up to the buffer's bound; -1 on close or error
static int
s_fill(sos_serf_rpc_t *self)
{
    if (self->cap - self->len < S_READ_CHUNK) {
        if (self->cap >= S_BUF_MAX)
            return -1; /* a reply larger than any this program asks for */
        size_t cap = self->cap ? self->cap * 2 : S_READ_CHUNK * 2;
        uint8_t *buf = realloc(self->buf, cap);
        if (!buf)
            return -1;
        self->buf = buf;
        self->cap = cap;
    }
    ssize_t n = recv(self->fd, self->buf + self->len, self->cap - self->len, 0);
    if (n > 0) {
        self->len += (size_t)n;
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

//  The count of members with Status "alive", and of all, from a members body
static bool
s_members_count(const msgpack_object *body, uint32_t *alive, uint32_t *total)
{
    const msgpack_object *items;
    uint32_t count;
    if (!sos_mp_array(sos_mp_map_get(body, "Members"), &items, &count, UINT32_MAX))
        return false;
    *total = count;
    *alive = 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *status;
        size_t len;
        if (sos_mp_str(sos_mp_map_get(&items[i], "Status"), &status, &len, 32) && len == 5 &&
            memcmp(status, "alive", 5) == 0)
            (*alive)++;
    }
    return true;
}

/*  The reply states: a header {Seq, Error} says what follows by its Seq; the members reply
    and each streamed event carry a body, the first reply to `stream` and the replies to
    handshake and event none. */
int
sos_serf_rpc_read(sos_serf_rpc_t *self, sos_serf_msg_t *msg)
{
    bool filled = false;
    while (true) {
        //  Where the first reply ends, or that it would not fit in the buffer's bound: then
        //  sos_mp_parse checks the object itself
        size_t size = 0;
        sos_rc rc = sos_mp_object_size(self->buf, self->len, S_BUF_MAX, &size);
        if (rc != SOS_OK && rc != SOS_ERR_PARTIAL)
            return -1;
        if (rc == SOS_ERR_PARTIAL) {
            if (filled)
                return 0;
            if (s_fill(self))
                return -1;
            filled = true;
            continue;
        }
        sos_mp_doc_t doc;
        if (sos_mp_parse(&doc, self->buf, size) != SOS_OK) {
            sos_mp_doc_release(&doc);
            return -1;
        }
        int result = -2; /* -2: consumed, go on */
        const msgpack_object *o = doc.root;
        if (self->body == S_BODY_MEMBERS) {
            memset(msg, 0, sizeof *msg);
            msg->kind = SOS_SERF_MSG_MEMBERS;
            result = s_members_count(o, &msg->alive, &msg->total) ? 1 : -1;
            self->body = S_BODY_NONE;
        } else if (self->body == S_BODY_EVENT) {
            memset(msg, 0, sizeof *msg);
            msg->kind = SOS_SERF_MSG_EVENT;
            const char *name;
            size_t len;
            if (sos_mp_str(sos_mp_map_get(o, "Name"), &name, &len, 1024)) {
                if (len >= sizeof msg->name)
                    len = sizeof msg->name - 1;
                memcpy(msg->name, name, len);
                result = 1;
            }
            self->body = S_BODY_NONE;
        } else {
            uint64_t seq = 0;
            const char *error = "";
            size_t error_len = 0;
            if (!sos_mp_uint(sos_mp_map_get(o, "Seq"), &seq) ||
                !sos_mp_str(sos_mp_map_get(o, "Error"), &error, &error_len, 1024))
                result = -1;
            else if (error_len) {
                fprintf(stderr, "serf rpc: %.*s\n", (int)error_len, error);
                result = -1;
            } else if (seq && seq == self->members_seq) {
                self->members_seq = 0;
                self->body = S_BODY_MEMBERS;
            } else if (seq && seq == self->stream_seq) {
                if (self->stream_acked)
                    self->body = S_BODY_EVENT;
                self->stream_acked = true;
            } else if (seq && seq == self->ack_seq)
                self->acked = true;
            else
                result = -1;
        }
        sos_mp_doc_release(&doc);
        memmove(self->buf, self->buf + size, self->len - (size_t)size);
        self->len -= (size_t)size;
        if (result != -2)
            return result;
    }
}

/* --------------------------------------------------------------- the agents ---- */

typedef struct {
    pid_t pid;
    int bind_port;
    int rpc_port;
    uint64_t start_ns;
    sos_serf_rpc_t *rpc;
    uint64_t due_ns;
    uint64_t sent_ns;
    bool waiting;
    uint64_t done_ns;
    uint32_t seen;  /* alive members in the last reply */
    uint32_t total; /* members listed in it */
    bool answered;  /* a members reply came */
} s_agent_t;

typedef struct {
    const sos_serf_bench_opts_t *opts;
    s_agent_t *agents;
    size_t n;
    long max_fd;
} s_run_t;

bool
sos_serf_find(char *path, size_t size)
{
    const char *env = getenv("PATH");
    if (!env)
        return false;
    char *copy = strdup(env);
    if (!copy)
        return false;
    bool found = false;
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir && !found;
         dir = strtok_r(NULL, ":", &save))
        found = snprintf(path, size, "%s/serf", *dir ? dir : ".") < (int)size &&
                access(path, X_OK) == 0;
    free(copy);
    return found;
}

/*  n ports free on 127.0.0.1 for both TCP and UDP (serf gossips on both). Every socket is
    held open until all are found, so that no two are the same, then released for the agents
    to bind. -1 if they cannot be found. */
static int
s_free_ports(int *ports, size_t n)
{
    int *fds = calloc(n * 2, sizeof *fds);
    if (!fds)
        return -1;
    size_t held = 0, found = 0;
    for (int attempt = 0; found < n && attempt < (int)n * 4 + 50; attempt++) {
        int tcp = socket(AF_INET, SOCK_STREAM, 0), udp = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (tcp >= 0 && udp >= 0 && bind(tcp, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(tcp, (struct sockaddr *)&sa, &len) == 0 &&
            bind(udp, (struct sockaddr *)&sa, sizeof sa) == 0) {
            ports[found++] = ntohs(sa.sin_port);
            fds[held++] = tcp;
            fds[held++] = udp;
            continue;
        }
        if (tcp >= 0)
            close(tcp);
        if (udp >= 0)
            close(udp);
    }
    for (size_t i = 0; i < held; i++)
        close(fds[i]);
    free(fds);
    return found == n ? 0 : -1;
}

//  The end of an agent's log on stderr, to show why it ended
static void
s_log_tail(const char *dir, size_t i)
{
    char path[PATH_MAX], buf[1201];
    if (snprintf(path, sizeof path, "%s/serf%zu.log", dir, i) >= (int)sizeof path)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 1200 ? size - 1200 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    fprintf(stderr, "--- end of %s ---\n%s\n---\n", path, buf);
}

static int
s_agent_start(s_run_t *run, size_t i)
{
    const sos_serf_bench_opts_t *o = run->opts;
    s_agent_t *a = &run->agents[i];
    char node[32], bind[48], rpc[48], join[48], log[PATH_MAX];
    snprintf(node, sizeof node, "-node=serf%zu", i);
    snprintf(bind, sizeof bind, "-bind=127.0.0.1:%d", a->bind_port);
    snprintf(rpc, sizeof rpc, "-rpc-addr=127.0.0.1:%d", a->rpc_port);
    snprintf(join, sizeof join, "-join=127.0.0.1:%d", run->agents[0].bind_port);
    if (snprintf(log, sizeof log, "%s/serf%zu.log", o->dir, i) >= (int)sizeof log)
        return -1;
    const char *argv[] = {o->serf,           "agent",         node, bind, rpc, "-profile=lan",
                          "-log-level=warn", i ? join : NULL, NULL};
    pid_t pid = sos_spawn(argv, log, run->max_fd);
    if (pid < 0) {
        fprintf(stderr, "sosbench: cannot fork: %s\n", strerror(errno));
        return -1;
    }
    a->pid = pid;
    a->start_ns = s_now_ns();
    return 0;
}

static void
s_run_destroy(s_run_t *run)
{
    for (size_t i = 0; run->agents && i < run->n; i++) {
        s_agent_t *a = &run->agents[i];
        if (a->pid > 0) {
            kill(a->pid, SIGKILL);
            waitpid(a->pid, NULL, 0);
        }
        sos_serf_rpc_destroy(&a->rpc);
    }
    free(run->agents);
    run->agents = NULL;
}

//  A dead agent fails the run; its log tells why
static int
s_reap(s_run_t *run)
{
    for (size_t i = 0; i < run->n; i++) {
        s_agent_t *a = &run->agents[i];
        int status;
        if (a->pid > 0 && waitpid(a->pid, &status, WNOHANG) == a->pid) {
            a->pid = 0;
            fprintf(stderr, "sosbench: serf agent %zu ended (status %d)\n", i, status);
            s_log_tail(run->opts->dir, i);
            return -1;
        }
    }
    return 0;
}

static bool
s_stopped(const s_run_t *run)
{
    return run->opts->stop && *run->opts->stop;
}

/*  The join phase: every agent is asked `members` every poll_ms (at most S_INFLIGHT_MAX
    requests out, as sosbench polls sosnode) until it lists all N alive. An agent whose RPC
    does not answer yet is connected to again at the next poll. Times are taken when the
    reply that shows the condition arrives. Returns 1 when all are there, 0 at the deadline,
    -1 on failure. */
static int
s_wait_join(s_run_t *run, uint64_t *last_ns, uint32_t *incomplete)
{
    const sos_serf_bench_opts_t *o = run->opts;
    uint64_t poll_ns = (uint64_t)o->poll_ms * S_NS_PER_MS;
    uint64_t start = s_now_ns();
    uint64_t deadline = start + (uint64_t)o->timeout_s * S_NS_PER_S;
    struct pollfd *fds = calloc(run->n, sizeof *fds);
    s_agent_t **which = calloc(run->n, sizeof *which);
    int result = -1;
    if (!fds || !which)
        goto done;
    size_t inflight = 0;
    for (size_t i = 0; i < run->n; i++) {
        run->agents[i].waiting = true;
        run->agents[i].due_ns = start;
    }
    *last_ns = 0;
    while (true) {
        uint64_t now = s_now_ns();
        size_t pending = 0, k = 0;
        uint64_t next_due = now + 50 * S_NS_PER_MS;
        for (size_t i = 0; i < run->n; i++) {
            s_agent_t *a = &run->agents[i];
            if (!a->waiting)
                continue;
            pending++;
            if (a->rpc && sos_serf_rpc_members_out(a->rpc) && now - a->sent_ns > 5 * S_NS_PER_S) {
                //  An agent that does not answer in 5 s: start over with a new connection
                sos_serf_rpc_destroy(&a->rpc);
                inflight--;
            }
            if (!a->rpc && a->due_ns <= now) {
                a->rpc = sos_serf_rpc_connect(a->rpc_port, 1000);
                if (!a->rpc)
                    a->due_ns = now + poll_ns;
                now = s_now_ns();
            }
            if (a->rpc && !sos_serf_rpc_members_out(a->rpc) && a->due_ns <= now &&
                inflight < S_INFLIGHT_MAX) {
                if (sos_serf_rpc_members_post(a->rpc) == 0) {
                    inflight++;
                    a->sent_ns = now;
                } else
                    sos_serf_rpc_destroy(&a->rpc);
                a->due_ns = now + poll_ns;
            }
            if (a->rpc && sos_serf_rpc_members_out(a->rpc)) {
                fds[k] = (struct pollfd){.fd = sos_serf_rpc_fd(a->rpc), .events = POLLIN};
                which[k++] = a;
            } else if (a->due_ns < next_due)
                next_due = a->due_ns;
        }
        if (!pending) {
            result = 1;
            break;
        }
        if (s_stopped(run) || s_reap(run))
            break;
        if (now > deadline) {
            *incomplete = (uint32_t)pending;
            //  What the late agents see, as sosbench says of late nodes
            for (size_t i = 0, shown = 0; i < run->n && shown < 8; i++) {
                const s_agent_t *a = &run->agents[i];
                if (!a->waiting)
                    continue;
                if (a->answered)
                    fprintf(stderr, "sosbench:   serf agent %zu: %u of %u members alive\n", i,
                            a->seen, a->total);
                else
                    fprintf(stderr, "sosbench:   serf agent %zu: no members reply\n", i);
                shown++;
            }
            result = 0;
            break;
        }
        int wait_ms = next_due > now ? (int)((next_due - now + S_NS_PER_MS - 1) / S_NS_PER_MS) : 1;
        if (poll(fds, k, wait_ms < 1 ? 1 : wait_ms) < 0 && errno != EINTR)
            break;
        for (size_t j = 0; j < k; j++) {
            if (!(fds[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            s_agent_t *a = which[j];
            sos_serf_msg_t msg;
            int rc;
            while ((rc = sos_serf_rpc_read(a->rpc, &msg)) == 1) {
                if (msg.kind != SOS_SERF_MSG_MEMBERS)
                    continue;
                uint64_t at = s_now_ns();
                inflight--;
                a->seen = msg.alive;
                a->total = msg.total;
                a->answered = true;
                if (msg.alive == run->n) {
                    a->waiting = false;
                    a->done_ns = at;
                    if (at > *last_ns)
                        *last_ns = at;
                }
            }
            if (rc < 0) {
                if (sos_serf_rpc_members_out(a->rpc))
                    inflight--;
                sos_serf_rpc_destroy(&a->rpc);
            }
        }
    }
done:
    free(fds);
    free(which);
    return result;
}

/*  One user event fired on agent `from`, delivered to every agent's `stream`: the time from
    the event call to the last delivery. Every agent's connection is already streaming. */
static int
s_time_event(s_run_t *run, size_t from, const char *name, double *seconds)
{
    const sos_serf_bench_opts_t *o = run->opts;
    struct pollfd *fds = calloc(run->n, sizeof *fds);
    if (!fds)
        return -1;
    for (size_t i = 0; i < run->n; i++) {
        run->agents[i].waiting = true;
        fds[i] = (struct pollfd){.fd = sos_serf_rpc_fd(run->agents[i].rpc), .events = POLLIN};
    }
    int result = -1;
    sos_serf_rpc_t *sender = sos_serf_rpc_connect(run->agents[from].rpc_port, S_CALL_MS);
    uint64_t t0 = s_now_ns(), last = t0;
    uint64_t deadline = t0 + (uint64_t)o->timeout_s * S_NS_PER_S;
    if (!sender || sos_serf_rpc_event(sender, name, S_CALL_MS)) {
        fprintf(stderr, "sosbench: serf event on agent %zu failed\n", from);
        goto done;
    }
    size_t pending = run->n;
    while (pending) {
        if (s_stopped(run) || s_reap(run))
            goto done;
        if (s_now_ns() > deadline) {
            fprintf(stderr, "sosbench: serf event %s: %zu of %zu agents without it after %d s\n",
                    name, pending, run->n, o->timeout_s);
            result = 0;
            goto done;
        }
        if (poll(fds, run->n, 50) < 0 && errno != EINTR)
            goto done;
        for (size_t i = 0; i < run->n; i++) {
            s_agent_t *a = &run->agents[i];
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            sos_serf_msg_t msg;
            int rc;
            while ((rc = sos_serf_rpc_read(a->rpc, &msg)) == 1)
                if (msg.kind == SOS_SERF_MSG_EVENT && a->waiting && strcmp(msg.name, name) == 0) {
                    a->waiting = false;
                    last = s_now_ns();
                    pending--;
                }
            if (rc < 0) {
                fprintf(stderr, "sosbench: serf agent %zu: the event stream broke\n", i);
                goto done;
            }
        }
    }
    *seconds = (double)(last - t0) / (double)S_NS_PER_S;
    result = 1;
done:
    sos_serf_rpc_destroy(&sender);
    free(fds);
    return result;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
s_median(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, s_cmp_double);
    return v[(n - 1) / 2];
}

static double
s_status_mib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    double kib = 0;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0) {
            kib = strtod(line + len, NULL);
            break;
        }
    fclose(f);
    return kib / 1024.0;
}

static bool
s_sleep(const s_run_t *run, int ms)
{
    uint64_t end = s_now_ns() + (uint64_t)ms * S_NS_PER_MS;
    while (!s_stopped(run) && s_now_ns() < end)
        usleep(20000);
    return !s_stopped(run);
}

int
sos_serf_bench_run(const sos_serf_bench_opts_t *o, sos_serf_bench_result_t *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->settings, sizeof r->settings,
             "serf agent -profile=lan: memberlist's LAN profile, gossip every 200 ms to 3 nodes, "
             "probe every 1 s (serf's agent sets neither interval nor fanout otherwise)");
    s_run_t run = {.opts = o, .n = (size_t)o->nodes};
    run.max_fd = sysconf(_SC_OPEN_MAX);
    if (run.max_fd < 0 || run.max_fd > 65536)
        run.max_fd = 65536;
    run.agents = calloc(run.n, sizeof *run.agents);
    int rc = -1;
    double *each = calloc(run.n > (size_t)o->events ? run.n : (size_t)o->events, sizeof *each);
    if (!run.agents || !each)
        goto done;
    int *ports = calloc(run.n * 2, sizeof *ports);
    if (!ports || s_free_ports(ports, run.n * 2)) {
        fprintf(stderr, "sosbench: cannot find %zu free ports for the serf agents\n", run.n * 2);
        free(ports);
        goto done;
    }
    for (size_t i = 0; i < run.n; i++) {
        run.agents[i].bind_port = ports[2 * i];
        run.agents[i].rpc_port = ports[2 * i + 1];
    }
    free(ports);
    //  The first agent, answering, then all others back to back, each told to join it
    fprintf(stderr, "sosbench: starting %zu serf agents\n", run.n);
    if (s_agent_start(&run, 0))
        goto done;
    uint64_t end = s_now_ns() + (uint64_t)o->timeout_s * S_NS_PER_S;
    while (!(run.agents[0].rpc = sos_serf_rpc_connect(run.agents[0].rpc_port, 1000))) {
        if (s_stopped(&run) || s_reap(&run) || s_now_ns() > end) {
            fprintf(stderr, "sosbench: the first serf agent does not answer\n");
            goto done;
        }
        usleep(20000);
    }
    sos_serf_rpc_destroy(&run.agents[0].rpc); /* the join phase connects like to any other */
    for (size_t i = 1; i < run.n; i++)
        if (s_agent_start(&run, i))
            goto done;
    uint64_t last_start = run.agents[run.n - 1].start_ns, last_ns;
    int joined = s_wait_join(&run, &last_ns, &r->join_incomplete);
    if (joined < 0)
        goto done;
    r->joined = joined == 1;
    if (r->joined) {
        r->join_s = (double)(last_ns - last_start) / (double)S_NS_PER_S;
        fprintf(stderr, "sosbench: serf join: %.3f s\n", r->join_s);
    } else
        fprintf(stderr, "sosbench: serf: %u of %zu agents not seeing all alive after %d s\n",
                r->join_incomplete, run.n, o->timeout_s);
    if (!s_sleep(&run, 2000))
        goto done;

    //  User events, after every agent streams them
    if (r->joined) {
        bool streaming = true;
        for (size_t i = 0; i < run.n && streaming; i++) {
            s_agent_t *a = &run.agents[i];
            if (!a->rpc)
                a->rpc = sos_serf_rpc_connect(a->rpc_port, S_CALL_MS);
            streaming = a->rpc && sos_serf_rpc_stream_user(a->rpc, S_CALL_MS) == 0;
        }
        if (!streaming) {
            fprintf(stderr, "sosbench: cannot stream serf's user events\n");
            goto done;
        }
        //  serf acknowledges `stream` before it registers the stream (a deferred call in its
        //  RPC handler): an event fired at once could miss the last agent's
        if (!s_sleep(&run, 500))
            goto done;
        size_t timed = 0;
        r->events_ok = true;
        for (int i = 0; i < o->events && r->events_ok; i++) {
            char name[32];
            snprintf(name, sizeof name, "sosbench-%d-%d", (int)getpid(), i);
            size_t from = (1 + (size_t)i * 7) % run.n;
            int got = s_time_event(&run, from, name, &each[timed]);
            if (got < 0)
                goto done;
            r->events_ok = got == 1;
            if (got == 1)
                fprintf(stderr, "sosbench: serf event %d (from agent %zu): %.3f s\n", i + 1, from,
                        each[timed++]);
            if (!s_sleep(&run, 500))
                goto done;
        }
        double max = 0;
        for (size_t i = 0; i < timed; i++)
            max = each[i] > max ? each[i] : max;
        r->event_max_s = max;
        r->event_median_s = s_median(each, timed);
    }

    //  Memory at rest
    if (!s_sleep(&run, o->idle_s * 1000) || s_reap(&run))
        goto done;
    double *rss = calloc(run.n, sizeof *rss);
    if (!rss)
        goto done;
    for (size_t i = 0; i < run.n; i++) {
        each[i] = s_status_mib(run.agents[i].pid, "RssAnon:");
        rss[i] = s_status_mib(run.agents[i].pid, "VmRSS:");
    }
    r->anon_mib_median = s_median(each, run.n);
    r->rss_mib_median = s_median(rss, run.n);
    free(rss);
    rc = 0;
done:
    s_run_destroy(&run);
    free(each);
    return rc;
}
