/*  gen_corpus.c: writes the fuzz targets' seed corpus, valid messages made by the real encoders
    and signed by the fixed fuzz identities; each is decoded before it is written. */
#include <errno.h>
#include <msgpack.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "sos_client.h"
#include "sos_config.h"
#include "sos_envelope.h"
#include "sos_gmsg.h"

static const char *s_dir;

static void
s_write(const char *target, const char *name, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: cannot create %s\n", path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", s_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        exit(1);
    }
    if (size >= 4096)
        fprintf(stderr, "gen_corpus: warning: %s is %zu bytes\n", path, size);
}

/* ----------------------------------------------------------------- records ---- */

static void
s_worker(sos_record_t *rec, int who, uint64_t version, const char *url)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_WORKER;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "%s", url);
    FUZZ_CHECK(sos_record_sign(rec, fuzz_identity(who)) == SOS_OK);
}

static void
s_room(sos_record_t *rec, int who, uint64_t version, const char *hash, const char *emojis,
       const char *desc)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_ROOM;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "tcp://192.0.2.%d:7700", who + 1);
    snprintf(rec->room_hash, sizeof rec->room_hash, "%s", hash);
    FUZZ_CHECK(sos_record_emojis_split(rec, emojis) == SOS_OK);
    snprintf(rec->description, sizeof rec->description, "%s", desc);
    rec->created_at = FUZZ_NOW_MS - 60000;
    rec->expires_at = FUZZ_NOW_MS + 3600000;
    FUZZ_CHECK(sos_record_sign(rec, fuzz_identity(who)) == SOS_OK);
}

static sos_record_t s_recs[6];

static void
s_records(void)
{
    char url[SOS_URL_MAX + 1];
    memset(url, 'h', SOS_URL_MAX);
    memcpy(url, "tcp://", 6);
    memcpy(url + SOS_URL_MAX - 5, ":7700", 5);
    url[SOS_URL_MAX] = '\0';
    char desc[SOS_DESC_MAX + 1];
    memset(desc, 'd', SOS_DESC_MAX);
    desc[SOS_DESC_MAX] = '\0';

    s_worker(&s_recs[0], 0, 1, "tcp://192.0.2.1:7700");
    s_worker(&s_recs[1], 1, 42, url);
    s_room(&s_recs[2], 0, 2, "0123456789abcdef", "\xf0\x9f\x86\x98\xf0\x9f\x8f\xa0", "school gym");
    s_room(&s_recs[3], 1, 1000000, "fedcba9876543210",
           "\xf0\x9f\x94\xa5\xf0\x9f\x8c\x8a\xf0\x9f\xa6\x8a\xf0\x9f\x8f\xa0\xf0\x9f\x86\x98"
           "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",
           desc);
    s_room(&s_recs[4], 0, 3, "00000000ffffffff", "", "");
    s_worker(&s_recs[5], 0, 4, "tcp://[2001:db8::1]:7700");
    snprintf(s_recs[5].http_url, sizeof s_recs[5].http_url, "https://[2001:db8::1]:8443");
    FUZZ_CHECK(sos_record_sign(&s_recs[5], fuzz_identity(0)) == SOS_OK);
    const char *names[] = {"worker",       "worker_long_url", "room",
                           "room_longest", "room_empty",      "worker_v4_ipv6"};
    for (int i = 0; i < 6; i++) {
        sos_record_t back;
        FUZZ_CHECK(sos_record_decode(&back, s_recs[i].wire, s_recs[i].wire_len) == SOS_OK);
        s_write("record", names[i], s_recs[i].wire, s_recs[i].wire_len);
    }
}

/* ------------------------------------------------------ gossip and envelopes ---- */

/*  Encode a body with the records given by index into s_recs, check it decodes, write it as a
    gmsg seed, and wrap it in an envelope of type. */
static void
s_body(const char *name, sos_msg_type_t type, sos_gmsg_t *msg, const int *recs, uint32_t n)
{
    const uint8_t *wires[8];
    size_t lens[8];
    for (uint32_t i = 0; i < n; i++) {
        wires[i] = s_recs[recs[i]].wire;
        lens[i] = s_recs[recs[i]].wire_len;
    }
    msgpack_sbuffer body, frame;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&frame);
    FUZZ_CHECK(sos_gmsg_encode(&body, msg, wires, lens, n) == SOS_OK);
    sos_gmsg_t back;
    FUZZ_CHECK(sos_gmsg_decode(&back, (const uint8_t *)body.data, body.size) == SOS_OK);
    sos_gmsg_release(&back);
    s_write("gmsg", name, body.data, body.size);

    uint8_t nonce[SOS_NONCE_BYTES];
    for (size_t i = 0; i < sizeof nonce; i++)
        nonce[i] = (uint8_t)(type * 16 + i);
    /*  Bound to fuzz identity 1, as the envelope target decodes; a first SYNC to nobody. */
    const uint8_t *receiver = strcmp(name, "sync_first") == 0 ? NULL : fuzz_identity(1)->pk;
    FUZZ_CHECK(sos_envelope_encode_nonce(&frame, type, body.data, body.size, fuzz_identity(0),
                                         receiver, FUZZ_NOW_MS, nonce) == SOS_OK);
    sos_envelope_t env;
    FUZZ_CHECK(sos_envelope_decode(&env, (const uint8_t *)frame.data, frame.size,
                                   fuzz_identity(1)->pk, FUZZ_NOW_MS, SOS_REPLAY_WINDOW_MS,
                                   NULL) == SOS_OK);
    s_write("envelope", name, frame.data, frame.size);
    if (type == SOS_MSG_DELTA)
        s_write("mp", "envelope", frame.data, frame.size);
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&frame);
}

static void
s_gossip(void)
{
    sos_gmsg_t msg;
    sos_digest_entry_t digest[3], want[2];
    for (int i = 0; i < 3; i++) {
        memcpy(digest[i].origin, fuzz_identity(i)->pk, SOS_NODEID_BYTES);
        digest[i].version = 10 + (uint64_t)i * 1000;
        digest[i].removed = i == 1;
    }
    digest[2].origin[0] ^= 0xff;
    memcpy(want, digest, sizeof want);

    memset(&msg, 0, sizeof msg);
    msg.req_id = 1;
    for (int i = 0; i < SOS_DIGEST_HASH_BYTES; i++)
        msg.hash[i] = (uint8_t)(0xa0 + i);
    msg.n_origins = 3;
    msg.has_self = true;
    msg.self = s_recs[0];
    s_body("sync", SOS_MSG_SYNC, &msg, NULL, 0);
    s_body("sync_first", SOS_MSG_SYNC, &msg, NULL, 0);

    msg.req_id = 2;
    msg.flags = SOS_GMSG_IN_SYNC;
    msg.self = s_recs[1];
    s_body("sync_ack_in_sync", SOS_MSG_SYNC_ACK, &msg, NULL, 0);

    msg.flags = 0;
    msg.digest = digest;
    msg.n_digest = 3;
    s_body("sync_ack_digest", SOS_MSG_SYNC_ACK, &msg, NULL, 0);

    msg.req_id = 3;
    msg.want = want;
    msg.n_want = 2;
    msg.n_digest = 0;
    msg.digest = NULL;
    const int delta[] = {2, 3};
    s_body("delta", SOS_MSG_DELTA, &msg, delta, 2);

    msg.flags = SOS_GMSG_MORE;
    msg.want = NULL;
    msg.n_want = 0;
    const int delta_ack[] = {0, 1, 4, 5};
    s_body("delta_ack", SOS_MSG_DELTA_ACK, &msg, delta_ack, 4);

    msg.flags = 0;
    msg.req_id = 0;
    msg.n_suspects = 2;
    memcpy(msg.suspects[0].origin, fuzz_identity(1)->pk, SOS_NODEID_BYTES);
    msg.suspects[0].version = 7;
    memset(msg.suspects[1].origin, 0x11, SOS_NODEID_BYTES);
    msg.suspects[1].version = UINT64_MAX;
    msg.suspects[1].age_ms = UINT32_MAX;
    const int rumor[] = {2};
    s_body("rumor", SOS_MSG_RUMOR, &msg, rumor, 1);

    memset(&msg, 0, sizeof msg);
    s_body("leave", SOS_MSG_LEAVE, &msg, NULL, 0);

    /*  A probe body (PROBE_REQ, PROBE_ACK, PING, PONG share it). */
    sos_probe_msg_t probe = {.req_id = 0x0123456789abcdefULL, .reached = true};
    memcpy(probe.target, fuzz_identity(1)->pk, SOS_NODEID_BYTES);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    FUZZ_CHECK(sos_probe_encode(&body, &probe) == SOS_OK);
    s_write("gmsg", "probe", body.data, body.size);
    msgpack_sbuffer_destroy(&body);
}

/* --------------------------------------------------------- client frames ---- */

static msgpack_sbuffer s_sb;
static msgpack_packer s_pk;

static msgpack_packer *
s_begin(uint64_t req_id, const char *op, uint32_t n_args)
{
    msgpack_sbuffer_clear(&s_sb);
    msgpack_packer_init(&s_pk, &s_sb, msgpack_sbuffer_write);
    sos_request_pack_begin(&s_pk, req_id, op);
    msgpack_pack_map(&s_pk, n_args);
    return &s_pk;
}

static void
s_end_request(const char *name, uint32_t flags)
{
    sos_request_pack_end(&s_pk, flags);
    sos_mp_doc_t doc;
    sos_request_t req;
    FUZZ_CHECK(sos_request_decode(&req, &doc, (const uint8_t *)s_sb.data, s_sb.size) == SOS_OK);
    sos_mp_doc_release(&doc);
    s_write("request", name, s_sb.data, s_sb.size);
}

static void
s_requests(void)
{
    const char *room = "0123456789abcdef", *member = "00112233445566778899aabbccddeeff";
    s_begin(1, "status", 0);
    s_end_request("status", 0);
    s_begin(2, "workers", 0);
    s_end_request("workers", 0);
    msgpack_packer *pk = s_begin(3, "rooms", 2);
    sos_mp_pack_kv_str(pk, "after", room);
    sos_mp_pack_kv_uint(pk, "limit", 100);
    s_end_request("rooms", 0);
    pk = s_begin(4, "create", 4);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    sos_mp_pack_kv_str(pk, "emojis", "\xf0\x9f\x86\x98\xf0\x9f\x8f\xa0");
    sos_mp_pack_kv_str(pk, "description", "school gym");
    sos_mp_pack_kv_str(pk, "nickname", "ana");
    s_end_request("create", 0);
    pk = s_begin(5, "join", 2);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    sos_mp_pack_kv_str(pk, "nickname", "carl");
    s_end_request("join", 0);
    pk = s_begin(6, "send", 4);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    sos_mp_pack_kv_str(pk, "member_id", member);
    sos_mp_pack_kv_str(pk, "content", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj");
    sos_mp_pack_kv_str(pk, "msg_id", "5f1e0c2a");
    s_end_request("send", 0);
    pk = s_begin(7, "send", 4);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    sos_mp_pack_kv_str(pk, "member_id", member);
    sos_mp_pack_kv_str(pk, "content", "aGVsbG8=");
    sos_mp_pack_kv_str(pk, "msg_id", "5f1e0c2b");
    s_end_request("send_forwarded", SOS_REQ_FORWARDED);
    pk = s_begin(8, "poll", 4);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    sos_mp_pack_kv_str(pk, "member_id", member);
    sos_mp_pack_kv_uint(pk, "since", 3);
    sos_mp_pack_kv_uint(pk, "wait_ms", 25000);
    s_end_request("poll", 0);
    pk = s_begin(9, "leave", 2);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    sos_mp_pack_kv_str(pk, "member_id", member);
    s_end_request("leave", 0);
    pk = s_begin(10, "info", 1);
    sos_mp_pack_kv_str(pk, "room_hash", room);
    s_end_request("info", 0);
}

static void
s_begin_reply(uint64_t req_id, const char *status)
{
    msgpack_sbuffer_clear(&s_sb);
    msgpack_packer_init(&s_pk, &s_sb, msgpack_sbuffer_write);
    sos_reply_pack_begin(&s_pk, req_id, status);
}

static void
s_end_reply(const char *name)
{
    sos_mp_doc_t doc;
    sos_reply_t rep;
    FUZZ_CHECK(sos_reply_decode(&rep, &doc, (const uint8_t *)s_sb.data, s_sb.size) == SOS_OK);
    sos_mp_doc_release(&doc);
    s_write("reply", name, s_sb.data, s_sb.size);
}

static void
s_replies(void)
{
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, fuzz_identity(0)->pk, SOS_NODEID_BYTES);
    msgpack_packer *pk = &s_pk;

    s_begin_reply(1, "ok");
    msgpack_pack_map(pk, 5);
    sos_mp_pack_kv_str(pk, "node_id", hex);
    sos_mp_pack_kv_str(pk, "endpoint", "tcp://192.0.2.1:7700");
    sos_mp_pack_kv_uint(pk, "workers", 3);
    sos_mp_pack_str(pk, "gossip");
    msgpack_pack_map(pk, 2);
    sos_mp_pack_kv_uint(pk, "rounds", 12);
    sos_mp_pack_kv_uint(pk, "bytes_in", 123456789);
    sos_mp_pack_str(pk, "drops");
    msgpack_pack_map(pk, 1);
    sos_mp_pack_kv_uint(pk, "malformed", 0);
    s_end_reply("status");

    msgpack_sbuffer_clear(&s_sb);
    msgpack_packer_init(&s_pk, &s_sb, msgpack_sbuffer_write);
    sos_reply_pack_error(pk, 2, SOS_E_ROOM_NOT_FOUND, "no such room");
    s_end_reply("error");

    s_begin_reply(3, "ok");
    msgpack_pack_map(pk, 1);
    sos_mp_pack_str(pk, "workers");
    msgpack_pack_array(pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(pk, 4);
        sos_mp_pack_kv_str(pk, "node_id", hex);
        sos_mp_pack_kv_str(pk, "url", s_recs[i].url);
        sos_mp_pack_kv_uint(pk, "version", s_recs[i].version);
        sos_mp_pack_str(pk, "is_genesis");
        if (i == 0)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    }
    s_end_reply("workers");

    s_begin_reply(4, "ok");
    msgpack_pack_map(pk, 5);
    sos_mp_pack_kv_str(pk, "room_hash", "0123456789abcdef");
    sos_mp_pack_kv_uint(pk, "created_at", FUZZ_NOW_MS);
    sos_mp_pack_kv_uint(pk, "expires_at", FUZZ_NOW_MS + 3600000);
    sos_mp_pack_kv_str(pk, "member_id", "00112233445566778899aabbccddeeff");
    sos_mp_pack_str(pk, "members");
    msgpack_pack_array(pk, 2);
    sos_mp_pack_str(pk, "ana");
    sos_mp_pack_str(pk, "carl");
    s_end_reply("create");

    s_begin_reply(5, "ok");
    msgpack_pack_map(pk, 2);
    sos_mp_pack_str(pk, "messages");
    msgpack_pack_array(pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(pk, 5);
        sos_mp_pack_kv_str(pk, "id", i ? "5f1e0c2b" : "5f1e0c2a");
        sos_mp_pack_kv_uint(pk, "seq", 1 + (uint64_t)i);
        sos_mp_pack_kv_str(pk, "sender", "carl");
        sos_mp_pack_kv_str(pk, "content", "aGVsbG8=");
        sos_mp_pack_kv_uint(pk, "timestamp", FUZZ_NOW_MS + (uint64_t)i);
    }
    sos_mp_pack_kv_uint(pk, "last_seq", 2);
    s_end_reply("poll");
}

/* ------------------------------------------------------ msgpack and config ---- */

static void
s_msgpack(void)
{
    msgpack_sbuffer_clear(&s_sb);
    msgpack_packer *pk = &s_pk;
    msgpack_packer_init(pk, &s_sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, 7);
    sos_mp_pack_str(pk, "scalars");
    msgpack_pack_array(pk, 16);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_false(pk);
    msgpack_pack_uint8(pk, 200);
    msgpack_pack_uint16(pk, 60000);
    msgpack_pack_uint32(pk, 4000000000u);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int8(pk, -100);
    msgpack_pack_int16(pk, -30000);
    msgpack_pack_int32(pk, -2000000000);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_double(pk, -2.25);
    msgpack_pack_ext_with_body(pk, "\x01", 1, 5);
    msgpack_pack_ext_with_body(pk, "0123456789abcdefg", 17, -3);
    msgpack_pack_bin_with_body(pk, fuzz_identity(0)->pk, SOS_NODEID_BYTES);
    sos_mp_pack_str(pk, "");
    msgpack_pack_map(pk, 0);
    sos_mp_pack_str(pk, "long string of forty bytes, str8 format.");
    msgpack_pack_array(pk, 0);
    msgpack_pack_uint8(pk, 7);
    sos_mp_pack_str(pk, "integer key");
    sos_mp_pack_str(pk, "nested");
    for (int i = 0; i < 6; i++)
        msgpack_pack_array(pk, 1);
    sos_mp_pack_str(pk, "deep");
    sos_mp_pack_str(pk, "room_hash");
    sos_mp_pack_str(pk, "0123456789abcdef");
    sos_mp_pack_str(pk, "room_hash");
    sos_mp_pack_str(pk, "a repeated key");
    sos_mp_doc_t doc;
    FUZZ_CHECK(sos_mp_parse(&doc, s_sb.data, s_sb.size) == SOS_OK);
    sos_mp_doc_release(&doc);
    s_write("mp", "all_types", s_sb.data, s_sb.size);
    s_write("mp", "record", s_recs[3].wire, s_recs[3].wire_len);
}

static void
s_config(void)
{
    char pinned[256];
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, fuzz_identity(1)->pk, SOS_NODEID_BYTES);
    snprintf(pinned, sizeof pinned, "%s@tcp://192.0.2.2:7700", hex);
    const char *texts[][2] = {
        {"minimal", "sosnode\n"
                    "    data = /var/lib/sosnode\n"
                    "    listen = tcp://192.0.2.1:7700\n"},
        {"full",
         "#   sosnode settings\n"
         "sosnode\n"
         "    data = \"/var/lib/sosnode\"\n"
         "    listen = tcp://*:7700\n"
         "    advertise = tcp://192.0.2.1:7700\n"
         "    genesis = "
         "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8@tcp://192.0.2.9:7700\n"
         "    gossip-interval = 30000\n"
         "    fanout = 3\n"
         "    max-failures = 5\n"
         "    room-ttl = 3600\n"
         "    history = 500\n"
         "    max-workers = 4096\n"
         "    max-rooms = 100000\n"
         "    max-rooms-per-origin = 10000\n"
         "    map-size = 1024\n"
         "    rate-limit = on\n"
         "    log-level = notice\n"},
        {"genesis_list", NULL},
    };
    char list[1024];
    snprintf(list, sizeof list,
             "sosnode\n"
             "    data = /tmp/sos\n"
             "    listen = tcp://127.0.0.1:7701\n"
             "    rate-limit = off\n"
             "    genesis\n"
             "        a = %s@tcp://127.0.0.1:7700\n"
             "        b = '%s'\n"
             "other\n"
             "    ignored = 1\n",
             hex, pinned);
    texts[2][1] = list;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        sos_config_t cfg;
        char err[256];
        sos_config_defaults(&cfg);
        if (sos_config_load_str(&cfg, texts[i][1], err, sizeof err) != SOS_OK ||
            sos_config_validate(&cfg, err, sizeof err) != SOS_OK) {
            fprintf(stderr, "gen_corpus: config %s: %s\n", texts[i][0], err);
            exit(1);
        }
        s_write("config", texts[i][0], texts[i][1], strlen(texts[i][1]));
    }
}

int
main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: gen_corpus DIR\n"
                        "Write the fuzz seed corpus to DIR/<target>/ (e.g. tests/fuzz/corpus).\n");
        return 2;
    }
    s_dir = argv[1];
    if (mkdir(s_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: cannot create %s\n", s_dir);
        return 1;
    }
    (void)fuzz_identity(0);
    msgpack_sbuffer_init(&s_sb);
    s_records();
    s_gossip();
    s_requests();
    s_replies();
    s_msgpack();
    s_config();
    msgpack_sbuffer_destroy(&s_sb);
    return 0;
}
