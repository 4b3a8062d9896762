/*  test_node_budget.c: output byte budgets over real ZeroMQ sockets on loopback: charges
    per connection and in total, refusals at either cap, release when libzmq frees a frame
    (read by the peer, or dropped with its connection), and frames outliving the budget. */
#include <czmq.h>

#include "proto_test.h"
#include "sos_budget.h"

#define S_OH SOS_BUDGET_FRAME_OVERHEAD

/*  Wait (generously) until the budget's total is want; libzmq frees frames on its thread,
    once the socket has taken in its commands (the node's reactor polls it all the time). */
static bool
s_wait_total(sos_budget_t *b, zsock_t *sock, size_t want)
{
    for (int i = 0; i < 3000; i++) {
        zsock_events(sock);
        if (sos_budget_total(b) == want)
            return true;
        zclock_sleep(10);
    }
    return false;
}

/*  A ROUTER and a DEALER on loopback; returns the DEALER's routing id as the ROUTER sees it. */
static zframe_t *
s_pair(zsock_t **router_p, zsock_t **dealer_p, int rcvhwm)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_set_router_mandatory(router, 1);
    zsock_set_linger(router, 0);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zsock_set_linger(dealer, 0);
    zsock_set_rcvhwm(dealer, rcvhwm);
    zsock_set_rcvbuf(dealer, 4096);
    zsock_connect(dealer, "tcp://127.0.0.1:%d", port);
    zstr_send(dealer, "hello");
    zmsg_t *m = zmsg_recv(router);
    zframe_t *id = zmsg_pop(m);
    zmsg_destroy(&m);
    *router_p = router;
    *dealer_p = dealer;
    return id;
}

static int
s_send(sos_budget_t *b, zsock_t *router, zframe_t *id, size_t size, bool *full)
{
    uint8_t *buf = sos_budget_alloc(b, zframe_data(id), zframe_size(id), size, full);
    if (!buf)
        return -1;
    memset(buf, 'x', size);
    if (zmq_send(zsock_resolve(router), zframe_data(id), zframe_size(id),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        sos_budget_free(&buf);
        return err;
    }
    return sos_budget_send(zsock_resolve(router), &buf, size, 0);
}

int
main(void)
{
    test_init("test_node_budget");
    zsys_init();
    bool full = false;

    SECTION("a frame is charged with its overhead to its connection and the total");
    sos_budget_t *b = sos_budget_new(10000, 15000);
    CHECK(b);
    uint8_t *f1 = sos_budget_alloc(b, "a", 1, 4000, &full);
    CHECK(f1 && !full);
    CHECK(sos_budget_used(b, "a", 1) == 4000 + S_OH);
    CHECK(sos_budget_total(b) == 4000 + S_OH);

    SECTION("past the connection's budget it is refused; another connection still fits");
    uint8_t *f2 = sos_budget_alloc(b, "a", 1, 4000, &full);
    CHECK(f2 && !full);
    uint8_t *f3 = sos_budget_alloc(b, "a", 1, 2000, &full);
    CHECK(!f3 && full);
    CHECK(sos_budget_used(b, "a", 1) == 2 * (4000 + S_OH));
    uint8_t *g1 = sos_budget_alloc(b, "b", 1, 5000, &full);
    CHECK(g1 && !full);

    SECTION("past the total it is refused, though the connection has room");
    uint8_t *g2 = sos_budget_alloc(b, "b", 1, 2000, &full);
    CHECK(!g2 && full);
    uint8_t *big = sos_budget_alloc(b, "c", 1, 20000, &full);
    CHECK(!big && full);

    SECTION("the room left is the least of the connection's and the total's");
    size_t total_left = 15000 - (2 * (4000 + S_OH) + 5000 + S_OH);
    CHECK(sos_budget_room(b, "a", 1) == total_left);
    CHECK(sos_budget_room(b, "c", 1) == total_left);
    uint8_t *fit = sos_budget_alloc(b, "b", 1, total_left - S_OH, &full);
    CHECK(fit && !full);
    CHECK(sos_budget_room(b, "b", 1) == 0 && sos_budget_room(b, "c", 1) == 0);
    sos_budget_free(&fit);

    SECTION("freeing releases the charge; a sweep forgets idle connections");
    sos_budget_free(&f1);
    sos_budget_free(&f2);
    CHECK(f1 == NULL && f2 == NULL);
    CHECK(sos_budget_used(b, "a", 1) == 0);
    CHECK(sos_budget_room(b, "a", 1) == 15000 - (5000 + S_OH)); /* the total's, now */
    CHECK(sos_budget_connections(b) == 2); /* "c" was refused before it was known */
    sos_budget_sweep(b);
    CHECK(sos_budget_connections(b) == 1); /* "b" still holds a frame */
    sos_budget_free(&g1);
    sos_budget_free(&g1); /* NULL-safe */
    sos_budget_sweep(b);
    CHECK(sos_budget_connections(b) == 0);
    CHECK(sos_budget_total(b) == 0);
    sos_budget_destroy(&b);
    CHECK(b == NULL);

    SECTION("a frame sent on a ROUTER stays charged until libzmq lets go of it");
    b = sos_budget_new(4 * 1024 * 1024, 64 * 1024 * 1024);
    zsock_t *router, *dealer;
    zframe_t *id = s_pair(&router, &dealer, 2);
    size_t size = 256 * 1024;
    /*  The DEALER does not read: frames pile up in the pipes and the kernel's buffers until
        the connection's budget refuses. */
    int sent = 0, refused = 0;
    for (int i = 0; i < 64; i++) {
        int rc = s_send(b, router, id, size, &full);
        if (rc == 0)
            sent++;
        else if (rc == -1 && full)
            refused++;
    }
    CHECK(sent >= 1 && refused >= 1);
    CHECK(sos_budget_used(b, zframe_data(id), zframe_size(id)) <= 4 * 1024 * 1024);
    printf("    sent %d of 256 KiB, refused %d, %zu bytes held\n", sent, refused,
           sos_budget_total(b));
    /*  Once the DEALER reads them all, libzmq frees every frame and the charge is gone. */
    for (int i = 0; i < sent; i++) {
        zmsg_t *m = zmsg_recv(dealer);
        CHECK(m && zframe_size(zmsg_first(m)) == size);
        zmsg_destroy(&m);
    }
    CHECK(s_wait_total(b, router, 0));

    SECTION("the frames of a connection that closes are released");
    for (int i = 0; i < 8; i++)
        s_send(b, router, id, size, &full);
    CHECK(sos_budget_total(b) > 0);
    zsock_destroy(&dealer);
    CHECK(s_wait_total(b, router, 0));

    SECTION("a send to a gone routing id fails and releases its charge");
    uint8_t *buf = sos_budget_alloc(b, "gone", 4, 100, &full);
    CHECK(buf);
    CHECK(zmq_send(zsock_resolve(router), "gone", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0);
    CHECK(zmq_errno() == EHOSTUNREACH);
    sos_budget_free(&buf);
    CHECK(sos_budget_total(b) == 0);
    zframe_destroy(&id);
    zsock_destroy(&router);

    SECTION("frames libzmq holds outlive the budget object");
    id = s_pair(&router, &dealer, 2);
    for (int i = 0; i < 8; i++)
        s_send(b, router, id, size, &full);
    sos_budget_destroy(&b);
    zsock_destroy(&router);
    zsock_destroy(&dealer);
    zframe_destroy(&id);
    zsys_shutdown(); /* waits for libzmq to free them; ASan and valgrind see the rest */
    return test_done("test_node_budget");
}
