/*  sos_log.c: the process-wide log level behind the sos_log_* macros, and the limit on lines
    per kind of event. One static, written once at start-up before any thread exists. */
#include <string.h>

#include "sos_log.h"

static sos_log_level_t s_level = SOS_LOG_NOTICE;

int
sos_log_level_parse(const char *name)
{
    static const char *names[] = {"error", "warning", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void
sos_log_set_level(sos_log_level_t level)
{
    s_level = level;
}

sos_log_level_t
sos_log_get_level(void)
{
    return s_level;
}

uint64_t
sos_log_limit_flush(sos_log_limit_t *limit, uint64_t now_ms)
{
    if (!limit->start_ms || now_ms < limit->start_ms + SOS_LOG_LIMIT_MS)
        return 0;
    uint64_t held = limit->held;
    limit->start_ms = 0;
    limit->lines = 0;
    limit->held = 0;
    return held;
}

bool
sos_log_limit_take(sos_log_limit_t *limit, uint64_t now_ms, uint64_t *held_p)
{
    *held_p = sos_log_limit_flush(limit, now_ms);
    if (!limit->start_ms)
        limit->start_ms = now_ms ? now_ms : 1;
    if (limit->lines < SOS_LOG_LIMIT_LINES) {
        limit->lines++;
        return true;
    }
    limit->held++;
    return false;
}

static void
s_summary(const char *what, uint64_t held)
{
    if (held)
        sos_log_warning("%s: %llu more not logged in the last %d s", what, (unsigned long long)held,
                        SOS_LOG_LIMIT_MS / 1000);
}

bool
sos_log_limit_line(sos_log_limit_t *limit, const char *what)
{
    uint64_t held = 0;
    bool write = sos_log_limit_take(limit, (uint64_t)zclock_mono(), &held);
    s_summary(what, held);
    return write;
}

void
sos_log_limit_summary(sos_log_limit_t *limit, const char *what)
{
    s_summary(what, sos_log_limit_flush(limit, (uint64_t)zclock_mono()));
}
