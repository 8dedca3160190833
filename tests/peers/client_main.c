/* sy-client: command-line front end to the gclient test library, for manual
 * checks and demos against sy-backend or switchyard.
 * Invariant: exit status 0 means every call ended with gRPC status OK.
 * SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/peers/gclient.h"
#include "tests/peers/peer.h"

#define MAX_MD  16
#define MAX_IDS 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sy-client TARGET COMMAND [options]\n"
            "commands:\n"
            "  unary | client-stream | server-stream | bidi   one Echo call (or more, see below)\n"
            "  stats [--reset]                    counters of a sy-backend\n"
            "  health [--service S]               grpc.health.v1 Check\n"
            "  set-health STATUS [--service S]    SERVING, NOT_SERVING, ... on a sy-backend\n"
            "  watch [--service S] [--timeout MS] grpc.health.v1 Watch, one line per update\n"
            "Echo options:\n"
            "  --size N            request payload bytes (0)\n"
            "  --count N           requests sent (1)\n"
            "  --response-size N   reply payload bytes (0 = echo)\n"
            "  --response-count N  server-stream replies (1)\n"
            "  --delay MS          backend delay before each reply (0)\n"
            "  --fail CODE         backend ends the call with this status\n"
            "  --timeout MS        deadline (10000; 0 = none)\n"
            "  --cancel-after N    cancel after N replies\n"
            "  --method PATH       call PATH instead of /sy.test.Echo/...\n"
            "  --authority A       :authority\n"
            "  -H KEY:VALUE        extra request metadata (repeatable)\n"
            "  --repeat N          N calls one after the other on one connection\n"
            "  --concurrent N      N calls at once on one connection\n"
            "  --wait-for-ready    wait for the connection instead of failing fast\n"
            "Prints one line per call; with --repeat or --concurrent also the calls per\n"
            "backend id. TARGET is HOST:PORT.\n");
}

static void print_result(const struct gc_result *r)
{
    printf("status=%d %s backend=%s replies=%d bytes=%llu sizes_ok=%s content_ok=%s "
           "elapsed_ms=%ld%s%s\n",
           r->status, peer_status_name(r->status), r->backend_id[0] ? r->backend_id : "-",
           r->replies, (unsigned long long)r->bytes_received, r->sizes_ok ? "yes" : "no",
           r->content_ok ? "yes" : "no", r->elapsed_ms, r->message[0] ? " message=" : "",
           r->message);
    if (r->deadline_ms >= 0 || r->previous_attempts > 0)
        printf("  backend saw: deadline_ms=%ld previous_attempts=%d\n", r->deadline_ms,
               r->previous_attempts);
}

struct tally {
    char id[MAX_IDS][64];
    int count[MAX_IDS];
    int n;
};

static void tally_add(struct tally *t, const char *id)
{
    if (!id[0])
        id = "-";
    for (int i = 0; i < t->n; i++) {
        if (strcmp(t->id[i], id) == 0) {
            t->count[i]++;
            return;
        }
    }
    if (t->n < MAX_IDS) {
        snprintf(t->id[t->n], sizeof(t->id[0]), "%s", id);
        t->count[t->n++] = 1;
    }
}

static int parse_kind(const char *s, enum gc_kind *k)
{
    for (int i = 0; i < GC_KIND_COUNT; i++) {
        if (strcmp(s, gc_kind_name((enum gc_kind)i)) == 0) {
            *k = (enum gc_kind)i;
            return 0;
        }
    }
    return -1;
}

static int watch_print(void *arg, int status)
{
    (void)arg;
    printf("%s\n", peer_serving_name(status));
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        O_SIZE = 256,
        O_COUNT,
        O_RSIZE,
        O_RCOUNT,
        O_DELAY,
        O_FAIL,
        O_TIMEOUT,
        O_CANCEL,
        O_METHOD,
        O_AUTH,
        O_REPEAT,
        O_CONC,
        O_WFR,
        O_SERVICE,
        O_RESET
    };
    static const struct option longopts[] = {
        {"size", required_argument, NULL, O_SIZE},
        {"count", required_argument, NULL, O_COUNT},
        {"response-size", required_argument, NULL, O_RSIZE},
        {"response-count", required_argument, NULL, O_RCOUNT},
        {"delay", required_argument, NULL, O_DELAY},
        {"fail", required_argument, NULL, O_FAIL},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"cancel-after", required_argument, NULL, O_CANCEL},
        {"method", required_argument, NULL, O_METHOD},
        {"authority", required_argument, NULL, O_AUTH},
        {"repeat", required_argument, NULL, O_REPEAT},
        {"concurrent", required_argument, NULL, O_CONC},
        {"wait-for-ready", no_argument, NULL, O_WFR},
        {"service", required_argument, NULL, O_SERVICE},
        {"reset", no_argument, NULL, O_RESET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct gc_md md[MAX_MD];
    char *mdbuf[MAX_MD];
    size_t nmd = 0;
    struct gc_opts o;
    const char *target, *cmd, *service = "";
    int repeat = 1, concurrent = 0, opt, rc = 0;
    bool reset = false;
    enum gc_kind kind = GC_UNARY;
    bool is_echo;

    if (argc < 3) {
        usage(argc > 1 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    target = argv[1];
    cmd = argv[2];
    is_echo = parse_kind(cmd, &kind) == 0;
    gc_opts_init(&o, kind);
    if (kind == GC_SERVER_STREAM)
        o.response_count = 3;
    optind = 3;
    while ((opt = getopt_long(argc, argv, "H:h", longopts, NULL)) != -1) {
        switch (opt) {
        case O_SIZE:
            o.request_size = strtoul(optarg, NULL, 10);
            break;
        case O_COUNT:
            o.request_count = atoi(optarg);
            break;
        case O_RSIZE:
            o.response_size = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_RCOUNT:
            o.response_count = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_DELAY:
            o.delay_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_FAIL:
            o.fail_code = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_TIMEOUT:
            o.timeout_ms = atoi(optarg);
            break;
        case O_CANCEL:
            o.cancel_after_replies = atoi(optarg);
            break;
        case O_METHOD:
            o.method = optarg;
            break;
        case O_AUTH:
            o.authority = optarg;
            break;
        case O_REPEAT:
            repeat = atoi(optarg);
            break;
        case O_CONC:
            concurrent = atoi(optarg);
            break;
        case O_WFR:
            o.wait_for_ready = true;
            break;
        case O_SERVICE:
            service = optarg;
            break;
        case O_RESET:
            reset = true;
            break;
        case 'H': {
            char *colon = strchr(optarg, ':');

            if (!colon || nmd == MAX_MD) {
                fprintf(stderr, "sy-client: -H expects KEY:VALUE (at most %d)\n", MAX_MD);
                return 2;
            }
            mdbuf[nmd] = strdup(optarg);
            if (!mdbuf[nmd])
                abort();
            mdbuf[nmd][colon - optarg] = '\0';
            md[nmd].key = mdbuf[nmd];
            md[nmd].value = mdbuf[nmd] + (colon - optarg) + 1;
            nmd++;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    o.md = md;
    o.nmd = nmd;

    if (is_echo) {
        struct tally t = {.n = 0};

        if (concurrent > 0) {
            struct gc_result *res = calloc((size_t)concurrent, sizeof(*res));
            int bad;

            if (!res)
                abort();
            bad = gc_concurrent(target, concurrent, &o, res);
            for (int i = 0; i < concurrent; i++) {
                print_result(&res[i]);
                tally_add(&t, res[i].backend_id);
            }
            if (bad < 0)
                printf("not all calls were in flight at once\n");
            rc = bad != 0;
            free(res);
        } else {
            struct gc_chan *ch = gc_chan_new(target);

            for (int i = 0; i < repeat; i++) {
                struct gc_result r;

                if (gc_chan_call(ch, &o, &r) != 0)
                    rc = repeat == 1 && r.status > 0 ? r.status : 1;
                print_result(&r);
                tally_add(&t, r.backend_id);
            }
            gc_chan_free(ch);
        }
        if (repeat > 1 || concurrent > 0) {
            for (int i = 0; i < t.n; i++)
                printf("%s: %d\n", t.id[i], t.count[i]);
        }
    } else if (strcmp(cmd, "stats") == 0) {
        struct gc_stats s;

        rc = gc_stats(target, reset, &s);
        if (rc == 0)
            printf("backend_id=%s calls_started=%llu calls_completed=%llu calls_cancelled=%llu "
                   "calls_active=%llu unary=%llu client_stream=%llu server_stream=%llu bidi=%llu "
                   "messages_received=%llu messages_sent=%llu bytes_sent=%llu health_checks=%llu "
                   "health_watches=%llu\n",
                   s.backend_id, (unsigned long long)s.calls_started,
                   (unsigned long long)s.calls_completed, (unsigned long long)s.calls_cancelled,
                   (unsigned long long)s.calls_active, (unsigned long long)s.unary,
                   (unsigned long long)s.client_stream, (unsigned long long)s.server_stream,
                   (unsigned long long)s.bidi, (unsigned long long)s.messages_received,
                   (unsigned long long)s.messages_sent, (unsigned long long)s.bytes_sent,
                   (unsigned long long)s.health_checks, (unsigned long long)s.health_watches);
        else
            printf("status=%d %s\n", rc, peer_status_name(rc));
    } else if (strcmp(cmd, "health") == 0) {
        int st;

        rc = gc_health_check(target, service, &st);
        if (rc == 0)
            printf("%s\n", peer_serving_name(st));
        else
            printf("status=%d %s\n", rc, peer_status_name(rc));
    } else if (strcmp(cmd, "set-health") == 0) {
        int st;

        if (optind >= argc || peer_serving_parse(argv[optind], &st) != 0) {
            fprintf(stderr, "sy-client: set-health expects SERVING, NOT_SERVING, ...\n");
            return 2;
        }
        rc = gc_set_health(target, service, st);
        printf("status=%d %s\n", rc, peer_status_name(rc));
    } else if (strcmp(cmd, "watch") == 0) {
        rc = gc_health_watch(target, service, o.timeout_ms, watch_print, NULL);
        printf("status=%d %s\n", rc, peer_status_name(rc));
    } else {
        fprintf(stderr, "sy-client: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = 2;
    }
    for (size_t i = 0; i < nmd; i++)
        free(mdbuf[i]);
    return rc;
}
