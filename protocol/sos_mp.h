/*  sos_mp.h: strict, bounded decoding of untrusted msgpack and small packing helpers.
    Every byte that comes from the network or disk is parsed through sos_mp_parse. */
#ifndef SOS_MP_H
#define SOS_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"

/*  Ceilings of the pre-scan. A container's element count is also bounded by the bytes left,
    so that msgpack-c never allocates more than a small multiple of the input size. */
#define SOS_MP_MAX_DEPTH   8
#define SOS_MP_MAX_OBJECTS 65536

/*  A parsed document: the object tree borrows from the input bytes, which must stay
    valid and unchanged until sos_mp_doc_release. */
typedef struct {
    msgpack_unpacked unpacked;
    msgpack_object *root; /* borrowed from unpacked; NULL until parsed */
} sos_mp_doc_t;

/*  Where the first msgpack object in data[0..size) ends, for a reader of a byte stream that
    may hold a partial object or more than one. Walks the bytes with the pre-scan's checks and
    ceilings, without allocating. Returns SOS_OK with *object_size set to the length of the
    first object (bytes after it are not looked at); SOS_ERR_PARTIAL if data ends before that
    object does, or a container owes more elements than bytes are left (more bytes may
    complete it); SOS_ERR_MALFORMED on the reserved byte 0xc1; SOS_ERR_TOO_LARGE when the
    object nests deeper than SOS_MP_MAX_DEPTH, holds more than SOS_MP_MAX_OBJECTS objects, or
    claims a length or element count that cannot fit in max_size bytes (the reader's buffer
    bound; SIZE_MAX for none); SOS_ERR_INVALID if object_size is NULL, or data is NULL and
    size is not 0. *object_size is set only on SOS_OK. sos_mp_parse of exactly those bytes may
    still refuse the object. */
sos_rc sos_mp_object_size(const void *data, size_t size, size_t max_size, size_t *object_size);

/*  Parse exactly one msgpack object spanning all of data[0..size). Before msgpack-c sees the
    bytes, a pre-scan checks depth, object count and that every length and count fits in the
    remaining input. Returns SOS_OK, SOS_ERR_MALFORMED (bad, truncated or trailing bytes) or
    SOS_ERR_TOO_LARGE (a ceiling above). On any return, call sos_mp_doc_release. */
sos_rc sos_mp_parse(sos_mp_doc_t *doc, const void *data, size_t size);
void sos_mp_doc_release(sos_mp_doc_t *doc);

/*  Typed accessors. Each returns true only if o is non-NULL and of exactly the named type
    within the bound given; strings and bins are borrowed from the document. */
bool sos_mp_uint(const msgpack_object *o, uint64_t *out);
bool sos_mp_bool(const msgpack_object *o, bool *out);
/*  A str is also refused unless it is valid UTF-8 (sos_utf8_valid). */
bool sos_mp_str(const msgpack_object *o, const char **ptr, size_t *len, size_t max_len);
/*  True if data[0..len) is strict UTF-8: shortest forms only, no surrogates, <= U+10FFFF. */
bool sos_utf8_valid(const void *data, size_t len);
bool sos_mp_bin(const msgpack_object *o, const uint8_t **ptr, size_t *len, size_t max_len);
/*  A bin of exactly len bytes copied to dest. */
bool sos_mp_bin_exact(const msgpack_object *o, void *dest, size_t len);
/*  A str of at most max_len bytes copied NUL-terminated to dest (of max_len + 1 bytes).
    Rejects embedded NUL bytes. */
bool sos_mp_str_copy(const msgpack_object *o, char *dest, size_t max_len);
bool sos_mp_array(const msgpack_object *o, const msgpack_object **items, uint32_t *count,
                  uint32_t max_count);
bool sos_mp_is_map(const msgpack_object *o);

/*  Look up a str key in a map. Returns NULL if o is not a map or the key is absent. */
const msgpack_object *sos_mp_map_get(const msgpack_object *o, const char *key);

/*  Packing helpers on a msgpack_packer. */
void sos_mp_pack_str(msgpack_packer *pk, const char *s);
void sos_mp_pack_strn(msgpack_packer *pk, const char *s, size_t len);
void sos_mp_pack_bin(msgpack_packer *pk, const void *data, size_t len);
void sos_mp_pack_kv_str(msgpack_packer *pk, const char *key, const char *value);
void sos_mp_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t value);

#endif
