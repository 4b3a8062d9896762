/*  test_node_log.c: the limit on log lines per kind of event: a burst is written, the rest
    is held back and summed up once when the interval is over. */
#include "proto_test.h"
#include "sos_log.h"

int
main(void)
{
    test_init("test_node_log");
    sos_log_limit_t l = {0};
    uint64_t held = 99;
    uint64_t t = 1000;

    SECTION("the first lines of an interval are written, the rest held back");
    int written = 0;
    for (int i = 0; i < 1000; i++)
        if (sos_log_limit_take(&l, t + i, &held)) {
            written++;
            CHECK(held == 0);
        }
    CHECK(written == SOS_LOG_LIMIT_LINES);
    CHECK(l.held == 1000 - SOS_LOG_LIMIT_LINES);

    SECTION("no summary before the interval is over");
    CHECK(sos_log_limit_flush(&l, t + SOS_LOG_LIMIT_MS - 1) == 0);

    SECTION("the next event after the interval gets the summary and is written");
    CHECK(sos_log_limit_take(&l, t + SOS_LOG_LIMIT_MS, &held));
    CHECK(held == 1000 - SOS_LOG_LIMIT_LINES);

    SECTION("a flush after an interval gives the summary once, without an event");
    t += SOS_LOG_LIMIT_MS;
    for (int i = 0; i < 10; i++)
        sos_log_limit_take(&l, t + 1, &held);
    CHECK(sos_log_limit_flush(&l, t + SOS_LOG_LIMIT_MS) == 10 - SOS_LOG_LIMIT_LINES + 1);
    CHECK(sos_log_limit_flush(&l, t + 3 * SOS_LOG_LIMIT_MS) == 0);
    CHECK(sos_log_limit_take(&l, t + 3 * SOS_LOG_LIMIT_MS, &held) && held == 0);

    SECTION("a clock at 0 still opens an interval");
    sos_log_limit_t z = {0};
    for (int i = 0; i < 10; i++)
        sos_log_limit_take(&z, 0, &held);
    CHECK(z.held == 10 - SOS_LOG_LIMIT_LINES);
    return test_done("test_node_log");
}
