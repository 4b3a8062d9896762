/*  sos_node.h: the sosnode daemon as one actor: a reactor (zloop) over the public ROUTER
    endpoint, one DEALER per peer, and timers; it owns the store and the identity. */
#ifndef SOS_NODE_H
#define SOS_NODE_H

#include "sos_config.h"
#include "sos_error.h"

typedef struct _sos_node_t sos_node_t;

/*  Create a node from cfg (copied): opens the store in cfg->data_dir, loads or makes the
    identity, re-signs this node's worker record, loads the directory and binds the listen
    endpoint. Returns NULL with *rc set (SOS_ERR_LOCKED, SOS_ERR_CORRUPT, SOS_ERR_IO, ...)
    and a log line saying why; why (why_size bytes, may be NULL) receives that line for the
    data directory and the endpoint, or "" for other failures. */
sos_node_t *sos_node_new(const sos_config_t *cfg, sos_rc *rc, char *why, size_t why_size);

/*  Run the reactor until SIGINT or SIGTERM. Then tell peers the node is leaving and flush
    what is kept in memory. Returns 0 on a clean stop. */
int sos_node_run(sos_node_t *self);

/*  A test hook for the stateful fuzzer (tests/fuzz/fuzz_node.c): run the node one step at a
    time instead of sos_node_run, so that the order of events, and so a run, follows from
    the caller alone. With an injected clock (sos_clock_set_implementation) the node's
    timers are the caller's steps. Never called by sosnode itself. */
typedef enum {
    SOS_STEP_INPUT,        /* one socket with input waiting: the public endpoint or a peer's */
    SOS_STEP_ROUND,        /* a gossip round */
    SOS_STEP_TICK,         /* exchange, forward and long-poll deadlines */
    SOS_STEP_HOUSEKEEPING, /* expiry, stats flush, output budget sweep, tombstone sweep */
} sos_node_step_t;

/*  SOS_STEP_INPUT waits up to timeout_ms (0: not at all) for one of the node's sockets to
    have input and handles it as the reactor would, in one pass; returns 1 if one was
    handled, 0 if none was ready, -1 on a polling error. The other steps run the reactor's
    timer handler at once (timeout_ms is ignored) and return 1. */
int sos_node_step(sos_node_t *self, sos_node_step_t step, int timeout_ms);

/*  Close the sockets and the store (NULL-safe; nulls *self_p). */
void sos_node_destroy(sos_node_t **self_p);

#endif
