/*  sos_peer.c: a peer's lifecycle: new, open (a DEALER connected to its url, read by the
    node's reactor), detach, close, destroy. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sos_peer.h"

sos_peer_t *
sos_peer_new(sos_node_t *node, const char *url)
{
    sos_peer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->node = node;
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

sos_rc
sos_peer_open(sos_peer_t *self, zloop_t *loop, zloop_reader_fn reader)
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
    zsock_set_immediate(dealer, 1);
    zsock_set_linger(dealer, 0);
    zsock_set_sndhwm(dealer, 1000);
    zsock_set_maxmsgsize(dealer, 2 * SOS_FRAME_MAX);
    zsock_set_reconnect_ivl_max(dealer, 5000);
    if (zsock_connect(dealer, "%s", self->url) < 0 ||
        zloop_reader(loop, dealer, reader, self) != 0) {
        zsock_destroy(&dealer);
        return SOS_ERR_IO;
    }
    zloop_reader_set_tolerant(loop, dealer);
    self->dealer = dealer;
    if (id)
        memcpy(self->dealer_key, id, SOS_NODEID_BYTES);
    self->created_mono = sos_mono_ms();
    self->last_used_mono = self->created_mono;
    return SOS_OK;
}

void
sos_peer_detach(sos_peer_t *self, zloop_t *loop)
{
    if (self->dealer)
        zloop_reader_end(loop, self->dealer);
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
