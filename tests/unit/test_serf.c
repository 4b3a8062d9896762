/*  test_serf.c: unit test of tools/sos_serf, the client of serf's msgpack RPC: replies split
    across reads, error replies, unknown sequence numbers and hostile lengths against a fake
    agent on loopback; then, when serf is on PATH, members, stream and event against a real
    agent (skipped with a message when serf is absent). */
#include <arpa/inet.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sos_mp.h"
#include "sos_serf.h"

//  A reply header {Seq, Error} packed into sb
static void
s_header(msgpack_sbuffer *sb, uint64_t seq, const char *error)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    sos_mp_pack_kv_uint(&pk, "Seq", seq);
    sos_mp_pack_kv_str(&pk, "Error", error);
}

//  A members body: count members, the first alive ones alive
static void
s_members(msgpack_sbuffer *sb, int count, int alive)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    sos_mp_pack_str(&pk, "Members");
    msgpack_pack_array(&pk, (size_t)count);
    for (int i = 0; i < count; i++) {
        msgpack_pack_map(&pk, 3);
        sos_mp_pack_kv_str(&pk, "Name", "agent");
        sos_mp_pack_str(&pk, "Addr");
        sos_mp_pack_bin(&pk, "\x7f\0\0\1", 4);
        sos_mp_pack_kv_str(&pk, "Status", i < alive ? "alive" : "failed");
    }
}

typedef enum { S_SPLIT, S_HUGE_ARRAY, S_HUGE_STR, S_ERROR, S_UNKNOWN_SEQ } s_script_t;

//  The fake agent: answers the handshake, then the members request as the script says
static void
s_fake_agent(int listener, s_script_t script)
{
    int fd = accept(listener, NULL, NULL);
    char in[256];
    if (fd < 0 || recv(fd, in, sizeof in, 0) <= 0)
        _exit(1);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_header(&sb, 1, "");
    send(fd, sb.data, sb.size, MSG_NOSIGNAL);
    msgpack_sbuffer_clear(&sb);
    if (recv(fd, in, sizeof in, 0) <= 0)
        _exit(1);
    switch (script) {
    case S_SPLIT:
        //  One reply in three pieces, the cuts inside a header and inside a body
        s_header(&sb, 2, "");
        s_members(&sb, 3, 2);
        send(fd, sb.data, 3, MSG_NOSIGNAL);
        usleep(50000);
        send(fd, sb.data + 3, 20, MSG_NOSIGNAL);
        usleep(50000);
        send(fd, sb.data + 23, sb.size - 23, MSG_NOSIGNAL);
        break;
    case S_HUGE_ARRAY: {
        //  A members body claiming 4 294 967 295 members, in 12 bytes
        s_header(&sb, 2, "");
        static const uint8_t body[] = {0x81, 0xa7, 'M',  'e',  'm',  'b',  'e', 'r',
                                       's',  0xdd, 0xff, 0xff, 0xff, 0xff, 0x80};
        msgpack_sbuffer_write(&sb, (const char *)body, sizeof body);
        send(fd, sb.data, sb.size, MSG_NOSIGNAL);
        break;
    }
    case S_HUGE_STR: {
        //  A header whose Error claims a 1 GiB string
        static const uint8_t header[] = {0x82, 0xa3, 'S', 'e',  'q',  0x02, 0xa5, 'E', 'r',
                                         'r',  'o',  'r', 0xdb, 0x40, 0,    0,    0};
        send(fd, header, sizeof header, MSG_NOSIGNAL);
        break;
    }
    case S_ERROR:
        s_header(&sb, 2, "Handshake required");
        s_members(&sb, 1, 1);
        send(fd, sb.data, sb.size, MSG_NOSIGNAL);
        break;
    case S_UNKNOWN_SEQ:
        s_header(&sb, 77, "");
        send(fd, sb.data, sb.size, MSG_NOSIGNAL);
        break;
    }
    msgpack_sbuffer_destroy(&sb);
    //  Hold the connection until the client closes it
    while (recv(fd, in, sizeof in, 0) > 0)
        ;
    _exit(0);
}

//  Run script against the client: the result of the members read, with *msg
static int
s_against_fake(s_script_t script, sos_serf_msg_t *msg)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(listener, 1) < 0 || getsockname(listener, (struct sockaddr *)&sa, &len) < 0)
        return -9;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        s_fake_agent(listener, script);
    }
    close(listener);
    int result = -9;
    sos_serf_rpc_t *rpc = sos_serf_rpc_connect(ntohs(sa.sin_port), 5000);
    CHECK(rpc);
    if (rpc && sos_serf_rpc_members_post(rpc) == 0) {
        CHECK(sos_serf_rpc_members_out(rpc));
        CHECK(sos_serf_rpc_members_post(rpc) == -1); /* one at a time */
        for (int i = 0; i < 100; i++) {
            result = sos_serf_rpc_read(rpc, msg);
            if (result != 0)
                break;
            struct pollfd p = {.fd = sos_serf_rpc_fd(rpc), .events = POLLIN};
            poll(&p, 1, 100);
        }
    }
    sos_serf_rpc_destroy(&rpc);
    CHECK(rpc == NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return result;
}

static void
s_test_fake(void)
{
    printf("  a fake agent on loopback\n");
    sos_serf_msg_t msg;
    CHECK(s_against_fake(S_SPLIT, &msg) == 1);
    CHECK(msg.kind == SOS_SERF_MSG_MEMBERS && msg.total == 3 && msg.alive == 2);
    CHECK(s_against_fake(S_HUGE_ARRAY, &msg) == -1);
    CHECK(s_against_fake(S_HUGE_STR, &msg) == -1);
    CHECK(s_against_fake(S_ERROR, &msg) == -1);
    CHECK(s_against_fake(S_UNKNOWN_SEQ, &msg) == -1);
    //  Nobody listening
    CHECK(sos_serf_rpc_connect(1, 500) == NULL);
}

static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

//  Read from rpc until a message comes, at most 10 s
static int
s_read_wait(sos_serf_rpc_t *rpc, sos_serf_msg_t *msg)
{
    for (int i = 0; i < 100; i++) {
        int rc = sos_serf_rpc_read(rpc, msg);
        if (rc)
            return rc;
        struct pollfd p = {.fd = sos_serf_rpc_fd(rpc), .events = POLLIN};
        poll(&p, 1, 100);
    }
    return 0;
}

static void
s_test_agent(void)
{
    char serf[4096];
    if (!sos_serf_find(serf, sizeof serf)) {
        printf("  a real agent: serf is not on PATH, skipped\n");
        return;
    }
    printf("  a real agent (%s)\n", serf);
    char bind[48], rpc_addr[48];
    int rpc_port = s_free_port();
    snprintf(bind, sizeof bind, "-bind=127.0.0.1:%d", s_free_port());
    snprintf(rpc_addr, sizeof rpc_addr, "-rpc-addr=127.0.0.1:%d", rpc_port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        //  The agent's banner is not the test's output
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(serf, serf, "agent", "-node=test", bind, rpc_addr, "-log-level=err", (char *)NULL);
        _exit(127);
    }
    sos_serf_rpc_t *rpc = NULL, *stream = NULL;
    for (int i = 0; i < 200 && !rpc; i++) {
        rpc = sos_serf_rpc_connect(rpc_port, 1000);
        if (!rpc)
            usleep(50000);
    }
    CHECK(rpc);
    if (rpc) {
        sos_serf_msg_t msg;
        CHECK(sos_serf_rpc_members_post(rpc) == 0);
        CHECK(s_read_wait(rpc, &msg) == 1);
        CHECK(msg.kind == SOS_SERF_MSG_MEMBERS && msg.alive == 1 && msg.total == 1);
        stream = sos_serf_rpc_connect(rpc_port, 5000);
        CHECK(stream && sos_serf_rpc_stream_user(stream, 5000) == 0);
        //  serf registers the stream just after it acknowledges it
        usleep(300000);
        CHECK(sos_serf_rpc_event(rpc, "test-event", 5000) == 0);
        CHECK(stream && s_read_wait(stream, &msg) == 1);
        CHECK(msg.kind == SOS_SERF_MSG_EVENT && strcmp(msg.name, "test-event") == 0);
    }
    sos_serf_rpc_destroy(&stream);
    sos_serf_rpc_destroy(&rpc);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int
main(void)
{
    printf("test_serf\n");
    signal(SIGPIPE, SIG_IGN);
    s_test_fake();
    s_test_agent();
    return test_done("test_serf");
}
