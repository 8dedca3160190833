/* gclient over TLS; see gclient_tls.h.
 * Invariant: the PEM texts live only until the credentials are created (the
 * core copies them).
 * SPDX-License-Identifier: MIT */
#include "tests/peers/gclient_tls.h"

#include <stdio.h>
#include <stdlib.h>

struct tls_files {
    const char *ca, *cert, *key;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "gclient_tls: cannot read %s\n", path);
        abort();
    }
    buf = calloc(1, (size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    return buf;
}

static grpc_channel_credentials *make_tls(void *arg)
{
    const struct tls_files *t = arg;
    char *ca = slurp(t->ca);
    char *cert = t->cert != NULL ? slurp(t->cert) : NULL;
    char *key = t->key != NULL ? slurp(t->key) : NULL;
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    grpc_channel_credentials *creds =
        grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL, NULL);

    free(ca);
    free(cert);
    free(key);
    return creds;
}

struct gc_chan *gc_chan_new_tls(const char *target, const char *ca_file, const char *cert_file,
                                const char *key_file)
{
    struct tls_files t = {ca_file, cert_file, key_file};

    return gc_chan_new_creds(target, make_tls, &t);
}
