/*  fuzz_gmsg.c: libFuzzer target for protocol/sos_gmsg, the gossip body: raw bodies, bodies
    whose records the harness signs again, and bodies built from fuzzer fields, round-tripped. */
#include <msgpack.h>

#include "fuzz_common.h"
#include "sos_gmsg.h"

#define S_RESIGN_MAX        8 /* records re-signed per body: signing is the costly step */
#define S_FIELD_RECORDS_MAX 4

/*  A decoded body re-encodes (records in their signed bytes) to a body that decodes to the
    same message. */
static void
s_round_trip(const sos_gmsg_t *msg)
{
    FUZZ_CHECK(msg->n_suspects <= SOS_SUSPECTS_MAX && msg->n_digest <= SOS_DIGEST_MAX &&
               msg->n_want <= SOS_DIGEST_MAX && msg->n_records <= SOS_BATCH_MAX);
    FUZZ_CHECK(!msg->has_self || msg->self.kind == SOS_REC_WORKER);
    FUZZ_CHECK(!msg->has_buckets ||
               (msg->nb >= 1 && msg->nb <= SOS_BUCKETS_MAX && msg->n_buckets <= msg->nb &&
                (msg->n_sums == 0 || msg->n_sums == msg->nb)));
    const uint8_t *wires[SOS_BATCH_MAX];
    size_t lens[SOS_BATCH_MAX];
    for (uint32_t i = 0; i < msg->n_records; i++) {
        FUZZ_CHECK(msg->records[i].kind == SOS_REC_WORKER || msg->records[i].kind == SOS_REC_ROOM);
        wires[i] = msg->records[i].wire;
        lens[i] = msg->records[i].wire_len;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    FUZZ_CHECK(sos_gmsg_encode(&sb, msg, wires, lens, msg->n_records) == SOS_OK);
    sos_gmsg_t back;
    FUZZ_CHECK(sos_gmsg_decode(&back, (const uint8_t *)sb.data, sb.size) == SOS_OK);
    FUZZ_CHECK(back.req_id == msg->req_id && back.flags == msg->flags &&
               back.n_origins == msg->n_origins && back.has_self == msg->has_self);
    FUZZ_CHECK(memcmp(back.hash, msg->hash, SOS_DIGEST_HASH_BYTES) == 0);
    FUZZ_CHECK(back.n_suspects == msg->n_suspects &&
               memcmp(back.suspects, msg->suspects, msg->n_suspects * sizeof *msg->suspects) == 0);
    FUZZ_CHECK(back.n_digest == msg->n_digest && back.n_want == msg->n_want &&
               back.n_records == msg->n_records);
    FUZZ_CHECK(back.has_buckets == msg->has_buckets && back.nb == msg->nb &&
               back.n_buckets == msg->n_buckets && back.n_sums == msg->n_sums);
    for (uint32_t i = 0; i < msg->n_buckets; i++)
        FUZZ_CHECK(back.buckets[i] == msg->buckets[i]);
    if (msg->n_sums)
        FUZZ_CHECK(memcmp(back.sums, msg->sums, msg->n_sums * sizeof *msg->sums) == 0);
    for (uint32_t i = 0; i < msg->n_digest; i++)
        FUZZ_CHECK(memcmp(&back.digest[i], &msg->digest[i], sizeof back.digest[i]) == 0);
    for (uint32_t i = 0; i < msg->n_want; i++)
        FUZZ_CHECK(memcmp(&back.want[i], &msg->want[i], sizeof back.want[i]) == 0);
    for (uint32_t i = 0; i < msg->n_records; i++)
        FUZZ_CHECK(back.records[i].wire_len == lens[i] &&
                   memcmp(back.records[i].wire, wires[i], lens[i]) == 0);
    sos_gmsg_release(&back);
    msgpack_sbuffer_destroy(&sb);
}

/*  Decode a body as the node does; returns the result. */
static sos_rc
s_decode(const uint8_t *body, size_t len)
{
    sos_gmsg_t msg;
    sos_rc rc = sos_gmsg_decode(&msg, body, len);
    if (rc == SOS_OK)
        s_round_trip(&msg);
    else
        FUZZ_CHECK(msg.digest == NULL && msg.want == NULL && msg.records == NULL &&
                   msg.n_records == 0 && !msg.has_self);
    sos_gmsg_release(&msg);
    sos_gmsg_release(&msg); /* idempotent */
    return rc;
}

/*  The bytes as a body whose self and first records get signed again by a fixed identity,
    so that mutations of valid bodies reach past the records' signatures. */
static void
s_resigned(const uint8_t *data, size_t size, const sos_identity_t *id)
{
    sos_mp_doc_t doc;
    const msgpack_object *f;
    uint32_t count;
    if (sos_mp_parse(&doc, data, size) != SOS_OK || !sos_mp_array(doc.root, &f, &count, 9) ||
        count != 9) {
        sos_mp_doc_release(&doc);
        return;
    }
    msgpack_sbuffer sb, rec;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&rec);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 9);
    for (uint32_t i = 0; i < 9; i++) {
        const msgpack_object *items;
        uint32_t n;
        if (i == 8 && f[i].type == MSGPACK_OBJECT_ARRAY) {
            (void)sos_mp_array(&f[i], &items, &n, UINT32_MAX);
            msgpack_pack_array(&pk, n);
            for (uint32_t k = 0; k < n; k++) {
                if (k < S_RESIGN_MAX && items[k].type == MSGPACK_OBJECT_BIN) {
                    rec.size = 0;
                    fuzz_resign(&rec, (const uint8_t *)items[k].via.bin.ptr, items[k].via.bin.size,
                                id);
                    sos_mp_pack_bin(&pk, rec.data, rec.size);
                } else
                    msgpack_pack_object(&pk, items[k]);
            }
        } else if (i == 4 && f[i].type == MSGPACK_OBJECT_BIN) {
            rec.size = 0;
            fuzz_resign(&rec, (const uint8_t *)f[i].via.bin.ptr, f[i].via.bin.size, id);
            sos_mp_pack_bin(&pk, rec.data, rec.size);
        } else
            msgpack_pack_object(&pk, f[i]);
    }
    sos_mp_doc_release(&doc);
    (void)s_decode((const uint8_t *)sb.data, sb.size);
    msgpack_sbuffer_destroy(&rec);
    msgpack_sbuffer_destroy(&sb);
}

/*  The bytes as the fields of a body, with records (and self) built from fuzzer fields and
    signed by a fixed identity, or taken as raw bytes when their fields do not sign. A body
    whose records all signed decodes to what was encoded. */
static void
s_fields(const uint8_t *data, size_t size)
{
    static sos_gmsg_t msg;
    static sos_record_t recs[S_FIELD_RECORDS_MAX];
    static sos_digest_entry_t digest[64], want[64];
    fuzz_in_t in = {data, size};
    memset(&msg, 0, sizeof msg);
    msg.req_id = fuzz_u64(&in);
    msg.flags = (uint32_t)fuzz_u64(&in);
    for (size_t i = 0; i < SOS_DIGEST_HASH_BYTES; i++)
        msg.hash[i] = fuzz_u8(&in);
    msg.n_origins = (uint32_t)fuzz_u64(&in);
    uint8_t shape = fuzz_u8(&in);
    bool all_signed = true;
    if (shape & 1) {
        fuzz_record_fields(&in, &msg.self);
        msg.has_self = sos_record_sign(&msg.self, fuzz_identity(shape >> 7)) == SOS_OK;
        if (msg.has_self && msg.self.kind != SOS_REC_WORKER)
            all_signed = false;
    }
    msg.n_suspects = fuzz_u8(&in) % (SOS_SUSPECTS_MAX + 1);
    for (uint32_t i = 0; i < msg.n_suspects; i++) {
        for (size_t k = 0; k < SOS_NODEID_BYTES; k++)
            msg.suspects[i].origin[k] = fuzz_u8(&in);
        msg.suspects[i].version = fuzz_u64(&in);
    }
    msg.n_digest = fuzz_u8(&in) % 64;
    msg.n_want = fuzz_u8(&in) % 64;
    for (uint32_t i = 0; i < msg.n_digest; i++) {
        digest[i].origin[0] = fuzz_u8(&in);
        digest[i].version = fuzz_u64(&in);
    }
    for (uint32_t i = 0; i < msg.n_want; i++) {
        want[i].origin[i % SOS_NODEID_BYTES] = fuzz_u8(&in);
        want[i].version = fuzz_u64(&in);
    }
    msg.digest = digest;
    msg.want = want;

    uint32_t n = (shape >> 1) % (S_FIELD_RECORDS_MAX + 1);
    const uint8_t *wires[S_FIELD_RECORDS_MAX];
    size_t lens[S_FIELD_RECORDS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        fuzz_record_fields(&in, &recs[i]);
        if (sos_record_sign(&recs[i], fuzz_identity(i)) == SOS_OK) {
            wires[i] = recs[i].wire;
            lens[i] = recs[i].wire_len;
        } else {
            lens[i] = fuzz_bytes(&in, &wires[i], SOS_RECORD_MAX);
            all_signed = false;
            if (lens[i] == 0) {
                wires[i] = recs[i].wire;
                lens[i] = 1;
            }
        }
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    FUZZ_CHECK(sos_gmsg_encode(&sb, &msg, wires, lens, n) == SOS_OK);
    sos_rc rc = s_decode((const uint8_t *)sb.data, sb.size);
    if (all_signed)
        FUZZ_CHECK(rc == SOS_OK);
    msgpack_sbuffer_destroy(&sb);
    memset(digest, 0, sizeof digest);
    memset(want, 0, sizeof want);
}

/*  The same bytes as a probe body (PROBE_REQ, PROBE_ACK, PING, PONG): a decoded one
    re-encodes to the very same bytes (the format has one encoding per message). */
static void
s_probe(const uint8_t *data, size_t size)
{
    sos_probe_msg_t msg;
    if (sos_probe_decode(&msg, data, size) != SOS_OK)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    FUZZ_CHECK(sos_probe_encode(&sb, &msg) == SOS_OK);
    sos_probe_msg_t back;
    FUZZ_CHECK(sos_probe_decode(&back, (const uint8_t *)sb.data, sb.size) == SOS_OK);
    FUZZ_CHECK(back.req_id == msg.req_id && back.reached == msg.reached &&
               memcmp(back.target, msg.target, SOS_NODEID_BYTES) == 0);
    msgpack_sbuffer_destroy(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sos_identity_t *id = fuzz_identity(0);
    (void)s_decode(data, size);
    s_probe(data, size);
    s_resigned(data, size, id);
    s_fields(data, size);
    return 0;
}
