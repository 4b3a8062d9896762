/*  sossim_node.c: the simulator's machinery: the seeded random source, the event queue in
    virtual time, the virtual network, and the simulated nodes with their exchange loop. */
#define _GNU_SOURCE /* memmem */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sos_identity.h"
#include "sos_core_answer.h"
#include "sos_core_digest.h"
#include "sos_core_fd.h"
#include "sos_core_pick.h"
#include "sos_core_sync.h"
#include "sossim.h"

/*  WHAT IS THE NODE'S HERE

    The simulated nodes below run the real merge rules (node/sos_merge.c), the real failure
    detector (node/sos_fd.c), the real record and message codecs (protocol/), the store
    API (store/, memory backend), and the node's own decisions of an exchange
    (node/sos_core_sync.c: what a DELTA and a DELTA_ACK carry, which records of a message
    are verified, what becomes of each (the endpoint policy, probation, an endpoint another
    worker holds, the merge), what a suspect named by a peer means), and the failure
    detector's rules (node/sos_core_fd.c: whom a SYNC names, what a named suspect does,
    probe first or count, when to remove), and the answers of an exchange
    (node/sos_core_answer.c: what a SYNC, a DIGEST and a DELTA are answered with, what a
    SYNC_ACK and a DIGEST_ACK lead to: refused, done, a DIGEST of which buckets or piece, a
    DELTA over which entries, and the initiator's DELTA itself). The exchange loop that ties
    them together is the node's too: each exchange a node starts is the core's state machine
    (node/sos_core_exchange.c: its state, req_ids, deadlines, the buckets and piece asked,
    the piece cursor), driven through the transitions the node drives, so its messages are
    the node's, in the node's order: SYNC; SYNC_ACK in sync, with the whole digest (up to
    SOS_DIGEST_WHOLE_MAX origins) or with bucket sums; then DIGEST (the buckets that differ,
    or the next piece of one too large for one answer) and DIGEST_ACK (the answerer's
    entries of those it covered); DELTA from the initiator (records the answerer lacks,
    what it wants) and DELTA_ACK; and the exchange started again at once when either side
    had more (a batch cut by its cap: MORE; a DIGEST that left buckets out; a pass of
    pieces that goes on). Where the simulator has no sockets, no tick and no per-peer
    struct, the transitions are mapped onto what it has ("exchanges", below). Not
    modelled: the gap table (a simulated node keeps none), the verification budget, the
    sending budget (an exchange put off for want of room), and the node's rate limits on
    strangers. */

/* ------------------------------------------------------------------- random ---- */

static uint64_t
s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void
sim_rng_seed(sim_rng_t *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = s_splitmix(&seed);
}

static uint64_t
s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t
sim_rng_next(sim_rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

uint64_t
sim_rng_below(sim_rng_t *rng, uint64_t n)
{
    return n ? sim_rng_next(rng) % n : 0;
}

bool
sim_rng_chance(sim_rng_t *rng, double p)
{
    return p > 0 && (double)(sim_rng_next(rng) >> 11) * 0x1.0p-53 < p;
}

void
sim_rng_bytes(sim_rng_t *rng, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = sim_rng_next(rng);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            out[i + j] = (uint8_t)(v >> (8 * j));
    }
}

/* ------------------------------------------------------------------- events ---- */

static bool
s_ev_before(const sim_event_t *a, const sim_event_t *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void
s_push(sim_t *sim, sim_event_t ev)
{
    if (sim->n_heap == sim->cap_heap) {
        size_t cap = sim->cap_heap ? sim->cap_heap * 2 : 1024;
        sim_event_t *heap = realloc(sim->heap, cap * sizeof *heap);
        if (!heap) {
            fprintf(stderr, "sossim: out of memory\n");
            exit(2);
        }
        sim->heap = heap;
        sim->cap_heap = cap;
    }
    ev.seq = sim->seq++;
    size_t i = sim->n_heap++;
    while (i > 0 && s_ev_before(&ev, &sim->heap[(i - 1) / 2])) {
        sim->heap[i] = sim->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    sim->heap[i] = ev;
}

static sim_event_t
s_pop(sim_t *sim)
{
    sim_event_t top = sim->heap[0];
    sim_event_t last = sim->heap[--sim->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sim->n_heap)
            break;
        if (c + 1 < sim->n_heap && s_ev_before(&sim->heap[c + 1], &sim->heap[c]))
            c++;
        if (!s_ev_before(&sim->heap[c], &last))
            break;
        sim->heap[i] = sim->heap[c];
        i = c;
    }
    if (sim->n_heap)
        sim->heap[i] = last;
    return top;
}

static void
s_schedule(sim_t *sim, uint64_t at, sim_ev_type_t type, uint32_t node, uint64_t arg)
{
    sim_event_t ev = {.at = at, .type = (uint8_t)type, .node = node, .arg = arg};
    ev.epoch = sim->nodes[node].epoch;
    s_push(sim, ev);
}

/* --------------------------------------------------------------- run digest ---- */

static void
s_digest_u64(sim_t *sim, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(&sim->run, b, sizeof b);
}

void
sim_violation(sim_t *sim, const char *fmt, ...)
{
    char line[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (sim->violations++ == 0)
        snprintf(sim->first_violation, sizeof sim->first_violation, "t=%llu ms: %s",
                 (unsigned long long)sim->now, line);
    crypto_generichash_update(&sim->run, (const uint8_t *)line, strlen(line));
}

/* ----------------------------------------------------------------- registry ---- */

static size_t
s_reg_slot(const uint8_t *id, size_t cap)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return (size_t)(h * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
}

uint32_t
sim_lookup(const sim_t *sim, const uint8_t id[SOS_NODEID_BYTES])
{
    if (!sim->cap_reg)
        return UINT32_MAX;
    size_t i = s_reg_slot(id, sim->cap_reg);
    while (sim->reg[i]) {
        uint32_t idx = sim->reg[i] - 1;
        if (memcmp(sim->pk[idx], id, SOS_NODEID_BYTES) == 0)
            return idx;
        i = (i + 1) & (sim->cap_reg - 1);
    }
    return UINT32_MAX;
}

static void
s_reg_add(sim_t *sim, uint32_t idx)
{
    if ((sim->n_nodes + 1) * 2 > sim->cap_reg) {
        size_t cap = sim->cap_reg ? sim->cap_reg * 2 : 1024;
        uint32_t *reg = calloc(cap, sizeof *reg);
        if (!reg) {
            fprintf(stderr, "sossim: out of memory\n");
            exit(2);
        }
        for (uint32_t n = 0; n < sim->n_nodes; n++) {
            size_t i = s_reg_slot(sim->nodes[n].id.pk, cap);
            while (reg[i])
                i = (i + 1) & (cap - 1);
            reg[i] = n + 1;
        }
        free(sim->reg);
        sim->reg = reg;
        sim->cap_reg = cap;
    }
    size_t i = s_reg_slot(sim->nodes[idx].id.pk, sim->cap_reg);
    while (sim->reg[i])
        i = (i + 1) & (sim->cap_reg - 1);
    sim->reg[i] = idx + 1;
}

/* ------------------------------------------------------------------- peers ---- */

static sim_peer_t *
s_peer(sim_node_t *n, uint32_t idx, bool create)
{
    if (n->cap_peers) {
        size_t i = (idx * 2654435761u) & (n->cap_peers - 1);
        while (n->peers[i].key) {
            if (n->peers[i].key == idx + 1)
                return &n->peers[i];
            i = (i + 1) & (n->cap_peers - 1);
        }
    }
    if (!create)
        return NULL;
    if ((n->n_peers + 1) * 4 > n->cap_peers * 3) {
        size_t cap = n->cap_peers ? n->cap_peers * 2 : 16;
        sim_peer_t *peers = calloc(cap, sizeof *peers);
        if (!peers)
            return NULL;
        for (size_t s = 0; s < n->cap_peers; s++) {
            if (!n->peers[s].key)
                continue;
            size_t i = ((n->peers[s].key - 1) * 2654435761u) & (cap - 1);
            while (peers[i].key)
                i = (i + 1) & (cap - 1);
            peers[i] = n->peers[s];
        }
        free(n->peers);
        n->peers = peers;
        n->cap_peers = cap;
    }
    size_t i = (idx * 2654435761u) & (n->cap_peers - 1);
    while (n->peers[i].key)
        i = (i + 1) & (n->cap_peers - 1);
    memset(&n->peers[i], 0, sizeof n->peers[i]);
    n->peers[i].key = idx + 1;
    n->n_peers++;
    return &n->peers[i];
}

static bool
s_in_view(const sim_node_t *n, uint32_t idx)
{
    return idx / 64 < n->n_in_view_words && (n->in_view[idx / 64] >> (idx % 64) & 1);
}

static void
s_view_add(sim_node_t *n, uint32_t idx)
{
    if (s_in_view(n, idx))
        return;
    if (idx / 64 >= n->n_in_view_words) {
        uint32_t words =
            idx / 64 + 1 > n->n_in_view_words * 2 ? idx / 64 + 1 : n->n_in_view_words * 2;
        uint64_t *bits = realloc(n->in_view, words * sizeof *bits);
        if (!bits)
            return;
        memset(bits + n->n_in_view_words, 0, (words - n->n_in_view_words) * sizeof *bits);
        n->in_view = bits;
        n->n_in_view_words = words;
    }
    if (n->n_view == n->cap_view) {
        size_t cap = n->cap_view ? n->cap_view * 2 : 8;
        uint32_t *v = realloc(n->view, cap * sizeof *v);
        if (!v)
            return;
        n->view = v;
        n->cap_view = cap;
    }
    n->view[n->n_view++] = idx;
    n->in_view[idx / 64] |= 1ULL << (idx % 64);
}

static void
s_view_del(sim_node_t *n, uint32_t idx)
{
    if (!s_in_view(n, idx))
        return;
    n->in_view[idx / 64] &= ~(1ULL << (idx % 64));
    for (size_t i = 0; i < n->n_view; i++)
        if (n->view[i] == idx) {
            memmove(&n->view[i], &n->view[i + 1], (n->n_view - i - 1) * sizeof *n->view);
            n->n_view--;
            return;
        }
}

/* ------------------------------------------------------------ connections ---- */

/*  The top bit of a compact digest version: the entry is a removal (a tombstone). */
#define SIM_DIG_REMOVED (1ULL << 63)

/*  The chance that a round adds one exchange outside the active view. */
#define SIM_OUTSIDE_P 0.25

/*  With --active-view (node/sos_core_view.h): a node keeps symmetric links to a few peers
    and gossips over them, and opens a short-lived connection for an exchange with anyone
    else. A link's open and close are taken as instant at both ends: their own messages are
    not simulated (a real node would send HyParView's NEIGHBOR and DISCONNECT), and a link
    to a node that is dead, hostile or across a partition cannot be opened (a connect that
    times out). A link whose peer failed two exchanges in a row is closed. */

static void s_random(void *arg, void *buf, size_t len);

/*  The invariant: no node holds more connections than its cap. */
static void
s_conn_check(sim_t *sim, sim_node_t *n)
{
    uint32_t c = n->active.n + n->n_short;
    if (c > sim->conn_max)
        sim->conn_max = c;
    if (n->active.cap > sim->conn_cap_max)
        sim->conn_cap_max = n->active.cap;
    if (n->active.n > n->active.cap || n->n_short > SIM_SHORT_MAX)
        sim_violation(sim,
                      "node %u holds %u links (cap %u) and %u short-lived connections (at most %u)",
                      n->idx, n->active.n, n->active.cap, n->n_short, SIM_SHORT_MAX);
}

static void
s_link_close(sim_t *sim, uint32_t a, uint32_t b)
{
    bool was = sos_core_view_del(&sim->nodes[a].active, b);
    was = sos_core_view_del(&sim->nodes[b].active, a) || was;
    if (was)
        s_digest_u64(sim, 0x11c0000000000000ULL | ((uint64_t)a << 32) | b);
}

/*  n asks to to join its view: with priority while n has fewer links than the fanout. */
static void
s_link_open(sim_t *sim, sim_node_t *n, uint32_t to)
{
    sim_node_t *t = &sim->nodes[to];
    if (to == n->idx || sos_core_view_has(&n->active, to) || !sos_core_view_room(&n->active))
        return;
    if (!t->alive || t->hostile || (sim->partitioned && t->group != n->group)) {
        sim->links_failed++;
        return;
    }
    uint64_t ev = 0;
    sos_view_rc_t rc =
        sos_core_view_add(&t->active, n->idx, n->active.n < sim->o.fanout, s_random, sim, &ev);
    if (rc == SOS_VIEW_REFUSED) {
        sim->links_refused++;
        return;
    }
    if (rc == SOS_VIEW_EVICTED) {
        sos_core_view_del(&sim->nodes[ev].active, to);
        sim->links_evicted++;
    }
    sos_core_view_add(&n->active, to, false, NULL, NULL, NULL);
    sim->links_opened++;
    s_digest_u64(sim, 0x11a0000000000000ULL | ((uint64_t)n->idx << 32) | to);
    s_conn_check(sim, n);
    s_conn_check(sim, t);
}

/*  A round's upkeep of n's view: the cap follows the directory's size (n_workers), and
    free slots are offered to random workers of the directory (or to genesis nodes while it
    is empty), a few a round. */
static void
s_view_upkeep(sim_t *sim, sim_node_t *n, uint64_t n_workers)
{
    uint64_t ev[SOS_VIEW_MAX];
    size_t k = sos_core_view_resize(&n->active, sos_core_view_cap(sim->o.fanout, n_workers),
                                    s_random, sim, ev);
    for (size_t i = 0; i < k; i++)
        s_link_close(sim, n->idx, (uint32_t)ev[i]);
    for (int tries = 0; tries < 3 && sos_core_view_room(&n->active); tries++) {
        if (n->n_view)
            s_link_open(sim, n, n->view[sim_rng_below(&sim->rng, n->n_view)]);
        else if (sim->o.genesis)
            s_link_open(sim, n, (uint32_t)sim_rng_below(&sim->rng, sim->o.genesis));
    }
    s_conn_check(sim, n);
}

void
sim_conn_now(sim_t *sim, uint32_t *max, double *mean)
{
    uint64_t sum = 0, live = 0;
    *max = 0;
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        sim_node_t *n = &sim->nodes[i];
        if (!n->alive || n->hostile)
            continue;
        uint32_t c = sim->o.active_view ? n->active.n + n->n_short : (uint32_t)n->n_view;
        *max = c > *max ? c : *max;
        sum += c;
        live++;
    }
    *mean = live ? (double)sum / (double)live : 0;
}

/* --------------------------------------------------------------- the store ---- */

static sos_txn_t *
s_txn(sim_t *sim, sim_node_t *n)
{
    if (!n->txn && sos_txn_begin(n->store, true, &n->txn) != SOS_OK) {
        sim_violation(sim, "node %u: no write transaction", n->idx);
        return NULL;
    }
    if (!n->commit_due) {
        /*  Group commit: what a handler writes is durable, and its replies leave, a little
            later; a crash before then loses both. */
        n->commit_due = true;
        s_schedule(sim, sim->now + 2 + (n->slow_ms ? sim_rng_below(&sim->rng, n->slow_ms) : 0),
                   EV_COMMIT, n->idx, 0);
    }
    return n->txn;
}

static sos_merge_ctx_t
s_mctx(sim_t *sim, sim_node_t *n)
{
    sos_merge_ctx_t c = sim->mctx;
    c.self_id = n->id.pk;
    c.now_ms = sim->now;
    return c;
}

/*  --cheap-digest

    A digest hash and a bucket sum are only ever compared for equality, between two nodes
    that compute them the same way. BLAKE2b over the sorted digest costs a pass over all
    of it whenever it changed, which at 10,000 nodes and 5 % loss (every refutation changes
    every directory) is most of a run. With --cheap-digest each is a sum, modulo 2^64 in
    two lanes, of a 128-bit mix of (origin, version) per entry: kept up to date at each
    change in O(1), equal for equal digests, and different for different ones but with
    chance 2^-128 per comparison (no hostile peer sees the mix). So every node takes the
    same branch as with BLAKE2b, and a run prints the same digest line (tests/sim checks
    this on the sweep's scenarios); only the 16 bytes of the hashes differ. The 1,024 finest
    buckets (the first two bytes of the id, masked) add up to any coarser bucket count. */
static void
s_mix(const sim_t *sim, uint32_t idx, uint64_t version, uint64_t out[2])
{
    uint64_t k0, k1;
    memcpy(&k0, sim->pk[idx], 8);
    memcpy(&k1, sim->pk[idx] + 8, 8);
    uint64_t a = k0 ^ (version * 0x9e3779b97f4a7c15ULL), b = k1 + version;
    s_splitmix(&a);
    s_splitmix(&b);
    out[0] = s_splitmix(&a);
    out[1] = s_splitmix(&b) ^ k0;
}

static void
s_sum_entry(sim_t *sim, sim_node_t *n, uint32_t idx, uint64_t version, bool add)
{
    if (!n->fine) {
        n->fine = calloc(1024, sizeof *n->fine);
        if (!n->fine) {
            sim_violation(sim, "node %u: out of memory for its digest sums", n->idx);
            return;
        }
    }
    uint64_t m[2];
    s_mix(sim, idx, version, m);
    uint64_t(*f)[2] = &n->fine[sim->prefix[idx] >> 6]; /* the top 10 bits: finest bucket */
    for (int l = 0; l < 2; l++) {
        n->msum[l] += add ? m[l] : -m[l];
        (*f)[l] += add ? m[l] : -m[l];
    }
}

static uint32_t s_bucket_of(const sim_t *sim, uint32_t idx, uint32_t nb);

/*  Set what n's kept digest says of node idx (present, at version), and mark what that
    changes: the compact digest and its hash, and the kept bucket sum of its bucket. */
static void
s_dig_set(sim_t *sim, sim_node_t *n, uint32_t idx, bool has, uint64_t version)
{
    if (idx >= n->cap_dig_at) {
        uint32_t cap = sim->cap_nodes > idx ? sim->cap_nodes : idx + 1;
        uint32_t old_words = (n->cap_dig_at + 63) / 64, words = (cap + 63) / 64;
        uint64_t *at = realloc(n->dig_at, cap * sizeof *at);
        if (at)
            n->dig_at = at;
        uint64_t *bits = at ? realloc(n->dig_has, words * sizeof *bits) : NULL;
        if (!bits) {
            sim_violation(sim, "node %u: out of memory for its digest", n->idx);
            return;
        }
        n->dig_has = bits;
        memset(bits + old_words, 0, (words - old_words) * sizeof *bits);
        n->cap_dig_at = cap;
    }
    bool had = n->dig_has[idx / 64] >> (idx % 64) & 1;
    if (had == has && (!has || n->dig_at[idx] == version))
        return;
    if (sim->o.cheap_digest) {
        if (had)
            s_sum_entry(sim, n, idx, n->dig_at[idx], false);
        if (has)
            s_sum_entry(sim, n, idx, version, true);
    }
    n->dig_count += (uint32_t)has - (uint32_t)had;
    if (has)
        n->dig_has[idx / 64] |= 1ULL << (idx % 64);
    else
        n->dig_has[idx / 64] &= ~(1ULL << (idx % 64));
    n->dig_at[idx] = has ? version : 0;
    n->dirty = true;
    if (n->sums_nb) {
        uint32_t b = s_bucket_of(sim, idx, n->sums_nb);
        n->sums_stale[b / 64] |= 1ULL << (b % 64);
    }
}

/*  The kept value of an origin's digest entry: the version held, with SIM_DIG_REMOVED set
    when the entry is a removal (node/sos_core_digest.h): only an origin without a worker
    record can be one, so the tombstone is looked up for those alone. */
static uint64_t
s_dig_value(sos_txn_t *txn, const sos_origin_t *o)
{
    if (!o->has_worker) {
        sos_digest_entry_t e;
        sos_digest_entry(NULL, txn, o->origin, &e);
        if (e.removed)
            return e.version | SIM_DIG_REMOVED;
    }
    return o->max_version;
}

/*  After a write to n's store that may have changed origin's entry: read it again. */
static void
s_dig_touch(sim_t *sim, sim_node_t *n, sos_txn_t *txn, const uint8_t *origin)
{
    uint32_t idx = sim_lookup(sim, origin);
    if (idx == UINT32_MAX)
        return; /* every origin stored is a simulated node: its record was verified */
    sos_origin_t o;
    bool has = sos_dir_get_origin(txn, origin, &o) == SOS_OK;
    s_dig_set(sim, n, idx, has, has ? s_dig_value(txn, &o) : 0);
}

static int
s_on_origin(void *arg, const sos_origin_t *o)
{
    void **a = arg;
    sim_t *sim = a[0];
    sim_node_t *n = a[1];
    uint32_t idx = sim_lookup(sim, o->origin);
    if (idx != UINT32_MAX)
        s_dig_set(sim, n, idx, true, s_dig_value(a[2], o));
    return 0;
}

/*  The digest entry i of n (compact: node index and version, whose top bit says removed),
    expanded. */
static const uint8_t *
s_dig_origin(const sim_t *sim, const sim_node_t *n, uint32_t i)
{
    return sim->pk[n->dig_idx[i]];
}

static sos_digest_entry_t
s_dig_entry(const sim_t *sim, const sim_node_t *n, uint32_t i)
{
    sos_digest_entry_t e;
    memcpy(e.origin, s_dig_origin(sim, n, i), SOS_NODEID_BYTES);
    e.version = n->dig_ver[i] & ~SIM_DIG_REMOVED;
    e.removed = (n->dig_ver[i] & SIM_DIG_REMOVED) != 0;
    return e;
}

/*  SOSSIM_CHECK_DIGEST: the kept digest against the store's origin table. */
typedef struct {
    sim_t *sim;
    const sim_node_t *n;
    sos_txn_t *txn;
    uint32_t k;
    bool same;
} s_dig_check_t;

static int
s_on_check_origin(void *arg, const sos_origin_t *o)
{
    s_dig_check_t *c = arg;
    uint32_t idx = sim_lookup(c->sim, o->origin);
    if (idx == UINT32_MAX)
        return 0;
    if (c->k >= c->n->n_dig || c->n->dig_idx[c->k] != idx ||
        c->n->dig_ver[c->k] != s_dig_value(c->txn, o)) {
        c->same = false;
        return 1;
    }
    c->k++;
    return 0;
}

static void
s_check_digest(sim_t *sim, sim_node_t *n, sos_txn_t *txn)
{
    s_dig_check_t c = {sim, n, txn, 0, true};
    sos_dir_foreach_origin(txn, s_on_check_origin, &c);
    if (!c.same || c.k != n->n_dig)
        sim_violation(sim, "node %u: its kept digest differs from its store at entry %u", n->idx,
                      c.k);
}

/*  n's digest in id order, in the simulator's scratch (n->dig_idx, n->dig_ver): made from
    the kept one (12 bytes an origin for the one node being served, 8 kept per node: the
    full entries of 10,000 simulated directories would not fit), and its hash marked stale
    after the directory changed. */
static void
s_refresh_digest(sim_t *sim, sim_node_t *n, sos_txn_t *txn)
{
    if (n->dig_reload) {
        if (n->dig_has)
            memset(n->dig_has, 0, (n->cap_dig_at + 63) / 64 * sizeof *n->dig_has);
        n->sums_nb = 0;
        n->dig_count = 0;
        memset(n->msum, 0, sizeof n->msum);
        if (n->fine)
            memset(n->fine, 0, 1024 * sizeof *n->fine);
        void *a[3] = {sim, n, txn};
        sos_dir_foreach_origin(txn, s_on_origin, a);
        n->dig_reload = false;
        n->dirty = true;
    }
    if (!n->dirty && sim->dig_owner == n->idx) {
        n->dig_idx = sim->dig_idx;
        n->dig_ver = sim->dig_ver;
        return;
    }
    if (sim->cap_dig < sim->n_nodes) {
        uint32_t *di = realloc(sim->dig_idx, sim->cap_nodes * sizeof *di);
        if (di)
            sim->dig_idx = di;
        uint64_t *dv = di ? realloc(sim->dig_ver, sim->cap_nodes * sizeof *dv) : NULL;
        if (!dv) {
            sim_violation(sim, "node %u: out of memory for its digest", n->idx);
            return;
        }
        sim->dig_ver = dv;
        sim->cap_dig = sim->cap_nodes;
    }
    uint32_t m = 0;
    for (uint32_t k = 0; k < sim->n_nodes; k++) {
        uint32_t idx = sim->order[k];
        if (idx < n->cap_dig_at && (n->dig_has[idx / 64] >> (idx % 64) & 1)) {
            sim->dig_idx[m] = idx;
            sim->dig_ver[m++] = n->dig_at[idx];
        }
    }
    n->dig_idx = sim->dig_idx;
    n->dig_ver = sim->dig_ver;
    n->n_dig = m;
    if (n->dirty)
        n->hash_stale = true;
    n->dirty = false;
    sim->dig_owner = n->idx;
    if (sim->check_digest)
        s_check_digest(sim, n, txn);
}

/*  n's digest count and hash current (n->n_dig, s_digest_hash), without making the digest
    in order when nothing changed since it was last made: a SYNC that finds two nodes in
    sync needs no more. */
static void
s_digest_current(sim_t *sim, sim_node_t *n, sos_txn_t *txn)
{
    if (sim->o.cheap_digest) { /* the sum is kept: no pass over the digest */
        if (n->dig_reload)
            s_refresh_digest(sim, n, txn);
        n->n_dig = n->dig_count;
        return;
    }
    if (n->dig_reload || n->dirty || n->hash_stale) /* a stale hash needs the digest */
        s_refresh_digest(sim, n, txn);
}

/*  n's digest hash, made from the digest when a SYNC needs it (the other steps of an
    exchange need the entries only). */
static const uint8_t *
s_digest_hash(sim_t *sim, sim_node_t *n)
{
    if (sim->o.cheap_digest) {
        memcpy(n->hash, n->msum, sizeof n->hash);
        return n->hash;
    }
    if (!n->hash_stale)
        return n->hash;
    if (sim->cap_scratch < n->n_dig) {
        sos_digest_entry_t *e = realloc(sim->scratch, n->n_dig * sizeof *e);
        if (!e)
            return n->hash;
        sim->scratch = e;
        sim->cap_scratch = n->n_dig;
    }
    for (uint32_t i = 0; i < n->n_dig; i++)
        sim->scratch[i] = s_dig_entry(sim, n, i);
    sos_digest_hash(n->hash, sim->scratch, n->n_dig); /* sorted by origin already */
    n->hash_stale = false;
    return n->hash;
}

/* -------------------------------------------------------------- the network ---- */

/*  One copy of m into the network: lost, or delivered after a random latency (so that
    messages overtake each other), later still to a slow node. Takes m. */
static void
s_net_one(sim_t *sim, sim_msg_t *m)
{
    if (sim_rng_chance(&sim->rng, sim->o.loss)) {
        sim->dropped_loss++;
        free(m);
        return;
    }
    uint64_t lat =
        sim->o.lat_min_ms + sim_rng_below(&sim->rng, sim->o.lat_max_ms - sim->o.lat_min_ms + 1);
    if (sim->nodes[m->to].slow_ms)
        lat += sim_rng_below(&sim->rng, sim->nodes[m->to].slow_ms);
    sim_event_t ev = {.at = sim->now + lat, .type = EV_DELIVER, .node = m->to, .msg = m};
    s_push(sim, ev);
}

static void
s_net_send(sim_t *sim, sim_msg_t *m)
{
    sim_node_t *from = &sim->nodes[m->from];
    from->bytes_sent += m->len;
    from->msgs_sent++;
    if (sim_rng_chance(&sim->rng, sim->o.dup)) {
        sim_msg_t *copy = malloc(sizeof *m + m->len);
        if (copy) {
            memcpy(copy, m, sizeof *m + m->len);
            s_net_one(sim, copy);
        }
    }
    s_net_one(sim, m);
}

/*  Queue msg for sending at n's next commit. Takes sbuf's bytes. */
static void
s_send(sim_t *sim, sim_node_t *n, uint32_t to, sim_msg_type_t type, const msgpack_sbuffer *sb)
{
    sim_msg_t *m = malloc(sizeof *m + sb->size);
    if (!m)
        return;
    m->from = n->idx;
    m->to = to;
    m->type = (uint8_t)type;
    m->len = (uint32_t)sb->size;
    memcpy(m->body, sb->data, sb->size);
    if (n->hostile) { /* hostile peers do not wait for commits */
        s_net_send(sim, m);
        return;
    }
    if (n->n_out == n->cap_out) {
        size_t cap = n->cap_out ? n->cap_out * 2 : 8;
        sim_msg_t **out = realloc(n->out, cap * sizeof *out);
        if (!out) {
            free(m);
            return;
        }
        n->out = out;
        n->cap_out = cap;
    }
    n->out[n->n_out++] = m;
    s_txn(sim, n);
}

static void
s_drop_out(sim_node_t *n)
{
    for (size_t i = 0; i < n->n_out; i++)
        free(n->out[i]);
    n->n_out = 0;
}

/* ---------------------------------------------------------------- records ---- */

static void
s_check_resurrection(sim_t *sim, sim_node_t *n, const sos_record_t *rec, sos_source_t src)
{
    if (rec->kind != SOS_REC_WORKER || src == SOS_SRC_DIRECT || src == SOS_SRC_LOCAL)
        return;
    uint32_t o = sim_lookup(sim, rec->origin);
    if (o == UINT32_MAX)
        return;
    sim_peer_t *p = s_peer(n, o, false);
    if (p && p->removed_version && rec->version <= p->removed_version)
        sim_violation(sim, "node %u took back worker %u at v%llu, removed at v%llu (stale gossip)",
                      n->idx, o, (unsigned long long)rec->version,
                      (unsigned long long)p->removed_version);
}

/*  Probation, as the node counts it: a worker listed here (in view[]), no genesis node,
    that this node never saw answer (its local last_ok, kept in the store across restarts). */
static bool
s_probation_of(const sim_t *sim, sos_txn_t *txn, uint32_t o)
{
    sos_worker_local_t l;
    return !sim->nodes[o].genesis &&
           sos_dir_get_worker(txn, sim->nodes[o].id.pk, NULL, &l) == SOS_OK && l.last_ok == 0;
}

/*  n's probation count made again from its view: after a removal whose worker's stats
    went with it, and to check the kept count (SOSSIM_CHECK_DIGEST). */
static uint32_t
s_probation_count(const sim_t *sim, const sim_node_t *n, sos_txn_t *txn)
{
    uint32_t k = 0;
    for (size_t i = 0; i < n->n_view; i++)
        k += s_probation_of(sim, txn, n->view[i]);
    return k;
}

/*  o is listed at n from now on: into the view, and counted if on probation. */
static void
s_list(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t o)
{
    if (s_in_view(n, o))
        return;
    s_view_add(n, o);
    if (s_in_view(n, o) && s_probation_of(sim, txn, o))
        n->n_probation++;
}

/*  The simulated node's peers as the core reads them (sos_sync_peers_t). */
typedef struct {
    sim_t *sim;
    sim_node_t *n;
    sos_txn_t *txn;
} s_peers_t;

static bool
s_peers_known(void *arg, const uint8_t origin[SOS_NODEID_BYTES])
{
    s_peers_t *a = arg;
    uint32_t o = sim_lookup(a->sim, origin);
    return o != UINT32_MAX && (a->sim->nodes[o].genesis || s_in_view(a->n, o));
}

static uint32_t
s_peers_probation(void *arg)
{
    return ((s_peers_t *)arg)->n->n_probation;
}

/*  Another worker answers at url: its last exchange with n succeeded (a simulated node's
    url names its index). */
static bool
s_peers_answers_at(void *arg, const char *url, const uint8_t origin[SOS_NODEID_BYTES])
{
    s_peers_t *a = arg;
    unsigned b1, b2, b3, port;
    if (sscanf(url, "tcp://10.%u.%u.%u:%u", &b1, &b2, &b3, &port) != 4 || port != 7400)
        return false;
    uint32_t o = (b1 << 16) | (b2 << 8) | b3;
    if (o >= a->sim->n_nodes || o == a->n->idx ||
        memcmp(a->sim->nodes[o].id.pk, origin, SOS_NODEID_BYTES) == 0)
        return false;
    sim_peer_t *p = s_peer(a->n, o, false);
    sos_worker_local_t l;
    return p && p->fd.fail_count == 0 &&
           sos_dir_get_worker(a->txn, a->sim->nodes[o].id.pk, NULL, &l) == SOS_OK && l.last_ok;
}

static void s_unlisted(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t target);

/*  Take one verified record at n as the node does (node/sos_core_sync.h:
    sos_core_sync_take); invariant checks around it. True if it was taken. */
static bool
s_merge(sim_t *sim, sim_node_t *n, sos_txn_t *txn, const sos_record_t *rec, sos_source_t src)
{
    sos_merge_ctx_t ctx = s_mctx(sim, n);
    sos_room_local_t before = {0};
    bool had_local =
        rec->kind == SOS_REC_ROOM && sos_dir_room_local_get(txn, rec->room_hash, &before) == SOS_OK;
    sos_take_result_t *out = malloc(sizeof *out);
    if (!out)
        return false;
    s_peers_t pa = {sim, n, txn};
    sos_sync_peers_t peers = {.arg = &pa,
                              .known = s_peers_known,
                              .probation = s_peers_probation,
                              .answers_at = s_peers_answers_at};
    sos_sync_take_ctx_t tc = {.merge = &ctx,
                              .peers = &peers,
                              .our_url = n->url,
                              .tombstone_expires = sim->now + sim->tombstone_ttl_ms,
                              .probation = &n->probation};
    sos_sync_ctx_t sctx = {.self_id = n->id.pk, .allow_private = true};
    sos_rc rc = sos_core_sync_take(&sctx, &tc, txn, rec, src, out);
    if (rc) {
        sim_violation(sim, "node %u: merge failed: %s", n->idx, sos_strerror(rc));
        free(out);
        return false;
    }
    if (out->take == SOS_TAKE_PROBATION)
        sim->probation_refused++;
    if (out->take == SOS_TAKE_ENDPOINT_TAKEN && out->removed) {
        uint32_t o = sim_lookup(sim, rec->origin);
        s_dig_touch(sim, n, txn, rec->origin);
        if (o != UINT32_MAX)
            s_unlisted(sim, n, txn, o);
    }
    if (out->take != SOS_TAKE_MERGED) {
        free(out);
        return false;
    }
    sos_merge_result_t result = out->merge;
    const sos_record_t *displaced = &out->displaced;
    bool displaced_set = out->displaced_set;
    s_dig_touch(sim, n, txn, rec->origin);
    if (displaced_set)
        s_dig_touch(sim, n, txn, displaced->origin);
    if (sos_merge_taken(result)) {
        sim->merges_taken++;
        if (sim->o.trace && rec->kind == SOS_REC_ROOM)
            printf("node %u took room %s of node %u (%s, %s), first seen here %llu%s\n", n->idx,
                   rec->room_hash, sim_lookup(sim, rec->origin), sos_merge_result_name(result),
                   src == SOS_SRC_RUMOR   ? "rumor"
                   : src == SOS_SRC_DELTA ? "delta"
                                          : "other",
                   had_local ? (unsigned long long)before.first_seen : 0ULL,
                   displaced_set ? ", displacing another owner's" : "");
        n->dirty = true;
        s_check_resurrection(sim, n, rec, src);
        uint32_t o = sim_lookup(sim, rec->origin);
        if (rec->kind == SOS_REC_WORKER && o != UINT32_MAX && o != n->idx) {
            s_list(sim, n, txn, o);
            sim_peer_t *p = s_peer(n, o, false);
            if (p && (p->fd.suspect_mono || p->fd.probe) && rec->version > p->fd.suspect_version)
                sos_fd_clear(&p->fd); /* signed after the suspicion began: it refuted */
        }
        if (displaced_set && rec->kind == SOS_REC_ROOM &&
            memcmp(displaced->origin, rec->origin, SOS_NODEID_BYTES) != 0 && had_local &&
            sim->now > before.first_seen + SOS_ROOM_SPREAD_MS)
            sim_violation(sim, "node %u lost room %s, held since %llu, past the spread bound",
                          n->idx, rec->room_hash, (unsigned long long)before.first_seen);
    }
    free(out);
    return sos_merge_taken(result);
}

/*  target's worker record went from n's store with its stats (the core refused it at a
    taken endpoint): out of the view and its links, and the probation count made again. */
static void
s_unlisted(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t target)
{
    s_view_del(n, target);
    s_link_close(sim, n->idx, target);
    sim_peer_t *p = s_peer(n, target, false);
    if (p)
        p->probation_failed = false; /* listed again later: a new probation */
    n->n_probation = s_probation_count(sim, n, txn);
    n->dirty = true;
}

static void s_rumor(sim_t *sim, sim_node_t *n, const sos_record_t *rec, uint32_t not_to);
static void s_on_probe_msg(sim_t *sim, sim_node_t *n, sos_txn_t *txn, const sim_msg_t *m);

/*  Sign our worker record at the next version and merge it. */
static void
s_resign(sim_t *sim, sim_node_t *n, sos_txn_t *txn)
{
    n->version++;
    sos_record_t *r = &n->self;
    memset(r, 0, sizeof *r);
    r->kind = SOS_REC_WORKER;
    r->version = n->version;
    r->prev = n->version - 1;
    snprintf(r->url, sizeof r->url, "%s", n->url);
    if (sos_record_sign(r, &n->id) != SOS_OK) {
        sim_violation(sim, "node %u: cannot sign its record", n->idx);
        return;
    }
    sos_meta_put_u64(txn, "version", n->version);
    s_merge(sim, n, txn, r, SOS_SRC_LOCAL);
    n->refute_pending = false;
    s_rumor(sim, n, r, UINT32_MAX);
}

sos_rc
sim_node_create_room(sim_t *sim, uint32_t idx, const char *room_hash, uint64_t created_at)
{
    sim_node_t *n = &sim->nodes[idx];
    if (!n->alive)
        return SOS_ERR_INVALID;
    sos_txn_t *txn = s_txn(sim, n);
    if (!txn)
        return SOS_ERR_IO;
    sos_record_t r;
    memset(&r, 0, sizeof r);
    r.kind = SOS_REC_ROOM;
    r.version = ++n->version;
    r.prev = r.version - 1;
    snprintf(r.url, sizeof r.url, "%s", n->url);
    snprintf(r.room_hash, sizeof r.room_hash, "%s", room_hash);
    r.n_emojis = 1;
    snprintf(r.emojis[0], sizeof r.emojis[0], "x");
    snprintf(r.description, sizeof r.description, "room of node %u", idx);
    r.created_at = created_at;
    r.expires_at = created_at + 3600ULL * 1000;
    sos_rc rc = sos_record_sign(&r, &n->id);
    if (rc)
        return rc;
    sos_meta_put_u64(txn, "version", n->version);
    s_merge(sim, n, txn, &r, SOS_SRC_LOCAL);
    s_rumor(sim, n, &r, UINT32_MAX);
    return SOS_OK;
}

/* --------------------------------------------------------------- buckets ---- */

/*  The bucket of node idx's origin among nb: sos_digest_bucket's rule (the top bits of the
    id's first two bytes), from the prefix kept per node. */
static uint32_t
s_bucket_of(const sim_t *sim, uint32_t idx, uint32_t nb)
{
    uint32_t bits = 0;
    while ((1u << bits) < nb)
        bits++;
    return bits ? (uint32_t)sim->prefix[idx] >> (16 - bits) : 0;
}

/*  n's digest expanded into the simulator's scratch (after s_refresh_digest), in id order,
    as the core's bucket functions take it. NULL if out of memory. Valid until the next
    call for any node. */
static sos_digest_entry_t *
s_dig_entries(sim_t *sim, const sim_node_t *n)
{
    if (sim->cap_scratch < n->n_dig || !sim->scratch) {
        uint32_t cap = n->n_dig ? n->n_dig : 1;
        sos_digest_entry_t *e = realloc(sim->scratch, cap * sizeof *e);
        if (!e)
            return NULL;
        sim->scratch = e;
        sim->cap_scratch = cap;
    }
    for (uint32_t i = 0; i < n->n_dig; i++)
        sim->scratch[i] = s_dig_entry(sim, n, i);
    return sim->scratch;
}

/*  n's digest grouped by bucket, each bucket in id order: bucket b's entries are
    sim->grp[sim->grp_start[b] .. sim->grp_start[b + 1]) (indexes into n's digest), valid
    until the next call. A counting sort on the node's id prefix (sim->prefix), so that a
    bucket's entries are found without a pass over the whole digest per bucket. False if
    out of memory. */
static bool
s_group(sim_t *sim, const sim_node_t *n, uint32_t nb)
{
    if (sim->cap_grp < n->n_dig || !sim->grp_start) {
        uint32_t cap = n->n_dig > 1024 ? n->n_dig : 1024;
        uint32_t *g = realloc(sim->grp, cap * sizeof *g);
        if (!g)
            return false;
        sim->grp = g;
        sim->cap_grp = cap;
        if (!sim->grp_start) {
            sim->grp_start = malloc((1024 + 1) * sizeof *sim->grp_start);
            if (!sim->grp_start)
                return false;
        }
    }
    uint32_t *start = sim->grp_start;
    memset(start, 0, (nb + 1) * sizeof *start);
    for (uint32_t i = 0; i < n->n_dig; i++)
        start[s_bucket_of(sim, n->dig_idx[i], nb) + 1]++;
    for (uint32_t b = 0; b < nb; b++)
        start[b + 1] += start[b];
    for (uint32_t i = 0; i < n->n_dig; i++) {
        uint32_t b = s_bucket_of(sim, n->dig_idx[i], nb);
        sim->grp[start[b]++] = i;
    }
    for (uint32_t b = nb; b > 0; b--) /* the fill moved each start to the next bucket's */
        start[b] = start[b - 1];
    start[0] = 0;
    return true;
}

/*  The hash of bucket b of n's digest (grouped by s_group): the core's bucket hash. */
static void
s_bucket_sum(const sim_t *sim, const sim_node_t *n, uint32_t b, uint8_t out[16])
{
    sos_bucket_hash_t h;
    sos_bucket_hash_init(&h);
    for (uint32_t k = sim->grp_start[b]; k < sim->grp_start[b + 1]; k++) {
        sos_digest_entry_t e = s_dig_entry(sim, n, sim->grp[k]);
        sos_bucket_hash_add(&h, &e);
    }
    sos_bucket_hash_final(&h, out);
}

/*  The hash of each bucket of n's digest: sums[nb][16]. n keeps them for one bucket count
    and hashes again only the buckets whose entries changed since (s_dig_set marks them):
    while 10,000 nodes join, a node's directory changes by a few dozen origins between two
    exchanges, not by 10,000. SOSSIM_CHECK_DIGEST compares them with the core's sums made
    from scratch (sos_digest_bucket_sums), as the node makes them. */
static bool
s_bucket_sums(sim_t *sim, sim_node_t *n, uint32_t nb, uint8_t (*sums)[16])
{
    if (sim->o.cheap_digest) { /* from the kept sums of the finest buckets (top 10 bits) */
        uint32_t bits = 0;
        while ((1u << bits) < nb)
            bits++;
        memset(sums, 0, nb * sizeof *sums);
        for (uint32_t f = 0; n->fine && f < 1024; f++) {
            uint64_t lanes[2];
            memcpy(lanes, sums[f >> (10 - bits)], sizeof lanes);
            lanes[0] += n->fine[f][0];
            lanes[1] += n->fine[f][1];
            memcpy(sums[f >> (10 - bits)], lanes, sizeof lanes);
        }
        return true;
    }
    if (!s_group(sim, n, nb))
        return false;
    if (n->sums_nb != nb) {
        n->sums_nb = 0;
        uint8_t(*kept)[16] = realloc(n->sums, nb * sizeof *kept);
        if (kept)
            n->sums = kept;
        uint64_t *stale = kept ? realloc(n->sums_stale, (nb + 63) / 64 * sizeof *stale) : NULL;
        if (!stale)
            return false;
        n->sums_stale = stale;
        memset(stale, 0xff, (nb + 63) / 64 * sizeof *stale);
        n->sums_nb = nb;
    }
    for (uint32_t b = 0; b < nb; b++)
        if (n->sums_stale[b / 64] >> (b % 64) & 1)
            s_bucket_sum(sim, n, b, n->sums[b]);
    memset(n->sums_stale, 0, (nb + 63) / 64 * sizeof *n->sums_stale);
    memcpy(sums, n->sums, nb * sizeof *sums);
    if (sim->check_digest) {
        sos_digest_entry_t *e = s_dig_entries(sim, n);
        uint8_t(*fresh)[16] = malloc(nb * sizeof *fresh);
        if (e && fresh) {
            sos_digest_bucket_sums(e, n->n_dig, nb, fresh);
            for (uint32_t b = 0; b < nb; b++)
                if (memcmp(fresh[b], sums[b], 16) != 0) {
                    sim_violation(sim, "node %u: its kept sum of bucket %u is stale", n->idx, b);
                    break;
                }
        }
        free(fresh);
    }
    return true;
}

/* ------------------------------------------------------------ messages ---- */

/*  The suspects a SYNC of n names, by the core's rule (node/sos_core_fd.h, as sosnode):
    the listed workers that failed here, at the highest version held, then the workers it
    removed lately, at the version removed. Without the latter, a dead node that was in
    nobody's view when it died is found by the others only when one of them happens to pick
    it outside its view: at 40 nodes some never did in 120 rounds (churn, seed 3), and kept
    listing it. Named, it is probed by whoever still lists it, as SWIM spreads a member's
    death; a node that has refuted since holds a newer version and ignores the name. */
static bool s_listed(sos_txn_t *txn, const sim_node_t *peer, uint64_t *held);

static void
s_suspects(sim_t *sim, sim_node_t *n, sos_gmsg_t *msg)
{
    msg->n_suspects = 0;
    sos_txn_t *txn = s_txn(sim, n);
    if (!txn)
        return;
    for (size_t s = 0; s < n->cap_peers && msg->n_suspects < SOS_SUSPECTS_MAX; s++) {
        sim_peer_t *p = &n->peers[s];
        if (!p->key)
            continue;
        const sim_node_t *t = &sim->nodes[p->key - 1];
        uint64_t held;
        sos_core_fd_who_t who = {.listed = s_listed(txn, t, &held), .genesis = t->genesis};
        if (sos_core_fd_names(txn, t->id.pk, &who, &p->fd, sim->now,
                              &msg->suspects[msg->n_suspects]))
            msg->n_suspects++;
    }
    if (n->named_removed)
        msg->n_suspects = sos_core_fd_suspects_removed(n->named_removed, sim->now, msg->suspects,
                                                       msg->n_suspects);
}

/*  Encode and queue a message. As the node's: a SYNC and a SYNC_ACK carry n's record (a
    sign of life) and the suspects n names; the others neither. */
static void
s_reply(sim_t *sim, sim_node_t *n, uint32_t to, sim_msg_type_t type, sos_gmsg_t *msg,
        const uint8_t *const *wires, const size_t *lens, uint32_t n_wires)
{
    msg->has_self = type == MSG_SYNC || type == MSG_SYNC_ACK;
    if (msg->has_self)
        msg->self = n->self;
    msg->n_suspects = 0;
    if (type == MSG_SYNC || type == MSG_SYNC_ACK)
        s_suspects(sim, n, msg);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (sos_gmsg_encode(&sb, msg, wires, lens, n_wires) == SOS_OK) {
        s_send(sim, n, to, type, &sb);
        if (type == MSG_DELTA || type == MSG_DELTA_ACK)
            sim->records_sent += n_wires;
    } else
        sim_violation(sim, "node %u: a message it built does not encode", n->idx);
    msgpack_sbuffer_destroy(&sb);
}

/*  Push rec at once to fanout random peers of the view (not not_to): a RUMOR. */
static void
s_rumor(sim_t *sim, sim_node_t *n, const sos_record_t *rec, uint32_t not_to)
{
    /*  With an active view a rumor goes over the links only. */
    size_t among = sim->o.active_view ? n->active.n : n->n_view;
    if (among == 0)
        return;
    const uint8_t *w = rec->wire;
    size_t l = rec->wire_len;
    for (uint32_t k = 0; k < sim->o.fanout; k++) {
        size_t i = sim_rng_below(&sim->rng, among);
        uint32_t to = sim->o.active_view ? (uint32_t)n->active.peers[i] : n->view[i];
        if (to == not_to)
            continue;
        sos_gmsg_t out;
        memset(&out, 0, sizeof out);
        s_reply(sim, n, to, MSG_RUMOR, &out, &w, &l, 1);
    }
}

/* ------------------------------------------------------------ exchanges ----

    The exchanges a node starts are the core's state machine (node/sos_core_exchange.h),
    driven through the transitions the node drives (node/sos_gossip.c: s_exchange_start,
    s_on_reply and the tick), in the same order, under the same req_ids and deadlines:
    SYNC, then done, a DIGEST or a DELTA after the SYNC_ACK, a DELTA after the DIGEST_ACK,
    and after the DELTA_ACK done or, if either side had more (a batch cut by its cap, a
    DIGEST that left buckets out, a pass of pieces that goes on), the exchange started
    again at once. What the simulator's world lacks is mapped, not forked:
    - No sockets. A message is delivered (or lost) whether a connection is open or not,
      and a send never fails, so an exchange is picked open (DO_SYNC) when the node would
      hold a connection (every listed worker has one, or with --active-view a link, or
      the short-lived connection the slot already holds). DO_OPEN, outside the view, takes
      a short-lived connection, which is up at once in virtual time, and sends the SYNC
      then, or is refused (counted) and tried again by a later round as on the node.
      CONNECTING and sos_exchange_not_sent wait for a socket's handshake, which there is
      none of here, so they never occur.
    - No tick. The node looks at every deadline each quarter interval; here each step that
      sets one schedules an EV_DEADLINE at it under the step's req_id, and the event asks
      sos_exchange_tick whether that step is still waited for.
    - No per-peer struct. A node has SIM_XCHG_MAX slots (sim_xchg_t), and its piece
      cursors in a small table (sim_cursor_t), loaded into a slot's exchange when an
      exchange with that peer starts and stored back when it ends. */

static bool s_short_take(sim_t *sim, sim_node_t *n, uint64_t id, uint32_t peer);
static void s_short_free(sim_node_t *n, uint64_t id);

/*  n's cursor through a too large bucket at peer, or NULL; with create, a slot for one
    (the table made at first use; a full table gives up the slot the peer's index falls
    on: the cursor is found again by the next exchange with that peer). */
static sim_cursor_t *
s_cursor(sim_node_t *n, uint32_t peer, bool create)
{
    if (!n->cursors) {
        if (!create)
            return NULL;
        n->cursors = calloc(SIM_CURSORS, sizeof *n->cursors);
        if (!n->cursors)
            return NULL;
    }
    sim_cursor_t *free_slot = NULL;
    for (int i = 0; i < SIM_CURSORS; i++) {
        if (n->cursors[i].peer == peer + 1)
            return &n->cursors[i];
        if (!n->cursors[i].peer && !free_slot)
            free_slot = &n->cursors[i];
    }
    if (!create)
        return NULL;
    sim_cursor_t *c = free_slot ? free_slot : &n->cursors[peer % SIM_CURSORS];
    memset(c, 0, sizeof *c);
    c->peer = peer + 1;
    return c;
}

/*  The exchange in x starts: the cursor kept for its peer, if any. */
static void
s_cursor_load(sim_node_t *n, sim_xchg_t *x)
{
    sim_cursor_t *c = s_cursor(n, x->peer, false);
    x->ex.cursor = c ? c->c : (sos_piece_cursor_t){0};
}

/*  The exchange in x ends: its cursor kept for the next one with that peer (a table entry
    made only for a pass under way; one made earlier follows every change). */
static void
s_cursor_store(sim_node_t *n, sim_xchg_t *x)
{
    sim_cursor_t *c = s_cursor(n, x->peer, x->ex.cursor.nb != 0);
    if (c)
        c->c = x->ex.cursor;
}

/*  The exchange in x is over (idle): as the node's s_short_release, the short-lived
    connection it held closes. */
static void
s_xchg_end(sim_node_t *n, sim_xchg_t *x)
{
    s_cursor_store(n, x);
    if (x->short_id)
        s_short_free(n, x->short_id);
    x->short_id = 0;
}

/*  The deadline of an exchange step with peer, as the node's s_exchange_timeout. */
static uint64_t
s_timeout(sim_t *sim, sim_node_t *n, uint32_t peer)
{
    sim_peer_t *p = s_peer(n, peer, true);
    return p ? sos_fd_exchange_timeout(&n->fd, &sim->fdc, &p->fd) : sim->fdc.exchange_timeout_ms;
}

/*  The step x just sent waits for its answer until its deadline (s_deadline). */
static void
s_xchg_wait(sim_t *sim, sim_node_t *n, const sim_xchg_t *x)
{
    s_schedule(sim, x->ex.deadline_mono, EV_DEADLINE, n->idx, x->ex.req_id);
}

/*  The slot that serves peer, or NULL (at most one does). */
static sim_xchg_t *
s_slot(sim_node_t *n, uint32_t peer)
{
    for (int i = 0; i < SIM_XCHG_MAX; i++)
        if (n->xchg[i].used && n->xchg[i].peer == peer)
            return &n->xchg[i];
    return NULL;
}

/*  The slot whose exchange with from waits for this reply (sos_exchange_reply), or NULL:
    a reply nobody waits for, which the node drops whole (unexpected). */
static sim_xchg_t *
s_awaited(sim_node_t *n, uint32_t from, sos_exchange_reply_t kind, uint64_t req_id)
{
    sim_xchg_t *x = s_slot(n, from);
    return x && sos_exchange_reply(&x->ex, kind, req_id) == SOS_EX_DO_TAKE ? x : NULL;
}

/*  Send x's SYNC: our digest's hash and count, our record, the suspects we name. */
static void
s_xchg_sync(sim_t *sim, sim_node_t *n, sim_xchg_t *x, sos_txn_t *txn)
{
    s_digest_current(sim, n, txn);
    sos_gmsg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.req_id = ++n->next_req;
    memcpy(msg.hash, s_digest_hash(sim, n), sizeof msg.hash);
    msg.n_origins = n->n_dig;
    s_reply(sim, n, x->peer, MSG_SYNC, &msg, NULL, NULL, 0);
    sos_exchange_sync_sent(&x->ex, msg.req_id, sim->now, s_timeout(sim, n, x->peer));
    s_xchg_wait(sim, n, x);
}

/*  Start an exchange with peer, unless one is under way (sos_exchange_pick): in the slot
    that serves it, else in the idle slot used longest ago (whose peer's late answer is the
    least likely still to come); with every slot busy, a later round tries again. */
static void
s_start_exchange(sim_t *sim, sim_node_t *n, uint32_t peer)
{
    sim_xchg_t *x = s_slot(n, peer), *take = NULL;
    for (int i = 0; i < SIM_XCHG_MAX && !x; i++) {
        sim_xchg_t *s = &n->xchg[i];
        if (s->ex.state != SOS_EX_IDLE)
            continue;
        if (!take || (take->used && (!s->used || s->ex.sent_mono < take->ex.sent_mono)))
            take = s;
    }
    sim_peer_t *p = s_peer(n, peer, true);
    sos_txn_t *txn = s_txn(sim, n);
    if ((!x && !take) || !p || !txn)
        return;
    bool open = !sim->o.active_view || sos_core_view_has(&n->active, peer) || (x && x->short_id);
    sos_exchange_t fresh = {0};
    sos_exchange_do_t next = sos_exchange_pick(x ? &x->ex : &fresh, open);
    if (next == SOS_EX_DO_NOTHING)
        return; /* one at a time with a peer */
    uint64_t short_id = 0;
    if (next == SOS_EX_DO_OPEN) {
        /*  Outside the active view: a short-lived connection, up at once here (see above). */
        short_id = ++n->next_req;
        if (!s_short_take(sim, n, short_id, peer))
            return;
    }
    if (!x) {
        x = take;
        memset(x, 0, sizeof *x);
        x->used = true;
        x->peer = peer;
    }
    if (short_id)
        x->short_id = short_id;
    s_cursor_load(n, x);
    s_xchg_sync(sim, n, x, txn);
}

static bool
s_listed(sos_txn_t *txn, const sim_node_t *peer, uint64_t *held)
{
    *held = 0;
    sos_dir_held_max(txn, peer->id.pk, held);
    return sos_dir_get_worker(txn, peer->id.pk, NULL, NULL) == SOS_OK;
}

/*  The core's context for n's exchanges (node/sos_core_sync.h): the simulator keeps no
    gap table, and its nodes are at private addresses, so records may name those (as on a
    node that advertises one). */
static sos_sync_ctx_t
s_sync_ctx(const sim_node_t *n)
{
    return (sos_sync_ctx_t){.self_id = n->id.pk, .allow_private = true};
}

/*  from named e's origin a suspect at e's version: in a SYNC's suspects, or by a removal in
    its digest. What that means is the core's (sos_core_fd_named); cap: how far back e's age
    may date the suspicion (sos_fd_spread_time). True if a listed worker's suspicion started
    or was confirmed. */
static bool
s_named(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_digest_entry_t *e,
        uint64_t cap)
{
    uint32_t s = sim_lookup(sim, e->origin);
    bool listed = s != UINT32_MAX && sos_dir_get_worker(txn, e->origin, NULL, NULL) == SOS_OK;
    /*  The namer confirms only if it is a worker that has answered us itself (an RTT
        sample, as the node's last_ok): fresh keys cost nothing. */
    sim_peer_t *sp = s_peer(n, from, false);
    uint64_t sender_held;
    sos_core_fd_namer_t by = {
        .suspect = {.listed = listed, .genesis = s != UINT32_MAX && sim->nodes[s].genesis},
        .namer = sim->nodes[from].id.pk,
        .namer_answered = sp && sp->fd.srtt_ms && s_listed(txn, &sim->nodes[from], &sender_held)};
    /*  A peer entry is made only for a suspicion that starts. */
    sim_peer_t *p = s == UINT32_MAX ? NULL : s_peer(n, s, false);
    sos_fd_peer_t fd = p ? p->fd : (sos_fd_peer_t){0};
    sos_sync_ctx_t ctx = s_sync_ctx(n);
    sos_named_t named = sos_core_fd_named(&ctx, txn, e, &by, &fd, cap, sim->now, NULL);
    if (named == SOS_NAMED_SUSPECT && (p || (p = s_peer(n, s, true))))
        p->fd = fd;
    if (named == SOS_NAMED_REFUTE) {
        if (sos_fd_refute(&n->fd, &sim->fdc, e->version, n->version, n->refute_pending, sim->now) ==
            SOS_FD_REFUTE)
            n->refute_pending = true;
        return false;
    }
    return named == SOS_NAMED_SUSPECT && p;
}

static void
s_on_suspects(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_gmsg_t *msg)
{
    uint64_t n_workers = 0;
    sos_dir_counts(txn, &n_workers, NULL, NULL);
    uint64_t cap = sos_fd_spread_time(&n->fd, &sim->fdc, n_workers);
    for (uint32_t i = 0; i < msg->n_suspects; i++)
        s_named(sim, n, txn, from, &msg->suspects[i], cap);
}

/*  True if rec's bytes are a record some simulated node stored: it verified them (or
    signed them) before, and the same bytes verify the same, so the check is not repeated
    (10,000 nodes each receive each of 10,000 records several times). Decoding checks the
    signature and every bound, so bytes that are not pooled are decoded in full. */
static bool
s_verified(const sim_t *sim, const sos_record_t *rec)
{
    return sos_store_pool_holds(sim->pool, rec->wire, rec->wire_len);
}

static bool
s_verified_fn(void *arg, const sos_record_t *rec)
{
    return s_verified(arg, rec);
}

/*  The records of a message as the node takes them (node/sos_core_sync.h): triaged first,
    so that those held, stale, tombstoned or naming an endpoint a node may not connect to
    are neither verified nor merged; the rest verified, all before merging any (one bad
    record rejects the message); then merged. A RUMOR's new records are pushed on. False:
    the message is refused (a record does not verify), or no memory. */
static bool
s_merge_records(sim_t *sim, sim_node_t *n, sos_txn_t *txn, const sos_gmsg_t *msg, sos_source_t src,
                uint32_t from)
{
    uint8_t *checks = calloc(msg->n_records ? msg->n_records : 1, 1);
    if (!checks)
        return false;
    sos_sync_ctx_t ctx = s_sync_ctx(n);
    sos_sync_triage_t t;
    if (sos_core_sync_triage(&ctx, txn, msg->records, msg->n_records, checks, &t) != SOS_OK ||
        sos_core_sync_verify(msg->records, msg->n_records, checks, s_verified_fn, sim, NULL) !=
            SOS_OK) {
        n->dropped_bad++;
        free(checks);
        return false;
    }
    for (uint32_t i = 0; i < msg->n_records; i++)
        if (checks[i] == SOS_CHECK_VERIFY && s_merge(sim, n, txn, &msg->records[i], src) &&
            src == SOS_SRC_RUMOR)
            s_rumor(sim, n, &msg->records[i], from); /* new to us: pushed on */
    free(checks);
    return true;
}

/*  A: the answerer's entries (theirs) against ours (mine), both sorted: the core's DELTA
    (sos_core_delta_out, as the node's): the records it lacks and what we want; its removals
    of workers we list are taken as if it had named them suspects. Sent, the exchange in x
    waits for the DELTA_ACK; not made (no memory), it fails at the deadline it has. */
static void
s_send_delta(sim_t *sim, sim_node_t *n, sos_txn_t *txn, sim_xchg_t *x, sos_digest_entry_t *mine,
             uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs)
{
    sos_sync_ctx_t ctx = s_sync_ctx(n);
    sos_delta_out_t out;
    if (sos_core_delta_out(&ctx, txn, mine, n_mine, theirs, n_theirs, ++n->next_req, &out) !=
        SOS_OK)
        return;
    for (uint32_t i = 0; i < out.d.n_removed; i++)
        if (s_named(sim, n, txn, x->peer, &out.d.removed[i], 0)) /* no age: nothing to date */
            sim->removals_heard++;
    s_reply(sim, n, x->peer, MSG_DELTA, &out.msg, out.d.batch.wires, out.d.batch.lens,
            out.d.batch.n);
    sos_exchange_delta_sent(&x->ex, out.msg.req_id, out.d.more, sim->now,
                            s_timeout(sim, n, x->peer));
    s_xchg_wait(sim, n, x);
    sos_delta_out_release(&out);
}

/*  B: a DIGEST names the buckets in which the initiator's digest differs, or a piece of a
    bucket too large for one answer: the core's answer (sos_core_answer_digest, as the
    node's), our entries of them, the piece first and whole buckets in the room left, and
    what we covered. Anyone may ask; nothing is kept. */
static void
s_on_digest(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_gmsg_t *msg)
{
    s_digest_current(sim, n, txn);
    const uint8_t *hash = s_digest_hash(sim, n); /* kept in n: the scratch is reused below */
    s_refresh_digest(sim, n, txn);
    sos_digest_view_t mine = {.hash = hash, .n = n->n_dig, .entries = s_dig_entries(sim, n)};
    sos_digest_answer_t a;
    sos_rc rc = sos_core_answer_digest(&mine, msg, sim->digest_max, &a);
    if (rc == SOS_ERR_MALFORMED)
        n->dropped_bad++;
    else if (rc == SOS_OK)
        s_reply(sim, n, from, MSG_DIGEST_ACK, &a.reply, NULL, NULL, 0);
    sos_digest_answer_release(&a);
}

/*  The core's bucket sums callback (sos_digest_view_t): n's sums into buf, made at the
    first call. */
typedef struct {
    sim_t *sim;
    sim_node_t *n;
    uint8_t (*buf)[16];
} s_sums_arg_t;

static const uint8_t (*s_sums_fn(void *arg, uint32_t nb))[16]
{
    s_sums_arg_t *a = arg;
    free(a->buf);
    a->buf = malloc(nb * sizeof *a->buf);
    if (!a->buf || !s_bucket_sums(a->sim, a->n, nb, a->buf))
        return NULL;
    return (const uint8_t(*)[16])a->buf;
}

static void
s_local_ok(sim_t *sim, sim_node_t *n, sos_txn_t *txn, const sim_node_t *peer)
{
    sos_worker_local_t l;
    if (sos_dir_get_worker(txn, peer->id.pk, NULL, &l) != SOS_OK)
        return;
    bool on_probation = !l.last_ok && !peer->genesis && s_in_view(n, peer->idx);
    if (on_probation)
        n->n_probation--; /* promoted: a signed answer from that key at that url */
    /*  An answer while on probation is always a sample (sos_probation_outcome). */
    bool failed_sampled = false;
    if (sos_probation_outcome(&n->probation, on_probation, true, &failed_sampled))
        sim->probation_answered++;
    l.last_seen = sim->now;
    l.last_ok = sim->now;
    l.fail_count = 0;
    sos_dir_put_worker_local(txn, peer->id.pk, &l);
}

/*  The sender's own record in a SYNC or SYNC_ACK, taken as a sign of life only if it is
    its own worker record (the network knows who sent): another's is dropped, and the rest
    of the message taken, as the node does (sos_core_sync_self_ok). */
static void
s_take_self(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_gmsg_t *msg)
{
    if (!msg->has_self)
        return;
    if (sos_core_sync_self_ok(&msg->self, sim->nodes[from].id.pk))
        s_merge(sim, n, txn, &msg->self, SOS_SRC_DIRECT);
    else
        n->dropped_bad++;
}

/*  A: a SYNC_ACK. As the node's s_on_reply: taken only if an exchange waits for it
    (sos_exchange_reply); else it may answer a SYNC given up on, a round-trip sample, and
    is dropped whole. One of the wrong shape is refused before it counts, and its exchange
    fails at the deadline. Taken: a success, the sender's record (a sign of life), and what
    follows is the core's (sos_core_take_sync_ack): done; with the whole digest, the DELTA
    at once; with bucket sums, a DIGEST for the next piece of a bucket too large for one
    answer, if we are covering one at this peer and it still differs, else for the buckets
    that differ (from a random one on). */
static void
s_on_sync_ack(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, sos_gmsg_t *msg)
{
    sim_xchg_t *x = s_awaited(n, from, SOS_EX_REPLY_SYNC_ACK, msg->req_id);
    if (!x) {
        sim_xchg_t *was = s_slot(n, from);
        uint64_t rtt = 0;
        if (was &&
            sos_exchange_late(&was->ex, SOS_EX_REPLY_SYNC_ACK, msg->req_id, sim->now, &rtt)) {
            sim->replies_late++;
            sim_peer_t *p = s_peer(n, from, true);
            if (p)
                sos_fd_rtt_sample(&n->fd, &p->fd, rtt);
        }
        return;
    }
    if (!sos_core_sync_ack_ok(msg)) {
        n->dropped_bad++;
        return;
    }
    s_take_self(sim, n, txn, from, msg);
    sim_peer_t *p = s_peer(n, from, true);
    if (p) {
        sos_fd_rtt_sample(&n->fd, &p->fd, sim->now - x->ex.sent_mono);
        sos_fd_clear(&p->fd);
        p->genesis_next = 0; /* as the node: a genesis node that answers is back */
    }
    if (n->probes) /* it answered: a late verdict must not count */
        sos_fd_probe_end(n->probes, sim->nodes[from].id.pk);
    s_local_ok(sim, n, txn, &sim->nodes[from]);
    s_on_suspects(sim, n, txn, from, msg); /* as the node: a SYNC_ACK names them too */
    /*  In sync, the core needs none of the digest: at rest nearly every SYNC_ACK is, and
        the digest is not made for them. */
    bool in_sync = msg->flags & SOS_GMSG_IN_SYNC;
    if (!in_sync)
        s_refresh_digest(sim, n, txn);
    s_sums_arg_t arg = {.sim = sim, .n = n};
    sos_digest_view_t mine = {.hash = n->hash,
                              .n = n->n_dig,
                              .entries = in_sync ? NULL : s_dig_entries(sim, n),
                              .sums = s_sums_fn,
                              .sums_arg = &arg};
    sos_ack_plan_t plan;
    sos_rc rc =
        sos_core_take_sync_ack(&mine, msg, &x->ex.cursor, s_random, sim, sim->digest_max, &plan);
    free(arg.buf);
    if (rc != SOS_OK)
        goto done; /* no memory (the shape was checked): the exchange times out */
    sos_exchange_do_t next = sos_ack_plan_step(&plan, &x->ex);
    if (next == SOS_EX_DO_DELTA && mine.entries)
        s_send_delta(sim, n, txn, x, (sos_digest_entry_t *)mine.entries, n->n_dig, msg->digest,
                     msg->n_digest);
    if (next != SOS_EX_DO_DIGEST)
        goto done;
    sos_gmsg_t out;
    sos_ack_plan_digest(&plan, ++n->next_req, &out);
    s_reply(sim, n, from, MSG_DIGEST, &out, NULL, NULL, 0);
    sos_exchange_digest_sent(&x->ex, out.req_id, plan.nb, plan.asked, plan.n_asked,
                             plan.has_piece ? &plan.piece : NULL, plan.more, sim->now,
                             s_timeout(sim, n, from));
    s_xchg_wait(sim, n, x);
done:
    sos_ack_plan_release(&plan);
    if (x->ex.state == SOS_EX_IDLE)
        s_xchg_end(n, x);
}

/*  A: the answer to our DIGEST: checked against what we asked and diffed over exactly what
    it covered, as on the node (sos_core_take_digest_ack), the cursor moved
    (sos_exchange_digest_ack) and the DELTA sent. One nobody waits for is dropped; a broken
    one too, and its exchange fails at the deadline. */
static void
s_on_digest_ack(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, sos_gmsg_t *msg)
{
    sim_xchg_t *x = s_awaited(n, from, SOS_EX_REPLY_DIGEST_ACK, msg->req_id);
    if (!x)
        return; /* late, or never asked: the node drops it as unexpected */
    s_refresh_digest(sim, n, txn);
    sos_digest_view_t view = {.hash = n->hash, .n = n->n_dig, .entries = s_dig_entries(sim, n)};
    sos_digest_entry_t *mine = NULL;
    uint32_t n_mine = 0;
    sos_rc rc = sos_core_take_digest_ack(&view, msg, x->ex.nb, x->ex.asked,
                                         x->ex.piece_asked ? &x->ex.piece : NULL, &mine, &n_mine);
    if (rc == SOS_ERR_MALFORMED)
        n->dropped_bad++;
    if (rc != SOS_OK)
        return;
    const sos_bucket_piece_t *piece = msg->has_piece ? &msg->piece : NULL;
    if (sos_exchange_digest_ack(&x->ex, msg->buckets, msg->n_buckets, piece) == SOS_EX_DO_DELTA) {
        sim->digests_by_bucket++;
        if (piece)
            sim->digests_pieces++;
        s_send_delta(sim, n, txn, x, mine, n_mine, msg->digest, msg->n_digest);
    }
    free(mine);
}

/*  A: the answer to our DELTA, with the records we wanted, taken as the node takes them
    (one nobody waits for is dropped whole, and one with a bad record is refused: its
    exchange fails at the deadline). Then the exchange is over, or starts again at once if
    either side had more (sos_exchange_delta_ack), on the same slot and connection. */
static void
s_on_delta_ack(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_gmsg_t *msg)
{
    sim_xchg_t *x = s_awaited(n, from, SOS_EX_REPLY_DELTA_ACK, msg->req_id);
    if (!x || !s_merge_records(sim, n, txn, msg, SOS_SRC_DELTA, from))
        return;
    if (sos_exchange_delta_ack(&x->ex, msg->flags & SOS_GMSG_MORE) == SOS_EX_DO_SYNC) {
        sim->exchanges_again++;
        s_cursor_store(n, x); /* this exchange ends, the next loads it */
        s_start_exchange(sim, n, from);
    }
    if (x->ex.state == SOS_EX_IDLE)
        s_xchg_end(n, x);
}

static void
s_on_sync(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_gmsg_t *msg)
{
    s_digest_current(sim, n, txn);
    sos_digest_view_t mine = {.hash = s_digest_hash(sim, n), .n = n->n_dig};
    sos_gmsg_t out;
    sos_answer_sync_t kind = sos_core_answer_sync(&mine, msg, &out);
    uint8_t(*sums)[16] = NULL;
    if (kind == SOS_ANSWER_WHOLE) {
        s_refresh_digest(sim, n, txn);
        out.digest = s_dig_entries(sim, n);
        if (!out.digest)
            return;
        out.n_digest = n->n_dig;
    } else if (kind == SOS_ANSWER_SUMS) {
        if (!sim->o.cheap_digest)
            s_refresh_digest(sim, n, txn);
        sums = malloc(out.nb * sizeof *sums);
        if (!sums || !s_bucket_sums(sim, n, out.nb, sums)) {
            free(sums);
            return;
        }
        out.sums = sums;
    }
    s_reply(sim, n, from, MSG_SYNC_ACK, &out, NULL, NULL, 0);
    free(sums);
}

/*  B: A's records, and what A wants of ours: the DELTA_ACK is the core's
    (sos_core_answer_delta), sent as the node sends it, even when A wants nothing. */
static void
s_on_delta(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_gmsg_t *msg)
{
    s_merge_records(sim, n, txn, msg, SOS_SRC_DELTA, from);
    sos_sync_delta_t d;
    sos_sync_ctx_t ctx = s_sync_ctx(n);
    sos_gmsg_t out;
    if (sos_core_answer_delta(&ctx, txn, msg, &d, &out) != SOS_OK)
        return;
    s_reply(sim, n, from, MSG_DELTA_ACK, &out, d.batch.wires, d.batch.lens, d.batch.n);
    sos_sync_delta_release(&d);
}

static void
s_deliver(sim_t *sim, sim_msg_t *m)
{
    sim_node_t *n = &sim->nodes[m->to];
    s_digest_u64(sim, sim->now);
    s_digest_u64(sim, ((uint64_t)m->from << 32) | m->to);
    s_digest_u64(sim, ((uint64_t)m->type << 32) | m->len);
    if (!n->alive || n->hostile) {
        sim->dropped_dead++;
        return;
    }
    if (sim->partitioned && sim->nodes[m->from].group != n->group) {
        sim->dropped_partition++;
        return;
    }
    sos_txn_t *txn = s_txn(sim, n);
    if (!txn)
        return;
    if (m->type >= MSG_PROBE_REQ && m->type <= MSG_PONG) {
        s_on_probe_msg(sim, n, txn, m);
        return;
    }
    sos_gmsg_t msg;
    sos_rc rc = sos_gmsg_decode_unverified(&msg, m->body, m->len);
    /*  The sender's own record is only parsed by the decode: verify it here. One that does
        not verify rejects the message, as any bad record does. */
    if (rc == SOS_OK && msg.has_self && !s_verified(sim, &msg.self)) {
        sos_record_t check;
        rc = sos_record_decode(&check, msg.self.wire, msg.self.wire_len);
    }
    if (rc || m->type < MSG_SYNC || (m->type > MSG_RUMOR && m->type != MSG_DIGEST_ACK) ||
        m->type == MSG_JUNK) {
        n->dropped_bad++;
        sos_gmsg_release(&msg);
        return;
    }
    /*  A SYNC_ACK's record is taken only if the SYNC_ACK is awaited (s_on_sync_ack). */
    if (m->type != MSG_SYNC_ACK)
        s_take_self(sim, n, txn, m->from, &msg);
    if (m->type == MSG_SYNC)
        s_on_suspects(sim, n, txn, m->from, &msg);
    switch (m->type) {
    case MSG_SYNC:
        s_on_sync(sim, n, txn, m->from, &msg);
        break;
    case MSG_SYNC_ACK:
        s_on_sync_ack(sim, n, txn, m->from, &msg);
        break;
    case MSG_DIGEST:
        s_on_digest(sim, n, txn, m->from, &msg);
        break;
    case MSG_DIGEST_ACK:
        s_on_digest_ack(sim, n, txn, m->from, &msg);
        break;
    case MSG_DELTA:
        s_on_delta(sim, n, txn, m->from, &msg);
        break;
    case MSG_DELTA_ACK:
        s_on_delta_ack(sim, n, txn, m->from, &msg);
        break;
    case MSG_RUMOR:
        s_merge_records(sim, n, txn, &msg, SOS_SRC_RUMOR, m->from);
        break;
    default:
        break;
    }
    sos_gmsg_release(&msg);
}

/* ------------------------------------------------------------ the round ---- */

static void
s_remove(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t target, sim_peer_t *p)
{
    sim_node_t *t = &sim->nodes[target];
    uint64_t held = 0;
    sos_dir_held_max(txn, t->id.pk, &held);
    if (t->genesis)
        sim_violation(sim, "node %u removed genesis node %u", n->idx, target);
    if (s_in_view(n, target) && s_probation_of(sim, txn, target))
        n->n_probation--; /* its stats go with its record */
    bool same_side = !sim->partitioned || t->group == n->group;
    if (t->alive && !t->hostile && same_side) {
        sim->false_removals++;
        if (sim->o.trace)
            printf("false removal: node %u removed %u (v%llu, its own v%llu): %u failures here, "
                   "%u confirmations, suspected for %llu ms, health %u\n",
                   n->idx, target, (unsigned long long)held, (unsigned long long)t->version,
                   p->fd.fail_count, p->fd.n_confirm,
                   (unsigned long long)(sim->now - p->fd.suspect_mono), n->fd.health);
    }
    if (sos_core_fd_remove(txn, t->id.pk, sim->now + sim->tombstone_ttl_ms, NULL, NULL) != SOS_OK) {
        sim_violation(sim, "node %u: removal of %u failed in the store", n->idx, target);
        return;
    }
    s_dig_touch(sim, n, txn, t->id.pk);
    /*  As the node retires a removed worker's peer: an exchange under way with it ends, no
        failure counted, and its answers are dropped as unexpected. */
    sim_xchg_t *x = s_slot(n, target);
    if (x && x->ex.state != SOS_EX_IDLE) {
        sos_exchange_failed(&x->ex);
        s_xchg_end(n, x);
    }
    p->removed_version = held;
    if (!n->named_removed)
        n->named_removed = calloc(1, sizeof *n->named_removed);
    if (n->named_removed)
        sos_core_fd_name_removed(n->named_removed, t->id.pk, held, sim->o.interval_ms,
                                 p->fd.suspect_mono, sim->now);
    /*  As sosnode: whoever removed a worker re-signs its own record next round, so that of
        two nodes that removed each other (a partition) the later one's record is newer than
        the other's tombstone of it, and the two find each other again after a heal. */
    n->refute_pending = true;
    sos_fd_clear(&p->fd);
    p->fd.fail_count = 0;
    p->probation_failed = false; /* listed again later: a new probation */
    s_view_del(n, target);
    s_link_close(sim, n->idx, target);
    n->dirty = true;
    n->removals++;
    sim->removals++;
    s_digest_u64(sim, ((uint64_t)n->idx << 32) | target);
}

/*  The core's random source (sos_random_fn) over the run's. */
static void
s_random(void *arg, void *buf, size_t len)
{
    sim_rng_bytes(&((sim_t *)arg)->rng, buf, len);
}

static void
s_round(sim_t *sim, sim_node_t *n)
{
    sos_txn_t *txn = s_txn(sim, n);
    if (!txn)
        return;
    sos_fd_round(&n->fd, &sim->fdc, sim->now);
    if (sim->check_digest && n->n_probation != s_probation_count(sim, n, txn))
        sim_violation(sim, "node %u: its kept probation count %u differs from its store's %u",
                      n->idx, n->n_probation, s_probation_count(sim, n, txn));
    if (n->refute_pending)
        s_resign(sim, n, txn);
    uint64_t n_workers = 0;
    sos_dir_counts(txn, &n_workers, NULL, NULL);
    if (sim->o.active_view)
        s_view_upkeep(sim, n, n_workers);
    /*  Removals first. */
    for (size_t s = 0; s < n->cap_peers; s++) {
        sim_peer_t *p = &n->peers[s];
        if (!p->key || (!p->fd.suspect_mono && !p->fd.probe))
            continue;
        uint32_t target = p->key - 1;
        uint64_t held;
        sos_core_fd_who_t who = {.listed = s_listed(txn, &sim->nodes[target], &held),
                                 .genesis = sim->nodes[target].genesis};
        if (sos_core_fd_removable(&n->fd, &sim->fdc, &p->fd, &who, n_workers, sim->now))
            s_remove(sim, n, txn, target, p);
    }
    /*  Whom the round picks, by the core's rule (node/sos_core_pick.h): genesis nodes not
        listed yet, up to 2 suspects as probes, fanout from the rest. */
    size_t cap = n->n_view + sim->o.genesis;
    uint32_t *who = malloc(cap * sizeof *who);
    sos_pick_class_t *cls = malloc(cap * sizeof *cls);
    size_t *out = malloc(cap * sizeof *out);
    size_t m = 0;
    if (who && cls && out) {
        for (size_t i = 0; i < n->n_view; i++) {
            sim_peer_t *p = s_peer(n, n->view[i], false);
            bool backing_off = p && sim->nodes[n->view[i]].genesis && sim->now < p->genesis_next;
            bool suspect = p && (p->fd.fail_count > 0 || p->fd.probe);
            /*  With an active view the pool is the view; a suspect outside it is still
                probed, over a short-lived connection. */
            if (sim->o.active_view && !suspect && !sos_core_view_has(&n->active, n->view[i]))
                continue;
            who[m] = n->view[i];
            cls[m++] = backing_off ? SOS_PICK_SKIP : suspect ? SOS_PICK_SUSPECT : SOS_PICK_POOL;
        }
        for (uint32_t g = 0; g < sim->o.genesis; g++) {
            if (g == n->idx)
                continue;
            sim_peer_t *p = s_peer(n, g, true);
            bool listed = s_in_view(n, g);
            bool due = p && sim->now >= p->genesis_next;
            if (listed)
                continue; /* classed with the view */
            who[m] = g;
            cls[m++] = due ? SOS_PICK_ALWAYS : SOS_PICK_SKIP;
        }
        size_t picked = sos_core_round_pick(cls, m, sim->o.fanout, 2, s_random, sim, out, NULL);
        for (size_t k = 0; k < picked; k++) {
            s_start_exchange(sim, n, who[out[k]]);
        }
        /*  And now and then one exchange outside the view, so that the directory is kept
            in agreement beyond the links (after a partition heals, the views hold one side
            each until then). */
        if (sim->o.active_view && n->n_view && sim_rng_chance(&sim->rng, SIM_OUTSIDE_P)) {
            uint32_t t = n->view[sim_rng_below(&sim->rng, n->n_view)];
            if (!sos_core_view_has(&n->active, t))
                s_start_exchange(sim, n, t);
        }
    }
    free(who);
    free(cls);
    free(out);
    uint64_t late = n->slow_ms ? sim_rng_below(&sim->rng, n->slow_ms) : 0;
    s_schedule(sim, sim->now + sim->o.interval_ms + late, EV_ROUND, n->idx, 0);
}

/*  A failed exchange with target (p, its peer entry) counts toward its suspicion. probed:
    the verdict of an indirect probe, started while this node was healthy, is not withheld
    if this node lags by the time it comes (the helpers failed to reach it too). */
static void
s_count_failure(sim_t *sim, sim_node_t *n, uint32_t target, sim_peer_t *p, bool probed)
{
    sos_txn_t *txn = s_txn(sim, n);
    if (!txn)
        return;
    sim_node_t *t = &sim->nodes[target];
    uint64_t held, n_workers = 0;
    sos_core_fd_who_t who = {.listed = s_listed(txn, t, &held), .genesis = t->genesis};
    sos_dir_counts(txn, &n_workers, NULL, NULL);
    bool on_probation = s_in_view(n, target) && s_probation_of(sim, txn, target);
    sos_core_fd_fail_t out;
    sos_core_fd_failure(&n->fd, &sim->fdc, &p->fd, &who, probed, held, n_workers, sim->now, &out);
    /*  As the node: a counted failure of a probation worker is a sample, once per worker
        and probation. */
    if (out.fd != SOS_FD_WITHHELD &&
        sos_probation_outcome(&n->probation, on_probation, false, &p->probation_failed))
        sim->probation_failed++;
    if (out.retry_mono)
        p->genesis_next = out.retry_mono; /* a genesis node, never removed: backs off */
    if (out.remove) {
        s_remove(sim, n, txn, target, p);
        return;
    }
    if (sim->o.active_view && p->fd.fail_count >= 2 && sos_core_view_has(&n->active, target)) {
        s_link_close(sim, n->idx, target);
        sim->links_failed++;
    }
}

/* ------------------------------------------------------- indirect probes ----

    As sosnode (node/sos_gossip.c, s_probe_*; PROTOCOL.md, "Indirect probes"): a missed
    exchange with a listed peer that is not failing here yet counts only when none of up to
    --probe-helpers other peers reaches it. The requester asks helpers that are listed, have
    answered it (an RTT sample), are suspected by nobody here, and are connected (with
    --active-view: its links); each helper PINGs the target on a connection it holds (every
    listed worker; with --active-view a link, or a short-lived connection if one is free,
    closed when the PING is answered or its deadline passes) and answers PROBE_ACK. The
    tables are the core's (sos_fd.h); the node's per-requester rate limit of PROBE_REQs is
    not modelled (honest requesters stay under it). */

static void
s_probe_send(sim_t *sim, sim_node_t *n, uint32_t to, sim_msg_type_t type, uint64_t req_id,
             const uint8_t target[SOS_NODEID_BYTES], bool reached)
{
    sos_probe_msg_t m = {.req_id = req_id, .reached = reached};
    memcpy(m.target, target, SOS_NODEID_BYTES);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (sos_probe_encode(&sb, &m) == SOS_OK)
        s_send(sim, n, to, type, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/*  A short-lived connection to peer for the PING id, if one is free. */
static bool
s_short_take(sim_t *sim, sim_node_t *n, uint64_t id, uint32_t peer)
{
    for (int i = 0; i < SIM_SHORT_MAX; i++)
        if (!n->shorts[i].req_id) {
            n->shorts[i].req_id = id;
            n->shorts[i].peer = peer;
            n->n_short++;
            sim->shorts_opened++;
            s_conn_check(sim, n);
            return true;
        }
    sim->shorts_refused++;
    return false;
}

static void
s_short_free(sim_node_t *n, uint64_t id)
{
    for (int i = 0; i < SIM_SHORT_MAX; i++)
        if (n->shorts[i].req_id == id) {
            n->shorts[i].req_id = 0; /* its exchange or PING is over: the connection closes */
            n->n_short--;
        }
}

/*  target (p) missed an exchange with n: ask helpers to reach it. True if the failure waits
    for their verdict (a probe started, or one is under way); false if it counts now. */
static bool
s_probe_start(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t target, sim_peer_t *p)
{
    sim_node_t *t = &sim->nodes[target];
    uint64_t held;
    sos_core_fd_who_t who = {.listed = s_listed(txn, t, &held), .genesis = t->genesis};
    if (!sos_core_fd_probe_first(&n->fd, &p->fd, &who, sim->o.probe_helpers))
        return false;
    if (n->probes && sos_fd_probe_pending(n->probes, t->id.pk))
        return true; /* one verdict for the failures until it comes */
    if (!n->probes && !(n->probes = calloc(1, sizeof *n->probes)))
        return false;
    size_t among = sim->o.active_view ? n->active.n : n->n_view;
    uint32_t *cand = malloc((among ? among : 1) * sizeof *cand);
    if (!cand)
        return false;
    size_t n_cand = 0;
    for (size_t i = 0; i < among; i++) {
        uint32_t c = sim->o.active_view ? (uint32_t)n->active.peers[i] : n->view[i];
        sim_peer_t *hp = s_peer(n, c, false);
        uint64_t h_held;
        if (c != target && hp && hp->fd.srtt_ms && hp->fd.fail_count == 0 && !hp->fd.suspect_mono &&
            (!sim->o.active_view || s_listed(txn, &sim->nodes[c], &h_held)))
            cand[n_cand++] = c;
    }
    /*  Twice the longest exchange deadline of the target and of the helpers asked, as the
        node: a helper's PING waits its own deadline, its answer one round trip more. */
    uint64_t longest = sos_fd_exchange_timeout(&n->fd, &sim->fdc, &p->fd);
    sos_fd_probe_t *probe = n_cand ? sos_fd_probe_begin(n->probes, t->id.pk, sim->now) : NULL;
    for (size_t i = 0; probe && i < n_cand && probe->n_helpers < sim->o.probe_helpers; i++) {
        size_t j = i + sim_rng_below(&sim->rng, n_cand - i);
        uint32_t h = cand[j];
        cand[j] = cand[i];
        cand[i] = h;
        uint64_t req_id = sim_rng_next(&sim->rng);
        s_probe_send(sim, n, h, MSG_PROBE_REQ, req_id, t->id.pk, false);
        sos_fd_probe_add(probe, sim->nodes[h].id.pk, req_id);
        sim->probes_sent++;
        uint64_t d = sos_fd_exchange_timeout(&n->fd, &sim->fdc, &s_peer(n, h, false)->fd);
        longest = d > longest ? d : longest;
    }
    free(cand);
    if (!probe)
        return false;
    if (probe->n_helpers == 0) {
        sos_fd_probe_end(n->probes, t->id.pk);
        return false;
    }
    probe->deadline_mono = sim->now + 2 * longest;
    s_schedule(sim, probe->deadline_mono, EV_PROBE, n->idx, 0);
    return true;
}

/*  The probe of target is over: a helper reached it, or none did. */
static void
s_probe_verdict(sim_t *sim, sim_node_t *n, const uint8_t target[SOS_NODEID_BYTES], bool reached)
{
    uint32_t t = sim_lookup(sim, target);
    sim_peer_t *p = t == UINT32_MAX ? NULL : s_peer(n, t, false);
    if (!p)
        return;
    if (!reached) {
        s_count_failure(sim, n, t, p, true);
        return;
    }
    sim->probe_saves++;
    sos_fd_clear(&p->fd);
    sos_fd_doubt(&n->fd, sim->now); /* as the node: the slow one may be us */
}

/*  A helper answers the requester of its slot i, and frees the slot and its connection. */
static void
s_help_answer(sim_t *sim, sim_node_t *n, int i, bool reached)
{
    const sos_fd_help_t *h = &n->helps->slot[i];
    uint32_t r = sim_lookup(sim, h->requester);
    if (r != UINT32_MAX)
        s_probe_send(sim, n, r, MSG_PROBE_ACK, h->req_id, h->target, reached);
    s_short_free(n, h->ping_id);
    sos_fd_help_end(n->helps, i);
}

static void
s_on_probe_req(sim_t *sim, sim_node_t *n, sos_txn_t *txn, uint32_t from, const sos_probe_msg_t *msg)
{
    uint32_t t = sim_lookup(sim, msg->target);
    uint64_t held;
    if (t == UINT32_MAX || t == from || t == n->idx || !s_listed(txn, &sim->nodes[from], &held) ||
        !s_listed(txn, &sim->nodes[t], &held) ||
        (!n->helps && !(n->helps = calloc(1, sizeof *n->helps)))) {
        sim->probes_refused++;
        return;
    }
    sim_peer_t *tp = s_peer(n, t, true);
    uint64_t ping_id = sim_rng_next(&sim->rng);
    uint64_t deadline = sim->now + (tp ? sos_fd_exchange_timeout(&n->fd, &sim->fdc, &tp->fd)
                                       : sim->fdc.exchange_timeout_ms);
    int slot = sos_fd_help_begin(n->helps, sim->nodes[from].id.pk, msg->req_id, msg->target,
                                 ping_id, deadline);
    if (slot < 0) {
        sim->probes_refused++;
        return;
    }
    sim->probes_helped++;
    /*  On a connection held already: every listed worker has one, or with an active view
        a link; otherwise a short-lived one if free, else the answer is no at once. */
    if (sim->o.active_view && !sos_core_view_has(&n->active, t) &&
        !s_short_take(sim, n, ping_id, t)) {
        s_help_answer(sim, n, slot, false);
        return;
    }
    s_probe_send(sim, n, t, MSG_PING, ping_id, msg->target, false);
    s_schedule(sim, deadline, EV_HELP, n->idx, 0);
}

/*  A probe message from from: PROBE_REQ (help), PING (answer), PONG (answer the
    requester), PROBE_ACK (a helper's verdict). */
static void
s_on_probe_msg(sim_t *sim, sim_node_t *n, sos_txn_t *txn, const sim_msg_t *m)
{
    sos_probe_msg_t msg;
    if (sos_probe_decode(&msg, m->body, m->len) != SOS_OK) {
        n->dropped_bad++;
        return;
    }
    const uint8_t *from_pk = sim->nodes[m->from].id.pk;
    switch (m->type) {
    case MSG_PROBE_REQ:
        s_on_probe_req(sim, n, txn, m->from, &msg);
        break;
    case MSG_PING:
        if (memcmp(msg.target, n->id.pk, SOS_NODEID_BYTES) == 0)
            s_probe_send(sim, n, m->from, MSG_PONG, msg.req_id, n->id.pk, true);
        break;
    case MSG_PONG: {
        int slot = n->helps ? sos_fd_help_pong(n->helps, from_pk, msg.req_id) : -1;
        if (slot >= 0)
            s_help_answer(sim, n, slot, true);
        break;
    }
    case MSG_PROBE_ACK: {
        uint8_t target[SOS_NODEID_BYTES];
        sos_fd_ack_t ack = n->probes ? sos_fd_probe_ack(n->probes, from_pk, msg.req_id, msg.target,
                                                        msg.reached, target)
                                     : SOS_FD_ACK_UNKNOWN;
        if (ack == SOS_FD_ACK_FAILED || ack == SOS_FD_ACK_REACHED)
            s_probe_verdict(sim, n, target, ack == SOS_FD_ACK_REACHED);
        break;
    }
    default:
        break;
    }
}

/*  EV_PROBE and EV_HELP: whatever passed its deadline. */
static void
s_probes_due(sim_t *sim, sim_node_t *n)
{
    uint8_t target[SOS_NODEID_BYTES];
    while (n->probes && sos_fd_probe_expired(n->probes, sim->now, target))
        s_probe_verdict(sim, n, target, false);
    for (int i; n->helps && (i = sos_fd_help_expired(n->helps, sim->now)) >= 0;)
        s_help_answer(sim, n, i, false);
}

/*  EV_DEADLINE: the step of an exchange sent under req_id, if it still waits, has failed
    (sos_exchange_tick), as the node's tick finds a SYNC_ACK, DIGEST_ACK or DELTA_ACK past
    its deadline: the exchange is over, and the miss counts toward the peer's suspicion
    once no helper reaches it. */
static void
s_deadline(sim_t *sim, sim_node_t *n, uint64_t req_id)
{
    for (int i = 0; i < SIM_XCHG_MAX; i++) {
        sim_xchg_t *x = &n->xchg[i];
        if (x->ex.state == SOS_EX_IDLE || x->ex.req_id != req_id)
            continue;
        if (sos_exchange_tick(&x->ex, sim->now) != SOS_EX_DO_FAIL)
            return;
        sim->exchanges_failed++;
        sos_exchange_failed(&x->ex);
        s_xchg_end(n, x);
        sos_txn_t *txn = s_txn(sim, n);
        sim_peer_t *p = s_peer(n, x->peer, true);
        if (!txn || !p)
            return;
        if (!s_probe_start(sim, n, txn, x->peer, p))
            s_count_failure(sim, n, x->peer, p, false);
        return;
    }
}

static void
s_commit(sim_t *sim, sim_node_t *n)
{
    n->commit_due = false;
    if (!n->txn)
        return;
    sos_rc rc = sos_txn_commit(&n->txn);
    if (rc) {
        sim_violation(sim, "node %u: commit failed: %s", n->idx, sos_strerror(rc));
        s_drop_out(n);
        return;
    }
    for (size_t i = 0; i < n->n_out; i++)
        s_net_send(sim, n->out[i]);
    n->n_out = 0;
}

void
sim_run_until(sim_t *sim, uint64_t t)
{
    while (sim->n_heap && sim->heap[0].at <= t) {
        sim_event_t ev = s_pop(sim);
        sim->now = ev.at;
        sim_node_t *n = &sim->nodes[ev.node];
        if (ev.type == EV_DELIVER) {
            s_deliver(sim, ev.msg);
            free(ev.msg);
            continue;
        }
        if (ev.type == EV_RESTART) {
            if (!n->alive && ev.epoch == n->epoch)
                sim_node_start(sim, ev.node);
            continue;
        }
        if (ev.epoch != n->epoch || !n->alive)
            continue;
        switch (ev.type) {
        case EV_ROUND:
            if (!n->hostile)
                s_round(sim, n);
            break;
        case EV_COMMIT:
            s_commit(sim, n);
            break;
        case EV_DEADLINE:
            s_deadline(sim, n, ev.arg);
            break;
        case EV_PROBE:
        case EV_HELP:
            s_probes_due(sim, n);
            break;
        default:
            break;
        }
    }
    sim->now = t;
}

/* ------------------------------------------------------------ lifecycle ---- */

sos_rc
sim_init(sim_t *sim, const sim_opts_t *o)
{
    memset(sim, 0, sizeof *sim);
    sim->o = *o;
    sim_rng_seed(&sim->rng, o->seed);
    sim->dig_owner = UINT32_MAX;
    sim->check_digest = getenv("SOSSIM_CHECK_DIGEST") != NULL;
    /*  As sosnode (sos_gossip_start): a lower cap on a DIGEST_ACK's entries, for tests of
        buckets too large for one answer at sizes a test can run. */
    const char *cap = getenv("SOS_TEST_DIGEST_MAX");
    unsigned long v = cap ? strtoul(cap, NULL, 10) : 0;
    sim->digest_max = v >= 1 && v <= SOS_DIGEST_MAX ? (uint32_t)v : SOS_DIGEST_MAX;
    sim->pool = sos_store_pool_new();
    if (!sim->pool)
        return SOS_ERR_NOMEM;
    crypto_generichash_init(&sim->run, NULL, 0, 16);
    /*  The caps of one node, raised to the simulated network's size: at 10,000 nodes the
        default --max-workers (4096) would refuse most of the directory. */
    sim->mctx.max_workers = o->max_workers             ? o->max_workers
                            : o->nodes * 2 + 64 > 4096 ? o->nodes * 2 + 64
                                                       : 4096;
    sim->mctx.max_rooms = 100000;
    sim->mctx.max_rooms_per_origin = 10000;
    sim->mctx.max_rooms_unvouched = 10000;
    sim->mctx.max_room_lifetime_ms = 30ULL * 86400 * 1000;
    sim->mctx.clock_skew_ms = 60 * 1000;
    uint64_t t = 2 * (uint64_t)o->interval_ms; /* as the core sets it */
    sim->fdc.interval_ms = o->interval_ms;
    sim->fdc.exchange_timeout_ms = t < 500 ? 500 : t > 5000 ? 5000 : t;
    sim->fdc.max_failures = o->max_failures;
    sim->fdc.fanout = o->fanout;
    /*  As sosnode: an hour, or 20 intervals times max-failures if longer. */
    uint64_t ttl = 20ULL * o->interval_ms * o->max_failures;
    sim->tombstone_ttl_ms = ttl > 3600ULL * 1000 ? ttl : 3600ULL * 1000;
    return SOS_OK;
}

void
sim_free(sim_t *sim)
{
    while (sim->n_heap) {
        sim_event_t ev = s_pop(sim);
        if (ev.type == EV_DELIVER)
            free(ev.msg);
    }
    free(sim->heap);
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        sim_node_t *n = &sim->nodes[i];
        sos_txn_abort(&n->txn);
        sos_store_destroy(&n->store);
        s_drop_out(n);
        free(n->out);
        free(n->peers);
        free(n->view);
        free(n->probes);
        free(n->helps);
        free(n->named_removed);
        free(n->in_view);
        free(n->dig_has);
        free(n->dig_at);
        free(n->sums);
        free(n->sums_stale);
        free(n->fine);
        free(n->cursors);
    }
    for (size_t i = 0; i < sim->n_captured; i++)
        free(sim->captured[i]);
    free(sim->nodes);
    free(sim->reg);
    free(sim->scratch);
    free(sim->prefix);
    free(sim->order);
    free(sim->pk);
    free(sim->dig_idx);
    free(sim->dig_ver);
    free(sim->grp);
    free(sim->grp_start);
    sos_store_pool_destroy(&sim->pool);
}

uint32_t
sim_node_add(sim_t *sim, bool genesis, bool hostile)
{
    if (sim->n_nodes == sim->cap_nodes) {
        uint32_t cap = sim->cap_nodes ? sim->cap_nodes * 2 : 64;
        sim_node_t *nodes = realloc(sim->nodes, cap * sizeof *nodes);
        if (!nodes)
            return UINT32_MAX;
        sim->nodes = nodes;
        uint16_t *prefix = realloc(sim->prefix, cap * sizeof *prefix);
        if (!prefix)
            return UINT32_MAX;
        sim->prefix = prefix;
        uint32_t *order = realloc(sim->order, cap * sizeof *order);
        if (!order)
            return UINT32_MAX;
        sim->order = order;
        uint8_t(*pk)[SOS_NODEID_BYTES] = realloc(sim->pk, cap * sizeof *pk);
        if (!pk)
            return UINT32_MAX;
        sim->pk = pk;
        sim->cap_nodes = cap;
    }
    uint32_t idx = sim->n_nodes;
    sim_node_t *n = &sim->nodes[idx];
    memset(n, 0, sizeof *n);
    n->idx = idx;
    n->genesis = genesis;
    n->hostile = hostile;
    uint8_t seed[crypto_sign_SEEDBYTES];
    sim_rng_bytes(&sim->rng, seed, sizeof seed);
    crypto_sign_seed_keypair(n->id.pk, n->id.sk, seed);
    sim->prefix[idx] = (uint16_t)(((uint32_t)n->id.pk[0] << 8) | n->id.pk[1]);
    memcpy(sim->pk[idx], n->id.pk, SOS_NODEID_BYTES);
    uint32_t lo = 0, hi = idx; /* its place in id order */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (memcmp(sim->pk[sim->order[mid]], n->id.pk, SOS_NODEID_BYTES) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&sim->order[lo + 1], &sim->order[lo], (idx - lo) * sizeof *sim->order);
    sim->order[lo] = idx;
    snprintf(n->url, sizeof n->url, "tcp://10.%u.%u.%u:7400", (idx >> 16) & 255, (idx >> 8) & 255,
             idx & 255);
    if (sos_store_open_memory(&n->store, sim->pool) != SOS_OK)
        return UINT32_MAX;
    s_reg_add(sim, idx);
    sim->n_nodes++;
    return idx;
}

static int
s_on_worker(void *arg, const sos_record_t *rec, const sos_worker_local_t *local)
{
    void **a = arg;
    sim_t *sim = a[0];
    sim_node_t *n = a[1];
    uint32_t o = sim_lookup(sim, rec->origin);
    if (o != UINT32_MAX && o != n->idx && !s_in_view(n, o)) {
        s_view_add(n, o);
        if (s_in_view(n, o) && !local->last_ok && !sim->nodes[o].genesis)
            n->n_probation++;
    }
    return 0;
}

void
sim_node_start(sim_t *sim, uint32_t idx)
{
    sim_node_t *n = &sim->nodes[idx];
    n->alive = true;
    n->ever_started = true;
    n->epoch++;
    n->commit_due = false;
    memset(&n->fd, 0, sizeof n->fd);
    free(n->peers);
    n->peers = NULL;
    n->cap_peers = n->n_peers = 0;
    n->n_view = 0;
    n->n_probation = 0;
    memset(&n->probation, 0, sizeof n->probation); /* kept in memory only, as the node's */
    if (n->in_view)
        memset(n->in_view, 0, n->n_in_view_words * sizeof *n->in_view);
    memset(n->xchg, 0, sizeof n->xchg);
    free(n->cursors); /* kept in memory, as the node's per-peer exchanges */
    n->cursors = NULL;
    /*  A new life has no links of its own; peers that still link to the old one keep
        exchanging with it until they fail or evict it. */
    sos_core_view_init(&n->active, sos_core_view_cap(sim->o.fanout, 1));
    memset(n->shorts, 0, sizeof n->shorts);
    n->n_short = 0;
    free(n->probes); /* a new life waits on no probe and runs no PING */
    free(n->helps);
    free(n->named_removed); /* kept in memory, as the node's */
    n->probes = NULL;
    n->helps = NULL;
    n->named_removed = NULL;
    n->dirty = true;
    n->dig_reload = true;
    sos_txn_t *txn = s_txn(sim, n);
    if (!txn)
        return;
    uint64_t v = 0;
    sos_meta_get_u64(txn, "version", &v);
    n->version = v;
    void *a[2] = {sim, n};
    sos_dir_foreach_worker(txn, s_on_worker, a);
    s_resign(sim, n, txn); /* a hostile peer signs its record too, but never gossips */
    s_schedule(sim, sim->now + 1 + sim_rng_below(&sim->rng, sim->o.interval_ms), EV_ROUND, idx, 0);
}

void
sim_node_start_at(sim_t *sim, uint32_t idx, uint64_t at)
{
    s_schedule(sim, at, EV_RESTART, idx, 0);
}

void
sim_node_crash(sim_t *sim, uint32_t idx)
{
    sim_node_t *n = &sim->nodes[idx];
    n->alive = false;
    n->epoch++;
    sos_txn_abort(&n->txn);
    n->commit_due = false;
    s_drop_out(n);
    s_digest_u64(sim, 0xdead0000ULL | idx);
}

/* ------------------------------------------------------------- reading ---- */

typedef struct {
    sim_t *sim;
    crypto_generichash_state st;
    uint64_t workers, rooms;
} s_dirhash_t;

static int
s_hash_worker(void *arg, const sos_record_t *rec, const sos_worker_local_t *local)
{
    (void)local;
    s_dirhash_t *d = arg;
    uint32_t o = sim_lookup(d->sim, rec->origin);
    if (o != UINT32_MAX && d->sim->nodes[o].hostile)
        return 0; /* what hostile peers do to directories is not compared */
    crypto_generichash_update(&d->st, rec->origin, SOS_NODEID_BYTES);
    crypto_generichash_update(&d->st, (const uint8_t *)&rec->version, sizeof rec->version);
    d->workers++;
    return 0;
}

static int
s_hash_room(void *arg, const sos_record_t *rec)
{
    s_dirhash_t *d = arg;
    uint32_t o = sim_lookup(d->sim, rec->origin);
    if (o != UINT32_MAX && d->sim->nodes[o].hostile)
        return 0;
    crypto_generichash_update(&d->st, (const uint8_t *)rec->room_hash, SOS_ROOMHASH_LEN);
    crypto_generichash_update(&d->st, rec->origin, SOS_NODEID_BYTES);
    crypto_generichash_update(&d->st, (const uint8_t *)&rec->version, sizeof rec->version);
    d->rooms++;
    return 0;
}

void
sim_node_dir_hash(sim_t *sim, uint32_t idx, uint8_t out[16], uint64_t *workers, uint64_t *rooms)
{
    sim_node_t *n = &sim->nodes[idx];
    s_dirhash_t d = {.sim = sim};
    crypto_generichash_init(&d.st, NULL, 0, 16);
    sos_txn_t *txn = n->txn;
    bool own = false;
    if (!txn) {
        if (sos_txn_begin(n->store, false, &txn) != SOS_OK)
            return;
        own = true;
    }
    sos_dir_foreach_worker(txn, s_hash_worker, &d);
    sos_dir_foreach_room(txn, NULL, s_hash_room, &d);
    if (own)
        sos_txn_abort(&txn);
    crypto_generichash_final(&d.st, out, 16);
    if (workers)
        *workers = d.workers;
    if (rooms)
        *rooms = d.rooms;
}

typedef struct {
    sim_t *sim;
    sim_room_fn *fn;
    void *arg;
} s_rooms_t;

static int
s_each_room(void *arg, const sos_record_t *rec)
{
    s_rooms_t *r = arg;
    r->fn(r->arg, rec->room_hash, sim_lookup(r->sim, rec->origin));
    return 0;
}

void
sim_node_rooms(sim_t *sim, uint32_t idx, sim_room_fn *fn, void *arg)
{
    sim_node_t *n = &sim->nodes[idx];
    sos_txn_t *txn = n->txn;
    bool own = false;
    if (!txn) {
        if (sos_txn_begin(n->store, false, &txn) != SOS_OK)
            return;
        own = true;
    }
    s_rooms_t r = {sim, fn, arg};
    sos_dir_foreach_room(txn, NULL, s_each_room, &r);
    if (own)
        sos_txn_abort(&txn);
}

/* ------------------------------------------------------------- hostile ---- */

/*  A DELTA from a hostile peer with the given wire forms. */
static void
s_hostile_delta(sim_t *sim, sim_node_t *h, uint32_t to, const uint8_t *const *wires,
                const size_t *lens, uint32_t n)
{
    sos_gmsg_t out;
    memset(&out, 0, sizeof out);
    out.req_id = sim_rng_next(&sim->rng) >> 12;
    out.has_self = true;
    out.self = h->self;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (sos_gmsg_encode(&sb, &out, wires, lens, n) == SOS_OK)
        s_send(sim, h, to, MSG_DELTA, &sb);
    msgpack_sbuffer_destroy(&sb);
    sim->hostile_msgs++;
}

static uint32_t
s_random_honest(sim_t *sim)
{
    for (int tries = 0; tries < 64; tries++) {
        uint32_t i = (uint32_t)sim_rng_below(&sim->rng, sim->n_nodes);
        if (!sim->nodes[i].hostile && sim->nodes[i].alive)
            return i;
    }
    return 0;
}

/*  --dead-keys: k fresh worker keys, each with a record naming its own endpoint where
    nothing answers (a hostile node that never gossips nor answers: they are simulated nodes
    so that honest ones list them as they list any worker), sent by hostile peer hi in one
    DELTA to a random honest node. Probation bounds how many each honest node lists: the
    cap falls as its exchanges with them fail (node/sos_core_sync.c). */
static void
s_hostile_dead_keys(sim_t *sim, uint32_t hi, uint32_t k)
{
    const uint8_t **wires = calloc(k ? k : 1, sizeof *wires);
    size_t *lens = calloc(k ? k : 1, sizeof *lens);
    uint32_t n = 0;
    for (uint32_t i = 0; wires && lens && i < k; i++) {
        uint32_t g = sim_node_add(sim, false, true);
        if (g == UINT32_MAX)
            break;
        sim->nodes[g].dead_key = true;
        sim_node_start(sim, g);
        n++;
    }
    /*  sim->nodes may have moved while growing: the wires are taken once it is done. */
    for (uint32_t i = 0; i < n; i++) {
        const sim_node_t *g = &sim->nodes[sim->n_nodes - n + i];
        wires[i] = g->self.wire;
        lens[i] = g->self.wire_len;
    }
    if (n) {
        s_hostile_delta(sim, &sim->nodes[hi], s_random_honest(sim), wires, lens, n);
        sim->dead_keys_sent += n;
    }
    free(wires);
    free(lens);
}

void
sim_hostile_round(sim_t *sim)
{
    uint32_t n_before = sim->n_nodes; /* not the dead keys made in this round */
    for (uint32_t hi = 0; hi < n_before; hi++) {
        if (sim->o.dead_keys && sim->nodes[hi].hostile && sim->nodes[hi].alive &&
            !sim->nodes[hi].dead_key)
            s_hostile_dead_keys(sim, hi, sim->o.dead_keys);
        sim_node_t *h = &sim->nodes[hi];
        if (!h->hostile || !h->alive || h->dead_key)
            continue;
        /*  Flood: junk of every type to random nodes. */
        for (int k = 0; k < 20; k++) {
            uint8_t junk[64];
            sim_rng_bytes(&sim->rng, junk, sizeof junk);
            msgpack_sbuffer sb = {.size = 1 + sim_rng_below(&sim->rng, sizeof junk),
                                  .data = (char *)junk};
            s_send(sim, h, s_random_honest(sim),
                   (sim_msg_type_t)(MSG_SYNC + sim_rng_below(&sim->rng, 6)), &sb);
            sim->hostile_msgs++;
        }
        /*  A forged record: a victim's worker record at a higher version, signed by us. */
        uint32_t victim = s_random_honest(sim);
        sos_record_t f;
        memset(&f, 0, sizeof f);
        f.kind = SOS_REC_WORKER;
        f.version = sim->nodes[victim].version + 1000;
        f.prev = f.version - 1;
        snprintf(f.url, sizeof f.url, "tcp://10.255.255.254:1");
        if (sos_record_sign(&f, &h->id) == SOS_OK) {
            uint8_t *p = memmem(f.wire, f.wire_len, h->id.pk, SOS_NODEID_BYTES);
            if (p)
                memcpy(p, sim->nodes[victim].id.pk, SOS_NODEID_BYTES);
            const uint8_t *w = f.wire;
            size_t l = f.wire_len;
            s_hostile_delta(sim, h, s_random_honest(sim), &w, &l, 1);
        }
        /*  A claim on a room others hold, dated before theirs so that it would win by
            created_at, and signed properly: only the spread bound stands in its way. */
        if (sim->claim_hash[0]) {
            sos_record_t c;
            memset(&c, 0, sizeof c);
            c.kind = SOS_REC_ROOM;
            c.version = ++h->version;
            c.prev = c.version - 1;
            snprintf(c.url, sizeof c.url, "tcp://10.255.255.254:1");
            snprintf(c.room_hash, sizeof c.room_hash, "%s", sim->claim_hash);
            c.n_emojis = 1;
            snprintf(c.emojis[0], sizeof c.emojis[0], "x");
            c.created_at = sim->claim_created_at - 1;
            c.expires_at = sim->now + 3600ULL * 1000;
            if (sos_record_sign(&c, &h->id) == SOS_OK) {
                const uint8_t *w = c.wire;
                size_t l = c.wire_len;
                s_hostile_delta(sim, h, s_random_honest(sim), &w, &l, 1);
            }
        }
        /*  Stale replays of what it captured. */
        if (sim->n_captured) {
            size_t c = sim_rng_below(&sim->rng, sim->n_captured);
            const uint8_t *w = sim->captured[c];
            size_t l = sim->captured_len[c];
            s_hostile_delta(sim, h, s_random_honest(sim), &w, &l, 1);
        }
    }
}

sos_rc
sim_node_counts(sim_t *sim, uint32_t idx, uint64_t *workers)
{
    (void)sim;
    sim_node_t *n = &sim->nodes[idx];
    sos_txn_t *txn = n->txn;
    bool own = false;
    if (!txn) {
        sos_rc rc = sos_txn_begin(n->store, false, &txn);
        if (rc)
            return rc;
        own = true;
    }
    sos_rc rc = sos_dir_counts(txn, workers, NULL, NULL);
    if (own)
        sos_txn_abort(&txn);
    return rc;
}
