/*  sos_log.h: levelled logging on top of czmq's zsys (which has no level filter of its own).
    The level is process-wide, set once at start from --log-level. */
#ifndef SOS_LOG_H
#define SOS_LOG_H

#include <czmq.h>

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
