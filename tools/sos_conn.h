/*  sos_conn.h: a client connection to a node's public endpoint, one DEALER socket speaking the
    request/reply frames of sos_client.h. Used by sosctl, and by load tools that pipeline. */
#ifndef SOS_CONN_H
#define SOS_CONN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"

/*  Largest reply frame accepted; the socket drops longer ones (ZMQ_MAXMSGSIZE). */
#define SOS_CONN_REPLY_MAX  (16 * 1024 * 1024)
#define SOS_CONN_STATUS_MAX 63 /* bytes of a reply's status kept */

typedef struct _sos_conn_t sos_conn_t;
typedef struct _sos_conn_reply_t sos_conn_reply_t;

/*  Connect to endpoint: "NODEID@tcp://127.0.0.1:7700" speaks CURVE to the node with that id
    (64 hex characters; its server key is derived from the id, and the client's own key pair
    is made for this connection), as every node requires; a bare "tcp://..." speaks the NULL
    mechanism, which only a node on the test-only --transport null accepts. The connection
    is made in the background by ZeroMQ, so an unreachable node, or one whose id is not the
    one given, shows only as replies that never come. Returns NULL if the endpoint or the id
    is invalid or the socket cannot be made. */
sos_conn_t *sos_conn_new(const char *endpoint);

/*  Close the socket, dropping unsent requests (linger 0). NULL-safe; nulls *self_p. */
void sos_conn_destroy(sos_conn_t **self_p);

/*  The endpoint given to sos_conn_new, valid while the connection lives. */
const char *sos_conn_endpoint(sos_conn_t *self);

/*  Start a new request of operation op and return the packer for its args: the caller packs
    exactly one map (e.g. msgpack_pack_map (pk, 0) for none). The packer is valid until the
    next sos_conn_begin or sos_conn_destroy. Each request takes the next req_id. */
msgpack_packer *sos_conn_begin(sos_conn_t *self, const char *op);

/*  The req_id of the request begun last. */
uint64_t sos_conn_req_id(sos_conn_t *self);

/*  Send the request begun last and wait at most timeout_ms for the reply with its req_id;
    replies to other requests that arrive meanwhile are dropped. On SOS_OK *reply_p is a new
    reply the caller destroys, whatever its status (check sos_conn_reply_ok). Returns
    SOS_ERR_TIMEOUT if no reply came in time, SOS_ERR_IO if the send failed or the wait was
    interrupted (zsys_interrupted is then set), SOS_ERR_INVALID if no request was begun.

    Calling sos_conn_call again without sos_conn_begin sends the same frame again, with the
    same req_id, so that a late reply to the first send also completes the retry; use this
    for idempotent requests only. */
sos_rc sos_conn_call(sos_conn_t *self, int timeout_ms, sos_conn_reply_t **reply_p);

/*  For pipelining: send the request begun last without waiting. Returns SOS_OK, SOS_ERR_FULL
    if the socket's send queue is full (receive some replies, then retry), SOS_ERR_IO. */
sos_rc sos_conn_post(sos_conn_t *self);

/*  For pipelining: receive the next reply, whichever request it answers, waiting at most
    timeout_ms (0: do not wait, -1: forever). Frames that do not decode as replies are
    dropped and counted (sos_conn_dropped). Returns as sos_conn_call. */
sos_rc sos_conn_recv(sos_conn_t *self, int timeout_ms, sos_conn_reply_t **reply_p);

/*  Frames received that were not replies, or answered no request being waited for. */
uint64_t sos_conn_dropped(sos_conn_t *self);

/*  The ZeroMQ socket (a zsock_t *), to add to a caller's zpoller or zloop. Owned by the
    connection. */
void *sos_conn_sock(sos_conn_t *self);

/*  Destroy a reply. NULL-safe; nulls *reply_p. */
void sos_conn_reply_destroy(sos_conn_reply_t **reply_p);

uint64_t sos_conn_reply_req_id(const sos_conn_reply_t *reply);

/*  True if the status is "ok". */
bool sos_conn_reply_ok(const sos_conn_reply_t *reply);

/*  The status ("ok" or an error code such as "room_not_found"), NUL-terminated, valid while
    the reply lives. */
const char *sos_conn_reply_status(const sos_conn_reply_t *reply);

/*  The body map, borrowed: valid while the reply lives. */
const msgpack_object *sos_conn_reply_body(const sos_conn_reply_t *reply);

/*  The body's "message" text of an error reply (NUL-terminated, "" if none), valid while the
    reply lives. */
const char *sos_conn_reply_message(const sos_conn_reply_t *reply);

/*  The body's "retry_after" in seconds, 0 if absent. */
uint64_t sos_conn_reply_retry_after(const sos_conn_reply_t *reply);

#endif
