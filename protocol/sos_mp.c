/*  sos_mp.c: strict, bounded parsing of untrusted msgpack (a pre-scan, then msgpack-c),
    typed accessors on the object tree, and small packing helpers. */
#include <assert.h>
#include <string.h>

#include "sos_mp.h"

/*  Why a pre-scan
    --------------
    msgpack-c's unpacker is not defensive about memory. When it reads a container header it
    allocates count * sizeof (msgpack_object) from its zone at once (twice that for a map),
    before it has seen a single element. An array32 header is five bytes, and it can claim
    4 294 967 295 elements: five bytes from the network would ask for about 100 GB. The
    unpacker also has no ceiling on the number of objects.

    So before msgpack-c sees the bytes we walk them once ourselves, without allocating, and
    reject:
      - truncated data: any header, length or payload that runs past the end;
      - the reserved byte 0xc1;
      - containers nested deeper than SOS_MP_MAX_DEPTH;
      - more than SOS_MP_MAX_OBJECTS objects in all;
      - a container whose elements cannot possibly fit in what is left. Every msgpack object
        takes at least one byte, so an array of n elements needs n more bytes and a map of n
        pairs needs 2n. We keep the number of objects still owed by every open container
        ("pending") and require pending <= bytes left after each container header, which
        also covers nested containers that each fit alone but not together;
      - trailing bytes after the first object.

    After the pre-scan the sum of all container counts is below the input size, so what
    msgpack-c allocates is bounded by a small constant (the size of msgpack_object) times the
    input size, and the object count by SOS_MP_MAX_OBJECTS. Strings, bins and exts are not
    copied: msgpack_unpack_next points them into the input, which is why a document borrows
    its bytes. */

static uint64_t
s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

sos_rc
sos_mp_object_size(const void *bytes, size_t size, size_t max_size, size_t *object_size)
{
    if (!object_size || (!bytes && size))
        return SOS_ERR_INVALID;
    const uint8_t *data = bytes;
    size_t pos = 0;
    uint64_t pending = 1; /* objects still expected, each at least one byte */
    uint64_t objects = 0;
    /* open containers: elements left in each; depth is how many are open */
    uint64_t left[SOS_MP_MAX_DEPTH];
    size_t depth = 0;

    while (pending > 0) {
        if (pos >= size)
            return SOS_ERR_PARTIAL;
        if (++objects > SOS_MP_MAX_OBJECTS)
            return SOS_ERR_TOO_LARGE;
        pending--;
        if (depth > 0)
            left[depth - 1]--;

        uint8_t b = data[pos++];
        size_t avail = size - pos;
        size_t fixed = 0;    /* bytes that follow the type byte */
        size_t lenbytes = 0; /* size of a length field that follows */
        size_t extra = 0;    /* bytes between a length field and the payload (ext type) */
        bool container = false;
        uint64_t elements = 0; /* elements a container holds */
        bool is_map = false;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            fixed = 0; /* fixint, nil, bool */
        else if (b >= 0xa0 && b <= 0xbf)
            fixed = b & 0x1f; /* fixstr */
        else if (b >= 0x90 && b <= 0x9f) {
            container = true;
            elements = b & 0x0f;
        } else if (b >= 0x80 && b <= 0x8f) {
            container = true;
            is_map = true;
            elements = b & 0x0f;
        } else
            switch (b) {
            case 0xcc: /* uint 8 */
            case 0xd0: /* int 8 */
                fixed = 1;
                break;
            case 0xcd:
            case 0xd1:
                fixed = 2;
                break;
            case 0xca: /* float 32 */
            case 0xce:
            case 0xd2:
                fixed = 4;
                break;
            case 0xcb: /* float 64 */
            case 0xcf:
            case 0xd3:
                fixed = 8;
                break;
            case 0xd4: /* fixext 1, 2, 4, 8, 16: a type byte and the data */
                fixed = 1 + 1;
                break;
            case 0xd5:
                fixed = 1 + 2;
                break;
            case 0xd6:
                fixed = 1 + 4;
                break;
            case 0xd7:
                fixed = 1 + 8;
                break;
            case 0xd8:
                fixed = 1 + 16;
                break;
            case 0xd9: /* str 8 */
            case 0xc4: /* bin 8 */
                lenbytes = 1;
                break;
            case 0xda:
            case 0xc5:
                lenbytes = 2;
                break;
            case 0xdb:
            case 0xc6:
                lenbytes = 4;
                break;
            case 0xc7: /* ext 8, 16, 32: length, type byte, data */
                lenbytes = 1;
                extra = 1;
                break;
            case 0xc8:
                lenbytes = 2;
                extra = 1;
                break;
            case 0xc9:
                lenbytes = 4;
                extra = 1;
                break;
            case 0xdc: /* array 16, 32 */
            case 0xde: /* map 16, 32 */
                container = true;
                is_map = b == 0xde;
                lenbytes = 2;
                break;
            case 0xdd:
            case 0xdf:
                container = true;
                is_map = b == 0xdf;
                lenbytes = 4;
                break;
            default: /* 0xc1, reserved */
                return SOS_ERR_MALFORMED;
            }

        if (container) {
            if (lenbytes > avail)
                return SOS_ERR_PARTIAL;
            if (lenbytes)
                elements = s_be(data + pos, lenbytes);
            pos += lenbytes;
            if (is_map)
                elements *= 2; /* at most 2^33, no overflow */
            if (depth + 1 > SOS_MP_MAX_DEPTH)
                return SOS_ERR_TOO_LARGE;
            pending += elements;
            if (pos > max_size || pending > max_size - pos)
                return SOS_ERR_TOO_LARGE; /* could never fit in the reader's bound */
            if (pending > size - pos)
                return SOS_ERR_PARTIAL; /* every object owed takes at least one byte */
            if (elements > 0) {
                left[depth++] = elements;
                continue; /* this container completes with its last element */
            }
        } else {
            uint64_t payload = fixed;
            if (lenbytes) {
                if (lenbytes > avail)
                    return SOS_ERR_PARTIAL;
                payload = s_be(data + pos, lenbytes) + extra;
                pos += lenbytes;
            }
            if (pos > max_size || payload > max_size - pos)
                return SOS_ERR_TOO_LARGE;
            if (payload > size - pos)
                return SOS_ERR_PARTIAL;
            pos += (size_t)payload;
        }
        /* an object is complete: close every container it completes */
        while (depth > 0 && left[depth - 1] == 0)
            depth--;
    }
    *object_size = pos;
    return SOS_OK;
}

/*  The whole input must be exactly one object: what runs past the end is truncated. */
static sos_rc
s_prescan(const uint8_t *data, size_t size)
{
    size_t object_size;
    sos_rc rc = sos_mp_object_size(data, size, SIZE_MAX, &object_size);
    if (rc == SOS_ERR_PARTIAL)
        return SOS_ERR_MALFORMED;
    if (rc != SOS_OK)
        return rc;
    return object_size == size ? SOS_OK : SOS_ERR_MALFORMED;
}

sos_rc
sos_mp_parse(sos_mp_doc_t *doc, const void *data, size_t size)
{
    assert(doc);
    msgpack_unpacked_init(&doc->unpacked);
    doc->root = NULL;
    if (!data || size == 0)
        return SOS_ERR_MALFORMED;

    sos_rc rc = s_prescan((const uint8_t *)data, size);
    if (rc)
        return rc;

    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&doc->unpacked, (const char *)data, size, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return SOS_ERR_NOMEM;
    if (ret != MSGPACK_UNPACK_SUCCESS || off != size)
        return SOS_ERR_MALFORMED;
    doc->root = &doc->unpacked.data;
    return SOS_OK;
}

void
sos_mp_doc_release(sos_mp_doc_t *doc)
{
    if (!doc)
        return;
    msgpack_unpacked_destroy(&doc->unpacked);
    doc->root = NULL;
}

bool
sos_mp_uint(const msgpack_object *o, uint64_t *out)
{
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    if (out)
        *out = o->via.u64;
    return true;
}

bool
sos_mp_bool(const msgpack_object *o, bool *out)
{
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    if (out)
        *out = o->via.boolean;
    return true;
}

/*  Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. A str
    that breaks it is malformed on every path, so that no invalid text is ever stored, relayed
    or handed to a JSON encoder that would refuse it later (and break a room's polls). */
bool
sos_utf8_valid(const void *data, size_t len)
{
    /*  msgpack-c gives an empty str a NULL pointer, and NULL + 0 is undefined behaviour. */
    if (len == 0)
        return true;
    const unsigned char *p = data, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) < n)
            return false;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n;
    }
    return true;
}

bool
sos_mp_str(const msgpack_object *o, const char **ptr, size_t *len, size_t max_len)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size > max_len)
        return false;
    if (!sos_utf8_valid(o->via.str.ptr, o->via.str.size))
        return false;
    if (ptr)
        *ptr = o->via.str.ptr;
    if (len)
        *len = o->via.str.size;
    return true;
}

bool
sos_mp_bin(const msgpack_object *o, const uint8_t **ptr, size_t *len, size_t max_len)
{
    if (!o || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max_len)
        return false;
    if (ptr)
        *ptr = (const uint8_t *)o->via.bin.ptr;
    if (len)
        *len = o->via.bin.size;
    return true;
}

bool
sos_mp_bin_exact(const msgpack_object *o, void *dest, size_t len)
{
    if (!o || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != len)
        return false;
    if (len)
        memcpy(dest, o->via.bin.ptr, len);
    return true;
}

bool
sos_mp_str_copy(const msgpack_object *o, char *dest, size_t max_len)
{
    const char *ptr;
    size_t len;
    if (!sos_mp_str(o, &ptr, &len, max_len))
        return false;
    if (len && memchr(ptr, '\0', len))
        return false;
    if (len)
        memcpy(dest, ptr, len);
    dest[len] = '\0';
    return true;
}

bool
sos_mp_array(const msgpack_object *o, const msgpack_object **items, uint32_t *count,
             uint32_t max_count)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max_count)
        return false;
    if (items)
        *items = o->via.array.ptr;
    if (count)
        *count = o->via.array.size;
    return true;
}

bool
sos_mp_is_map(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_MAP;
}

const msgpack_object *
sos_mp_map_get(const msgpack_object *o, const char *key)
{
    if (!sos_mp_is_map(o) || !key)
        return NULL;
    size_t key_len = strlen(key);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        /* msgpack-c gives an empty str a NULL pointer, which memcmp must not see */
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_len &&
            (key_len == 0 || memcmp(k->via.str.ptr, key, key_len) == 0))
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}

void
sos_mp_pack_str(msgpack_packer *pk, const char *s)
{
    assert(s);
    sos_mp_pack_strn(pk, s, strlen(s));
}

void
sos_mp_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    if (len) /* msgpack-c would memcpy from s even for zero bytes */
        msgpack_pack_str_body(pk, s, len);
}

void
sos_mp_pack_bin(msgpack_packer *pk, const void *data, size_t len)
{
    msgpack_pack_bin(pk, len);
    if (len)
        msgpack_pack_bin_body(pk, data, len);
}

void
sos_mp_pack_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    sos_mp_pack_str(pk, key);
    sos_mp_pack_str(pk, value);
}

void
sos_mp_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t value)
{
    sos_mp_pack_str(pk, key);
    msgpack_pack_uint64(pk, value);
}
