/* sd_notify(3)'s protocol (sdnotify.h).
 * SPDX-License-Identifier: MIT */
#include "core/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t plen;
    char msg[1024];
    va_list ap;
    int fd, n;
    ssize_t sent;

    if (path == NULL || path[0] == '\0')
        return 0;
    plen = strlen(path);
    /* An absolute path, or '@' for the abstract namespace (a leading NUL). */
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        errno = EMSGSIZE;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sent = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (const struct sockaddr *)&sun,
                  (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen));
    n = sent == (ssize_t)n ? 1 : -1;
    close(fd);
    return n;
}
