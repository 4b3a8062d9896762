/*  sos_core_pick.c: a round's picks (Fisher-Yates over the candidates) with an injected
    random source. */
#include <sodium.h>
#include <stdlib.h>

#include "sos_core_pick.h"

uint32_t
sos_core_uniform(sos_random_fn *rnd, void *arg, uint32_t upper)
{
    if (upper < 2)
        return 0;
    if (!rnd)
        return randombytes_uniform(upper);
    /*  As randombytes_uniform: reject the draws below 2^32 mod upper, which would make the
        low results likelier. */
    uint32_t min = (uint32_t)(-upper) % upper, r = 0;
    do
        rnd(arg, &r, sizeof r);
    while (r < min);
    return r % upper;
}

size_t
sos_core_round_pick(const sos_pick_class_t *classes, size_t n, uint32_t fanout, uint32_t probes,
                    sos_random_fn *rnd, void *arg, size_t *out, size_t *n_probes)
{
    size_t *pool = calloc(n ? n : 1, sizeof *pool);
    size_t *sus = calloc(n ? n : 1, sizeof *sus);
    size_t n_out = 0, n_pool = 0, n_sus = 0, picked_probes = 0;
    if (!pool || !sus)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (classes[i] == SOS_PICK_ALWAYS)
            out[n_out++] = i;
        else if (classes[i] == SOS_PICK_SUSPECT)
            sus[n_sus++] = i;
        else if (classes[i] == SOS_PICK_POOL)
            pool[n_pool++] = i;
    }
    for (size_t i = 0; i < n_sus; i++) {
        size_t j = i + sos_core_uniform(rnd, arg, (uint32_t)(n_sus - i));
        size_t t = sus[i];
        sus[i] = sus[j];
        sus[j] = t;
        if (i < probes) {
            out[n_out++] = sus[i];
            picked_probes++;
        } else
            pool[n_pool++] = sus[i];
    }
    for (size_t i = 0; i < n_pool && i < fanout; i++) {
        size_t j = i + sos_core_uniform(rnd, arg, (uint32_t)(n_pool - i));
        size_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        out[n_out++] = pool[i];
    }
done:
    free(pool);
    free(sus);
    if (n_probes)
        *n_probes = picked_probes;
    return n_out;
}
