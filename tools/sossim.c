/*  sossim.c: the deterministic simulator of a sosnode network: N nodes in one process, on
    virtual time and a seeded virtual network, run through a scenario with invariants checked. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sos_identity.h"
#include "sos_log.h"
#include "sossim.h"

static const char *s_usage =
    "usage: sossim SCENARIO [options]\n"
    "\n"
    "Runs N simulated sosnode nodes in one process, on virtual time and a virtual network\n"
    "whose latency, loss, duplication, reordering and partitions all come from one seed,\n"
    "through a scenario, and checks the invariants at every step:\n"
    "  - no node takes back a worker it removed by stale gossip (a record not newer than\n"
    "    the removal);\n"
    "  - no genesis node is ever removed;\n"
    "  - every live honest node ends with the same directory once the network has healed;\n"
    "  - no live node is removed at a loss rate up to 2 %, nor a slow node whose delays\n"
    "    stay within --slow-ms (default one interval);\n"
    "  - room ownership is the same everywhere after convergence, and under attack no node\n"
    "    loses a room it has held for longer than the spread bound (60 s).\n"
    "  - with --active-view, no node holds more links than its view's cap nor more\n"
    "    short-lived connections than 4.\n"
    "The same seed gives the same run byte for byte: the last line is a digest of every\n"
    "delivery, removal and check. A failing run prints its seed and the command that\n"
    "replays it, and exits 1.\n"
    "\n"
    "Scenarios (each starts with N nodes joining through the genesis nodes):\n"
    "  join       rounds until every node lists every node\n"
    "  room       a new room spreads; two nodes create one room hash at once\n"
    "  kill       a third of the nodes crash: rounds until everyone has removed them\n"
    "  partition  the network splits in two for --partition-rounds, then heals\n"
    "  churn      nodes crash, restart (losing what they had not committed) and join\n"
    "  loss       --loss (default 5 %) on every message after the join\n"
    "  slow       a tenth of the nodes take up to --slow-ms longer for everything\n"
    "  hostile    N/20 hostile peers flood junk, forge records, replay stale ones of\n"
    "             removed nodes, and claim a room held past the spread bound\n"
    "\n"
    "Options:\n"
    "  --nodes N             simulated nodes (100)\n"
    "  --seed S              the run's seed (1)\n"
    "  --genesis G           genesis nodes (3)\n"
    "  --rounds R            rounds the scenario may take to settle (200)\n"
    "  --interval MS         the gossip interval in virtual ms (1000)\n"
    "  --fanout F            peers per round and per pushed change (3, as sosnode)\n"
    "  --loss P              message loss, 0..1 (0; the loss scenario: 0.05)\n"
    "  --dup P               message duplication, 0..1 (0.01)\n"
    "  --latency MIN,MAX     one-way latency in ms, uniform (5,80)\n"
    "  --join-window R       rounds over which the non-genesis nodes join (10)\n"
    "  --partition-rounds R  how long the partition lasts (30)\n"
    "  --slow-ms MS          the slow nodes' extra delay, at most (the interval)\n"
    "  --max-failures F      failed exchanges before removal (5, as sosnode)\n"
    "  --cheap-crypto        sign with a keyed BLAKE2b hash instead of Ed25519 (for large N;\n"
    "                        a signature still needs the signer's secret, see\n"
    "                        tools/sossim_crypto.c); nothing else changes\n"
    "  --cheap-digest        hash digests and their buckets as sums of per-origin hashes,\n"
    "                        kept at each change, instead of BLAKE2b over the whole\n"
    "                        digest: compared only for equality, they lead every node to\n"
    "                        the same choices (same digest line) at a fraction of the cost\n"
    "  --active-view         keep connections to a bounded active view of fanout + ln N\n"
    "                        peers (node/sos_core_view.h) and short-lived ones for the rest,\n"
    "                        instead of one per worker; checks that no node passes its cap\n"
    "  --max-workers W       each node's --max-workers (max(2 N + 64, 4096)); of it, a node\n"
    "                        may list without having exchanged with them a quarter plus the\n"
    "                        rest times the share of such workers its exchanges saw answer\n"
    "                        (a lower bound over the last 64; probation, as sosnode)\n"
    "  --dead-keys K         hostile: each hostile peer also sends K fresh worker keys a\n"
    "                        round, naming endpoints where nothing answers (0)\n"
    "  --probe-helpers K     peers asked to reach a peer that missed an exchange before the\n"
    "                        miss counts (PROBE_REQ, PING, PONG, PROBE_ACK; 3, as sosnode;\n"
    "                        0: off)\n"
    "  --trace               one line per round\n"
    "  -h, --help            this text\n"
    "\n"
    "Output: one \"key value\" line per figure (tools/plot_scale.py reads them).\n";

/*  The loss up to which no live node may be removed: the level the exchange loop holds
    (at 4-5 % it removes a few live nodes in a hundred over 200 rounds, most of them after
    they refuted but before the refutation reached the remover; see README, Scale). */
#define SIM_LOSS_BOUND 0.02

typedef struct {
    sim_t sim;
    uint32_t round;
    uint32_t partition_rounds;
    uint32_t slow_ms;
    int argc;
    char **argv;
    bool seed_given;
    uint64_t last_bytes;
    uint32_t conn_max; /* the most connections at one node, sampled at each round's end */
} s_run_t;

/* ------------------------------------------------------------- helpers ---- */

static uint64_t
s_bytes_total(sim_t *sim)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < sim->n_nodes; i++)
        if (!sim->nodes[i].hostile)
            b += sim->nodes[i].bytes_sent;
    return b;
}

static uint32_t
s_alive_honest(sim_t *sim)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < sim->n_nodes; i++)
        n += sim->nodes[i].alive && !sim->nodes[i].hostile;
    return n;
}

/*  The probation cap the live honest nodes' samples give them now (node/sos_core_sync.c):
    the least, the mean and the most. */
static void
s_probation_caps(sim_t *sim, uint32_t *min, double *mean, uint32_t *max)
{
    uint32_t lo = UINT32_MAX, hi = 0, n = 0;
    double sum = 0;
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        sim_node_t *nd = &sim->nodes[i];
        if (!nd->alive || nd->hostile)
            continue;
        uint32_t cap = sos_probation_cap(sim->mctx.max_workers, &nd->probation);
        lo = cap < lo ? cap : lo;
        hi = cap > hi ? cap : hi;
        sum += cap;
        n++;
    }
    *min = n ? lo : 0;
    *mean = n ? sum / n : 0;
    *max = hi;
}

/*  One round of virtual time; returns the bytes the honest nodes sent in it, per live node. */
static double
s_step(s_run_t *r)
{
    sim_t *sim = &r->sim;
    r->round++;
    sim_run_until(sim, (uint64_t)r->round * sim->o.interval_ms);
    if (sim->hostile_on)
        sim_hostile_round(sim);
    uint64_t b = s_bytes_total(sim);
    double per = (double)(b - r->last_bytes) / (s_alive_honest(sim) ? s_alive_honest(sim) : 1);
    r->last_bytes = b;
    uint32_t conn = 0;
    double conn_mean = 0;
    sim_conn_now(sim, &conn, &conn_mean);
    r->conn_max = conn > r->conn_max ? conn : r->conn_max;
    if (sim->o.trace) {
        uint32_t cap_min, cap_max;
        double cap_mean;
        s_probation_caps(sim, &cap_min, &cap_mean, &cap_max);
        printf("round %u alive %u bytes/node %.0f removals %llu violations %llu conn max %u mean "
               "%.1f probation cap min %u mean %.0f refused %llu\n",
               r->round, s_alive_honest(sim), per, (unsigned long long)sim->removals,
               (unsigned long long)sim->violations, conn, conn_mean, cap_min, cap_mean,
               (unsigned long long)sim->probation_refused);
    }
    return per;
}

/*  Every live honest node lists exactly the live honest nodes (by count of workers that
    are not hostile, and the same directory hash). */
static bool
s_converged(sim_t *sim)
{
    uint32_t want = s_alive_honest(sim);
    uint8_t first[16];
    bool have = false;
    for (uint32_t i = 0; i < sim->n_nodes; i++)
        if (!sim->nodes[i].ever_started)
            return false; /* a join still to come: the ones started may agree already */
    /*  Counts first (cheap): at 10,000 nodes hashing every directory every round would
        cost more than the round. */
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        sim_node_t *n = &sim->nodes[i];
        uint64_t workers = 0;
        if (!n->alive || n->hostile || sim_node_counts(sim, i, &workers) != SOS_OK)
            continue;
        if (workers < want)
            return false;
    }
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        sim_node_t *n = &sim->nodes[i];
        if (!n->alive || n->hostile)
            continue;
        uint8_t h[16];
        uint64_t workers = 0;
        sim_node_dir_hash(sim, i, h, &workers, NULL);
        if (workers != want)
            return false;
        if (have && memcmp(h, first, 16) != 0)
            return false;
        memcpy(first, h, 16);
        have = true;
    }
    return true;
}

/*  Run until s_converged, at most max rounds: the rounds it took, or -1. */
static int
s_settle(s_run_t *r, uint32_t max, double *bytes)
{
    double sum = 0;
    for (uint32_t k = 1; k <= max; k++) {
        sum += s_step(r);
        if (s_converged(&r->sim)) {
            if (bytes)
                *bytes = sum / k;
            return (int)k;
        }
    }
    if (bytes)
        *bytes = sum / max;
    return -1;
}

/*  Bytes per node per round over k quiet rounds. */
static double
s_at_rest(s_run_t *r, uint32_t k)
{
    double sum = 0;
    for (uint32_t i = 0; i < k; i++)
        sum += s_step(r);
    return sum / k;
}

static void
s_add_nodes(s_run_t *r)
{
    sim_t *sim = &r->sim;
    for (uint32_t i = 0; i < sim->o.nodes; i++)
        if (sim_node_add(sim, i < sim->o.genesis, false) == UINT32_MAX) {
            fprintf(stderr, "sossim: out of memory\n");
            exit(2);
        }
}

/*  The join: genesis nodes at once, the others at random times over the join window.
    Returns the rounds until every node lists every node, from the start. */
static int
s_join(s_run_t *r)
{
    sim_t *sim = &r->sim;
    s_add_nodes(r);
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        if (sim->nodes[i].genesis)
            sim_node_start(sim, i);
        else
            sim_node_start_at(
                sim, i,
                1 + sim_rng_below(&sim->rng, (uint64_t)sim->o.join_window * sim->o.interval_ms));
    }
    double changing = 0;
    int rounds = s_settle(r, sim->o.join_window + sim->o.rounds, &changing);
    printf("join.rounds_full_membership %d\n", rounds);
    printf("join.rounds_after_last_join %d\n", rounds < 0 ? -1 : rounds - (int)sim->o.join_window);
    printf("join.log2_nodes %.2f\n", log2((double)sim->o.nodes));
    printf("bytes_per_node_round.changing %.0f\n", changing);
    if (rounds < 0)
        sim_violation(sim, "the join did not converge in %u rounds",
                      sim->o.join_window + sim->o.rounds);
    return rounds;
}

static uint32_t
s_random_node(sim_t *sim, bool alive, bool genesis_ok)
{
    for (int tries = 0; tries < 10000; tries++) {
        uint32_t i = (uint32_t)sim_rng_below(&sim->rng, sim->n_nodes);
        sim_node_t *n = &sim->nodes[i];
        if (n->hostile || n->alive != alive || (!genesis_ok && n->genesis))
            continue;
        return i;
    }
    return UINT32_MAX;
}

/* ---------------------------------------------------------- ownership ---- */

typedef struct {
    char hash[8][SOS_ROOMHASH_LEN + 1];
    uint32_t owner[8];
    int n;
    bool differ;
    bool collect;
    sim_t *sim;
    uint64_t hostile_held; /* rooms held under a hostile owner */
} s_owners_t;

static void
s_on_room(void *arg, const char *room_hash, uint32_t origin)
{
    s_owners_t *o = arg;
    /*  A claim by a hostile peer that some honest nodes took (ones that had not held the
        room past the spread bound) is what an attack may do; it is counted, not compared. */
    if (origin != UINT32_MAX && o->sim->nodes[origin].hostile) {
        o->hostile_held++;
        return;
    }
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->hash[i], room_hash) == 0) {
            if (o->owner[i] != origin)
                o->differ = true;
            return;
        }
    if (o->collect && o->n < 8) {
        snprintf(o->hash[o->n], sizeof o->hash[o->n], "%s", room_hash);
        o->owner[o->n++] = origin;
    } else if (!o->collect)
        o->differ = true; /* a room the first node does not have */
}

/*  True if every live honest node holds the same rooms with the same owners. */
static bool
s_unique_owners(sim_t *sim, uint64_t *hostile_held)
{
    s_owners_t o = {.collect = true, .sim = sim};
    bool first = true;
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        if (!sim->nodes[i].alive || sim->nodes[i].hostile)
            continue;
        sim_node_rooms(sim, i, s_on_room, &o);
        if (first)
            o.collect = false;
        first = false;
    }
    if (hostile_held)
        *hostile_held = o.hostile_held;
    return !o.differ;
}

typedef struct {
    const char *hash;
    bool found;
} s_find_t;

static void
s_on_find(void *arg, const char *room_hash, uint32_t origin)
{
    (void)origin;
    s_find_t *f = arg;
    if (strcmp(f->hash, room_hash) == 0)
        f->found = true;
}

static bool
s_everyone_has(sim_t *sim, const char *hash)
{
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        if (!sim->nodes[i].alive || sim->nodes[i].hostile)
            continue;
        s_find_t f = {hash, false};
        sim_node_rooms(sim, i, s_on_find, &f);
        if (!f.found)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------- scenarios ---- */

static void
s_scn_join(s_run_t *r)
{
    if (s_join(r) >= 0)
        printf("bytes_per_node_round.rest %.0f\n", s_at_rest(r, 10));
}

static void
s_scn_room(s_run_t *r)
{
    sim_t *sim = &r->sim;
    if (s_join(r) < 0)
        return;
    printf("bytes_per_node_round.rest %.0f\n", s_at_rest(r, 5));
    uint32_t creator = s_random_node(sim, true, true);
    sim_node_create_room(sim, creator, "00000000000a11ce", sim->now);
    int spread = -1;
    for (uint32_t k = 1; k <= sim->o.rounds; k++) {
        s_step(r);
        if (s_everyone_has(sim, "00000000000a11ce")) {
            spread = (int)k;
            break;
        }
    }
    printf("room.rounds_to_everyone %d\n", spread);
    if (spread < 0)
        sim_violation(sim, "a new room did not reach every node in %u rounds", sim->o.rounds);
    /*  Two honest nodes create the same hash in the same round: one owner, everywhere. */
    uint32_t a = s_random_node(sim, true, true), b = s_random_node(sim, true, true);
    sim_node_create_room(sim, a, "00000000000c0f11", sim->now);
    if (b != a)
        sim_node_create_room(sim, b, "00000000000c0f11", sim->now + 1);
    int settled = -1;
    for (uint32_t k = 1; k <= sim->o.rounds; k++) {
        s_step(r);
        if (s_everyone_has(sim, "00000000000c0f11") && s_unique_owners(sim, NULL)) {
            settled = (int)k;
            break;
        }
    }
    printf("room.conflict_rounds_to_one_owner %d\n", settled);
    if (settled < 0)
        sim_violation(sim, "room ownership is not unique after %u rounds", sim->o.rounds);
}

static void
s_scn_kill(s_run_t *r)
{
    sim_t *sim = &r->sim;
    if (s_join(r) < 0)
        return;
    uint32_t kill = (sim->o.nodes - sim->o.genesis) / 3;
    for (uint32_t k = 0; k < kill; k++) {
        uint32_t v = s_random_node(sim, true, false);
        if (v != UINT32_MAX)
            sim_node_crash(sim, v);
    }
    printf("kill.killed %u\n", kill);
    double bytes = 0;
    int rounds = s_settle(r, sim->o.rounds, &bytes);
    printf("kill.rounds_until_removed_everywhere %d\n", rounds);
    printf("bytes_per_node_round.removing %.0f\n", bytes);
    if (rounds < 0)
        sim_violation(sim, "the dead were not removed everywhere in %u rounds", sim->o.rounds);
    if (sim->false_removals)
        sim_violation(sim, "%llu removals of live nodes without loss",
                      (unsigned long long)sim->false_removals);
}

static void
s_scn_partition(s_run_t *r)
{
    sim_t *sim = &r->sim;
    if (s_join(r) < 0)
        return;
    for (uint32_t i = 0; i < sim->n_nodes; i++)
        sim->nodes[i].group = (uint8_t)(i % 2);
    sim->partitioned = true;
    for (uint32_t k = 0; k < r->partition_rounds; k++)
        s_step(r);
    printf("partition.removals_during %llu\n", (unsigned long long)sim->removals);
    sim->partitioned = false;
    int rounds = s_settle(r, sim->o.rounds, NULL);
    printf("partition.rounds_to_heal %d\n", rounds);
    if (rounds < 0)
        sim_violation(sim, "directories still differ %u rounds after the heal", sim->o.rounds);
}

static void
s_scn_churn(s_run_t *r)
{
    sim_t *sim = &r->sim;
    if (s_join(r) < 0)
        return;
    uint32_t crashes = 0, restarts = 0, joins = 0;
    double p = sim->o.nodes / 100.0 * 0.3;
    for (uint32_t k = 0; k < sim->o.rounds / 2; k++) {
        for (double q = p; q > 0; q -= 1.0) {
            if (sim_rng_chance(&sim->rng, q > 1 ? 1 : q)) {
                uint32_t v = s_random_node(sim, true, false);
                if (v != UINT32_MAX) {
                    sim_node_crash(sim, v);
                    crashes++;
                }
            }
            if (sim_rng_chance(&sim->rng, q > 1 ? 1 : q)) {
                uint32_t v = s_random_node(sim, false, false);
                if (v != UINT32_MAX) {
                    sim_node_start(sim, v);
                    restarts++;
                }
            }
            if (sim_rng_chance(&sim->rng, (q > 1 ? 1 : q) / 3)) {
                uint32_t v = sim_node_add(sim, false, false);
                if (v != UINT32_MAX) {
                    sim_node_start(sim, v);
                    joins++;
                }
            }
        }
        s_step(r);
    }
    printf("churn.crashes %u\nchurn.restarts %u\nchurn.joins %u\n", crashes, restarts, joins);
    int rounds = s_settle(r, sim->o.rounds, NULL);
    printf("churn.rounds_to_settle %d\n", rounds);
    if (rounds < 0)
        sim_violation(sim, "directories still differ %u rounds after the churn", sim->o.rounds);
}

static void
s_scn_loss(s_run_t *r, double loss)
{
    sim_t *sim = &r->sim;
    if (s_join(r) < 0)
        return;
    sim->o.loss = loss;
    uint64_t before = sim->false_removals;
    for (uint32_t k = 0; k < sim->o.rounds; k++)
        s_step(r);
    uint64_t fr = sim->false_removals - before;
    printf("loss.rate %.3f\nloss.false_removals %llu\n", loss, (unsigned long long)fr);
    if (loss <= SIM_LOSS_BOUND && fr)
        sim_violation(sim, "%llu live nodes removed at %.0f %% loss", (unsigned long long)fr,
                      loss * 100);
    sim->o.loss = 0;
    int rounds = s_settle(r, sim->o.rounds, NULL);
    printf("loss.rounds_to_settle_after %d\n", rounds);
    if (rounds < 0)
        sim_violation(sim, "directories still differ %u rounds after the loss ended",
                      sim->o.rounds);
}

static void
s_scn_slow(s_run_t *r)
{
    sim_t *sim = &r->sim;
    s_add_nodes(r);
    uint32_t slow = 0;
    for (uint32_t i = sim->o.genesis; i < sim->n_nodes; i += 10) {
        sim->nodes[i].slow_ms = r->slow_ms;
        slow++;
    }
    for (uint32_t i = 0; i < sim->n_nodes; i++)
        sim_node_start_at(
            sim, i,
            sim->nodes[i].genesis
                ? 0
                : 1 + sim_rng_below(&sim->rng, (uint64_t)sim->o.join_window * sim->o.interval_ms));
    int rounds = s_settle(r, sim->o.join_window + sim->o.rounds, NULL);
    printf("slow.nodes %u\nslow.extra_ms %u\nslow.rounds_full_membership %d\n", slow, r->slow_ms,
           rounds);
    for (uint32_t k = 0; k < sim->o.rounds; k++)
        s_step(r);
    printf("slow.false_removals %llu\n", (unsigned long long)sim->false_removals);
    if (rounds < 0)
        sim_violation(sim, "the join with slow nodes did not converge");
    if (sim->false_removals)
        sim_violation(sim, "%llu slow but live nodes removed",
                      (unsigned long long)sim->false_removals);
}

static void
s_scn_hostile(s_run_t *r)
{
    sim_t *sim = &r->sim;
    if (s_join(r) < 0)
        return;
    uint32_t owner = s_random_node(sim, true, true);
    snprintf(sim->claim_hash, sizeof sim->claim_hash, "00000000000b0a75");
    sim->claim_created_at = sim->now;
    sim_node_create_room(sim, owner, sim->claim_hash, sim->now);
    s_step(r);
    /*  The hostile peers capture records of nodes that will die, to replay them later. */
    uint32_t victims = sim->o.nodes / 10 ? sim->o.nodes / 10 : 1;
    for (uint32_t k = 0; k < victims && sim->n_captured < 64; k++) {
        uint32_t v = s_random_node(sim, true, false);
        if (v == UINT32_MAX || v == owner)
            continue;
        sim_node_t *n = &sim->nodes[v];
        sim->captured[sim->n_captured] = malloc(n->self.wire_len);
        if (!sim->captured[sim->n_captured])
            continue;
        memcpy(sim->captured[sim->n_captured], n->self.wire, n->self.wire_len);
        sim->captured_len[sim->n_captured++] = n->self.wire_len;
        sim_node_crash(sim, v);
    }
    /*  Every node holds the room past the spread bound before the attack starts. */
    for (uint32_t k = 0; k < sim->o.rounds && !s_everyone_has(sim, sim->claim_hash); k++)
        s_step(r);
    uint32_t wait = (uint32_t)(SOS_ROOM_SPREAD_MS / sim->o.interval_ms) + 5;
    for (uint32_t k = 0; k < wait; k++)
        s_step(r);
    uint32_t n_hostile =
        sim->o.hostile ? sim->o.hostile : (sim->o.nodes / 20 ? sim->o.nodes / 20 : 1);
    for (uint32_t k = 0; k < n_hostile; k++) {
        uint32_t h = sim_node_add(sim, false, true);
        if (h != UINT32_MAX)
            sim_node_start(sim, h);
    }
    uint32_t cap_min, cap_max;
    double cap_mean;
    s_probation_caps(sim, &cap_min, &cap_mean, &cap_max);
    uint64_t refused_before = sim->probation_refused;
    printf("hostile.probation_cap_mean_before %.0f\n", cap_mean);
    sim->hostile_on = true;
    for (uint32_t k = 0; k < sim->o.rounds; k++)
        s_step(r);
    sim->hostile_on = false;
    /*  With --dead-keys: the fresh keys sent, what probation refused of them, and the cap the
        honest nodes' samples give them at the attack's end. */
    s_probation_caps(sim, &cap_min, &cap_mean, &cap_max);
    printf("hostile.dead_keys_sent %llu\nhostile.probation_refused %llu\n",
           (unsigned long long)sim->dead_keys_sent,
           (unsigned long long)(sim->probation_refused - refused_before));
    printf("hostile.probation_cap_at_end min %u mean %.0f max %u\n", cap_min, cap_mean, cap_max);
    uint64_t dropped = 0;
    for (uint32_t i = 0; i < sim->n_nodes; i++)
        dropped += sim->nodes[i].dropped_bad;
    printf("hostile.peers %u\nhostile.messages %llu\nhostile.dropped_bad %llu\n", n_hostile,
           (unsigned long long)sim->hostile_msgs, (unsigned long long)dropped);
    int rounds = s_settle(r, sim->o.rounds, NULL);
    printf("hostile.rounds_to_settle_after %d\n", rounds);
    if (rounds < 0)
        sim_violation(sim, "honest directories differ %u rounds after the attack", sim->o.rounds);
    uint64_t taken = 0;
    if (!s_unique_owners(sim, &taken))
        sim_violation(sim, "room ownership differs between honest nodes after the attack");
    printf("hostile.rooms_held_under_hostile_claims %llu\n", (unsigned long long)taken);
}

/* ------------------------------------------------------------- report ---- */

static void
s_report(s_run_t *r)
{
    sim_t *sim = &r->sim;
    uint64_t store = 0, pool = 0, side = 0;
    for (uint32_t i = 0; i < sim->n_nodes; i++) {
        sim_node_t *n = &sim->nodes[i];
        uint64_t used = 0;
        sos_store_usage(n->store, NULL, &used);
        store += used;
        side += sizeof *n + n->cap_peers * sizeof(sim_peer_t) + n->cap_view * sizeof(uint32_t) +
                n->n_in_view_words * sizeof(uint64_t) + n->cap_dig_at * sizeof(uint64_t) +
                (n->cap_dig_at + 63) / 64 * sizeof(uint64_t) + n->sums_nb * 16 +
                (n->sums_nb + 63) / 64 * sizeof(uint64_t) + (n->fine ? 1024 * 16 : 0);
    }
    /*  The simulator's own tables, once for all nodes: ids in order, prefixes, one digest. */
    side += sim->cap_nodes * (sizeof(uint32_t) + sizeof(uint16_t) + SOS_NODEID_BYTES) +
            sim->cap_dig * (sizeof(uint32_t) + sizeof(uint64_t));
    uint64_t records = 0, record_bytes = 0;
    sos_store_pool_stats(sim->pool, &records, &record_bytes, &pool);
    uint32_t n = sim->n_nodes ? sim->n_nodes : 1;
    printf("memory_per_node.store %llu\n", (unsigned long long)(store / n));
    printf("memory_per_node.shared_records %llu\n", (unsigned long long)(pool / n));
    printf("memory_per_node.total %llu\n", (unsigned long long)((store + pool + side) / n));
    printf("pool.records %llu\npool.record_bytes %llu\n", (unsigned long long)records,
           (unsigned long long)record_bytes);
    printf("removals %llu\nfalse_removals %llu\n", (unsigned long long)sim->removals,
           (unsigned long long)sim->false_removals);
    printf("removals_heard %llu\n", (unsigned long long)sim->removals_heard);
    printf("digests_by_bucket %llu\n", (unsigned long long)sim->digests_by_bucket);
    if (sim->digests_pieces) /* only with buckets too large for one answer */
        printf("digests_pieces %llu\n", (unsigned long long)sim->digests_pieces);
    printf("exchanges.again %llu\nexchanges.failed %llu\nexchanges.replies_late %llu\n",
           (unsigned long long)sim->exchanges_again, (unsigned long long)sim->exchanges_failed,
           (unsigned long long)sim->replies_late);
    printf("probation_refused %llu\n", (unsigned long long)sim->probation_refused);
    /*  Probation's measure (node/sos_core_sync.c): the samples all nodes took, and the cap
        it gives the live honest nodes now. */
    uint32_t cap_min, cap_max;
    double cap_mean;
    s_probation_caps(sim, &cap_min, &cap_mean, &cap_max);
    printf("probation.samples_answered %llu\nprobation.samples_failed %llu\n",
           (unsigned long long)sim->probation_answered, (unsigned long long)sim->probation_failed);
    printf("probation.cap_min %u\nprobation.cap_mean %.0f\nprobation.cap_max %u\n", cap_min,
           cap_mean, cap_max);
    printf("probes.sent %llu\nprobes.saves %llu\nprobes.helped %llu\nprobes.refused %llu\n",
           (unsigned long long)sim->probes_sent, (unsigned long long)sim->probe_saves,
           (unsigned long long)sim->probes_helped, (unsigned long long)sim->probes_refused);
    printf("dropped.loss %llu\ndropped.partition %llu\ndropped.to_dead %llu\n",
           (unsigned long long)sim->dropped_loss, (unsigned long long)sim->dropped_partition,
           (unsigned long long)sim->dropped_dead);
    /*  Connections: the most at one node over the run and the mean now, and with an active
        view how its links came and went. */
    uint32_t conn_now = 0;
    double conn_mean = 0;
    sim_conn_now(sim, &conn_now, &conn_mean);
    uint32_t conn_max = sim->conn_max > r->conn_max ? sim->conn_max : r->conn_max;
    printf("conn.active_view %d\nconn.max_at_a_node %u\nconn.mean_per_node %.1f\n",
           sim->o.active_view ? 1 : 0, conn_max, conn_mean);
    if (sim->o.active_view)
        printf("conn.cap_max %u\nconn.short_max %u\nlinks.opened %llu\nlinks.refused %llu\n"
               "links.evicted %llu\nlinks.failed %llu\nshort.opened %llu\nshort.refused %llu\n",
               sim->conn_cap_max, SIM_SHORT_MAX, (unsigned long long)sim->links_opened,
               (unsigned long long)sim->links_refused, (unsigned long long)sim->links_evicted,
               (unsigned long long)sim->links_failed, (unsigned long long)sim->shorts_opened,
               (unsigned long long)sim->shorts_refused);
    printf("rounds %u\nviolations %llu\n", r->round, (unsigned long long)sim->violations);
    uint8_t d[16];
    char hex[33];
    crypto_generichash_final(&sim->run, d, sizeof d);
    printf("digest %s\n", sos_hex(hex, d, sizeof d));
    if (sim->violations) {
        printf("FAIL seed %llu: %s\n", (unsigned long long)sim->o.seed, sim->first_violation);
        printf("replay: sossim");
        for (int i = 1; i < r->argc; i++)
            printf(" %s", r->argv[i]);
        if (!r->seed_given)
            printf(" --seed %llu", (unsigned long long)sim->o.seed);
        printf("\n");
    }
}

/* --------------------------------------------------------------- main ---- */

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},
        {"genesis", required_argument, 0, 'g'},
        {"rounds", required_argument, 0, 'r'},
        {"interval", required_argument, 0, 'i'},
        {"fanout", required_argument, 0, 'f'},
        {"loss", required_argument, 0, 'l'},
        {"dup", required_argument, 0, 'd'},
        {"latency", required_argument, 0, 'L'},
        {"join-window", required_argument, 0, 'j'},
        {"partition-rounds", required_argument, 0, 'p'},
        {"slow-ms", required_argument, 0, 'S'},
        {"max-failures", required_argument, 0, 'F'},
        {"hostile", required_argument, 0, 'H'},
        {"cheap-crypto", no_argument, 0, 'c'},
        {"cheap-digest", no_argument, 0, 'D'},
        {"trace", no_argument, 0, 't'},
        {"active-view", no_argument, 0, 'A'},
        {"probe-helpers", required_argument, 0, 'P'},
        {"max-workers", required_argument, 0, 'W'},
        {"dead-keys", required_argument, 0, 'K'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static s_run_t run;
    sim_opts_t o = {
        .nodes = 100,
        .genesis = 3,
        .seed = 1,
        .rounds = 200,
        .interval_ms = 1000,
        .fanout = 3, /* sosnode's default */
        .dup = 0.01,
        .lat_min_ms = 5,
        .lat_max_ms = 80,
        .join_window = 10,
        .max_failures = 5,
        .probe_helpers = 3, /* sosnode's default */
    };
    double loss = -1;
    run.partition_rounds = 30;
    run.slow_ms = 0;
    run.argc = argc;
    run.argv = argv;
    if (argc < 2 || argv[1][0] == '-') {
        fputs(s_usage, argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
                           ? stdout
                           : stderr);
        return argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) ? 0 : 2;
    }
    o.scenario = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.nodes = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o.seed = strtoull(optarg, NULL, 10);
            run.seed_given = true;
            break;
        case 'g':
            o.genesis = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o.rounds = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            o.interval_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            o.fanout = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'l':
            loss = strtod(optarg, NULL);
            break;
        case 'd':
            o.dup = strtod(optarg, NULL);
            break;
        case 'L':
            if (sscanf(optarg, "%u,%u", &o.lat_min_ms, &o.lat_max_ms) != 2)
                o.lat_max_ms = 0;
            break;
        case 'j':
            o.join_window = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            run.partition_rounds = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            run.slow_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'F':
            o.max_failures = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'H':
            o.hostile = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o.cheap_crypto = true;
            break;
        case 'D':
            o.cheap_digest = true;
            break;
        case 't':
            o.trace = true;
            break;
        case 'A':
            o.active_view = true;
            break;
        case 'P':
            o.probe_helpers = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'W':
            o.max_workers = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'K':
            o.dead_keys = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            fputs(s_usage, stdout);
            return 0;
        default:
            fputs(s_usage, stderr);
            return 2;
        }
    }
    if (o.nodes < 4 || o.genesis < 1 || o.genesis > o.nodes || o.interval_ms < 10 || o.fanout < 1 ||
        o.lat_max_ms < o.lat_min_ms || o.join_window < 1 || o.rounds < 1 || o.dup < 0 ||
        o.dup > 1 || loss > 1 || o.probe_helpers > SOS_FD_PROBE_HELPERS_MAX ||
        (o.max_workers && o.max_workers < 4) || optind != argc) {
        fprintf(stderr, "sossim: bad options (sossim --help)\n");
        return 2;
    }
    if (!run.slow_ms)
        run.slow_ms = o.interval_ms;
    if (loss >= 0 && strcmp(o.scenario, "loss") != 0)
        o.loss = loss;
    setvbuf(stdout, NULL, _IOLBF, 0); /* --trace lines as they come */
    if (sos_crypto_init() != SOS_OK)
        return 2;
    sos_log_set_level(SOS_LOG_ERROR); /* the nodes' notices would drown the figures */
    if (sim_init(&run.sim, &o) != SOS_OK)
        return 2;
    sim_crypto_cheap(&run.sim, o.cheap_crypto);
    printf("sossim %s nodes %u genesis %u seed %llu interval_ms %u fanout %u crypto %s\n",
           o.scenario, o.nodes, o.genesis, (unsigned long long)o.seed, o.interval_ms, o.fanout,
           o.cheap_crypto ? "cheap" : "ed25519");
    if (strcmp(o.scenario, "join") == 0)
        s_scn_join(&run);
    else if (strcmp(o.scenario, "room") == 0)
        s_scn_room(&run);
    else if (strcmp(o.scenario, "kill") == 0)
        s_scn_kill(&run);
    else if (strcmp(o.scenario, "partition") == 0)
        s_scn_partition(&run);
    else if (strcmp(o.scenario, "churn") == 0)
        s_scn_churn(&run);
    else if (strcmp(o.scenario, "loss") == 0)
        s_scn_loss(&run, loss >= 0 ? loss : 0.05);
    else if (strcmp(o.scenario, "slow") == 0)
        s_scn_slow(&run);
    else if (strcmp(o.scenario, "hostile") == 0)
        s_scn_hostile(&run);
    else {
        fprintf(stderr, "sossim: unknown scenario %s (sossim --help)\n", o.scenario);
        return 2;
    }
    s_report(&run);
    int rc = run.sim.violations ? 1 : 0;
    sim_crypto_cheap(&run.sim, false);
    sim_free(&run.sim);
    return rc;
}
