/*  sos_record.c: the signed worker and room records: building and signing their wire form,
    and strict decoding (with or without the origin's signature) of what arrives or is stored. */
#include <assert.h>
#include <string.h>

#include "sos_mp.h"
#include "sos_record.h"

/*  Wire form: [signed: bin, sig: bin(64)], where signed is the msgpack array
        worker: [1, origin: bin(32), version, prev, url: str]
        room:   [2, origin: bin(32), version, prev, url: str, room_hash: str(16),
                 emojis: str, description: str, created_at, expires_at]
    and sig is the origin's Ed25519 signature of the signed bytes. Decoding checks every
    element's type and bound before the signature, which is the costly step. */

#define S_WORKER_FIELDS 5
#define S_ROOM_FIELDS   10

/*  A packer target of fixed size: records are small and bounded, so they are built on the
    stack and an overflow is an error rather than a reallocation. */
typedef struct {
    uint8_t *data;
    size_t size;
    size_t cap;
    bool overflow;
} s_fixbuf_t;

static int
s_fixbuf_write(void *data, const char *buf, size_t len)
{
    s_fixbuf_t *self = (s_fixbuf_t *)data;
    if (len > self->cap - self->size) {
        self->overflow = true;
        return -1;
    }
    if (len)
        memcpy(self->data + self->size, buf, len);
    self->size += len;
    return 0;
}

bool
sos_room_hash_valid(const char *s, size_t len)
{
    if (!s || len != SOS_ROOMHASH_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/*  The bounds every record obeys, on the decoded fields (which are NUL-terminated). */
static bool
s_fields_valid(const sos_record_t *rec)
{
    size_t url_len = strnlen(rec->url, SOS_URL_MAX + 1);
    if (url_len == 0 || url_len > SOS_URL_MAX || !sos_utf8_valid(rec->url, url_len))
        return false;
    if (rec->version <= rec->prev)
        return false;
    if (rec->kind == SOS_REC_WORKER)
        return true;
    if (rec->kind != SOS_REC_ROOM)
        return false;
    size_t emojis_len = strnlen(rec->emojis, SOS_EMOJIS_MAX + 1);
    size_t desc_len = strnlen(rec->description, SOS_DESC_MAX + 1);
    return sos_room_hash_valid(rec->room_hash, strnlen(rec->room_hash, SOS_ROOMHASH_LEN + 1)) &&
           emojis_len <= SOS_EMOJIS_MAX && sos_utf8_valid(rec->emojis, emojis_len) &&
           desc_len <= SOS_DESC_MAX && sos_utf8_valid(rec->description, desc_len) &&
           rec->expires_at > rec->created_at;
}

sos_rc
sos_record_sign(sos_record_t *rec, const sos_identity_t *id)
{
    assert(rec && id);
    memcpy(rec->origin, id->pk, SOS_NODEID_BYTES);
    rec->wire_len = 0;
    if (rec->kind != SOS_REC_WORKER && rec->kind != SOS_REC_ROOM)
        return SOS_ERR_INVALID;
    if (!s_fields_valid(rec))
        return SOS_ERR_INVALID;

    uint8_t signed_buf[SOS_RECORD_MAX];
    s_fixbuf_t sb = {signed_buf, 0, sizeof signed_buf, false};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, s_fixbuf_write);
    bool room = rec->kind == SOS_REC_ROOM;
    msgpack_pack_array(&pk, room ? S_ROOM_FIELDS : S_WORKER_FIELDS);
    msgpack_pack_uint8(&pk, (uint8_t)rec->kind);
    sos_mp_pack_bin(&pk, rec->origin, SOS_NODEID_BYTES);
    msgpack_pack_uint64(&pk, rec->version);
    msgpack_pack_uint64(&pk, rec->prev);
    sos_mp_pack_str(&pk, rec->url);
    if (room) {
        sos_mp_pack_str(&pk, rec->room_hash);
        sos_mp_pack_str(&pk, rec->emojis);
        sos_mp_pack_str(&pk, rec->description);
        msgpack_pack_uint64(&pk, rec->created_at);
        msgpack_pack_uint64(&pk, rec->expires_at);
    }
    if (sb.overflow)
        return SOS_ERR_INVALID;

    uint8_t sig[SOS_SIG_BYTES];
    sos_sign(sig, signed_buf, sb.size, id);

    s_fixbuf_t wb = {rec->wire, 0, sizeof rec->wire, false};
    msgpack_packer_init(&pk, &wb, s_fixbuf_write);
    msgpack_pack_array(&pk, 2);
    sos_mp_pack_bin(&pk, signed_buf, sb.size);
    sos_mp_pack_bin(&pk, sig, SOS_SIG_BYTES);
    if (wb.overflow)
        return SOS_ERR_INVALID;
    rec->wire_len = wb.size;
    return SOS_OK;
}

/*  Decode wire into rec; verify the signature if asked. Errors are those of
    sos_record_decode. */
static sos_rc
s_record_decode(sos_record_t *rec, const uint8_t *wire, size_t len, bool verify)
{
    assert(rec);
    memset(rec, 0, sizeof *rec);
    if (!wire || len == 0)
        return SOS_ERR_MALFORMED;
    if (len > SOS_RECORD_MAX)
        return SOS_ERR_TOO_LARGE;

    sos_mp_doc_t outer, inner;
    sos_rc rc = sos_mp_parse(&outer, wire, len);
    msgpack_unpacked_init(&inner.unpacked);
    inner.root = NULL;
    if (rc)
        goto done;

    const msgpack_object *items;
    uint32_t count;
    const uint8_t *signed_ptr, *sig;
    size_t signed_len, sig_len;
    rc = SOS_ERR_MALFORMED;
    if (!sos_mp_array(outer.root, &items, &count, 2) || count != 2 ||
        !sos_mp_bin(&items[0], &signed_ptr, &signed_len, SOS_RECORD_MAX) ||
        !sos_mp_bin(&items[1], &sig, &sig_len, SOS_SIG_BYTES) || sig_len != SOS_SIG_BYTES)
        goto done;

    rc = sos_mp_parse(&inner, signed_ptr, signed_len);
    if (rc)
        goto done;
    const msgpack_object *f;
    uint64_t kind;
    rc = SOS_ERR_MALFORMED;
    if (!sos_mp_array(inner.root, &f, &count, S_ROOM_FIELDS) || count == 0 ||
        !sos_mp_uint(&f[0], &kind))
        goto done;
    if (kind != SOS_REC_WORKER && kind != SOS_REC_ROOM) {
        rc = SOS_ERR_VERSION;
        goto done;
    }
    rec->kind = (sos_rec_kind_t)kind;
    if (count != (kind == SOS_REC_ROOM ? S_ROOM_FIELDS : S_WORKER_FIELDS))
        goto done;
    if (!sos_mp_bin_exact(&f[1], rec->origin, SOS_NODEID_BYTES) ||
        !sos_mp_uint(&f[2], &rec->version) || !sos_mp_uint(&f[3], &rec->prev) ||
        !sos_mp_str_copy(&f[4], rec->url, SOS_URL_MAX))
        goto done;
    if (kind == SOS_REC_ROOM &&
        (!sos_mp_str_copy(&f[5], rec->room_hash, SOS_ROOMHASH_LEN) ||
         !sos_mp_str_copy(&f[6], rec->emojis, SOS_EMOJIS_MAX) ||
         !sos_mp_str_copy(&f[7], rec->description, SOS_DESC_MAX) ||
         !sos_mp_uint(&f[8], &rec->created_at) || !sos_mp_uint(&f[9], &rec->expires_at)))
        goto done;
    if (!s_fields_valid(rec))
        goto done;

    if (verify) {
        rc = sos_verify(sig, signed_ptr, signed_len, rec->origin);
        if (rc)
            goto done;
    }
    memcpy(rec->wire, wire, len);
    rec->wire_len = len;
    rc = SOS_OK;

done:
    sos_mp_doc_release(&inner);
    sos_mp_doc_release(&outer);
    if (rc)
        memset(rec, 0, sizeof *rec); /* nothing half-decoded escapes */
    return rc;
}

sos_rc
sos_record_decode(sos_record_t *rec, const uint8_t *wire, size_t len)
{
    return s_record_decode(rec, wire, len, true);
}

sos_rc
sos_record_parse(sos_record_t *rec, const uint8_t *wire, size_t len)
{
    sos_rc rc = s_record_decode(rec, wire, len, false);
    if (rc && rc != SOS_ERR_NOMEM)
        rc = SOS_ERR_CORRUPT;
    return rc;
}
