/*  sos_core_view.h: the bounded active view of the gossip core: the few peers a node keeps
    connections to (HyParView's active view), with no I/O and an injected random source. */
#ifndef SOS_CORE_VIEW_H
#define SOS_CORE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_core_pick.h"

/*  Why a bounded view

    A node that holds a connection to every worker of its directory holds N - 1 sockets and
    their buffers: 99 at 100 nodes, impossible at 10,000 (file limits, czmq's socket cap).
    HyParView (Leitao, Pereira, Rodrigues, 2007) keeps a small symmetric active view of
    persistent connections, sized from the fanout and log N, and lets the rest of the
    membership (here: the directory, which still lists every worker) be the passive view
    from which the active one is refilled. Gossip goes mostly to active peers; anything else
    (a probe of a suspect, a rare exchange outside the view) uses a short-lived connection
    that is closed when its exchange ends.

    A link is symmetric: when a node asks a peer to join its view, the peer accepts if it
    has room, or, when the asker has fewer than a floor of links (a joining node, or one
    that lost its links), makes room by evicting a random member of its own; otherwise it
    refuses and the asker tries another. That is HyParView's NEIGHBOR request with its two
    priorities: it keeps every node's degree between the floor and the cap, and new nodes
    cannot be locked out by full views. The caller opens and closes the connections that
    these decisions name; this module only decides.

    Peers are the caller's 64-bit handles (a node index in the simulator, a peer table slot
    in a node): the view never dereferences them. */

#define SOS_VIEW_MAX 32 /* the largest view a cap may ask for */

typedef struct {
    uint32_t cap; /* the most peers the view may hold, 1..SOS_VIEW_MAX */
    uint32_t n;   /* how many it holds */
    uint64_t peers[SOS_VIEW_MAX];
} sos_core_view_t;

typedef enum {
    SOS_VIEW_REFUSED = 0, /* full, and the asker had no priority: not added */
    SOS_VIEW_ADDED,       /* added into a free slot */
    SOS_VIEW_EVICTED,     /* added in place of a random member, named in *evicted */
    SOS_VIEW_PRESENT,     /* was a member already: nothing changed */
} sos_view_rc_t;

/*  The cap for a directory of n_nodes workers: fanout + ln(n_nodes), rounded, at least
    fanout + 1 and at most SOS_VIEW_MAX. fanout 0 counts as 1. */
uint32_t sos_core_view_cap(uint32_t fanout, uint64_t n_nodes);

/*  An empty view with the given cap (clamped to 1..SOS_VIEW_MAX). */
void sos_core_view_init(sos_core_view_t *v, uint32_t cap);

/*  True if peer is a member. */
bool sos_core_view_has(const sos_core_view_t *v, uint64_t peer);

/*  Ask to add peer. With room: SOS_VIEW_ADDED. Full and priority: a random member (drawn
    with rnd, see sos_core_pick.h) is replaced by peer and written to *evicted (the caller
    closes that link at both ends): SOS_VIEW_EVICTED. Full without priority:
    SOS_VIEW_REFUSED. A member already: SOS_VIEW_PRESENT. evicted may be NULL only if
    priority is false. */
sos_view_rc_t sos_core_view_add(sos_core_view_t *v, uint64_t peer, bool priority,
                                sos_random_fn *rnd, void *arg, uint64_t *evicted);

/*  Remove peer (its link closed or failed, or the peer removed from the directory). True if
    it was a member. The order of the others is kept, so that a run stays deterministic. */
bool sos_core_view_del(sos_core_view_t *v, uint64_t peer);

/*  Set a new cap (clamped as in init). If the view holds more than the new cap, random
    members are removed and written to evicted (room for SOS_VIEW_MAX); returns their
    number, 0 if none. */
size_t sos_core_view_resize(sos_core_view_t *v, uint32_t cap, sos_random_fn *rnd, void *arg,
                            uint64_t *evicted);

/*  How many links the view may still take: cap - n. */
uint32_t sos_core_view_room(const sos_core_view_t *v);

#endif
