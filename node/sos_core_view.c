/*  sos_core_view.c: the bounded active view of the gossip core (sos_core_view.h says why):
    whom a node keeps connections to, decided without I/O. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "sos_core_view.h"

static uint32_t
s_clamp(uint32_t cap)
{
    return cap < 1 ? 1 : cap > SOS_VIEW_MAX ? SOS_VIEW_MAX : cap;
}

uint32_t
sos_core_view_cap(uint32_t fanout, uint64_t n_nodes)
{
    if (fanout == 0)
        fanout = 1;
    if (fanout >= SOS_VIEW_MAX)
        return SOS_VIEW_MAX;
    double ln = n_nodes > 1 ? log((double)n_nodes) : 0;
    uint32_t extra = (uint32_t)lround(ln);
    if (extra < 1)
        extra = 1;
    uint64_t cap = (uint64_t)fanout + extra;
    return cap > SOS_VIEW_MAX ? SOS_VIEW_MAX : (uint32_t)cap;
}

void
sos_core_view_init(sos_core_view_t *v, uint32_t cap)
{
    assert(v);
    memset(v, 0, sizeof *v);
    v->cap = s_clamp(cap);
}

static int
s_find(const sos_core_view_t *v, uint64_t peer)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (v->peers[i] == peer)
            return (int)i;
    return -1;
}

bool
sos_core_view_has(const sos_core_view_t *v, uint64_t peer)
{
    assert(v);
    return s_find(v, peer) >= 0;
}

static void
s_remove_at(sos_core_view_t *v, uint32_t i)
{
    memmove(&v->peers[i], &v->peers[i + 1], (v->n - i - 1) * sizeof v->peers[0]);
    v->n--;
}

sos_view_rc_t
sos_core_view_add(sos_core_view_t *v, uint64_t peer, bool priority, sos_random_fn *rnd, void *arg,
                  uint64_t *evicted)
{
    assert(v && (!priority || evicted));
    if (s_find(v, peer) >= 0)
        return SOS_VIEW_PRESENT;
    if (v->n < v->cap) {
        v->peers[v->n++] = peer;
        return SOS_VIEW_ADDED;
    }
    if (!priority)
        return SOS_VIEW_REFUSED;
    uint32_t i = sos_core_uniform(rnd, arg, v->n);
    *evicted = v->peers[i];
    s_remove_at(v, i);
    v->peers[v->n++] = peer;
    return SOS_VIEW_EVICTED;
}

bool
sos_core_view_del(sos_core_view_t *v, uint64_t peer)
{
    assert(v);
    int i = s_find(v, peer);
    if (i < 0)
        return false;
    s_remove_at(v, (uint32_t)i);
    return true;
}

size_t
sos_core_view_resize(sos_core_view_t *v, uint32_t cap, sos_random_fn *rnd, void *arg,
                     uint64_t *evicted)
{
    assert(v && evicted);
    v->cap = s_clamp(cap);
    size_t k = 0;
    while (v->n > v->cap) {
        uint32_t i = sos_core_uniform(rnd, arg, v->n);
        evicted[k++] = v->peers[i];
        s_remove_at(v, i);
    }
    return k;
}

uint32_t
sos_core_view_room(const sos_core_view_t *v)
{
    assert(v);
    return v->n < v->cap ? v->cap - v->n : 0;
}
