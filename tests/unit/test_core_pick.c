/*  test_core_pick.c: whom a round of the core picks, with a seeded random source: genesis
    nodes not listed always, at most the probes among suspects, the fanout from the rest;
    the same seed gives the same picks, and the draws are uniform. */
#include "proto_test.h"
#include "sos_core_pick.h"
#include "seeded.h"

static size_t
s_count(const size_t *out, size_t n, const sos_pick_class_t *classes, sos_pick_class_t c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += classes[out[i]] == c;
    return k;
}

int
main(void)
{
    test_init("test_core_pick");

    SECTION("genesis nodes not listed always, first; at most the probes; then the fanout");
    sos_pick_class_t c[] = {SOS_PICK_POOL,    SOS_PICK_SUSPECT, SOS_PICK_ALWAYS,  SOS_PICK_SKIP,
                            SOS_PICK_SUSPECT, SOS_PICK_POOL,    SOS_PICK_SUSPECT, SOS_PICK_POOL,
                            SOS_PICK_ALWAYS,  SOS_PICK_SKIP,    SOS_PICK_POOL,    SOS_PICK_SUSPECT};
    size_t n = sizeof c / sizeof c[0], out[sizeof c / sizeof c[0]], probes = 0;
    uint64_t seed = 42;
    size_t k = sos_core_round_pick(c, n, 3, 2, s_rnd, &seed, out, &probes);
    CHECK(k == 2 + 2 + 3 && probes == 2);
    CHECK(out[0] == 2 && out[1] == 8);
    CHECK(c[out[2]] == SOS_PICK_SUSPECT && c[out[3]] == SOS_PICK_SUSPECT);
    CHECK(s_count(out, k, c, SOS_PICK_SKIP) == 0);
    bool distinct = true;
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            distinct = distinct && out[i] != out[j];
    CHECK(distinct);

    SECTION("the same seed, the same picks; another seed, sooner or later others");
    size_t again[sizeof c / sizeof c[0]];
    seed = 42;
    CHECK(sos_core_round_pick(c, n, 3, 2, s_rnd, &seed, again, NULL) == k);
    CHECK(memcmp(out, again, k * sizeof *out) == 0);
    bool differ = false;
    for (uint64_t s = 1; s < 50 && !differ; s++) {
        seed = s;
        sos_core_round_pick(c, n, 3, 2, s_rnd, &seed, again, NULL);
        differ = memcmp(out, again, k * sizeof *out) != 0;
    }
    CHECK(differ);

    SECTION("fewer candidates than the fanout: all of them; nothing to pick: nothing");
    sos_pick_class_t few[] = {SOS_PICK_POOL, SOS_PICK_SUSPECT, SOS_PICK_SKIP};
    k = sos_core_round_pick(few, 3, 5, 0, s_rnd, &seed, out, &probes);
    CHECK(k == 2 && probes == 0); /* no probes: the suspect joins the pool */
    CHECK(sos_core_round_pick(few, 0, 5, 2, s_rnd, &seed, out, &probes) == 0);
    CHECK(sos_core_round_pick(NULL, 0, 5, 2, NULL, NULL, out, NULL) == 0);

    SECTION("libsodium's source when none is given");
    k = sos_core_round_pick(c, n, 3, 2, NULL, NULL, out, &probes);
    CHECK(k == 7 && probes == 2);

    SECTION("uniform draws: every value, none out of range, roughly as often");
    uint32_t hist[7] = {0};
    seed = 7;
    for (int i = 0; i < 70000; i++) {
        uint32_t v = sos_core_uniform(s_rnd, &seed, 7);
        CHECK(v < 7);
        if (v < 7)
            hist[v]++;
    }
    for (int i = 0; i < 7; i++)
        CHECK(hist[i] > 9000 && hist[i] < 11000);
    CHECK(sos_core_uniform(s_rnd, &seed, 0) == 0 && sos_core_uniform(s_rnd, &seed, 1) == 0);
    return test_done("test_core_pick");
}
