/* systemd's service notification (Type=notify): one datagram to the socket
 * named by $NOTIFY_SOCKET, the protocol of sd_notify(3), written here rather
 * than linked from libsystemd (which would map six more libraries, about
 * 1 MiB of RSS, for one sendto()).
 * Invariant: no state; any thread; does nothing without NOTIFY_SOCKET.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_SDNOTIFY_H
#define CORE_SDNOTIFY_H

/** Sends the newline-separated assignments |fmt| (printf-style, e.g.
 *  "READY=1\nSTATUS=...") to $NOTIFY_SOCKET: a filesystem path, or an
 *  abstract socket when it starts with '@'. Returns 1 when sent, 0 when
 *  NOTIFY_SOCKET is unset, -1 on an error (errno set); the caller may
 *  ignore it, as with sd_notify(). */
int sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
