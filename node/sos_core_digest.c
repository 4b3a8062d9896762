/*  sos_core_digest.c: the digest, its gaps, and the comparison of two digests. */
#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "sos_core_digest.h"

struct _sos_gaps_t {
    zhashx_t *table; /* origin hex -> s_gap_t (owned) */
    uint64_t ttl_ms;
    uint32_t max;
};

typedef struct {
    uint64_t version;
    uint64_t expires_mono;
} s_gap_t;

static void
s_gap_free(void **item)
{
    free(*item);
    *item = NULL;
}

sos_gaps_t *
sos_gaps_new(uint64_t interval_ms, uint32_t max)
{
    sos_gaps_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->table = zhashx_new();
    if (!self->table) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->table, s_gap_free);
    uint64_t ttl = interval_ms * 20;
    self->ttl_ms = ttl > SOS_GAP_TTL_MIN ? ttl : SOS_GAP_TTL_MIN;
    self->max = max;
    return self;
}

void
sos_gaps_destroy(sos_gaps_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->table);
    free(*self_p);
    *self_p = NULL;
}

size_t
sos_gaps_size(const sos_gaps_t *self)
{
    return zhashx_size(self->table);
}

bool
sos_gaps_get(const sos_gaps_t *self, const uint8_t origin[SOS_NODEID_BYTES], uint64_t *version)
{
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, origin, SOS_NODEID_BYTES);
    const s_gap_t *gap = zhashx_lookup(self->table, hex);
    if (gap && version)
        *version = gap->version;
    return gap != NULL;
}

sos_rc
sos_gaps_set(sos_gaps_t *self, const uint8_t origin[SOS_NODEID_BYTES], uint64_t version,
             uint64_t now_mono)
{
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, origin, SOS_NODEID_BYTES);
    s_gap_t *gap = zhashx_lookup(self->table, hex);
    if (!gap) {
        if (zhashx_size(self->table) >= self->max)
            return SOS_ERR_FULL;
        gap = calloc(1, sizeof *gap);
        if (!gap)
            return SOS_ERR_NOMEM;
        if (zhashx_insert(self->table, hex, gap) != 0) {
            free(gap);
            return SOS_ERR_NOMEM;
        }
        gap->expires_mono = now_mono + self->ttl_ms;
    }
    gap->version = version;
    return SOS_OK;
}

void
sos_gaps_del(sos_gaps_t *self, const uint8_t origin[SOS_NODEID_BYTES])
{
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, origin, SOS_NODEID_BYTES);
    zhashx_delete(self->table, hex);
}

/*  The highest version held of origin, a record's or a tombstone's. */
static uint64_t
s_held(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES])
{
    uint64_t held = 0, ts_version = 0, ts_expires = 0;
    sos_dir_held_max(txn, origin, &held);
    if (sos_dir_tombstone_get(txn, origin, &ts_version, &ts_expires) == SOS_OK && ts_version > held)
        held = ts_version;
    return held;
}

uint32_t
sos_gaps_sweep(sos_gaps_t *self, sos_txn_t *txn, uint64_t now_mono)
{
    if (!zhashx_size(self->table))
        return 0;
    zlistx_t *gone = zlistx_new();
    if (!gone)
        return 0;
    for (s_gap_t *gap = zhashx_first(self->table); gap; gap = zhashx_next(self->table)) {
        const char *hex = zhashx_cursor(self->table);
        uint8_t origin[SOS_NODEID_BYTES];
        uint64_t held = 0, ts_version = 0, ts_expires = 0;
        bool empty = sos_unhex(origin, sizeof origin, hex) &&
                     sos_dir_held_max(txn, origin, &held) == SOS_OK && held == 0 &&
                     sos_dir_tombstone_get(txn, origin, &ts_version, &ts_expires) != SOS_OK;
        if (now_mono >= gap->expires_mono || empty)
            zlistx_add_end(gone, (void *)hex);
    }
    uint32_t n = 0;
    for (const char *hex = zlistx_first(gone); hex; hex = zlistx_next(gone)) {
        zhashx_delete(self->table, hex);
        n++;
    }
    zlistx_destroy(&gone);
    return n;
}

bool
sos_gaps_settle(sos_gaps_t *self, sos_txn_t *txn, const sos_record_t *rec, uint64_t now_mono)
{
    uint64_t version = 0;
    if (!sos_gaps_get(self, rec->origin, &version) || rec->version <= version)
        return false;
    /*  It closes only when the batch reaches the highest version we hold: the sender's
        digest may stop below records that a rumor brought us past the hole, and closing the
        gap on any complete batch would make us claim that hole as held, for good. */
    if (rec->version >= s_held(txn, rec->origin))
        sos_gaps_del(self, rec->origin);
    else
        sos_gaps_set(self, rec->origin, rec->version, now_mono); /* open: never refused */
    return true;
}

uint64_t
sos_digest_version(const sos_gaps_t *gaps, sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES])
{
    uint64_t version = 0;
    if (gaps && sos_gaps_get(gaps, origin, &version))
        return version;
    return s_held(txn, origin);
}

void
sos_digest_entry(const sos_gaps_t *gaps, sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES],
                 sos_digest_entry_t *out)
{
    memcpy(out->origin, origin, SOS_NODEID_BYTES);
    out->removed = false;
    uint64_t gap = 0;
    if (gaps && sos_gaps_get(gaps, origin, &gap)) {
        out->version = gap;
        return;
    }
    uint64_t held = 0, ts_version = 0, ts_expires = 0;
    sos_dir_held_max(txn, origin, &held);
    bool tomb = sos_dir_tombstone_get(txn, origin, &ts_version, &ts_expires) == SOS_OK;
    out->version = tomb && ts_version > held ? ts_version : held;
    /*  The tombstone is kept at the removed worker record's version, which the origin's
        rooms (one counter signs both) may have passed: what says removed is that the worker
        is gone here, not which version is higher. */
    out->removed = tomb && sos_dir_get_worker(txn, origin, NULL, NULL) == SOS_ERR_NOT_FOUND;
}

bool
sos_digest_removed_here(const sos_digest_entry_t *mine, const sos_digest_entry_t *theirs)
{
    return theirs->removed && !mine->removed && theirs->version >= mine->version &&
           mine->version > 0;
}

typedef struct {
    const sos_gaps_t *gaps;
    sos_txn_t *txn;
    sos_digest_entry_t *entries;
    uint32_t n;
    uint32_t cap;
    bool nomem;
} s_digest_t;

static int
s_digest_each(void *arg, const sos_origin_t *origin)
{
    s_digest_t *d = arg;
    if (d->n == d->cap) {
        uint32_t cap = d->cap * 2;
        sos_digest_entry_t *grown = cap > d->cap ? realloc(d->entries, cap * sizeof *grown) : NULL;
        if (!grown) {
            d->nomem = true;
            return 1;
        }
        d->entries = grown;
        d->cap = cap;
    }
    sos_digest_entry(d->gaps, d->txn, origin->origin, &d->entries[d->n++]);
    return 0;
}

sos_digest_entry_t *
sos_digest_build(const sos_gaps_t *gaps, sos_txn_t *txn, uint32_t *n)
{
    s_digest_t d = {.gaps = gaps, .txn = txn, .cap = 256};
    d.entries = malloc(d.cap * sizeof *d.entries);
    if (!d.entries)
        return NULL;
    /*  The store gives origins in id order: the digest comes out sorted. */
    sos_dir_foreach_origin(txn, s_digest_each, &d);
    if (d.nomem) {
        free(d.entries);
        return NULL;
    }
    *n = d.n;
    return d.entries;
}

/* ------------------------------------------------------------- buckets ---- */

uint32_t
sos_digest_nbuckets(uint32_t n_origins)
{
    uint32_t nb = 1;
    while (nb < SOS_BUCKETS_MAX && (uint64_t)nb * SOS_BUCKET_ORIGINS < n_origins)
        nb *= 2;
    return nb;
}

bool
sos_digest_nb_ok(uint64_t nb)
{
    return sos_gmsg_nb_ok(nb);
}

uint32_t
sos_digest_bucket(const uint8_t origin[SOS_NODEID_BYTES], uint32_t nb)
{
    return sos_gmsg_bucket(origin, nb);
}

void
sos_bucket_hash_init(sos_bucket_hash_t *h)
{
    static const char domain[] = "sosnode/2/bucket"; /* hashed with its NUL */
    crypto_generichash_init(&h->st, NULL, 0, SOS_DIGEST_HASH_BYTES);
    crypto_generichash_update(&h->st, (const unsigned char *)domain, sizeof domain);
}

void
sos_bucket_hash_add(sos_bucket_hash_t *h, const sos_digest_entry_t *e)
{
    uint8_t in[SOS_NODEID_BYTES + 8 + 1];
    memcpy(in, e->origin, SOS_NODEID_BYTES);
    for (int b = 0; b < 8; b++)
        in[SOS_NODEID_BYTES + b] = (uint8_t)(e->version >> (56 - 8 * b));
    in[SOS_NODEID_BYTES + 8] = e->removed ? 1 : 0;
    crypto_generichash_update(&h->st, in, sizeof in);
}

void
sos_bucket_hash_final(sos_bucket_hash_t *h, uint8_t out[SOS_DIGEST_HASH_BYTES])
{
    crypto_generichash_final(&h->st, out, SOS_DIGEST_HASH_BYTES);
}

/*  The first index of sorted whose bucket is at least b. */
static uint32_t
s_lower(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb, uint32_t b)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sos_digest_bucket(sorted[mid].origin, nb) < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void
sos_digest_bucket_range(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb, uint32_t b,
                        uint32_t *first, uint32_t *count)
{
    uint32_t lo = s_lower(sorted, n, nb, b);
    uint32_t hi = b + 1 < nb ? s_lower(sorted, n, nb, b + 1) : n;
    *first = lo;
    *count = hi > lo ? hi - lo : 0;
}

void
sos_digest_bucket_sums(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                       uint8_t (*sums)[SOS_DIGEST_HASH_BYTES])
{
    uint32_t i = 0;
    for (uint32_t b = 0; b < nb; b++) {
        sos_bucket_hash_t h;
        sos_bucket_hash_init(&h);
        while (i < n && sos_digest_bucket(sorted[i].origin, nb) == b)
            sos_bucket_hash_add(&h, &sorted[i++]);
        sos_bucket_hash_final(&h, sums[b]);
    }
}

uint32_t
sos_digest_buckets_pick(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                        const uint8_t (*mine)[SOS_DIGEST_HASH_BYTES],
                        const uint8_t (*theirs)[SOS_DIGEST_HASH_BYTES], uint32_t n_theirs,
                        uint32_t start, uint32_t max_entries, uint16_t *out, uint32_t *n_differ)
{
    uint64_t bits[SOS_BUCKET_WORDS] = {0};
    uint64_t per_theirs = ((uint64_t)n_theirs + nb - 1) / nb, total = 0;
    uint32_t picked = 0, differ = 0;
    bool full = false;
    for (uint32_t k = 0; k < nb; k++) {
        uint32_t b = (start + k) & (nb - 1);
        if (memcmp(mine[b], theirs[b], SOS_DIGEST_HASH_BYTES) == 0)
            continue;
        differ++;
        if (full)
            continue;
        uint32_t first, count;
        sos_digest_bucket_range(sorted, n, nb, b, &first, &count);
        uint64_t cost = count + per_theirs;
        if (picked && total + cost > max_entries) {
            full = true; /* the rest at the next exchange */
            continue;
        }
        total += cost;
        bits[b / 64] |= 1ULL << (b % 64);
        picked++;
    }
    uint32_t k = 0;
    for (uint32_t b = 0; b < nb && k < picked; b++)
        if (bits[b / 64] >> (b % 64) & 1)
            out[k++] = (uint16_t)b;
    if (n_differ)
        *n_differ = differ;
    return k;
}

void
sos_digest_bucket_first(uint32_t nb, uint32_t b, uint8_t out[SOS_NODEID_BYTES])
{
    uint32_t bits = 0;
    while ((1u << bits) < nb)
        bits++;
    uint32_t prefix = bits ? b << (16 - bits) : 0;
    memset(out, 0, SOS_NODEID_BYTES);
    out[0] = (uint8_t)(prefix >> 8);
    out[1] = (uint8_t)prefix;
}

bool
sos_digest_piece_ok(uint32_t nb, const sos_bucket_piece_t *p)
{
    if (!sos_digest_nb_ok(nb) || p->bucket >= nb || sos_digest_bucket(p->from, nb) != p->bucket)
        return false;
    return p->to_end || (sos_digest_bucket(p->to, nb) == p->bucket &&
                         memcmp(p->from, p->to, SOS_NODEID_BYTES) <= 0);
}

/*  The first index of sorted[0..n) whose origin is at least (above, if after) origin. */
static uint32_t
s_lower_origin(const sos_digest_entry_t *sorted, uint32_t n, const uint8_t *origin, bool after)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(sorted[mid].origin, origin, SOS_NODEID_BYTES);
        if (cmp < 0 || (after && cmp == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*  The entries of sorted in the piece's range: sorted[*first .. *first + *count). */
static void
s_piece_range(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
              const sos_bucket_piece_t *p, uint32_t *first, uint32_t *count)
{
    uint32_t lo, k;
    sos_digest_bucket_range(sorted, n, nb, p->bucket, &lo, &k);
    uint32_t from = lo + s_lower_origin(sorted + lo, k, p->from, false);
    uint32_t to = p->to_end ? lo + k : lo + s_lower_origin(sorted + lo, k, p->to, true);
    *first = from;
    *count = to > from ? to - from : 0;
}

uint32_t
sos_digest_buckets_take(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                        const uint16_t *asked, uint32_t n_asked, const sos_bucket_piece_t *piece,
                        sos_digest_entry_t *out, uint32_t max_entries, uint32_t *n_out,
                        uint16_t *covered, sos_bucket_piece_t *piece_out)
{
    uint32_t p_first = 0, p_count = 0;
    if (piece) {
        /*  The piece first: the asker asked it alone, and a pass must move on. */
        sos_bucket_piece_t rest = *piece;
        rest.to_end = true;
        s_piece_range(sorted, n, nb, &rest, &p_first, &p_count);
        *piece_out = rest;
        if (p_count > max_entries) {
            assert(max_entries > 0);
            p_count = max_entries;
            piece_out->to_end = false;
            memcpy(piece_out->to, sorted[p_first + p_count - 1].origin, SOS_NODEID_BYTES);
        }
    }
    uint32_t room = max_entries - p_count, used = 0, n_covered = 0;
    bool piece_out_done = !piece;
    *n_out = 0;
    for (uint32_t i = 0; i <= n_asked; i++) {
        /*  The piece's entries go where its bucket falls among the whole ones. */
        if (!piece_out_done && (i == n_asked || asked[i] > piece->bucket)) {
            if (p_count)
                memcpy(out + *n_out, sorted + p_first, p_count * sizeof *out);
            *n_out += p_count;
            piece_out_done = true;
        }
        if (i == n_asked)
            break;
        if (asked[i] >= nb || (piece && asked[i] == piece->bucket))
            continue;
        uint32_t first, count;
        sos_digest_bucket_range(sorted, n, nb, asked[i], &first, &count);
        if (count > room - used)
            continue; /* whole buckets only: the asker diffs over them */
        if (count)
            memcpy(out + *n_out, sorted + first, count * sizeof *out);
        *n_out += count;
        used += count;
        covered[n_covered++] = asked[i];
    }
    return n_covered;
}

bool
sos_digest_buckets_check(uint32_t nb, const uint64_t asked[SOS_BUCKET_WORDS],
                         const sos_bucket_piece_t *piece_asked, const uint16_t *covered,
                         uint32_t n_covered, const sos_bucket_piece_t *piece,
                         const sos_digest_entry_t *entries, uint32_t n)
{
    if (!sos_digest_nb_ok(nb) || !piece != !piece_asked)
        return false;
    if (piece && (piece->bucket != piece_asked->bucket ||
                  memcmp(piece->from, piece_asked->from, SOS_NODEID_BYTES) != 0 ||
                  !sos_digest_piece_ok(nb, piece)))
        return false;
    for (uint32_t i = 0; i < n_covered; i++)
        if (covered[i] >= nb || !(asked[covered[i] / 64] >> (covered[i] % 64) & 1) ||
            (i > 0 && covered[i] <= covered[i - 1]) || (piece && covered[i] == piece->bucket))
            return false;
    uint32_t c = 0;
    const sos_digest_entry_t *last_in_piece = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && memcmp(entries[i - 1].origin, entries[i].origin, SOS_NODEID_BYTES) >= 0)
            return false;
        uint32_t b = sos_digest_bucket(entries[i].origin, nb);
        if (piece && b == piece->bucket) {
            if (memcmp(entries[i].origin, piece->from, SOS_NODEID_BYTES) < 0 ||
                (!piece->to_end && memcmp(entries[i].origin, piece->to, SOS_NODEID_BYTES) > 0))
                return false;
            last_in_piece = &entries[i];
            continue;
        }
        while (c < n_covered && covered[c] < b)
            c++;
        if (c == n_covered || covered[c] != b)
            return false;
    }
    /*  A piece that stopped short says where: at its last entry, so that the next one
        starts right after what was compared. */
    if (piece && !piece->to_end &&
        (!last_in_piece || memcmp(last_in_piece->origin, piece->to, SOS_NODEID_BYTES) != 0))
        return false;
    return true;
}

uint32_t
sos_digest_buckets_mine(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                        const uint16_t *covered, uint32_t n_covered,
                        const sos_bucket_piece_t *piece, sos_digest_entry_t *out)
{
    uint32_t k = 0;
    bool piece_done = !piece;
    for (uint32_t i = 0; i <= n_covered; i++) {
        uint32_t first, count;
        if (!piece_done && (i == n_covered || covered[i] > piece->bucket)) {
            s_piece_range(sorted, n, nb, piece, &first, &count);
            if (count)
                memcpy(out + k, sorted + first, count * sizeof *out);
            k += count;
            piece_done = true;
        }
        if (i == n_covered)
            break;
        sos_digest_bucket_range(sorted, n, nb, covered[i], &first, &count);
        if (count)
            memcpy(out + k, sorted + first, count * sizeof *out);
        k += count;
    }
    return k;
}

/*  The origin right after id into next, in id order. False if there is none in id's
    bucket among nb (id is the bucket's last origin, or the last of all). */
static bool
s_next_in_bucket(const uint8_t id[SOS_NODEID_BYTES], uint32_t nb, uint8_t next[SOS_NODEID_BYTES])
{
    memcpy(next, id, SOS_NODEID_BYTES);
    int i = SOS_NODEID_BYTES - 1;
    while (i >= 0 && next[i] == 0xff)
        next[i--] = 0;
    if (i < 0)
        return false;
    next[i]++;
    return sos_digest_bucket(next, nb) == sos_digest_bucket(id, nb);
}

bool
sos_piece_cursor_ask(sos_piece_cursor_t *c, uint32_t nb,
                     const uint8_t (*mine)[SOS_DIGEST_HASH_BYTES],
                     const uint8_t (*theirs)[SOS_DIGEST_HASH_BYTES], sos_bucket_piece_t *piece)
{
    if (!c->nb)
        return false;
    if (c->nb != nb || c->bucket >= nb) {
        c->nb = 0; /* the buckets were cut otherwise: found again if still too large */
        return false;
    }
    if (memcmp(mine[c->bucket], theirs[c->bucket], SOS_DIGEST_HASH_BYTES) == 0) {
        c->nb = 0; /* settled */
        c->last = c->bucket;
        c->turn = true;
        return false;
    }
    memset(piece, 0, sizeof *piece);
    piece->bucket = c->bucket;
    memcpy(piece->from, c->from, SOS_NODEID_BYTES);
    piece->to_end = true;
    return true;
}

uint32_t
sos_piece_cursor_start(sos_piece_cursor_t *c, uint32_t nb, uint32_t random_start)
{
    if (!c->turn || !sos_digest_nb_ok(nb))
        return random_start;
    c->turn = false;
    return (c->last + 1u) & (nb - 1);
}

bool
sos_piece_cursor_answered(sos_piece_cursor_t *c, uint32_t nb,
                          const uint64_t asked[SOS_BUCKET_WORDS], const uint16_t *covered,
                          uint32_t n_covered, const sos_bucket_piece_t *piece)
{
    if (!sos_digest_nb_ok(nb))
        return false;
    if (piece) {
        uint8_t next[SOS_NODEID_BYTES];
        if (!piece->to_end && s_next_in_bucket(piece->to, nb, next)) {
            c->nb = nb;
            c->bucket = piece->bucket;
            memcpy(c->from, next, SOS_NODEID_BYTES);
            return true; /* the pass goes on */
        }
        c->nb = 0; /* the pass is over */
        c->last = piece->bucket;
        c->turn = true;
    }
    if (c->nb)
        return false;
    /*  A whole bucket asked and not covered did not fit the answer: the next in turn after
        the last pass gets the cursor. */
    uint64_t left[SOS_BUCKET_WORDS];
    memcpy(left, asked, sizeof left);
    for (uint32_t i = 0; i < n_covered; i++)
        if (covered[i] < nb)
            left[covered[i] / 64] &= ~(1ULL << (covered[i] % 64));
    for (uint32_t k = 1; k <= nb; k++) {
        uint32_t b = (c->last + k) & (nb - 1);
        if (left[b / 64] >> (b % 64) & 1) {
            c->nb = nb;
            c->bucket = (uint16_t)b;
            sos_digest_bucket_first(nb, b, c->from);
            return !piece;
        }
    }
    return false;
}

static int
s_entry_cmp(const void *a, const void *b)
{
    return memcmp(((const sos_digest_entry_t *)a)->origin, ((const sos_digest_entry_t *)b)->origin,
                  SOS_NODEID_BYTES);
}

static bool
s_sorted(const sos_digest_entry_t *e, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (s_entry_cmp(&e[i - 1], &e[i]) > 0)
            return false;
    return true;
}

void
sos_digest_diff(const uint8_t self_id[SOS_NODEID_BYTES], sos_digest_entry_t *mine, uint32_t n_mine,
                sos_digest_entry_t *theirs, uint32_t n_theirs, sos_digest_entry_t *give,
                uint32_t *n_give, sos_digest_entry_t *want, uint32_t *n_want,
                sos_digest_entry_t *removed, uint32_t *n_removed)
{
    /*  An empty digest may have no array, and qsort must not be given NULL even for 0. A
        digest built here (sos_digest_build) or kept in order comes sorted: not again. */
    if (n_theirs && !s_sorted(theirs, n_theirs))
        qsort(theirs, n_theirs, sizeof *theirs, s_entry_cmp);
    if (n_mine && !s_sorted(mine, n_mine))
        qsort(mine, n_mine, sizeof *mine, s_entry_cmp);
    uint32_t i = 0, j = 0;
    *n_give = *n_want = 0;
    if (n_removed)
        *n_removed = 0;
    while (i < n_mine || j < n_theirs) {
        int cmp = i == n_mine     ? 1
                  : j == n_theirs ? -1
                                  : memcmp(mine[i].origin, theirs[j].origin, SOS_NODEID_BYTES);
        if (cmp < 0) { /* only we know this origin */
            give[*n_give] = mine[i];
            give[(*n_give)++].version = 0;
            i++;
        } else if (cmp > 0) { /* only they know it */
            if (memcmp(theirs[j].origin, self_id, SOS_NODEID_BYTES) != 0) {
                want[*n_want] = theirs[j];
                want[(*n_want)++].version = 0;
            }
            j++;
        } else {
            if (removed && n_removed && sos_digest_removed_here(&mine[i], &theirs[j]))
                removed[(*n_removed)++] = theirs[j];
            if (mine[i].version > theirs[j].version)
                give[(*n_give)++] = theirs[j];
            else if (mine[i].version < theirs[j].version &&
                     memcmp(mine[i].origin, self_id, SOS_NODEID_BYTES) != 0)
                want[(*n_want)++] = mine[i];
            i++;
            j++;
        }
    }
}

static int
s_batch_each(void *arg, const uint8_t *wire, size_t len, uint64_t version)
{
    sos_batch_t *b = arg;
    if (version > b->limit)
        return 1;
    size_t max = b->max_bytes ? b->max_bytes : SOS_DELTA_BYTES_MAX;
    if (b->n == SOS_BATCH_MAX || b->used + len > max) {
        b->full = true;
        return 1;
    }
    if (b->used + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64 * 1024;
        while (cap < b->used + len)
            cap *= 2;
        uint8_t *bytes = realloc(b->bytes, cap);
        if (!bytes) {
            b->full = true;
            return 1;
        }
        b->bytes = bytes;
        b->cap = cap;
    }
    memcpy(b->bytes + b->used, wire, len);
    b->offsets[b->n] = b->used;
    b->lens[b->n] = len;
    b->used += len;
    b->n++;
    return 0;
}

void
sos_digest_collect(const sos_gaps_t *gaps, sos_txn_t *txn, const sos_digest_entry_t *want,
                   uint32_t n, sos_batch_t *b)
{
    for (uint32_t i = 0; i < n && !b->full; i++) {
        b->limit = UINT64_MAX;
        if (gaps)
            sos_gaps_get(gaps, want[i].origin, &b->limit);
        sos_dir_foreach_since(txn, want[i].origin, want[i].version, s_batch_each, b);
    }
    /*  The bytes may have moved while they grew: point at them only now. */
    for (uint32_t i = 0; i < b->n; i++)
        b->wires[i] = b->bytes + b->offsets[i];
}

void
sos_batch_release(sos_batch_t *b)
{
    if (!b)
        return;
    free(b->bytes);
    b->bytes = NULL;
    b->used = b->cap = 0;
    b->n = 0;
}
