/*  sos_serf.h: a client of HashiCorp serf's agent RPC (msgpack over TCP, `-rpc-addr`), and a
    side-by-side run of serf agents for sosbench: the same node count on loopback, measured
    the way sosbench measures sosnode.

    The RPC is a stream of msgpack objects. Every request is a header map {Command, Seq}
    followed by a body map when the command takes one; every reply is a header map {Seq,
    Error} followed by a body for the commands that return one (members, and each event a
    `stream` delivers). Everything the agent sends is parsed through sos_mp_parse after a
    bounded scan finds where each object ends: the agent is another program, and its bytes
    are checked like any input. */
#ifndef SOS_SERF_H
#define SOS_SERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  One RPC connection to one agent */
typedef struct sos_serf_rpc_t sos_serf_rpc_t;

/*  What sos_serf_rpc_read delivers */
typedef enum {
    SOS_SERF_MSG_MEMBERS, /* the reply to sos_serf_rpc_members_post: alive, total */
    SOS_SERF_MSG_EVENT,   /* a user event from the stream: name */
} sos_serf_msg_kind_t;

typedef struct {
    sos_serf_msg_kind_t kind;
    uint32_t alive; /* members whose Status is "alive" */
    uint32_t total; /* members listed */
    char name[64];  /* a user event's name, truncated */
} sos_serf_msg_t;

/*  Connect to the agent's RPC on 127.0.0.1:port and shake hands (protocol version 1), waiting
    at most timeout_ms. Returns a new connection (the caller destroys it), or NULL if the
    agent does not answer or refuses. */
sos_serf_rpc_t *sos_serf_rpc_connect(int port, int timeout_ms);
void sos_serf_rpc_destroy(sos_serf_rpc_t **self_p);

/*  The socket, to poll for POLLIN */
int sos_serf_rpc_fd(const sos_serf_rpc_t *self);

/*  Send `members`; its reply comes through sos_serf_rpc_read. One at a time: returns -1 if one
    is already out or the socket fails, else 0. */
int sos_serf_rpc_members_post(sos_serf_rpc_t *self);
/*  True while a members request is out */
bool sos_serf_rpc_members_out(const sos_serf_rpc_t *self);

/*  Subscribe to the agent's user events (`stream` with Type "user") and wait at most
    timeout_ms for the agent to accept. 0 on success, -1 otherwise. serf registers the
    stream just after it acknowledges it: an event fired in the next moment may not come. */
int sos_serf_rpc_stream_user(sos_serf_rpc_t *self, int timeout_ms);

/*  Fire a user event (`event`, Coalesce false) and wait at most timeout_ms for the agent's
    acknowledgement. 0 on success, -1 otherwise. */
int sos_serf_rpc_event(sos_serf_rpc_t *self, const char *name, int timeout_ms);

/*  Read what the socket holds without blocking and deliver the next complete message in
    *msg. Returns 1 with a message, 0 when no complete message is there yet, -1 if the
    connection is closed or sent something malformed or an error reply (the connection is
    then useless). Call again after 1: more messages may be buffered. */
int sos_serf_rpc_read(sos_serf_rpc_t *self, sos_serf_msg_t *msg);

/*  The side-by-side run */
typedef struct {
    const char *serf;   /* the serf binary */
    const char *dir;    /* an existing directory for the agents' logs */
    int nodes;          /* agents to start */
    int poll_ms;        /* interval between two members requests to one agent */
    int timeout_s;      /* give a phase up after this */
    int events;         /* user events timed, one after another */
    int idle_s;         /* seconds of rest before the memory is read */
    volatile int *stop; /* set (SIGINT, SIGTERM) to give up at once */
} sos_serf_bench_opts_t;

typedef struct {
    char settings[200];       /* the serf settings used, for the report */
    bool joined;              /* every agent saw all alive */
    double join_s;            /* from the last agent's start to the last agent seeing all */
    uint32_t join_incomplete; /* agents not there when the join phase ended */
    bool events_ok;           /* every event reached every agent */
    double event_median_s;    /* each event: from the `event` call to the last delivery */
    double event_max_s;
    double anon_mib_median; /* RssAnon per idle agent */
    double rss_mib_median;  /* VmRSS per idle agent */
} sos_serf_bench_result_t;

/*  Start opts->nodes serf agents on loopback (the first, then all others with -join to it),
    measure join, user-event spread and memory, and kill every agent (SIGKILL) before it
    returns, whatever the path. Returns 0 when it could measure (result->joined and
    result->events_ok say what held), -1 when it could not start or talk to the agents
    (after a message on stderr). */
int sos_serf_bench_run(const sos_serf_bench_opts_t *opts, sos_serf_bench_result_t *result);

/*  The path of `serf` on PATH into path (size bytes); false if there is none */
bool sos_serf_find(char *path, size_t size);

#endif
