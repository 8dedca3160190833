/* switchyard logging: one line per event on stderr, text or JSON.
 * Invariant: the only process-wide mutable state besides struct runtime;
 * log_min_level is written by log_init() before threads start and by
 * log_set_level() (a reload) while workers read it: relaxed atomics, since a
 * worker seeing the new level a little late is fine. The format (text or
 * JSON) is a relaxed atomic too.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO,
    LOG_LVL_WARN,
    LOG_LVL_ERROR,
};

extern _Atomic(enum log_level) log_min_level;

/** Sets the threshold and routes libevent's own messages through log_emit(). */
void log_init(enum log_level min);

/** Changes the threshold while threads run (a reload). Thread-safe. */
void log_set_level(enum log_level min);

/** Chooses the line format: text (the default) or one JSON object per line
 *  with the keys time, level, module and msg. Thread-safe (a reload). */
void log_set_json(bool json);

/** Writes one line "TIME LEVEL MODULE: message" (or its JSON object) to
 *  stderr. Thread-safe. */
void log_emit(enum log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* No formatting cost when |lvl| is off: one relaxed load and a compare. */
#define LOG_AT(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) >= atomic_load_explicit(&log_min_level, memory_order_relaxed))                   \
            log_emit((lvl), LOG_MODULE, __VA_ARGS__);                                              \
    } while (0)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)

#endif
