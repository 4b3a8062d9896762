/*  sos_log.c: the process-wide log level behind the sos_log_* macros.
    One static, written once at start-up before any thread exists. */
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
