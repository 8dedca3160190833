/* Logging to stderr, one write(2) per line so lines from threads never mix.
 * JSON lines are built by jansson; a message is made valid UTF-8 first (it
 * may quote bytes a client sent), so every line parses.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "log"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/utf8.h"

_Atomic(enum log_level) log_min_level = LOG_LVL_INFO;
static atomic_bool log_json;

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

void log_set_json(bool json)
{
    atomic_store_explicit(&log_json, json, memory_order_relaxed);
}

/* {"time":"...","level":"info","module":"call","msg":"..."} into |line|. */
static size_t json_line(char *line, size_t size, const char *ts, enum log_level lvl,
                        const char *mod, const char *msg, size_t msglen)
{
    char clean[2048];
    json_t *j;
    size_t n;

    utf8_clean((const uint8_t *)msg, msglen, clean, sizeof(clean));
    j = json_pack("{s:s, s:s, s:s, s:s}", "time", ts, "level", level_names[lvl], "module", mod,
                  "msg", clean);
    if (j == NULL)
        return 0;
    n = json_dumpb(j, line, size - 1, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (n == 0 || n > size - 1)
        return 0; /* did not fit: the caller falls back to text */
    line[n++] = '\n';
    return n;
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
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        char ts[40], msg[2048], out[4096];
        size_t olen;

        snprintf(ts, sizeof(ts), "%.*s.%03ldZ", (int)n, line, (long)(tv.tv_usec / 1000));
        va_start(ap, fmt);
        k = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        olen = json_line(out, sizeof(out), ts, lvl, mod, msg,
                         k < 0                     ? 0
                         : (size_t)k < sizeof(msg) ? (size_t)k
                                                   : sizeof(msg) - 1);
        if (olen > 0) {
            if (write(STDERR_FILENO, out, olen) < 0) {
                /* nowhere left to report it */
            }
            return;
        }
    }
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
