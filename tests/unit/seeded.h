/*  seeded.h: a seeded random source for the core's unit tests (splitmix64), of the shape
    the core modules take (sos_random_fn): arg is a uint64_t state, advanced per 8 bytes. */
#ifndef SEEDED_H
#define SEEDED_H

#include <stdint.h>
#include <string.h>

static void
s_rnd(void *arg, void *buf, size_t len)
{
    uint64_t *state = arg;
    uint8_t *out = buf;
    while (len) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        size_t k = len < sizeof z ? len : sizeof z;
        memcpy(out, &z, k);
        out += k;
        len -= k;
    }
}

#endif
