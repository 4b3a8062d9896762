/*  test_core_probe.c: the indirect probe's tables (sos_fd.h): a requester takes a PROBE_ACK
    only from a helper it asked, for the req_id it sent, once; one reached clears, all no or
    the deadline fails; a helper's table is bounded, refuses repeats, and matches PONGs by
    target and ping id. */
#include <string.h>

#include "proto_test.h"
#include "sos_fd.h"

static void
s_id(uint8_t id[SOS_NODEID_BYTES], char c)
{
    memset(id, c, SOS_NODEID_BYTES);
}

static void
s_test_requester(void)
{
    uint8_t t[SOS_NODEID_BYTES], t2[SOS_NODEID_BYTES], h1[SOS_NODEID_BYTES], h2[SOS_NODEID_BYTES],
        x[SOS_NODEID_BYTES], out[SOS_NODEID_BYTES];
    s_id(t, 'T'), s_id(t2, 'U'), s_id(h1, '1'), s_id(h2, '2'), s_id(x, 'X');
    sos_fd_probes_t probes;
    memset(&probes, 0, sizeof probes);

    SECTION("one probe per target; pending until a verdict");
    sos_fd_probe_t *p = sos_fd_probe_begin(&probes, t, 5000);
    CHECK(p != NULL);
    CHECK(sos_fd_probe_begin(&probes, t, 6000) == NULL);
    CHECK(sos_fd_probe_pending(&probes, t) && !sos_fd_probe_pending(&probes, t2));
    CHECK(sos_fd_probe_add(p, h1, 111) && sos_fd_probe_add(p, h2, 222));

    SECTION("an answer from a helper not asked, for another req_id or target, is unknown");
    CHECK(sos_fd_probe_ack(&probes, x, 111, t, true, out) == SOS_FD_ACK_UNKNOWN);
    CHECK(sos_fd_probe_ack(&probes, h1, 222, t, true, out) == SOS_FD_ACK_UNKNOWN);
    CHECK(sos_fd_probe_ack(&probes, h1, 111, t2, true, out) == SOS_FD_ACK_UNKNOWN);
    CHECK(sos_fd_probe_pending(&probes, t));

    SECTION("a no waits for the others; the same answer twice is unknown");
    CHECK(sos_fd_probe_ack(&probes, h1, 111, t, false, out) == SOS_FD_ACK_WAIT);
    CHECK(sos_fd_probe_ack(&probes, h1, 111, t, true, out) == SOS_FD_ACK_UNKNOWN);

    SECTION("the last helper's no fails the probe and frees it");
    memset(out, 0, sizeof out);
    CHECK(sos_fd_probe_ack(&probes, h2, 222, t, false, out) == SOS_FD_ACK_FAILED);
    CHECK(memcmp(out, t, sizeof out) == 0 && !sos_fd_probe_pending(&probes, t));
    CHECK(sos_fd_probe_ack(&probes, h2, 222, t, true, out) == SOS_FD_ACK_UNKNOWN);

    SECTION("one reached ends it at once, whatever the others say later");
    p = sos_fd_probe_begin(&probes, t, 5000);
    CHECK(sos_fd_probe_add(p, h1, 333) && sos_fd_probe_add(p, h2, 444));
    CHECK(sos_fd_probe_ack(&probes, h2, 444, t, true, out) == SOS_FD_ACK_REACHED);
    CHECK(memcmp(out, t, sizeof out) == 0 && !sos_fd_probe_pending(&probes, t));
    CHECK(sos_fd_probe_ack(&probes, h1, 333, t, false, out) == SOS_FD_ACK_UNKNOWN);

    SECTION("a probe without a verdict expires at its deadline, not before");
    p = sos_fd_probe_begin(&probes, t2, 7000);
    CHECK(p && sos_fd_probe_add(p, h1, 555));
    CHECK(!sos_fd_probe_expired(&probes, 6999, out));
    CHECK(sos_fd_probe_expired(&probes, 7000, out) && memcmp(out, t2, sizeof out) == 0);
    CHECK(!sos_fd_probe_pending(&probes, t2) && !sos_fd_probe_expired(&probes, 9000, out));

    SECTION("sos_fd_probe_end forgets a probe: its answers are unknown");
    p = sos_fd_probe_begin(&probes, t, 5000);
    CHECK(p && sos_fd_probe_add(p, h1, 666));
    sos_fd_probe_end(&probes, t);
    CHECK(sos_fd_probe_ack(&probes, h1, 666, t, true, out) == SOS_FD_ACK_UNKNOWN);

    SECTION("bounded: helpers per probe, probes at once");
    p = sos_fd_probe_begin(&probes, t, 5000);
    for (uint64_t i = 0; i < SOS_FD_PROBE_HELPERS_MAX; i++)
        CHECK(sos_fd_probe_add(p, h1, 1000 + i));
    CHECK(!sos_fd_probe_add(p, h1, 2000));
    sos_fd_probe_end(&probes, t);
    uint8_t id[SOS_NODEID_BYTES];
    for (int i = 0; i < SOS_FD_PROBES_MAX; i++) {
        s_id(id, (char)('a' + i));
        CHECK(sos_fd_probe_begin(&probes, id, 5000) != NULL);
    }
    CHECK(sos_fd_probe_begin(&probes, t, 5000) == NULL);
}

static void
s_test_helper(void)
{
    uint8_t r1[SOS_NODEID_BYTES], r2[SOS_NODEID_BYTES], t[SOS_NODEID_BYTES], x[SOS_NODEID_BYTES];
    s_id(r1, 'r'), s_id(r2, 's'), s_id(t, 'T'), s_id(x, 'X');
    sos_fd_helps_t helps;
    memset(&helps, 0, sizeof helps);

    SECTION("a helper takes a request once per requester and req_id");
    int i = sos_fd_help_begin(&helps, r1, 7, t, 900, 3000);
    CHECK(i >= 0);
    CHECK(sos_fd_help_begin(&helps, r1, 7, t, 901, 3000) == -1);
    int j = sos_fd_help_begin(&helps, r2, 7, t, 902, 4000);
    CHECK(j >= 0 && j != i);

    SECTION("a PONG matches by target and ping id only");
    CHECK(sos_fd_help_pong(&helps, x, 900) == -1);
    CHECK(sos_fd_help_pong(&helps, t, 999) == -1);
    CHECK(sos_fd_help_pong(&helps, t, 900) == i);
    CHECK(helps.slot[i].req_id == 7 && memcmp(helps.slot[i].requester, r1, sizeof r1) == 0);
    sos_fd_help_end(&helps, i);
    CHECK(sos_fd_help_pong(&helps, t, 900) == -1);

    SECTION("deadlines");
    CHECK(sos_fd_help_expired(&helps, 3999) == -1);
    CHECK(sos_fd_help_expired(&helps, 4000) == j);
    sos_fd_help_end(&helps, j);
    CHECK(sos_fd_help_expired(&helps, 100000) == -1);

    SECTION("bounded: every slot taken refuses the next");
    for (int k = 0; k < SOS_FD_HELPS_MAX; k++)
        CHECK(sos_fd_help_begin(&helps, r1, (uint64_t)k, t, (uint64_t)k, 5000) >= 0);
    CHECK(sos_fd_help_begin(&helps, r2, 1, t, 1, 5000) == -1);
    sos_fd_help_end(&helps, -1); /* out of range: nothing */
    sos_fd_help_end(&helps, SOS_FD_HELPS_MAX);
}

int
main(void)
{
    test_init("test_core_probe");
    s_test_requester();
    s_test_helper();
    return test_done("test_core_probe");
}
