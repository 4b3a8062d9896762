/*  sos_log.h: levelled logging on top of czmq's zsys (which has no level filter of its own).
    The level is process-wide, set once at start from --log-level. */
#ifndef SOS_LOG_H
#define SOS_LOG_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    SOS_LOG_ERROR = 0,
    SOS_LOG_WARNING = 1,
    SOS_LOG_NOTICE = 2,
    SOS_LOG_INFO = 3,
    SOS_LOG_DEBUG = 4,
} sos_log_level_t;

/*  Parse "error", "warning", "notice", "info" or "debug". Returns -1 if unknown. */
int sos_log_level_parse(const char *name);
void sos_log_set_level(sos_log_level_t level);
sos_log_level_t sos_log_get_level(void);

/*  A limit on the lines that one kind of event may write, so that a flood of hostile input
    cannot fill the disk with log lines: at most SOS_LOG_LIMIT_LINES lines in an interval of
    SOS_LOG_LIMIT_MS, and for the lines held back, one summary once the interval is over.
    Zero-initialised; owned by whoever counts the event (one per kind). */
#define SOS_LOG_LIMIT_LINES 5
#define SOS_LOG_LIMIT_MS    60000

typedef struct {
    uint64_t start_ms; /* when the current interval began (0: none yet) */
    uint32_t lines;    /* lines written in it */
    uint64_t held;     /* lines held back in it */
} sos_log_limit_t;

/*  Account one event at now_ms (a monotonic clock). Returns true if its line may be written.
    When the event opens a new interval and the last one held lines back, *held_p is set to
    their number (else 0), for the caller to write as a summary first. */
bool sos_log_limit_take(sos_log_limit_t *limit, uint64_t now_ms, uint64_t *held_p);

/*  Close the interval if it is over at now_ms; returns the lines it held back (0 if it is
    not over or held none), for the caller to write as a summary. Call it now and then, so
    that the summary of the last burst of a flood is written even if no event follows. */
uint64_t sos_log_limit_flush(sos_log_limit_t *limit, uint64_t now_ms);

/*  The two above on the monotonic clock, with the summary written as a warning
    "<what>: K more not logged in the last 60 s". sos_log_limit_line returns true if the
    caller may write its line for this event; sos_log_limit_summary only writes a summary
    that is due (call it now and then). */
bool sos_log_limit_line(sos_log_limit_t *limit, const char *what);
void sos_log_limit_summary(sos_log_limit_t *limit, const char *what);

#define sos_log_error(...)                                                                         \
    do {                                                                                           \
        zsys_error(__VA_ARGS__);                                                                   \
    } while (0)
#define sos_log_warning(...)                                                                       \
    do {                                                                                           \
        if (sos_log_get_level() >= SOS_LOG_WARNING)                                                \
            zsys_warning(__VA_ARGS__);                                                             \
    } while (0)
#define sos_log_notice(...)                                                                        \
    do {                                                                                           \
        if (sos_log_get_level() >= SOS_LOG_NOTICE)                                                 \
            zsys_notice(__VA_ARGS__);                                                              \
    } while (0)
#define sos_log_info(...)                                                                          \
    do {                                                                                           \
        if (sos_log_get_level() >= SOS_LOG_INFO)                                                   \
            zsys_info(__VA_ARGS__);                                                                \
    } while (0)
#define sos_log_debug(...)                                                                         \
    do {                                                                                           \
        if (sos_log_get_level() >= SOS_LOG_DEBUG)                                                  \
            zsys_debug(__VA_ARGS__);                                                               \
    } while (0)

#endif
