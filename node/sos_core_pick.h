/*  sos_core_pick.h: whom a gossip round of the core starts exchanges with, drawn with a
    random source the caller gives (a simulator's seeded one, or libsodium's). */
#ifndef SOS_CORE_PICK_H
#define SOS_CORE_PICK_H

#include <stddef.h>
#include <stdint.h>

/*  len random bytes into buf: a simulator's seeded source, or libsodium's. */
typedef void(sos_random_fn)(void *arg, void *buf, size_t len);

/*  A peer as a round sees it. */
typedef enum {
    SOS_PICK_SKIP = 0, /* not now: an exchange under way, no worker, a genesis backing off */
    SOS_PICK_ALWAYS,   /* a genesis node not listed yet: always tried */
    SOS_PICK_SUSPECT,  /* seen to fail here or named by others: a probe, or in the pool */
    SOS_PICK_POOL,     /* the fanout's pool */
} sos_pick_class_t;

/*  A number in [0, upper) from rnd (given arg), without modulo bias; with rnd NULL,
    libsodium's randombytes_uniform. 0 if upper is 0 or 1. */
uint32_t sos_core_uniform(sos_random_fn *rnd, void *arg, uint32_t upper);

/*  The peers a round starts exchanges with, out of n classified ones: every ALWAYS, then
    up to probes SUSPECTs at random (exchanging with every suspect every round would make
    each round's work grow with the suspects, and late answers with it), then fanout at
    random from the POOL and the suspects left over. out (room for n) receives indexes into
    classes, in the order to start them; returns their number. *n_probes (may be NULL)
    receives how many suspects were picked as probes. 0 without memory. */
size_t sos_core_round_pick(const sos_pick_class_t *classes, size_t n, uint32_t fanout,
                           uint32_t probes, sos_random_fn *rnd, void *arg, size_t *out,
                           size_t *n_probes);

#endif
