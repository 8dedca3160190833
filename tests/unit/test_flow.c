/* Unit tests of proxy/flow.c: the per-stream credit rule, in both directions,
 * through a fake source that records the credit it gets.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/buffer.h>

#include "proxy/flow.h"

struct fake_src {
    size_t conn, stream; /* credit given back, by level */
    int calls;
};

static void credit(void *src, size_t n, bool stream)
{
    struct fake_src *s = src;

    if (stream)
        s->stream += n;
    else
        s->conn += n;
    s->calls++;
}

static const struct proxy_flow_src_ops ops = {.credit = credit};

static struct proxy_flow f;
static struct fake_src src;
static struct evbuffer *out;
static uint8_t data[64 * 1024];

static void setup(void)
{
    proxy_flow_init(&f);
    memset(&src, 0, sizeof(src));
    proxy_flow_set_src(&f, &ops, &src);
    out = evbuffer_new();
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
}

static void teardown(void)
{
    proxy_flow_deinit(&f);
    evbuffer_free(out);
}

TestSuite(flow, .init = setup, .fini = teardown);

/* What the sender may still send on its stream: the window minus the bytes
 * it sent that were not credited at stream level. */
static size_t window_left(size_t window, size_t sent)
{
    return window - (sent - src.stream);
}

Test(flow, connection_credit_comes_at_once_stream_credit_when_written)
{
    proxy_flow_received(&f, 1000);
    proxy_flow_add(&f, data, 1000);
    cr_assert_eq(src.conn, 1000, "the connection window must come back as soon as buffered");
    cr_assert_eq(src.stream, 0, "nothing was written on: no stream credit yet");
    cr_assert_eq(proxy_flow_pending(&f), 1000);

    proxy_flow_write(&f, out, 400);
    cr_assert_eq(src.stream, 400);
    cr_assert_eq(evbuffer_get_length(out), 400);
    proxy_flow_write(&f, out, 600);
    cr_assert_eq(src.stream, 1000);
    cr_assert_eq(src.conn, 1000, "connection credit is never given twice");
    cr_assert_eq(proxy_flow_pending(&f), 0);
    cr_assert_eq(f.in, 1000);
    cr_assert_eq(f.out, 1000);
}

Test(flow, bytes_come_out_in_order_without_loss)
{
    uint8_t back[sizeof(data)];

    for (size_t off = 0; off < sizeof(data); off += 1000) {
        size_t n = sizeof(data) - off < 1000 ? sizeof(data) - off : 1000;

        proxy_flow_received(&f, n);
        proxy_flow_add(&f, data + off, n);
        if (off % 3000 == 0)
            proxy_flow_write(&f, out, proxy_flow_pending(&f) / 2);
    }
    proxy_flow_write(&f, out, proxy_flow_pending(&f));
    cr_assert_eq(evbuffer_get_length(out), sizeof(data));
    evbuffer_remove(out, back, sizeof(back));
    cr_assert(memcmp(back, data, sizeof(data)) == 0);
    cr_assert_eq(src.stream, sizeof(data));
    cr_assert_eq(src.conn, sizeof(data));
}

/* A stalled reader: the sender runs out of stream window after one window of
 * bytes, and the flow holds exactly that much. Its connection window was all
 * returned, so other streams of that connection keep going. */
Test(flow, a_stalled_reader_holds_one_stream_window_and_no_connection_window)
{
    const size_t window = 256 * 1024;
    size_t sent = 0;

    while (window_left(window, sent) > 0) {
        size_t n = window_left(window, sent) < 16384 ? window_left(window, sent) : 16384;

        proxy_flow_received(&f, n);
        proxy_flow_add(&f, data, n);
        sent += n;
    }
    cr_assert_eq(proxy_flow_pending(&f), window, "bounded by the stream window");
    cr_assert_eq(src.conn, window, "the connection window is whole again");
    cr_assert_eq(src.stream, 0);
    /* The reader takes 16 KiB: exactly that much window opens again. */
    proxy_flow_write(&f, out, 16384);
    cr_assert_eq(window_left(window, sent), 16384);
}

/* The other direction uses the same object with the roles swapped: the
 * client's request towards a backend that stops reading. */
Test(flow, the_request_direction_obeys_the_same_rule)
{
    struct fake_src client = {0};

    proxy_flow_set_src(&f, &ops, &client);
    proxy_flow_received(&f, 5000);
    proxy_flow_add(&f, data, 5000);
    cr_assert_eq(client.conn, 5000);
    cr_assert_eq(client.stream, 0);
    proxy_flow_write(&f, out, 5000);
    cr_assert_eq(client.stream, 5000);
    cr_assert_eq(src.calls, 0, "credit went to another source");
}

/* A filter that turns 3 source bytes into 4 (base64) or more (JSON): credit
 * counts source bytes, and all of it is back once the buffer runs empty. */
Test(flow, transformed_bytes_credit_the_source_bytes_once)
{
    proxy_flow_received(&f, 300);
    proxy_flow_add(&f, data, 400);
    proxy_flow_write(&f, out, 100);
    cr_assert_eq(src.stream, 100);
    proxy_flow_write(&f, out, 250);
    cr_assert_eq(src.stream, 300, "never more than the source sent");
    proxy_flow_write(&f, out, 50);
    cr_assert_eq(src.stream, 300);
    cr_assert_eq(proxy_flow_pending(&f), 0);
}

Test(flow, release_drops_the_bytes_and_returns_what_is_held)
{
    proxy_flow_received(&f, 2000);
    proxy_flow_add(&f, data, 2000);
    proxy_flow_write(&f, out, 500);
    proxy_flow_release(&f);
    cr_assert_eq(proxy_flow_pending(&f), 0);
    cr_assert_eq(src.stream, 2000);
    cr_assert_eq(src.conn, 2000);
    proxy_flow_release(&f);
    cr_assert_eq(src.stream, 2000, "released twice, credited once");
}

Test(flow, a_detached_source_gets_nothing)
{
    proxy_flow_received(&f, 100);
    proxy_flow_add(&f, data, 100);
    proxy_flow_set_src(&f, NULL, NULL);
    proxy_flow_write(&f, out, 100);
    proxy_flow_release(&f);
    cr_assert_eq(src.stream, 0);
    cr_assert_eq(src.calls, 1, "only the connection credit given before it left");
}

Test(flow, reset_empties_for_the_next_call)
{
    proxy_flow_received(&f, 10);
    proxy_flow_add(&f, data, 10);
    f.eof = true;
    proxy_flow_reset(&f);
    cr_assert_eq(proxy_flow_pending(&f), 0);
    cr_assert_not(f.eof);
    cr_assert_eq(f.in, 0);
    cr_assert_null(f.src);
}
