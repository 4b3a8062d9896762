/*  sos_node.c: the node actor: start-up, the reactor over the public ROUTER, passes with
    group commit, the directory queries (status, workers, rooms), and shutdown.

    A pass is one wake-up of the reactor. Everything received in it (gossip, room writes,
    queries) is applied inside one LMDB write transaction, and every reply waits in a queue
    until that transaction has committed to disk. Concurrent senders therefore share one
    fsync (group commit), no client ever sees an acknowledgement for data that is not on
    disk, and no reader sees data that a failed commit then discards. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "sos_node_int.h"
#include "sos_peer.h"

#define SOS_PASS_MAX_FRAMES 512 /* frames taken from the ROUTER in one pass */
#define SOS_PASS_MAX_MS     50  /* and for at most this long */
#define SOS_ROOMS_PAGE_MAX  1000

/*  Output budgets (see sos_budget.c for how they are kept). One connection may hold 4 MiB of
    replies not yet read (three of the largest frames), and all connections together
    64 MiB: past that, replies are dropped and counted (output_full), so what a peer that
    never reads can pin is 4 MiB, and what all of them can is 64 MiB, whatever they ask.
    The kernel's socket buffers come on top; they are bounded per socket by
    net.ipv4.tcp_wmem and in all by net.ipv4.tcp_mem, and are not the process's memory. */
#define SOS_OUT_CONN_BYTES  (4 * 1024 * 1024)
#define SOS_OUT_TOTAL_BYTES (64 * 1024 * 1024)
#define SOS_ROUTER_SNDHWM   1000

/*  --rate-limit off lifts every limit keyed on a client's address, this one too: benchmarks
    and tests run all their clients and nodes from one address. */
static uint32_t
s_max_per_address(const sos_node_t *self)
{
    return self->cfg.rate_limit ? self->cfg.max_connections_per_address : 0;
}

/* ------------------------------------------------------------------ passes ---- */

sos_txn_t *
sos_node_txn_lazy(sos_node_t *self)
{
    assert(self->pass.active);
    if (!self->pass.txn) {
        sos_rc rc = sos_txn_begin(self->store, true, &self->pass.txn);
        if (rc) {
            sos_log_error("store: cannot begin a transaction: %s", sos_strerror(rc));
            return NULL;
        }
    }
    return self->pass.txn;
}

sos_txn_t *
sos_node_txn(sos_node_t *self)
{
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (txn)
        self->pass.durable = true;
    return txn;
}

/*  The name of a connection for its output budget: the ROUTER's routing id of the client or
    peer, or the DEALER itself (a DEALER has one connection, to one peer). */
static void
s_conn_key(zsock_t *sock, const zframe_t *routing, const void **key_p, size_t *size_p,
           zsock_t **sock_p)
{
    if (routing) {
        *key_p = zframe_data((zframe_t *)routing);
        *size_p = zframe_size((zframe_t *)routing);
    } else {
        *sock_p = sock;
        *key_p = sock_p;
        *size_p = sizeof *sock_p;
    }
}

/*  A copy of data charged to the connection's output budget, or NULL (counted and logged). */
static uint8_t *
s_out_alloc(sos_node_t *self, zsock_t *sock, const zframe_t *routing, const void *data, size_t size)
{
    const void *key;
    size_t key_size;
    zsock_t *sock_key;
    s_conn_key(sock, routing, &key, &key_size, &sock_key);
    bool full = false;
    uint8_t *buf = sos_budget_alloc(self->budget, key, key_size, size, &full);
    if (!buf) {
        if (full)
            sos_node_drop(self, SOS_DROP_OUTPUT_FULL, "reply over the connection's output budget");
        else
            sos_log_error("out of memory queueing a reply");
        return NULL;
    }
    memcpy(buf, data, size);
    return buf;
}

/*  Remember a DEALER sent on, for sos_node_dealers_check. */
static void
s_dealer_sent(sos_node_t *self, zsock_t *sock)
{
    for (size_t i = 0; i < self->n_dealers_sent; i++)
        if (self->dealers_sent[i] == sock)
            return;
    if (self->n_dealers_sent < SOS_SENT_MAX)
        self->dealers_sent[self->n_dealers_sent++] = sock;
    else
        self->dealers_sent_many = true;
}

/*  Send a frame made by s_out_alloc, after the routing id on the ROUTER. Takes *buf_p. */
static bool
s_out_send(sos_node_t *self, zsock_t *sock, const zframe_t *routing, uint8_t **buf_p, size_t size)
{
    void *h = zsock_resolve(sock);
    int err = 0;
    if (sock == self->router)
        self->router_sent = true; /* the send may take the ROUTER's ZMQ_FD signal */
    else
        s_dealer_sent(self, sock); /* and a DEALER's (sos_peer.c, "Reading a DEALER") */
    if (routing && zmq_send(h, zframe_data((zframe_t *)routing), zframe_size((zframe_t *)routing),
                            ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        err = zmq_errno();
        sos_budget_free(buf_p);
    } else
        err = sos_budget_send(h, buf_p, size, 0);
    if (err == 0) {
        self->stats.bytes_out += size;
        self->stats.frames_out++;
        return true;
    }
    /*  On the ROUTER, EAGAIN: the pipe is at its high-water mark (ROUTER_MANDATORY says so
        instead of dropping in silence); EHOSTUNREACH: the client has gone, which is no
        one's fault. On a DEALER, EAGAIN also means not connected: the caller counts it. */
    if (err == EAGAIN && routing)
        sos_node_drop(self, SOS_DROP_OUTPUT_FULL, "a connection's pipe is full");
    return false;
}

void
sos_node_queue(sos_node_t *self, zsock_t *sock, zframe_t **routing_p, const void *data, size_t size,
               uint64_t req_id, sos_out_kind_t kind)
{
    sos_pass_t *pass = &self->pass;
    if (pass->n_out == pass->cap_out) {
        size_t cap = pass->cap_out ? pass->cap_out * 2 : 64;
        sos_out_t *out = realloc(pass->out, cap * sizeof *out);
        if (!out) {
            sos_log_error("out of memory queueing a reply");
            if (routing_p)
                zframe_destroy(routing_p);
            return;
        }
        pass->out = out;
        pass->cap_out = cap;
    }
    sos_out_t *o = &pass->out[pass->n_out];
    /*  Charged now, not when it leaves: what waits for the commit is held for the
        connection as much as what sits in libzmq's pipe. */
    o->data = s_out_alloc(self, sock, routing_p ? *routing_p : NULL, data, size);
    if (!o->data) {
        if (routing_p)
            zframe_destroy(routing_p);
        return;
    }
    o->size = size;
    o->sock = sock;
    o->routing = routing_p ? *routing_p : NULL;
    if (routing_p)
        *routing_p = NULL;
    o->req_id = req_id;
    o->kind = kind;
    pass->n_out++;
}

bool
sos_node_send_now(sos_node_t *self, zsock_t *sock, const void *data, size_t size)
{
    if (!sock)
        return false; /* a peer whose connection is closed (see sos_gossip.c, "Peers") */
    uint8_t *buf = s_out_alloc(self, sock, NULL, data, size);
    if (!buf)
        return false;
    bool sent = s_out_send(self, sock, NULL, &buf, size);
    if (!self->pass.active)
        sos_node_dealers_check(self); /* else at the end of the pass */
    return sent;
}

/*  A peer marked read_again (sos_gossip_foreach_peer): stops the walk at the first. */
static int
s_peer_marked(void *arg, sos_peer_t *peer)
{
    if (!peer->read_again)
        return 0;
    *(sos_peer_t **)arg = peer;
    return 1;
}

static int
s_dealers_again_fn(zloop_t *loop, int timer_id, void *arg)
{
    sos_node_t *self = arg;
    self->dealers_again = -1;
    /*  A reader may change the peer table: look the next marked peer up afresh each time.
        At most 32 reads a turn: peers still marked then are read from the next turn, so
        that other sockets and timers get theirs in between. */
    for (int n = 0; n < 32; n++) {
        sos_peer_t *next = NULL;
        sos_gossip_foreach_peer(self, s_peer_marked, &next);
        if (!next)
            return 0;
        next->read_again = false;
        if (sos_peer_read(next, loop) < 0)
            return -1;
    }
    sos_peer_t *next = NULL;
    if (sos_gossip_foreach_peer(self, s_peer_marked, &next))
        sos_node_read_again(self);
    return 0;
}

/*  Arm a one-shot timer for the next turn of the loop in *id, unless one is armed. */
static void
s_soon(sos_node_t *self, int *id, zloop_timer_fn *fn, const char *what)
{
    if (*id >= 0 || !self->loop)
        return;
    *id = zloop_timer(self->loop, 0, 1, fn, self);
    if (*id < 0)
        sos_log_error("cannot set a timer to read %s", what);
}

void
sos_node_read_again(sos_node_t *self)
{
    s_soon(self, &self->dealers_again, s_dealers_again_fn, "the peers' connections");
}

/*  Mark the peer read_again if its DEALER was sent on and has input waiting
    (sos_gossip_foreach_peer, from sos_node_dealers_check). */
typedef struct {
    sos_node_t *node;
    bool again; /* a peer was marked */
} s_check_t;

static int
s_dealer_check(void *arg, sos_peer_t *p)
{
    s_check_t *c = arg;
    sos_node_t *self = c->node;
    if (!p->dealer || p->item.fd < 0)
        return 0;
    bool sent = self->dealers_sent_many;
    for (size_t i = 0; i < self->n_dealers_sent && !sent; i++)
        sent = self->dealers_sent[i] == p->dealer;
    if (sent && (zsock_events(p->dealer) & ZMQ_POLLIN)) {
        p->read_again = true;
        c->again = true;
    }
    return 0;
}

void
sos_node_dealers_check(sos_node_t *self)
{
    if (!self->n_dealers_sent && !self->dealers_sent_many)
        return;
    s_check_t c = {.node = self};
    sos_gossip_foreach_peer(self, s_dealer_check, &c);
    bool again = c.again;
    self->n_dealers_sent = 0;
    self->dealers_sent_many = false;
    if (again)
        sos_node_read_again(self);
}

bool
sos_node_reply_now(sos_node_t *self, const zframe_t *routing, const void *data, size_t size)
{
    uint8_t *buf = s_out_alloc(self, self->router, routing, data, size);
    if (!buf)
        return false;
    return s_out_send(self, self->router, routing, &buf, size);
}

static const char *
s_drop_name(sos_drop_t reason)
{
    /* clang-format off */
    static const char *names[] = {
        "malformed",      "oversized",    "bad_signature", "bad_version",
        "replay_window",  "nonce_reused", "wrong_sender",  "unexpected",
        "self",           "bad_request",  "output_full",   "connections_refused",
        "wrong_receiver", "before_start", "bad_endpoint",  "over_budget",
        "wrong_transport_key", "null_transport", "handshakes_refused",
    };
    /* clang-format on */
    _Static_assert(sizeof names / sizeof names[0] == SOS_DROP_MAX, "a name per drop reason");
    return names[reason];
}

/*  Every drop is counted; its line is rate-limited per reason (sos_log_limit_t), because a
    stranger can send thousands of bad frames a second and each would be a line on disk. */
void
sos_node_drop(sos_node_t *self, sos_drop_t reason, const char *what)
{
    self->stats.drops[reason]++;
    char kind[48];
    snprintf(kind, sizeof kind, "dropped %s", s_drop_name(reason));
    if (sos_log_limit_line(&self->stats.drop_log[reason], kind))
        sos_log_warning("%s: %s", kind, what);
}

bool
sos_node_sender_key_ok(sos_node_t *self, const uint8_t sender[SOS_NODEID_BYTES])
{
    if (self->cfg.transport_null || self->conn_local)
        return true;
    /*  The conversion of an id to its CURVE key (a point decompression) cost a few per
        cent of a node's CPU at rest when made for every envelope: the keys of recent
        senders are remembered. An entry holds a function of its id, so nothing a peer
        sends can make it wrong. */
    char hex[SOS_NODEID_HEX + 1];
    sos_curve_cache_t *c = &self->curve_cache[sender[0] & (SOS_CURVE_CACHE - 1)];
    if (!*c->key || memcmp(c->id, sender, SOS_NODEID_BYTES) != 0) {
        uint8_t key[SOS_CURVE_KEY_BYTES];
        c->key[0] = '\0';
        if (sos_nodeid_to_curve(key, sender) == SOS_OK) {
            memcpy(c->id, sender, SOS_NODEID_BYTES);
            sos_hex(c->key, key, sizeof key);
        }
    }
    if (*c->key && sodium_memcmp(c->key, self->conn_key, SOS_NODEID_HEX) == 0)
        return true;
    char what[160];
    snprintf(what, sizeof what, "an envelope from %.16s... on a connection keyed %.16s...",
             sos_hex(hex, sender, SOS_NODEID_BYTES), *self->conn_key ? self->conn_key : "(none)");
    sos_node_drop(self, SOS_DROP_TRANSPORT_KEY, what);
    return false;
}

bool
sos_node_transport_auth(sos_node_t *self)
{
    return !self->cfg.transport_null && (self->conn_local || *self->conn_key);
}

/*  Summaries of drop and refusal lines held back in intervals now over (from the
    housekeeping timer). */
static void
s_drop_flush(sos_node_t *self)
{
    for (int i = 0; i < SOS_DROP_MAX; i++) {
        char kind[48];
        snprintf(kind, sizeof kind, "dropped %s", s_drop_name(i));
        sos_log_limit_summary(&self->stats.drop_log[i], kind);
    }
    for (int i = 0; i < SOS_MERGE_MAX; i++)
        sos_log_limit_summary(&self->stats.merge_log[i], "refused a record");
}

void
sos_node_pass_begin(sos_node_t *self)
{
    assert(!self->pass.active);
    self->pass.active = true;
    self->pass.durable = false;
    self->pass.wrote = false;
}

static void s_router_check(sos_node_t *self);

/*  Commit, then send what waited for the commit. A failed commit turns every client reply
    made in the pass into an `unavailable` error (whether it reported a write, which is now
    lost, or data read in the transaction, which may have seen such a write), so that no
    client is left waiting for a timeout; relayed replies go out as they are, and gossip
    replies are dropped (peers retry in a later round). */
void
sos_node_pass_end(sos_node_t *self)
{
    sos_pass_t *pass = &self->pass;
    assert(pass->active);
    bool committed = true;
    char why[96] = "";
    /*  Rooms the gossip merge gave to another owner in this pass: the rooms module drops
        its copy in the same transaction. */
    /*  The state the pass's sends held, into the transaction (sos_rooms.c, "Room state per
        pass"). */
    sos_rooms_forget_pass(self);
    for (const char *h = zlistx_first(pass->lost_rooms); h; h = zlistx_next(pass->lost_rooms))
        sos_rooms_lost(self, h);
    zlistx_purge(pass->lost_rooms);
    if (pass->txn) {
        /*  Durable unless everything in it can be had again from peers (sos_node_txn_lazy):
            a 100-node join on one disk otherwise waited for a flush per pass on every node */
        sos_rc rc = pass->durable ? sos_txn_commit(&pass->txn) : sos_txn_commit_lazy(&pass->txn);
        self->stats.commits++;
        if (!pass->durable)
            self->stats.commits_lazy++;
        if (rc) {
            committed = false;
            self->stats.commit_failures++;
            sos_gossip_dirty(self);
            sos_log_error("store: commit failed: %s; %zu replies fail", sos_strerror(rc),
                          pass->n_out);
            snprintf(why, sizeof why, "the node could not write to its store: %s",
                     sos_strerror(rc));
        }
    }
    for (size_t i = 0; i < pass->n_out; i++) {
        sos_out_t *o = &pass->out[i];
        if (!committed && o->kind == SOS_OUT_PEER) {
            /*  gossip replies are simply dropped */
        } else if (!committed && o->kind == SOS_OUT_CLIENT) {
            msgpack_sbuffer_clear(&self->buf2);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &self->buf2, msgpack_sbuffer_write);
            sos_reply_pack_error(&pk, o->req_id, SOS_E_UNAVAILABLE, why);
            /*  Release the reply's charge first: the error takes its place. */
            sos_budget_free(&o->data);
            uint8_t *err = s_out_alloc(self, o->sock, o->routing, self->buf2.data, self->buf2.size);
            if (err)
                s_out_send(self, o->sock, o->routing, &err, self->buf2.size);
        } else
            s_out_send(self, o->sock, o->routing, &o->data, o->size);
        zframe_destroy(&o->routing);
        sos_budget_free(&o->data);
    }
    pass->n_out = 0;
    sos_gossip_pass_end(self, committed);
    if (committed) {
        sos_gossip_push_rumors(self);
        sos_rooms_wake(self);
    }
    pass->n_rumors = 0;
    pass->rumor_from = NULL;
    zlistx_purge(pass->woken_rooms);
    pass->active = false;
    sos_node_dealers_check(self);
    if (self->router_sent) {
        self->router_sent = false;
        s_router_check(self);
    }
}

/*  What gossip reports for other modules, routed here so that gossip knows none of them. */
void
sos_node_route_reply(sos_node_t *self, const sos_peer_t *peer, const uint8_t *frame, size_t size)
{
    sos_rooms_on_forward_reply(self, peer, frame, size);
}

bool
sos_node_peer_busy(sos_node_t *self, const char *url)
{
    return sos_rooms_forwarding_to(self, url);
}

sos_rc
sos_node_publish(sos_node_t *self, sos_record_t *rec)
{
    return sos_gossip_publish(self, rec);
}

/* ------------------------------------------------------------- queries ---- */

static void
s_reply_queue(sos_node_t *self, zframe_t **routing_p, uint64_t req_id)
{
    sos_node_queue(self, self->router, routing_p, self->buf.data, self->buf.size, req_id,
                   SOS_OUT_CLIENT);
}

static void
s_reply_error(sos_node_t *self, zframe_t **routing_p, uint64_t req_id, const char *code,
              const char *message)
{
    msgpack_sbuffer_clear(&self->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->buf, msgpack_sbuffer_write);
    sos_reply_pack_error(&pk, req_id, code, message);
    s_reply_queue(self, routing_p, req_id);
}

static void
s_op_status(sos_node_t *self, zframe_t **routing_p, uint64_t req_id)
{
    uint64_t workers = 0, rooms = 0, origins = 0;
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (txn)
        sos_dir_counts(txn, &workers, &rooms, &origins);
    sos_stats_t *st = &self->stats;
    sos_gossip_status_t gs;
    sos_gossip_status(self, &gs);
    msgpack_sbuffer_clear(&self->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->buf, msgpack_sbuffer_write);
    sos_reply_pack_begin(&pk, req_id, "ok");
    msgpack_pack_map(&pk, 20);
    sos_mp_pack_kv_str(&pk, "node_id", self->id_hex);
    sos_mp_pack_kv_uint(&pk, "protocol", SOS_PROTO_VERSION);
    sos_mp_pack_kv_str(&pk, "transport", self->cfg.transport_null ? "null" : "curve");
    sos_mp_pack_kv_str(&pk, "http_url", self->cfg.http_advertise);
    sos_mp_pack_kv_str(&pk, "endpoint", self->cfg.advertise);
    sos_mp_pack_kv_str(&pk, "listen", self->cfg.listen);
    sos_mp_pack_kv_str(&pk, "version", SOS_VERSION);
    sos_mp_pack_kv_uint(&pk, "uptime_s", (sos_mono_ms() - self->start_mono) / 1000);
    sos_mp_pack_kv_uint(&pk, "workers", workers);
    sos_mp_pack_kv_uint(&pk, "rooms", rooms);
    sos_mp_pack_kv_uint(&pk, "origins", origins);
    sos_mp_pack_kv_uint(&pk, "peers", gs.peers);
    sos_mp_pack_kv_uint(&pk, "record_version", gs.record_version);
    sos_mp_pack_kv_uint(&pk, "gossip_interval_ms", self->cfg.gossip_interval_ms);
    sos_mp_pack_str(&pk, "connections");
    msgpack_pack_map(&pk, 3);
    sos_mp_pack_kv_uint(&pk, "open", self->gate ? sos_gate_connections(self->gate) : 0);
    sos_mp_pack_kv_uint(&pk, "max", self->max_connections);
    sos_mp_pack_kv_uint(&pk, "max_per_address", s_max_per_address(self));
    sos_mp_pack_str(&pk, "output");
    msgpack_pack_map(&pk, 4);
    sos_mp_pack_kv_uint(&pk, "bytes", sos_budget_total(self->budget));
    sos_mp_pack_kv_uint(&pk, "connections", sos_budget_connections(self->budget));
    sos_mp_pack_kv_uint(&pk, "connection_budget", SOS_OUT_CONN_BYTES);
    sos_mp_pack_kv_uint(&pk, "total_budget", SOS_OUT_TOTAL_BYTES);
    sos_mp_pack_str(&pk, "gossip");
    struct {
        const char *name;
        uint64_t value;
    } g[] = {
        {"rounds", st->rounds},
        {"exchanges_ok", st->exchanges_ok},
        {"exchanges_failed", st->exchanges_failed},
        {"bytes_in", st->bytes_in},
        {"bytes_out", st->bytes_out},
        {"frames_in", st->frames_in},
        {"frames_out", st->frames_out},
        {"rumors_in", st->rumors_in},
        {"rumors_out", st->rumors_out},
        {"records_sent", st->records_sent},
        {"records_accepted", st->merges[SOS_MERGE_NEW] + st->merges[SOS_MERGE_UPDATED]},
        {"workers_removed", st->workers_removed},
        {"exchanges_started", st->exchanges_started},
        {"round_started", st->round_started},
        {"suspects", st->suspects},
        {"probes", st->probes},
        {"suspicions", st->suspicions},
        {"suspicions_withheld", st->suspicions_withheld},
        {"suspected", st->suspected},
        {"removals_heard", st->removals_heard},
        {"digests_by_bucket", st->digests_by_bucket},
        {"digests_answered", st->digests_answered},
        {"digests_refused", st->digests_refused},
        {"digests_pieces", st->digests_pieces},
        {"refutations", st->refutations},
        {"health_late", st->health_late},
        {"health", gs.health},
        {"rtt_ms", gs.rtt_ms},
        {"rttvar_ms", gs.rttvar_ms},
        {"refute_ms", gs.refute_ms},
        {"probes_sent", st->probes_sent},
        {"probes_answered", st->probes_answered},
        {"probe_saves", st->probe_saves},
        {"down_again", st->down_again},
        {"probes_helped", st->probes_helped},
        {"probes_refused", st->probes_refused},
        {"requests", st->requests},
        {"forwards", st->forwards},
        {"forward_failures", st->forward_failures},
        {"commits", st->commits},
        {"commits_lazy", st->commits_lazy},
        {"commit_failures", st->commit_failures},
        {"sends", st->sends},
        {"send_dups", st->send_dups},
        {"msgid_tables_dropped", st->msgid_tables_dropped},
        {"connections_open", gs.connections_open},
        {"connections_view", gs.connections_view},
        {"connections_short", gs.connections_short},
        {"connections_short_max", gs.connections_short_max},
        {"view_size", gs.view_size},
        {"view_cap", gs.view_cap},
        {"view_joined", st->view_joined},
        {"view_left", st->view_left},
        {"view_renewed", st->view_renewed},
        {"short_opened", st->short_opened},
        {"short_closed", st->short_closed},
        {"short_refused", st->short_refused},
        {"exchanges_outside", st->exchanges_outside},
        {"suspicion_pushes", st->suspicion_pushes},
        {"rounds_at_rest", st->rounds_at_rest},
        {"rumors_deferred", st->rumors_deferred},
        {"exchanges_deferred", st->exchanges_deferred},
        {"replies_late", st->replies_late},
        {"connections_closed", st->connections_closed},
        {"connections_lost", st->connections_lost},
        {"connections_capped", st->connections_capped},
        {"sockets_refused", st->sockets_refused},
        {"gaps", gs.gaps},
        {"gaps_dropped", st->gaps_dropped},
        {"signature_verifications", st->verifications},
        {"envelopes_unsigned", st->envelopes_unsigned},
        {"verify_skipped", st->verify_skipped},
        {"verify_refused", st->verify_refused},
        {"workers_probation", gs.workers_probation},
        {"probation_refused", st->probation_refused},
        {"probation_cap", gs.probation_cap},
        {"probation_samples", gs.probation_samples},
        {"probation_answered", gs.probation_answered},
        {"probation_share_pct", gs.probation_share_pct},
        {"room_conflicts", st->merges[SOS_MERGE_CONTESTED]},
        {"refused_rate", st->refused_rate},
        {"refused_pending", st->refused_pending},
        {"members_idle", st->members_idle},
        {"refused_create", st->refused_create},
        {"refused_full", st->refused_full},
    };
    size_t n = sizeof g / sizeof g[0];
    msgpack_pack_map(&pk, n + SOS_MERGE_MAX);
    for (size_t i = 0; i < n; i++)
        sos_mp_pack_kv_uint(&pk, g[i].name, g[i].value);
    for (int i = 0; i < SOS_MERGE_MAX; i++) {
        char key[40];
        snprintf(key, sizeof key, "merge_%s", sos_merge_result_name(i));
        sos_mp_pack_kv_uint(&pk, key, st->merges[i]);
    }
    sos_mp_pack_str(&pk, "drops");
    msgpack_pack_map(&pk, SOS_DROP_MAX);
    for (int i = 0; i < SOS_DROP_MAX; i++)
        sos_mp_pack_kv_uint(&pk, s_drop_name(i), st->drops[i]);
    sos_mp_pack_str(&pk, "http");
    sos_http_pack_stats(self->http, &pk);
    sos_mp_pack_str(&pk, "gossip_exchange_ms");
    msgpack_pack_array(&pk, 2 + SOS_EXCHANGE_BUCKETS);
    msgpack_pack_uint64(&pk, st->exchange_count);
    msgpack_pack_uint64(&pk, st->exchange_sum_ms);
    for (int i = 0; i < SOS_EXCHANGE_BUCKETS; i++)
        msgpack_pack_uint64(&pk, st->exchange_hist[i]);
    s_reply_queue(self, routing_p, req_id);
}

/*  The workers reply is one frame: past this many bytes (estimated while counting) the list
    stops, and the reply says it is truncated, rather than pass the frame ceiling that
    clients enforce (4,096 workers with long urls would). */
#define SOS_WORKERS_REPLY_BYTES (1024 * 1024)

typedef struct {
    sos_node_t *node;
    msgpack_packer *pk;
    uint32_t count;
    uint32_t limit; /* when writing: the count the counting pass reached */
    size_t bytes;
    bool counting;
    bool truncated;
} s_list_t;

static void
s_pack_worker(s_list_t *l, const char *hex, const char *url, const char *http_url, uint64_t version,
              const sos_worker_local_t *local, const sos_peer_t *peer)
{
    msgpack_packer *pk = l->pk;
    msgpack_pack_map(pk, 8);
    sos_mp_pack_kv_str(pk, "node_id", hex);
    sos_mp_pack_kv_str(pk, "url", url);
    sos_mp_pack_kv_str(pk, "http_url", http_url);
    /*  The live figures are in memory; the store has them as of the last flush. */
    sos_mp_pack_kv_uint(pk, "last_seen", peer ? peer->last_seen : local->last_seen);
    sos_mp_pack_kv_uint(pk, "last_ok", peer ? peer->last_ok : local->last_ok);
    sos_mp_pack_kv_uint(pk, "fail_count", peer ? peer->fd.fail_count : local->fail_count);
    sos_mp_pack_str(pk, "is_genesis");
    if (peer ? peer->is_genesis : local->is_genesis)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    sos_mp_pack_kv_uint(pk, "version", version);
}

static int
s_each_worker(void *arg, const sos_record_t *rec, const sos_worker_local_t *local)
{
    s_list_t *l = arg;
    if (l->counting) {
        size_t bytes = strlen(rec->url) + SOS_NODEID_HEX + 128;
        if (l->bytes + bytes > SOS_WORKERS_REPLY_BYTES) {
            l->truncated = true;
            return 1;
        }
        l->bytes += bytes;
        l->count++;
        return 0;
    }
    if (l->count == l->limit)
        return 1;
    l->count++;
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, rec->origin, SOS_NODEID_BYTES);
    sos_peer_t *peer = sos_gossip_peer_find(l->node, hex);
    s_pack_worker(l, hex, rec->url, rec->http_url, rec->version, local, peer);
    return 0;
}

/*  Genesis nodes are always listed, also before their first answer (when only their address,
    and perhaps a pinned id, is known). */
typedef struct {
    s_list_t *l; /* NULL: count only */
    uint32_t n;
} s_genesis_t;

static int
s_genesis_each(void *arg, sos_peer_t *p)
{
    s_genesis_t *g = arg;
    if (!p->is_genesis || p->in_dir)
        return 0;
    g->n++;
    if (g->l) {
        sos_worker_local_t local = {0};
        s_pack_worker(g->l, p->pinned ? p->hex : "", p->url, "", 0, &local, p);
    }
    return 0;
}

static uint32_t
s_pending_genesis(sos_node_t *self, s_list_t *l)
{
    s_genesis_t g = {.l = l};
    sos_gossip_foreach_peer(self, s_genesis_each, &g);
    return g.n;
}

static void
s_op_workers(sos_node_t *self, zframe_t **routing_p, uint64_t req_id)
{
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (!txn) {
        s_reply_error(self, routing_p, req_id, SOS_E_UNAVAILABLE, "store unavailable");
        return;
    }
    msgpack_sbuffer_clear(&self->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->buf, msgpack_sbuffer_write);
    s_list_t l = {.node = self, .pk = &pk, .counting = true};
    sos_dir_foreach_worker(txn, s_each_worker, &l);
    uint32_t n = l.count + s_pending_genesis(self, NULL);
    sos_reply_pack_begin(&pk, req_id, "ok");
    msgpack_pack_map(&pk, l.truncated ? 2 : 1);
    if (l.truncated) {
        sos_mp_pack_str(&pk, "truncated");
        msgpack_pack_true(&pk);
    }
    sos_mp_pack_str(&pk, "workers");
    msgpack_pack_array(&pk, n);
    l.counting = false;
    l.limit = l.count;
    l.count = 0;
    sos_rc rc = sos_dir_foreach_worker(txn, s_each_worker, &l);
    s_pending_genesis(self, &l);
    if (rc || l.count + s_pending_genesis(self, NULL) != n) {
        s_reply_error(self, routing_p, req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    s_reply_queue(self, routing_p, req_id);
}

typedef struct {
    msgpack_packer *pk;
    sos_txn_t *txn;
    uint32_t limit;
    uint32_t count;
    bool counting;
    char last[SOS_ROOMHASH_LEN + 1];
} s_rooms_t;

static int
s_each_room(void *arg, const sos_record_t *rec)
{
    s_rooms_t *l = arg;
    if (l->count == l->limit)
        return 1;
    l->count++;
    memcpy(l->last, rec->room_hash, sizeof l->last);
    if (l->counting)
        return 0;
    char owner[SOS_NODEID_HEX + 1];
    sos_hex(owner, rec->origin, SOS_NODEID_BYTES);
    msgpack_packer *pk = l->pk;
    /*  contested: this node refused a conflicting claim on the hash (see sos_merge.h). */
    sos_room_local_t local = {0};
    sos_dir_room_local_get(l->txn, rec->room_hash, &local);
    msgpack_pack_map(pk, 9);
    sos_mp_pack_kv_str(pk, "room_hash", rec->room_hash);
    char emojis[SOS_EMOJIS_TEXT_MAX + 1];
    sos_record_emojis_join(rec, emojis, sizeof emojis);
    sos_mp_pack_kv_str(pk, "emojis", emojis);
    /*  The creator's list as it was given (emojis is the list joined). */
    sos_mp_pack_str(pk, "emoji_list");
    msgpack_pack_array(pk, rec->n_emojis);
    for (uint32_t i = 0; i < rec->n_emojis; i++)
        sos_mp_pack_str(pk, rec->emojis[i]);
    sos_mp_pack_kv_str(pk, "description", rec->description);
    sos_mp_pack_kv_uint(pk, "created_at", rec->created_at);
    sos_mp_pack_kv_uint(pk, "expires_at", rec->expires_at);
    sos_mp_pack_kv_str(pk, "worker", rec->url);
    sos_mp_pack_kv_str(pk, "owner", owner);
    sos_mp_pack_str(pk, "contested");
    if (local.contested)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    return 0;
}

static void
s_op_rooms(sos_node_t *self, zframe_t **routing_p, const sos_request_t *req)
{
    const char *after = NULL;
    char after_buf[SOS_ROOMHASH_LEN + 1];
    uint64_t limit = SOS_ROOMS_PAGE_MAX;
    const msgpack_object *o = sos_mp_map_get(req->args, "after");
    if (o) {
        if (!sos_mp_str_copy(o, after_buf, SOS_ROOMHASH_LEN) ||
            !sos_room_hash_valid(after_buf, strlen(after_buf))) {
            s_reply_error(self, routing_p, req->req_id, SOS_E_INVALID_ROOM_HASH,
                          "after must be a room hash");
            return;
        }
        after = after_buf;
    }
    o = sos_mp_map_get(req->args, "limit");
    if (o && (!sos_mp_uint(o, &limit) || limit == 0)) {
        s_reply_error(self, routing_p, req->req_id, SOS_E_BAD_REQUEST, "limit must be >= 1");
        return;
    }
    if (limit > SOS_ROOMS_PAGE_MAX)
        limit = SOS_ROOMS_PAGE_MAX;
    sos_txn_t *txn = sos_node_txn_lazy(self);
    if (!txn) {
        s_reply_error(self, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store unavailable");
        return;
    }
    msgpack_sbuffer_clear(&self->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->buf, msgpack_sbuffer_write);
    /*  Count the page first (one more than the limit tells whether a next page exists). */
    s_rooms_t l = {.pk = &pk, .limit = (uint32_t)limit + 1, .counting = true};
    sos_dir_foreach_room(txn, after, s_each_room, &l);
    bool more = l.count > limit;
    uint32_t n = more ? (uint32_t)limit : l.count;
    sos_reply_pack_begin(&pk, req->req_id, "ok");
    msgpack_pack_map(&pk, more ? 2 : 1);
    sos_mp_pack_str(&pk, "rooms");
    msgpack_pack_array(&pk, n);
    s_rooms_t w = {.pk = &pk, .txn = txn, .limit = n};
    sos_rc rc = sos_dir_foreach_room(txn, after, s_each_room, &w);
    if (rc || w.count != n) {
        s_reply_error(self, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    if (more)
        sos_mp_pack_kv_str(&pk, "next", w.last);
    s_reply_queue(self, routing_p, req->req_id);
}

/* ------------------------------------------------------------ reactor ---- */

static void
s_on_request(sos_node_t *self, zframe_t **routing_p, const char *peer_address, bool local,
             const uint8_t *frame, size_t size)
{
    sos_mp_doc_t doc;
    sos_request_t req;
    sos_rc rc = sos_request_decode(&req, &doc, frame, size);
    if (rc) {
        sos_node_drop(self, SOS_DROP_BAD_REQUEST, "client request does not decode");
        /*  Answer if at least the request id can be read, so that the client is not left
            waiting for a timeout. */
        const msgpack_object *items;
        uint32_t count;
        uint64_t req_id;
        if (doc.root && sos_mp_array(doc.root, &items, &count, 16) && count >= 2 &&
            sos_mp_uint(&items[1], &req_id))
            s_reply_error(self, routing_p, req_id, SOS_E_BAD_REQUEST,
                          "the request is not [2, req_id, op, args, flags]");
        sos_mp_doc_release(&doc);
        zframe_destroy(routing_p);
        return;
    }
    self->stats.requests++;
    char client[64];
    const msgpack_object *c = local ? sos_mp_map_get(req.args, "client") : NULL;
    if (c && sos_mp_str_copy(c, client, sizeof client - 1))
        peer_address = client;
    if (!streq(req.op, "send"))
        sos_rooms_forget_pass(self); /* no request reads a room's state held by sends */
    if (streq(req.op, "status"))
        s_op_status(self, routing_p, req.req_id);
    else if (streq(req.op, "workers"))
        s_op_workers(self, routing_p, req.req_id);
    else if (streq(req.op, "rooms"))
        s_op_rooms(self, routing_p, &req);
    else
        sos_rooms_on_request(self, routing_p, peer_address, &req);
    sos_mp_doc_release(&doc);
    zframe_destroy(routing_p);
}

/*  Take one multipart message from the ROUTER without blocking: [routing id, frame]. Returns
    1 if one was taken, 0 if none was waiting. */
static int
s_router_take(sos_node_t *self)
{
    void *h = zsock_resolve(self->router);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, h, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        return 0;
    }
    zmq_msg_init(&body);
    if (!zmq_msg_more(&id) || zmq_msg_recv(&body, h, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        sos_node_drop(self, SOS_DROP_MALFORMED, "message without a body");
        return 1;
    }
    bool extra = false;
    while (zmq_msg_more(&body)) {
        /*  Our frames are single-part: drain and drop the rest of a multipart message. */
        zmq_msg_t rest;
        zmq_msg_init(&rest);
        int more = zmq_msg_recv(&rest, h, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&rest);
        zmq_msg_close(&rest);
        extra = true;
        if (!more)
            break;
    }
    size_t size = zmq_msg_size(&body);
    const uint8_t *data = zmq_msg_data(&body);
    self->stats.bytes_in += size;
    self->stats.frames_in++;
    zframe_t *routing = zframe_new(zmq_msg_data(&id), zmq_msg_size(&id));
    sos_frame_kind_t kind;
    if (extra)
        sos_node_drop(self, SOS_DROP_MALFORMED, "multipart message");
    else if (size > SOS_FRAME_MAX)
        sos_node_drop(self, SOS_DROP_OVERSIZED, "frame over the size ceiling");
    else if (sos_frame_kind(data, size, &kind) != SOS_OK)
        sos_node_drop(self, SOS_DROP_MALFORMED, "frame of unknown kind");
    else if (kind == SOS_FRAME_ENVELOPE) {
        /*  The client key the gate gave the connection as its User-Id (sos_gate.c). */
        const char *key = zmq_msg_gets(&body, "User-Id");
        snprintf(self->conn_key, sizeof self->conn_key, "%s",
                 key && strlen(key) == SOS_NODEID_HEX ? key : "");
        /*  No Peer-Address: an inproc connection, from this process, which runs no
            mechanism (the HTTP front end, or a test's or a fuzzer's harness): trusted. */
        self->conn_local = !zmq_msg_gets(&body, "Peer-Address");
        sos_rooms_forget_pass(self); /* a merge may change a room the pass's sends read */
        sos_gossip_on_request(self, &routing, data, size);
        *self->conn_key = '\0';
        self->conn_local = false;
    } else if (kind == SOS_FRAME_REQUEST) {
        const char *address = zmq_msg_gets(&body, "Peer-Address");
        /*  The in-process HTTP front end: no Peer-Address (inproc) and the secret routing id.
            Its requests carry the HTTP client's address in the `client` argument. */
        bool local = !address && zmq_msg_size(&id) == sizeof self->local_id &&
                     sodium_memcmp(zmq_msg_data(&id), self->local_id, sizeof self->local_id) == 0;
        s_on_request(self, &routing, address ? address : "", local, data, size);
    } else
        sos_node_drop(self, SOS_DROP_UNEXPECTED, "reply frame sent to the public endpoint");
    zframe_destroy(&routing);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return 1;
}

/*  The ROUTER is not one of zloop's zsock readers but a plain descriptor, its ZMQ_FD. zmq_poll
    asks every zsock it polls for ZMQ_EVENTS before and after it sleeps, and each ask costs
    libzmq a getpid and a poll(2) on the socket's mailbox, on every wake-up of the reactor,
    which the ROUTER causes once per request or batch. Its ZMQ_FD costs nothing to poll,
    but it is edge-triggered: it says that libzmq has commands for the socket (such as "a pipe
    has messages"), and any send, receive or ZMQ_EVENTS on the socket may take that signal
    without the reactor seeing it. Hence the rules:
    - a wake-up drains the ROUTER until a receive fails, within the pass's budgets; a pass cut
      short by them runs again from a zero-delay timer, so that timers and other sockets get
      their turn between passes as before;
    - whatever sent on the ROUTER since (the pass's replies, long polls answered) asks
      ZMQ_EVENTS once at the end of its pass (s_router_check), and a pass runs again if
      input is waiting. */
static int
s_recv_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    sos_node_t *self = arg;
    sos_node_pass_begin(self);
    /*  Replies leave when the pass ends, and peers' replies to our exchanges wait for it:
        some frames cost milliseconds (a SYNC_ACK signs the whole digest), and a stranger may
        send hundreds of them, so a pass also ends after a time budget. libzmq queues the
        ROUTER's peers fairly, so the next pass serves every connection again. */
    uint64_t start = sos_mono_ms();
    bool drained = false;
    for (int i = 0; i < SOS_PASS_MAX_FRAMES && !drained; i++) {
        if (!s_router_take(self))
            drained = true;
        else if (sos_mono_ms() - start >= SOS_PASS_MAX_MS)
            break;
    }
    /*  Drained: libzmq had no more commands for the ROUTER after the last receive. Not
        drained: input is waiting, which s_router_check finds once the replies are out. */
    self->router_sent = !drained;
    sos_node_pass_end(self);
    return 0;
}

static int
s_router_again_fn(zloop_t *loop, int timer_id, void *arg)
{
    sos_node_t *self = arg;
    self->router_again = -1;
    return s_recv_router(loop, self->router, self);
}

/*  Run a pass from the next turn of the loop, unless one is due already. */
static void
s_router_again(sos_node_t *self)
{
    s_soon(self, &self->router_again, s_router_again_fn, "the public endpoint");
}

static void
s_router_check(sos_node_t *self)
{
    if (zsock_events(self->router) & ZMQ_POLLIN)
        s_router_again(self);
}

static int
s_router_fd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    sos_node_t *self = arg;
    return s_recv_router(loop, self->router, self);
}

/*  The gate's sockets are watched through their ZMQ_FDs too (why: see s_recv_router). Both
    handlers are safe with an edge-triggered descriptor: the monitor's drains until a receive
    fails and nothing sends on it; the ZAP handler's asks ZMQ_EVENTS after its last reply. */
/*  A node of protocol version 1 speaks the NULL mechanism, which libzmq refuses at
    the greeting on a CURVE socket: say why in the log, naming the versions, so that an
    operator of a mixed network knows what to upgrade. */
static void
s_mechanism_refusals(sos_node_t *self)
{
    uint32_t n = sos_gate_take_mechanism_refusals(self->gate);
    for (uint32_t i = 0; i < n; i++)
        sos_node_drop(self, SOS_DROP_NULL_TRANSPORT,
                      self->cfg.transport_null
                          ? "a connection speaking CURVE refused: this node runs the test-only "
                            "NULL transport"
                          : "a connection speaking the NULL transport (protocol version 1) "
                            "refused: this node speaks protocol version 2, CURVE only");
}

static int
s_recv_monitor(zloop_t *loop, zsock_t *sock, void *arg)
{
    sos_node_t *self = arg;
    sos_gate_on_monitor(self->gate);
    s_mechanism_refusals(self);
    return 0;
}

static int
s_recv_zap(zloop_t *loop, zsock_t *sock, void *arg)
{
    sos_node_t *self = arg;
    const char *address;
    uint32_t refused = sos_gate_on_zap(self->gate, &address);
    for (uint32_t i = 0; i < refused; i++) {
        char what[128];
        snprintf(what, sizeof what, "a connection from %s past the cap", address);
        sos_node_drop(self, SOS_DROP_CONNECTION_REFUSED, what);
    }
    refused = sos_gate_take_handshake_refusals(self->gate);
    for (uint32_t i = 0; i < refused; i++) {
        char what[128];
        snprintf(what, sizeof what, "a CURVE handshake from %s past the handshake rate", address);
        sos_node_drop(self, SOS_DROP_HANDSHAKE_REFUSED, what);
    }
    s_mechanism_refusals(self);
    return 0;
}

static int
s_monitor_fd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    sos_node_t *self = arg;
    return s_recv_monitor(loop, sos_gate_monitor(self->gate), self);
}

static int
s_zap_fd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    sos_node_t *self = arg;
    return s_recv_zap(loop, sos_gate_zap(self->gate), self);
}

static int
s_on_round(zloop_t *loop, int timer_id, void *arg)
{
    sos_node_t *self = arg;
    sos_node_pass_begin(self);
    sos_gossip_round(self);
    sos_node_pass_end(self);
    return 0;
}

static int
s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    sos_node_t *self = arg;
    sos_node_pass_begin(self);
    sos_gossip_tick(self);
    sos_rooms_tick(self);
    sos_node_pass_end(self);
    return 0;
}

static int
s_on_housekeeping(zloop_t *loop, int timer_id, void *arg)
{
    sos_node_t *self = arg;
    /*  The monitor's descriptor may miss a wake-up while no handshake reaches ZAP (only
        refused mechanisms): take its events once a second as well. */
    if (self->gate)
        s_recv_monitor(loop, NULL, self);
    sos_node_pass_begin(self);
    sos_rooms_expire(self);
    sos_gossip_flush_stats(self);
    sos_budget_sweep(self->budget);
    s_drop_flush(self);
    sos_txn_t *txn = sos_node_txn_lazy(self);
    uint32_t removed = 0;
    if (txn && sos_dir_tombstone_sweep(txn, sos_now_ms(), &removed) == SOS_OK && removed) {
        sos_gossip_dirty(self);
        sos_log_info("%u tombstones expired", removed);
    }
    sos_node_pass_end(self);
    return 0;
}

/*  The open DEALERs of the peers (sos_gossip_foreach_peer): counted, or gathered into socks
    up to cap. */
typedef struct {
    zsock_t **socks;
    size_t cap;
    size_t n;
} s_socks_t;

static int
s_count_dealer(void *arg, sos_peer_t *p)
{
    s_socks_t *d = arg;
    if (p->dealer)
        d->n++;
    return 0;
}

static int
s_add_dealer(void *arg, sos_peer_t *p)
{
    s_socks_t *d = arg;
    if (d->n == d->cap)
        return 1;
    if (p->dealer)
        d->socks[d->n++] = p->dealer;
    return 0;
}

/*  See sos_node.h. The first ready socket only: handling it may destroy peers, and with
    them the sockets polled. */
int
sos_node_step(sos_node_t *self, sos_node_step_t step, int timeout_ms)
{
    switch (step) {
    case SOS_STEP_ROUND:
        s_on_round(self->loop, 0, self);
        return 1;
    case SOS_STEP_TICK:
        s_on_tick(self->loop, 0, self);
        return 1;
    case SOS_STEP_HOUSEKEEPING:
        s_on_housekeeping(self->loop, 0, self);
        return 1;
    case SOS_STEP_INPUT:
        break;
    }
    s_socks_t dealers = {0};
    sos_gossip_foreach_peer(self, s_count_dealer, &dealers);
    size_t cap = 3 + dealers.n, n = 0;
    zmq_pollitem_t *items = calloc(cap, sizeof *items);
    zsock_t **socks = calloc(cap, sizeof *socks);
    int handled = -1;
    if (!items || !socks)
        goto done;
    socks[n++] = self->router;
    if (self->gate) {
        socks[n++] = sos_gate_zap(self->gate);
        socks[n++] = sos_gate_monitor(self->gate);
    }
    dealers = (s_socks_t){.socks = socks + n, .cap = cap - n};
    sos_gossip_foreach_peer(self, s_add_dealer, &dealers);
    n += dealers.n;
    for (size_t i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t){.socket = zsock_resolve(socks[i]), .events = ZMQ_POLLIN};
    if (zmq_poll(items, (int)n, timeout_ms) < 0)
        goto done;
    handled = 0;
    for (size_t i = 0; i < n && !handled; i++) {
        if (!(items[i].revents & ZMQ_POLLIN))
            continue;
        handled = 1;
        if (socks[i] == self->router)
            s_recv_router(self->loop, socks[i], self);
        else if (self->gate && socks[i] == sos_gate_zap(self->gate))
            s_recv_zap(self->loop, socks[i], self);
        else if (self->gate && socks[i] == sos_gate_monitor(self->gate))
            s_recv_monitor(self->loop, socks[i], self);
        else
            sos_gossip_on_dealer(self, socks[i]);
    }
done:
    free(items);
    free(socks);
    return handled;
}

/* ------------------------------------------------------------ lifecycle ---- */

/*  Each connection holds a file descriptor; the DEALERs to peers, the store and the ZAP and
    monitor sockets need theirs too. So the cap on connections is at most half of the open
    files limit (which sosnode raises to its hard limit at start). */
static void
s_limit_connections(sos_node_t *self)
{
    self->max_connections = self->cfg.max_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t fit = rl.rlim_cur / 2;
    if (fit < self->max_connections) {
        sos_log_notice("at most %llu connections, half of the open files limit %llu",
                       (unsigned long long)fit, (unsigned long long)rl.rlim_cur);
        self->max_connections = fit ? (uint32_t)fit : 1;
    }
}

static sos_rc
s_open(sos_node_t *self, char *why, size_t why_size)
{
    sos_rc rc = sos_store_open(&self->store, self->cfg.data_dir, self->cfg.map_size);
    if (rc) {
        snprintf(why, why_size, "cannot open the store in %s: %s", self->cfg.data_dir,
                 sos_strerror(rc));
        sos_log_error("%s", why);
        return rc;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/identity.key", self->cfg.data_dir);
    bool created = false;
    rc = sos_identity_load_or_create(&self->id, path, &created);
    if (rc) {
        snprintf(why, why_size, "cannot load the identity %s: %s", path, sos_strerror(rc));
        sos_log_error("%s", why);
        return rc;
    }
    sos_hex(self->id_hex, self->id.pk, SOS_NODEID_BYTES);
    sos_log_notice("node %s (%s identity) at %s", self->id_hex, created ? "new" : "existing",
                   self->cfg.advertise);
    return SOS_OK;
}

sos_node_t *
sos_node_new(const sos_config_t *cfg, sos_rc *rc_p, char *why, size_t why_size)
{
    char ignored[8];
    if (!why || !why_size) {
        why = ignored;
        why_size = sizeof ignored;
    }
    *why = '\0';
    sos_rc rc = SOS_ERR_NOMEM;
    sos_node_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    self->cfg = *cfg;
    self->router_again = -1;
    self->dealers_again = -1;
    self->start_mono = sos_mono_ms();
    self->start_floor_ms = sos_now_ms(); /* before the bind: see sos_gossip_start */
    msgpack_sbuffer_init(&self->buf);
    msgpack_sbuffer_init(&self->buf2);
    self->gossip = sos_gossip_new(self);
    self->budget = sos_budget_new(SOS_OUT_CONN_BYTES, SOS_OUT_TOTAL_BYTES);
    self->pass.woken_rooms = zlistx_new();
    self->pass.lost_rooms = zlistx_new();
    if (!self->gossip || !self->budget || !self->pass.woken_rooms || !self->pass.lost_rooms)
        goto fail;
    zlistx_set_destructor(self->pass.lost_rooms, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_duplicator(self->pass.lost_rooms, (zlistx_duplicator_fn *)strdup);
    zlistx_set_destructor(self->pass.woken_rooms, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_duplicator(self->pass.woken_rooms, (zlistx_duplicator_fn *)strdup);
    zlistx_set_comparator(self->pass.woken_rooms, (zlistx_comparator_fn *)strcmp);

    rc = s_open(self, why, why_size);
    if (rc)
        goto fail;
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->router) {
        rc = SOS_ERR_IO;
        goto fail;
    }
    zsock_set_linger(self->router, 0);
    /*  libzmq disconnects a peer that sends more than this; our own ceiling, with a counter,
        is SOS_FRAME_MAX below it. */
    zsock_set_maxmsgsize(self->router, 2 * SOS_FRAME_MAX);
    /*  What a connection that never reads can pin is bounded in bytes by the output budget
        (SOS_OUT_CONN_BYTES, sos_budget.c); the high-water mark bounds the count of frames on
        top, and ROUTER_MANDATORY makes a full pipe say EAGAIN, which is counted, instead of
        dropping the frame in silence. */
    zsock_set_sndhwm(self->router, SOS_ROUTER_SNDHWM);
    /*  Input is bounded per connection too: libzmq reads a connection's frames ahead into
        its pipe up to this many, each at most the ceiling above, and then leaves them to
        TCP's flow control: 100 x 2.25 MiB = 225 MiB at most for one connection that sends
        costly frames faster than the node verifies them (10,000 allowed 22 GiB). Not
        fewer: a forwarding node multiplexes all its clients on one connection, and what
        one pass reads of it is one group commit (32 cut forwarded sends per second). */
    zsock_set_rcvhwm(self->router, 100);
    zsock_set_router_mandatory(self->router, 1);
    /*  A connection counts against the caps from its accept until it closes; one that
        never completes the handshake is closed after 10 s instead of libzmq's 30 s. */
    zsock_set_handshake_ivl(self->router, 10000);
    s_limit_connections(self);
    const char *gate_why = NULL;
    self->gate =
        sos_gate_new(self->router, self->max_connections, s_max_per_address(self), &gate_why);
    if (!self->gate)
        sos_log_warning("no cap on connections: %s", gate_why);
    /*  Every TCP connection to the node is CURVE, its server key the one derived from the
        node id (PROTOCOL.md, "Transport"). The inproc endpoint of the HTTP front end below
        stays clear: libzmq runs no mechanism on inproc, whose bytes never leave the
        process, and the front end is told apart by its secret routing id instead. */
    if (!cfg->transport_null) {
        uint8_t pk[SOS_CURVE_KEY_BYTES], sk[SOS_CURVE_KEY_BYTES];
        if (sos_identity_curve_keys(pk, sk, &self->id) != SOS_OK) {
            snprintf(why, why_size, "the identity gives no CURVE key");
            rc = SOS_ERR_CRYPTO;
            goto fail;
        }
        zsock_set_curve_server(self->router, 1);
        zsock_set_curve_publickey_bin(self->router, pk);
        zsock_set_curve_secretkey_bin(self->router, sk);
        sodium_memzero(sk, sizeof sk);
        if (self->gate)
            /*  --rate-limit off lifts the rate per address (see s_max_per_address),
                not the total. */
            sos_gate_set_curve(self->gate, true,
                               cfg->rate_limit ? cfg->max_handshakes : cfg->max_handshakes_total,
                               cfg->max_handshakes_total);
    } else
        sos_log_warning("the NULL transport (test only): nothing this node sends is encrypted, "
                        "and it cannot talk to CURVE nodes");
    if (zsock_bind(self->router, "%s", cfg->listen) < 0) {
        snprintf(why, why_size, "cannot bind %s: %s", cfg->listen, zmq_strerror(zmq_errno()));
        sos_log_error("%s", why);
        rc = SOS_ERR_IO;
        goto fail;
    }
    /*  The in-process endpoint of the HTTP front end, unique per node in the process. */
    randombytes_buf(self->local_id, sizeof self->local_id);
    char tag[17];
    sos_hex(tag, self->local_id, 8);
    snprintf(self->inproc, sizeof self->inproc, "inproc://sosnode-%s", tag);
    if (zsock_bind(self->router, "%s", self->inproc) < 0) {
        snprintf(why, why_size, "cannot bind %s", self->inproc);
        rc = SOS_ERR_IO;
        goto fail;
    }
    self->loop = zloop_new();
    if (!self->loop)
        goto fail;
    self->rooms = sos_rooms_new(self);
    if (!self->rooms)
        goto fail;
    rc = sos_gossip_start(self);
    if (rc)
        goto fail;
    if (cfg->n_http) {
        self->http = sos_http_new(&self->cfg, self->loop, self->inproc, self->local_id,
                                  sizeof self->local_id, self->id_hex, why, why_size);
        if (!self->http) {
            rc = SOS_ERR_IO;
            goto fail;
        }
    }
    zmq_pollitem_t router_item = {NULL, zsock_fd(self->router), ZMQ_POLLIN, 0};
    if (zloop_poller(self->loop, &router_item, s_router_fd, self) < 0)
        goto fail;
    zloop_poller_set_tolerant(self->loop, &router_item);
    s_router_again(self); /* what came in before the loop watched the descriptor */
    if (self->gate) {
        zmq_pollitem_t monitor_item = {NULL, zsock_fd(sos_gate_monitor(self->gate)), ZMQ_POLLIN, 0};
        zmq_pollitem_t zap_item = {NULL, zsock_fd(sos_gate_zap(self->gate)), ZMQ_POLLIN, 0};
        if (zloop_poller(self->loop, &monitor_item, s_monitor_fd, self) < 0 ||
            zloop_poller(self->loop, &zap_item, s_zap_fd, self) < 0)
            goto fail;
        zloop_poller_set_tolerant(self->loop, &monitor_item);
        zloop_poller_set_tolerant(self->loop, &zap_item);
        s_zap_fd(self->loop, NULL, self); /* what came before the loop watched them */
    }
    self->round_timer = zloop_timer(self->loop, cfg->gossip_interval_ms, 0, s_on_round, self);
    size_t tick = cfg->gossip_interval_ms / 4;
    tick = tick < 20 ? 20 : tick > 500 ? 500 : tick;
    zloop_timer(self->loop, tick, 0, s_on_tick, self);
    zloop_timer(self->loop, 1000, 0, s_on_housekeeping, self);
    *rc_p = SOS_OK;
    return self;
fail:
    *rc_p = rc ? rc : SOS_ERR_NOMEM;
    sos_node_destroy(&self);
    return NULL;
}

int
sos_node_run(sos_node_t *self)
{
    /*  The first round at once: a new node announces itself to the genesis nodes. */
    sos_node_pass_begin(self);
    sos_gossip_round(self);
    sos_node_pass_end(self);
    zloop_start(self->loop);
    sos_log_notice("stopping: telling peers and closing the store");
    sos_node_pass_begin(self);
    sos_gossip_stop(self);
    sos_gossip_flush_stats(self);
    sos_node_pass_end(self);
    return 0;
}

void
sos_node_destroy(sos_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_node_t *self = *self_p;
    sos_http_destroy(&self->http);
    sos_rooms_destroy(&self->rooms);
    zloop_destroy(&self->loop);
    sos_gossip_destroy(&self->gossip);
    sos_gate_destroy(&self->gate); /* before the router it watches: see sos_gate.h */
    zsock_destroy(&self->router);
    if (self->pass.txn)
        sos_txn_abort(&self->pass.txn);
    zlistx_destroy(&self->pass.woken_rooms);
    zlistx_destroy(&self->pass.lost_rooms);
    for (size_t i = 0; i < self->pass.n_out; i++) {
        zframe_destroy(&self->pass.out[i].routing);
        sos_budget_free(&self->pass.out[i].data);
    }
    free(self->pass.out);
    /*  After the sockets: frames libzmq still holds keep what they need alive. */
    sos_budget_destroy(&self->budget);
    free(self->pass.rumor_wires);
    free(self->pass.rumor_lens);
    sos_store_destroy(&self->store);
    sos_identity_wipe(&self->id);
    msgpack_sbuffer_destroy(&self->buf);
    msgpack_sbuffer_destroy(&self->buf2);
    free(self);
    *self_p = NULL;
}
