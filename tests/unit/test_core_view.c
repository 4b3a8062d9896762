/*  test_core_view.c: the bounded active view (node/sos_core_view): its cap from the fanout
    and log N, adds with and without priority, removal, shrinking, determinism by seed, and
    a symmetric overlay of many views that never passes its caps. */
#include "proto_test.h"
#include "sos_core_view.h"
#include "seeded.h"

static void
s_test_cap(void)
{
    SECTION("the cap: fanout + ln N rounded, at least fanout + 1, at most SOS_VIEW_MAX");
    CHECK(sos_core_view_cap(3, 0) == 4);
    CHECK(sos_core_view_cap(3, 1) == 4);
    CHECK(sos_core_view_cap(3, 40) == 7);     /* ln 40 = 3.7 */
    CHECK(sos_core_view_cap(3, 100) == 8);    /* ln 100 = 4.6 */
    CHECK(sos_core_view_cap(3, 1000) == 10);  /* ln 1000 = 6.9 */
    CHECK(sos_core_view_cap(3, 10000) == 12); /* ln 10000 = 9.2 */
    CHECK(sos_core_view_cap(0, 10000) == 10); /* fanout 0 counts as 1 */
    CHECK(sos_core_view_cap(30, 10000) == SOS_VIEW_MAX);
    CHECK(sos_core_view_cap(3, UINT64_MAX) <= SOS_VIEW_MAX);
    sos_core_view_t v;
    sos_core_view_init(&v, 0);
    CHECK(v.cap == 1 && v.n == 0);
    sos_core_view_init(&v, 1000);
    CHECK(v.cap == SOS_VIEW_MAX);
}

static void
s_test_add(void)
{
    SECTION("add: into room, then refused without priority, in place of a random one with it");
    uint64_t seed = 7, ev = 0;
    sos_core_view_t v;
    sos_core_view_init(&v, 3);
    CHECK(sos_core_view_add(&v, 10, false, s_rnd, &seed, NULL) == SOS_VIEW_ADDED);
    CHECK(sos_core_view_add(&v, 11, false, s_rnd, &seed, NULL) == SOS_VIEW_ADDED);
    CHECK(sos_core_view_add(&v, 10, true, s_rnd, &seed, &ev) == SOS_VIEW_PRESENT);
    CHECK(sos_core_view_room(&v) == 1);
    CHECK(sos_core_view_add(&v, 12, false, s_rnd, &seed, NULL) == SOS_VIEW_ADDED);
    CHECK(sos_core_view_room(&v) == 0);
    CHECK(sos_core_view_add(&v, 13, false, s_rnd, &seed, NULL) == SOS_VIEW_REFUSED);
    CHECK(v.n == 3 && !sos_core_view_has(&v, 13));
    CHECK(sos_core_view_add(&v, 13, true, s_rnd, &seed, &ev) == SOS_VIEW_EVICTED);
    CHECK(v.n == 3 && sos_core_view_has(&v, 13));
    CHECK(ev >= 10 && ev <= 12 && !sos_core_view_has(&v, ev));

    SECTION("del keeps the others in order");
    sos_core_view_init(&v, 5);
    for (uint64_t p = 1; p <= 5; p++)
        sos_core_view_add(&v, p, false, s_rnd, &seed, NULL);
    CHECK(sos_core_view_del(&v, 3));
    CHECK(!sos_core_view_del(&v, 3));
    CHECK(v.n == 4 && v.peers[0] == 1 && v.peers[1] == 2 && v.peers[2] == 4 && v.peers[3] == 5);

    SECTION("resize: a smaller cap evicts at random down to it, a larger one evicts none");
    uint64_t out[SOS_VIEW_MAX];
    CHECK(sos_core_view_resize(&v, 8, s_rnd, &seed, out) == 0 && v.cap == 8 && v.n == 4);
    CHECK(sos_core_view_resize(&v, 2, s_rnd, &seed, out) == 2 && v.n == 2);
    CHECK(!sos_core_view_has(&v, out[0]) && !sos_core_view_has(&v, out[1]) && out[0] != out[1]);
}

static void
s_test_deterministic(void)
{
    SECTION("the same seed evicts the same members; over many seeds each member is evicted");
    unsigned hits[4] = {0};
    for (uint64_t s = 0; s < 400; s++) {
        uint64_t a_seed = s, b_seed = s, ea = 0, eb = 0;
        sos_core_view_t a, b;
        sos_core_view_init(&a, 4);
        sos_core_view_init(&b, 4);
        for (uint64_t p = 0; p < 4; p++) {
            sos_core_view_add(&a, p, false, s_rnd, &a_seed, NULL);
            sos_core_view_add(&b, p, false, s_rnd, &b_seed, NULL);
        }
        sos_core_view_add(&a, 99, true, s_rnd, &a_seed, &ea);
        sos_core_view_add(&b, 99, true, s_rnd, &b_seed, &eb);
        CHECK(ea == eb && memcmp(&a, &b, sizeof a) == 0);
        if (ea < 4)
            hits[ea]++;
    }
    for (int i = 0; i < 4; i++)
        CHECK(hits[i] > 50); /* about 100 each */
}

/*  An overlay of N views driven as sossim drives them: each node, in turn, fills its view
    from random others, with priority while it has fewer than the floor; a link is added at
    both ends, and an eviction closes it at both ends. Then nodes leave and the rest refill.
    At every step no view passes its cap and every link is symmetric. */
#define N_NODES 200

static sos_core_view_t s_views[N_NODES];
static bool s_gone[N_NODES];

static bool
s_symmetric(void)
{
    for (uint32_t a = 0; a < N_NODES; a++) {
        if (s_views[a].n > s_views[a].cap)
            return false;
        for (uint32_t i = 0; i < s_views[a].n; i++) {
            uint64_t b = s_views[a].peers[i];
            if (b == a || s_gone[b] || !sos_core_view_has(&s_views[b], a))
                return false;
        }
    }
    return true;
}

static void
s_link(uint32_t a, uint32_t b, uint32_t floor, uint64_t *seed)
{
    if (a == b || s_gone[b] || sos_core_view_has(&s_views[a], b) ||
        !sos_core_view_room(&s_views[a]))
        return;
    uint64_t ev = 0;
    sos_view_rc_t rc = sos_core_view_add(&s_views[b], a, s_views[a].n < floor, s_rnd, seed, &ev);
    if (rc == SOS_VIEW_REFUSED)
        return;
    if (rc == SOS_VIEW_EVICTED)
        sos_core_view_del(&s_views[ev], b);
    sos_core_view_add(&s_views[a], b, false, s_rnd, seed, NULL);
}

static void
s_test_overlay(void)
{
    SECTION("an overlay of 200 symmetric views: within the caps, every node linked");
    uint64_t seed = 1;
    uint32_t cap = sos_core_view_cap(3, N_NODES), floor = 3;
    for (uint32_t i = 0; i < N_NODES; i++)
        sos_core_view_init(&s_views[i], cap);
    bool ok = true;
    for (int round = 0; round < 20; round++)
        for (uint32_t a = 0; a < N_NODES; a++) {
            if (s_gone[a])
                continue;
            for (int tries = 0; tries < 3; tries++)
                s_link(a, sos_core_uniform(s_rnd, &seed, N_NODES), floor, &seed);
            ok = ok && s_symmetric();
        }
    CHECK(ok);
    uint32_t min = UINT32_MAX, sum = 0;
    for (uint32_t i = 0; i < N_NODES; i++) {
        min = s_views[i].n < min ? s_views[i].n : min;
        sum += s_views[i].n;
    }
    CHECK(min >= floor);
    CHECK(sum >= N_NODES * (cap - 2)); /* nearly full: refusals leave a slot here and there */

    SECTION("a quarter leave: their links close at both ends, the rest refill");
    for (uint32_t g = 0; g < N_NODES; g += 4) {
        for (uint32_t i = 0; i < s_views[g].n; i++)
            sos_core_view_del(&s_views[s_views[g].peers[i]], g);
        s_views[g].n = 0;
        s_gone[g] = true;
    }
    CHECK(s_symmetric());
    for (int round = 0; round < 20; round++)
        for (uint32_t a = 0; a < N_NODES; a++)
            if (!s_gone[a])
                for (int tries = 0; tries < 3; tries++)
                    s_link(a, sos_core_uniform(s_rnd, &seed, N_NODES), floor, &seed);
    CHECK(s_symmetric());
    min = UINT32_MAX;
    for (uint32_t i = 0; i < N_NODES; i++)
        if (!s_gone[i])
            min = s_views[i].n < min ? s_views[i].n : min;
    CHECK(min >= floor);
}

int
main(void)
{
    test_init("test_core_view: the bounded active view");
    s_test_cap();
    s_test_add();
    s_test_deterministic();
    s_test_overlay();
    return test_done("test_core_view");
}
