/* Logging to stderr, one write(2) per line so lines from threads never mix.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "log"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

_Atomic(enum log_level) log_min_level = LOG_LVL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void on_libevent_log(int severity, const char *msg)
{
    enum log_level lvl = severity >= EVENT_LOG_ERR    ? LOG_LVL_ERROR
                         : severity >= EVENT_LOG_WARN ? LOG_LVL_WARN
                         : severity >= EVENT_LOG_MSG  ? LOG_LVL_INFO
                                                      : LOG_LVL_DEBUG;

    if (lvl >= atomic_load_explicit(&log_min_level, memory_order_relaxed))
        log_emit(lvl, "libevent", "%s", msg);
}

void log_init(enum log_level min)
{
    atomic_store_explicit(&log_min_level, min, memory_order_relaxed);
    event_set_log_callback(on_libevent_log);
}

void log_set_level(enum log_level min)
{
    atomic_store_explicit(&log_min_level, min, memory_order_relaxed);
}

void log_emit(enum log_level lvl, const char *mod, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s: ", (long)(tv.tv_usec / 1000),
                 level_names[lvl], mod);
    if (k > 0)
        n += (size_t)k;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}
