/*  sos_record.h: the signed directory records that travel by gossip: a worker (node) record
    signed by that node, and a room record signed by the room's owner. */
#ifndef SOS_RECORD_H
#define SOS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_identity.h"

#define SOS_URL_MAX         255 /* bytes of an endpoint such as tcp://host:port */
#define SOS_ROOMHASH_LEN    16  /* lower-case hex characters */
#define SOS_EMOJIS_MAX      64  /* bytes of UTF-8; the node checks "at most 6 emoji" on create */
#define SOS_HTTP_URL_MAX    255 /* bytes of a worker's HTTP base URL, http(s)://host:port */
#define SOS_EMOJI_COUNT_MAX 6   /* emojis in a room record's list */
#define SOS_EMOJI_BYTES_MAX 32  /* bytes of UTF-8 of one emoji in that list */
#define SOS_EMOJIS_TEXT_MAX (SOS_EMOJI_COUNT_MAX * SOS_EMOJI_BYTES_MAX) /* the list joined */
#define SOS_DESC_MAX        140                                         /* bytes */
#define SOS_RECORD_MAX      1024 /* bytes of a record's wire form */

typedef enum {
    SOS_REC_WORKER = 1,
    SOS_REC_ROOM = 2,
} sos_rec_kind_t;

/*  A decoded record. Versions count per origin: every record an origin signs takes the next
    value of that origin's counter (see protocol/PROTOCOL.md, "Versions"), and prev is the
    counter's value before it, so that a receiver knows whether it missed something. */
typedef struct {
    sos_rec_kind_t kind;
    uint8_t origin[SOS_NODEID_BYTES]; /* worker: its node id; room: the owner's node id */
    uint64_t version;
    uint64_t prev;
    char url[SOS_URL_MAX + 1]; /* worker: its endpoint; room: the owner's endpoint */
    /* worker only: its HTTP base URL, shown to clients and never connected to; "" = none */
    char http_url[SOS_HTTP_URL_MAX + 1];
    /* room only (empty / zero for a worker) */
    char room_hash[SOS_ROOMHASH_LEN + 1];
    uint32_t n_emojis; /* the creator's emoji list, each 1..SOS_EMOJI_BYTES_MAX bytes */
    char emojis[SOS_EMOJI_COUNT_MAX][SOS_EMOJI_BYTES_MAX + 1];
    char description[SOS_DESC_MAX + 1];
    uint64_t created_at; /* ms since the epoch */
    uint64_t expires_at; /* ms since the epoch */
    /* the signed wire form, exactly as it travels and as it is stored */
    uint8_t wire[SOS_RECORD_MAX];
    size_t wire_len;
} sos_record_t;

/*  Fill rec's wire form from its fields and sign it with id, which must be the origin
    (rec->origin is set from id). Returns SOS_ERR_INVALID for a field out of bounds (a url
    that is empty or too long, a room_hash that is not 16 lower-case hex characters, ...). */
sos_rc sos_record_sign(sos_record_t *rec, const sos_identity_t *id);

/*  Decode and verify a record's wire form. Strict: exact types, every bound above, the
    signature by the origin. Returns SOS_OK, SOS_ERR_MALFORMED, SOS_ERR_TOO_LARGE,
    SOS_ERR_VERSION (unknown kind) or SOS_ERR_SIGNATURE. On success rec holds a copy of wire. */
sos_rc sos_record_decode(sos_record_t *rec, const uint8_t *wire, size_t len);

/*  Parse a wire form without checking the signature: only for bytes this node verified before
    it stored them. Structure and bounds are still checked (SOS_ERR_CORRUPT if not). */
sos_rc sos_record_parse(sos_record_t *rec, const uint8_t *wire, size_t len);

/*  Join rec's emoji list, with no separator, into out (cap bytes, at least
    SOS_EMOJIS_TEXT_MAX + 1 for any list), for code that wants one text. Returns the length
    written (the text is NUL-terminated and cut at cap - 1 bytes if cap is smaller). */
size_t sos_record_emojis_join(const sos_record_t *rec, char *out, size_t cap);

/*  Fill rec's emoji list from one text: a new emoji starts at every code point that is not
    a joiner, a variation selector, a skin tone or a tag, and does not follow a joiner.
    SOS_ERR_INVALID (and an empty list) if text is not UTF-8, has more than
    SOS_EMOJI_COUNT_MAX emojis, or one over SOS_EMOJI_BYTES_MAX bytes. "" gives an empty
    list. sos_record_emojis_join gives text back. */
sos_rc sos_record_emojis_split(sos_record_t *rec, const char *text);

/*  True if s[0..len) is an HTTP base URL as a worker record carries it:
    http:// or https://, a host (a DNS name or a bracketed IPv6 literal), ':' and a port
    1..65535, nothing more. */
bool sos_http_url_valid(const char *s, size_t len);

/*  True if s is a valid room hash: exactly 16 lower-case hex characters. */
bool sos_room_hash_valid(const char *s, size_t len);

#endif
