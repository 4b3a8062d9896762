/*  sos_budget.c: per-connection and total byte budgets for output, charged when a frame is
    made and released by libzmq's free function when libzmq lets go of it.

    Why the node counts bytes itself. libzmq bounds a connection's outgoing pipe by a number
    of messages (ZMQ_SNDHWM), and a message may be a megabyte: with a high-water mark of
    10,000, one connection that sends poll requests and never reads its replies made the
    node hold 1.5 GiB. libzmq does not tell how many bytes sit in a pipe, but it does tell
    when it frees a message it was given without a copy (zmq_msg_init_data's free function).
    So every frame is allocated here, charged to its connection and to the total, handed to
    libzmq without a copy, and released in the free function, which libzmq calls once the
    engine has written the frame to the kernel, or dropped it with its connection. What is
    charged is therefore exactly what the node holds in user space for that peer: the frames
    queued in the pass that waits for its commit, the pipe, and the one frame the engine is
    writing. A frame that would pass the connection's budget or the total is refused before
    it is made, and the caller counts it.

    The free function runs on a libzmq I/O thread, so the counters are atomics, and each
    connection and the total are reference counted: a frame holds its connection, a
    connection holds the total, and the budget object holds both, so that a frame freed
    after sos_budget_destroy (libzmq closes sockets asynchronously) still finds them. Only
    the node's thread makes frames and looks connections up, so the table itself needs no
    lock; a connection whose only reference is the table holds no frame and can be swept. */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "sos_budget.h"

typedef struct {
    atomic_size_t bytes;
    atomic_uint refs;
    size_t cap;
} s_pool_t;

typedef struct {
    atomic_size_t bytes;
    atomic_uint refs; /* the table's, one per frame */
    s_pool_t *total;  /* a reference */
} s_conn_t;

/*  Put before each frame's bytes; aligned like malloc so the bytes are too. */
typedef struct {
    alignas(max_align_t) s_conn_t *conn;
    size_t charge;
} s_head_t;

struct _sos_budget_t {
    size_t per_conn;
    s_pool_t *total;
    zhashx_t *conns; /* key hex -> s_conn_t (the table's reference) */
};

static void
s_pool_unref(s_pool_t *pool)
{
    if (atomic_fetch_sub(&pool->refs, 1) == 1)
        free(pool);
}

static void
s_conn_unref(s_conn_t *conn)
{
    if (atomic_fetch_sub(&conn->refs, 1) == 1) {
        s_pool_unref(conn->total);
        free(conn);
    }
}

sos_budget_t *
sos_budget_new(size_t per_conn, size_t total)
{
    sos_budget_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->per_conn = per_conn;
    self->total = calloc(1, sizeof *self->total);
    self->conns = zhashx_new();
    if (!self->total || !self->conns) {
        free(self->total);
        zhashx_destroy(&self->conns);
        free(self);
        return NULL;
    }
    atomic_init(&self->total->bytes, 0);
    atomic_init(&self->total->refs, 1);
    self->total->cap = total;
    return self;
}

void
sos_budget_destroy(sos_budget_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_budget_t *self = *self_p;
    for (s_conn_t *c = zhashx_first(self->conns); c; c = zhashx_next(self->conns))
        s_conn_unref(c);
    zhashx_destroy(&self->conns);
    s_pool_unref(self->total);
    free(self);
    *self_p = NULL;
}

static void
s_key_hex(char *hex, const void *key, size_t key_size)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *k = key;
    for (size_t i = 0; i < key_size; i++) {
        hex[2 * i] = digits[k[i] >> 4];
        hex[2 * i + 1] = digits[k[i] & 15];
    }
    hex[2 * key_size] = '\0';
}

static s_conn_t *
s_conn_lookup(sos_budget_t *self, const void *key, size_t key_size, bool create)
{
    char hex[2 * 255 + 1];
    if (key_size > 255)
        key_size = 255;
    s_key_hex(hex, key, key_size);
    s_conn_t *conn = zhashx_lookup(self->conns, hex);
    if (conn || !create)
        return conn;
    conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    atomic_init(&conn->bytes, 0);
    atomic_init(&conn->refs, 1);
    atomic_fetch_add(&self->total->refs, 1);
    conn->total = self->total;
    if (zhashx_insert(self->conns, hex, conn) != 0) {
        s_conn_unref(conn);
        return NULL;
    }
    return conn;
}

uint8_t *
sos_budget_alloc(sos_budget_t *self, const void *key, size_t key_size, size_t size, bool *full_p)
{
    *full_p = false;
    size_t charge = size + SOS_BUDGET_FRAME_OVERHEAD;
    if (size > self->per_conn || charge > self->per_conn) {
        *full_p = true;
        return NULL;
    }
    s_conn_t *conn = s_conn_lookup(self, key, key_size, true);
    if (!conn)
        return NULL;
    /*  Only this thread adds, so a check and then an add cannot overshoot; the free function
        only takes away. */
    if (atomic_load(&conn->bytes) + charge > self->per_conn ||
        atomic_load(&self->total->bytes) + charge > self->total->cap) {
        *full_p = true;
        return NULL;
    }
    s_head_t *head = malloc(sizeof *head + (size ? size : 1));
    if (!head)
        return NULL;
    head->conn = conn;
    head->charge = charge;
    atomic_fetch_add(&conn->refs, 1);
    atomic_fetch_add(&conn->bytes, charge);
    atomic_fetch_add(&self->total->bytes, charge);
    return (uint8_t *)(head + 1);
}

static void
s_release(s_head_t *head)
{
    s_conn_t *conn = head->conn;
    atomic_fetch_sub(&conn->total->bytes, head->charge);
    atomic_fetch_sub(&conn->bytes, head->charge);
    free(head);
    s_conn_unref(conn);
}

void
sos_budget_free(uint8_t **buf_p)
{
    if (!buf_p || !*buf_p)
        return;
    s_release((s_head_t *)*buf_p - 1);
    *buf_p = NULL;
}

/*  libzmq's free function: on the I/O thread that lets go of the frame, or on ours. */
static void
s_zmq_free(void *data, void *hint)
{
    (void)data;
    s_release(hint);
}

int
sos_budget_send(void *handle, uint8_t **buf_p, size_t size, int flags)
{
    uint8_t *buf = *buf_p;
    *buf_p = NULL;
    s_head_t *head = (s_head_t *)buf - 1;
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, buf, size, s_zmq_free, head) != 0) {
        int err = zmq_errno();
        s_release(head);
        return err ? err : ENOMEM;
    }
    if (zmq_msg_send(&msg, handle, flags | ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&msg); /* calls s_zmq_free */
        return err ? err : EIO;
    }
    return 0;
}

size_t
sos_budget_used(sos_budget_t *self, const void *key, size_t key_size)
{
    s_conn_t *conn = s_conn_lookup(self, key, key_size, false);
    return conn ? atomic_load(&conn->bytes) : 0;
}

size_t
sos_budget_total(sos_budget_t *self)
{
    return atomic_load(&self->total->bytes);
}

size_t
sos_budget_room(sos_budget_t *self, const void *key, size_t key_size)
{
    size_t used = sos_budget_used(self, key, key_size);
    size_t all = atomic_load(&self->total->bytes);
    size_t conn = used < self->per_conn ? self->per_conn - used : 0;
    size_t total = all < self->total->cap ? self->total->cap - all : 0;
    return conn < total ? conn : total;
}

size_t
sos_budget_connections(sos_budget_t *self)
{
    return zhashx_size(self->conns);
}

void
sos_budget_sweep(sos_budget_t *self)
{
    zlistx_t *keys = zhashx_keys(self->conns);
    if (!keys)
        return;
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        s_conn_t *conn = zhashx_lookup(self->conns, k);
        /*  Only the table's reference left: no frame holds it, and only this thread makes
            new ones. */
        if (conn && atomic_load(&conn->refs) == 1) {
            zhashx_delete(self->conns, k);
            s_conn_unref(conn);
        }
    }
    zlistx_destroy(&keys);
}
