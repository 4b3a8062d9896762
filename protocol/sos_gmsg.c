/*  sos_gmsg.c: the body of a gossip envelope: strict, bounded decoding with every carried
    record verified, and encoding that relays records in the exact bytes their origin signed. */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sos_gmsg.h"
#include "sos_mp.h"

/*  Wire: [req_id, flags, hash: bin(16), n_origins, self: bin|nil,
           suspects: [[id: bin(32), version, age_ms: uint32]...],
           digest: [[origin: bin(32), version, removed: bool]...],
           want: [[origin, version]...], records: [bin...]
           (, buckets: [nb, numbers: [uint...], sums: bin (, piece: [bucket, from, to|nil])])]
    The element count is exact: 9, or 10 with the bucket element; flags and n_origins must
    fit 32 bits. */

#define S_GMSG_FIELDS         9
#define S_GMSG_FIELDS_BUCKETS 10

bool
sos_gmsg_nb_ok(uint64_t nb)
{
    return nb >= 1 && nb <= SOS_BUCKETS_MAX && (nb & (nb - 1)) == 0;
}

uint32_t
sos_gmsg_bucket(const uint8_t origin[SOS_NODEID_BYTES], uint64_t nb)
{
    uint32_t bits = 0;
    while ((1ull << bits) < nb)
        bits++;
    uint32_t prefix = (uint32_t)origin[0] << 8 | origin[1];
    return bits ? prefix >> (16 - bits) : 0;
}

/*  A piece's rules, whatever the message: its bucket below nb and not among the whole
    buckets named, from and to in that bucket, from <= to. */
static bool
s_piece_ok(const sos_bucket_piece_t *p, uint64_t nb, const uint16_t *numbers, uint32_t n)
{
    if (p->bucket >= nb || sos_gmsg_bucket(p->from, nb) != p->bucket)
        return false;
    if (!p->to_end &&
        (sos_gmsg_bucket(p->to, nb) != p->bucket || memcmp(p->from, p->to, SOS_NODEID_BYTES) > 0))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (numbers[i] == p->bucket)
            return false;
    return true;
}

/*  The piece: [bucket, from: bin(32), to: bin(32) | nil]. */
static bool
s_decode_piece(const msgpack_object *o, sos_bucket_piece_t *p)
{
    const msgpack_object *f;
    uint32_t count;
    uint64_t bucket;
    if (!sos_mp_array(o, &f, &count, 3) || count != 3 || !sos_mp_uint(&f[0], &bucket) ||
        bucket >= SOS_BUCKETS_MAX || !sos_mp_bin_exact(&f[1], p->from, SOS_NODEID_BYTES))
        return false;
    p->bucket = (uint16_t)bucket;
    p->to_end = f[2].type == MSGPACK_OBJECT_NIL;
    return p->to_end || sos_mp_bin_exact(&f[2], p->to, SOS_NODEID_BYTES);
}

/*  The bucket element: [nb, numbers, sums (, piece)]. Every count is checked against nb
    (itself capped) before anything is allocated. */
static sos_rc
s_decode_buckets(const msgpack_object *o, sos_gmsg_t *msg)
{
    const msgpack_object *f, *items;
    uint32_t count, n_items;
    uint64_t nb;
    const uint8_t *sums;
    size_t sums_len;
    if (!sos_mp_array(o, &f, &count, 4) || (count != 3 && count != 4) || !sos_mp_uint(&f[0], &nb) ||
        !sos_mp_array(&f[1], &items, &n_items, UINT32_MAX) ||
        !sos_mp_bin(&f[2], &sums, &sums_len, SIZE_MAX))
        return SOS_ERR_MALFORMED;
    if (nb > SOS_BUCKETS_MAX)
        return SOS_ERR_TOO_LARGE;
    if (!sos_gmsg_nb_ok(nb) || n_items > nb ||
        (sums_len != 0 && sums_len != (size_t)nb * SOS_DIGEST_HASH_BYTES))
        return SOS_ERR_MALFORMED;
    msg->has_buckets = true;
    msg->nb = (uint32_t)nb;
    if (n_items) {
        msg->buckets = (uint16_t *)calloc(n_items, sizeof *msg->buckets);
        if (!msg->buckets)
            return SOS_ERR_NOMEM;
        for (uint32_t i = 0; i < n_items; i++) {
            uint64_t b;
            if (!sos_mp_uint(&items[i], &b) || b >= nb || (i > 0 && b <= msg->buckets[i - 1]))
                return SOS_ERR_MALFORMED;
            msg->buckets[i] = (uint16_t)b;
            msg->n_buckets = i + 1;
        }
    }
    if (count == 4) {
        if (!s_decode_piece(&f[3], &msg->piece) ||
            !s_piece_ok(&msg->piece, nb, msg->buckets, msg->n_buckets))
            return SOS_ERR_MALFORMED;
        msg->has_piece = true;
    }
    if (sums_len) {
        msg->sums = malloc(sums_len);
        if (!msg->sums)
            return SOS_ERR_NOMEM;
        memcpy(msg->sums, sums, sums_len);
        msg->n_sums = (uint32_t)nb;
    }
    return SOS_OK;
}

/*  Decode a digest (flagged: each entry carries removed) or want list. The count is checked
    against the cap before anything is allocated; that it fits in the bytes left was checked
    by sos_mp_parse. */
static sos_rc
s_decode_digest(const msgpack_object *o, bool flagged, sos_digest_entry_t **entries_p,
                uint32_t *n_p)
{
    const uint32_t arity = flagged ? 3 : 2;
    const msgpack_object *items;
    uint32_t count;
    if (!sos_mp_array(o, &items, &count, UINT32_MAX))
        return SOS_ERR_MALFORMED;
    if (count > SOS_DIGEST_MAX)
        return SOS_ERR_TOO_LARGE;
    if (count == 0)
        return SOS_OK;
    sos_digest_entry_t *entries = (sos_digest_entry_t *)calloc(count, sizeof *entries);
    if (!entries)
        return SOS_ERR_NOMEM;
    *entries_p = entries; /* owned by the message from here, freed by sos_gmsg_release */
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *pair;
        uint32_t n;
        if (!sos_mp_array(&items[i], &pair, &n, arity) || n != arity ||
            !sos_mp_bin_exact(&pair[0], entries[i].origin, SOS_NODEID_BYTES) ||
            !sos_mp_uint(&pair[1], &entries[i].version) ||
            (flagged && !sos_mp_bool(&pair[2], &entries[i].removed)))
            return SOS_ERR_MALFORMED;
    }
    *n_p = count;
    return SOS_OK;
}

static bool
s_uint32(const msgpack_object *o, uint32_t *out)
{
    uint64_t v;
    if (!sos_mp_uint(o, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static sos_rc
s_decode(sos_gmsg_t *msg, const uint8_t *body, size_t len, bool verify_records)
{
    assert(msg);
    memset(msg, 0, sizeof *msg);
    sos_mp_doc_t doc;
    sos_rc rc = sos_mp_parse(&doc, body, len);
    if (rc)
        goto done;

    const msgpack_object *f;
    uint32_t count;
    rc = SOS_ERR_MALFORMED;
    if (!sos_mp_array(doc.root, &f, &count, S_GMSG_FIELDS_BUCKETS) ||
        (count != S_GMSG_FIELDS && count != S_GMSG_FIELDS_BUCKETS) ||
        !sos_mp_uint(&f[0], &msg->req_id) || !s_uint32(&f[1], &msg->flags) ||
        !sos_mp_bin_exact(&f[2], msg->hash, SOS_DIGEST_HASH_BYTES) ||
        !s_uint32(&f[3], &msg->n_origins))
        goto done;

    const uint32_t fields = count; /* count is used again below */
    /* the structure of every field is judged before any signature is checked */
    const uint8_t *self_ptr = NULL;
    size_t self_len = 0;
    if (f[4].type != MSGPACK_OBJECT_NIL && !sos_mp_bin(&f[4], &self_ptr, &self_len, SIZE_MAX))
        goto done;

    const msgpack_object *items;
    if (!sos_mp_array(&f[5], &items, &count, UINT32_MAX))
        goto done;
    if (count > SOS_SUSPECTS_MAX) {
        rc = SOS_ERR_TOO_LARGE;
        goto done;
    }
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *triple;
        uint32_t n;
        uint64_t age;
        if (!sos_mp_array(&items[i], &triple, &n, 3) || n != 3 ||
            !sos_mp_bin_exact(&triple[0], msg->suspects[i].origin, SOS_NODEID_BYTES) ||
            !sos_mp_uint(&triple[1], &msg->suspects[i].version) || !sos_mp_uint(&triple[2], &age) ||
            age > UINT32_MAX)
            goto done;
        msg->suspects[i].age_ms = (uint32_t)age;
    }
    msg->n_suspects = count;

    rc = s_decode_digest(&f[6], true, &msg->digest, &msg->n_digest);
    if (!rc)
        rc = s_decode_digest(&f[7], false, &msg->want, &msg->n_want);
    if (!rc && fields == S_GMSG_FIELDS_BUCKETS)
        rc = s_decode_buckets(&f[9], msg);
    if (rc)
        goto done;

    const msgpack_object *recs;
    uint32_t n_recs;
    rc = SOS_ERR_MALFORMED;
    if (!sos_mp_array(&f[8], &recs, &n_recs, UINT32_MAX))
        goto done;
    if (n_recs > SOS_BATCH_MAX) {
        rc = SOS_ERR_TOO_LARGE;
        goto done;
    }
    for (uint32_t i = 0; i < n_recs; i++)
        if (recs[i].type != MSGPACK_OBJECT_BIN)
            goto done;

    if (f[4].type != MSGPACK_OBJECT_NIL) {
        rc = verify_records ? sos_record_decode(&msg->self, self_ptr, self_len)
                            : sos_record_parse(&msg->self, self_ptr, self_len);
        if (rc)
            goto done;
        if (msg->self.kind != SOS_REC_WORKER) {
            rc = SOS_ERR_MALFORMED;
            goto done;
        }
        msg->has_self = true;
    }
    if (n_recs > 0) {
        msg->records = (sos_record_t *)calloc(n_recs, sizeof(sos_record_t));
        if (!msg->records) {
            rc = SOS_ERR_NOMEM;
            goto done;
        }
        for (uint32_t i = 0; i < n_recs; i++) {
            const uint8_t *wire = (const uint8_t *)recs[i].via.bin.ptr;
            size_t wire_len = recs[i].via.bin.size;
            rc = verify_records ? sos_record_decode(&msg->records[i], wire, wire_len)
                                : sos_record_parse(&msg->records[i], wire, wire_len);
            if (rc)
                goto done;
        }
        msg->n_records = n_recs;
    }
    rc = SOS_OK;

done:
    sos_mp_doc_release(&doc);
    if (rc)
        sos_gmsg_release(msg);
    return rc;
}

sos_rc
sos_gmsg_decode(sos_gmsg_t *msg, const uint8_t *body, size_t len)
{
    return s_decode(msg, body, len, true);
}

sos_rc
sos_gmsg_decode_unverified(sos_gmsg_t *msg, const uint8_t *body, size_t len)
{
    return s_decode(msg, body, len, false);
}

void
sos_gmsg_release(sos_gmsg_t *msg)
{
    if (!msg)
        return;
    free(msg->digest);
    free(msg->want);
    free(msg->records);
    free(msg->buckets);
    free(msg->sums);
    msg->buckets = NULL;
    msg->sums = NULL;
    msg->has_buckets = false;
    msg->has_piece = false;
    msg->nb = msg->n_buckets = msg->n_sums = 0;
    msg->digest = NULL;
    msg->want = NULL;
    msg->records = NULL;
    msg->n_digest = 0;
    msg->n_want = 0;
    msg->n_records = 0;
    msg->has_self = false;
    msg->n_suspects = 0;
}

static int
s_pack_digest(msgpack_packer *pk, const sos_digest_entry_t *entries, uint32_t n, bool flagged)
{
    int err = msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        err |= msgpack_pack_array(pk, flagged ? 3 : 2);
        err |= msgpack_pack_bin_with_body(pk, entries[i].origin, SOS_NODEID_BYTES);
        err |= msgpack_pack_uint64(pk, entries[i].version);
        if (flagged)
            err |= entries[i].removed ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    return err;
}

sos_rc
sos_gmsg_encode(msgpack_sbuffer *out, const sos_gmsg_t *msg, const uint8_t *const *wires,
                const size_t *lens, uint32_t n)
{
    assert(out && msg);
    if (msg->n_suspects > SOS_SUSPECTS_MAX || msg->n_digest > SOS_DIGEST_MAX ||
        msg->n_want > SOS_DIGEST_MAX || n > SOS_BATCH_MAX)
        return SOS_ERR_TOO_LARGE;
    if ((msg->n_digest && !msg->digest) || (msg->n_want && !msg->want) || (n && (!wires || !lens)))
        return SOS_ERR_INVALID;
    if (msg->has_self && (msg->self.wire_len == 0 || msg->self.wire_len > SOS_RECORD_MAX))
        return SOS_ERR_INVALID;
    if (msg->has_buckets) {
        if (!sos_gmsg_nb_ok(msg->nb) || msg->n_buckets > msg->nb ||
            (msg->n_buckets && !msg->buckets) || (msg->n_sums != 0 && msg->n_sums != msg->nb) ||
            (msg->n_sums && !msg->sums))
            return SOS_ERR_INVALID;
        for (uint32_t i = 0; i < msg->n_buckets; i++)
            if (msg->buckets[i] >= msg->nb || (i > 0 && msg->buckets[i] <= msg->buckets[i - 1]))
                return SOS_ERR_INVALID;
        if (msg->has_piece && !s_piece_ok(&msg->piece, msg->nb, msg->buckets, msg->n_buckets))
            return SOS_ERR_INVALID;
    } else if (msg->has_piece) {
        return SOS_ERR_INVALID;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!wires[i] || lens[i] == 0)
            return SOS_ERR_INVALID;
        if (lens[i] > SOS_RECORD_MAX)
            return SOS_ERR_TOO_LARGE;
    }

    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int err = msgpack_pack_array(&pk, msg->has_buckets ? S_GMSG_FIELDS_BUCKETS : S_GMSG_FIELDS);
    err |= msgpack_pack_uint64(&pk, msg->req_id);
    err |= msgpack_pack_uint32(&pk, msg->flags);
    err |= msgpack_pack_bin_with_body(&pk, msg->hash, SOS_DIGEST_HASH_BYTES);
    err |= msgpack_pack_uint32(&pk, msg->n_origins);
    if (msg->has_self)
        err |= msgpack_pack_bin_with_body(&pk, msg->self.wire, msg->self.wire_len);
    else
        err |= msgpack_pack_nil(&pk);
    err |= msgpack_pack_array(&pk, msg->n_suspects);
    for (uint32_t i = 0; i < msg->n_suspects; i++) {
        err |= msgpack_pack_array(&pk, 3);
        err |= msgpack_pack_bin_with_body(&pk, msg->suspects[i].origin, SOS_NODEID_BYTES);
        err |= msgpack_pack_uint64(&pk, msg->suspects[i].version);
        err |= msgpack_pack_uint32(&pk, msg->suspects[i].age_ms);
    }
    err |= s_pack_digest(&pk, msg->digest, msg->n_digest, true);
    err |= s_pack_digest(&pk, msg->want, msg->n_want, false);
    err |= msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        err |= msgpack_pack_bin_with_body(&pk, wires[i], lens[i]);
    if (msg->has_buckets) {
        err |= msgpack_pack_array(&pk, msg->has_piece ? 4 : 3);
        err |= msgpack_pack_uint32(&pk, msg->nb);
        err |= msgpack_pack_array(&pk, msg->n_buckets);
        for (uint32_t i = 0; i < msg->n_buckets; i++)
            err |= msgpack_pack_uint16(&pk, msg->buckets[i]);
        size_t sums_len = (size_t)msg->n_sums * SOS_DIGEST_HASH_BYTES;
        err |= msgpack_pack_bin(&pk, sums_len);
        if (sums_len)
            err |= msgpack_pack_bin_body(&pk, msg->sums, sums_len);
        if (msg->has_piece) {
            err |= msgpack_pack_array(&pk, 3);
            err |= msgpack_pack_uint16(&pk, msg->piece.bucket);
            err |= msgpack_pack_bin_with_body(&pk, msg->piece.from, SOS_NODEID_BYTES);
            if (msg->piece.to_end)
                err |= msgpack_pack_nil(&pk);
            else
                err |= msgpack_pack_bin_with_body(&pk, msg->piece.to, SOS_NODEID_BYTES);
        }
    }
    if (err) {
        out->size = start;
        return SOS_ERR_NOMEM;
    }
    return SOS_OK;
}

#define S_PROBE_FIELDS 3

sos_rc
sos_probe_decode(sos_probe_msg_t *msg, const uint8_t *body, size_t len)
{
    assert(msg);
    memset(msg, 0, sizeof *msg);
    sos_mp_doc_t doc;
    sos_rc rc = sos_mp_parse(&doc, body, len);
    if (rc)
        goto done;
    const msgpack_object *f;
    uint32_t count;
    rc = SOS_ERR_MALFORMED;
    if (sos_mp_array(doc.root, &f, &count, S_PROBE_FIELDS) && count == S_PROBE_FIELDS &&
        sos_mp_uint(&f[0], &msg->req_id) &&
        sos_mp_bin_exact(&f[1], msg->target, SOS_NODEID_BYTES) && sos_mp_bool(&f[2], &msg->reached))
        rc = SOS_OK;
done:
    sos_mp_doc_release(&doc);
    if (rc)
        memset(msg, 0, sizeof *msg);
    return rc;
}

sos_rc
sos_probe_encode(msgpack_sbuffer *out, const sos_probe_msg_t *msg)
{
    assert(out && msg);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int err = msgpack_pack_array(&pk, S_PROBE_FIELDS);
    err |= msgpack_pack_uint64(&pk, msg->req_id);
    err |= msgpack_pack_bin_with_body(&pk, msg->target, SOS_NODEID_BYTES);
    err |= msg->reached ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (err) {
        out->size = start;
        return SOS_ERR_NOMEM;
    }
    return SOS_OK;
}

static int
s_entry_cmp(const void *a, const void *b)
{
    return memcmp(((const sos_digest_entry_t *)a)->origin, ((const sos_digest_entry_t *)b)->origin,
                  SOS_NODEID_BYTES);
}

void
sos_digest_hash(uint8_t out[SOS_DIGEST_HASH_BYTES], sos_digest_entry_t *entries, uint32_t n)
{
    assert(out && (entries || n == 0));
    static const char domain[] = "sosnode/2/digest"; /* hashed with its NUL */
    /*  Callers that keep their digest in order (the simulator's 10,000 of them) skip the
        sort: the check is one pass. */
    bool sorted = true;
    for (uint32_t i = 1; i < n && sorted; i++)
        sorted = s_entry_cmp(&entries[i - 1], &entries[i]) <= 0;
    if (!sorted)
        qsort(entries, n, sizeof *entries, s_entry_cmp);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SOS_DIGEST_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)domain, sizeof domain);
    uint8_t count[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_generichash_update(&st, count, sizeof count);
    /*  The entries go to the hash 64 at a time: the same bytes as one update each, with a
        64th of the calls (a digest of 10,000 origins is hashed at every change). */
    uint8_t in[64 * (SOS_NODEID_BYTES + 8 + 1)];
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        /*  The flag is hashed in every entry, not only in removed ones: a fixed-size entry
            keeps the hashed list canonical. */
        memcpy(in + used, entries[i].origin, SOS_NODEID_BYTES);
        for (int b = 0; b < 8; b++)
            in[used + SOS_NODEID_BYTES + b] = (uint8_t)(entries[i].version >> (56 - 8 * b));
        in[used + SOS_NODEID_BYTES + 8] = entries[i].removed ? 1 : 0;
        used += SOS_NODEID_BYTES + 8 + 1;
        if (used == sizeof in || i + 1 == n) {
            crypto_generichash_update(&st, in, used);
            used = 0;
        }
    }
    crypto_generichash_final(&st, out, SOS_DIGEST_HASH_BYTES);
}
