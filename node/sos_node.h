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

/*  Close the sockets and the store (NULL-safe; nulls *self_p). */
void sos_node_destroy(sos_node_t **self_p);

#endif
