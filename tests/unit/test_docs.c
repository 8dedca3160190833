/* Keeps docs/configuration.md in step with conf's keyword table: every key
 * of the table has one row in its section's table, every row names a key
 * that exists, and the row's type, default and range are the table's.
 * Invariant: reads the doc from $SY_TOP (scripts/run-tests.sh exports it),
 * else from the working directory; links conf only, no network.
 * SPDX-License-Identifier: MIT */
#include "conf/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#define MAX_ROWS  256
#define MAX_CELLS 8

/* One table row of the doc: "| `key` | type | `default` | range | on reload | meaning |". */
struct row {
    int line;
    char section[64]; /* from the last "## `[SECTION]`" heading */
    char cell[MAX_CELLS][512];
    int ncells;
    int seen; /* matched by a keyword */
};

static struct row rows[MAX_ROWS];
static int nrows;
static char doc_path[1024];

/* Removes surrounding blanks, backticks and '*' (markdown emphasis) in place. */
static void unmark(char *s)
{
    char *b = s, *e = s + strlen(s);

    while (*b == ' ' || *b == '`' || *b == '*')
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '`' || e[-1] == '*'))
        e--;
    memmove(s, b, (size_t)(e - b));
    s[e - b] = '\0';
}

static void load_doc(void)
{
    const char *top = getenv("SY_TOP");
    char line[4096], section[64] = "";
    FILE *f;
    int lineno = 0;

    snprintf(doc_path, sizeof(doc_path), "%s/docs/configuration.md", top && *top ? top : ".");
    f = fopen(doc_path, "r");
    cr_assert_not_null(f, "cannot open %s (set SY_TOP to the repository)", doc_path);
    nrows = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        struct row *r;
        char *p, *bar;

        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "## `[", 5) == 0) {
            p = line + 5;
            snprintf(section, sizeof(section), "%.*s", (int)strcspn(p, "]"), p);
            continue;
        }
        if (strncmp(line, "## ", 3) == 0) {
            section[0] = '\0'; /* a section without keys, such as "## Syntax" */
            continue;
        }
        if (section[0] == '\0' || strncmp(line, "| `", 3) != 0)
            continue;
        cr_assert_lt(nrows, MAX_ROWS, "too many rows in %s", doc_path);
        r = &rows[nrows++];
        memset(r, 0, sizeof(*r));
        r->line = lineno;
        snprintf(r->section, sizeof(r->section), "%s", section);
        p = line + 1;
        while ((bar = strchr(p, '|')) != NULL && r->ncells < MAX_CELLS) {
            snprintf(r->cell[r->ncells], sizeof(r->cell[0]), "%.*s", (int)(bar - p), p);
            unmark(r->cell[r->ncells]);
            r->ncells++;
            p = bar + 1;
        }
        cr_assert_eq(r->ncells, 6,
                     "%s:%d: expected 6 cells (key, type, default, range, on reload, "
                     "meaning), got %d",
                     doc_path, lineno, r->ncells);
    }
    fclose(f);
    cr_assert_gt(nrows, 0, "%s has no key tables", doc_path);
}

TestSuite(docs, .init = load_doc, .timeout = 10);

static struct row *find_row(const char *section, const char *name)
{
    for (int i = 0; i < nrows; i++)
        if (strcmp(rows[i].section, section) == 0 && strcmp(rows[i].cell[0], name) == 0)
            return &rows[i];
    return NULL;
}

Test(docs, every_key_of_the_table_is_documented)
{
    struct conf_keyword_info k;
    int missing = 0;

    for (size_t i = 0; i < conf_keyword_count(); i++) {
        conf_keyword_at(i, &k);
        if (find_row(k.section, k.name) == NULL) {
            cr_log_error("%s: no row for [%s] %s (type %s, default %s%s%s)", doc_path, k.section,
                         k.name, k.type, k.deflt, k.range[0] ? ", range " : "", k.range);
            missing++;
        }
    }
    cr_expect_eq(missing, 0, "%d key(s) of conf's keyword table missing from %s", missing,
                 doc_path);
}

Test(docs, every_documented_key_exists_once)
{
    struct conf_keyword_info k;
    int unknown = 0;

    for (int i = 0; i < nrows; i++) {
        bool found = false;

        for (size_t j = 0; j < conf_keyword_count() && !found; j++) {
            conf_keyword_at(j, &k);
            found = strcmp(k.section, rows[i].section) == 0 && strcmp(k.name, rows[i].cell[0]) == 0;
        }
        if (!found) {
            cr_log_error("%s:%d: [%s] %s is not a key switchyard knows", doc_path, rows[i].line,
                         rows[i].section, rows[i].cell[0]);
            unknown++;
        }
        for (int j = 0; j < i; j++)
            cr_expect(strcmp(rows[j].section, rows[i].section) != 0 ||
                          strcmp(rows[j].cell[0], rows[i].cell[0]) != 0,
                      "%s:%d: [%s] %s documented twice (also line %d)", doc_path, rows[i].line,
                      rows[i].section, rows[i].cell[0], rows[j].line);
    }
    cr_expect_eq(unknown, 0, "%d documented key(s) unknown to switchyard", unknown);
}

Test(docs, types_defaults_ranges_and_reload_match)
{
    struct conf_keyword_info k;

    for (size_t i = 0; i < conf_keyword_count(); i++) {
        struct row *r;
        const char *range;

        conf_keyword_at(i, &k);
        r = find_row(k.section, k.name);
        if (r == NULL)
            continue; /* reported by every_key_of_the_table_is_documented */
        range = strcmp(r->cell[3], "—") == 0 ? "" : r->cell[3];
        cr_expect_str_eq(r->cell[1], k.type, "%s:%d: [%s] %s: type '%s', the loader says '%s'",
                         doc_path, r->line, k.section, k.name, r->cell[1], k.type);
        cr_expect_str_eq(r->cell[2], k.deflt, "%s:%d: [%s] %s: default '%s', the loader says '%s'",
                         doc_path, r->line, k.section, k.name, r->cell[2], k.deflt);
        cr_expect_str_eq(range, k.range, "%s:%d: [%s] %s: range '%s', the loader says '%s'",
                         doc_path, r->line, k.section, k.name, range, k.range);
        cr_expect(strncmp(r->cell[4], "reload", 6) == 0 || strcmp(r->cell[4], "restart") == 0,
                  "%s:%d: [%s] %s: 'on reload' is '%s', expected reload... or restart", doc_path,
                  r->line, k.section, k.name, r->cell[4]);
        cr_expect(strlen(r->cell[5]) > 10, "%s:%d: [%s] %s: no meaning", doc_path, r->line,
                  k.section, k.name);
    }
}
