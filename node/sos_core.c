/*  sos_core.c: the gossip core's object: its environment, its action queue, and the
    failure detector state it drives (sos_fd.c). The gossip logic moves in behind
    sos_core_handle step by step; until an event type has moved, sos_gossip.c handles it
    for sosnode and sos_core_handle refuses it (SOS_ERR_INVALID). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sos_core.h"

struct _sos_core_t {
    sos_config_t cfg;
    sos_identity_t id;
    sos_core_env_t env;
    sos_fd_config_t fd_cfg;
    sos_fd_t fd;
    sos_core_action_t *actions; /* the queue: [head, n) not drained yet */
    uint8_t **action_data;      /* owned frame of each action, or NULL */
    size_t head, n, cap;
    uint8_t *drained; /* the frame of the action last given out, freed at the next call */
};

static uint64_t
s_now_ms(void *arg)
{
    (void)arg;
    return sos_now_ms();
}

static uint64_t
s_mono_ms(void *arg)
{
    (void)arg;
    return sos_mono_ms();
}

static void
s_random_buf(void *arg, void *buf, size_t len)
{
    (void)arg;
    randombytes_buf(buf, len);
}

void
sos_core_env_default(sos_core_env_t *env)
{
    memset(env, 0, sizeof *env);
    env->now_ms = s_now_ms;
    env->mono_ms = s_mono_ms;
    env->random_buf = s_random_buf;
}

/*  Sign as this node: the host's signer, or Ed25519 with the identity. */
static void __attribute__((unused))
s_sign(sos_core_t *self, uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len)
{
    if (self->env.sign)
        self->env.sign(self->env.arg, sig, msg, len);
    else
        sos_sign(sig, msg, len, &self->id);
}

static bool __attribute__((unused))
s_verify(sos_core_t *self, const uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len,
         const uint8_t signer[SOS_NODEID_BYTES])
{
    if (self->env.verify)
        return self->env.verify(self->env.arg, sig, msg, len, signer);
    return sos_verify(sig, msg, len, signer) == SOS_OK;
}

sos_core_t *
sos_core_new(const sos_config_t *cfg, const sos_identity_t *id, const sos_core_env_t *env)
{
    if (!cfg || !id || cfg->max_failures == 0 || cfg->gossip_interval_ms == 0)
        return NULL;
    sos_core_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->id = *id;
    sos_core_env_t def;
    sos_core_env_default(&def);
    if (env)
        self->env = *env;
    if (!self->env.now_ms)
        self->env.now_ms = def.now_ms;
    if (!self->env.mono_ms)
        self->env.mono_ms = def.mono_ms;
    if (!self->env.random_buf)
        self->env.random_buf = def.random_buf;
    if (!self->env.sign || !self->env.verify) {
        /*  Both or neither: a keyed hash signs what only a keyed hash verifies. */
        self->env.sign = NULL;
        self->env.verify = NULL;
    }
    /*  The conservative exchange deadline, as sosnode sets it: two intervals, kept within
        0.5 to 5 s. */
    uint64_t t = 2 * (uint64_t)cfg->gossip_interval_ms;
    self->fd_cfg.interval_ms = cfg->gossip_interval_ms;
    self->fd_cfg.exchange_timeout_ms = t < 500 ? 500 : t > 5000 ? 5000 : t;
    self->fd_cfg.max_failures = cfg->max_failures;
    return self;
}

void
sos_core_destroy(sos_core_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_core_t *self = *self_p;
    for (size_t i = self->head; i < self->n; i++)
        free(self->action_data[i]);
    free(self->actions);
    free(self->action_data);
    free(self->drained);
    sodium_memzero(&self->id, sizeof self->id);
    free(self);
    *self_p = NULL;
}

sos_rc
sos_core_start(sos_core_t *self, sos_txn_t *txn)
{
    (void)self;
    (void)txn;
    return SOS_ERR_INVALID; /* not moved yet: sos_gossip_start loads the directory */
}

sos_rc
sos_core_handle(sos_core_t *self, sos_txn_t *txn, const sos_core_event_t *ev)
{
    (void)txn;
    if (!self || !ev)
        return SOS_ERR_INVALID;
    return SOS_ERR_INVALID; /* not moved yet: sos_gossip.c handles every event for sosnode */
}

bool
sos_core_next(sos_core_t *self, sos_core_action_t *action)
{
    free(self->drained);
    self->drained = NULL;
    if (self->head == self->n) {
        self->head = self->n = 0;
        return false;
    }
    *action = self->actions[self->head];
    self->drained = self->action_data[self->head];
    action->data = self->drained;
    self->head++;
    return true;
}

const sos_fd_t *
sos_core_fd(const sos_core_t *self)
{
    return &self->fd;
}
