/* gclient over TLS: channels with gRPC core SSL credentials, for the TLS tests.
 * Invariant: a TLS channel is an ordinary struct gc_chan; every gc_chan_*
 * call works on it.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_PEERS_GCLIENT_TLS_H
#define TESTS_PEERS_GCLIENT_TLS_H

#include <grpc/grpc_security.h>

#include "tests/peers/gclient.h"

/** Makes the channel credentials of a new channel (called after grpc_init). */
typedef grpc_channel_credentials *(*gc_creds_cb)(void *arg);

/** gc_chan_new() with the credentials |make|(|arg|) returns (taken); |make|
 *  NULL means insecure. */
struct gc_chan *gc_chan_new_creds(const char *target, gc_creds_cb make, void *arg);

/** A TLS channel to |target| trusting the CA certificates in the PEM file
 *  |ca_file|, presenting the client certificate |cert_file| with key
 *  |key_file| when both are non-NULL. Aborts if a file cannot be read. */
struct gc_chan *gc_chan_new_tls(const char *target, const char *ca_file, const char *cert_file,
                                const char *key_file);

#endif
