/*  sos_gossip.c: peers, gossip rounds and exchanges, rumors, failure counting and removal.

    Gossip owns its state: the peer tables, the digest and its caches, the gaps, the view,
    probes, probation, our own record and its counter, in sos_gossip_t (sos_gossip_int.h,
    which no other module includes). The node owns it (sos_node_t.gossip: sos_gossip_new,
    sos_gossip_destroy) and lends gossip what is the reactor's: sockets, the loop, the pass's
    transaction and output queue, the encoding buffers and the counters. Other modules reach
    gossip's state only through the functions of sos_node_int.h's gossip section (the status
    figures, the peer table walked or searched, the digest marked dirty).

    This file is the adapter between the node's I/O (zloop timers, a DEALER per peer,
    envelopes sealed and opened with the node's key, the pass's store transaction) and the
    gossip core, whose rules do no I/O and take their times and random draws as arguments:
    the failure detector (sos_fd.h), the exchange's states (sos_core_exchange.h), the
    digest, gaps and batches (sos_core_digest.h), a round's picks (sos_core_pick.h), the
    triage of records and the verification budget (sos_core_check.h), the decisions of an
    exchange that the simulator shares (sos_core_sync.h: a DELTA's and a DELTA_ACK's
    records and wants, which records of a message are verified, what becomes of each:
    the endpoint policy, probation, an endpoint another worker holds, the merge rules of
    sos_merge.h; what a named suspect means), and the failure detector's rules that the
    simulator shares (sos_core_fd.h: whom a SYNC names, what a named suspect does, probe
    first or count, when to remove), and the answers of an exchange that the simulator
    shares (sos_core_answer.h: what a SYNC, a DIGEST and a DELTA are answered with, whether a
    SYNC_ACK or DIGEST_ACK is refused, and what follows it). Data flows one way: frame, decode,
   core, store transaction, replies after the commit. What other modules must hear of (a room lost
   to an earlier creation, a forwarded client's reply) goes to the node, which routes it.

    The directory is a set of signed records, each from one origin, and each origin numbers
    the records it signs with one counter (version, with prev the value before it). A node's
    digest holds, per origin, the version up to which it has everything that origin signed
    and that is still alive: normally the highest version it holds, or lower while it knows
    of a gap (a record whose prev it never saw). Two nodes compare digests Scuttlebutt-style,
    and send each other only the records above the other's version for each origin, in an
    exchange SYNC -> SYNC_ACK -> DELTA -> DELTA_ACK whose states and deadlines are the
    core's (the table is in sos_core_exchange.h).

    At rest the exchange is a SYNC and a SYNC_ACK of constant size, whatever the size of the
    directory. A record made here, or taken from a rumor, is pushed at once to fanout peers
    (RUMOR), who push on what was new to them.

    A missed exchange makes a peer a suspect, not dead. SYNC names the peers the sender has
    seen fail ("suspects", each at the version the suspicion is about); a receiver starts
    its own suspicion and counts the sender as a confirmation, and the suspect itself, named
    at its current version, refutes by re-signing its record (a newer version ends every
    suspicion of it). A round probes at most SOS_PROBES_PER_ROUND suspects beyond the fanout.
    A suspect is removed once its suspicion outlives a timeout that grows with log(n) and
    shrinks with confirmations, after failures here and confirmations reach max-failures
    (PROTOCOL.md, "Failures, removal, tombstones"). Deadlines come from per-peer RTT
    estimates; both stretch with the node's own lag (local health), and a lagging node
    starts no suspicion. A removed worker leaves a tombstone at its version, so stale copies
    relayed by others do not bring it back; a newer record from it, or the worker itself
    talking to us, does. A node that removes a worker for failing re-signs its own record,
    so that a partition heals without waiting for tombstones to expire. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sos_core_answer.h"
#include "sos_core_check.h"
#include "sos_core_fd.h"
#include "sos_core_pick.h"
#include "sos_core_sync.h"
#include "sos_endpoint.h"
#include "sos_gossip_int.h"
#include "sos_peer.h"

#define SOS_PROBES_PER_ROUND 2 /* exchanges with suspects per round, beyond the fanout */

/* ------------------------------------------------------------------ peers ----

    A peer is owned by gossip's table of peers (by url), and indexed by id once known.
    Handling one of its frames can make a worker record move the peer to a new url, remove
    the worker, or close the connection of another peer to open one: so no code that runs
    during a pass frees a peer. s_peer_retire takes a peer out of both tables and stops
    reading its socket; the object and its socket stay valid, and are freed by
    sos_gossip_reap at the start of the next tick, after the reactor has rebuilt its poll
    set. A pointer to a peer is therefore valid until the end of the pass that found it.

    The directory may list thousands of workers, but each open DEALER costs a socket (czmq
    counts those against one limit, and asserts past it), file descriptors, buffers, and a
    CURVE handshake at both ends to open. So at most max-connections DEALERs are open, the
    least recently used idle one closed to open another; and gossip keeps only a bounded
    view of them open ("Connections", below). A peer that is no worker (a forwarding
    target) is retired once idle.

   ------------------------------------------------------------ connections ----

    A node does not connect to every worker it lists. At 100 nodes that was 99 DEALERs per
    node, two CURVE handshakes per pair as the directory arrived (the join's main cost in
    CPU) and their buffers for good; at 10,000 it is impossible. It keeps DEALERs open to
    an active view of C = fanout + ln N peers (sos_core_view.h; --view-size sets C), refilled
    at each round from random listed workers that nobody here suspects. A round draws its
    fanout from the view, and rumors go to view members only. Everything else goes over a
    short-lived connection, opened when needed and closed when its use ends:
    - one exchange every SOS_VIEW_OUTSIDE_ONE_IN rounds (on average; SOS_REST_OUTSIDE_ONE_IN
      at rest, s_round_fanout) with a random listed worker outside the view, so that the
      directory stays in agreement beyond the view's links and the view mixes (the
      simulator's --active-view runs the same rule, without the rest);
    - exchanges with suspects (probes), and with genesis nodes not listed yet;
    - the PINGs of indirect probes that others ask of this node;
    - forwards of room requests to their owner, kept open SOS_PEER_IDLE_MS after the last.
    At most SOS_SHORT_MAX are open at once for gossip (forwards have their own bounds). At
    that limit a connection kept open only for a suspect is closed to make room, or the
    exchange waits for a later round (short_refused). A suspect's connection stays open
    between its probes, so that each round's probe of a dead node fails at once rather than
    after a new connection's timeout. A view member that fails two exchanges in a row leaves
    the view (and is probed like any suspect); the next round fills its place.

    A view also renews itself, one member a round at most, so that it stays a uniform sample
    of the directory: a member that joined when the directory listed less than half the
    workers it lists now is replaced (views filled during a join hold the genesis and the
    first nodes, which would otherwise stay in every view and answer most of the network's
    exchanges), once the directory has not grown for SOS_VIEW_SETTLE_ROUNDS rounds (while it
    grows, in a join, that rule would replace a connected member by one whose CURVE
    handshake has yet to happen every round, on every node at once), and one random member every
   SOS_VIEW_RENEW_ONE_IN rounds (on average) is replaced too, HyParView's shuffle without its
   messages. That costs one CURVE handshake per node every SOS_VIEW_RENEW_ONE_IN rounds at rest.

    Links are not symmetric and no message asks for them (HyParView's NEIGHBOR): each node
    chooses its own view, and the connections that others open to it are bounded by the
    gate's caps on the public endpoint. Failure detection does not rest on the view: a node
    that sees a peer fail names it in its SYNCs, and a node named a suspect probes it over a
    short-lived connection, in its view or not (sos_gossip_round). */

static int s_recv_dealer(zloop_t *loop, zsock_t *sock, void *arg);
static void s_unsuspect(sos_peer_t *peer);

#define SOS_PEER_IDLE_MS        60000 /* a forwarding target's DEALER is closed after this */
#define SOS_SHORT_MAX           6     /* short-lived gossip connections open at once */
#define SOS_VIEW_OUTSIDE_ONE_IN 4     /* a round exchanges outside the view one time in this */
#define SOS_REST_ROUNDS         5     /* rounds without news before the directory is at rest */
#define SOS_REST_OUTSIDE_ONE_IN 16    /* SOS_VIEW_OUTSIDE_ONE_IN at rest: a handshake each */
#define SOS_VIEW_RENEW_ONE_IN   16    /* a round replaces a random view member one time in this */
#define SOS_VIEW_SETTLE_ROUNDS  5     /* rounds without growth before the join's members go */

/*  A peer as a handle of the view (sos_core_view.h): the view never dereferences it, and a
    peer leaves the view before it is retired or closed. */
static uint64_t
s_handle(const sos_peer_t *peer)
{
    return (uint64_t)(uintptr_t)peer;
}

static bool
s_in_view(const sos_node_t *self, const sos_peer_t *peer)
{
    return sos_core_view_has(&self->gossip->view, s_handle(peer));
}

static void
s_peer_set_id(sos_node_t *self, sos_peer_t *peer, const uint8_t id[SOS_NODEID_BYTES])
{
    sos_gossip_t *g = self->gossip;
    if (peer->id_known && zhashx_lookup(g->peers_id, peer->hex) == peer)
        zhashx_delete(g->peers_id, peer->hex);
    memcpy(peer->id, id, SOS_NODEID_BYTES);
    sos_hex(peer->hex, id, SOS_NODEID_BYTES);
    peer->id_known = true;
    zhashx_update(g->peers_id, peer->hex, peer);
}

/*  The peer for url, made (closed) if absent. NULL for our own url or without memory. */
static sos_peer_t *
s_peer_get(sos_node_t *self, const char *url)
{
    sos_peer_t *peer = zhashx_lookup(self->gossip->peers, url);
    if (peer)
        return peer;
    if (streq(url, self->cfg.advertise))
        return NULL;
    peer = sos_peer_new(self, url);
    if (peer && zhashx_insert(self->gossip->peers, peer->url, peer) != 0)
        sos_peer_destroy(&peer);
    return peer;
}

/*  The peer's DEALER is closed or detached: one connection fewer, counted by how it was
    opened (short_opened, short_closed). */
static void
s_conn_gone(sos_node_t *self, sos_peer_t *peer)
{
    self->gossip->n_open--;
    if (peer->short_conn)
        self->stats.short_closed++;
    peer->short_conn = false;
}

/*  The peer leaves the view, if a member (its connection is the caller's to close). */
static void
s_view_out(sos_node_t *self, const sos_peer_t *peer)
{
    if (sos_core_view_del(&self->gossip->view, s_handle(peer)))
        self->stats.view_left++;
}

/*  Close the peer's DEALER, if open; a view member leaves the view. */
static void
s_peer_close(sos_node_t *self, sos_peer_t *peer)
{
    s_view_out(self, peer);
    if (!sos_peer_is_open(peer))
        return;
    sos_peer_close(peer, self->loop);
    s_conn_gone(self, peer);
}

/*  Take the peer out of the tables for good; freed by sos_gossip_reap. */
static void
s_peer_retire(sos_node_t *self, sos_peer_t *peer)
{
    sos_gossip_t *g = self->gossip;
    if (peer->retired)
        return;
    s_view_out(self, peer);
    if (sos_peer_is_open(peer)) {
        /*  Stop reading now; the socket itself is closed with the object, later. */
        sos_peer_detach(peer, self->loop);
        s_conn_gone(self, peer);
    }
    if (peer->id_known && zhashx_lookup(g->peers_id, peer->hex) == peer)
        zhashx_delete(g->peers_id, peer->hex);
    if (zhashx_lookup(g->peers, peer->url) == peer)
        zhashx_delete(g->peers, peer->url);
    peer->retired = true;
    peer->retired_tick = g->ticks;
    sos_exchange_failed(&peer->ex);
    if (!zlistx_add_end(g->retired, peer)) {
        /*  Without memory for the list entry, leak the peer rather than free it early. */
        sos_log_error("out of memory retiring peer %s", peer->url);
    }
}

void
sos_gossip_reap(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    void *cursor = zlistx_first(g->retired);
    while (cursor) {
        sos_peer_t *peer = cursor;
        /*  Retired during the tick count we are at: the reactor may not have rebuilt its
            poll set since, so its socket and reader argument must stay valid one more. */
        if (peer->retired_tick < g->ticks && !peer->removing) {
            zlistx_detach_cur(g->retired);
            sos_peer_destroy(&peer);
        }
        cursor = zlistx_next(g->retired);
    }
}

/*  Open the peer's DEALER if it is closed (view: for the active view; else it counts as
    short-lived). At the cap, close the least recently used idle peer if evict (one outside
    the view if there is one), else leave it closed. False if it stays closed. */
static bool
s_peer_open_as(sos_node_t *self, sos_peer_t *peer, bool evict, bool view, bool queue)
{
    sos_gossip_t *g = self->gossip;
    if (peer->dealer)
        return true;
    if (peer->retired)
        return false;
    if (g->n_open >= self->cfg.max_peer_connections) {
        if (!evict)
            return false;
        sos_peer_t *lru = NULL, *lru_view = NULL;
        for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers)) {
            if (!p->dealer || p == peer || p->ex.state != SOS_EX_IDLE ||
                sos_node_peer_busy(self, p->url))
                continue;
            sos_peer_t **best = s_in_view(self, p) ? &lru_view : &lru;
            if (!*best || p->last_used_mono < (*best)->last_used_mono)
                *best = p;
        }
        if (!lru)
            lru = lru_view;
        if (!lru) {
            self->stats.connections_capped++;
            sos_log_info("no connection to %s: %u connections, all busy", peer->url,
                         self->cfg.max_peer_connections);
            return false;
        }
        self->stats.connections_closed++;
        if (!lru->in_dir && !lru->is_genesis)
            s_peer_retire(self, lru);
        else
            s_peer_close(self, lru);
    }
    sos_rc rc = sos_peer_open(peer, self->loop, s_recv_dealer, queue);
    if (rc == SOS_ERR_INVALID) {
        sos_log_info("no connection to %s: its node id (the CURVE key) is not known", peer->url);
        return false;
    }
    if (rc != SOS_OK) {
        self->stats.sockets_refused++;
        if (self->stats.sockets_refused == 1)
            sos_log_warning("cannot open a connection to %s (socket or file limit, or a bad "
                            "url); further refusals are logged at info level",
                            peer->url);
        else
            sos_log_info("cannot open a connection to %s", peer->url);
        return false;
    }
    g->n_open++;
    peer->short_conn = !view;
    if (!view)
        self->stats.short_opened++;
    return true;
}

static bool
s_peer_open(sos_node_t *self, sos_peer_t *peer, bool evict, bool view)
{
    return s_peer_open_as(self, peer, evict, view, false);
}

/*  A forward waits on the peer's connection, or used it within SOS_PEER_IDLE_MS. */
static bool
s_forward_holds(sos_node_t *self, const sos_peer_t *peer, uint64_t now)
{
    return sos_node_peer_busy(self, peer->url) ||
           (peer->forward_mono && now - peer->forward_mono < SOS_PEER_IDLE_MS);
}

/*  A PING of ours for another node's probe waits on the peer's connection (as target). */
static bool
s_ping_holds(const sos_node_t *self, const sos_peer_t *peer)
{
    if (!peer->id_known)
        return false;
    for (int i = 0; i < SOS_FD_HELPS_MAX; i++)
        if (self->gossip->helps.slot[i].used &&
            memcmp(self->gossip->helps.slot[i].target, peer->id, SOS_NODEID_BYTES) == 0)
            return true;
    return false;
}

/*  The peer is suspected here (or a genesis node that failed): its connection is worth
    keeping between probes, as long as nothing else needs the room. */
static bool
s_suspect_holds(const sos_node_t *self, const sos_peer_t *peer)
{
    return (peer->in_dir || peer->is_genesis) &&
           (peer->fd.fail_count > 0 || peer->fd.suspect_mono ||
            (peer->id_known && sos_fd_probe_pending(&self->gossip->probes, peer->id)));
}

/*  True if a short-lived connection must stay open: an exchange, a forward or a PING
    waits on it. */
static bool
s_short_busy(sos_node_t *self, const sos_peer_t *peer, uint64_t now)
{
    return peer->ex.state != SOS_EX_IDLE || s_forward_holds(self, peer, now) ||
           s_ping_holds(self, peer);
}

/*  Short-lived gossip connections open now: open, outside the view, not held by a forward.
    *spare (may be NULL) gets one that could be closed to make room (kept only for a
    suspect, or for nothing), the least recently used. */
static uint32_t
s_short_count(sos_node_t *self, sos_peer_t **spare)
{
    uint64_t now = sos_mono_ms();
    uint32_t n = 0;
    if (spare)
        *spare = NULL;
    for (sos_peer_t *p = zhashx_first(self->gossip->peers); p;
         p = zhashx_next(self->gossip->peers)) {
        if (!p->dealer || s_in_view(self, p) || s_forward_holds(self, p, now))
            continue;
        n++;
        if (spare && p->ex.state == SOS_EX_IDLE && !s_ping_holds(self, p) &&
            (!*spare || p->last_used_mono < (*spare)->last_used_mono))
            *spare = p;
    }
    return n;
}

/*  Open the peer's DEALER as a short-lived connection for gossip, within SOS_SHORT_MAX
    (closing a spare one at the limit); evict as s_peer_open. False if it stays closed. */
static bool
s_short_open(sos_node_t *self, sos_peer_t *peer, bool evict)
{
    if (peer->dealer)
        return true;
    if (peer->retired)
        return false;
    sos_peer_t *spare = NULL;
    if (s_short_count(self, &spare) >= SOS_SHORT_MAX) {
        if (!spare) {
            self->stats.short_refused++;
            sos_log_info("no connection to %s now: %d short-lived connections busy", peer->url,
                         SOS_SHORT_MAX);
            return false;
        }
        self->stats.connections_closed++;
        s_peer_close(self, spare);
    }
    return s_peer_open(self, peer, evict, false);
}

/*  Close the peer's connection if it is short-lived and nothing holds it any more: its
    exchange, forward or PING is over, and it is no suspect (whose connection stays for its
    next probe). */
static void
s_short_release(sos_node_t *self, sos_peer_t *peer)
{
    if (!peer || peer->retired || !peer->dealer || s_in_view(self, peer) ||
        s_short_busy(self, peer, sos_mono_ms()) || s_suspect_holds(self, peer))
        return;
    self->stats.connections_closed++;
    s_peer_close(self, peer);
}

/*  The peer leaves the active view (why, for the log): its connection is closed, or stays
    as a short-lived one while something holds it. */
static void
s_view_leave(sos_node_t *self, sos_peer_t *peer, const char *why)
{
    if (!sos_core_view_del(&self->gossip->view, s_handle(peer)))
        return;
    self->stats.view_left++;
    sos_log_info("peer %s leaves the view: %s", peer->url, why);
    s_short_release(self, peer);
}

sos_peer_t *
sos_gossip_peer_for_url(sos_node_t *self, const char *url, const char *id_hex)
{
    sos_peer_t *peer = s_peer_get(self, url);
    if (!peer)
        return NULL;
    /*  A forward's target that is no worker we know: the id of the room record is the key
        it must prove (CURVE). Kept apart from the peer's id, which only the worker's own
        record sets: a room naming another's endpoint must not bind that endpoint. */
    uint8_t fwd[SOS_NODEID_BYTES];
    if (!peer->id_known && id_hex && sos_unhex(fwd, sizeof fwd, id_hex)) {
        if (peer->dealer && memcmp(peer->dealer_key, fwd, sizeof fwd) != 0)
            s_peer_close(self, peer); /* keyed for another owner */
        memcpy(peer->fwd_id, fwd, sizeof fwd);
        peer->fwd_id_set = true;
    }
    if (!s_peer_open(self, peer, true, false)) {
        if (!peer->in_dir && !peer->is_genesis && !peer->id_known)
            s_peer_retire(self, peer);
        return NULL;
    }
    peer->last_used_mono = peer->forward_mono = sos_mono_ms();
    return peer;
}

void
sos_gossip_peer_redial(sos_node_t *self, sos_peer_t *peer, uint64_t min_age_ms)
{
    if (!peer->dealer || peer->retired || peer->ex.state != SOS_EX_IDLE ||
        sos_mono_ms() - peer->created_mono < min_age_ms)
        return;
    /*  A view member stays one through the new connection; if none can be made, it leaves. */
    bool view = s_in_view(self, peer);
    sos_peer_close(peer, self->loop);
    s_conn_gone(self, peer);
    if (!s_peer_open(self, peer, false, view)) /* the slot just freed */
        s_peer_close(self, peer);
}

static void s_adopt_orphans(sos_node_t *self, const char *url);

/*  The peer for a worker record we hold: by id, re-made if its endpoint changed. */
static sos_peer_t *
s_peer_for_worker(sos_node_t *self, const sos_record_t *rec, const sos_worker_local_t *local)
{
    sos_gossip_t *g = self->gossip;
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, rec->origin, SOS_NODEID_BYTES);
    sos_peer_t *peer = zhashx_lookup(g->peers_id, hex);
    if (peer && !streq(peer->url, rec->url)) {
        if (peer->is_genesis) {
            /*  A genesis address stays; the worker moved elsewhere. */
            zhashx_delete(g->peers_id, peer->hex);
            peer->id_known = false;
            peer->in_dir = false;
        } else {
            s_peer_retire(self, peer);
            s_adopt_orphans(self, peer->url);
        }
        peer = NULL;
    }
    if (!peer) {
        if (!sos_endpoint_allowed(rec->url, g->allow_private, NULL))
            return NULL; /* refused on arrival (s_apply); a record stored before the policy */
        peer = s_peer_get(self, rec->url);
        if (!peer)
            return NULL;
        if (peer->id_known && memcmp(peer->id, rec->origin, SOS_NODEID_BYTES) != 0)
            return NULL; /* another worker answers at that endpoint */
        if (peer->pinned && memcmp(peer->id, rec->origin, SOS_NODEID_BYTES) != 0)
            return NULL;
        s_peer_set_id(self, peer, rec->origin);
        if (peer->dealer && memcmp(peer->dealer_key, peer->id, SOS_NODEID_BYTES) != 0)
            s_peer_close(self, peer); /* keyed for a forward's owner: another key now */
        if (local) {
            peer->fd.fail_count = local->fail_count;
            peer->last_ok = local->last_ok;
            peer->last_seen = local->last_seen;
        }
        /*  No connection yet: it opens when the view takes the peer in, or for a short-lived
            use ("Connections"). */
    }
    if (!peer->in_dir) {
        peer->in_dir = true;
        peer->probation_failed = false; /* listed anew: a new probation */
        if (peer->is_genesis)
            peer->stats_dirty = true; /* write is_genesis into the local stats */
    }
    return peer;
}

typedef struct {
    sos_node_t *node;
    const char *url;
} s_orphans_t;

static int
s_adopt_each(void *arg, const sos_record_t *rec, const sos_worker_local_t *local)
{
    s_orphans_t *o = arg;
    char hex[SOS_NODEID_HEX + 1];
    if (!streq(rec->url, o->url) || memcmp(rec->origin, o->node->id.pk, SOS_NODEID_BYTES) == 0)
        return 0;
    sos_hex(hex, rec->origin, SOS_NODEID_BYTES);
    if (!zhashx_lookup(o->node->gossip->peers_id, hex))
        s_peer_for_worker(o->node, rec, local);
    return 0;
}

/*  A worker whose record names an endpoint that another worker's peer held got no peer of
    its own (s_peer_for_worker refuses it): nobody here exchanges with it, so nobody would
    ever count its failures, e.g. a node that came back at the same address with a new
    identity. Once the endpoint is free, such workers get their peer. */
static void
s_adopt_orphans(sos_node_t *self, const char *url)
{
    sos_txn_t *txn = sos_node_txn(self);
    if (!txn)
        return;
    s_orphans_t o = {.node = self, .url = url};
    sos_dir_foreach_worker(txn, s_adopt_each, &o);
}

/*  Our store no longer lists the peer's worker (deleted in this pass): a genesis address
    stays as an address; another peer is retired, marked so that sos_gossip_pass_end puts
    it back if the deletion does not commit. */
static void
s_peer_unlist(sos_node_t *self, sos_peer_t *peer)
{
    if (peer->is_genesis) {
        if (!peer->pinned && zhashx_lookup(self->gossip->peers_id, peer->hex) == peer) {
            zhashx_delete(self->gossip->peers_id, peer->hex);
            peer->id_known = false;
        }
        peer->in_dir = false;
        return;
    }
    peer->removing = true;
    s_peer_retire(self, peer);
    s_adopt_orphans(self, peer->url);
}

/*  A deletion that did not commit: the peer comes back (closed; it opens when picked). */
static void
s_peer_restore(sos_node_t *self, sos_peer_t *peer)
{
    sos_gossip_t *g = self->gossip;
    sos_peer_t *other = zhashx_lookup(g->peers, peer->url);
    if (other)
        s_peer_retire(self, other);   /* adopted at the freed url in the same failed pass */
    sos_peer_close(peer, self->loop); /* its reader was ended when it was retired */
    peer->retired = false;
    peer->removing = false;
    if (zhashx_insert(g->peers, peer->url, peer) != 0) {
        sos_peer_destroy(&peer);
        return;
    }
    if (peer->id_known && !zhashx_lookup(g->peers_id, peer->hex))
        zhashx_insert(g->peers_id, peer->hex, peer);
}

static uint64_t s_connect_timeout(const sos_node_t *self, const sos_peer_t *peer);

void
sos_gossip_pass_end(sos_node_t *self, bool committed)
{
    sos_gossip_t *g = self->gossip;
    if (g->self_rec_pending_set) {
        if (committed)
            g->self_rec = g->self_rec_pending;
        else
            g->republish = true; /* the counter stays ahead: a version is never reused */
        g->self_rec_pending_set = false;
    }
    size_t n = 0;
    for (sos_peer_t *p = zlistx_first(g->retired); p; p = zlistx_next(g->retired))
        if (p->removing)
            n++;
    if (!n)
        return;
    if (committed) {
        for (sos_peer_t *p = zlistx_first(g->retired); p; p = zlistx_next(g->retired))
            p->removing = false;
        return;
    }
    sos_peer_t **back = calloc(n, sizeof *back);
    if (!back)
        return;
    n = 0;
    void *cursor = zlistx_first(g->retired);
    while (cursor) {
        sos_peer_t *p = cursor;
        if (p->removing) {
            back[n++] = p;
            zlistx_detach_cur(g->retired);
        }
        cursor = zlistx_next(g->retired);
    }
    /*  The tick tries it again only after two connect deadlines: meanwhile the peer's
        exchanges go on (each failure may try the removal again), rather than being
        abandoned to a removal that fails at every tick while the disk refuses. */
    uint64_t retry = sos_mono_ms() + 2 * s_connect_timeout(self, NULL);
    for (size_t i = 0; i < n; i++) {
        sos_log_notice("worker %.12s at %s stays: its removal did not commit", back[i]->hex,
                       back[i]->url);
        back[i]->remove_retry_mono = retry;
        s_peer_restore(self, back[i]);
    }
    free(back);
}

/* ----------------------------------------------------------------- digest ---- */

/*  The digest: the core's (sos_core_digest.h), over this node's gap table. */
static sos_digest_entry_t *
s_digest_build(sos_node_t *self, sos_txn_t *txn, uint32_t *n)
{
    return sos_digest_build(self->gossip->gaps, txn, n);
}

/*  The exchange's decisions (sos_core_sync.h) over this node's id and gap table. */
static sos_sync_ctx_t
s_sync_ctx(const sos_node_t *self)
{
    return (sos_sync_ctx_t){.self_id = self->id.pk,
                            .gaps = self->gossip->gaps,
                            .allow_private = self->gossip->allow_private};
}

/*  Hash of the digest (sos_digest_hash: BLAKE2b over the sorted entries), with the count
    beside it. It is compared only to skip work; a mismatch always falls back to the full
    digest. */
static void
s_digest_hash(sos_node_t *self, sos_txn_t *txn)
{
    sos_gossip_t *g = self->gossip;
    if (!g->digest_dirty)
        return;
    uint32_t n = 0;
    sos_digest_entry_t *entries = s_digest_build(self, txn, &n);
    if (!entries)
        return;
    sos_digest_entry_t *fit = realloc(entries, (n ? n : 1) * sizeof *entries);
    if (fit)
        entries = fit;
    sos_digest_hash(g->digest_hash, entries, n);
    g->digest_n = n;
    g->digest_dirty = false;
    free(g->digest_cache);
    g->digest_cache = entries; /* kept for SYNC_ACKs until the directory changes */
    g->sums_nb = 0;            /* the bucket sums were of the old one */
}

/*  The bucket sums of the cached digest for nb buckets (sos_digest_bucket_sums), kept for
    one bucket count until the directory changes: a SYNC that does not match costs one
    pass over the digest per change, not per SYNC. NULL if the digest could not be built
    or without memory. Borrowed: valid until the next call or the next change. */
static const uint8_t (*s_bucket_sums(sos_node_t *self, sos_txn_t *txn,
                                     uint32_t nb))[SOS_DIGEST_HASH_BYTES]
{
    sos_gossip_t *g = self->gossip;
    s_digest_hash(self, txn);
    if (g->digest_dirty || !sos_digest_nb_ok(nb))
        return NULL;
    if (g->sums_nb == nb)
        return (const uint8_t(*)[SOS_DIGEST_HASH_BYTES])g->sums_cache;
    uint8_t(*sums)[SOS_DIGEST_HASH_BYTES] = realloc(g->sums_cache, nb * sizeof *sums);
    if (!sums)
        return NULL;
    g->sums_cache = sums;
    sos_digest_bucket_sums(g->digest_cache, g->digest_n, nb, sums);
    g->sums_nb = nb;
    return (const uint8_t(*)[SOS_DIGEST_HASH_BYTES])sums;
}

/* --------------------------------------------------------------- records ---- */

static void
s_gap_set(sos_node_t *self, const uint8_t origin[SOS_NODEID_BYTES], uint64_t version)
{
    sos_rc rc = sos_gaps_set(self->gossip->gaps, origin, version, sos_mono_ms());
    if (rc == SOS_ERR_FULL) {
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, origin, SOS_NODEID_BYTES);
        self->stats.gaps_dropped++;
        if (self->stats.gaps_dropped == 1)
            sos_log_warning("gap table full (%d origins): a hole in %.12s is not tracked; "
                            "further ones are logged at info level",
                            SOS_GAPS_MAX, hex);
        else
            sos_log_info("gap table full: a hole in %.12s is not tracked", hex);
    }
    if (rc == SOS_OK)
        self->gossip->digest_dirty = true;
}

/*  Drop gaps past their time, and those of origins of which we hold nothing. */
static void
s_gaps_sweep(sos_node_t *self, sos_txn_t *txn)
{
    uint32_t n = sos_gaps_sweep(self->gossip->gaps, txn, sos_mono_ms());
    if (!n)
        return;
    sos_log_info("%u gaps dropped (expired, or their origins gone)", n);
    self->stats.gaps_dropped += n;
    self->gossip->digest_dirty = true;
}

static void
s_rumor_add(sos_node_t *self, const sos_record_t *rec)
{
    sos_pass_t *pass = &self->pass;
    if (pass->n_rumors >= SOS_BATCH_MAX)
        return; /* the rest travels with the next exchanges */
    memcpy(pass->rumor_wires[pass->n_rumors], rec->wire, rec->wire_len);
    pass->rumor_lens[pass->n_rumors] = rec->wire_len;
    pass->n_rumors++;
}

static void s_publish_self(sos_node_t *self, sos_txn_t *txn);

/*  Probation (sos_core_sync.c says why): a worker this node has never exchanged with
    successfully (last_ok == 0: no signed answer from that key at that url, ever) is on
    probation, and the core refuses new worker keys while as many are as the cap, which the
    outcomes of our first exchanges with such workers set (self->gossip->probation: s_success and
    s_failure_count push them). */
static bool
s_on_probation(const sos_peer_t *p)
{
    return p->in_dir && !p->is_genesis && !p->retired && p->last_ok == 0;
}

static uint32_t
s_probation_count(sos_node_t *self)
{
    uint32_t n = 0;
    for (sos_peer_t *p = zhashx_first(self->gossip->peers); p; p = zhashx_next(self->gossip->peers))
        if (s_on_probation(p))
            n++;
    return n;
}

/*  The peer table as the core reads it (sos_sync_peers_t). */
static bool
s_peers_known(void *arg, const uint8_t origin[SOS_NODEID_BYTES])
{
    sos_node_t *self = arg;
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, origin, SOS_NODEID_BYTES);
    sos_peer_t *peer = zhashx_lookup(self->gossip->peers_id, hex);
    return peer && (peer->in_dir || peer->is_genesis);
}

static uint32_t
s_peers_probation(void *arg)
{
    return s_probation_count(arg);
}

/*  Another worker answers at url: our last exchange with it, at that endpoint, succeeded. */
static bool
s_peers_answers_at(void *arg, const char *url, const uint8_t origin[SOS_NODEID_BYTES])
{
    sos_node_t *self = arg;
    sos_peer_t *peer = zhashx_lookup(self->gossip->peers, url);
    return peer && peer->id_known && memcmp(peer->id, origin, SOS_NODEID_BYTES) != 0 &&
           peer->fd.fail_count == 0 && peer->last_ok > 0;
}

/*  Count and log a record whose endpoint this node may not connect to. It is never stored,
    so never connected to, forwarded to, or passed on. */
static void
s_refuse_endpoint(sos_node_t *self, const sos_record_t *rec)
{
    const char *why = "refused";
    sos_endpoint_allowed(rec->url, self->gossip->allow_private, &why);
    char what[SOS_URL_MAX + 96];
    snprintf(what, sizeof what, "a %s record naming %.64s (%s)",
             rec->kind == SOS_REC_WORKER ? "worker" : "room", rec->url, why);
    sos_node_drop(self, SOS_DROP_BAD_ENDPOINT, what);
}

/*  A record the core refused for naming an endpoint taken (sos_core_sync_take): counted,
    logged, and the worker's peer unlisted if a tombstone was written now. */
static void
s_refused_at_endpoint(sos_node_t *self, const sos_record_t *rec, const sos_take_result_t *out)
{
    if (!out->removed) {
        self->stats.merges[SOS_MERGE_TOMBSTONED]++;
        return;
    }
    self->gossip->digest_dirty = true;
    self->pass.wrote = true;
    self->stats.workers_removed++;
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, rec->origin, SOS_NODEID_BYTES);
    sos_log_notice("removed worker %.12s at %s: %s", hex, rec->url, out->why);
    /*  The worker is no longer listed: neither is its peer, or we would go on exchanging
        with it and list its figures. */
    sos_peer_t *peer = zhashx_lookup(self->gossip->peers_id, hex);
    if (peer && peer->in_dir)
        s_peer_unlist(self, peer);
}

/*  A new worker key the core refused: probation is at its cap (sos_probation_cap). */
static void
s_refused_probation(sos_node_t *self, const sos_record_t *rec, uint32_t cap)
{
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, rec->origin, SOS_NODEID_BYTES);
    self->stats.merges[SOS_MERGE_CAP]++;
    self->stats.probation_refused++;
    if (self->stats.probation_refused == 1)
        sos_log_warning("refused worker %.12s: all %u probation slots are taken by workers "
                        "never seen answering (%u of our last %u on probation answered; further "
                        "refusals at info level)",
                        hex, cap, sos_probation_answered(&self->gossip->probation),
                        self->gossip->probation.n);
    else
        sos_log_info("refused worker %.12s: probation slots full (%u)", hex, cap);
}

/*  Take one verified record as the core decides (sos_core_sync_take: the endpoint policy,
    probation, the endpoint another worker holds, the merge rules) and act on the outcome. */
static void
s_apply(sos_node_t *self, sos_txn_t *txn, const sos_record_t *rec, sos_source_t src)
{
    sos_gossip_t *g = self->gossip;
    sos_merge_ctx_t mctx = {
        .self_id = self->id.pk,
        .now_ms = sos_now_ms(),
        .max_workers = self->cfg.max_workers,
        .max_rooms = self->cfg.max_rooms,
        .max_rooms_per_origin = self->cfg.max_rooms_per_origin,
        .max_rooms_unvouched = self->cfg.max_rooms_unvouched,
        .max_room_lifetime_ms = 30ULL * 86400 * 1000,
        .clock_skew_ms = SOS_REPLAY_WINDOW_MS,
    };
    sos_sync_peers_t peers = {.arg = self,
                              .known = s_peers_known,
                              .probation = s_peers_probation,
                              .answers_at = s_peers_answers_at};
    sos_sync_take_ctx_t tc = {.merge = &mctx,
                              .peers = &peers,
                              .our_url = self->cfg.advertise,
                              .tombstone_expires = mctx.now_ms + g->tombstone_ttl_ms,
                              .probation = &g->probation};
    sos_sync_ctx_t ctx = s_sync_ctx(self);
    sos_take_result_t *out = malloc(sizeof *out);
    if (!out)
        return;
    sos_rc rc = sos_core_sync_take(&ctx, &tc, txn, rec, src, out);
    if (rc) {
        sos_log_error("store: %s failed: %s",
                      out->take == SOS_TAKE_ENDPOINT_TAKEN ? "refusing a worker at a taken endpoint"
                                                           : "merge",
                      sos_strerror(rc));
        goto done;
    }
    switch (out->take) {
    case SOS_TAKE_BAD_ENDPOINT:
        s_refuse_endpoint(self, rec);
        goto done;
    case SOS_TAKE_PROBATION:
        s_refused_probation(self, rec, out->probation_cap);
        goto done;
    case SOS_TAKE_ENDPOINT_TAKEN:
        s_refused_at_endpoint(self, rec, out);
        goto done;
    case SOS_TAKE_MERGED:
        break;
    }
    sos_merge_result_t result = out->merge;
    self->stats.merges[result]++;
    if ((result == SOS_MERGE_CAP || result == SOS_MERGE_BAD_ROOM) &&
        sos_log_limit_line(&self->stats.merge_log[result], "refused a record"))
        sos_log_info("refused a record (%s)", sos_merge_result_name(result));
    if (result == SOS_MERGE_SELF && rec->kind == SOS_REC_WORKER && rec->version > g->my_version) {
        /*  A record of ours newer than our counter: the store was lost or copied. Move the
            counter past it so that our next record wins. */
        sos_log_warning("found our own record at version %llu, above our counter %llu",
                        (unsigned long long)rec->version, (unsigned long long)g->my_version);
        g->my_version = rec->version;
        s_publish_self(self, txn);
    }
    if (!sos_merge_taken(result))
        goto done;
    self->pass.wrote = true;
    g->digest_dirty = true;
    if (out->gap)
        s_gap_set(self, rec->origin, out->gap_version);
    if (rec->kind == SOS_REC_WORKER) {
        sos_worker_local_t local = {0};
        sos_dir_get_worker(txn, rec->origin, NULL, &local);
        s_peer_for_worker(self, rec, &local);
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, rec->origin, SOS_NODEID_BYTES);
        sos_peer_t *p = zhashx_lookup(g->peers_id, hex);
        /*  Signed after the suspicion began: the suspect is alive (it refuted). */
        if (p && !p->is_genesis && (p->fd.suspect_mono || p->fd.probe) &&
            rec->version > p->fd.suspect_version) {
            if (p->fd.suspect_mono)
                sos_log_info("suspicion of %.12s cancelled by its record %llu", hex,
                             (unsigned long long)rec->version);
            s_unsuspect(p);
        }
    }
    if (out->displaced_set && memcmp(out->displaced.origin, self->id.pk, SOS_NODEID_BYTES) == 0)
        zlistx_add_end(self->pass.lost_rooms, out->displaced.room_hash); /* see pass_end */
    /*  Push on what is new here, except what came by anti-entropy (the peer that sent it
        is busy spreading it already). A worker's own record, heard from it directly, is
        pushed too: that is how a new or restarted node becomes known in a few hops. */
    if (src != SOS_SRC_DELTA)
        s_rumor_add(self, rec);
done:
    free(out);
}

sos_rc
sos_gossip_publish(sos_node_t *self, sos_record_t *rec)
{
    sos_gossip_t *g = self->gossip;
    sos_txn_t *txn = sos_node_txn(self);
    if (!txn)
        return SOS_ERR_IO;
    rec->prev = g->my_version;
    rec->version = g->my_version + 1;
    sos_rc rc = sos_record_sign(rec, &self->id);
    if (rc)
        return rc;
    rc = sos_meta_put_u64(txn, "version", rec->version);
    if (rc)
        return rc;
    g->my_version = rec->version;
    s_apply(self, txn, rec, SOS_SRC_LOCAL);
    return SOS_OK;
}

/*  Our record is re-signed into self_rec_pending; SYNCs go on carrying self_rec until the
    pass commits (sos_gossip_pass_end), so that no peer holds a record of ours that our
    store lost. */
static void
s_publish_self(sos_node_t *self, sos_txn_t *txn)
{
    sos_record_t *rec = &self->gossip->self_rec_pending;
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_WORKER;
    snprintf(rec->url, sizeof rec->url, "%s", self->cfg.advertise);
    /*  The HTTP base URL that clients are given for this node (checked by sos_config). */
    snprintf(rec->http_url, sizeof rec->http_url, "%s", self->cfg.http_advertise);
    sos_rc rc = sos_gossip_publish(self, rec);
    if (rc)
        sos_log_error("cannot sign our own record: %s", sos_strerror(rc));
    else
        self->gossip->self_rec_pending_set = true;
}

/* ----------------------------------------------------------------- output ---- */

/*  Wrap the gossip body in self->buf2 in an envelope bound to receiver (NULL: the all-zero
    id), in self->buf. Signed on the NULL transport only: on CURVE the connection proves the
    sender to the receiver (protocol/sos_envelope.c, "Unsigned envelopes"). */
static bool
s_seal(sos_node_t *self, sos_msg_type_t type, const uint8_t *receiver)
{
    msgpack_sbuffer_clear(&self->buf);
    if (!self->cfg.transport_null)
        return sos_envelope_encode_unsigned(&self->buf, type, self->buf2.data, self->buf2.size,
                                            &self->id, receiver, sos_now_ms()) == SOS_OK;
    return sos_envelope_encode(&self->buf, type, self->buf2.data, self->buf2.size, &self->id,
                               receiver, sos_now_ms()) == SOS_OK;
}

/*  Encode a gossip body into self->buf2 and wrap it in a signed envelope in self->buf. */
static bool
s_envelope(sos_node_t *self, sos_msg_type_t type, const uint8_t *receiver, const sos_gmsg_t *msg,
           const uint8_t *const *wires, const size_t *lens, uint32_t n)
{
    msgpack_sbuffer_clear(&self->buf2);
    if (sos_gmsg_encode(&self->buf2, msg, wires, lens, n) != SOS_OK)
        return false;
    return s_seal(self, type, receiver);
}

/*  One sending budget per peer. What a peer's connection may hold unsent is its output budget
    (sos_budget.h: 4 MiB a connection, 64 MiB in all). Rumors and anti-entropy share it, and
    anti-entropy comes first: a RUMOR goes to a view member only if its connection keeps room
    after it for an exchange (a SYNC and a full DELTA, SOS_EXCHANGE_RESERVE); a member without
    that room is passed over (rumors_deferred), and anti-entropy brings it the records later.
    An exchange whose SYNC or DELTA does not fit waits for a later round (exchanges_deferred):
    it is no failure of the peer, whose only fault is our own backlog. So more load makes
    gossip slower, and never makes it stop: no peer becomes a suspect for it. */
#define SOS_EXCHANGE_RESERVE (2 * (size_t)SOS_FRAME_MAX)

/*  True if a frame of size bytes fits the peer's sending budget with reserve to spare (a
    closed connection: true, its send fails as not connected). */
static bool
s_send_fits(sos_node_t *self, const sos_peer_t *peer, size_t size, size_t reserve)
{
    zsock_t *dealer = peer->dealer;
    if (!dealer)
        return true;
    return sos_budget_room(self->budget, &dealer, sizeof dealer) >=
           size + SOS_BUDGET_FRAME_OVERHEAD + reserve;
}

/*  What the failure detector's rules (sos_core_fd.h) need to know of peer. */
static sos_core_fd_who_t
s_who(const sos_peer_t *peer)
{
    return (sos_core_fd_who_t){.listed = peer->in_dir && peer->id_known,
                               .genesis = peer->is_genesis};
}

/*  The suspects a SYNC names (sos_core_fd_names): the peers we have seen fail, each with
    the highest version we hold from it: the suspicion is about that record, and anything it
    signs later refutes it. Then the workers removed here in the last SOS_NAME_REMOVED_ROUNDS
    rounds, at the version removed, as SWIM spreads a member's death: with the view, a dead
    node is probed only by the nodes that are named it while others suspect it, and a node
    that was named it by nobody before they all removed it would list it until it happened
    to pick it outside its view (the simulator found such nodes at 40 nodes, and so did a
    run of 40 sosnodes: 32 s against 3 s at 200 ms). A node that holds a newer record of
    it, or the worker itself, alive and signing a newer record, ignores the name. */
static uint32_t
s_suspects(sos_node_t *self, sos_txn_t *txn, sos_gmsg_t *msg)
{
    sos_gossip_t *g = self->gossip;
    uint64_t now = sos_mono_ms();
    msg->n_suspects = 0;
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers)) {
        if (msg->n_suspects == SOS_SUSPECTS_MAX)
            break;
        sos_core_fd_who_t who = s_who(p);
        if (sos_core_fd_names(txn, p->id, &who, &p->fd, now, &msg->suspects[msg->n_suspects]))
            msg->n_suspects++;
    }
    msg->n_suspects =
        sos_core_fd_suspects_removed(&g->removed_named, now, msg->suspects, msg->n_suspects);
    return msg->n_suspects;
}

/*  The suspicion of peer is over: it answered, or signed a record after it began. */
static void
s_unsuspect(sos_peer_t *peer)
{
    sos_fd_clear(&peer->fd);
    peer->stats_dirty = true;
}

/*  The failure detector's tuning (sos_fd.h), from the configuration. */
static sos_fd_config_t
s_fd_cfg(const sos_node_t *self)
{
    return (sos_fd_config_t){.interval_ms = self->cfg.gossip_interval_ms,
                             .exchange_timeout_ms = self->gossip->exchange_timeout_ms,
                             .max_failures = self->cfg.max_failures,
                             .fanout = self->cfg.fanout};
}

/*  How far back a suspicion named with an age may start here (sos_fd_named): the time a
    suspicion takes to spread, as this node measures it. */
static uint64_t
s_spread_cap(sos_node_t *self)
{
    sos_fd_config_t cfg = s_fd_cfg(self);
    return sos_fd_spread_time(&self->gossip->fd, &cfg, zhashx_size(self->gossip->peers_id) + 1);
}

/*  A suspect is removed when its suspicion has outlived its timeout (sos_fd.h), this node
    has seen it fail itself, and its own failures and the confirmations together reach
    max-failures: so F failed exchanges, counted across up to K + 1 observers, at least one
    of them this node. A suspicion alone, from anyone, removes nobody. */
static bool
s_removable(const sos_node_t *self, const sos_peer_t *peer, uint64_t now)
{
    sos_fd_config_t cfg = s_fd_cfg(self);
    sos_core_fd_who_t who = s_who(peer);
    return sos_core_fd_removable(&self->gossip->fd, &cfg, &peer->fd, &who,
                                 zhashx_size(self->gossip->peers_id) + 1, now);
}

/*  How long a new connection to peer may take to come up before its exchange fails: the
    conservative deadline (peer NULL: always), shorter for a suspect (sos_fd_connect_timeout),
    stretched by the local health multiplier as every other deadline is. A socket is replaced
    only after the conservative one, so that a live suspect slow to accept keeps its
    handshake under way. A node whose own loop lags is slow to run its side of CURVE
    handshakes (and so are its peers, on a busy machine); without the stretch, a join on a
    loaded machine failed up to a quarter of its exchanges, most of them as "not connected",
    and each failure of a view member pushed it out of the view for a new member and a new
    handshake. */
static uint64_t
s_connect_timeout(const sos_node_t *self, const sos_peer_t *peer)
{
    sos_fd_config_t cfg = s_fd_cfg(self);
    return sos_fd_connect_timeout(&self->gossip->fd, &cfg, peer ? &peer->fd : NULL);
}

/*  The deadline of an exchange with peer: its RTO within a floor and the conservative
    default, stretched by the local health multiplier. */
static uint64_t
s_exchange_timeout(const sos_node_t *self, const sos_peer_t *peer)
{
    sos_fd_config_t cfg = s_fd_cfg(self);
    return sos_fd_exchange_timeout(&self->gossip->fd, &cfg, &peer->fd);
}

static void
s_success(sos_node_t *self, sos_peer_t *peer)
{
    self->stats.exchanges_ok++;
    if (peer->fd.fail_count)
        sos_log_info("peer %s answers again after %u failures", peer->url, peer->fd.fail_count);
    s_unsuspect(peer);
    if (peer->id_known)
        sos_fd_probe_end(&self->gossip->probes, peer->id); /* a late verdict must not count */
    peer->ex_fails = 0;
    peer->down_counted = false;
    peer->next_try_mono = 0;
    /*  Its first answer while on probation: a sample that probation workers answer. */
    sos_probation_outcome(&self->gossip->probation, s_on_probation(peer), true,
                          &peer->probation_failed);
    peer->last_ok = peer->last_seen = sos_now_ms();
    peer->stats_dirty = true;
}

static void
s_remove_worker(sos_node_t *self, sos_peer_t *peer, const char *why)
{
    sos_gossip_t *g = self->gossip;
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (!txn)
        return;
    uint64_t held = 0;
    bool wrote = false;
    sos_rc rc =
        sos_core_fd_remove(txn, peer->id, sos_now_ms() + g->tombstone_ttl_ms, &held, &wrote);
    if (rc) {
        sos_log_error("store: cannot remove worker %s: %s", peer->hex, sos_strerror(rc));
        return;
    }
    if (wrote) {
        g->digest_dirty = true;
        self->pass.wrote = true;
    }
    self->stats.workers_removed++;
    sos_log_notice("removed worker %.12s at %s: %s", peer->hex, peer->url, why);
    sos_core_fd_name_removed(&g->removed_named, peer->id, held, self->cfg.gossip_interval_ms,
                             peer->fd.suspect_mono, sos_mono_ms());
    /*  Its name goes out at the next tick (s_suspicion_push): the nodes that heard of the
        suspicion last wait for confirmations, and a remover confirms. */
    g->push_due = true;
    s_peer_unlist(self, peer);
}

/*  Why a suspect goes, for the log: its failures here, the confirmations, and how long its
    suspicion lasted against its timeout. */
static void
s_removal_why(sos_node_t *self, const sos_peer_t *peer, uint64_t now, char *buf, size_t size)
{
    sos_fd_config_t cfg = s_fd_cfg(self);
    uint64_t t = sos_fd_suspicion_timeout(&self->gossip->fd, &cfg, &peer->fd,
                                          zhashx_size(self->gossip->peers_id) + 1);
    snprintf(buf, size,
             "%u consecutive failures, %u confirmations, suspected %llu ms (timeout %llu ms)",
             peer->fd.fail_count, peer->fd.n_confirm,
             (unsigned long long)(now - peer->fd.suspect_mono), (unsigned long long)t);
}

static bool s_probe_start(sos_node_t *self, sos_peer_t *peer, const char *why);
static void s_suspected(sos_node_t *self, const sos_envelope_t *env, uint64_t version);
static void s_failure_count(sos_node_t *self, sos_peer_t *peer, const char *why, bool probed);

/*  An exchange with peer failed. blame: whether it counts toward the peer's suspicion and
    removal (probed first); a DEALER found still down again does not (s_failure_down). */
static void
s_failure(sos_node_t *self, sos_peer_t *peer, const char *why, bool blame)
{
    if (peer->retired)
        return; /* removed or moved earlier in this pass */
    self->stats.exchanges_failed++;
    sos_exchange_failed(&peer->ex);
    peer->stats_dirty = true;
    peer->ex_fails++;
    /*  Blamed and not yet a suspect: ask others to reach it first (SWIM's ping-req); the
        failure counts only when none does. */
    if (!blame)
        self->stats.down_again++;
    else if (!s_probe_start(self, peer, why))
        s_failure_count(self, peer, why, false);
    /*  Counted here whatever the probes say: a link that fails every exchange is no use
        to the view, even if others reach the peer. */
    if (peer->ex_fails >= 2 && !peer->retired)
        s_view_leave(self, peer, "two exchanges failed in a row");
    s_short_release(self, peer);
}

/*  peer's DEALER is not connected. The first time on a socket (since it was opened, or last
    answered) this is a failure as any other; again on the same socket it is not counted
    (down_again), only toward the view's two failures in a row. libzmq dials a DEALER in the
    background and retries by itself: a socket that has not come up says nothing new of the
    peer each round it is found still down, and on a busy machine (thirty nodes starting at
    once on two cores, each with its connection and handshake caps) sockets stay down for
    seconds while their peers are alive. Counted each round, two such findings and the
    confirmations of nodes in the same plight removed live workers within a second. A peer
    that is really dead still fails once per socket: sos_gossip_peer_redial replaces a socket
    that has not connected within two connect timeouts, and its failures and the others'
    confirmations remove it (PROTOCOL.md, "Bound for a dead node", says how soon). */
static void
s_failure_down(sos_node_t *self, sos_peer_t *peer)
{
    bool first = !peer->down_counted;
    peer->down_counted = true;
    s_failure(self, peer, "not connected", first);
}

/*  A failure of peer that no helper cleared: toward its suspicion and removal. probed: the
    verdict of an indirect probe, started while this node was healthy; it is not withheld if
    this node lags by the time it comes, since helpers failed to reach the peer too. */
static void
s_failure_count(sos_node_t *self, sos_peer_t *peer, const char *why, bool probed)
{
    sos_gossip_t *g = self->gossip;
    if (peer->retired)
        return;
    uint64_t held = 0;
    sos_core_fd_who_t who = s_who(peer);
    if (!peer->fd.suspect_mono && who.listed && !who.genesis) {
        sos_txn_t *txn = sos_node_txn_lazy(self);
        if (txn)
            sos_dir_held_max(txn, peer->id, &held);
    }
    sos_fd_config_t cfg = s_fd_cfg(self);
    sos_core_fd_fail_t out;
    uint64_t now = sos_mono_ms();
    sos_core_fd_failure(&g->fd, &cfg, &peer->fd, &who, probed, held, zhashx_size(g->peers_id) + 1,
                        now, &out);
    if (out.fd == SOS_FD_WITHHELD) {
        /*  Our own loop lags: the answer may well be waiting unread. Blame nobody. */
        self->stats.suspicions_withheld++;
        sos_log_info("exchange with %s failed (%s) while this node lags: not suspected", peer->url,
                     why);
        return;
    }
    /*  A counted failure of a worker on probation: a sample that one did not answer, once
        per worker and probation (sos_core_sync.c, "Probation"). */
    sos_probation_outcome(&g->probation, s_on_probation(peer), false, &peer->probation_failed);
    if (peer->fd.fail_count == 1 && !peer->is_genesis && peer->in_dir)
        self->stats.suspicions++;
    /*  Our first failure of a suspect, whether the suspicion began with it or with others
        naming the peer: from now on our SYNCs name it too, so push them (s_suspicion_push). */
    if (out.fd == SOS_FD_SUSPECTED || (peer->fd.suspect_mono && peer->fd.fail_count == 1))
        g->push_due = true;
    sos_log_info("exchange with %s failed (%s), %u in a row", peer->url, why, peer->fd.fail_count);
    if (peer->is_genesis && !peer->pinned)
        peer->id_heard = false; /* a new node may answer there now: ask whoever it is */
    if (out.retry_mono) {
        peer->next_try_mono = out.retry_mono; /* a genesis node, never removed */
    } else if (out.remove) {
        char why_removed[128];
        s_removal_why(self, peer, now, why_removed, sizeof why_removed);
        s_remove_worker(self, peer, why_removed);
        /*  What kept us from it (a partition, a lossy link) has likely made it, and the nodes
            on its side, remove us too, with tombstones at our version: and after the heal
            neither side would talk to the other until the tombstones expire, an hour on.
            So we re-sign our record at the next round, after this removal: a version above
            any tombstone of us made before it. Whoever of two nodes removed the other last
            has such a record; the other takes it, exchanges with its signer, and that
            SYNC (a direct sign of life) lifts the signer's tombstone of it. */
        g->republish = true;
    }
}

/* -------------------------------------------------------- indirect probes ----

    SWIM's ping-req (sos_fd.h has the tables). As requester: a peer not yet suspected that
    misses an exchange is not blamed at once; up to --probe-helpers live peers (listed,
    answering us, not suspected, connected) get a PROBE_REQ bound to each, under a random
    req_id. A PROBE_ACK is taken only from a helper asked, for its req_id, once. As helper: a
    PROBE_REQ is taken only from a listed worker, within its token bucket, for a target we
    list at an endpoint we may connect to, on a DEALER already open; the helper PINGs the
    target and answers when the PONG (signed by the target, bound to us) comes back or its
    deadline passes. Refusals are counted (probes_refused) and not answered: the requester's
    deadline covers them. */

#define SOS_PROBE_REQ_BURST 8 /* PROBE_REQs a peer may send us per interval */

static uint64_t
s_random_id(void)
{
    uint64_t v = 0;
    randombytes_buf(&v, sizeof v);
    return v ? v : 1;
}

/*  A probe body sealed for receiver in self->buf. */
static bool
s_probe_seal(sos_node_t *self, sos_msg_type_t type, const uint8_t *receiver, uint64_t req_id,
             const uint8_t *target, bool reached)
{
    sos_probe_msg_t msg = {.req_id = req_id, .reached = reached};
    memcpy(msg.target, target, SOS_NODEID_BYTES);
    msgpack_sbuffer_clear(&self->buf2);
    if (sos_probe_encode(&self->buf2, &msg) != SOS_OK)
        return false;
    return s_seal(self, type, receiver);
}

/*  True if peer may help probe another: it answers us and nobody here suspects it. */
static bool
s_probe_helper_ok(const sos_peer_t *p, const sos_peer_t *target)
{
    return p != target && !p->retired && p->in_dir && p->id_known && p->dealer && p->last_ok != 0 &&
           p->fd.fail_count == 0 && !p->fd.suspect_mono;
}

/*  peer missed an exchange: ask helpers to reach it. True if the failure waits for their
    verdict (a probe was started, or one of it is under way); false if it counts now: a
    suspect already, probes off, this node lagging (the failure is withheld anyway), no
    helper, or every probe slot taken. */
static bool
s_probe_start(sos_node_t *self, sos_peer_t *peer, const char *why)
{
    sos_gossip_t *g = self->gossip;
    /*  A peer named a suspect by others is one here too (its suspicion began when it was
        named): its failures count at once, as PROTOCOL.md says. With the view, most nodes
        reach a dead node only over a new short-lived connection, and so would its helpers,
        each waiting out its whole deadline before answering. */
    sos_core_fd_who_t who = s_who(peer);
    if (!sos_core_fd_probe_first(&g->fd, &peer->fd, &who, self->cfg.probe_helpers))
        return false;
    if (sos_fd_probe_pending(&g->probes, peer->id))
        return true; /* one verdict for the failures until it comes */
    size_t n = zhashx_size(g->peers), n_cand = 0;
    sos_peer_t **cand = calloc(n ? n : 1, sizeof *cand);
    if (!cand)
        return false;
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers))
        if (n_cand < n && s_probe_helper_ok(p, peer))
            cand[n_cand++] = p;
    uint64_t now = sos_mono_ms();
    /*  The probe lasts twice the longest exchange deadline (RTO-based, sos_fd.h) of the
        target and of the helpers asked: a helper's PING waits its own deadline for the
        target, and its answer one round trip to us. So it adds at most one exchange deadline
        of its own to the time a failure takes to count, not a fixed multiple of the
        interval. */
    uint64_t longest = s_exchange_timeout(self, peer);
    sos_fd_probe_t *probe = n_cand ? sos_fd_probe_begin(&g->probes, peer->id, now) : NULL;
    uint32_t k = self->cfg.probe_helpers;
    for (size_t i = 0; probe && i < n_cand && probe->n_helpers < k; i++) {
        size_t j = i + sos_core_uniform(NULL, NULL, (uint32_t)(n_cand - i));
        sos_peer_t *h = cand[j];
        cand[j] = cand[i];
        cand[i] = h;
        uint64_t req_id = s_random_id();
        if (!s_probe_seal(self, SOS_MSG_PROBE_REQ, h->id, req_id, peer->id, false) ||
            !sos_node_send_now(self, h->dealer, self->buf.data, self->buf.size))
            continue;
        h->last_used_mono = now;
        sos_fd_probe_add(probe, h->id, req_id);
        self->stats.probes_sent++;
        uint64_t d = s_exchange_timeout(self, h);
        longest = d > longest ? d : longest;
    }
    free(cand);
    if (!probe)
        return false;
    probe->deadline_mono = now + 2 * longest;
    if (probe->n_helpers == 0) {
        sos_fd_probe_end(&g->probes, peer->id);
        return false;
    }
    sos_log_info("exchange with %s failed (%s): asked %u peers to reach it", peer->url, why,
                 probe->n_helpers);
    return true;
}

/*  The probe of target is over: a helper reached it, or none did. */
static void
s_probe_verdict(sos_node_t *self, const uint8_t target[SOS_NODEID_BYTES], bool reached)
{
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, target, SOS_NODEID_BYTES);
    sos_peer_t *peer = zhashx_lookup(self->gossip->peers_id, hex);
    if (!peer || peer->retired)
        return;
    if (!reached) {
        s_failure_count(self, peer, "no helper reached it", true);
        return;
    }
    self->stats.probe_saves++;
    sos_log_notice("peer %.12s at %s missed an exchange, but another peer reached it: not "
                   "suspected",
                   hex, peer->url);
    s_unsuspect(peer);
    /*  Others reach it and we did not: the slow one may be us (sos_fd_doubt). */
    sos_fd_doubt(&self->gossip->fd, sos_mono_ms());
}

/*  Answer the requester of help slot i, and free the slot; a short-lived connection to
    the target closes unless something else holds it. */
static void
s_help_answer(sos_node_t *self, int i, bool reached)
{
    sos_gossip_t *g = self->gossip;
    const sos_fd_help_t *h = &g->helps.slot[i];
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, h->target, SOS_NODEID_BYTES);
    if (g->help_routing[i] &&
        s_probe_seal(self, SOS_MSG_PROBE_ACK, h->requester, h->req_id, h->target, reached))
        sos_node_reply_now(self, g->help_routing[i], self->buf.data, self->buf.size);
    zframe_destroy(&g->help_routing[i]);
    sos_fd_help_end(&g->helps, i);
    g->help_unsent[i] = false;
    s_short_release(self, zhashx_lookup(g->peers_id, hex));
}

/*  Send the PING of help slot i to target. A connection just opened cannot send before it
    has connected: the PING then waits for a tick (s_probes_tick), until the slot's
    deadline. */
static void
s_help_ping(sos_node_t *self, int i, sos_peer_t *target)
{
    sos_gossip_t *g = self->gossip;
    const sos_fd_help_t *h = &g->helps.slot[i];
    if (!target->dealer || target->retired ||
        !s_probe_seal(self, SOS_MSG_PING, target->id, h->ping_id, target->id, false)) {
        s_help_answer(self, i, false);
        return;
    }
    uint64_t now = sos_mono_ms();
    if (sos_node_send_now(self, target->dealer, self->buf.data, self->buf.size)) {
        g->help_unsent[i] = false;
        target->last_used_mono = now;
    } else if (now - target->created_mono < g->exchange_timeout_ms)
        g->help_unsent[i] = true; /* still connecting */
    else
        s_help_answer(self, i, false);
}

/*  A PROBE_REQ: reach msg->target for env->sender (from, its peer, or NULL). */
static void
s_on_probe_req(sos_node_t *self, zframe_t **routing_p, const sos_envelope_t *env, sos_peer_t *from,
               const sos_probe_msg_t *msg)
{
    sos_gossip_t *g = self->gossip;
    uint64_t now = sos_mono_ms();
    double burst = SOS_PROBE_REQ_BURST;
    double rate = burst * 1000.0 / (double)self->cfg.gossip_interval_ms;
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, msg->target, SOS_NODEID_BYTES);
    sos_peer_t *target = zhashx_lookup(g->peers_id, hex);
    const char *why = NULL;
    if (!from || from->retired || !from->in_dir)
        why = "its sender is no worker we list";
    else if (!sos_core_tokens_take_burst(&from->probe_tokens, &from->probe_mono, rate, burst, 1,
                                         now))
        why = "over the sender's rate";
    else if (!target || target->retired || !target->in_dir || !target->id_known || target == from ||
             memcmp(msg->target, self->id.pk, SOS_NODEID_BYTES) == 0)
        why = "its target is no other worker we list";
    else if (!sos_endpoint_allowed(target->url, g->allow_private, NULL))
        why = "its target's endpoint is one we may not connect to";
    int slot = -1;
    uint64_t ping_id = s_random_id();
    if (!why) {
        /*  Our exchange deadline for the target (its RTO), or without a round trip of it a
            suspect's connect deadline and the RTO floor (sos_fd_reach_timeout): the
            requester waits twice the longest of its own deadlines for the target and for
            us (s_probe_start), and a verdict comes once every helper has answered. */
        sos_fd_config_t cfg = s_fd_cfg(self);
        slot = sos_fd_help_begin(&g->helps, env->sender, msg->req_id, msg->target, ping_id,
                                 now + sos_fd_reach_timeout(&g->fd, &cfg, &target->fd));
        if (slot < 0)
            why = "every probe slot is taken, or it repeats one under way";
    }
    if (why) {
        self->stats.probes_refused++;
        char from_hex[SOS_NODEID_HEX + 1];
        sos_hex(from_hex, env->sender, SOS_NODEID_BYTES);
        sos_log_info("probe request from %.12s refused: %s", from_hex, why);
        return;
    }
    self->stats.probes_helped++;
    g->help_routing[slot] = zframe_dup(*routing_p);
    g->help_unsent[slot] = false;
    /*  On the connection we hold to the target, or on a short-lived one opened for the PING
        within SOS_SHORT_MAX: never by evicting another peer, which a request must not make
        us do. */
    if (!target->dealer && !s_short_open(self, target, false)) {
        s_help_answer(self, slot, false);
        return;
    }
    s_help_ping(self, slot, target);
}

/*  A PROBE_REQ, PING, PROBE_ACK or PONG on the ROUTER: the first two are requests. */
static void
s_on_probe_request(sos_node_t *self, zframe_t **routing_p, const sos_envelope_t *env)
{
    sos_probe_msg_t msg;
    if (sos_probe_decode(&msg, env->body, env->body_len) != SOS_OK) {
        sos_node_drop(self, SOS_DROP_MALFORMED, "probe body rejected");
        return;
    }
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, env->sender, SOS_NODEID_BYTES);
    sos_peer_t *from = zhashx_lookup(self->gossip->peers_id, hex);
    if (env->type == SOS_MSG_PROBE_REQ)
        s_on_probe_req(self, routing_p, env, from, &msg);
    else if (env->type != SOS_MSG_PING)
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "a reply sent as a request");
    else if (memcmp(msg.target, self->id.pk, SOS_NODEID_BYTES) != 0)
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "a PING for another node");
    else if (s_probe_seal(self, SOS_MSG_PONG, env->sender, msg.req_id, self->id.pk, true))
        sos_node_queue(self, self->router, routing_p, self->buf.data, self->buf.size, 0, false);
}

/*  A PONG or PROBE_ACK on our DEALER to peer, whose id signed it. */
static void
s_on_probe_reply(sos_node_t *self, const sos_envelope_t *env)
{
    sos_probe_msg_t msg;
    if (sos_probe_decode(&msg, env->body, env->body_len) != SOS_OK) {
        sos_node_drop(self, SOS_DROP_MALFORMED, "probe body rejected");
        return;
    }
    if (env->type == SOS_MSG_PONG) {
        int slot = sos_fd_help_pong(&self->gossip->helps, env->sender, msg.req_id);
        if (slot < 0)
            sos_node_drop(self, SOS_DROP_UNEXPECTED, "a PONG to no PING of ours");
        else
            s_help_answer(self, slot, true);
        return;
    }
    if (env->type != SOS_MSG_PROBE_ACK) {
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "a request sent as a reply");
        return;
    }
    uint8_t target[SOS_NODEID_BYTES];
    sos_fd_ack_t ack = sos_fd_probe_ack(&self->gossip->probes, env->sender, msg.req_id, msg.target,
                                        msg.reached, target);
    if (ack == SOS_FD_ACK_UNKNOWN) {
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "a probe answer to no probe we asked for");
        return;
    }
    self->stats.probes_answered++;
    if (ack != SOS_FD_ACK_WAIT)
        s_probe_verdict(self, target, ack == SOS_FD_ACK_REACHED);
}

/*  Probes whose deadline passed: as requester the failure counts; as helper, answer no. */
static void
s_probes_tick(sos_node_t *self, uint64_t now)
{
    sos_gossip_t *g = self->gossip;
    uint8_t target[SOS_NODEID_BYTES];
    for (int n = 0; n < SOS_FD_PROBES_MAX && sos_fd_probe_expired(&g->probes, now, target); n++)
        s_probe_verdict(self, target, false);
    for (int n = 0; n < SOS_FD_HELPS_MAX; n++) {
        int i = sos_fd_help_expired(&g->helps, now);
        if (i < 0)
            break;
        s_help_answer(self, i, false);
    }
    /*  PINGs waiting for their short-lived connection to come up. */
    for (int i = 0; i < SOS_FD_HELPS_MAX; i++) {
        if (!g->helps.slot[i].used || !g->help_unsent[i])
            continue;
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, g->helps.slot[i].target, SOS_NODEID_BYTES);
        sos_peer_t *peer = zhashx_lookup(g->peers_id, hex);
        if (peer)
            s_help_ping(self, i, peer);
        else
            s_help_answer(self, i, false);
    }
}

/*  The exchange with peer found no room in its sending budget: it waits for a later round,
    and is no failure. */
static void
s_exchange_defer(sos_node_t *self, sos_peer_t *peer, const char *what)
{
    self->stats.exchanges_deferred++;
    sos_exchange_failed(&peer->ex); /* idle, no failure counted */
    sos_log_info("exchange with %s put off: no room for its %s in the sending budget", peer->url,
                 what);
    s_short_release(self, peer);
}

/*  Send the frame in self->buf, a step of an exchange under way (a DELTA, a DIGEST) on
    peer's connection: put off when the connection's budget has no room for it, the peer's
    failure when it is not connected. True if it went. */
static bool
s_send_step(sos_node_t *self, sos_peer_t *peer, const char *what)
{
    if (!s_send_fits(self, peer, self->buf.size, 0)) {
        s_exchange_defer(self, peer, what);
        return false;
    }
    if (!sos_node_send_now(self, peer->dealer, self->buf.data, self->buf.size)) {
        s_failure_down(self, peer);
        return false;
    }
    return true;
}

static void
s_exchange_start(sos_node_t *self, sos_peer_t *peer)
{
    sos_gossip_t *g = self->gossip;
    if (peer->retired)
        return;
    sos_exchange_do_t next = sos_exchange_pick(&peer->ex, peer->dealer != NULL);
    if (next == SOS_EX_DO_OPEN) {
        /*  Outside the view: open a short-lived connection, and SYNC once it has connected
            (a send on an unconnected DEALER fails at once). Without a free slot, try
            another round. */
        if (s_short_open(self, peer, true))
            sos_exchange_connecting(&peer->ex, peer->created_mono, s_connect_timeout(self, peer));
        return;
    }
    if (next != SOS_EX_DO_SYNC)
        return;
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (!txn)
        return;
    s_digest_hash(self, txn);
    sos_gmsg_t msg = {0};
    msg.req_id = ++g->next_req_id;
    memcpy(msg.hash, g->digest_hash, sizeof msg.hash);
    msg.n_origins = g->digest_n;
    msg.has_self = true;
    msg.self = g->self_rec;
    s_suspects(self, txn, &msg);
    /*  Bound to the peer's id; to nobody in particular while an unpinned genesis address has
        not answered under the id we have for it (that id may come from a record anyone
        could sign: see s_on_reply), and then the SYNC may do no more than be answered. */
    bool bound = peer->id_known && (!peer->is_genesis || peer->pinned || peer->id_heard);
    if (!bound)
        msg.n_suspects = 0;
    if (!s_envelope(self, SOS_MSG_SYNC, bound ? peer->id : NULL, &msg, NULL, NULL, 0))
        return;
    if (!s_send_fits(self, peer, self->buf.size, 0)) {
        s_exchange_defer(self, peer, "SYNC");
        return;
    }
    peer->last_used_mono = sos_mono_ms();
    if (!sos_node_send_now(self, peer->dealer, self->buf.data, self->buf.size)) {
        /*  Not connected. A socket younger than one timeout may still be connecting: the
            tick tries again until then. */
        if (sos_exchange_not_sent(&peer->ex, peer->created_mono, s_connect_timeout(self, peer),
                                  sos_mono_ms()) == SOS_EX_DO_FAIL) {
            s_failure_down(self, peer);
            /*  libzmq never dials again after the peer refused the handshake (its
                connection or handshake caps): a socket that has not connected within two
                timeouts is replaced by a new one, which the next round uses. Not within
                one: a new socket's first SYNC waits a whole timeout before it counts as
                failed (it may still be connecting), while an older one's fails at once, so
                that a dead suspect probed over its short-lived connection fails each round
                for a while rather than once every timeout. A suspect's socket is replaced
                after one timeout: its suspicion is under way, others have named it or it
                failed here already, and each of its sockets counts once, so that a dead
                node fails here about once per timeout until its suspicion ends. */
            uint64_t age = peer->fd.suspect_mono ? 1 : 2;
            sos_gossip_peer_redial(self, peer, age * s_connect_timeout(self, NULL));
        }
        return;
    }
    sos_exchange_sync_sent(&peer->ex, msg.req_id, sos_mono_ms(), s_exchange_timeout(self, peer));
    self->stats.exchanges_started++;
}

static bool s_suspect(const sos_peer_t *p);

/*  Peers newly named suspects are probed at the next tick, up to SOS_PROBES_PER_ROUND, not
    at the next round: the naming node saw it fail, and this node's own failure of it (over
    a connection that counts as down after a few round trips, sos_fd_connect_timeout) is
    what its removal here, and its naming onward, wait for. Half a round sooner, on average,
    per hop of the suspicion's spread. The rest wait for the round's probes. */
static void
s_probe_soon(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    if (!g->probe_due)
        return;
    g->probe_due = false;
    uint32_t started = 0;
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers)) {
        if (!p->probe_soon)
            continue;
        p->probe_soon = false;
        if (started < SOS_PROBES_PER_ROUND && !p->retired && p->in_dir &&
            p->ex.state == SOS_EX_IDLE && p->fd.suspect_mono) {
            started++;
            self->stats.probes++;
            s_exchange_start(self, p);
        }
    }
}

/*  A suspicion began here with a failure of our own: start exchanges with up to fanout
    members of the view now, not at the next round, since every SYNC names the suspects we
    saw fail. Their suspicions then start a round trip later instead of a round, and their
    clocks with them. (A SYNC names only peers its sender saw fail, so that confirmations are
    distinct observers: a node that was only named a suspect has nothing to push until it
    fails the peer too, which its probe, over a connection that counts as down sooner for a
    suspect, soon does.) Once per interval at most, and not while this node lags (its
    suspicions may be its own slowness, and a busy machine needs no more exchanges): a burst
    of suspicions costs one early round. */
static void
s_suspicion_push(sos_node_t *self, uint64_t now)
{
    sos_gossip_t *g = self->gossip;
    if (!g->push_due || g->fd.health > 0 ||
        (g->push_mono && now - g->push_mono < self->cfg.gossip_interval_ms))
        return;
    g->push_due = false;
    g->push_mono = now;
    sos_peer_t *pool[SOS_VIEW_MAX];
    uint32_t n = 0;
    for (sos_peer_t *p = zhashx_first(g->peers); p && n < SOS_VIEW_MAX; p = zhashx_next(g->peers))
        if (!p->retired && p->in_dir && p->ex.state == SOS_EX_IDLE && !s_suspect(p) &&
            s_in_view(self, p))
            pool[n++] = p;
    for (uint32_t k = 0; k < self->cfg.fanout && n > 0; k++) {
        uint32_t i = sos_core_uniform(NULL, NULL, n);
        sos_peer_t *p = pool[i];
        pool[i] = pool[--n];
        self->stats.suspicion_pushes++;
        s_exchange_start(self, p);
    }
}

/*  How many peers this round exchanges with: fanout while there is news, one once the
    directory has been at rest for SOS_REST_ROUNDS rounds. News is anything that moved the
    counters below: a record taken or sent (a peer lacked it: a join, a rumor missed), made
    here, removed, or a rumor heard; and any suspect. At rest an exchange finds the digests
    equal and only says that both ends are alive, which one exchange a round says as well as
    fanout of them (SWIM probes one member per period, and memberlist's gossip sends nothing
    when it has nothing to send): at rest a node exchanges a third as often, and its CPU and
    bandwidth fall with it. A change still travels at once: its rumor goes to fanout members
    of the view, every node that takes it has news, and a new suspicion is pushed to fanout
    members (s_suspicion_push). A dead node is picked by someone about half a round later
    than with fanout exchanges a round. At rest the exchanges outside the view, each over a
    new connection and its CURVE handshake, are four times rarer too: agreement beyond the
    view is what they keep, and at rest there is nothing to agree on. *rest: at rest. */
static uint32_t
s_round_fanout(sos_node_t *self, size_t n_suspects, uint64_t now, bool *rest)
{
    sos_gossip_t *g = self->gossip;
    const sos_stats_t *st = &self->stats;
    uint64_t mark = st->merges[SOS_MERGE_NEW] + st->merges[SOS_MERGE_UPDATED] + st->records_sent +
                    st->workers_removed + st->rumors_in + g->my_version;
    if (mark != g->news_mark || n_suspects > 0 || !g->news_mono) {
        g->news_mark = mark;
        g->news_mono = now;
    }
    *rest = now - g->news_mono >= SOS_REST_ROUNDS * self->cfg.gossip_interval_ms;
    if (!*rest)
        return self->cfg.fanout;
    self->stats.rounds_at_rest++;
    return 1; /* --fanout is at least 1 */
}

/*  peer's digest shows removals, at or above the versions we hold, of origins we hold
    (sos_digest_removed_here). A worker we list becomes a suspect here as if peer had named
    it in a SYNC: probed, and removed only once it fails us too, so no peer's word alone
    removes anyone. Our own origin: we were removed while alive, and refute with a newer
    record, which beats the tombstones wherever it goes. */
static void
s_removed_by_peer(sos_node_t *self, sos_txn_t *txn, const sos_peer_t *peer,
                  const sos_digest_entry_t *removed, uint32_t n)
{
    sos_sync_ctx_t ctx = s_sync_ctx(self);
    for (uint32_t i = 0; i < n; i++) {
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, removed[i].origin, SOS_NODEID_BYTES);
        sos_peer_t *p = zhashx_lookup(self->gossip->peers_id, hex);
        /*  Genesis nodes are never removed, and a peer's word about itself is no report
            (sos_core_fd_named). */
        sos_core_fd_namer_t by = {
            .suspect = {.listed = p && p->in_dir, .genesis = p && p->is_genesis},
            .namer = peer->id_known ? peer->id : NULL,
            .namer_answered = peer->in_dir && peer->last_ok != 0};
        bool was = p && p->fd.suspect_mono;
        /*  A digest's removal carries no age: nothing to date back, no cap to work out */
        sos_named_t named = sos_core_fd_named(&ctx, txn, &removed[i], &by, p ? &p->fd : NULL, 0,
                                              sos_mono_ms(), NULL);
        if (named == SOS_NAMED_REFUTE) {
            s_suspected(self, NULL, removed[i].version);
            continue;
        }
        if (named != SOS_NAMED_SUSPECT)
            continue;
        self->stats.removals_heard++;
        if (!was)
            sos_log_info("peer %s removed worker %.12s at v%llu, which we list: suspected",
                         peer->url, p->hex, (unsigned long long)removed[i].version);
        p->stats_dirty = true;
    }
}

/*  Compare the peer's digest entries (theirs) with ours (mine: the whole digest, or our
    entries of the buckets the peer covered), and send what the core says it lacks and
    what we lack of it (sos_core_sync_delta). mine is borrowed, and may be the digest cache
    (s_send_delta_whole): it is read only, and only before anything here can change the
    directory. */
static void
s_send_delta(sos_node_t *self, sos_txn_t *txn, sos_peer_t *peer, sos_digest_entry_t *mine,
             uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs)
{
    sos_delta_out_t out;
    sos_sync_ctx_t ctx = s_sync_ctx(self);
    if (sos_core_delta_out(&ctx, txn, mine, n_mine, theirs, n_theirs, ++self->gossip->next_req_id,
                           &out) != SOS_OK)
        goto done;
    s_removed_by_peer(self, txn, peer, out.d.removed, out.d.n_removed);
    if (!s_envelope(self, SOS_MSG_DELTA, peer->id, &out.msg, out.d.batch.wires, out.d.batch.lens,
                    out.d.batch.n) ||
        !s_send_step(self, peer, "DELTA"))
        goto done;
    self->stats.records_sent += out.d.batch.n;
    sos_exchange_delta_sent(&peer->ex, out.msg.req_id, out.d.more, sos_mono_ms(),
                            s_exchange_timeout(self, peer));
done:
    sos_delta_out_release(&out);
}

/*  The peer's whole digest (a SYNC_ACK under SOS_DIGEST_WHOLE_MAX origins): diff it with
    all of ours. Ours is the cached digest, which answering this SYNC_ACK has just made valid
    (s_digest_view): in a small network every exchange ends here, and building the digest
    walks every origin in the store. The diff only reads it: it comes sorted by origin, as
    sos_digest_diff wants it, and nothing changes the directory before the diff is made.
    Built afresh only when the cache could not be made (no memory). */
static void
s_send_delta_whole(sos_node_t *self, sos_txn_t *txn, sos_peer_t *peer, sos_gmsg_t *theirs)
{
    sos_gossip_t *g = self->gossip;
    s_digest_hash(self, txn);
    if (!g->digest_dirty) {
        s_send_delta(self, txn, peer, g->digest_cache, g->digest_n, theirs->digest,
                     theirs->n_digest);
        return;
    }
    uint32_t n_mine = 0;
    sos_digest_entry_t *mine = s_digest_build(self, txn, &n_mine);
    if (mine)
        s_send_delta(self, txn, peer, mine, n_mine, theirs->digest, theirs->n_digest);
    free(mine);
}

/*  Digest entries one DIGEST_ACK carries, at most: SOS_DIGEST_MAX, unless a test lowered
    it (sos_gossip_start) to make a bucket too large for one answer without grinding
    thousands of keys. */
static uint32_t
s_digest_max(const sos_node_t *self)
{
    return self->gossip->digest_max ? self->gossip->digest_max : SOS_DIGEST_MAX;
}

/*  A bucket message that breaks the rules the decoder cannot know (which parts a type
    carries) is hostile or broken: dropped whole, counted, logged. */
static void
s_buckets_refused(sos_node_t *self, const char *why)
{
    self->stats.digests_refused++;
    sos_node_drop(self, SOS_DROP_MALFORMED, why);
}

/*  A SYNC_ACK's shape (sos_core_sync_ack_ok), checked before anything of it is taken. */
static bool
s_sync_ack_ok(sos_node_t *self, const sos_gmsg_t *msg)
{
    if (sos_core_sync_ack_ok(msg))
        return true;
    s_buckets_refused(self, "a SYNC_ACK with broken bucket sums");
    return false;
}

/*  The core's bucket sums callback (sos_digest_view_t): the cached sums of this node. */
typedef struct {
    sos_node_t *self;
    sos_txn_t *txn;
} s_sums_arg_t;

static const uint8_t (*s_sums_fn(void *arg, uint32_t nb))[SOS_DIGEST_HASH_BYTES]
{
    s_sums_arg_t *a = arg;
    return s_bucket_sums(a->self, a->txn, nb);
}

/*  The cached digest as the core reads it; without memory for it (still dirty), no
    entries, and the core decides nothing. Valid until the directory changes. */
static sos_digest_view_t
s_digest_view(sos_node_t *self, sos_txn_t *txn, s_sums_arg_t *arg)
{
    sos_gossip_t *g = self->gossip;
    s_digest_hash(self, txn);
    *arg = (s_sums_arg_t){.self = self, .txn = txn};
    return (sos_digest_view_t){.hash = g->digest_hash,
                               .n = g->digest_n,
                               .entries = g->digest_dirty ? NULL : g->digest_cache,
                               .sums = s_sums_fn,
                               .sums_arg = arg};
}

/*  The awaited SYNC_ACK: the core says what follows (sos_core_take_sync_ack): done, a DELTA
    over the whole digest, or a DIGEST asking the next piece of a bucket too large for one
    answer or the buckets that differ, from a random one on, as many as fit one answer. */
static void
s_on_sync_ack(sos_node_t *self, sos_txn_t *txn, sos_peer_t *peer, sos_gmsg_t *theirs)
{
    s_sums_arg_t arg;
    sos_digest_view_t mine = s_digest_view(self, txn, &arg);
    sos_ack_plan_t plan;
    if (sos_core_take_sync_ack(&mine, theirs, &peer->ex.cursor, NULL, NULL, s_digest_max(self),
                               &plan) != SOS_OK)
        return; /* no memory (the shape was checked): the exchange times out */
    sos_exchange_do_t next = sos_ack_plan_step(&plan, &peer->ex);
    if (next == SOS_EX_DO_DELTA)
        s_send_delta_whole(self, txn, peer, theirs);
    if (next != SOS_EX_DO_DIGEST)
        goto done; /* the plan may still hold the (empty) list it picked into */
    sos_gmsg_t msg;
    sos_ack_plan_digest(&plan, ++self->gossip->next_req_id, &msg);
    if (!s_envelope(self, SOS_MSG_DIGEST, peer->id, &msg, NULL, NULL, 0) ||
        !s_send_step(self, peer, "DIGEST"))
        goto done;
    sos_exchange_digest_sent(&peer->ex, msg.req_id, plan.nb, plan.asked, plan.n_asked,
                             plan.has_piece ? &plan.piece : NULL, plan.more, sos_mono_ms(),
                             s_exchange_timeout(self, peer));
done:
    sos_ack_plan_release(&plan);
}

/*  The peer's entries of the buckets and the piece it covered: checked against what we
    asked, then diffed with ours of exactly what was covered (sos_core_take_digest_ack),
    and the exchange goes on with a DELTA. */
static void
s_on_digest_ack(sos_node_t *self, sos_txn_t *txn, sos_peer_t *peer, sos_gmsg_t *msg)
{
    s_sums_arg_t arg;
    sos_digest_view_t view = s_digest_view(self, txn, &arg);
    sos_digest_entry_t *mine = NULL;
    uint32_t n_mine = 0;
    sos_rc rc =
        sos_core_take_digest_ack(&view, msg, peer->ex.nb, peer->ex.asked,
                                 peer->ex.piece_asked ? &peer->ex.piece : NULL, &mine, &n_mine);
    if (rc == SOS_ERR_MALFORMED) {
        s_buckets_refused(self, "a DIGEST_ACK outside the buckets asked");
        return; /* the exchange times out, as for any reply that does not decode */
    }
    if (rc != SOS_OK)
        return; /* no memory: the exchange times out */
    const sos_bucket_piece_t *piece = msg->has_piece ? &msg->piece : NULL;
    if (sos_exchange_digest_ack(&peer->ex, msg->buckets, msg->n_buckets, piece) ==
        SOS_EX_DO_DELTA) {
        self->stats.digests_by_bucket++;
        if (piece)
            self->stats.digests_pieces++;
        s_send_delta(self, txn, peer, mine, n_mine, msg->digest, msg->n_digest);
    }
    free(mine);
}

/*  Verification costs. A record's Ed25519 signature costs about as much as everything else
    a node does with it, and one frame carries up to SOS_BATCH_MAX records, re-sendable
    under a new envelope forever. So a record is verified only if it could change
    something: one we hold byte for byte (verified when it was stored) or one older than
    the version we hold of its key is not verified again, and takes no part in the rest.
    What is left is charged to the sender: each peer has a budget of verifications per
    second, and senders that are no peers share one. Replies to our own exchanges are not
    charged (we ask for them, one at a time), so anti-entropy converges whatever strangers
    send. The budget (--verify-budget, 4096 a second, about a fifth of a core) is at least
    one full batch, so that one honest DELTA always fits; an unsolicited RUMOR or DELTA over budget
   is refused (a DELTA is still answered, and its records come again in a later exchange).
   --rate-limit off lifts the budget, as it does the other limits on strangers (benchmarks, tests
   that flood on purpose). */

/*  Decide, for each record of msg, whether to verify it (and do so), or skip it as held or
    stale; *checks_p (caller frees; NULL unless S_RECORDS_OK with records) gets one sos_check_t
    per record. sender (NULL: a stranger) pays if charge. Every message type is checked,
    also those whose records are not used: one bad record rejects the whole message
    (bad_signature), as the protocol says. */
typedef enum {
    S_RECORDS_OK,
    S_RECORDS_BAD,         /* a record does not verify, or no memory: refuse the message */
    S_RECORDS_OVER_BUDGET, /* the sender's budget is spent: take none of them */
} s_records_t;

static s_records_t
s_check_records(sos_node_t *self, sos_txn_t *txn, const sos_gmsg_t *msg, sos_peer_t *sender,
                bool charge, uint8_t **checks_p)
{
    *checks_p = NULL;
    if (!msg->n_records)
        return S_RECORDS_OK;
    uint8_t *checks = calloc(msg->n_records, 1);
    s_records_t result = S_RECORDS_BAD;
    sos_sync_ctx_t ctx = s_sync_ctx(self);
    sos_sync_triage_t t;
    if (!checks ||
        sos_core_sync_triage(&ctx, txn, msg->records, msg->n_records, checks, &t) != SOS_OK)
        goto done;
    for (uint32_t i = 0; t.endpoint && i < msg->n_records; i++)
        if (checks[i] == SOS_CHECK_ENDPOINT)
            s_refuse_endpoint(self, &msg->records[i]);
    self->stats.merges[SOS_MERGE_SAME] += t.held;
    self->stats.merges[SOS_MERGE_STALE] += t.stale;
    self->stats.merges[SOS_MERGE_TOMBSTONED] += t.tombstoned;
    uint32_t need = t.verify;
    self->stats.verify_skipped += msg->n_records - need;
    if (need && charge && self->cfg.rate_limit) {
        uint64_t now = sos_mono_ms();
        bool granted =
            sender ? sos_core_tokens_take(&sender->verify_tokens, &sender->verify_mono,
                                          self->cfg.verify_budget, need, now)
                   : sos_core_tokens_take(&self->gossip->verify_tokens, &self->gossip->verify_mono,
                                          self->cfg.verify_budget, need, now);
        if (!granted) {
            self->stats.verify_refused += need;
            char what[96];
            snprintf(what, sizeof what, "%u records over the %s verification budget", need,
                     sender ? "peer's" : "strangers'");
            sos_node_drop(self, SOS_DROP_OVER_BUDGET, what);
            result = S_RECORDS_OVER_BUDGET;
            goto done;
        }
    }
    uint32_t checked = 0;
    sos_rc rc = sos_core_sync_verify(msg->records, msg->n_records, checks, NULL, NULL, &checked);
    self->stats.verifications += checked;
    if (rc == SOS_ERR_SIGNATURE)
        sos_node_drop(self, SOS_DROP_BAD_SIGNATURE, "a record's signature does not verify");
    if (rc)
        goto done;
    result = S_RECORDS_OK;
done:
    if (result != S_RECORDS_OK) {
        free(checks);
        checks = NULL;
    }
    *checks_p = checks;
    return result;
}

/*  Apply a batch of records from an exchange, then settle the gaps they fill: records of an
    origin arrive in ascending version from the version we asked for, and the sender holds
    all of them up to its last one (sos_digest_collect), so the gap moves up to the last version
    received. It closes only when that reaches the highest version we hold: the sender's
    digest may stop below records that a rumor brought us past the hole, and closing the gap
    on any complete batch would make us claim that hole as held, for good. */
static void
s_apply_delta(sos_node_t *self, sos_txn_t *txn, const sos_gmsg_t *msg, const uint8_t *checks)
{
    for (uint32_t i = 0; i < msg->n_records; i++)
        if (checks[i] == SOS_CHECK_VERIFY)
            s_apply(self, txn, &msg->records[i], SOS_SRC_DELTA);
    if (sos_core_sync_settle(self->gossip->gaps, txn, msg->records, msg->n_records, checks,
                             sos_mono_ms()))
        self->gossip->digest_dirty = true;
}

/* ----------------------------------------------------------------- input ---- */

/*  Decode and check an envelope; on failure count the drop. With transport_auth the
    connection it came on proved its sender's key, and an unsigned envelope passes: the
    caller checks env->sender against that key before anything else. */
static bool
s_open_envelope(sos_node_t *self, sos_envelope_t *env, const uint8_t *frame, size_t size,
                bool transport_auth)
{
    uint64_t now = sos_now_ms(), version = 0;
    sos_rc rc = sos_envelope_open(env, frame, size, self->id.pk, now, SOS_REPLAY_WINDOW_MS,
                                  transport_auth ? SOS_ENV_TRANSPORT_AUTH : 0, &version);
    char why[96];
    switch (rc) {
    case SOS_OK:
        break;
    case SOS_ERR_TOO_LARGE:
        sos_node_drop(self, SOS_DROP_OVERSIZED, "envelope over the size ceiling");
        return false;
    case SOS_ERR_VERSION:
        if (version != SOS_PROTO_VERSION)
            snprintf(why, sizeof why, "envelope of protocol version %llu (we speak %d)",
                     (unsigned long long)version, SOS_PROTO_VERSION);
        else
            snprintf(why, sizeof why, "envelope of unknown message type");
        sos_node_drop(self, SOS_DROP_BAD_VERSION, why);
        return false;
    case SOS_ERR_RECEIVER:
        sos_node_drop(self, SOS_DROP_WRONG_RECEIVER, "envelope bound to another node");
        return false;
    case SOS_ERR_REPLAY:
        sos_node_drop(self, SOS_DROP_REPLAY_WINDOW, "envelope timestamp outside the window");
        return false;
    case SOS_ERR_SIGNATURE:
        self->stats.verifications++;
        sos_node_drop(self, SOS_DROP_BAD_SIGNATURE,
                      transport_auth ? "envelope signature does not verify"
                                     : "envelope signature does not verify, or is missing on a "
                                       "connection that does not prove its sender");
        return false;
    default:
        sos_node_drop(self, SOS_DROP_MALFORMED, "envelope does not decode");
        return false;
    }
    if (env->sig_checked)
        self->stats.verifications++;
    else
        self->stats.envelopes_unsigned++;
    if (memcmp(env->sender, self->id.pk, SOS_NODEID_BYTES) == 0) {
        sos_node_drop(self, SOS_DROP_SELF, "envelope signed with our own key");
        return false;
    }
    /*  The nonce cache lives in memory only: what was sent before this node started may have
        been accepted by its previous run, so it is refused whole (PROTOCOL.md, "Replay"). */
    if (env->timestamp < self->start_floor_ms) {
        sos_node_drop(self, SOS_DROP_BEFORE_START, "envelope dated before this node started");
        return false;
    }
    if (sos_replay_check(self->gossip->replay, env->nonce, env->timestamp, now) != SOS_OK) {
        sos_node_drop(self, SOS_DROP_NONCE_REUSED, "envelope nonce seen before");
        return false;
    }
    return true;
}

/*  The sender's own record comes with every SYNC and SYNC_ACK, and is nearly always the
    one we hold: verifying it each time was about a tenth of a node's CPU at rest. It is
    verified unless we hold it byte for byte (held bytes were verified when stored); a bad
    one rejects the whole message, as any bad record does. */
static sos_rc
s_check_self(sos_node_t *self, sos_gmsg_t *msg)
{
    sos_txn_t *txn = sos_node_txn_lazy(self);
    sos_record_t *have = malloc(sizeof *have);
    if (!txn || !have) {
        free(have);
        return SOS_ERR_NOMEM;
    }
    sos_rc rc = SOS_OK;
    if (sos_core_check_record(txn, self->id.pk, self->gossip->allow_private, &msg->self, have) ==
        SOS_CHECK_HELD)
        self->stats.verify_skipped++;
    else {
        self->stats.verifications++;
        rc = sos_record_decode(have, msg->self.wire, msg->self.wire_len);
    }
    free(have);
    return rc;
}

static bool
s_open_body(sos_node_t *self, const sos_envelope_t *env, sos_gmsg_t *msg)
{
    /*  The records are verified later, by s_check_records, which skips those we hold. */
    sos_rc rc = sos_gmsg_decode_unverified(msg, env->body, env->body_len);
    if (rc == SOS_OK && msg->has_self)
        rc = s_check_self(self, msg);
    if (rc == SOS_OK)
        return true;
    sos_drop_t reason = rc == SOS_ERR_SIGNATURE   ? SOS_DROP_BAD_SIGNATURE
                        : rc == SOS_ERR_TOO_LARGE ? SOS_DROP_OVERSIZED
                        : rc == SOS_ERR_VERSION   ? SOS_DROP_BAD_VERSION
                                                  : SOS_DROP_MALFORMED;
    sos_node_drop(self, reason, "gossip body rejected whole");
    return false;
}

/*  The sender's own record, as the sender signed it: proof that it is alive. */
static void
s_apply_self(sos_node_t *self, sos_txn_t *txn, const sos_envelope_t *env, const sos_gmsg_t *msg)
{
    if (!msg->has_self)
        return;
    if (!sos_core_sync_self_ok(&msg->self, env->sender)) {
        sos_node_drop(self, SOS_DROP_WRONG_SENDER, "self record of another node");
        return;
    }
    s_apply(self, txn, &msg->self, SOS_SRC_DIRECT);
}

/*  Another node suspects us at version. If that is our current record, refute it: re-sign
    our record at the next round, with a higher version (our incarnation), which cancels the
    suspicion wherever it arrives. At most one refutation per interval, and none for a
    suspicion of an older record (already refuted by the record we hold now), so that
    refutations cannot turn into churn. */
static void
s_suspected(sos_node_t *self, const sos_envelope_t *env, uint64_t version)
{
    sos_gossip_t *g = self->gossip;
    (void)env;
    sos_fd_config_t cfg = s_fd_cfg(self);
    sos_fd_refute_t r =
        sos_fd_refute(&g->fd, &cfg, version, g->self_rec.version, g->republish, sos_mono_ms());
    if (r == SOS_FD_REFUTE_OLD)
        return;
    self->stats.suspected++;
    if (r != SOS_FD_REFUTE)
        return;
    g->republish = true;
    self->stats.refutations++;
    sos_log_notice("suspected at our version %llu: refuting with a newer record",
                   (unsigned long long)version);
}

/*  The suspects a SYNC or a SYNC_ACK names (sos_core_fd_named): each starts a suspicion
    here too, which removes nobody until we see it fail. The sender confirms it if it is a
    distinct node (by id prefix), up to K, and one that has answered us itself (a listed
    worker off probation): fresh keys cost nothing, and must not shorten anyone's suspicion.
    A SYNC_ACK names them as a SYNC does, so that a node's own exchanges bring it the
    confirmations a removal waits for, not only the SYNCs others happen to send it. */
static void
s_take_suspects(sos_node_t *self, sos_txn_t *txn, const sos_envelope_t *env, const sos_gmsg_t *msg)
{
    sos_gossip_t *g = self->gossip;
    char sender_hex[SOS_NODEID_HEX + 1];
    sos_hex(sender_hex, env->sender, SOS_NODEID_BYTES);
    sos_peer_t *sender = zhashx_lookup(g->peers_id, sender_hex);
    sos_sync_ctx_t ctx = s_sync_ctx(self);
    uint64_t cap = s_spread_cap(self), now = sos_mono_ms();
    for (uint32_t i = 0; i < msg->n_suspects; i++) {
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, msg->suspects[i].origin, SOS_NODEID_BYTES);
        sos_peer_t *p = zhashx_lookup(g->peers_id, hex);
        sos_core_fd_namer_t by = {
            .suspect = {.listed = p && p->in_dir, .genesis = p && p->is_genesis},
            .namer = env->sender,
            .namer_answered = sender && sender->in_dir && sender->last_ok};
        bool was = p && p->fd.suspect_mono;
        if (sos_core_fd_named(&ctx, txn, &msg->suspects[i], &by, p ? &p->fd : NULL, cap, now,
                              NULL) == SOS_NAMED_REFUTE)
            s_suspected(self, env, msg->suspects[i].version);
        else if (p && !was && p->fd.suspect_mono && p->fd.fail_count == 0)
            p->probe_soon = g->probe_due = true;
    }
}

static void
s_on_sync(sos_node_t *self, sos_txn_t *txn, zframe_t **routing_p, const sos_envelope_t *env,
          const sos_gmsg_t *msg)
{
    sos_gossip_t *g = self->gossip;
    /*  A SYNC bound to nobody (a first SYNC to a genesis endpoint) could be a copy replayed
        from anywhere: it is answered, and nothing more. Its self record is no sign of life
        (it would lift a tombstone), and it may carry no suspects. */
    bool unbound = sos_envelope_unbound(env);
    if (!unbound) {
        s_apply_self(self, txn, env, msg);
        s_take_suspects(self, txn, env, msg);
    }
    /*  The answer is the core's (sos_core_answer_sync); the digest and its bucket sums are
        kept here, built once per change of the directory, not per SYNC: anyone may send
        SYNCs, and building the digest walks every origin. */
    s_digest_hash(self, txn);
    sos_digest_view_t mine = {.hash = g->digest_hash,
                              .n = g->digest_n,
                              .entries = g->digest_dirty ? NULL : g->digest_cache};
    sos_gmsg_t reply;
    sos_answer_sync_t kind = sos_core_answer_sync(&mine, msg, &reply);
    reply.has_self = true;
    reply.self = g->self_rec;
    if (!unbound)
        s_suspects(self, txn, &reply);
    sos_digest_entry_t *digest = NULL;
    if (kind == SOS_ANSWER_SUMS) {
        const uint8_t(*sums)[SOS_DIGEST_HASH_BYTES] = s_bucket_sums(self, txn, reply.nb);
        if (!sums)
            return; /* no memory: unanswered, the sender's exchange times out */
        reply.sums = (uint8_t(*)[SOS_DIGEST_HASH_BYTES])sums;
    } else if (kind == SOS_ANSWER_WHOLE && !reply.digest) {
        digest = s_digest_build(self, txn, &reply.n_digest);
        reply.digest = digest;
    }
    if (s_envelope(self, SOS_MSG_SYNC_ACK, env->sender, &reply, NULL, NULL, 0))
        sos_node_queue(self, self->router, routing_p, self->buf.data, self->buf.size, 0, false);
    free(digest);
}

/*  A DIGEST: the sender's digest differs from ours in these buckets, and it wants our
    entries of them. Answered as a SYNC is, whoever asks and whether or not a SYNC came
    before: the answer is the core's (sos_core_answer_digest: bounded work, nothing kept
    per sender), from the cached digest. */
static void
s_on_digest(sos_node_t *self, sos_txn_t *txn, zframe_t **routing_p, const sos_envelope_t *env,
            const sos_gmsg_t *msg)
{
    sos_gossip_t *g = self->gossip;
    s_digest_hash(self, txn);
    /*  Without memory for the digest (still dirty), no entries: SOS_ERR_INVALID, and the
        DIGEST goes unanswered; the sender's exchange times out. */
    sos_digest_view_t mine = {.hash = g->digest_hash,
                              .n = g->digest_n,
                              .entries = g->digest_dirty ? NULL : g->digest_cache};
    sos_digest_answer_t a;
    sos_rc rc = sos_core_answer_digest(&mine, msg, s_digest_max(self), &a);
    if (rc == SOS_ERR_MALFORMED)
        s_buckets_refused(self, "a DIGEST that names no bucket, or carries more");
    else if (rc == SOS_OK &&
             s_envelope(self, SOS_MSG_DIGEST_ACK, env->sender, &a.reply, NULL, NULL, 0)) {
        sos_node_queue(self, self->router, routing_p, self->buf.data, self->buf.size, 0, false);
        self->stats.digests_answered++;
    }
    sos_digest_answer_release(&a);
}

static void
s_on_delta(sos_node_t *self, sos_txn_t *txn, zframe_t **routing_p, const sos_envelope_t *env,
           const sos_gmsg_t *msg, const uint8_t *checks)
{
    /*  checks is NULL when the sender's budget could not pay for the records: they are not
        applied, but the DELTA is answered, so that the sender's exchange succeeds and it
        offers them again in a later one. */
    if (checks)
        s_apply_delta(self, txn, msg, checks);
    sos_sync_delta_t d;
    sos_sync_ctx_t ctx = s_sync_ctx(self);
    sos_gmsg_t reply;
    if (sos_core_answer_delta(&ctx, txn, msg, &d, &reply) != SOS_OK)
        return;
    if (s_envelope(self, SOS_MSG_DELTA_ACK, env->sender, &reply, d.batch.wires, d.batch.lens,
                   d.batch.n)) {
        sos_node_queue(self, self->router, routing_p, self->buf.data, self->buf.size, 0, false);
        self->stats.records_sent += d.batch.n;
    }
    sos_sync_delta_release(&d);
}

static void
s_on_leave(sos_node_t *self, sos_peer_t *peer)
{
    if (!peer)
        return;
    if (peer->is_genesis) {
        peer->fd.fail_count = self->cfg.max_failures;
        peer->next_try_mono = sos_mono_ms() + self->cfg.gossip_interval_ms;
        peer->stats_dirty = true;
    } else if (peer->in_dir)
        s_remove_worker(self, peer, "it is leaving");
}

void
sos_gossip_on_request(sos_node_t *self, zframe_t **routing_p, const uint8_t *frame, size_t size)
{
    sos_envelope_t env;
    if (!s_open_envelope(self, &env, frame, size, sos_node_transport_auth(self)) ||
        !sos_node_sender_key_ok(self, env.sender))
        return;
    if (sos_envelope_unbound(&env) && env.type != SOS_MSG_SYNC) {
        sos_node_drop(self, SOS_DROP_WRONG_RECEIVER, "only a SYNC may be bound to nobody");
        return;
    }
    if (env.type >= SOS_MSG_PROBE_REQ && env.type <= SOS_MSG_PONG) {
        s_on_probe_request(self, routing_p, &env);
        return;
    }
    sos_gmsg_t msg;
    if (!s_open_body(self, &env, &msg)) {
        sos_gmsg_release(&msg);
        return;
    }
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (!txn) {
        sos_gmsg_release(&msg);
        return;
    }
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, env.sender, SOS_NODEID_BYTES);
    sos_peer_t *peer = zhashx_lookup(self->gossip->peers_id, hex);
    if (peer && !sos_envelope_unbound(&env)) {
        peer->last_seen = sos_now_ms();
        peer->stats_dirty = true;
        /*  A genesis node waiting out its backoff that talks to us is back: try it in the
            next round rather than after up to a minute. */
        if (peer->is_genesis)
            peer->next_try_mono = 0;
    }
    uint8_t *checks = NULL;
    s_records_t checked = s_check_records(self, txn, &msg, peer, true, &checks);
    if (checked == S_RECORDS_BAD ||
        (checked == S_RECORDS_OVER_BUDGET && env.type != SOS_MSG_DELTA)) {
        sos_gmsg_release(&msg);
        return;
    }
    switch (env.type) {
    case SOS_MSG_SYNC:
        s_on_sync(self, txn, routing_p, &env, &msg);
        break;
    case SOS_MSG_DELTA:
        s_on_delta(self, txn, routing_p, &env, &msg, checks);
        break;
    case SOS_MSG_DIGEST:
        s_on_digest(self, txn, routing_p, &env, &msg);
        break;
    case SOS_MSG_RUMOR:
        self->stats.rumors_in++;
        self->pass.rumor_from = peer;
        for (uint32_t i = 0; checks && i < msg.n_records; i++)
            if (checks[i] == SOS_CHECK_VERIFY)
                s_apply(self, txn, &msg.records[i], SOS_SRC_RUMOR);
        break;
    case SOS_MSG_LEAVE:
        s_on_leave(self, peer);
        break;
    default:
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "a reply sent as a request");
        break;
    }
    free(checks);
    sos_gmsg_release(&msg);
}

/*  Bind a genesis address to the id that answered there; if the directory holds that
    worker's record at this address, the peer is that worker's. */
static void
s_genesis_answered(sos_node_t *self, sos_txn_t *txn, sos_peer_t *peer,
                   const uint8_t id[SOS_NODEID_BYTES])
{
    s_peer_set_id(self, peer, id);
    peer->in_dir = false;
    sos_record_t *rec = malloc(sizeof *rec);
    if (!rec)
        return;
    if (sos_dir_get_worker(txn, id, rec, NULL) == SOS_OK && streq(rec->url, peer->url)) {
        peer->in_dir = true;
        peer->stats_dirty = true;
    }
    free(rec);
}

/*  A reply on one of our DEALERs: an exchange going on, or a forwarded room request. */
static void
s_on_reply(sos_node_t *self, sos_peer_t *peer, const uint8_t *frame, size_t size)
{
    sos_envelope_t env;
    /*  On CURVE the DEALER's server key was derived from dealer_key: only that node can
        have sent what comes on it, and an unsigned reply must say so. */
    if (!s_open_envelope(self, &env, frame, size, !self->cfg.transport_null))
        return;
    if (sos_envelope_unbound(&env)) {
        sos_node_drop(self, SOS_DROP_WRONG_RECEIVER, "a reply bound to nobody");
        return;
    }
    if (!env.sig_checked && memcmp(env.sender, peer->dealer_key, SOS_NODEID_BYTES) != 0) {
        sos_node_drop(self, SOS_DROP_WRONG_SENDER, "an unsigned reply naming another sender");
        return;
    }
    /*  An unpinned genesis address is whoever answers there. The id we had for it may come
        from a worker record naming that address, which anyone can sign with their own key
        before the genesis node first answers; the answer, if it is one we wait for, wins. */
    bool rebind = false;
    if (peer->id_known && memcmp(env.sender, peer->id, SOS_NODEID_BYTES) != 0) {
        if (!peer->is_genesis || peer->pinned) {
            sos_node_drop(self, SOS_DROP_WRONG_SENDER, "reply signed by another node");
            return;
        }
        rebind = true;
    }
    if (env.type >= SOS_MSG_PROBE_REQ && env.type <= SOS_MSG_PONG) {
        if (!peer->id_known || rebind)
            sos_node_drop(self, SOS_DROP_WRONG_SENDER, "a probe reply from another node");
        else
            s_on_probe_reply(self, &env);
        return;
    }
    sos_gmsg_t msg;
    if (!s_open_body(self, &env, &msg)) {
        sos_gmsg_release(&msg);
        return;
    }
    sos_exchange_reply_t kind = env.type == SOS_MSG_DELTA_ACK    ? SOS_EX_REPLY_DELTA_ACK
                                : env.type == SOS_MSG_DIGEST_ACK ? SOS_EX_REPLY_DIGEST_ACK
                                                                 : SOS_EX_REPLY_SYNC_ACK;
    bool awaited = (env.type == SOS_MSG_SYNC_ACK || env.type == SOS_MSG_DELTA_ACK ||
                    env.type == SOS_MSG_DIGEST_ACK) &&
                   sos_exchange_reply(&peer->ex, kind, msg.req_id) == SOS_EX_DO_TAKE;
    uint64_t rtt = 0;
    if (!awaited && sos_exchange_late(&peer->ex, kind, msg.req_id, sos_mono_ms(), &rtt)) {
        /*  The answer to a SYNC given up on: the peer is slower than its deadline said. */
        sos_fd_rtt_sample(&self->gossip->fd, &peer->fd, rtt);
        self->stats.replies_late++;
        sos_gmsg_release(&msg);
        return;
    }
    if (!awaited) {
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "reply to no exchange under way");
        sos_gmsg_release(&msg);
        return;
    }
    if (env.type == SOS_MSG_SYNC_ACK && !s_sync_ack_ok(self, &msg)) {
        sos_gmsg_release(&msg);
        return; /* the exchange times out, as for any reply that does not decode */
    }
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (!txn) {
        sos_gmsg_release(&msg);
        return;
    }
    /*  Replies to our own exchanges are not charged (see "Verification costs"). */
    uint8_t *checks = NULL;
    if (s_check_records(self, txn, &msg, peer, false, &checks) != S_RECORDS_OK) {
        sos_gmsg_release(&msg);
        return; /* the exchange times out, as for any reply that does not decode */
    }
    peer->id_heard = true; /* our next SYNCs are bound to the id that answered */
    if (!peer->id_known || rebind) {
        /*  A genesis node answering for the first time, or instead of the id we had. */
        if (rebind) {
            char hex[SOS_NODEID_HEX + 1];
            sos_hex(hex, env.sender, SOS_NODEID_BYTES);
            sos_log_notice("genesis %s answers as %.12s, not as %.12s", peer->url, hex, peer->hex);
        }
        s_genesis_answered(self, txn, peer, env.sender);
    }
    sos_peer_t *asked = peer;
    if (env.type == SOS_MSG_SYNC_ACK) {
        /*  The SYNC left one timeout before the deadline: its round trip, for /metrics. */
        uint64_t now = sos_mono_ms(), sent = peer->ex.sent_mono;
        sos_stats_exchange_time(&self->stats, now > sent ? now - sent : 0);
        sos_fd_rtt_sample(&self->gossip->fd, &peer->fd, now > sent ? now - sent : 0);
        s_success(self, peer);
        s_apply_self(self, txn, &env, &msg);
        s_take_suspects(self, txn, &env, &msg);
        /*  s_apply may have re-made the peer if its endpoint changed; look it up again. */
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, env.sender, SOS_NODEID_BYTES);
        peer = zhashx_lookup(self->gossip->peers_id, hex);
        if (peer && !peer->retired && peer->ex.state == SOS_EX_WAIT_SYNC_ACK)
            s_on_sync_ack(self, txn, peer, &msg);
    } else if (env.type == SOS_MSG_DIGEST_ACK) {
        s_on_digest_ack(self, txn, peer, &msg);
    } else {
        if (checks)
            s_apply_delta(self, txn, &msg, checks);
        /*  The records may have moved this peer's worker to another url: then this peer is
            retired (valid until the reap, but out of the tables) and the exchange ends. */
        if (sos_exchange_delta_ack(&peer->ex, msg.flags & SOS_GMSG_MORE) == SOS_EX_DO_SYNC &&
            !peer->retired)
            s_exchange_start(self, peer);
    }
    /*  The exchange may be over: a short-lived connection ends with it. */
    s_short_release(self, asked);
    if (peer != asked)
        s_short_release(self, peer);
    free(checks);
    sos_gmsg_release(&msg);
}

static int
s_recv_dealer(zloop_t *loop, zsock_t *sock, void *arg)
{
    sos_peer_t *peer = arg;
    sos_node_t *self = peer->node;
    sos_node_pass_begin(self);
    for (int i = 0; i < 64; i++) {
        /*  An earlier frame may have retired this peer (its object stays valid until the
            reap) or closed its socket. */
        if (peer->retired || peer->dealer != sock)
            break;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, zsock_resolve(sock), ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        size_t size = zmq_msg_size(&m);
        const uint8_t *data = zmq_msg_data(&m);
        self->stats.bytes_in += size;
        self->stats.frames_in++;
        peer->last_used_mono = sos_mono_ms();
        sos_frame_kind_t kind;
        if (zmq_msg_more(&m))
            sos_node_drop(self, SOS_DROP_MALFORMED, "multipart reply");
        else if (sos_frame_kind(data, size, &kind) != SOS_OK)
            sos_node_drop(self, SOS_DROP_MALFORMED, "reply of unknown kind");
        else if (kind == SOS_FRAME_ENVELOPE)
            s_on_reply(self, peer, data, size);
        else if (kind == SOS_FRAME_REPLY)
            sos_node_route_reply(self, peer, data, size);
        else
            sos_node_drop(self, SOS_DROP_UNEXPECTED, "request frame on a peer connection");
        zmq_msg_close(&m);
    }
    sos_node_pass_end(self);
    return 0;
}

void
sos_gossip_on_dealer(sos_node_t *self, zsock_t *dealer)
{
    for (sos_peer_t *p = zhashx_first(self->gossip->peers); p; p = zhashx_next(self->gossip->peers))
        if (p->dealer == dealer) {
            s_recv_dealer(self->loop, dealer, p);
            return;
        }
}

/* ----------------------------------------------------------------- rounds ---- */

/*  A suspect here: seen to fail, or named by others, or waiting for a probe's verdict. */
static bool
s_suspect(const sos_peer_t *p)
{
    return p->fd.fail_count > 0 || p->fd.probe || p->fd.suspect_mono;
}

/*  The view's upkeep at a round: its cap follows the directory (n_listed workers and this
    node), and its free places go to random listed workers that nobody here suspects, whose
    connections open now (a view member picked before it has connected sends its SYNC once
    it has: sos_exchange_not_sent). */
static void
s_view_refill(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    size_t n = zhashx_size(g->peers), n_cand = 0, n_listed = 0;
    sos_peer_t **cand = calloc(n ? n : 1, sizeof *cand);
    if (!cand)
        return;
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers)) {
        if (!p->in_dir || p->retired)
            continue;
        n_listed++;
        if (n_cand < n && p->id_known && !p->removing && !s_suspect(p) && !p->ex_fails &&
            !s_in_view(self, p))
            cand[n_cand++] = p;
    }
    if (n_listed > g->view_listed_max) {
        g->view_listed_max = (uint32_t)n_listed;
        g->view_grew_round = self->stats.rounds;
    }
    bool settled = self->stats.rounds - g->view_grew_round >= SOS_VIEW_SETTLE_ROUNDS;
    uint32_t cap = self->cfg.view_size ? self->cfg.view_size
                                       : sos_core_view_cap(self->cfg.fanout, n_listed + 1);
    uint64_t evicted[SOS_VIEW_MAX];
    size_t k = sos_core_view_resize(&g->view, cap, NULL, NULL, evicted);
    for (size_t i = 0; i < k; i++) {
        /*  Out of the view already: leave it as s_view_leave does. */
        sos_peer_t *p = (sos_peer_t *)(uintptr_t)evicted[i];
        self->stats.view_left++;
        s_short_release(self, p);
    }
    /*  Renewal ("Connections"): only when a candidate can take the place, and only a
        member with no exchange under way. */
    if (k == 0 && n_cand > 0 && g->view.n > 0 && !sos_core_view_room(&g->view)) {
        sos_peer_t *old = NULL;
        for (uint32_t i = 0; i < g->view.n && !old; i++) {
            sos_peer_t *p = (sos_peer_t *)(uintptr_t)g->view.peers[i];
            if (settled && p->view_listed * 2 < n_listed && p->ex.state == SOS_EX_IDLE)
                old = p;
        }
        if (!old && sos_core_uniform(NULL, NULL, SOS_VIEW_RENEW_ONE_IN) == 0) {
            sos_peer_t *p =
                (sos_peer_t *)(uintptr_t)g->view.peers[sos_core_uniform(NULL, NULL, g->view.n)];
            if (p->ex.state == SOS_EX_IDLE)
                old = p;
        }
        if (old) {
            self->stats.view_renewed++;
            s_view_leave(self, old, "renewed");
        }
    }
    for (size_t i = 0; i < n_cand && sos_core_view_room(&g->view); i++) {
        size_t j = i + sos_core_uniform(NULL, NULL, (uint32_t)(n_cand - i));
        sos_peer_t *p = cand[j];
        cand[j] = cand[i];
        cand[i] = p;
        /*  A short-lived connection open to it already joins the view as it is (and is
            no short-lived one any more). */
        if (!s_peer_open(self, p, false, true))
            continue;
        p->short_conn = false;
        sos_core_view_add(&g->view, s_handle(p), false, NULL, NULL, NULL);
        p->view_listed = (uint32_t)n_listed;
        self->stats.view_joined++;
    }
    free(cand);
}

void
sos_gossip_round(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    self->stats.rounds++;
    /*  Local health (Lifeguard): a round or tick that fires late says that this node's own
        loop lags; each such round raises the score by one, each round on time lowers it. */
    sos_fd_config_t fd_cfg = s_fd_cfg(self);
    if (sos_fd_round(&g->fd, &fd_cfg, sos_mono_ms()))
        self->stats.health_late++;
    if (g->republish) {
        sos_txn_t *txn = sos_node_txn(self);
        if (txn) {
            g->republish = false;
            s_publish_self(self, txn);
        }
    }
    sos_txn_t *sweep_txn = sos_node_txn_lazy(self);
    if (sweep_txn)
        s_gaps_sweep(self, sweep_txn);
    s_view_refill(self);
    /*  Genesis nodes not yet listed that are due are always tried; of the suspects (seen to
        fail here, or named by others), in the view or not, at most SOS_PROBES_PER_ROUND at
        random; the rest, and the view's other members, make the fanout's random pool
        (sos_core_round_pick). Listed workers outside the view are left out, but for one
        of them picked at random one round in SOS_VIEW_OUTSIDE_ONE_IN. */
    uint64_t now = sos_mono_ms();
    size_t n = zhashx_size(g->peers), n_sus = 0, n_probes = 0, n_out = 0;
    sos_peer_t **peers = calloc(n ? n : 1, sizeof *peers);
    sos_peer_t **outside = calloc(n ? n : 1, sizeof *outside);
    sos_pick_class_t *classes = calloc(n ? n : 1, sizeof *classes);
    size_t *picked = calloc(n ? n : 1, sizeof *picked);
    if (!peers || !outside || !classes || !picked)
        goto done;
    size_t k = 0;
    for (sos_peer_t *p = zhashx_first(g->peers); p && k < n; p = zhashx_next(g->peers)) {
        bool suspect = s_suspect(p);
        if (suspect && p->in_dir && !p->is_genesis)
            n_sus++;
        peers[k] = p;
        if (p->ex.state != SOS_EX_IDLE || (!p->in_dir && !p->is_genesis) ||
            (p->is_genesis && p->next_try_mono > now))
            classes[k] = SOS_PICK_SKIP;
        else if (p->is_genesis && !p->in_dir)
            classes[k] = SOS_PICK_ALWAYS;
        else if (suspect)
            classes[k] = SOS_PICK_SUSPECT;
        else if (s_in_view(self, p))
            classes[k] = SOS_PICK_POOL;
        else {
            classes[k] = SOS_PICK_SKIP;
            outside[n_out++] = p;
        }
        k++;
    }
    self->stats.suspects = n_sus;
    bool rest = false;
    uint32_t fanout = s_round_fanout(self, n_sus, now, &rest);
    size_t n_picked = sos_core_round_pick(classes, k, fanout, SOS_PROBES_PER_ROUND, NULL, NULL,
                                          picked, &n_probes);
    self->stats.probes += n_probes;
    self->stats.round_started = n_picked;
    /*  A start may retire another peer (its connection's slot); retired peers stay valid
        until the reap, so the arrays do too. */
    for (size_t i = 0; i < n_picked; i++)
        s_exchange_start(self, peers[picked[i]]);
    uint32_t one_in = rest ? SOS_REST_OUTSIDE_ONE_IN : SOS_VIEW_OUTSIDE_ONE_IN;
    if (n_out && sos_core_uniform(NULL, NULL, one_in) == 0) {
        sos_peer_t *p = outside[sos_core_uniform(NULL, NULL, (uint32_t)n_out)];
        if (!p->retired && p->ex.state == SOS_EX_IDLE) {
            self->stats.exchanges_outside++; /* not in round_started: one at most */
            s_exchange_start(self, p);
        }
    }
done:
    free(peers);
    free(outside);
    free(classes);
    free(picked);
}

/*  A view member whose connection has dropped is exchanged with at the tick, not when a
    round happens to pick it: at rest a round exchanges with one member, so a killed node
    was first failed up to a few rounds after its connections closed. Its SYNC then cannot
    leave (the DEALER has no connected pipe, ZMQ_IMMEDIATE), which is the failure the round
    would have found, with its indirect probe. Only members that answered and are not
    failing already, and at most SOS_PROBES_PER_ROUND a tick. Asking ZMQ_EVENTS may take the
    DEALER's edge-triggered signal, so input seen waiting is read soon (sos_peer.c). */
static void
s_view_watch(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    if (g->fd.health > 0)
        return; /* a lagging node blames nobody: its failures would be withheld anyway */
    uint32_t started = 0;
    bool again = false;
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers)) {
        if (!p->dealer || p->item.fd < 0 || p->retired || !p->in_dir || p->is_genesis ||
            p->ex.state != SOS_EX_IDLE || p->fd.fail_count || p->fd.suspect_mono || !p->last_ok ||
            p->short_conn || !s_in_view(self, p))
            continue;
        int ev = zsock_events(p->dealer);
        if (ev & ZMQ_POLLIN) {
            p->read_again = true;
            again = true;
        }
        if (!(ev & ZMQ_POLLOUT) && started < SOS_PROBES_PER_ROUND) {
            started++;
            self->stats.connections_lost++;
            s_exchange_start(self, p);
        }
    }
    if (again)
        sos_node_read_again(self);
}

void
sos_gossip_tick(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    sos_gossip_reap(self);
    g->ticks++;
    uint64_t now = sos_mono_ms();
    /*  The tick's period as sos_node sets it: a quarter interval, within 20 to 500 ms. */
    uint64_t period = self->cfg.gossip_interval_ms / 4;
    period = period < 20 ? 20 : period > 500 ? 500 : period;
    if (sos_fd_tick(&g->fd, period, now))
        self->stats.health_late++;
    zlistx_t *late = zlistx_new();
    zlistx_t *connecting = zlistx_new();
    zlistx_t *idle = zlistx_new();
    zlistx_t *expired = zlistx_new();
    zlistx_t *shorts = zlistx_new();
    if (!late || !connecting || !idle || !expired || !shorts)
        goto done;
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers)) {
        /*  A suspicion that outlived its timeout after max-failures failed exchanges: the
            timeout may end between two exchanges, or during one (a dead suspect's new
            socket waits a whole connect deadline before its SYNC counts as not sent: were
            that awaited, every removal would come up to that much after its time). */
        if (now >= p->remove_retry_mono && s_removable(self, p, now)) {
            zlistx_add_end(expired, p);
            continue;
        }
        sos_exchange_do_t next = sos_exchange_tick(&p->ex, now);
        if (next == SOS_EX_DO_SYNC)
            zlistx_add_end(connecting, p);
        else if (next == SOS_EX_DO_FAIL)
            zlistx_add_end(late, p);
        else if (p->ex.state == SOS_EX_IDLE && !p->in_dir && !p->is_genesis &&
                 now - p->last_used_mono > SOS_PEER_IDLE_MS && !sos_node_peer_busy(self, p->url))
            zlistx_add_end(idle, p); /* a forwarding target nobody used for a while */
        else if (p->dealer && (p->in_dir || p->is_genesis) && !s_in_view(self, p))
            zlistx_add_end(shorts, p); /* closed if nothing holds it any more */
    }
    for (sos_peer_t *p = zlistx_first(late); p; p = zlistx_next(late))
        s_failure(self, p, "no answer in time", true);
    s_probes_tick(self, now);
    s_suspicion_push(self, now);
    s_probe_soon(self);
    s_view_watch(self);
    for (sos_peer_t *p = zlistx_first(expired); p; p = zlistx_next(expired)) {
        if (p->retired || !p->in_dir)
            continue;
        sos_exchange_failed(&p->ex); /* abandoned: the peer goes with its exchange */
        char why[128];
        s_removal_why(self, p, now, why, sizeof why);
        s_remove_worker(self, p, why);
        g->republish = true; /* as in s_failure */
    }
    for (sos_peer_t *p = zlistx_first(connecting); p; p = zlistx_next(connecting))
        s_exchange_start(self, p);
    for (sos_peer_t *p = zlistx_first(idle); p; p = zlistx_next(idle)) {
        if (p->dealer)
            self->stats.connections_closed++;
        s_peer_retire(self, p);
    }
    for (sos_peer_t *p = zlistx_first(shorts); p; p = zlistx_next(shorts))
        s_short_release(self, p);
done:
    zlistx_destroy(&late);
    zlistx_destroy(&connecting);
    zlistx_destroy(&idle);
    zlistx_destroy(&expired);
    zlistx_destroy(&shorts);
}

void
sos_gossip_flush_stats(sos_node_t *self)
{
    sos_txn_t *txn = NULL;
    for (sos_peer_t *p = zhashx_first(self->gossip->peers); p;
         p = zhashx_next(self->gossip->peers)) {
        if (!p->stats_dirty || !p->in_dir || !p->id_known)
            continue;
        if (!txn)
            txn = sos_node_txn_lazy(self);
        if (!txn)
            return;
        sos_worker_local_t local = {.last_seen = p->last_seen,
                                    .last_ok = p->last_ok,
                                    .fail_count = p->fd.fail_count,
                                    .is_genesis = p->is_genesis};
        if (sos_dir_put_worker_local(txn, p->id, &local) == SOS_OK)
            p->stats_dirty = false;
    }
}

void
sos_gossip_push_rumors(sos_node_t *self)
{
    sos_pass_t *pass = &self->pass;
    if (!pass->n_rumors)
        return;
    const uint8_t *wires[SOS_BATCH_MAX];
    for (size_t i = 0; i < pass->n_rumors; i++)
        wires[i] = pass->rumor_wires[i];
    sos_gmsg_t msg = {0};
    msgpack_sbuffer_clear(&self->buf2);
    if (sos_gmsg_encode(&self->buf2, &msg, wires, pass->rumor_lens, (uint32_t)pass->n_rumors) !=
        SOS_OK)
        return;
    /*  To the view's members only ("Connections"): each pushes on what is new to it, over
        its own view, and anti-entropy repairs what a rumor missed. A member whose sending
        budget has no room for the rumor and an exchange after it is passed over (see
        s_send_fits). The envelope adds its header, signature and ids to the body. */
    size_t n_pick = 0, size = self->buf2.size + 256;
    sos_peer_t *pick[SOS_VIEW_MAX];
    for (uint32_t i = 0; i < self->gossip->view.n; i++) {
        sos_peer_t *p = (sos_peer_t *)(uintptr_t)self->gossip->view.peers[i];
        if (!p->in_dir || !p->id_known || p->fd.fail_count || p == pass->rumor_from || !p->dealer ||
            p->retired)
            continue;
        if (s_send_fits(self, p, size, SOS_EXCHANGE_RESERVE))
            pick[n_pick++] = p;
        else
            self->stats.rumors_deferred++;
    }
    for (size_t i = 0; i < n_pick && i < self->cfg.fanout; i++) {
        size_t j = i + sos_core_uniform(NULL, NULL, (uint32_t)(n_pick - i));
        sos_peer_t *t = pick[i];
        pick[i] = pick[j];
        pick[j] = t;
        pick[i]->last_used_mono = sos_mono_ms();
        /*  One body, an envelope per receiver: each is bound to the peer it goes to. */
        if (!s_seal(self, SOS_MSG_RUMOR, pick[i]->id))
            continue;
        if (sos_node_send_now(self, pick[i]->dealer, self->buf.data, self->buf.size)) {
            self->stats.rumors_out++;
            self->stats.records_sent += pass->n_rumors;
        }
    }
}

/* ----------------------------------------------------------------- status ---- */

int
sos_gossip_foreach_peer(sos_node_t *self, sos_gossip_peer_fn *fn, void *arg)
{
    zhashx_t *peers = self->gossip->peers;
    for (sos_peer_t *p = zhashx_first(peers); p; p = zhashx_next(peers)) {
        int rc = fn(arg, p);
        if (rc)
            return rc;
    }
    return 0;
}

sos_peer_t *
sos_gossip_peer_find(sos_node_t *self, const char *id_hex)
{
    return zhashx_lookup(self->gossip->peers_id, id_hex);
}

void
sos_gossip_status(sos_node_t *self, sos_gossip_status_t *out)
{
    sos_gossip_t *g = self->gossip;
    sos_fd_config_t cfg = s_fd_cfg(self);
    *out = (sos_gossip_status_t){
        .peers = zhashx_size(g->peers),
        .record_version = g->my_version,
        .health = g->fd.health,
        .rtt_ms = g->fd.srtt_ms,
        .rttvar_ms = g->fd.rttvar_ms,
        .refute_ms = sos_fd_refute_time(&g->fd, &cfg, zhashx_size(g->peers_id) + 1),
        .connections_open = g->n_open,
        .connections_view = g->view.n,
        .connections_short = s_short_count(self, NULL),
        .connections_short_max = SOS_SHORT_MAX,
        .view_size = g->view.n,
        .view_cap = g->view.cap,
        .gaps = sos_gaps_size(g->gaps),
        .workers_probation = s_probation_count(self),
        .probation_cap = sos_probation_cap(self->cfg.max_workers, &g->probation),
        .probation_samples = g->probation.n,
        .probation_answered = sos_probation_answered(&g->probation),
        .probation_share_pct = (uint64_t)(sos_probation_share(&g->probation) * 100),
    };
}

/* ------------------------------------------------------------ start, stop ---- */

sos_gossip_t *
sos_gossip_new(sos_node_t *node)
{
    sos_gossip_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->peers = zhashx_new();
    self->peers_id = zhashx_new();
    self->retired = zlistx_new();
    uint64_t interval = node->cfg.gossip_interval_ms;
    self->gaps = sos_gaps_new(interval, SOS_GAPS_MAX);
    self->replay = sos_replay_new(65536, SOS_REPLAY_WINDOW_MS);
    if (!self->peers || !self->peers_id || !self->retired || !self->gaps || !self->replay) {
        sos_gossip_destroy(&self);
        return NULL;
    }
    self->digest_dirty = true;
    /*  An exchange may take two intervals, within 0.5 to 5 s. */
    self->exchange_timeout_ms = interval * 2 < 500    ? 500
                                : interval * 2 > 5000 ? 5000
                                                      : interval * 2;
    /*  A tombstone outlives the time the rest of the network needs to remove the same
        worker by far: an hour, or more with slow rounds. */
    self->tombstone_ttl_ms = 3600 * 1000;
    if (interval * node->cfg.max_failures * 20 > self->tombstone_ttl_ms)
        self->tombstone_ttl_ms = interval * node->cfg.max_failures * 20;
    return self;
}

void
sos_gossip_destroy(sos_gossip_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_gossip_t *self = *self_p;
    /*  The node is going: no reader of the peers' sockets runs any more, so the peers are
        freed here, retired or not (see "Peers"). */
    if (self->peers) {
        for (sos_peer_t *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers))
            sos_peer_destroy(&p);
        zhashx_destroy(&self->peers);
    }
    zhashx_destroy(&self->peers_id);
    if (self->retired) {
        for (sos_peer_t *p = zlistx_first(self->retired); p; p = zlistx_next(self->retired))
            sos_peer_destroy(&p);
        zlistx_destroy(&self->retired);
    }
    for (int i = 0; i < SOS_FD_HELPS_MAX; i++)
        zframe_destroy(&self->help_routing[i]); /* requesters of probes still under way */
    sos_gaps_destroy(&self->gaps);
    sos_replay_destroy(&self->replay);
    free(self->digest_cache);
    free(self->sums_cache);
    free(self);
    *self_p = NULL;
}

void
sos_gossip_dirty(sos_node_t *self)
{
    self->gossip->digest_dirty = true;
}

static int
s_load_worker(void *arg, const sos_record_t *rec, const sos_worker_local_t *local)
{
    sos_node_t *self = arg;
    if (memcmp(rec->origin, self->id.pk, SOS_NODEID_BYTES) == 0)
        return 0;
    sos_peer_t *peer = s_peer_for_worker(self, rec, local);
    if (peer)
        peer->stats_dirty = false;
    return 0;
}

sos_rc
sos_gossip_start(sos_node_t *self)
{
    self->pass.rumor_wires = calloc(SOS_BATCH_MAX, sizeof *self->pass.rumor_wires);
    self->pass.rumor_lens = calloc(SOS_BATCH_MAX, sizeof *self->pass.rumor_lens);
    if (!self->pass.rumor_wires || !self->pass.rumor_lens)
        return SOS_ERR_NOMEM;
    /*  A node on a public address connects only to public addresses named in records
        (a record could otherwise point every node at a service on their own host or LAN);
        a node on a loopback or private address is on such a network itself. */
    sos_endpoint_t own;
    bool own_public = true;
    if (sos_endpoint_parse(&own, self->cfg.advertise) == SOS_OK)
        own_public = sos_endpoint_class(&own) == SOS_ADDR_PUBLIC;
    else
        sos_log_warning("advertised endpoint %s is not tcp://IP:PORT with a literal address: "
                        "other nodes refuse records that name it",
                        self->cfg.advertise);
    self->gossip->allow_private = self->cfg.allow_private_endpoints || !own_public;
    /*  For tests only: a lower cap on the entries of one DIGEST_ACK, so that a test makes a
        bucket too large for one answer with a hundred keys instead of 8,193 ground ones.
        Nodes with different caps still understand each other (an answer is checked against
        what was asked, not against a cap). */
    const char *cap = getenv("SOS_TEST_DIGEST_MAX");
    if (cap && *cap) {
        char *end = NULL;
        unsigned long v = strtoul(cap, &end, 10);
        if (*end || v < 1 || v > SOS_DIGEST_MAX) {
            sos_log_error("SOS_TEST_DIGEST_MAX=%s: give 1..%d", cap, SOS_DIGEST_MAX);
            return SOS_ERR_INVALID;
        }
        self->gossip->digest_max = (uint32_t)v;
        sos_log_warning("SOS_TEST_DIGEST_MAX: a DIGEST_ACK carries at most %lu entries (for "
                        "tests only)",
                        v);
    }
    if (self->cfg.verify_budget < SOS_BATCH_MAX)
        self->cfg.verify_budget = SOS_BATCH_MAX;
    if (self->cfg.max_peer_connections < 8)
        self->cfg.max_peer_connections = 8; /* a config not made by sos_config_defaults */
    if (self->gossip->allow_private != self->cfg.allow_private_endpoints)
        sos_log_info("records may name private addresses: this node advertises one");
    sos_core_view_init(&self->gossip->view, self->cfg.view_size
                                                ? self->cfg.view_size
                                                : sos_core_view_cap(self->cfg.fanout, 1));
    /*  Genesis addresses first, so that directory workers at those addresses are tagged. */
    for (uint32_t i = 0; i < self->cfg.n_genesis; i++) {
        const sos_genesis_t *g = &self->cfg.genesis[i];
        if (streq(g->url, self->cfg.advertise))
            continue; /* we are this genesis node */
        sos_peer_t *peer = s_peer_get(self, g->url);
        if (!peer)
            return SOS_ERR_NOMEM;
        peer->is_genesis = true;
        if (g->pinned) {
            peer->pinned = true;
            s_peer_set_id(self, peer, g->id);
        }
        s_peer_open(self, peer, true, false); /* after the id: CURVE needs its key */
    }
    sos_node_pass_begin(self);
    sos_txn_t *txn = sos_node_txn(self);
    if (!txn) {
        sos_node_pass_end(self);
        return SOS_ERR_IO;
    }
    uint64_t version = 0;
    sos_rc rc = sos_meta_get_u64(txn, "version", &version);
    if (rc && rc != SOS_ERR_NOT_FOUND) {
        sos_node_pass_end(self);
        return rc;
    }
    self->gossip->my_version = version;
    /*  Envelopes dated before this start may have been accepted by the previous run, whose
        nonce cache is gone: refuse them all. The start is the time taken before the public
        endpoint was bound (sos_node.c), since peers may send as soon as it is, well before
        this runs. The floor is kept in the store and only rises, so a wall clock set back
        across a restart does not lower it. */
    uint64_t floor = 0;
    rc = sos_meta_get_u64(txn, "start_floor", &floor);
    if (rc && rc != SOS_ERR_NOT_FOUND) {
        sos_node_pass_end(self);
        return rc;
    }
    if (self->start_floor_ms <= floor)
        self->start_floor_ms = floor + 1;
    rc = sos_meta_put_u64(txn, "start_floor", self->start_floor_ms);
    if (rc) {
        sos_log_error("store: cannot keep the start floor: %s", sos_strerror(rc));
        sos_node_pass_end(self);
        return rc;
    }
    self->pass.wrote = true;
    rc = sos_dir_foreach_worker(txn, s_load_worker, self);
    if (rc) {
        sos_log_error("store: cannot load the directory: %s", sos_strerror(rc));
        sos_node_pass_end(self);
        return rc;
    }
    /*  A new record at every start: a higher version than any copy others hold, so that a
        node removed while it was down comes back. */
    s_publish_self(self, txn);
    uint64_t workers = 0, rooms = 0;
    sos_dir_counts(txn, &workers, &rooms, NULL);
    sos_log_notice("directory: %llu workers, %llu rooms; record version %llu",
                   (unsigned long long)workers, (unsigned long long)rooms,
                   (unsigned long long)self->gossip->my_version);
    self->pass.n_rumors = 0; /* the first round carries our record */
    sos_node_pass_end(self);
    return SOS_OK;
}

/*  A LEAVE goes to the view's members and to random other listed workers, up to this many
    in all: with the view, a node holds no connection to most workers, and every LEAVE sent
    elsewhere costs a connection made at stop. The others see the node fail. */
#define SOS_LEAVE_MAX SOS_VIEW_MAX

void
sos_gossip_stop(sos_node_t *self)
{
    sos_gossip_t *g = self->gossip;
    sos_gmsg_t msg = {0};
    msgpack_sbuffer_clear(&self->buf2);
    if (sos_gmsg_encode(&self->buf2, &msg, NULL, NULL, 0) != SOS_OK)
        return;
    size_t n = zhashx_size(g->peers), n_to = 0, n_view = 0;
    sos_peer_t **to = calloc(n ? n : 1, sizeof *to);
    if (!to)
        return;
    /*  A LEAVE must be bound to its receiver: workers and genesis nodes whose id we know. */
    for (sos_peer_t *p = zhashx_first(g->peers); p; p = zhashx_next(g->peers))
        if ((p->in_dir || p->is_genesis) && p->id_known && !p->retired && n_to < n)
            to[n_to++] = p;
    /*  The view's members first, then the others at random. */
    for (size_t i = 0; i < n_to; i++)
        if (s_in_view(self, to[i])) {
            sos_peer_t *t = to[n_view];
            to[n_view++] = to[i];
            to[i] = t;
        }
    for (size_t i = n_view; i < n_to && i < SOS_LEAVE_MAX; i++) {
        size_t j = i + sos_core_uniform(NULL, NULL, (uint32_t)(n_to - i));
        sos_peer_t *t = to[i];
        to[i] = to[j];
        to[j] = t;
    }
    for (size_t i = 0; i < n_to && i < SOS_LEAVE_MAX; i++) {
        sos_peer_t *p = to[i];
        if (!s_seal(self, SOS_MSG_LEAVE, p->id))
            continue;
        if (!p->dealer || !sos_node_send_now(self, p->dealer, self->buf.data, self->buf.size)) {
            /*  Not connected (closed, or just opened by the view): a connection that holds
                the LEAVE until it is made, for as long as the linger below. */
            s_peer_close(self, p);
            if (!s_peer_open_as(self, p, false, false, true) ||
                !sos_node_send_now(self, p->dealer, self->buf.data, self->buf.size))
                continue;
        }
        zsock_set_linger(p->dealer, 200);
    }
    free(to);
}
