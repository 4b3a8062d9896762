/*  sos_conn.c: a client connection to a node (see sos_conn.h): a DEALER socket, request
    frames packed with msgpack, replies matched to requests by req_id. */
#include <czmq.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "sos_client.h"
#include "sos_conn.h"
#include "sos_identity.h"

struct _sos_conn_t {
    char *endpoint;
    zsock_t *sock;
    msgpack_sbuffer buf; //  the request begun last
    msgpack_packer pk;
    uint64_t next_req_id;
    uint64_t req_id; //  of the request in buf, 0 if none
    bool finished;   //  buf holds a whole frame (the flags are packed)
    uint64_t dropped;
};

struct _sos_conn_reply_t {
    zmq_msg_t msg; //  the frame; doc and rep borrow from it
    sos_mp_doc_t doc;
    sos_reply_t rep;
    char status[SOS_CONN_STATUS_MAX + 1];
    char *message;
    uint64_t retry_after;
};

sos_conn_t *
sos_conn_new(const char *endpoint)
{
    assert(endpoint);
    sos_conn_t *self = (sos_conn_t *)zmalloc(sizeof(sos_conn_t));
    if (!self)
        return NULL;
    msgpack_sbuffer_init(&self->buf);
    msgpack_packer_init(&self->pk, &self->buf, msgpack_sbuffer_write);
    self->next_req_id = 1;
    /*  NODEID@ENDPOINT: CURVE, with the node's server key derived from its id and a key pair
        of our own made for this connection alone (a client is no node: its key says
        nothing, and a fresh one links none of its connections). */
    uint8_t id[SOS_NODEID_BYTES], server[SOS_CURVE_KEY_BYTES];
    const char *at = strchr(endpoint, '@');
    bool curve = false;
    if (at && at - endpoint == SOS_NODEID_HEX) {
        char hex[SOS_NODEID_HEX + 1];
        memcpy(hex, endpoint, SOS_NODEID_HEX);
        hex[SOS_NODEID_HEX] = '\0';
        if (!sos_unhex(id, sizeof id, hex) || sos_nodeid_to_curve(server, id) != SOS_OK)
            goto fail;
        curve = true;
        endpoint = at + 1;
    }
    self->endpoint = strdup(endpoint);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->endpoint || !self->sock)
        goto fail;
    if (curve) {
        uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
        if (sodium_init() < 0)
            goto fail;
        crypto_box_keypair(pk, sk);
        zsock_set_curve_serverkey_bin(self->sock, server);
        zsock_set_curve_publickey_bin(self->sock, pk);
        zsock_set_curve_secretkey_bin(self->sock, sk);
        sodium_memzero(sk, sizeof sk);
    }
    //  Never block on exit for requests that no node took
    zsock_set_linger(self->sock, 0);
    zsock_set_maxmsgsize(self->sock, SOS_CONN_REPLY_MAX);
    if (zsock_connect(self->sock, "%s", endpoint))
        goto fail;
    return self;
fail:
    sos_conn_destroy(&self);
    return NULL;
}

void
sos_conn_destroy(sos_conn_t **self_p)
{
    assert(self_p);
    sos_conn_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy(&self->sock);
    msgpack_sbuffer_destroy(&self->buf);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

const char *
sos_conn_endpoint(sos_conn_t *self)
{
    assert(self);
    return self->endpoint;
}

void *
sos_conn_sock(sos_conn_t *self)
{
    assert(self);
    return self->sock;
}

uint64_t
sos_conn_dropped(sos_conn_t *self)
{
    assert(self);
    return self->dropped;
}

msgpack_packer *
sos_conn_begin(sos_conn_t *self, const char *op)
{
    assert(self);
    assert(op);
    msgpack_sbuffer_clear(&self->buf);
    self->req_id = self->next_req_id++;
    self->finished = false;
    sos_request_pack_begin(&self->pk, self->req_id, op);
    return &self->pk;
}

uint64_t
sos_conn_req_id(sos_conn_t *self)
{
    assert(self);
    return self->req_id;
}

sos_rc
sos_conn_post(sos_conn_t *self)
{
    assert(self);
    if (!self->req_id)
        return SOS_ERR_INVALID;
    if (!self->finished) {
        sos_request_pack_end(&self->pk, 0);
        self->finished = true;
    }
    if (zmq_send(zsock_resolve(self->sock), self->buf.data, self->buf.size, ZMQ_DONTWAIT) == -1)
        return errno == EAGAIN ? SOS_ERR_FULL : SOS_ERR_IO;
    return SOS_OK;
}

//  Receive one frame, waiting for the socket's receive timeout, and decode it; NULL if none
//  came (*err_p is zmq's errno, EAGAIN when the timeout passed) or it is not a reply (0)
static sos_conn_reply_t *
s_reply_recv(sos_conn_t *self, int *err_p)
{
    *err_p = 0;
    sos_conn_reply_t *reply = (sos_conn_reply_t *)zmalloc(sizeof(sos_conn_reply_t));
    if (!reply) {
        *err_p = ENOMEM;
        return NULL;
    }
    zmq_msg_init(&reply->msg);
    void *handle = zsock_resolve(self->sock);
    if (zmq_msg_recv(&reply->msg, handle, 0) == -1) {
        *err_p = zmq_errno();
        zmq_msg_close(&reply->msg);
        free(reply);
        return NULL;
    }
    //  A reply is exactly one frame: drop the rest of a multi-part message with it
    bool valid = !zmq_msg_more(&reply->msg);
    while (zsock_rcvmore(self->sock)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, handle, ZMQ_DONTWAIT);
        zmq_msg_close(&part);
    }
    if (!valid ||
        sos_reply_decode(&reply->rep, &reply->doc, (const uint8_t *)zmq_msg_data(&reply->msg),
                         zmq_msg_size(&reply->msg)) != SOS_OK) {
        sos_conn_reply_destroy(&reply);
        return NULL;
    }
    size_t status_len = reply->rep.status_len;
    if (status_len > SOS_CONN_STATUS_MAX)
        status_len = SOS_CONN_STATUS_MAX;
    memcpy(reply->status, reply->rep.status, status_len);
    reply->status[status_len] = 0;

    const char *message = "";
    size_t message_len = 0;
    sos_mp_str(sos_mp_map_get(reply->rep.body, "message"), &message, &message_len,
               SOS_CONN_REPLY_MAX);
    reply->message = (char *)malloc(message_len + 1);
    if (!reply->message) {
        sos_conn_reply_destroy(&reply);
        return NULL;
    }
    memcpy(reply->message, message, message_len);
    reply->message[message_len] = 0;
    if (!sos_mp_uint(sos_mp_map_get(reply->rep.body, "retry_after"), &reply->retry_after))
        reply->retry_after = 0;
    return reply;
}

sos_rc
sos_conn_recv(sos_conn_t *self, int timeout_ms, sos_conn_reply_t **reply_p)
{
    assert(self);
    assert(reply_p);
    *reply_p = NULL;
    int64_t deadline = timeout_ms >= 0 ? zclock_mono() + timeout_ms : -1;
    while (true) {
        int wait_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - zclock_mono();
            wait_ms = left > 0 ? (int)left : 0;
        }
        //  The wait is the receive's own (ZMQ_RCVTIMEO): a zpoller wait and then a receive ask
        //  libzmq for the socket's events twice more, each a getpid and a poll(2), and a
        //  benchmark's clients spend that on the cores the node under test needs.
        zsock_set_rcvtimeo(self->sock, wait_ms);
        int err;
        sos_conn_reply_t *reply = s_reply_recv(self, &err);
        if (reply) {
            *reply_p = reply;
            return SOS_OK;
        }
        if (err == 0)
            self->dropped++;
        else if (err == EAGAIN) {
            if (deadline >= 0 && zclock_mono() >= deadline)
                return SOS_ERR_TIMEOUT;
        } else if (err != EINTR || zsys_interrupted)
            return SOS_ERR_IO;
    }
}

sos_rc
sos_conn_call(sos_conn_t *self, int timeout_ms, sos_conn_reply_t **reply_p)
{
    assert(self);
    assert(reply_p);
    *reply_p = NULL;
    sos_rc rc = sos_conn_post(self);
    if (rc != SOS_OK)
        return rc;
    int64_t deadline = zclock_mono() + (timeout_ms > 0 ? timeout_ms : 0);
    while (true) {
        int64_t left = deadline - zclock_mono();
        sos_conn_reply_t *reply;
        rc = sos_conn_recv(self, left > 0 ? (int)left : 0, &reply);
        if (rc != SOS_OK)
            return rc;
        if (sos_conn_reply_req_id(reply) == self->req_id) {
            *reply_p = reply;
            return SOS_OK;
        }
        //  A late reply to an earlier request that we gave up on
        sos_conn_reply_destroy(&reply);
        self->dropped++;
    }
}

void
sos_conn_reply_destroy(sos_conn_reply_t **reply_p)
{
    assert(reply_p);
    sos_conn_reply_t *reply = *reply_p;
    if (!reply)
        return;
    sos_mp_doc_release(&reply->doc);
    zmq_msg_close(&reply->msg);
    free(reply->message);
    free(reply);
    *reply_p = NULL;
}

uint64_t
sos_conn_reply_req_id(const sos_conn_reply_t *reply)
{
    assert(reply);
    return reply->rep.req_id;
}

bool
sos_conn_reply_ok(const sos_conn_reply_t *reply)
{
    assert(reply);
    return sos_reply_ok(&reply->rep);
}

const char *
sos_conn_reply_status(const sos_conn_reply_t *reply)
{
    assert(reply);
    return reply->status;
}

const msgpack_object *
sos_conn_reply_body(const sos_conn_reply_t *reply)
{
    assert(reply);
    return reply->rep.body;
}

const char *
sos_conn_reply_message(const sos_conn_reply_t *reply)
{
    assert(reply);
    return reply->message;
}

uint64_t
sos_conn_reply_retry_after(const sos_conn_reply_t *reply)
{
    assert(reply);
    return reply->retry_after;
}
