/*  sos_fd.c: the failure detector's decisions (Lifeguard's suspicion with confirmations,
    local health, RFC 6298 deadlines), over state and times the caller gives. */
#include <math.h>
#include <string.h>

#include "sos_fd.h"

/*  SRTT + 4 RTTVAR (RFC 6298): a peer's, or the node's over all peers (sos_fd_t). */
#define S_RTO(x) ((x)->srtt_ms + 4 * (x)->rttvar_ms)

/*  No exchange deadline below half an interval, nor below SOS_FD_RTO_FLOOR, whatever the
    round trips say; nor above the conservative deadline. */
static uint64_t
s_rto_floor(const sos_fd_config_t *cfg)
{
    uint64_t floor = cfg->interval_ms / 2;
    floor = floor < SOS_FD_RTO_FLOOR ? SOS_FD_RTO_FLOOR : floor;
    return floor > cfg->exchange_timeout_ms ? cfg->exchange_timeout_ms : floor;
}

/*  The hops of a spread, and what one costs: an interval and a round trip as this node
    measures them, held to the conservative deadline as an exchange's is: any peer can answer
    late on purpose, and must not stretch every suspicion here without bound. */
static double
s_spread_hops(const sos_fd_config_t *cfg, uint64_t n_workers)
{
    double n = n_workers < 2 ? 2.0 : (double)n_workers;
    return log(n) / log((double)(cfg->fanout ? cfg->fanout : 1) + 1.0);
}

static uint64_t
s_hop_ms(const sos_fd_t *fd, const sos_fd_config_t *cfg)
{
    uint64_t rto = S_RTO(fd);
    rto = rto > cfg->exchange_timeout_ms ? cfg->exchange_timeout_ms : rto;
    return cfg->interval_ms + rto;
}

uint64_t
sos_fd_refute_time(const sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t n_workers)
{
    return (uint64_t)llround((1.0 + s_spread_hops(cfg, n_workers)) * (double)s_hop_ms(fd, cfg));
}

uint64_t
sos_fd_spread_time(const sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t n_workers)
{
    return (uint64_t)llround(s_spread_hops(cfg, n_workers) * (double)s_hop_ms(fd, cfg));
}

uint64_t
sos_fd_suspicion_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer,
                         uint64_t n_workers)
{
    double n = (double)n_workers;
    double c = peer->n_confirm < SOS_FD_CONFIRM_K ? peer->n_confirm : SOS_FD_CONFIRM_K;
    double f = cfg->max_failures ? (double)cfg->max_failures - 1 : 0;
    double alone = 1.0 - log(c + 1) / log(SOS_FD_CONFIRM_K + 1); /* 1 unconfirmed, 0 at K */
    double rounds = f + 2.0 * log10(n < 10 ? 10 : n) * alone;
    uint64_t t = (uint64_t)(rounds * (double)cfg->interval_ms);
    /*  Never below the conservative exchange deadline, nor below the time a refutation
        takes to get here, as measured: at short intervals a few rounds are less than a busy
        machine may deschedule a node, and the suspect needs that long to hear of it, refute,
        and have its refutation spread (30 nodes at 50 ms on two cores: a suspect refuting
        at once was removed by a node 1.2 s into a confirmed suspicion, before the new
        record reached it). The answers of such a machine come late, and the floor grows
        with them; an idle network's is about the spread time, below (F - 1) I. */
    if (t < cfg->exchange_timeout_ms)
        t = cfg->exchange_timeout_ms;
    t *= 1 + fd->health;
    /*  The floor is a measurement: late answers, this node's own lag among them (it reads
        the replies late), lengthen it already. Stretched by health as well, a busy machine's
        timeouts grew with the square of its slowness: 100 nodes on two cores, right after
        a kill, waited 12 to 21 s for a refutation that takes one or two. */
    uint64_t floor = sos_fd_refute_time(fd, cfg, n_workers);
    return t < floor ? floor : t;
}

/*  F failed exchanges, counted across up to K + 1 observers, at least one of them this
    node: a suspicion alone, from anyone, removes nobody. */
bool
sos_fd_removable(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer,
                 bool listed, uint64_t n_workers, uint64_t now_mono)
{
    if (!listed || !peer->suspect_mono || peer->fail_count == 0)
        return false;
    uint32_t c = peer->n_confirm < SOS_FD_CONFIRM_K ? peer->n_confirm : SOS_FD_CONFIRM_K;
    return peer->fail_count + c >= cfg->max_failures && now_mono >= peer->suspect_mono &&
           now_mono - peer->suspect_mono >= sos_fd_suspicion_timeout(fd, cfg, peer, n_workers);
}

uint64_t
sos_fd_exchange_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer)
{
    uint64_t t = cfg->exchange_timeout_ms;
    if (peer->srtt_ms || peer->rttvar_ms) {
        uint64_t floor = s_rto_floor(cfg);
        uint64_t rto = S_RTO(peer);
        t = rto < floor ? floor : rto > t ? t : rto;
    }
    return t * (1 + fd->health);
}

uint64_t
sos_fd_connect_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer)
{
    uint64_t t = cfg->exchange_timeout_ms;
    if (peer && peer->suspect_mono) {
        uint64_t m = 4 * S_RTO(fd);
        m = m < SOS_FD_RTO_FLOOR ? SOS_FD_RTO_FLOOR : m;
        t = m < t ? m : t;
    }
    return t * (1 + fd->health);
}

uint64_t
sos_fd_reach_timeout(const sos_fd_t *fd, const sos_fd_config_t *cfg, const sos_fd_peer_t *peer)
{
    if (peer->srtt_ms || peer->rttvar_ms)
        return sos_fd_exchange_timeout(fd, cfg, peer);
    const sos_fd_peer_t failed = {.suspect_mono = 1};
    uint64_t t = sos_fd_connect_timeout(fd, cfg, &failed) + s_rto_floor(cfg) * (1 + fd->health);
    uint64_t most = cfg->exchange_timeout_ms * (1 + fd->health);
    return t < most ? t : most;
}

/*  RFC 6298's estimator, one step. */
static void
s_rtt_step(uint64_t *srtt, uint64_t *rttvar, uint64_t r)
{
    if (!*srtt && !*rttvar) {
        *srtt = r;
        *rttvar = r / 2;
        return;
    }
    uint64_t d = r > *srtt ? r - *srtt : *srtt - r;
    *rttvar = (3 * *rttvar + d) / 4;
    *srtt = (7 * *srtt + r) / 8;
}

void
sos_fd_rtt_sample(sos_fd_t *fd, sos_fd_peer_t *peer, uint64_t r)
{
    s_rtt_step(&peer->srtt_ms, &peer->rttvar_ms, r);
    s_rtt_step(&fd->srtt_ms, &fd->rttvar_ms, r);
}

bool
sos_fd_lag(sos_fd_t *fd, uint64_t late, uint64_t period, uint64_t now_mono)
{
    if (late <= (period / 2 > 50 ? period / 2 : 50))
        return false;
    /*  At once, not at the next round: the tick that notices it is about to fail every
        exchange whose deadline passed while the loop stood still. */
    sos_fd_doubt(fd, now_mono);
    return true;
}

void
sos_fd_doubt(sos_fd_t *fd, uint64_t now_mono)
{
    if (!fd->lagging && fd->health < SOS_FD_HEALTH_MAX)
        fd->health++;
    fd->health_mono = now_mono;
    fd->lagging = true;
}

bool
sos_fd_round(sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t now)
{
    bool late = false;
    if (fd->last_round_mono) {
        uint64_t due = fd->last_round_mono + cfg->interval_ms;
        late = sos_fd_lag(fd, now > due ? now - due : 0, cfg->interval_ms, now);
    }
    fd->last_round_mono = now;
    /*  Health falls by one per second of rounds on time, not per round: at short intervals
        a loop that lags now and then would otherwise be healthy again within a few hundred
        milliseconds, between two stalls, and blame its peers for its own slowness. */
    if (!fd->lagging && fd->health > 0 && now - fd->health_mono >= SOS_FD_HEALTH_DECAY) {
        fd->health--;
        fd->health_mono = now;
    }
    fd->lagging = false;
    return late;
}

bool
sos_fd_tick(sos_fd_t *fd, uint64_t period, uint64_t now)
{
    bool late = false;
    if (fd->last_tick_mono && now > fd->last_tick_mono + period)
        late = sos_fd_lag(fd, now - fd->last_tick_mono - period, period, now);
    fd->last_tick_mono = now;
    return late;
}

void
sos_fd_clear(sos_fd_peer_t *peer)
{
    peer->fail_count = 0;
    peer->probe = false;
    peer->suspect_mono = 0;
    peer->suspect_version = 0;
    peer->n_confirm = 0;
}

sos_fd_failure_t
sos_fd_failure(const sos_fd_t *fd, sos_fd_peer_t *peer, bool listed, bool genesis,
               uint64_t held_version, uint64_t now_mono)
{
    /*  Our own loop lags: the answer may well be waiting unread. Blame nobody, unless
        others suspect it too (it was named to us, or its removal heard): then our lag is
        not the only explanation, and withholding would keep a dead node listed here for as
        long as the machine stays busy (15 s and more at 100 nodes on 2 cores). The
        suspicion timeout is still stretched by our health. */
    if (fd->health > 0 && !genesis && !peer->fail_count && !peer->suspect_mono)
        return SOS_FD_WITHHELD;
    peer->fail_count++;
    if (peer->suspect_mono || genesis || !listed)
        return SOS_FD_COUNTED;
    /*  0 is "not suspected": a clock that starts at 0 still starts a suspicion. */
    peer->suspect_mono = now_mono ? now_mono : 1;
    peer->suspect_version = held_version;
    return SOS_FD_SUSPECTED;
}

uint64_t
sos_fd_genesis_backoff(const sos_fd_config_t *cfg, uint32_t fail_count)
{
    uint64_t backoff = cfg->interval_ms;
    for (uint32_t i = 1; i < fail_count && backoff < 60000; i++)
        backoff *= 2;
    return backoff > 60000 ? 60000 : backoff;
}

void
sos_fd_named(sos_fd_peer_t *peer, const uint8_t *sender, uint64_t held_version, uint64_t age_ms,
             uint64_t cap_ms, uint64_t now_mono)
{
    if (peer->fail_count == 0)
        peer->probe = true;
    /*  Only a sender that counts dates it back: a fresh key's word costs it nothing. What one
        can gain by lying is the cap, and still no removal without F failures counted across
        observers, one of them this node. */
    uint64_t back = sender ? (age_ms < cap_ms ? age_ms : cap_ms) : 0;
    uint64_t since = now_mono > back ? now_mono - back : 1;
    if (!peer->suspect_mono) {
        /*  The suspicion starts here too; it removes nobody until we see it fail. */
        peer->suspect_mono = since;
        peer->suspect_version = held_version;
    } else if (since < peer->suspect_mono)
        peer->suspect_mono = since;
    if (!sender)
        return;
    for (uint32_t k = 0; k < peer->n_confirm; k++)
        if (memcmp(peer->confirm[k], sender, SOS_FD_CONFIRM_PREFIX) == 0)
            return;
    if (peer->n_confirm < SOS_FD_CONFIRM_K)
        memcpy(peer->confirm[peer->n_confirm++], sender, SOS_FD_CONFIRM_PREFIX);
}

uint32_t
sos_fd_suspect_age(const sos_fd_peer_t *peer, uint64_t now_mono)
{
    if (!peer->suspect_mono || now_mono <= peer->suspect_mono)
        return 0;
    uint64_t age = now_mono - peer->suspect_mono;
    return age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
}

/*  At most one refutation per interval, and none for a suspicion of an older record
    (refuted already by the record we hold now), so that refutations cannot turn into
    churn. */
sos_fd_refute_t
sos_fd_refute(sos_fd_t *fd, const sos_fd_config_t *cfg, uint64_t version, uint64_t own_version,
              bool pending, uint64_t now_mono)
{
    if (version < own_version)
        return SOS_FD_REFUTE_OLD;
    if (pending || (fd->last_refute_mono && now_mono - fd->last_refute_mono < cfg->interval_ms))
        return SOS_FD_REFUTE_LIMITED;
    fd->last_refute_mono = now_mono ? now_mono : 1;
    /*  Others found us slow enough to suspect: Lifeguard takes that as a sign of our own
        health, and so do we, before we blame anyone else for the same slowness. */
    sos_fd_doubt(fd, now_mono);
    return SOS_FD_REFUTE;
}

/* ---------------------------------------------------------- indirect probes ---- */

static sos_fd_probe_t *
s_probe_find(sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES])
{
    for (int i = 0; i < SOS_FD_PROBES_MAX; i++)
        if (probes->slot[i].used && memcmp(probes->slot[i].target, target, SOS_NODEID_BYTES) == 0)
            return &probes->slot[i];
    return NULL;
}

sos_fd_probe_t *
sos_fd_probe_begin(sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES],
                   uint64_t deadline_mono)
{
    if (s_probe_find(probes, target))
        return NULL;
    for (int i = 0; i < SOS_FD_PROBES_MAX; i++) {
        sos_fd_probe_t *p = &probes->slot[i];
        if (p->used)
            continue;
        memset(p, 0, sizeof *p);
        p->used = true;
        memcpy(p->target, target, SOS_NODEID_BYTES);
        p->deadline_mono = deadline_mono;
        return p;
    }
    return NULL;
}

bool
sos_fd_probe_add(sos_fd_probe_t *probe, const uint8_t helper[SOS_NODEID_BYTES], uint64_t req_id)
{
    if (probe->n_helpers >= SOS_FD_PROBE_HELPERS_MAX)
        return false;
    memcpy(probe->helper[probe->n_helpers], helper, SOS_NODEID_BYTES);
    probe->req_id[probe->n_helpers] = req_id;
    probe->answered[probe->n_helpers] = false;
    probe->n_helpers++;
    return true;
}

bool
sos_fd_probe_pending(const sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES])
{
    return s_probe_find((sos_fd_probes_t *)probes, target) != NULL;
}

void
sos_fd_probe_end(sos_fd_probes_t *probes, const uint8_t target[SOS_NODEID_BYTES])
{
    sos_fd_probe_t *p = s_probe_find(probes, target);
    if (p)
        memset(p, 0, sizeof *p);
}

sos_fd_ack_t
sos_fd_probe_ack(sos_fd_probes_t *probes, const uint8_t helper[SOS_NODEID_BYTES], uint64_t req_id,
                 const uint8_t target[SOS_NODEID_BYTES], bool reached,
                 uint8_t out_target[SOS_NODEID_BYTES])
{
    sos_fd_probe_t *p = s_probe_find(probes, target);
    if (!p)
        return SOS_FD_ACK_UNKNOWN;
    uint32_t k = 0;
    while (k < p->n_helpers &&
           (p->req_id[k] != req_id || memcmp(p->helper[k], helper, SOS_NODEID_BYTES) != 0))
        k++;
    if (k == p->n_helpers || p->answered[k])
        return SOS_FD_ACK_UNKNOWN;
    p->answered[k] = true;
    bool all = true;
    for (uint32_t i = 0; i < p->n_helpers; i++)
        all = all && p->answered[i];
    if (!reached && !all)
        return SOS_FD_ACK_WAIT;
    memcpy(out_target, p->target, SOS_NODEID_BYTES);
    memset(p, 0, sizeof *p);
    return reached ? SOS_FD_ACK_REACHED : SOS_FD_ACK_FAILED;
}

bool
sos_fd_probe_expired(sos_fd_probes_t *probes, uint64_t now_mono,
                     uint8_t out_target[SOS_NODEID_BYTES])
{
    for (int i = 0; i < SOS_FD_PROBES_MAX; i++) {
        sos_fd_probe_t *p = &probes->slot[i];
        if (p->used && now_mono >= p->deadline_mono) {
            memcpy(out_target, p->target, SOS_NODEID_BYTES);
            memset(p, 0, sizeof *p);
            return true;
        }
    }
    return false;
}

int
sos_fd_help_begin(sos_fd_helps_t *helps, const uint8_t requester[SOS_NODEID_BYTES], uint64_t req_id,
                  const uint8_t target[SOS_NODEID_BYTES], uint64_t ping_id, uint64_t deadline_mono)
{
    int free_slot = -1;
    for (int i = 0; i < SOS_FD_HELPS_MAX; i++) {
        const sos_fd_help_t *h = &helps->slot[i];
        if (!h->used) {
            if (free_slot < 0)
                free_slot = i;
        } else if (h->req_id == req_id && memcmp(h->requester, requester, SOS_NODEID_BYTES) == 0)
            return -1;
    }
    if (free_slot < 0)
        return -1;
    sos_fd_help_t *h = &helps->slot[free_slot];
    h->used = true;
    memcpy(h->requester, requester, SOS_NODEID_BYTES);
    h->req_id = req_id;
    memcpy(h->target, target, SOS_NODEID_BYTES);
    h->ping_id = ping_id;
    h->deadline_mono = deadline_mono;
    return free_slot;
}

int
sos_fd_help_pong(const sos_fd_helps_t *helps, const uint8_t target[SOS_NODEID_BYTES],
                 uint64_t ping_id)
{
    for (int i = 0; i < SOS_FD_HELPS_MAX; i++) {
        const sos_fd_help_t *h = &helps->slot[i];
        if (h->used && h->ping_id == ping_id && memcmp(h->target, target, SOS_NODEID_BYTES) == 0)
            return i;
    }
    return -1;
}

int
sos_fd_help_expired(const sos_fd_helps_t *helps, uint64_t now_mono)
{
    for (int i = 0; i < SOS_FD_HELPS_MAX; i++)
        if (helps->slot[i].used && now_mono >= helps->slot[i].deadline_mono)
            return i;
    return -1;
}

void
sos_fd_help_end(sos_fd_helps_t *helps, int i)
{
    if (i >= 0 && i < SOS_FD_HELPS_MAX)
        memset(&helps->slot[i], 0, sizeof helps->slot[i]);
}
