/*  sos_record.c: the signed worker and room records: building and signing their wire form,
    and strict decoding (with or without the origin's signature) of what arrives or is stored. */
#include <assert.h>
#include <string.h>

#include "sos_mp.h"
#include "sos_record.h"

/*  Wire form: [signed: bin, sig: bin(64)], where signed is the msgpack array
        worker: [1, origin: bin(32), version, prev, url: str, http_url: str]
        room:   [2, origin: bin(32), version, prev, url: str, room_hash: str(16),
                 emojis: [str...], description: str, created_at, expires_at]
    and sig is the origin's signature of the signed bytes in the record domain
    (SOS_DOMAIN_RECORD), so that no record can pass for an envelope or the reverse. Decoding
    checks every element's type and bound before the signature, which is the costly step. */

#define S_WORKER_FIELDS 6
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

static bool
s_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

bool
sos_http_url_valid(const char *s, size_t len)
{
    if (!s)
        return false;
    size_t pos;
    if (len > 7 && memcmp(s, "http://", 7) == 0)
        pos = 7;
    else if (len > 8 && memcmp(s, "https://", 8) == 0)
        pos = 8;
    else
        return false;
    size_t host = pos;
    if (s[pos] == '[') { /* an IPv6 literal: hex digits, colons and dots (a v4 tail) */
        pos++;
        while (pos < len && s[pos] != ']') {
            char c = s[pos];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return false;
            pos++;
        }
        if (pos >= len || pos == host + 1)
            return false;
        pos++; /* the ']' */
    } else {
        while (pos < len && s_host_char(s[pos]))
            pos++;
        if (pos == host || s[host] == '.' || s[host] == '-')
            return false;
    }
    if (pos >= len || s[pos] != ':')
        return false;
    pos++;
    if (pos == len || len - pos > 5)
        return false;
    uint32_t port = 0;
    for (; pos < len; pos++) {
        if (s[pos] < '0' || s[pos] > '9')
            return false;
        port = port * 10 + (uint32_t)(s[pos] - '0');
    }
    return port >= 1 && port <= 65535;
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
    if (rec->kind == SOS_REC_WORKER) {
        size_t http_len = strnlen(rec->http_url, SOS_HTTP_URL_MAX + 1);
        return http_len == 0 ||
               (http_len <= SOS_HTTP_URL_MAX && sos_http_url_valid(rec->http_url, http_len));
    }
    if (rec->kind != SOS_REC_ROOM)
        return false;
    if (rec->http_url[0] || rec->n_emojis > SOS_EMOJI_COUNT_MAX)
        return false;
    for (uint32_t i = 0; i < rec->n_emojis; i++) {
        size_t n = strnlen(rec->emojis[i], SOS_EMOJI_BYTES_MAX + 1);
        if (n == 0 || n > SOS_EMOJI_BYTES_MAX || !sos_utf8_valid(rec->emojis[i], n))
            return false;
    }
    size_t desc_len = strnlen(rec->description, SOS_DESC_MAX + 1);
    return sos_room_hash_valid(rec->room_hash, strnlen(rec->room_hash, SOS_ROOMHASH_LEN + 1)) &&
           desc_len <= SOS_DESC_MAX && sos_utf8_valid(rec->description, desc_len) &&
           rec->expires_at > rec->created_at;
}

size_t
sos_record_emojis_join(const sos_record_t *rec, char *out, size_t cap)
{
    assert(rec && out && cap > 0);
    size_t used = 0;
    for (uint32_t i = 0; i < rec->n_emojis && i < SOS_EMOJI_COUNT_MAX; i++) {
        size_t n = strnlen(rec->emojis[i], SOS_EMOJI_BYTES_MAX);
        if (n > cap - 1 - used)
            n = cap - 1 - used;
        memcpy(out + used, rec->emojis[i], n);
        used += n;
    }
    out[used] = 0;
    return used;
}

sos_rc
sos_record_emojis_split(sos_record_t *rec, const char *text)
{
    assert(rec && text);
    rec->n_emojis = 0;
    memset(rec->emojis, 0, sizeof rec->emojis);
    size_t len = strlen(text);
    if (!sos_utf8_valid(text, len))
        return SOS_ERR_INVALID;
    const unsigned char *p = (const unsigned char *)text, *start = p;
    bool after_joiner = false;
    uint32_t n = 0;
    while (*p) {
        int cl = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : 4;
        uint32_t cp = cl == 1 ? *p : *p & (0x7f >> cl);
        for (int i = 1; i < cl; i++)
            cp = (cp << 6) | (p[i] & 0x3f);
        bool joins = cp == 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) ||
                     (cp >= 0x1f3fb && cp <= 0x1f3ff) || (cp >= 0xe0020 && cp <= 0xe007f);
        if (p != start && !joins && !after_joiner) {
            if (n == SOS_EMOJI_COUNT_MAX || (size_t)(p - start) > SOS_EMOJI_BYTES_MAX)
                goto invalid;
            memcpy(rec->emojis[n++], start, (size_t)(p - start));
            start = p;
        }
        after_joiner = cp == 0x200d;
        p += cl;
    }
    if (p != start) {
        if (n == SOS_EMOJI_COUNT_MAX || (size_t)(p - start) > SOS_EMOJI_BYTES_MAX)
            goto invalid;
        memcpy(rec->emojis[n++], start, (size_t)(p - start));
    }
    rec->n_emojis = n;
    return SOS_OK;
invalid:
    rec->n_emojis = 0;
    memset(rec->emojis, 0, sizeof rec->emojis);
    return SOS_ERR_INVALID;
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
    if (!room)
        sos_mp_pack_str(&pk, rec->http_url);
    if (room) {
        sos_mp_pack_str(&pk, rec->room_hash);
        msgpack_pack_array(&pk, rec->n_emojis);
        for (uint32_t i = 0; i < rec->n_emojis; i++)
            sos_mp_pack_str(&pk, rec->emojis[i]);
        sos_mp_pack_str(&pk, rec->description);
        msgpack_pack_uint64(&pk, rec->created_at);
        msgpack_pack_uint64(&pk, rec->expires_at);
    }
    if (sb.overflow)
        return SOS_ERR_INVALID;

    uint8_t sig[SOS_SIG_BYTES];
    sos_sign_domain(sig, SOS_DOMAIN_RECORD, signed_buf, sb.size, id);

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
    if (kind == SOS_REC_WORKER && !sos_mp_str_copy(&f[5], rec->http_url, SOS_HTTP_URL_MAX))
        goto done;
    if (kind == SOS_REC_ROOM) {
        const msgpack_object *em;
        uint32_t n_em;
        if (!sos_mp_str_copy(&f[5], rec->room_hash, SOS_ROOMHASH_LEN) ||
            !sos_mp_array(&f[6], &em, &n_em, UINT32_MAX))
            goto done;
        if (n_em > SOS_EMOJI_COUNT_MAX) {
            rc = SOS_ERR_TOO_LARGE;
            goto done;
        }
        for (uint32_t i = 0; i < n_em; i++)
            if (!sos_mp_str_copy(&em[i], rec->emojis[i], SOS_EMOJI_BYTES_MAX))
                goto done;
        rec->n_emojis = n_em;
        if (!sos_mp_str_copy(&f[7], rec->description, SOS_DESC_MAX) ||
            !sos_mp_uint(&f[8], &rec->created_at) || !sos_mp_uint(&f[9], &rec->expires_at))
            goto done;
    }
    if (!s_fields_valid(rec))
        goto done;

    if (verify) {
        rc = sos_verify_domain(sig, SOS_DOMAIN_RECORD, signed_ptr, signed_len, rec->origin);
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
