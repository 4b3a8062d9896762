/*  proto_test.h: what the protocol unit tests share besides the checks of check.h: set-up,
    fixed identities and sample records. */
#ifndef PROTO_TEST_H
#define PROTO_TEST_H

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sos_error.h"
#include "sos_identity.h"
#include "sos_record.h"

static inline void
test_init(const char *name)
{
    printf("%s\n", name);
    if (sos_crypto_init() != SOS_OK) {
        fprintf(stderr, "libsodium failed to initialise\n");
        exit(2);
    }
}

/*  The identity of the known-answer vectors: seed bytes 0, 1, ..., 31. */
static inline void
test_seed_identity(sos_identity_t *id, uint8_t first)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(first + i);
    crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

static inline void
test_worker(sos_record_t *rec, uint64_t version, const char *url)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_WORKER;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "%s", url);
}

static inline void
test_room(sos_record_t *rec, uint64_t version, const char *room_hash)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_ROOM;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "tcp://192.0.2.1:7777");
    snprintf(rec->room_hash, sizeof rec->room_hash, "%s", room_hash);
    rec->n_emojis = 3;
    snprintf(rec->emojis[0], sizeof rec->emojis[0], "\xf0\x9f\x94\xa5");
    snprintf(rec->emojis[1], sizeof rec->emojis[1], "\xf0\x9f\x8c\x8a");
    snprintf(rec->emojis[2], sizeof rec->emojis[2], "\xf0\x9f\xa6\x8a");
    snprintf(rec->description, sizeof rec->description, "Test room");
    rec->created_at = 1700000000000ULL;
    rec->expires_at = 1700086400000ULL;
}

#endif
