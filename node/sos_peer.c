/*  sos_peer.c: a peer's lifecycle: new, open (a DEALER connected to its url, read by the
    node's reactor), detach, close, destroy. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sos_peer.h"

/*  Reading a DEALER

    zloop reads a zsock through zmq_poll, which asks every such socket for ZMQ_EVENTS before
    and after each sleep: a getpid and a poll(2) of the socket's mailbox per socket, on every
    wake-up of the reactor, whichever socket woke it. So a peer's DEALER is watched as the
    ROUTER is (sos_node.c, s_recv_router): through its ZMQ_FD, which costs nothing to poll
    but is edge-triggered. It says that libzmq has commands for the socket (such as "a pipe
    has messages", or a new connection's pipe), and any receive, send or ZMQ_EVENTS on the
    socket may take that signal without the reactor seeing it. Hence:
    - a wake-up runs the reader, which receives until a receive fails or its own budget is
      spent, and then asks ZMQ_EVENTS whether input waits; it reads again while it does, at
      most SOS_PEER_READS times, and leaves the rest to the next turn of the loop;
    - whatever sends on a DEALER marks it (sos_node.c, s_out_send), and the end of the pass
      asks each marked one for ZMQ_EVENTS once (sos_node_dealers_check): a send may have
      taken the signal of a reply, or of the pipe of a connection just made, whose first
      message libzmq does not signal until a receive has found the pipe empty. */
#define SOS_PEER_READS 4

sos_peer_t *
sos_peer_new(sos_node_t *node, const char *url)
{
    sos_peer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->node = node;
    self->item.fd = -1;
    snprintf(self->url, sizeof self->url, "%s", url);
    return self;
}

void
sos_peer_destroy(sos_peer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_peer_t *self = *self_p;
    zsock_destroy(&self->dealer);
    free(self);
    *self_p = NULL;
}

static int
s_on_fd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    return sos_peer_read(arg, loop);
}

int
sos_peer_read(sos_peer_t *self, zloop_t *loop)
{
    self->read_again = false;
    for (int i = 0; i < SOS_PEER_READS; i++) {
        zsock_t *dealer = self->dealer;
        if (!dealer || self->retired || self->item.fd < 0)
            return 0;
        if (self->reader(loop, dealer, self) < 0)
            return -1;
        /*  The reader may have closed or retired the peer. */
        if (self->dealer != dealer || self->retired || self->item.fd < 0 ||
            !(zsock_events(dealer) & ZMQ_POLLIN))
            return 0;
    }
    self->read_again = true;
    sos_node_read_again(self->node);
    return 0;
}

sos_rc
sos_peer_open(sos_peer_t *self, zloop_t *loop, zloop_reader_fn reader, bool queue)
{
    if (self->dealer)
        return SOS_OK;
    /*  CURVE: the server key is the one derived from the peer's id, so only the node holding
        that id's secret can complete the handshake (a man in the middle cannot), and our
        own long-term key tells the peer which node we are (PROTOCOL.md, "Transport"). */
    uint8_t server[SOS_CURVE_KEY_BYTES], pk[SOS_CURVE_KEY_BYTES], sk[SOS_CURVE_KEY_BYTES];
    bool curve = !self->node->cfg.transport_null;
    const uint8_t *id = self->id_known ? self->id : self->fwd_id_set ? self->fwd_id : NULL;
    if (curve && (!id || sos_nodeid_to_curve(server, id) != SOS_OK))
        return SOS_ERR_INVALID;
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    if (!dealer)
        return SOS_ERR_IO;
    if (curve) {
        if (sos_identity_curve_keys(pk, sk, &self->node->id) != SOS_OK) {
            zsock_destroy(&dealer);
            return SOS_ERR_CRYPTO;
        }
        zsock_set_curve_serverkey_bin(dealer, server);
        zsock_set_curve_publickey_bin(dealer, pk);
        zsock_set_curve_secretkey_bin(dealer, sk);
        sodium_memzero(sk, sizeof sk);
    }
    /*  Immediate: a send fails at once while the peer is not connected, instead of queueing
        requests that would be delivered, stale, when it comes back. */
    zsock_set_immediate(dealer, queue ? 0 : 1);
    zsock_set_linger(dealer, 0);
    zsock_set_sndhwm(dealer, 1000);
    zsock_set_maxmsgsize(dealer, 2 * SOS_FRAME_MAX);
    zsock_set_reconnect_ivl_max(dealer, 5000);
    self->item = (zmq_pollitem_t){NULL, zsock_fd(dealer), ZMQ_POLLIN, 0};
    if (zsock_connect(dealer, "%s", self->url) < 0 ||
        zloop_poller(loop, &self->item, s_on_fd, self) != 0) {
        self->item.fd = -1;
        zsock_destroy(&dealer);
        return SOS_ERR_IO;
    }
    zloop_poller_set_tolerant(loop, &self->item);
    self->reader = reader;
    self->read_again = false;
    self->dealer = dealer;
    if (id)
        memcpy(self->dealer_key, id, SOS_NODEID_BYTES);
    self->created_mono = sos_mono_ms();
    self->last_used_mono = self->created_mono;
    self->down_counted = false;
    return SOS_OK;
}

void
sos_peer_detach(sos_peer_t *self, zloop_t *loop)
{
    if (self->dealer && self->item.fd >= 0)
        zloop_poller_end(loop, &self->item);
    self->item.fd = -1; /* not watched: nothing reads it */
    self->read_again = false;
}

void
sos_peer_close(sos_peer_t *self, zloop_t *loop)
{
    sos_peer_detach(self, loop);
    zsock_destroy(&self->dealer);
}

bool
sos_peer_is_open(const sos_peer_t *self)
{
    return self->dealer != NULL;
}
