/*  test_core_fd.c: the gossip core's failure detector as scripted sequences of events
    (failed and answered exchanges, suspicions named by others, late timers) at given
    times, and the decisions that come out: suspicion, removal, deadlines, refutation. */
#include "proto_test.h"
#include "sos_fd.h"

static const sos_fd_config_t s_cfg = {
    .interval_ms = 1000, .exchange_timeout_ms = 2000, .max_failures = 3, .fanout = 4};

int
main(void)
{
    test_init("test_core_fd");
    const uint8_t a[SOS_FD_CONFIRM_PREFIX] = "nodeA..", b[SOS_FD_CONFIRM_PREFIX] = "nodeB..",
                  c[SOS_FD_CONFIRM_PREFIX] = "nodeC..", d[SOS_FD_CONFIRM_PREFIX] = "nodeD..",
                  e5[SOS_FD_CONFIRM_PREFIX] = "nodeE..";

    SECTION("a first failure starts a suspicion about the record held; later ones count");
    sos_fd_t fd = {0};
    sos_fd_peer_t p = {0};
    CHECK(sos_fd_failure(&fd, &p, true, false, 7, 10000) == SOS_FD_SUSPECTED);
    CHECK(p.fail_count == 1 && p.suspect_mono == 10000 && p.suspect_version == 7);
    CHECK(sos_fd_failure(&fd, &p, true, false, 9, 11000) == SOS_FD_COUNTED);
    CHECK(p.fail_count == 2 && p.suspect_mono == 10000 && p.suspect_version == 7);

    SECTION("without confirmations, removal waits for F failures and T(0) = I (F + 1)");
    /*  n below 10 counts as 10: T(0) = 1000 * ((3 - 1) + 2 * 1 * 1) = 4000 ms. */
    CHECK(sos_fd_suspicion_timeout(&fd, &s_cfg, &p, 5) == 4000);
    CHECK(!sos_fd_removable(&fd, &s_cfg, &p, true, 5, 20000)); /* 2 failures < F */
    sos_fd_failure(&fd, &p, true, false, 7, 12000);
    CHECK(p.fail_count == 3);
    CHECK(!sos_fd_removable(&fd, &s_cfg, &p, true, 5, 13999));
    CHECK(sos_fd_removable(&fd, &s_cfg, &p, true, 5, 14000));
    SECTION("the timeout grows with log n");
    CHECK(sos_fd_suspicion_timeout(&fd, &s_cfg, &p, 1000) == 8000);
    CHECK(!sos_fd_removable(&fd, &s_cfg, &p, true, 1000, 17999));
    CHECK(sos_fd_removable(&fd, &s_cfg, &p, true, 1000, 18000));

    SECTION("genesis nodes and addresses that are no workers are never removed");
    CHECK(!sos_fd_removable(&fd, &s_cfg, &p, false, 5, 100000));
    sos_fd_peer_t g = {0};
    CHECK(sos_fd_failure(&fd, &g, true, true, 0, 1000) == SOS_FD_COUNTED);
    CHECK(g.fail_count == 1 && g.suspect_mono == 0);
    sos_fd_peer_t addr = {0};
    CHECK(sos_fd_failure(&fd, &addr, false, false, 0, 1000) == SOS_FD_COUNTED);
    CHECK(addr.suspect_mono == 0);

    SECTION("an answer ends the suspicion and keeps the round-trip estimate");
    sos_fd_t elsewhere = {0};
    sos_fd_rtt_sample(&elsewhere, &p, 40);
    sos_fd_clear(&p);
    CHECK(p.fail_count == 0 && p.suspect_mono == 0 && p.n_confirm == 0 && !p.probe);
    CHECK(p.srtt_ms == 40 && p.rttvar_ms == 20);
    CHECK(!sos_fd_removable(&fd, &s_cfg, &p, true, 5, 100000));

    SECTION("a suspicion named by others alone removes nobody");
    sos_fd_peer_t q = {0};
    sos_fd_named(&q, a, 3, 0, 0, 5000);
    sos_fd_named(&q, b, 3, 0, 0, 5100);
    sos_fd_named(&q, c, 3, 0, 0, 5200);
    sos_fd_named(&q, d, 3, 0, 0, 5250);
    CHECK(q.probe && q.suspect_mono == 5000 && q.suspect_version == 3 && q.n_confirm == 4);
    CHECK(!sos_fd_removable(&fd, &s_cfg, &q, true, 5, 1000000));

    SECTION("confirmations: distinct, at most K, and they shorten the timeout to (F - 1) I");
    CHECK(SOS_FD_CONFIRM_K == 4);
    sos_fd_named(&q, a, 3, 0, 0, 5300);    /* a again */
    sos_fd_named(&q, e5, 3, 0, 0, 5400);   /* a fifth */
    sos_fd_named(&q, NULL, 3, 0, 0, 5500); /* a sender that may not confirm */
    CHECK(q.n_confirm == SOS_FD_CONFIRM_K);
    CHECK(sos_fd_suspicion_timeout(&fd, &s_cfg, &q, 5) == 2000);
    /*  One failure here and K confirmations make F: removed once T(K) has passed. */
    CHECK(sos_fd_failure(&fd, &q, true, false, 3, 6000) == SOS_FD_COUNTED);
    CHECK(q.probe); /* cleared only by an answer or a newer record */
    CHECK(!sos_fd_removable(&fd, &s_cfg, &q, true, 5, 6999));
    CHECK(sos_fd_removable(&fd, &s_cfg, &q, true, 5, 7000));
    sos_fd_peer_t one = {0};
    sos_fd_named(&one, a, 3, 0, 0, 5000);
    sos_fd_named(&one, a, 3, 0, 0, 5100); /* the same node again: no second confirmation */
    CHECK(one.n_confirm == 1);
    /*  T(1) = 1000 * (2 + 2 * (1 - log 2 / log 5)) ~ 3139 ms */
    CHECK(sos_fd_suspicion_timeout(&fd, &s_cfg, &one, 5) == 3138);

    SECTION("no suspicion is shorter than a refutation takes to get here, as measured");
    /*  S = (1 + log_4 16) * (I + RTO_all) = 3 (I + RTO_all) at fanout 3 and 16 workers. Idle
        (no round trip measured yet) at I = 100 ms: 300 ms, below the exchange deadline. */
    sos_fd_config_t fast = {
        .interval_ms = 100, .exchange_timeout_ms = 500, .max_failures = 3, .fanout = 3};
    sos_fd_t idle = {0};
    CHECK(sos_fd_refute_time(&idle, &fast, 16) == 300);
    CHECK(sos_fd_suspicion_timeout(&idle, &fast, &q, 16) == 500); /* K: (F - 1) I = 200 */
    /*  Answers that come late (a busy machine) stretch it: one sample of 100 ms makes
        RTO_all 100 + 4 * 50, S = 3 * 400 = 1200 ms, whatever the confirmations. */
    sos_fd_t busy = {0};
    sos_fd_peer_t any = {0};
    sos_fd_rtt_sample(&busy, &any, 100);
    CHECK(busy.srtt_ms == 100 && busy.rttvar_ms == 50);
    CHECK(sos_fd_refute_time(&busy, &fast, 16) == 1200);
    CHECK(sos_fd_suspicion_timeout(&busy, &fast, &q, 16) == 1200);
    sos_fd_peer_t lone = {0};
    CHECK(sos_fd_suspicion_timeout(&busy, &fast, &lone, 16) == 1200);
    CHECK(sos_fd_suspicion_timeout(&busy, &fast, &one, 16) == 1200);
    /*  At a one-second interval the rounds dominate: S = (1 + log_5 5) * 1300 = 2600 ms at
        fanout 4 is above T(K) = 2000 but below T(0) = 4000. */
    CHECK(sos_fd_refute_time(&busy, &s_cfg, 5) == 2600);
    CHECK(sos_fd_suspicion_timeout(&busy, &s_cfg, &q, 5) == 2600);
    CHECK(sos_fd_suspicion_timeout(&busy, &s_cfg, &lone, 5) == 4000);
    /*  Answers any later than the conservative deadline (a peer may answer late on
        purpose) count as that deadline: S = 3 * (100 + 500) at most, whatever they say. */
    sos_fd_t stalled = {0};
    sos_fd_rtt_sample(&stalled, &any, 60000);
    CHECK(sos_fd_refute_time(&stalled, &fast, 16) == 1800);

    SECTION("a suspicion named with its age starts that far back, at most the spread time");
    /*  The spread time is S without the suspect's own round: log_4 16 * (I + RTO_all). */
    CHECK(sos_fd_spread_time(&idle, &fast, 16) == 200);
    CHECK(sos_fd_spread_time(&busy, &fast, 16) == 800);
    uint64_t cap = sos_fd_spread_time(&idle, &fast, 16);
    sos_fd_peer_t aged = {0};
    sos_fd_named(&aged, a, 3, 150, cap, 10000); /* suspected for 150 ms by a */
    CHECK(aged.suspect_mono == 9850 && aged.n_confirm == 1);
    sos_fd_named(&aged, b, 3, 100, cap, 10020); /* a later start: no change */
    CHECK(aged.suspect_mono == 9850 && aged.n_confirm == 2);
    sos_fd_named(&aged, c, 3, 60000, cap, 10040); /* a claim past the cap counts as the cap */
    CHECK(aged.suspect_mono == 10040 - 200 && aged.n_confirm == 3);
    sos_fd_named(&aged, NULL, 3, 60000, cap, 10060); /* a namer that does not count: no date */
    CHECK(aged.suspect_mono == 9840);
    sos_fd_peer_t heard = {0};
    sos_fd_named(&heard, NULL, 3, 500, cap, 10000);
    CHECK(heard.suspect_mono == 10000 && heard.n_confirm == 0);
    sos_fd_named(&heard, d, 3, 10, cap, 10000); /* a suspicion under way, moved back 10 ms */
    CHECK(heard.suspect_mono == 9990);
    /*  Its age, as a SYNC names it; removal is timed from the dated start */
    CHECK(sos_fd_suspect_age(&aged, 10100) == 260 && sos_fd_suspect_age(&lone, 10100) == 0);
    sos_fd_named(&aged, e5, 3, 200, cap, 10060); /* the fourth confirmation */
    CHECK(aged.n_confirm == 4);
    CHECK(sos_fd_failure(&idle, &aged, true, false, 3, 10100) == SOS_FD_COUNTED);
    /*  T(K) = max((F - 1) I, E, S) = 500 ms from 9840, not from 10000 */
    CHECK(!sos_fd_removable(&idle, &fast, &aged, true, 16, 10339));
    CHECK(sos_fd_removable(&idle, &fast, &aged, true, 16, 10340));

    SECTION("a late round raises health at once; it stretches deadlines and suspicions");
    sos_fd_t h = {0};
    CHECK(!sos_fd_round(&h, &s_cfg, 100000));
    CHECK(!sos_fd_round(&h, &s_cfg, 101000)); /* on time */
    CHECK(!sos_fd_round(&h, &s_cfg, 102400)); /* 400 ms late: within half an interval */
    CHECK(h.health == 0);
    CHECK(sos_fd_round(&h, &s_cfg, 104400)); /* a second late */
    CHECK(h.health == 1);
    CHECK(sos_fd_exchange_timeout(&h, &s_cfg, &g) == 2 * 2000);
    CHECK(sos_fd_suspicion_timeout(&h, &s_cfg, &one, 5) == 2 * 3138);

    SECTION("while it lags, a first failure is withheld; a genesis failure still counts");
    sos_fd_peer_t r = {0};
    CHECK(sos_fd_failure(&h, &r, true, false, 1, 104500) == SOS_FD_WITHHELD);
    CHECK(r.fail_count == 0 && r.suspect_mono == 0);
    sos_fd_peer_t g2 = {0};
    CHECK(sos_fd_failure(&h, &g2, true, true, 0, 104500) == SOS_FD_COUNTED);

    SECTION("while it lags, a failure of a peer others named a suspect still counts");
    sos_fd_peer_t nm = {0};
    sos_fd_named(&nm, NULL, 1, 0, 0, 104400);
    CHECK(sos_fd_failure(&h, &nm, true, false, 1, 104500) == SOS_FD_COUNTED);
    CHECK(nm.fail_count == 1 && nm.suspect_mono == 104400);

    SECTION("a late tick raises health, once until the next round");
    CHECK(!sos_fd_tick(&h, 250, 104600));
    CHECK(sos_fd_tick(&h, 250, 105600)); /* 750 ms late */
    CHECK(h.health == 2 && h.lagging);
    CHECK(sos_fd_tick(&h, 250, 106600));
    CHECK(h.health == 2); /* lagging already since the last round */

    SECTION("health falls by one per second of rounds on time, not per round");
    CHECK(sos_fd_round(&h, &s_cfg, 106600)); /* late again: clears lagging at its end */
    CHECK(h.health == 2 && !h.lagging);
    CHECK(!sos_fd_round(&h, &s_cfg, 107600));
    CHECK(h.health == 1);
    h.health = 3;
    h.health_mono = 107600;
    CHECK(!sos_fd_round(&h, &s_cfg, 108100)); /* half a second on: no fall yet */
    CHECK(h.health == 3);
    for (uint64_t t = 108600; t <= 110600; t += 1000)
        sos_fd_round(&h, &s_cfg, t);
    CHECK(h.health == 0);
    CHECK(!sos_fd_round(&h, &s_cfg, 111600));
    CHECK(h.health == 0);

    SECTION("health never rises past its ceiling");
    sos_fd_t top = {0};
    for (uint64_t i = 0; i < 2 * SOS_FD_HEALTH_MAX; i++) {
        sos_fd_lag(&top, 5000, 1000, i * 10000);
        top.lagging = false; /* a round between each */
    }
    CHECK(top.health == SOS_FD_HEALTH_MAX);

    SECTION("exchange deadline: conservative without a sample, RTO within its bounds after");
    sos_fd_t ok = {0};
    sos_fd_peer_t e = {0};
    CHECK(sos_fd_exchange_timeout(&ok, &s_cfg, &e) == 2000);
    sos_fd_rtt_sample(&ok, &e, 10); /* RTO 10 + 4 * 5 = 30: the floor is half an interval */
    CHECK(sos_fd_exchange_timeout(&ok, &s_cfg, &e) == 500);
    sos_fd_config_t quick = {.interval_ms = 100, .exchange_timeout_ms = 500, .max_failures = 3};
    CHECK(sos_fd_exchange_timeout(&ok, &quick, &e) == SOS_FD_RTO_FLOOR);
    sos_fd_peer_t slow = {0};
    sos_fd_rtt_sample(&ok, &slow, 900); /* RTO 900 + 4 * 450: above the default, held to it */
    CHECK(sos_fd_exchange_timeout(&ok, &s_cfg, &slow) == 2000);
    sos_fd_peer_t mid = {0};
    sos_fd_rtt_sample(&ok, &mid, 400);
    CHECK(mid.srtt_ms == 400 && mid.rttvar_ms == 200);
    CHECK(sos_fd_exchange_timeout(&ok, &s_cfg, &mid) == 1200);
    sos_fd_rtt_sample(&ok, &mid, 200); /* rttvar (3 * 200 + 200) / 4, srtt (7 * 400 + 200) / 8 */
    CHECK(mid.rttvar_ms == 200 && mid.srtt_ms == 375);

    SECTION("a new connection: the conservative deadline, shorter to a suspect");
    sos_fd_t cn = {0};
    sos_fd_peer_t fresh = {0}, sus = {0};
    sos_fd_named(&sus, a, 1, 0, 0, 1000);
    CHECK(sos_fd_connect_timeout(&cn, &s_cfg, &fresh) == 2000);
    CHECK(sos_fd_connect_timeout(&cn, &s_cfg, &sus) == SOS_FD_RTO_FLOOR); /* no sample */
    sos_fd_rtt_sample(&cn, &fresh, 40); /* RTO_all 40 + 4 * 20 = 120: 4 of them */
    CHECK(sos_fd_connect_timeout(&cn, &s_cfg, &sus) == 480);
    CHECK(sos_fd_connect_timeout(&cn, &s_cfg, &fresh) == 2000);
    sos_fd_rtt_sample(&cn, &fresh, 900); /* slow answers: held to the conservative one */
    CHECK(sos_fd_connect_timeout(&cn, &s_cfg, &sus) == 2000);
    cn.health = 1;
    CHECK(sos_fd_connect_timeout(&cn, &s_cfg, &sus) == 4000);

    SECTION(
        "a helper's wait for a probe's target: its RTO, else a suspect's connect and the floor");
    sos_fd_t hp = {0};
    sos_fd_peer_t unknown = {0}, known = {0};
    /*  No round trip at all: 100 ms to connect, the RTO floor of I / 2 = 500 ms, within E */
    CHECK(sos_fd_reach_timeout(&hp, &s_cfg, &unknown) == SOS_FD_RTO_FLOOR + 500);
    sos_fd_rtt_sample(&hp, &known, 40); /* RTO_all and the target's RTO 120 ms */
    CHECK(sos_fd_reach_timeout(&hp, &s_cfg, &known) == 500); /* its exchange deadline */
    CHECK(sos_fd_reach_timeout(&hp, &s_cfg, &unknown) == 480 + 500);
    sos_fd_rtt_sample(&hp, &known, 3000); /* slow everywhere: never past E */
    CHECK(sos_fd_reach_timeout(&hp, &s_cfg, &unknown) == 2000);
    hp.health = 1;
    CHECK(sos_fd_reach_timeout(&hp, &s_cfg, &unknown) == 4000);

    SECTION("genesis backoff doubles per failure up to a minute");
    CHECK(sos_fd_genesis_backoff(&s_cfg, 1) == 1000);
    CHECK(sos_fd_genesis_backoff(&s_cfg, 2) == 2000);
    CHECK(sos_fd_genesis_backoff(&s_cfg, 4) == 8000);
    CHECK(sos_fd_genesis_backoff(&s_cfg, 40) == 60000);

    SECTION("refutation: not of an older record, at most one per interval");
    sos_fd_t me = {0};
    CHECK(sos_fd_refute(&me, &s_cfg, 4, 5, false, 50000) == SOS_FD_REFUTE_OLD);
    CHECK(sos_fd_refute(&me, &s_cfg, 5, 5, true, 50000) == SOS_FD_REFUTE_LIMITED);
    CHECK(sos_fd_refute(&me, &s_cfg, 5, 5, false, 50000) == SOS_FD_REFUTE);
    CHECK(sos_fd_refute(&me, &s_cfg, 6, 6, false, 50999) == SOS_FD_REFUTE_LIMITED);
    CHECK(sos_fd_refute(&me, &s_cfg, 6, 6, false, 51000) == SOS_FD_REFUTE);
    SECTION("a refutation is a sign of our own slowness: health rises, once per round");
    CHECK(me.health == 1 && me.lagging); /* two refutations, no round between: one rise */
    me.health = 0;
    me.lagging = false;
    CHECK(sos_fd_refute(&me, &s_cfg, 7, 7, false, 52000) == SOS_FD_REFUTE);
    CHECK(me.health == 1 && me.lagging && me.health_mono == 52000);
    CHECK(sos_fd_lag(&me, 5000, 1000, 52100)); /* late in the same round: no second rise */
    CHECK(me.health == 1);
    CHECK(sos_fd_refute(&me, &s_cfg, 7, 7, false, 52100) == SOS_FD_REFUTE_LIMITED);
    CHECK(me.health == 1); /* a refutation not sent is no sign */
    SECTION("a peer saved by a helper (sos_fd_doubt): health rises as for a late timer");
    sos_fd_t saved = {0};
    sos_fd_doubt(&saved, 60000);
    sos_fd_doubt(&saved, 60100);
    CHECK(saved.health == 1 && saved.lagging);
    sos_fd_round(&saved, &s_cfg, 61000); /* a round on time ends the lag */
    sos_fd_doubt(&saved, 61100);
    CHECK(saved.health == 2);
    sos_fd_t zero = {0};
    CHECK(sos_fd_refute(&zero, &s_cfg, 1, 1, false, 0) == SOS_FD_REFUTE);
    CHECK(sos_fd_refute(&zero, &s_cfg, 1, 1, false, 10) == SOS_FD_REFUTE_LIMITED);

    SECTION("a scripted run: a peer dies, two others confirm, it is removed in time");
    sos_fd_t node = {0};
    sos_fd_peer_t dead = {0};
    uint64_t removed_at = 0;
    for (uint64_t t = 0; t <= 20000 && !removed_at; t += 250) {
        if (t % 1000 == 0) {
            sos_fd_round(&node, &s_cfg, t + 1);
            if (t >= 3000)
                sos_fd_failure(&node, &dead, true, false, 2, t + 1);
            if (t == 4000)
                sos_fd_named(&dead, a, 2, 0, 0, t + 1);
            if (t == 5000)
                sos_fd_named(&dead, b, 2, 0, 0, t + 1);
        }
        sos_fd_tick(&node, 250, t + 1);
        if (sos_fd_removable(&node, &s_cfg, &dead, true, 50, t + 1))
            removed_at = t + 1;
    }
    CHECK(node.health == 0);
    CHECK(removed_at > 3001);
    /*  Two confirmations: T(2) = 1000 * (2 + 2 log10 50 (1 - log 3 / log 5)) ~ 3079 ms,
        below the time a refutation takes to get here, S = (1 + log_5 50) * 1000 ~ 3431 ms
        (no round trip measured). */
    CHECK(removed_at == 3001 + 3500);
    return test_done("test_core_fd");
}
