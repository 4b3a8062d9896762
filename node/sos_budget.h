/*  sos_budget.h: the bytes of output the node holds for each connection, from the moment a
    frame is made until libzmq frees it, so that a peer that never reads pins a bounded
    number of bytes, and all peers together too. */
#ifndef SOS_BUDGET_H
#define SOS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  What one frame costs beyond its bytes: our header, libzmq's message content and pipe slot,
    and the allocator's own overhead, rounded up. It makes a flood of tiny frames cost as
    much as it pins. */
#define SOS_BUDGET_FRAME_OVERHEAD 256

typedef struct _sos_budget_t sos_budget_t;

/*  A budget of per_conn bytes for each connection and total bytes over all of them. NULL
    when out of memory. */
sos_budget_t *sos_budget_new(size_t per_conn, size_t total);

/*  NULL-safe; nulls *self_p. Frames still held by libzmq keep what they need alive and
    free it when libzmq frees them (their free function may run on libzmq's I/O thread after
    this returns). */
void sos_budget_destroy(sos_budget_t **self_p);

/*  A buffer of size bytes for a frame to the connection named by key (key_size bytes, at most
    255: a ROUTER routing id, or a name for a DEALER's own connection), charged with
    size + SOS_BUDGET_FRAME_OVERHEAD to that connection and to the total, until it is freed
    with sos_budget_free or, once given to sos_budget_send, until libzmq frees it.
    Returns NULL if the charge would pass either budget (*full_p set to true) or when out of
    memory (*full_p false). The caller owns the buffer. */
uint8_t *sos_budget_alloc(sos_budget_t *self, const void *key, size_t key_size, size_t size,
                          bool *full_p);

/*  Free a buffer from sos_budget_alloc that was never sent, and release its charge.
    NULL-safe; nulls *buf_p. */
void sos_budget_free(uint8_t **buf_p);

/*  Send a buffer from sos_budget_alloc (size bytes, at most what was allocated) on the zmq
    socket handle without copying it, with zmq_msg_send flags | ZMQ_DONTWAIT. Takes ownership
    of *buf_p and nulls it whatever happens: the charge is released when libzmq frees the
    frame (at once if the send fails). Returns 0, or the errno of the failed send (EAGAIN:
    the connection's pipe is full; EHOSTUNREACH: a ROUTER no longer knows the routing id). */
int sos_budget_send(void *handle, uint8_t **buf_p, size_t size, int flags);

/*  Bytes charged now to the connection named by key, and to all connections. */
size_t sos_budget_used(sos_budget_t *self, const void *key, size_t key_size);
size_t sos_budget_total(sos_budget_t *self);
/*  What the connection named by key may still be charged: the least of what its own budget
    and the total have left. A frame of size bytes fits if size + SOS_BUDGET_FRAME_OVERHEAD
    is at most that. */
size_t sos_budget_room(sos_budget_t *self, const void *key, size_t key_size);
/*  Connections known (those charged since the last sweep, or still charged). */
size_t sos_budget_connections(sos_budget_t *self);

/*  Forget the connections that hold nothing now; call it now and then. */
void sos_budget_sweep(sos_budget_t *self);

#endif
