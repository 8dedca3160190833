/* libFuzzer harness: the INI loader (conf_load_string), schema and validation
 * included, fed arbitrary text.
 * Invariant: every input either loads (and frees cleanly) or fails with one
 * message that names the file, as conf.h promises; anything else aborts.
 * SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

#define NAME "fuzz.ini"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char err[1024];
    struct conf *c = NULL;
    int rc;

    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0'; /* conf_load_file() refuses a NUL; here it ends the text */
    rc = conf_load_string(text, NAME, &c, err, sizeof(err));
    if (rc == 0 && c == NULL) {
        fprintf(stderr, "fuzz check failed: conf_load_string: 0 without a conf\n");
        abort();
    }
    if (rc != 0 && (c != NULL || strncmp(err, NAME, strlen(NAME)) != 0)) {
        fprintf(stderr,
                "fuzz check failed: conf_load_string: %d, error not naming the file: '%s'\n", rc,
                err);
        abort();
    }
    conf_free(c);
    free(text);
    return 0;
}
