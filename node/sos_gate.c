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
    count until libzmq's handshake timeout closes them. */
#include <netdb.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sos_gate.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_DOMAIN   "sosnode"

struct _sos_gate_t {
    zsock_t *monitor; /* PAIR, the router's events */
    zsock_t *zap;     /* REP on the ZAP endpoint */
    bool bound;       /* zap holds the endpoint */
    uint32_t max_total;
    uint32_t max_per_address;
    uint32_t open;
    zhashx_t *fds;       /* "fd" -> address (owned string) */
    zhashx_t *addresses; /* address -> uint32_t* count (owned) */
    char refused[NI_MAXHOST];
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
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
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

static uint32_t *
s_count(sos_gate_t *self, const char *address, bool create)
{
    uint32_t *n = zhashx_lookup(self->addresses, address);
    if (n || !create)
        return n;
    n = calloc(1, sizeof *n);
    if (n && zhashx_insert(self->addresses, address, n) != 0) {
        free(n);
        n = NULL;
    }
    return n;
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
    if (n && --*n == 0)
        zhashx_delete(self->addresses, address);
    self->open--;
    zhashx_delete(self->fds, key);
}

void
sos_gate_on_monitor(sos_gate_t *self)
{
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
        const char *status = "200", *text = "OK";
        if (domain && streq(domain, S_ZAP_DOMAIN) && address) {
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
        zmsg_addstr(rep, "");
        zmsg_addmem(rep, "", 0);
        zmsg_send(&rep, self->zap);
        zstr_free(&version);
        zstr_free(&domain);
        zstr_free(&address);
        zframe_destroy(&request_id);
        zmsg_destroy(&req);
    }
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
