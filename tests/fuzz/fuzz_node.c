/*  fuzz_node.c: a stateful fuzz target. One real node (sos_node_new on a fresh data directory,
    real LMDB, real ZeroMQ) is driven in-process, one step at a time (sos_node_step), by a
    program read from the input: fake peers send it SYNC, DELTA, RUMOR, LEAVE, DIGEST and
    DIGEST_ACK, answer the exchanges and forwards it starts (a SYNC with the whole digest or
    with bucket sums, a DIGEST with whole buckets and pieces), clients send it room operations, the
   clock advances, rounds, ticks and housekeeping run. The single-message targets cannot reach what
   lives between messages (a DELTA_ACK whose records destroy the peer being answered was such a
    bug); this one can.

    How the node is reached:
    - fake peers and clients are DEALERs connected to the node's ROUTER over inproc;
    - fake peers' own endpoints are ROUTERs bound on loopback (tcp://127.0.0.1:PORT, ports
      taken once per process); worker and room records name them, so the node's DEALERs
      connect there and the program answers what arrives;
    - every frame is built and signed when the step runs, with the fake peers' fixed keys
      (records and envelopes alike) and bound to the node's id, so mutated programs still get
      past the signature and receiver checks;
    - the clock is the program's (sos_clock_set_implementation): every run starts at
      FUZZ_NOW_MS, so a recorded input stays inside the replay window and after the node's
      start floor whenever it is replayed; randomness is libsodium's, made deterministic with
      randombytes_set_implementation and reset for every input.

    Reproducing: each input starts a new node on a new data directory (under $TMPDIR, or
    /dev/shm when it exists, where LMDB's fsyncs cost nothing) with the same identity, so an
    input replays alone: build-fuzz/tests/fuzz_node FILE (libFuzzer) or build/tests/fuzz_node
    FILE (the replay main). The one thing not in the input is the time loopback TCP takes to
    connect: before a step that may send to a fake peer, the harness waits (up to 2 s) until
    each of the node's DEALERs to a fake peer's endpoint is connected. SOS_FUZZ_LOG=debug
    shows the node's log, SOS_FUZZ_TRACE the steps and the node's counters, SOS_FUZZ_SLOW the
    steps that took over 50 ms.

    Program: a sequence of steps, each an opcode byte and its operands (fuzz_common.h's
    readers: past the end everything reads as zeros). See the S_OP_ constants. */
#include <czmq.h>
#include <dirent.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "sos_client.h"
#include "sos_core_digest.h"
#include "sos_envelope.h"
#include "sos_gmsg.h"
#include "sos_log.h"
#include "sos_node.h"
#include "sos_gossip_int.h"

#define S_PEERS      4 /* fake peers with keys; index S_PEERS signs as the node itself */
#define S_PORTS      3 /* fake peers' endpoints that listen */
#define S_URLS       5 /* the S_PORTS, one where nothing listens, the node's own */
#define S_CLIENTS    2
#define S_STEPS_MAX  64 /* steps of one program */
#define S_RECORDS    6  /* records in one message at most */
#define S_ENTRIES    6  /* digest, want or suspect entries in one message at most */
#define S_SETTLE_MS  2000
#define S_REPLY_MS   1000
#define S_START_MONO 1000000ULL

/*  The opcodes: the step is op % S_OP_MAX. */
enum {
    S_OP_CLOCK,        /* u64 ms (mod 10 min, or a day with flag bit): both clocks advance */
    S_OP_ROUND,        /* a gossip round */
    S_OP_TICK,         /* deadlines */
    S_OP_HOUSEKEEPING, /* expiry, sweeps */
    S_OP_PEER_SEND,    /* fake peer k sends SYNC / DELTA / RUMOR / LEAVE / anything */
    S_OP_ANSWER,       /* at endpoint p, answer what the node sent (SYNC, DELTA, a forward) */
    S_OP_CLIENT,       /* a client request */
    S_OP_RAW,          /* raw bytes to the node's public endpoint */
    S_OP_MAX
};

/* -------------------------------------------------- deterministic randomness ---- */

/*  splitmix64 under a lock: libzmq's I/O threads may draw too. */
static pthread_mutex_t s_rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_rng_state;

static uint64_t
s_rng_next(void)
{
    pthread_mutex_lock(&s_rng_lock);
    uint64_t z = (s_rng_state += 0x9e3779b97f4a7c15ULL);
    pthread_mutex_unlock(&s_rng_lock);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *
s_rng_name(void)
{
    return "sosnode-fuzz";
}

static uint32_t
s_rng_random(void)
{
    return (uint32_t)s_rng_next();
}

static void
s_rng_buf(void *const buf, const size_t size)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t v = s_rng_next();
        memcpy(p + i, &v, size - i < 8 ? size - i : 8);
    }
}

static randombytes_implementation s_rng = {
    .implementation_name = s_rng_name,
    .random = s_rng_random,
    .buf = s_rng_buf,
};

/* --------------------------------------------------------------------- clock ---- */

static uint64_t s_now, s_mono;

static uint64_t
s_now_ms(void)
{
    return s_now;
}

static uint64_t
s_mono_ms(void)
{
    return s_mono;
}

static const sos_clock_impl_t s_clock = {s_now_ms, s_mono_ms};

/* ------------------------------------------------------------------ the world ---- */

typedef struct {
    sos_node_t *node;
    char dir[PATH_MAX];
    zsock_t *peer_dealers[S_PEERS]; /* fake peers' connections to the node */
    zsock_t *clients[S_CLIENTS];
    char member_id[S_CLIENTS][64]; /* the last member_id each client was given */
    uint64_t nonce;
    uint64_t req_id;
    uint64_t taken[S_PORTS]; /* the req_id of the last exchange request taken at each port */
    msgpack_sbuffer buf;
    msgpack_sbuffer body;
} s_world_t;

static sos_identity_t s_ids[S_PEERS];
static zsock_t *s_routers[S_PORTS]; /* fake peers' endpoints, for the whole process */
static char s_urls[S_URLS][64];
static const char *s_rooms[] = {"0123456789abcdef", "fedcba9876543210", "00000000000000aa",
                                "a1b2c3d4e5f60718"};

static bool s_trace; /* SOS_FUZZ_TRACE: each step and the node's counters on stderr */

static void
s_close_routers(void)
{
    for (int p = 0; p < S_PORTS; p++)
        zsock_destroy(&s_routers[p]);
}

static void
s_init_process(void)
{
    /*  Before anything calls sodium_init (czmq's and libzmq's first sockets do). */
    randombytes_set_implementation(&s_rng);
    FUZZ_CHECK(sos_crypto_init() == SOS_OK);
    sos_clock_set_implementation(&s_clock);
    const char *level = getenv("SOS_FUZZ_LOG");
    sos_log_set_level(level ? sos_log_level_parse(level) : SOS_LOG_ERROR);
    s_trace = getenv("SOS_FUZZ_TRACE") != NULL;
    zsys_init();
    zsys_set_linger(0);
    atexit(s_close_routers); /* after zsys_init's: runs before it */
    for (int k = 0; k < S_PEERS; k++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        for (size_t i = 0; i < sizeof seed; i++)
            seed[i] = (uint8_t)(100 + k * 32 + i);
        crypto_sign_seed_keypair(s_ids[k].pk, s_ids[k].sk, seed);
    }
    for (int p = 0; p < S_PORTS; p++) {
        s_routers[p] = zsock_new(ZMQ_ROUTER);
        FUZZ_CHECK(s_routers[p]);
        zsock_set_linger(s_routers[p], 0);
        zsock_set_router_mandatory(s_routers[p], 1);
        int port = zsock_bind(s_routers[p], "tcp://127.0.0.1:*[20000-]");
        FUZZ_CHECK(port > 0);
        snprintf(s_urls[p], sizeof s_urls[p], "tcp://127.0.0.1:%d", port);
    }
    snprintf(s_urls[S_PORTS], sizeof s_urls[S_PORTS], "tcp://127.0.0.1:9"); /* discard */
    snprintf(s_urls[S_PORTS + 1], sizeof s_urls[S_PORTS + 1], "tcp://127.0.0.1:7");
}

/*  The identity that signs index k: a fake peer, or the node itself for k == S_PEERS. */
static const sos_identity_t *
s_signer(s_world_t *w, unsigned k)
{
    k %= S_PEERS + 1;
    return k == S_PEERS ? &w->node->id : &s_ids[k];
}

/*  Take every frame waiting at the fake peers' endpoints (left by an earlier run). */
static void
s_drain_routers(void)
{
    for (int p = 0; p < S_PORTS; p++) {
        zmsg_t *m;
        while (zsock_events(s_routers[p]) & ZMQ_POLLIN && (m = zmsg_recv(s_routers[p])))
            zmsg_destroy(&m);
    }
}

/*  Wait until each of the node's DEALERs to a listening fake endpoint is connected, so that
    what the node sends next does not depend on how fast loopback TCP is. */
static void
s_settle(s_world_t *w)
{
    uint64_t deadline = zclock_mono() + S_SETTLE_MS;
    for (sos_peer_t *p = zhashx_first(w->node->gossip->peers); p;
         p = zhashx_next(w->node->gossip->peers)) {
        bool ours = false;
        for (int i = 0; i < S_PORTS; i++)
            ours |= streq(p->url, s_urls[i]);
        if (!ours || !p->dealer)
            continue;
        zmq_pollitem_t item = {.socket = zsock_resolve(p->dealer), .events = ZMQ_POLLOUT};
        int64_t left;
        while ((left = (int64_t)deadline - zclock_mono()) > 0 &&
               zmq_poll(&item, 1, (long)left) == 0)
            ;
    }
}

/*  Remember a member_id the node gave a client. */
static void
s_read_reply(s_world_t *w, int c, const uint8_t *data, size_t size)
{
    sos_reply_t rep;
    sos_mp_doc_t doc;
    if (sos_reply_decode(&rep, &doc, data, size) == SOS_OK && sos_reply_ok(&rep)) {
        const msgpack_object *m = sos_mp_map_get(rep.body, "member_id");
        if (m)
            (void)sos_mp_str_copy(m, w->member_id[c], sizeof w->member_id[c] - 1);
    }
    sos_mp_doc_release(&doc);
}

/*  Let the node handle what waits for it (first waiting up to wait_ms for something), then
    take what it sent to the fake peers' and clients' connections. */
static void
s_pump(s_world_t *w, int wait_ms)
{
    for (int i = 0; i < 256; i++) {
        if (sos_node_step(w->node, SOS_STEP_INPUT, i == 0 ? wait_ms : 0) <= 0)
            break;
    }
    for (int k = 0; k < S_PEERS; k++) {
        zframe_t *f;
        while (zsock_events(w->peer_dealers[k]) & ZMQ_POLLIN &&
               (f = zframe_recv(w->peer_dealers[k])))
            zframe_destroy(&f);
    }
    for (int c = 0; c < S_CLIENTS; c++) {
        zframe_t *f;
        while (zsock_events(w->clients[c]) & ZMQ_POLLIN && (f = zframe_recv(w->clients[c]))) {
            s_read_reply(w, c, zframe_data(f), zframe_size(f));
            zframe_destroy(&f);
        }
    }
}

/* ------------------------------------------------------- records and messages ---- */

/*  A record from fuzz bytes, signed by one of the signers; false if it does not sign. */
static bool
s_record(s_world_t *w, fuzz_in_t *in, sos_record_t *rec)
{
    memset(rec, 0, sizeof *rec);
    uint8_t flags = fuzz_u8(in);
    const sos_identity_t *id = s_signer(w, fuzz_u8(in));
    rec->kind = (flags & 1) ? SOS_REC_ROOM : SOS_REC_WORKER;
    if (flags & 2) {
        rec->version = fuzz_u64(in);
        rec->prev = fuzz_u64(in);
    } else {
        /*  Small versions, each following the one before it or skipping a few. */
        rec->version = 1 + fuzz_u8(in) % 8;
        rec->prev = rec->version - 1 - (rec->version > 1 ? fuzz_u8(in) % rec->version : 0);
        if (rec->prev >= rec->version)
            rec->prev = 0;
    }
    if (flags & 4)
        fuzz_str(in, rec->url, sizeof rec->url);
    else
        snprintf(rec->url, sizeof rec->url, "%.63s", s_urls[fuzz_u8(in) % S_URLS]);
    if (rec->kind == SOS_REC_ROOM) {
        if (flags & 8)
            fuzz_str(in, rec->room_hash, sizeof rec->room_hash);
        else
            snprintf(rec->room_hash, sizeof rec->room_hash, "%s", s_rooms[fuzz_u8(in) % 4]);
        rec->n_emojis = fuzz_u8(in) % 3;
        static const char *emojis[] = {"\xf0\x9f\x90\xb1", "a", "\xe2\x9d\xa4\xef\xb8\x8f", ""};
        for (uint32_t i = 0; i < rec->n_emojis; i++) {
            uint8_t e = fuzz_u8(in);
            if (e & 0x80)
                fuzz_str(in, rec->emojis[i], sizeof rec->emojis[i]);
            else
                snprintf(rec->emojis[i], sizeof rec->emojis[i], "%s", emojis[e % 3]);
        }
        fuzz_str(in, rec->description, sizeof rec->description);
    } else if (flags & 16)
        snprintf(rec->http_url, sizeof rec->http_url, "http://127.0.0.1:%u", 8000u + fuzz_u8(in));
    /*  Times near the program's now: created up to a day before, expiring up to a day after
        (or anything, with flag 32). */
    if (flags & 32) {
        rec->created_at = fuzz_u64(in);
        rec->expires_at = fuzz_u64(in);
    } else {
        uint64_t back = (uint64_t)fuzz_u8(in) * 340000, ahead = 1 + (uint64_t)fuzz_u8(in) * 340000;
        rec->created_at = s_now - back;
        rec->expires_at = s_now + ahead;
    }
    return sos_record_sign(rec, id) == SOS_OK;
}

static void
s_entries(s_world_t *w, fuzz_in_t *in, sos_digest_entry_t *e, uint32_t *n, uint32_t max)
{
    *n = fuzz_u8(in) % (max + 1);
    for (uint32_t i = 0; i < *n; i++) {
        memcpy(e[i].origin, s_signer(w, fuzz_u8(in))->pk, SOS_NODEID_BYTES);
        uint8_t v = fuzz_u8(in);
        e[i].version = (v & 0x80) ? fuzz_u64(in) : v % 10;
        e[i].removed = (v & 0x40) != 0;
    }
}

static int
s_cmp_entry(const void *a, const void *b)
{
    return memcmp(((const sos_digest_entry_t *)a)->origin, ((const sos_digest_entry_t *)b)->origin,
                  SOS_NODEID_BYTES);
}

/*  An origin for a piece of bucket b of nb: the bucket's first, an origin of the node's
    digest or a fake peer's key (in the bucket or not: hostile pieces too), or any bytes. */
static void
s_piece_origin(s_world_t *w, fuzz_in_t *in, uint32_t nb, uint32_t b, uint8_t out[SOS_NODEID_BYTES])
{
    uint8_t how = fuzz_u8(in);
    const sos_node_t *node = w->node;
    if (how % 4 == 0) {
        sos_digest_bucket_first(nb, b, out);
    } else if (how % 4 == 1 && node->gossip->digest_cache && node->gossip->digest_n) {
        memcpy(out, node->gossip->digest_cache[fuzz_u8(in) % node->gossip->digest_n].origin,
               SOS_NODEID_BYTES);
    } else if (how % 4 == 2) {
        memcpy(out, s_signer(w, fuzz_u8(in))->pk, SOS_NODEID_BYTES);
    } else {
        const uint8_t *p;
        size_t len = fuzz_bytes(in, &p, SOS_NODEID_BYTES);
        memset(out, 0, SOS_NODEID_BYTES);
        memcpy(out, p, len);
    }
}

/*  The bucket element from fuzz bytes: nb, ascending bucket numbers, sums (the node's own
    for its cached digest, some of them made to differ, or none), and a piece. The buffers
    are the caller's (sums: SOS_BUCKETS_MAX). */
static void
s_buckets(s_world_t *w, fuzz_in_t *in, sos_gmsg_t *msg, uint16_t *numbers,
          uint8_t (*sums)[SOS_DIGEST_HASH_BYTES])
{
    uint8_t flags = fuzz_u8(in);
    uint32_t nb = 1u << (fuzz_u8(in) % 11);
    msg->has_buckets = true;
    msg->nb = nb;
    msg->buckets = numbers;
    msg->n_buckets = 0;
    uint32_t want = fuzz_u8(in) % 6;
    for (uint32_t b = fuzz_u8(in) % nb; b < nb && msg->n_buckets < want; b += 1 + fuzz_u8(in) % 64)
        numbers[msg->n_buckets++] = (uint16_t)b;
    if (flags & 1) {
        const sos_node_t *node = w->node;
        sos_digest_bucket_sums(node->gossip->digest_cache,
                               node->gossip->digest_cache ? node->gossip->digest_n : 0, nb, sums);
        for (uint32_t d = fuzz_u8(in) % 4; d > 0; d--)
            sums[((uint32_t)fuzz_u8(in) << 8 | fuzz_u8(in)) % nb][0] ^= 0x5a;
        msg->sums = sums;
        msg->n_sums = nb;
    }
    if (flags & 2) {
        msg->has_piece = true;
        msg->piece.bucket = (uint16_t)(fuzz_u8(in) % nb);
        s_piece_origin(w, in, nb, msg->piece.bucket, msg->piece.from);
        msg->piece.to_end = (flags & 4) != 0;
        if (!msg->piece.to_end)
            s_piece_origin(w, in, nb, msg->piece.bucket, msg->piece.to);
    }
}

/*  A gossip body from fuzz bytes into w->body: req_id is given, and the sender's self
    record is signed by sender. */
static void
s_body(s_world_t *w, fuzz_in_t *in, const sos_identity_t *sender, uint64_t req_id)
{
    sos_gmsg_t msg = {0};
    sos_digest_entry_t digest[S_ENTRIES], want[S_ENTRIES];
    static sos_record_t recs[S_RECORDS + 1];
    const uint8_t *wires[S_RECORDS];
    size_t lens[S_RECORDS];
    uint8_t flags = fuzz_u8(in);
    msg.req_id = (flags & 1) ? fuzz_u64(in) : req_id;
    msg.flags = (flags >> 1) & 3; /* IN_SYNC, MORE */
    if (flags & 8) {
        const uint8_t *h;
        size_t len = fuzz_bytes(in, &h, SOS_DIGEST_HASH_BYTES);
        memcpy(msg.hash, h, len);
    } else
        memcpy(msg.hash, w->node->gossip->digest_hash, sizeof msg.hash); /* "in sync" */
    msg.n_origins = (flags & 8) ? fuzz_u8(in) : w->node->gossip->digest_n;
    if (flags & 16) {
        /*  The sender's own worker record, at a url of the program's choosing. */
        sos_record_t *self_rec = &recs[S_RECORDS];
        if (s_record(w, in, self_rec) && self_rec->kind == SOS_REC_WORKER &&
            memcmp(self_rec->origin, sender->pk, SOS_NODEID_BYTES) == 0) {
            msg.has_self = true;
            msg.self = *self_rec;
        }
    }
    s_entries(w, in, msg.suspects, &msg.n_suspects, S_ENTRIES);
    s_entries(w, in, digest, &msg.n_digest, S_ENTRIES);
    s_entries(w, in, want, &msg.n_want, S_ENTRIES);
    msg.digest = digest;
    msg.want = want;
    static uint16_t numbers[SOS_BUCKETS_MAX];
    static uint8_t sums[SOS_BUCKETS_MAX][SOS_DIGEST_HASH_BYTES];
    if (flags & 32)
        s_buckets(w, in, &msg, numbers, sums);
    uint32_t n = fuzz_u8(in) % (S_RECORDS + 1), m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (s_record(w, in, &recs[m])) {
            wires[m] = recs[m].wire;
            lens[m] = recs[m].wire_len;
            m++;
        }
    msg.digest = msg.n_digest ? digest : NULL;
    msg.want = msg.n_want ? want : NULL;
    w->body.size = 0;
    (void)sos_gmsg_encode(&w->body, &msg, wires, lens, m);
}

/*  A DIGEST_ACK body for the DIGEST asked (got) into w->body: the buckets asked covered or
    not, the piece asked answered to its end or stopped at an entry, entries of the node's
    own digest and the fake peers' keys in what is covered (or, at times, anywhere), in
    order. */
static void
s_body_digest_ack(s_world_t *w, fuzz_in_t *in, const sos_gmsg_t *got)
{
    sos_gmsg_t msg = {0};
    static uint16_t covered[SOS_BUCKETS_MAX];
    static sos_digest_entry_t pool[2 * S_ENTRIES + S_PEERS + 1],
        entries[2 * S_ENTRIES + S_PEERS + 1];
    uint8_t flags = fuzz_u8(in);
    msg.req_id = (flags & 1) ? fuzz_u64(in) : got->req_id;
    msg.has_buckets = true;
    msg.nb = got->nb ? got->nb : 1;
    msg.buckets = covered;
    for (uint32_t i = 0; i < got->n_buckets; i++)
        if (!(flags & 2) || (fuzz_u8(in) & 1))
            covered[msg.n_buckets++] = got->buckets[i];
    msg.has_piece = got->has_piece && !(flags & 4);
    if (msg.has_piece)
        msg.piece = got->piece;
    /*  The candidates: the node's own entries, the fake peers' keys. */
    uint32_t n_pool = 0;
    const sos_node_t *node = w->node;
    for (uint32_t i = 0;
         node->gossip->digest_cache && i < node->gossip->digest_n && n_pool < 2 * S_ENTRIES; i++)
        if (fuzz_u8(in) & 1) {
            pool[n_pool] = node->gossip->digest_cache[i];
            pool[n_pool++].version += fuzz_u8(in) % 3;
        }
    for (uint32_t k = 0; k <= S_PEERS; k++) {
        memcpy(pool[n_pool].origin, s_signer(w, k)->pk, SOS_NODEID_BYTES);
        pool[n_pool].version = fuzz_u8(in) % 10;
        pool[n_pool++].removed = false;
    }
    qsort(pool, n_pool, sizeof *pool, s_cmp_entry);
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_pool; i++) {
        if (i > 0 && memcmp(pool[i].origin, pool[i - 1].origin, SOS_NODEID_BYTES) == 0)
            continue;
        uint32_t b = sos_digest_bucket(pool[i].origin, msg.nb);
        bool in_range = false;
        for (uint32_t c = 0; c < msg.n_buckets; c++)
            in_range = in_range || covered[c] == b;
        if (msg.has_piece && b == msg.piece.bucket &&
            memcmp(pool[i].origin, msg.piece.from, SOS_NODEID_BYTES) >= 0)
            in_range = true;
        if (in_range || (flags & 8))
            entries[n++] = pool[i];
    }
    /*  A piece stops at its last entry (or runs to the end), unless the program lies. */
    if (msg.has_piece && (flags & 16)) {
        msg.piece.to_end = false;
        for (uint32_t i = 0; i < n; i++)
            if (sos_digest_bucket(entries[i].origin, msg.nb) == msg.piece.bucket)
                memcpy(msg.piece.to, entries[i].origin, SOS_NODEID_BYTES);
        if (flags & 32)
            s_piece_origin(w, in, msg.nb, msg.piece.bucket, msg.piece.to);
    }
    msg.digest = n ? entries : NULL;
    msg.n_digest = n;
    w->body.size = 0;
    if (sos_gmsg_encode(&w->body, &msg, NULL, NULL, 0) != SOS_OK) {
        msg.has_piece = false; /* a piece the encoder refuses: answer without it */
        (void)sos_gmsg_encode(&w->body, &msg, NULL, NULL, 0);
    }
}

/*  An envelope of type around w->body into w->buf, signed by sender, bound to the node (or
    to nobody), dated now give or take a little. */
static void
s_envelope(s_world_t *w, fuzz_in_t *in, sos_msg_type_t type, const sos_identity_t *sender)
{
    uint8_t flags = fuzz_u8(in);
    uint64_t when = s_now;
    if (flags & 1)
        when += (uint64_t)fuzz_u8(in) * 2000; /* up to 510 s ahead: past the window too */
    if (flags & 2)
        when -= (uint64_t)fuzz_u8(in) * 2000;
    uint8_t nonce[SOS_NONCE_BYTES] = {0};
    uint64_t nv = (flags & 4) ? w->nonce : ++w->nonce; /* a nonce used before, at times */
    memcpy(nonce, &nv, sizeof nv);
    w->buf.size = 0;
    (void)sos_envelope_encode_nonce(&w->buf, type, w->body.data, w->body.size, sender,
                                    (flags & 8) ? NULL : w->node->id.pk, when, nonce);
}

/* --------------------------------------------------------------------- steps ---- */

static void
s_op_peer_send(s_world_t *w, fuzz_in_t *in)
{
    unsigned k = fuzz_u8(in) % S_PEERS;
    static const sos_msg_type_t types[] = {SOS_MSG_SYNC,      SOS_MSG_DELTA,     SOS_MSG_RUMOR,
                                           SOS_MSG_LEAVE,     SOS_MSG_SYNC_ACK,  SOS_MSG_DELTA_ACK,
                                           SOS_MSG_PROBE_REQ, SOS_MSG_PING,      SOS_MSG_PROBE_ACK,
                                           SOS_MSG_DIGEST,    SOS_MSG_DIGEST_ACK};
    sos_msg_type_t type = types[fuzz_u8(in) % (sizeof types / sizeof types[0])];
    if (type >= SOS_MSG_PROBE_REQ && type <= SOS_MSG_PONG) {
        /*  A probe body: a target among the fake peers or the node, a req_id maybe guessed. */
        uint8_t t = fuzz_u8(in);
        sos_probe_msg_t probe = {.req_id = (t & 1) ? fuzz_u64(in) : w->req_id,
                                 .reached = (t & 2) != 0};
        memcpy(probe.target, (t & 4) ? w->node->id.pk : s_ids[(t >> 3) % S_PEERS].pk,
               SOS_NODEID_BYTES);
        w->body.size = 0;
        (void)sos_probe_encode(&w->body, &probe);
    } else
        s_body(w, in, &s_ids[k], ++w->req_id);
    s_envelope(w, in, type, &s_ids[k]);
    zsock_send(w->peer_dealers[k], "b", w->buf.data, w->buf.size);
    s_pump(w, 0);
}

/*  A frame one of the node's DEALERs sent to fake endpoint p: the node's request, answered
    by the program. */
static void
s_op_answer(s_world_t *w, fuzz_in_t *in)
{
    unsigned p = fuzz_u8(in) % S_PORTS;
    /*  Wait long for a frame if the node has an exchange going on there whose request has
        not been taken yet, a little if it only has a connection there (a forward may be on
        its way), else not at all. */
    int wait = 0;
    sos_peer_t *peer = zhashx_lookup(w->node->gossip->peers, s_urls[p]);
    if (peer)
        wait = (peer->ex.state == SOS_EX_WAIT_SYNC_ACK || peer->ex.state == SOS_EX_WAIT_DELTA_ACK ||
                peer->ex.state == SOS_EX_WAIT_DIGEST_ACK) &&
                       peer->ex.req_id != w->taken[p]
                   ? S_REPLY_MS
                   : 5;
    zmsg_t *m = NULL;
    for (int tries = 0; tries < 8; tries++) {
        if (!(zsock_events(s_routers[p]) & ZMQ_POLLIN)) {
            zmq_pollitem_t item = {.socket = zsock_resolve(s_routers[p]), .events = ZMQ_POLLIN};
            if (zmq_poll(&item, 1, wait) <= 0)
                return;
        }
        m = zmsg_recv(s_routers[p]);
        if (!m)
            return;
        zframe_t *body = zmsg_size(m) == 2 ? zmsg_last(m) : NULL;
        sos_frame_kind_t kind;
        if (!body || sos_frame_kind(zframe_data(body), zframe_size(body), &kind) != SOS_OK) {
            zmsg_destroy(&m);
            continue;
        }
        if (kind == SOS_FRAME_REQUEST) {
            /*  A forwarded room request: a reply of the program's choosing. */
            sos_request_t req;
            sos_mp_doc_t doc;
            uint64_t req_id = 0;
            if (sos_request_decode(&req, &doc, zframe_data(body), zframe_size(body)) == SOS_OK)
                req_id = req.req_id;
            sos_mp_doc_release(&doc);
            uint8_t flags = fuzz_u8(in);
            if (flags & 1)
                req_id = fuzz_u64(in);
            char status[40];
            static const char *statuses[] = {"ok", SOS_E_ROOM_NOT_FOUND, SOS_E_NOT_MEMBER, ""};
            if (flags & 2)
                fuzz_str(in, status, sizeof status);
            else
                snprintf(status, sizeof status, "%s", statuses[(flags >> 2) % 3]);
            w->buf.size = 0;
            msgpack_packer pk;
            msgpack_packer_init(&pk, &w->buf, msgpack_sbuffer_write);
            sos_reply_pack_begin(&pk, req_id, status);
            msgpack_pack_map(&pk, 2);
            sos_mp_pack_kv_str(&pk, "member_id", "00112233445566778899aabbccddeeff");
            char text[64];
            fuzz_str(in, text, sizeof text);
            sos_mp_pack_kv_str(&pk, "message", text);
        } else if (kind == SOS_FRAME_ENVELOPE) {
            sos_envelope_t env;
            sos_gmsg_t got;
            memset(&got, 0, sizeof got);
            if (sos_envelope_decode(&env, zframe_data(body), zframe_size(body), NULL, s_now,
                                    UINT64_MAX / 4, NULL) != SOS_OK ||
                (env.type != SOS_MSG_SYNC && env.type != SOS_MSG_DELTA &&
                 env.type != SOS_MSG_DIGEST)) {
                zmsg_destroy(&m); /* a rumor or a leave: one-way */
                continue;
            }
            (void)sos_gmsg_decode(&got, env.body, env.body_len);
            uint64_t req_id = got.req_id;
            w->taken[p] = req_id;
            /*  The answer's type follows the request's, unless the program says otherwise;
                it is signed by the fake peer the program names. A SYNC's answer may carry
                bucket sums (s_body's bucket element), a DIGEST's is built from what it
                asked, its pieces included. */
            uint8_t t = fuzz_u8(in);
            sos_msg_type_t type = env.type == SOS_MSG_SYNC     ? SOS_MSG_SYNC_ACK
                                  : env.type == SOS_MSG_DIGEST ? SOS_MSG_DIGEST_ACK
                                                               : SOS_MSG_DELTA_ACK;
            if (t & 0x80)
                type = (sos_msg_type_t)(1 + t % (SOS_MSG_MAX - 1));
            const sos_identity_t *sender = &s_ids[(t >> 2) % S_PEERS];
            if (env.type == SOS_MSG_DIGEST && !(t & 0x40))
                s_body_digest_ack(w, in, &got);
            else
                s_body(w, in, sender, req_id);
            sos_gmsg_release(&got);
            s_envelope(w, in, type, sender);
        } else {
            zmsg_destroy(&m);
            continue;
        }
        zframe_t *routing = zmsg_first(m);
        /*  The answer crosses loopback TCP: wait for the node to take it, unless the connection
            it came on is gone (the ROUTER is mandatory: the send fails). */
        int sent = zsock_send(s_routers[p], "fb", routing, w->buf.data, w->buf.size);
        zmsg_destroy(&m);
        s_pump(w, sent == 0 ? S_REPLY_MS : 0);
        return;
    }
}

static void
s_op_client(s_world_t *w, fuzz_in_t *in)
{
    int c = fuzz_u8(in) % S_CLIENTS;
    static const char *ops[] = {"create", "join",  "send",    "poll",  "leave",
                                "info",   "rooms", "workers", "status"};
    uint8_t flags = fuzz_u8(in);
    char op[SOS_OP_MAX + 1];
    if (flags & 1)
        fuzz_str(in, op, sizeof op);
    else
        snprintf(op, sizeof op, "%s", ops[fuzz_u8(in) % 9]);
    w->buf.size = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->buf, msgpack_sbuffer_write);
    sos_request_pack_begin(&pk, ++w->req_id, op);
    /*  Every argument an operation reads, each present or not as the program says. */
    uint8_t present = fuzz_u8(in);
    char room[SOS_ROOMHASH_LEN + 8], text[96];
    if (flags & 2)
        fuzz_str(in, room, sizeof room);
    else
        snprintf(room, sizeof room, "%s", s_rooms[fuzz_u8(in) % 4]);
    uint32_t n = 1 + !!(present & 1) + !!(present & 2) + !!(present & 4) + !!(present & 8) +
                 !!(present & 16) + !!(present & 32) + !!(present & 64) + !!(present & 128);
    msgpack_pack_map(&pk, n);
    sos_mp_pack_kv_str(&pk, "room_hash", room);
    if (present & 1) {
        fuzz_str(in, text, sizeof text);
        sos_mp_pack_kv_str(&pk, "emojis", (flags & 4) ? text : "\xf0\x9f\x90\xb1");
    }
    if (present & 2) {
        fuzz_str(in, text, sizeof text);
        sos_mp_pack_kv_str(&pk, "description", text);
    }
    if (present & 4) {
        fuzz_str(in, text, sizeof text);
        sos_mp_pack_kv_str(&pk, "nickname", text);
    }
    if (present & 8) {
        if (flags & 8)
            fuzz_str(in, text, sizeof text);
        else
            snprintf(text, sizeof text, "%s", w->member_id[c]);
        sos_mp_pack_kv_str(&pk, "member_id", text);
    }
    if (present & 16) {
        fuzz_str(in, text, sizeof text);
        sos_mp_pack_kv_str(&pk, "content", text);
    }
    if (present & 32) {
        fuzz_str(in, text, sizeof text);
        sos_mp_pack_kv_str(&pk, "msg_id", text);
    }
    if (present & 64) {
        sos_mp_pack_kv_uint(&pk, "since", fuzz_u64(in));
    }
    /*  A long poll waits on the injected clock: a tick answers it once S_OP_CLOCK has
        passed its deadline. */
    if (present & 128)
        sos_mp_pack_kv_uint(&pk, "wait_ms", (uint64_t)fuzz_u8(in) * 1000);
    sos_request_pack_end(&pk, (flags & 16) ? SOS_REQ_FORWARDED : 0);
    zsock_send(w->clients[c], "b", w->buf.data, w->buf.size);
    s_pump(w, 0);
}

static void
s_op_raw(s_world_t *w, fuzz_in_t *in)
{
    const uint8_t *p;
    size_t len = fuzz_bytes(in, &p, 4096);
    zsock_send(w->clients[0], "b", p, len);
    s_pump(w, 0);
}

/* ---------------------------------------------------------------------- run ---- */

static bool
s_world_new(s_world_t *w, uint8_t setup)
{
    memset(w, 0, sizeof *w);
    s_rng_state = 0x5eed;
    s_now = FUZZ_NOW_MS;
    s_mono = S_START_MONO;
    s_drain_routers();
    const char *tmp = getenv("TMPDIR");
    if (!tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(w->dir, sizeof w->dir, "%s/sos-fuzz-node.XXXXXX", tmp);
    FUZZ_CHECK(mkdtemp(w->dir));
    sos_config_t cfg;
    sos_config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", w->dir);
    snprintf(cfg.listen, sizeof cfg.listen, "inproc://sos-fuzz-node");
    /*  The fake peers are plain ROUTERs: the node's DEALERs to them speak NULL, so that they
        connect and the programs reach the protocol's logic. CURVE, the keys and the sender
        check are tested apart (test_transport.py, test_node_gate.c). */
    cfg.transport_null = true;
    /*  A loopback address of its own: the node accepts records naming loopback endpoints. */
    snprintf(cfg.advertise, sizeof cfg.advertise, "%.63s", s_urls[S_PORTS + 1]);
    cfg.gossip_interval_ms = 1000;
    cfg.map_size = 32ULL << 20;
    cfg.max_failures = 3;
    cfg.rate_limit = setup & 1;
    if (setup & 4) {
        /*  Caps small enough for a program of 64 steps to reach. */
        cfg.max_workers = 3;
        cfg.max_rooms = 3;
        cfg.max_rooms_per_origin = 2;
        cfg.max_rooms_unvouched = 1;
        cfg.history_limit = 3;
        cfg.room_quota_kib = 1;
        cfg.max_pending = 1;
        cfg.max_pending_total = 2;
        cfg.client_rate = 1;
        cfg.max_peer_connections = 2; /* the least recently used idle peer is closed */
        cfg.verify_budget = 8;        /* record checks per second per sender */
    }
    cfg.log_level = sos_log_level_parse(getenv("SOS_FUZZ_LOG") ? getenv("SOS_FUZZ_LOG") : "error");
    /*  Fake endpoint 0 is a genesis address (pinned to fake peer 0 with setup bit 2). */
    cfg.n_genesis = 1;
    snprintf(cfg.genesis[0].url, sizeof cfg.genesis[0].url, "%.63s", s_urls[0]);
    if (setup & 2) {
        cfg.genesis[0].pinned = true;
        memcpy(cfg.genesis[0].id, s_ids[0].pk, SOS_NODEID_BYTES);
    }
    sos_rc rc;
    char why[256];
    w->node = sos_node_new(&cfg, &rc, why, sizeof why);
    if (!w->node) {
        fprintf(stderr, "fuzz_node: no node: %s\n", why);
        return false;
    }
    for (int k = 0; k < S_PEERS; k++) {
        w->peer_dealers[k] = zsock_new_dealer(">inproc://sos-fuzz-node");
        FUZZ_CHECK(w->peer_dealers[k]);
    }
    for (int c = 0; c < S_CLIENTS; c++) {
        w->clients[c] = zsock_new_dealer(">inproc://sos-fuzz-node");
        FUZZ_CHECK(w->clients[c]);
    }
    msgpack_sbuffer_init(&w->buf);
    msgpack_sbuffer_init(&w->body);
    return true;
}

static void
s_world_destroy(s_world_t *w)
{
    for (int k = 0; k < S_PEERS; k++)
        zsock_destroy(&w->peer_dealers[k]);
    for (int c = 0; c < S_CLIENTS; c++)
        zsock_destroy(&w->clients[c]);
    /*  libzmq releases a closed socket's inproc names later, in its reaper thread; the next
        node binds the same names (its own is made from the same random bytes), so they are
        released now. */
    if (w->node) {
        zsock_unbind(w->node->router, "inproc://sos-fuzz-node");
        zsock_unbind(w->node->router, "%s", w->node->inproc);
    }
    sos_node_destroy(&w->node);
    msgpack_sbuffer_destroy(&w->buf);
    msgpack_sbuffer_destroy(&w->body);
    /*  The data directory holds files only (the store, the key). */
    DIR *d = opendir(w->dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX + 300];
        while ((e = readdir(d)))
            if (!streq(e->d_name, ".") && !streq(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", w->dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(w->dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        s_init_process();
        ready = true;
    }
    fuzz_in_t in = {data, size};
    s_world_t w;
    if (!s_world_new(&w, fuzz_u8(&in))) {
        s_world_destroy(&w);
        abort(); /* the environment, not the input: say so loudly */
    }
    for (int step = 0; step < S_STEPS_MAX && in.n > 0; step++) {
        uint8_t op = fuzz_u8(&in);
        int64_t t0 = zclock_mono();
        if (s_trace)
            fprintf(stderr, "fuzz_node: step %d: op %d at +%llu ms\n", step, op % S_OP_MAX,
                    (unsigned long long)(s_now - FUZZ_NOW_MS));
        switch (op % S_OP_MAX) {
        case S_OP_CLOCK: {
            uint64_t ms = fuzz_u64(&in) % ((op & 0x80) ? 86400000ULL : 600000ULL);
            s_now += ms;
            s_mono += ms;
            break;
        }
        case S_OP_ROUND:
            s_settle(&w);
            sos_node_step(w.node, SOS_STEP_ROUND, 0);
            s_pump(&w, 0);
            break;
        case S_OP_TICK:
            s_settle(&w);
            sos_node_step(w.node, SOS_STEP_TICK, 0);
            s_pump(&w, 0);
            break;
        case S_OP_HOUSEKEEPING:
            sos_node_step(w.node, SOS_STEP_HOUSEKEEPING, 0);
            s_pump(&w, 0);
            break;
        case S_OP_PEER_SEND:
            s_op_peer_send(&w, &in);
            break;
        case S_OP_ANSWER:
            s_settle(&w);
            s_op_answer(&w, &in);
            break;
        case S_OP_CLIENT:
            s_op_client(&w, &in);
            break;
        case S_OP_RAW:
            s_op_raw(&w, &in);
            break;
        }
        s_settle(&w);
        if (getenv("SOS_FUZZ_SLOW") && zclock_mono() - t0 > 50)
            fprintf(stderr, "SLOW step %d op %d: %lld ms\n", step, op % S_OP_MAX,
                    (long long)(zclock_mono() - t0));
    }
    if (s_trace) {
        const sos_stats_t *st = &w.node->stats;
        fprintf(
            stderr,
            "fuzz_node: exchanges ok %llu failed %llu, frames in %llu out %llu, rumors in %llu, "
            "requests %llu, forwards %llu, peers %zu\n",
            (unsigned long long)st->exchanges_ok, (unsigned long long)st->exchanges_failed,
            (unsigned long long)st->frames_in, (unsigned long long)st->frames_out,
            (unsigned long long)st->rumors_in, (unsigned long long)st->requests,
            (unsigned long long)st->forwards, zhashx_size(w.node->gossip->peers));
        fprintf(stderr,
                "fuzz_node: digests by bucket %llu, pieces %llu, answered %llu, refused %llu\n",
                (unsigned long long)st->digests_by_bucket, (unsigned long long)st->digests_pieces,
                (unsigned long long)st->digests_answered, (unsigned long long)st->digests_refused);
        for (int i = 0; i < SOS_DROP_MAX; i++)
            if (st->drops[i])
                fprintf(stderr, "fuzz_node: drop reason %d: %llu\n", i,
                        (unsigned long long)st->drops[i]);
        for (int i = 0; i < SOS_MERGE_MAX; i++)
            if (st->merges[i])
                fprintf(stderr, "fuzz_node: merge result %d: %llu\n", i,
                        (unsigned long long)st->merges[i]);
    }
    s_world_destroy(&w);
    return 0;
}
