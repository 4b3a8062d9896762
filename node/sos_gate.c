/*  sos_gate.c: connection caps on the public ROUTER, counted with a socket monitor and
    enforced with ZAP.

    Why a gate. Every connection to the public endpoint holds a file descriptor, libzmq's
    session and engine with their buffers, and up to its output budget (sos_budget.c). A
    stranger who opens connections without end would exhaust the descriptors (then the node
    can open neither a store file nor a DEALER) and multiply the budgets. libzmq has no cap
    on accepted connections, but it gives two tools: a socket monitor, which reports each
    connection accepted and closed with its descriptor, and ZAP, which libzmq consults
    during each handshake, also with the NULL mechanism once the socket has a ZAP domain, and
    which can refuse the connection before any frame of it reaches the node.

    So the gate counts open connections from the monitor's events (the address of each, read
    with getpeername when it is accepted), and answers each ZAP request by that count: past
    the total cap or the cap for its IP address, the handshake fails and libzmq closes the
    connection. The monitor's events for a connection come before its ZAP request, and the
    gate takes every waiting event before it answers, so the count includes the connection
    that asks. A descriptor closed and reused before its ACCEPTED event is read may be
    charged to the newer connection's address; the totals stay exact, because each accepted
    descriptor is closed exactly once, in order. Connections that never finish the handshake
    count until libzmq's handshake timeout closes them.

    CURVE (PROTOCOL.md, "Transport"). With the public ROUTER a CURVE server, ZAP also sees
    each client's long-term public key. The gate answers with that key, in hex, as the
    connection's User-Id, which every message of the connection then carries
    (zmq_msg_gets "User-Id"): the node compares it with the key derived from a gossip
    envelope's sender, so that a node can only gossip as itself. Clients (sosctl, sosbench)
    present throwaway keys; their requests need no match.

    Handshakes. Each CURVE handshake costs the node X25519 work before ZAP is asked, and
    libzmq gives no hook before that work: what the gate can bound is how many handshakes
    complete. It keeps a token bucket per address and one in total (sos_gate_set_curve), and
    refuses a handshake past either, counted apart from the connection caps. A flood of
    handshakes from one address thus costs the node at most its connection cap in open
    connections and the work of the handshakes TCP lets through, and never admits more
    than the bucket's rate; the node keeps serving everyone else.

    Mechanisms. A client or peer speaking another mechanism than the node's (a node of
    protocol version 2 speaks NULL) fails at the ZMTP greeting, before ZAP: libzmq reports
    it on the monitor as a handshake that failed with ZMTP_MECHANISM_MISMATCH, and the gate
    counts those for the node to log and count. */
#include <netdb.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sos_core_check.h"
#include "sos_gate.h"
#include "sos_identity.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_DOMAIN   "sosnode"

typedef struct {
    uint32_t connections; /* open now */
    double tokens;        /* handshakes this address may still complete */
    uint64_t mono;        /* when tokens was last refilled */
} s_address_t;

struct _sos_gate_t {
    zsock_t *router;  /* the socket watched; outlives the gate */
    zsock_t *monitor; /* PAIR, the router's events */
    zsock_t *zap;     /* REP on the ZAP endpoint */
    bool bound;       /* zap holds the endpoint */
    uint32_t max_total;
    uint32_t max_per_address;
    uint32_t open;
    zhashx_t *fds;       /* "fd" -> address (owned string) */
    zhashx_t *addresses; /* address -> s_address_t* (owned) */
    char refused[NI_MAXHOST];
    bool curve;           /* the router is a CURVE server: User-Id is the client's key */
    double hs_rate;       /* handshakes per second from one address (bursts of 2 s) */
    double hs_rate_total; /* and from all */
    double hs_tokens;     /* handshakes all addresses may still complete */
    uint64_t hs_mono;     /* when hs_tokens was last refilled */
    uint64_t swept_mono;  /* when s_sweep last ran */
    uint32_t hs_refused;  /* handshakes refused past a rate, not yet taken by the node */
    uint32_t mismatched;  /* handshakes that failed on the mechanism, not yet taken */
};

static void
s_count_free(void **item)
{
    free(*item);
    *item = NULL;
}

sos_gate_t *
sos_gate_new(zsock_t *router, uint32_t max_total, uint32_t max_per_address, const char **why)
{
    *why = "out of memory";
    sos_gate_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->router = router;
    self->max_total = max_total;
    self->max_per_address = max_per_address;
    self->fds = zhashx_new();
    self->addresses = zhashx_new();
    self->zap = zsock_new(ZMQ_REP);
    self->monitor = zsock_new(ZMQ_PAIR);
    if (!self->fds || !self->addresses || !self->zap || !self->monitor)
        goto fail;
    zhashx_set_destructor(self->fds, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_destructor(self->addresses, s_count_free);
    zsock_set_linger(self->zap, 0);
    zsock_set_linger(self->monitor, 0);
    if (zsock_bind(self->zap, S_ZAP_ENDPOINT) < 0) {
        *why = "the ZAP endpoint is taken by another socket in this process";
        goto fail;
    }
    self->bound = true;
    /*  A random name: libzmq frees the endpoint of a closed monitor later, on its reaper
        thread, and a gate made next in this process must not find its name taken. */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://sos-gate-%08x%08x", randombytes_random(),
             randombytes_random());
    if (zmq_socket_monitor(zsock_resolve(router), endpoint,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0 ||
        zsock_connect(self->monitor, "%s", endpoint) < 0) {
        *why = "cannot monitor the public socket";
        goto fail;
    }
    zsock_set_zap_domain(router, S_ZAP_DOMAIN);
    return self;
fail:
    sos_gate_destroy(&self);
    return NULL;
}

void
sos_gate_destroy(sos_gate_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_gate_t *self = *self_p;
    /*  libzmq's I/O thread sends the router's events with a blocking send: once our end is
        closed, the next event (a connection closing) would block that thread, and with it
        every connection of the process, for good. Drain what is queued, so that a send
        waiting on a full pipe completes, then stop the monitor before closing our end. */
    if (self->monitor) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        while (zmq_msg_recv(&ev, zsock_resolve(self->monitor), ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&ev);
        if (self->router)
            zmq_socket_monitor(zsock_resolve(self->router), NULL, 0);
    }
    zsock_destroy(&self->monitor);
    /*  Closing a socket frees its inproc endpoint later, on libzmq's reaper thread; unbind
        it now, so that a node made next in this process can have its own gate. */
    if (self->bound)
        zsock_unbind(self->zap, S_ZAP_ENDPOINT);
    zsock_destroy(&self->zap);
    zhashx_destroy(&self->fds);
    zhashx_destroy(&self->addresses);
    free(self);
    *self_p = NULL;
}

zsock_t *
sos_gate_monitor(sos_gate_t *self)
{
    return self->monitor;
}

zsock_t *
sos_gate_zap(sos_gate_t *self)
{
    return self->zap;
}

void
sos_gate_set_curve(sos_gate_t *self, bool curve, uint32_t per_address, uint32_t total)
{
    self->curve = curve;
    self->hs_rate = per_address;
    self->hs_rate_total = total;
    self->hs_tokens = 2.0 * total;
    self->hs_mono = sos_mono_ms();
}

static s_address_t *
s_address(sos_gate_t *self, const char *address, bool create)
{
    s_address_t *a = zhashx_lookup(self->addresses, address);
    if (a || !create)
        return a;
    a = calloc(1, sizeof *a);
    if (a && zhashx_insert(self->addresses, address, a) != 0) {
        free(a);
        a = NULL;
    }
    if (a) {
        a->tokens = 2.0 * self->hs_rate;
        a->mono = sos_mono_ms();
    }
    return a;
}

/*  The count of connections open from address, NULL if none is. */
static uint32_t *
s_count(sos_gate_t *self, const char *address, bool create)
{
    s_address_t *a = s_address(self, address, create);
    return a ? &a->connections : NULL;
}

/*  Take one token from a bucket of rate per second that holds bursts of 2 s. False if empty. */
static bool
s_take_token(double *tokens, uint64_t *mono, double rate)
{
    return sos_core_tokens_take_burst(tokens, mono, rate, 2.0 * rate, 1, sos_mono_ms());
}

static void
s_accepted(sos_gate_t *self, int fd)
{
    char key[16], host[NI_MAXHOST] = "?";
    snprintf(key, sizeof key, "%d", fd);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
        strcpy(host, "?");
    /*  A descriptor we still count as open was closed without our seeing it: take it back. */
    char *was = zhashx_lookup(self->fds, key);
    if (was) {
        uint32_t *n = s_count(self, was, false);
        if (n && *n)
            (*n)--;
        self->open--;
        zhashx_delete(self->fds, key);
    }
    uint32_t *n = s_count(self, host, true);
    char *copy = strdup(host);
    if (!n || !copy) {
        free(copy);
        return;
    }
    (*n)++;
    self->open++;
    zhashx_insert(self->fds, key, copy);
}

static void
s_closed(sos_gate_t *self, int fd)
{
    char key[16];
    snprintf(key, sizeof key, "%d", fd);
    char *address = zhashx_lookup(self->fds, key);
    if (!address)
        return;
    uint32_t *n = s_count(self, address, false);
    if (n && *n)
        --*n; /* the entry stays while its handshake bucket is not full: see s_sweep */
    self->open--;
    zhashx_delete(self->fds, key);
}

/*  Forget the addresses with no connection whose handshake bucket is full again (2 s after
    their last handshake), at most once a second. An address keeps its entry while its
    bucket is low, or a flood from it would get a full bucket with each new connection; so
    the table holds at most the open connections plus the handshakes of the last 2 s, which
    the total rate bounds. */
static void
s_sweep(sos_gate_t *self)
{
    uint64_t now = sos_mono_ms();
    if (now - self->swept_mono < 1000)
        return;
    self->swept_mono = now;
    zlistx_t *keys = zhashx_keys(self->addresses);
    if (!keys)
        return;
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        s_address_t *a = zhashx_lookup(self->addresses, k);
        if (a && a->connections == 0 && now - a->mono >= 2000)
            zhashx_delete(self->addresses, k);
    }
    zlistx_destroy(&keys);
}

void
sos_gate_on_monitor(sos_gate_t *self)
{
    s_sweep(self);
    void *h = zsock_resolve(self->monitor);
    while (true) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, h, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) == 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
        }
        /*  The second part (the endpoint) says nothing we need. */
        while (zmq_msg_more(&ev) && zmq_msg_recv(&ev, h, ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&ev);
        if (event == ZMQ_EVENT_ACCEPTED)
            s_accepted(self, (int)value);
        else if (event == ZMQ_EVENT_DISCONNECTED)
            s_closed(self, (int)value);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
                 value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            self->mismatched++;
    }
}

uint32_t
sos_gate_on_zap(sos_gate_t *self, const char **address_p)
{
    sos_gate_on_monitor(self);
    uint32_t refused = 0;
    *address_p = self->refused;
    while (true) {
        if (!(zsock_events(self->zap) & ZMQ_POLLIN))
            return refused;
        zmsg_t *req = zmsg_recv(self->zap);
        if (!req)
            return refused;
        /*  [version, request id, domain, address, routing id, mechanism, credentials...] */
        char *version = zmsg_popstr(req);
        zframe_t *request_id = zmsg_pop(req);
        char *domain = zmsg_popstr(req);
        char *address = zmsg_popstr(req);
        zframe_t *routing = zmsg_pop(req);
        char *mechanism = zmsg_popstr(req);
        zframe_t *key = zmsg_pop(req);
        const char *status = "200", *text = "OK";
        char user_id[2 * 32 + 1] = "";
        if (self->curve) {
            /*  The router speaks CURVE only (libzmq refused any other mechanism at the
                greeting); a client key is 32 bytes, or the request is not libzmq's. */
            if (!mechanism || !streq(mechanism, "CURVE") || !key || zframe_size(key) != 32) {
                status = "400";
                text = "CURVE only";
            } else
                sodium_bin2hex(user_id, sizeof user_id, zframe_data(key), 32);
        }
        if (*status == '2' && domain && streq(domain, S_ZAP_DOMAIN) && address) {
            uint32_t *n = s_count(self, address, false);
            if (self->open > self->max_total) {
                status = "400";
                text = "too many connections";
            } else if (self->max_per_address && n && *n > self->max_per_address) {
                status = "400";
                text = "too many connections from this address";
            }
            if (*status == '4') {
                refused++;
                snprintf(self->refused, sizeof self->refused, "%s", address);
            } else if (self->curve) {
                s_address_t *a = s_address(self, address, true);
                bool ok = a ? s_take_token(&a->tokens, &a->mono, self->hs_rate) : false;
                if (ok)
                    ok = s_take_token(&self->hs_tokens, &self->hs_mono, self->hs_rate_total);
                if (!ok) {
                    status = "400";
                    text = "too many handshakes";
                    self->hs_refused++;
                    snprintf(self->refused, sizeof self->refused, "%s", address);
                }
            }
        }
        zmsg_t *rep = zmsg_new();
        zmsg_addstr(rep, "1.0");
        if (request_id)
            zmsg_append(rep, &request_id);
        else
            zmsg_addstr(rep, "");
        zmsg_addstr(rep, status);
        zmsg_addstr(rep, text);
        zmsg_addstr(rep, *status == '2' ? user_id : "");
        zmsg_addmem(rep, "", 0);
        zmsg_send(&rep, self->zap);
        zframe_destroy(&routing);
        zstr_free(&mechanism);
        zframe_destroy(&key);
        zstr_free(&version);
        zstr_free(&domain);
        zstr_free(&address);
        zframe_destroy(&request_id);
        zmsg_destroy(&req);
    }
}

uint32_t
sos_gate_take_handshake_refusals(sos_gate_t *self)
{
    uint32_t n = self->hs_refused;
    self->hs_refused = 0;
    return n;
}

uint32_t
sos_gate_take_mechanism_refusals(sos_gate_t *self)
{
    uint32_t n = self->mismatched;
    self->mismatched = 0;
    return n;
}

uint32_t
sos_gate_connections(sos_gate_t *self)
{
    return self->open;
}

uint32_t
sos_gate_connections_from(sos_gate_t *self, const char *address)
{
    uint32_t *n = s_count(self, address, false);
    return n ? *n : 0;
}
