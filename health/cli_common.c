/* Durations of the switchyard-health subcommands (cli_common.h).
 * SPDX-License-Identifier: MIT */
#include "health/cli_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hc_cli_duration_parse(const char *s, bool bare_seconds, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    char *end;
    double v;

    /* strtod alone would accept "inf", "nan", hex and leading blanks. */
    if (!s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '.' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0)
        return -1;
    if (*end == '\0') {
        if (!bare_seconds)
            return -1;
        v *= 1000;
    } else {
        size_t i;

        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcmp(end, units[i].unit) == 0)
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return -1;
        v *= units[i].ms;
    }
    if (v > 24.0 * 3600000)
        return -1;
    *ms = (int64_t)ceil(v);
    return 0;
}

const char *hc_cli_duration_fmt(int64_t ms, char *buf, size_t buflen)
{
    if (ms < 1000)
        snprintf(buf, buflen, "%lldms", (long long)ms);
    else if (ms % 60000 == 0)
        snprintf(buf, buflen, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, buflen, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, buflen, "%.3gs", (double)ms / 1000.0);
    return buf;
}
