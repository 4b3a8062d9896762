/*  sos_core.h: the gossip core without I/O. It takes events (a frame from a peer, a tick,
    a commit's result) and returns actions (frames to send, connections to open or close,
    a timer, rooms lost, forwarded replies); it reads and writes the directory through the
    store API (sos_store.h) in a transaction the host gives it. It opens no socket, reads
    no clock and creates no thread: the clock, the random source and the signatures are
    injected (sos_core_env_t), so the same code runs in sosnode and in a simulator.

    How a host drives it:

        core = sos_core_new(&cfg, &identity, &env);
        loop:
            txn = begin a write transaction
            sos_core_handle(core, txn, &event);     frame, tick, round ...
            commit or abort txn
            sos_core_handle(core, NULL, &(sos_core_event_t){.type = SOS_CORE_EV_COMMIT,
                                                            .committed = ok});
            while (sos_core_next(core, &action))    drain, in order
                carry it out (send, open, close, set the timer, route to rooms)

    Several events may share one transaction (group commit): the COMMIT event ends it.
    Replies and rumors made in a transaction come out of sos_core_next only after the
    COMMIT event says it committed, so that no peer hears of a write that was lost; what
    a failed commit made is dropped, and the core's own state rolls back with it (its
    record re-signed at the next round, a removed peer restored). */
#ifndef SOS_CORE_H
#define SOS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_config.h"
#include "sos_fd.h"
#include "sos_identity.h"
#include "sos_record.h"
#include "sos_store.h"

typedef struct _sos_core_t sos_core_t;

/*  What the core asks of its host. Every function gets arg. A NULL member takes the
    default of sos_core_env_default: the system clocks, libsodium's random bytes, and
    Ed25519 with the identity given to sos_core_new. */
typedef struct {
    void *arg;
    /*  Wall clock, ms since the epoch: the dates of records and envelopes. */
    uint64_t (*now_ms)(void *arg);
    /*  Monotonic clock, ms: deadlines, suspicion, health. */
    uint64_t (*mono_ms)(void *arg);
    /*  len random bytes into buf: nonces, request ids, the peers a round picks. */
    void (*random_buf)(void *arg, void *buf, size_t len);
    /*  Sign msg[0..len) as this node into sig. A simulator at large N may put a keyed hash
        here; verify must then accept exactly what sign makes. */
    void (*sign)(void *arg, uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len);
    /*  True if sig is signer's signature of msg[0..len). */
    bool (*verify)(void *arg, const uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len,
                   const uint8_t signer[SOS_NODEID_BYTES]);
} sos_core_env_t;

/*  The defaults: wall and monotonic clocks of the system, randombytes_buf, Ed25519. */
void sos_core_env_default(sos_core_env_t *env);

/*  Events the host feeds in. Pointers are borrowed for the call only. */
typedef enum {
    SOS_CORE_EV_REQUEST = 1, /* a frame received on our public endpoint (SYNC, DELTA, RUMOR,
                                LEAVE): conn names the connection to answer on */
    SOS_CORE_EV_REPLY,       /* a frame received on the connection we opened to url */
    SOS_CORE_EV_TICK,        /* time passes: deadlines, suspicion timeouts, idle peers */
    SOS_CORE_EV_ROUND,       /* a gossip round is due: pick peers and start exchanges */
    SOS_CORE_EV_CONNECTED,   /* the connection to url is up (sends to it will leave) */
    SOS_CORE_EV_COMMIT,      /* the transaction of the events before it committed or not */
    SOS_CORE_EV_STOP,        /* the node is leaving: say so to the peers */
} sos_core_event_type_t;

typedef struct {
    sos_core_event_type_t type;
    const char *url;     /* REPLY, CONNECTED: the peer's url */
    uint64_t conn;       /* REQUEST: the host's handle of the connection, echoed in replies */
    const uint8_t *data; /* REQUEST, REPLY: the frame, size bytes (hostile until checked) */
    size_t size;
    bool committed; /* COMMIT: the transaction committed */
} sos_core_event_t;

/*  Actions the host carries out, in the order sos_core_next gives them. */
typedef enum {
    SOS_CORE_ACT_SEND = 1,      /* send data to the peer at url, now (a request of ours) */
    SOS_CORE_ACT_ANSWER,        /* send data on the connection conn (a reply to a request) */
    SOS_CORE_ACT_OPEN,          /* open a connection to url; CONNECTED once it is up */
    SOS_CORE_ACT_CLOSE,         /* close the connection to url */
    SOS_CORE_ACT_TIMER,         /* feed a TICK at or after at_mono */
    SOS_CORE_ACT_ROOM_LOST,     /* a room this node owned went to another owner: room_hash */
    SOS_CORE_ACT_FORWARD_REPLY, /* a client reply (not gossip) arrived from url: data is for
                                   the rooms module, which forwarded a request there */
} sos_core_action_type_t;

typedef struct {
    sos_core_action_type_t type;
    char url[SOS_URL_MAX + 1];
    uint64_t conn;
    const uint8_t *data; /* owned by the core, valid until the next sos_core_next call */
    size_t size;
    uint64_t at_mono;
    char room_hash[SOS_ROOMHASH_LEN + 1];
} sos_core_action_t;

/*  A core for the node with identity id (copied) and configuration cfg (copied), using
    env (copied; NULL members take the defaults). NULL without memory or on an invalid
    configuration. The core loads nothing by itself: the host feeds a first ROUND or
    TICK, in a transaction, after sos_core_start. */
sos_core_t *sos_core_new(const sos_config_t *cfg, const sos_identity_t *id,
                         const sos_core_env_t *env);

/*  Free the core and every action not drained. NULL-safe; nulls *self_p. */
void sos_core_destroy(sos_core_t **self_p);

/*  Load the directory's workers and our record counter from txn (a write transaction)
    and sign a new record of this node. SOS_OK, or the store's error. */
sos_rc sos_core_start(sos_core_t *self, sos_txn_t *txn);

/*  Handle one event. txn is the write transaction the event's writes go to (NULL for
    COMMIT and for events that write nothing: the core then defers what needs the store to
    the next event with one). Hostile input never makes this fail: it is dropped and
    counted. SOS_OK, SOS_ERR_INVALID for an event type the core does not know, or a store
    error (the host should abort the transaction). */
sos_rc sos_core_handle(sos_core_t *self, sos_txn_t *txn, const sos_core_event_t *ev);

/*  The next action to carry out into *action, true; false when none is left. */
bool sos_core_next(sos_core_t *self, sos_core_action_t *action);

/*  The failure detector's tuning and the node's health (read only; see sos_fd.h). */
const sos_fd_t *sos_core_fd(const sos_core_t *self);

#endif
