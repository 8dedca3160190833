/* Unit tests for the [admin] and [cluster.NAME] keys of the operator surface:
 * [admin] token_file and [cluster.NAME] required.
 * Invariant: no network, no sleeps; files live in a per-test temp dir.
 * SPDX-License-Identifier: MIT */
#include "conf/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

TestSuite(conf_admin, .timeout = 10);

#define MINIMAL "[cluster.a]\ntargets = 127.0.0.1:50061\n"

static char dir[64];

/* Writes |text| to a file in a fresh temp dir; returns its path (static). */
static const char *temp_file(const char *text)
{
    static char path[128];
    FILE *f;

    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/sy-conf-admin-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
    }
    snprintf(path, sizeof(path), "%s/token", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void cleanup(void)
{
    char path[128];

    if (dir[0] == '\0')
        return;
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    rmdir(dir);
    dir[0] = '\0';
}

static struct conf *load(const char *text, char *err, size_t errlen)
{
    struct conf *c = NULL;

    err[0] = '\0';
    if (conf_load_string(text, "t.ini", &c, err, errlen) != 0)
        return NULL;
    return c;
}

static struct conf *load_token(const char *content, char *err, size_t errlen)
{
    char text[512];

    snprintf(text, sizeof(text), "[admin]\ntoken_file = %s\n" MINIMAL, temp_file(content));
    return load(text, err, errlen);
}

Test(conf_admin, token_file_defaults_to_none, .fini = cleanup)
{
    char err[512];
    struct conf *c = load(MINIMAL, err, sizeof(err));

    cr_assert_not_null(c, "%s", err);
    cr_assert_null(c->admin.token_file);
    cr_assert_null(c->admin.token);
    conf_free(c);
}

Test(conf_admin, token_file_is_read_and_trimmed, .fini = cleanup)
{
    char err[512];
    struct conf *c = load_token("  s3cr3t-T0ken_~+/==\n", err, sizeof(err));

    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(c->admin.token, "s3cr3t-T0ken_~+/==");
    cr_assert_eq(c->admin.token_len, strlen("s3cr3t-T0ken_~+/=="));
    conf_free(c);
}

Test(conf_admin, token_file_errors_name_the_key_and_hide_the_content, .fini = cleanup)
{
    char err[512];
    static const char *const bad[] = {"", "\n\n", "two words\n", "one\ntwo\n", "a\"b\n"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_null(load_token(bad[i], err, sizeof(err)), "'%s' was accepted", bad[i]);
        cr_assert_eq(strncmp(err, "t.ini:2: [admin] token_file: expected ", 38), 0, "%s", err);
        cr_assert_not_null(strstr(err, "one token"), "%s", err);
        if (bad[i][0] != '\0' && bad[i][0] != '\n')
            cr_assert_null(strstr(err, "words"), "the content leaked: %s", err);
    }
    cr_assert_null(load("[admin]\ntoken_file = /nonexistent/token\n" MINIMAL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "t.ini:2: [admin] token_file: cannot open /nonexistent/token"),
                       "%s", err);
    cr_assert_null(load("[admin]\ntoken_file =\n" MINIMAL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "t.ini:2: [admin] token_file: expected a file name"), "%s", err);
}

Test(conf_admin, required_defaults_to_yes_and_takes_a_bool)
{
    char err[512];
    struct conf *c = load(MINIMAL "[cluster.b]\ntargets = 127.0.0.1:50062\nroutes = /b.\n"
                                  "required = no\n",
                          err, sizeof(err));

    cr_assert_not_null(c, "%s", err);
    cr_assert(c->clusters[0].required);
    cr_assert_not(c->clusters[1].required);
    conf_free(c);
    cr_assert_null(load(MINIMAL "required = maybe\n", err, sizeof(err)));
    cr_assert_not_null(strstr(err, "t.ini:3: [cluster.a] required: expected"), "%s", err);
}
