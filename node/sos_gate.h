/*  sos_gate.h: the public endpoint's gate: how many connections it holds, in total and per
    IP address, and the refusal of a connection past either cap before it can send a frame. */
#ifndef SOS_GATE_H
#define SOS_GATE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _sos_gate_t sos_gate_t;

/*  A gate on router (borrowed; it must outlive the gate), to be made before router binds:
    at most max_total connections at once, and at most max_per_address from one IP address
    (0: no cap per address). It monitors the socket's connections and answers libzmq's ZAP
    requests for it (NULL mechanism, with a ZAP domain set on router). Returns NULL when out
    of memory, or when the ZAP endpoint is taken (another gate in this process): then *why
    says so, and the caller may run without one. */
sos_gate_t *sos_gate_new(zsock_t *router, uint32_t max_total, uint32_t max_per_address,
                         const char **why);

/*  The router is a CURVE server (set before it binds): each handshake must be CURVE, gets the
    client's public key in hex (64 characters) as its User-Id, and is refused past
    per_address handshakes per second from one IP address or total from all (bursts of 2 s
    of each; counted: sos_gate_take_handshake_refusals). */
void sos_gate_set_curve(sos_gate_t *self, bool curve, uint32_t per_address, uint32_t total);

/*  Handshakes refused past the handshake rates since the last call (resets the count). */
uint32_t sos_gate_take_handshake_refusals(sos_gate_t *self);

/*  Handshakes that failed because the client spoke another mechanism than the router (a
    NULL client on a CURVE node: protocol version 1), since the last call. */
uint32_t sos_gate_take_mechanism_refusals(sos_gate_t *self);

/*  Stops the router's monitor and closes the gate: call it before the router is destroyed
    (the router must outlive the gate). NULL-safe; nulls *self_p. */
void sos_gate_destroy(sos_gate_t **self_p);

/*  The sockets to poll (owned by the gate): the monitor's events and the ZAP requests. */
zsock_t *sos_gate_monitor(sos_gate_t *self);
zsock_t *sos_gate_zap(sos_gate_t *self);

/*  Take the monitor's waiting events (connections accepted and closed). */
void sos_gate_on_monitor(sos_gate_t *self);

/*  Answer the ZAP requests waiting (taking the monitor's events first, so that the count
    includes the connection asking). Returns how many it refused; *address_p points to the
    address of the last one refused (valid until the next call), for the caller's log. */
uint32_t sos_gate_on_zap(sos_gate_t *self, const char **address_p);

/*  Connections open now (accepted and not yet closed). */
uint32_t sos_gate_connections(sos_gate_t *self);
/*  Connections open now from address (as libzmq names it: "127.0.0.1", "::1"). */
uint32_t sos_gate_connections_from(sos_gate_t *self, const char *address);

#endif
