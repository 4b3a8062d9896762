/*  sos_peer.h: a node that this node gossips with or forwards to, as an object with one
    owner: its DEALER (opened and closed on demand) and the reader that dispatches it. */
#ifndef SOS_PEER_H
#define SOS_PEER_H

#include "sos_node_int.h"

/*  A new peer for url, owned by gossip's table of peers (sos_gossip.c), without a
    connection. NULL without memory. */
sos_peer_t *sos_peer_new(sos_node_t *node, const char *url);

/*  Free the peer and close its DEALER. NULL-safe; nulls *self_p. The caller has taken it out
    of every table and ended its reader (sos_peer_detach), at least one reactor iteration
    before: zloop may hold the reader's argument until it rebuilds its poll set. */
void sos_peer_destroy(sos_peer_t **self_p);

/*  Open the peer's DEALER, connect it to the peer's url and have loop call reader for it,
    with the peer as argument (through its ZMQ_FD: see sos_peer_read). The DEALER is a CURVE
    client with the node's long-term key and the server key derived from the peer's id
    (unless the node runs the test-only NULL transport; a forward's target whose id is not
    known is keyed by fwd_id). SOS_OK (also when it is open already); SOS_ERR_INVALID when
    no id is known (or it is no valid key): without it there is no CURVE connection;
    SOS_ERR_IO when no socket can be made (czmq's socket limit or the file limit), the url
    does not connect, or the loop refuses the reader. Never asserts. With queue, frames
    sent before the connection is made wait for it (a LEAVE at stop); without, such a send
    fails at once (see sos_peer.c). */
sos_rc sos_peer_open(sos_peer_t *self, zloop_t *loop, zloop_reader_fn reader, bool queue);

/*  Read the peer's DEALER with its reader until libzmq says no input waits (see sos_peer.c,
    "Reading a DEALER"); past a bound, sets read_again and asks the node to read it from
    the next turn of the loop (sos_node_read_again). Does nothing for a peer closed,
    retired or detached. Returns the reader's -1 (stop the loop), else 0. */
int sos_peer_read(sos_peer_t *self, zloop_t *loop);

/*  Stop reading the peer's DEALER; the socket stays until sos_peer_close or destroy. */
void sos_peer_detach(sos_peer_t *self, zloop_t *loop);

/*  Stop reading and close the DEALER; the peer stays, closed. */
void sos_peer_close(sos_peer_t *self, zloop_t *loop);

/*  True if the DEALER is open (and read). */
bool sos_peer_is_open(const sos_peer_t *self);

#endif
