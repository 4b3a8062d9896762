/*  sos_http.h: the seed's HTTP API, the web page and /metrics, served on the node's zloop
    by libmicrohttpd; room operations become ordinary requests to the node's own ROUTER. */
#ifndef SOS_HTTP_H
#define SOS_HTTP_H

#include <czmq.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "sos_config.h"
#include "sos_error.h"

typedef struct _sos_http_t sos_http_t;

/*  Buckets (upper bounds, ms) of the gossip exchange time histogram: the node counts them,
    `status` reports them as gossip_exchange_ms: [count, sum_ms, n <= bound...], and
    /metrics gives them as sosnode_gossip_exchange_seconds. */
#define SOS_EXCHANGE_BUCKETS 10
#define SOS_EXCHANGE_BUCKETS_MS                                                                    \
    {                                                                                              \
        1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000                                                  \
    }

/*  What a request asks for, decided from its method and path alone. */
typedef enum {
    SOS_HTTP_OPTIONS,   /* any path: 204 with the CORS headers */
    SOS_HTTP_NOT_FOUND, /* 404 not_found */
    SOS_HTTP_BAD_HASH,  /* 400 invalid_room_hash (a malformed hash in the path) */
    SOS_HTTP_PAGE,      /* GET / and the page's files */
    SOS_HTTP_HEALTH,
    SOS_HTTP_METRICS,
    SOS_HTTP_STATUS, /* GET /status: the node's status as JSON (the page uses it) */
    SOS_HTTP_WORKERS,
    SOS_HTTP_ROOMS,
    SOS_HTTP_CREATE, /* POST /room */
    SOS_HTTP_JOIN,   /* POST /room/H/join */
    SOS_HTTP_SEND,   /* POST /room/H/send */
    SOS_HTTP_POLL,   /* GET /room/H/poll */
    SOS_HTTP_LEAVE,  /* POST /room/H/leave */
    SOS_HTTP_INFO,   /* GET /room/H/info */
} sos_http_route_t;

/*  Route a request. method and path are NUL-terminated (path without the query string);
    room receives the room hash of /room/H/... paths (17 bytes). Never fails: anything
    unknown is SOS_HTTP_NOT_FOUND. */
sos_http_route_t sos_http_route(const char *method, const char *path, char room[17]);

/*  Decode a request body as the seed does: JSON whatever the Content-Type, and anything that
    is not a JSON object counts as an empty object. Returns a new reference (never NULL
    unless memory is short). */
json_t *sos_http_body(const char *data, size_t len);

/*  The node's arguments of a room operation from its request body (route CREATE, JOIN,
    SEND or LEAVE; other routes add nothing), cut and defaulted as the seed does: nickname
    to 20 characters (and 20 bytes), description trimmed and cut to 140, emojis to 6.
    Adds to args (borrowed). Returns NULL, or the error code of a 400 (invalid_room_hash,
    missing_content). */
const char *sos_http_body_args(sos_http_route_t route, json_t *body, json_t *args);

/*  Start serving on every --http listener of cfg, on loop. Requests are sent to the node's
    ROUTER at inproc endpoint `inproc`, from a DEALER whose routing id is local_id (the node
    trusts requests from that id, and only those, as coming from this process). cfg, loop
    and node_id (64 hex characters) are borrowed and must outlive the front end. Returns NULL
    with a reason in why when a listener cannot be started. */
sos_http_t *sos_http_new(const sos_config_t *cfg, zloop_t *loop, const char *inproc,
                         const uint8_t *local_id, size_t local_id_len, const char *node_id,
                         char *why, size_t why_size);

/*  Answer every request still waiting with 503, stop the listeners, free. NULL-safe. */
void sos_http_destroy(sos_http_t **self_p);

/*  Pack the front end's counters as a msgpack map (for `status`). self may be NULL: an
    empty map. */
void sos_http_pack_stats(const sos_http_t *self, msgpack_packer *pk);

#endif
