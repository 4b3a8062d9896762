/*  sos_record.h: the signed directory records that travel by gossip: a worker (node) record
    signed by that node, and a room record signed by the room's owner. */
#ifndef SOS_RECORD_H
#define SOS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_identity.h"

#define SOS_URL_MAX      255  /* bytes of an endpoint such as tcp://host:port */
#define SOS_ROOMHASH_LEN 16   /* lower-case hex characters */
#define SOS_EMOJIS_MAX   64   /* bytes of UTF-8; the node checks "at most 6 emoji" on create */
#define SOS_DESC_MAX     140  /* bytes */
#define SOS_RECORD_MAX   1024 /* bytes of a record's wire form */

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
    /* room only (empty / zero for a worker) */
    char room_hash[SOS_ROOMHASH_LEN + 1];
    char emojis[SOS_EMOJIS_MAX + 1];
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

/*  True if s is a valid room hash: exactly 16 lower-case hex characters. */
bool sos_room_hash_valid(const char *s, size_t len);

#endif
