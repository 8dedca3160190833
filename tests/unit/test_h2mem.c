/* Unit tests of proxy/h2mem.c: nghttp2's (and libevent's) allocator with a
 * per-thread cache of small blocks. Blocks are reused, zeroed by calloc, kept
 * by realloc, the cache is bounded and released, a real client and server
 * session pair (nghttp2, in memory) runs a request through it, and a
 * session's frame buffer and stream map live in slots an idle connection
 * gives back.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/buffer.h>

#include "proxy/h2mem.h"

static nghttp2_mem *m;

static void setup(void)
{
    m = proxy_h2mem();
    proxy_h2mem_release();
}

static void teardown(void)
{
    proxy_h2mem_release();
}

TestSuite(h2mem, .init = setup, .fini = teardown, .timeout = 10);

Test(h2mem, small_blocks_are_reused_by_size_class)
{
    void *a = m->malloc(40, m->mem_user_data), *b;

    cr_assert_not_null(a);
    cr_assert_eq((uintptr_t)a % 16, 0, "blocks are 16-byte aligned");
    memset(a, 0xab, 40);
    m->free(a, m->mem_user_data);
    cr_assert_eq(proxy_h2mem_cached(), 48, "one 48-byte block kept");
    b = m->malloc(33, m->mem_user_data); /* the same class (33..48) */
    cr_assert_eq(b, a, "the kept block comes back");
    cr_assert_eq(proxy_h2mem_cached(), 0);
    m->free(b, m->mem_user_data);
}

Test(h2mem, calloc_zeroes_a_reused_block)
{
    uint8_t *a = m->malloc(100, m->mem_user_data), *b;

    memset(a, 0xff, 100);
    m->free(a, m->mem_user_data);
    b = m->calloc(10, 10, m->mem_user_data);
    cr_assert_eq(b, a);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(b[i], 0, "byte %d not zeroed", i);
    m->free(b, m->mem_user_data);
    cr_assert_null(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data), "overflow refused");
}

Test(h2mem, large_blocks_are_not_kept)
{
    void *a = m->malloc(16394, m->mem_user_data);

    cr_assert_not_null(a);
    memset(a, 1, 16394);
    m->free(a, m->mem_user_data);
    cr_assert_eq(proxy_h2mem_cached(), 0);
}

Test(h2mem, realloc_keeps_the_bytes)
{
    uint8_t *a = m->malloc(20, m->mem_user_data), *b, *c;

    for (int i = 0; i < 20; i++)
        a[i] = (uint8_t)i;
    b = m->realloc(a, 30, m->mem_user_data); /* same class: in place */
    cr_assert_eq(b, a);
    c = m->realloc(b, 5000, m->mem_user_data); /* large: moved */
    cr_assert_not_null(c);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(c[i], i);
    c[4999] = 7;
    c = m->realloc(c, 9000, m->mem_user_data);
    cr_assert_eq(c[4999], 7);
    cr_assert_eq(c[19], 19);
    m->free(c, m->mem_user_data);
    cr_assert_not_null(a = m->realloc(NULL, 8, m->mem_user_data));
    m->free(a, m->mem_user_data);
}

Test(h2mem, the_cache_is_bounded_and_released)
{
    enum {
        N = H2MEM_CACHE_MAX / 512 + 64
    };
    static void *p[N];

    for (int i = 0; i < N; i++)
        cr_assert_not_null(p[i] = m->malloc(512, m->mem_user_data));
    for (int i = 0; i < N; i++)
        m->free(p[i], m->mem_user_data);
    cr_assert_eq(proxy_h2mem_cached(), H2MEM_CACHE_MAX, "kept %zu", proxy_h2mem_cached());
    proxy_h2mem_release();
    cr_assert_eq(proxy_h2mem_cached(), 0);
}

/* ---- a session pair ---- */

struct wire {
    uint8_t buf[65536];
    size_t len;
    int headers, data, closed;
};

static ssize_t send_cb(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *ud)
{
    struct wire *w = ud;

    (void)s;
    (void)flags;
    cr_assert_leq(w->len + n, sizeof(w->buf));
    memcpy(w->buf + w->len, d, n);
    w->len += n;
    return (ssize_t)n;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct wire *w = ud;

    (void)s;
    if (f->hd.type == NGHTTP2_HEADERS)
        w->headers++;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                   void *ud)
{
    struct wire *w = ud;

    (void)s;
    (void)flags;
    (void)id;
    (void)d;
    w->data += (int)n;
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct wire *w = ud;

    (void)s;
    (void)id;
    (void)code;
    w->closed++;
    return 0;
}

/* Moves what |from| wrote into |to|'s session. */
static void deliver(struct wire *from, nghttp2_session *to)
{
    cr_assert_eq(nghttp2_session_mem_recv(to, from->buf, from->len), (ssize_t)from->len);
    from->len = 0;
}

/* The request and response the session tests exchange. */
static const nghttp2_nv req[] = {
    {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
    {(uint8_t *)":path", (uint8_t *)"/sy.test.Echo/Unary", 5, 19, 0},
    {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
};
static const nghttp2_nv resp[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
                                  {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};

static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *cbs;

    cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    return cbs;
}

/* One request from |cli| answered by |srv|, and what each owes the other
 * after it (SETTINGS ACKs, window updates) delivered. */
static void round_trip(nghttp2_session *cli, struct wire *cw, nghttp2_session *srv, struct wire *sw)
{
    int32_t id = nghttp2_submit_request(cli, NULL, req, sizeof(req) / sizeof(req[0]), NULL, NULL);

    cr_assert_gt(id, 0);
    cr_assert_eq(nghttp2_session_send(cli), 0);
    deliver(cw, srv);
    cr_assert_eq(nghttp2_submit_response(srv, id, resp, sizeof(resp) / sizeof(resp[0]), NULL), 0);
    cr_assert_eq(nghttp2_session_send(srv), 0);
    deliver(sw, cli);
    cr_assert_eq(nghttp2_session_send(cli), 0); /* SETTINGS ACK, and so on */
    deliver(cw, srv);
    cr_assert_eq(nghttp2_session_send(srv), 0);
    deliver(sw, cli);
}

Test(h2mem, sessions_run_calls_through_it)
{
    nghttp2_session_callbacks *cbs = callbacks();
    nghttp2_session *cli, *srv;
    struct wire cw = {0}, sw = {0};

    cr_assert_eq(nghttp2_session_client_new3(&cli, cbs, &cw, NULL, m), 0);
    cr_assert_eq(nghttp2_session_server_new3(&srv, cbs, &sw, NULL, m), 0);
    cr_assert_eq(nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    cr_assert_eq(nghttp2_submit_settings(srv, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    for (int i = 0; i < 50; i++)
        round_trip(cli, &cw, srv, &sw);
    cr_assert_eq(sw.headers, 50, "requests the server saw");
    cr_assert_eq(cw.headers, 50, "responses the client saw");
    cr_assert_eq(cw.closed, 50);
    cr_assert_gt(proxy_h2mem_cached(), 0, "the calls' blocks were kept for the next");
    nghttp2_session_del(cli);
    nghttp2_session_del(srv);
    nghttp2_session_callbacks_del(cbs);
}

/* A session made with an owner gets its frame buffer in a page-aligned slot;
 * trimming it between calls (nothing queued) zeroes those pages and the
 * session goes on as before; deleting the session gives the slot back. */
Test(h2mem, a_trimmed_frame_buffer_comes_back_as_zero_pages)
{
    nghttp2_session_callbacks *cbs = callbacks();
    nghttp2_session *cli, *srv;
    struct proxy_h2mem_owner own;
    struct wire cw = {0}, sw = {0};
    const uint8_t *slot = NULL;

    cr_assert_eq(nghttp2_session_client_new3(&cli, cbs, &cw, NULL, m), 0);
    cr_assert_eq(nghttp2_session_server_new3(&srv, cbs, &sw, NULL, proxy_h2mem_owner_init(&own)),
                 0);
    proxy_h2mem_created(&own);
    for (size_t i = 0; i < H2MEM_OWNER_MAX; i++) {
        if (own.slots[i] != NULL && own.sizes[i] >= H2MEM_FRAMES_MIN)
            slot = own.slots[i];
    }
    cr_assert_not_null(slot, "the frame buffer got a slot");
    cr_assert_eq((uintptr_t)slot % 4096, 0, "page-aligned");
    cr_assert_eq(nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    cr_assert_eq(nghttp2_submit_settings(srv, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    for (int i = 0; i < 20; i++) {
        round_trip(cli, &cw, srv, &sw);
        cr_assert_eq(nghttp2_session_want_write(srv), 0);
        cr_assert_neq(memcmp(slot, (const uint8_t[9]){0}, 9), 0, "a frame was written there");
        own.trimmed = false; /* fe.c clears it when nghttp2 sends */
        /* The frame buffer (the stream map only when all zero: here the
         * session keeps its closed streams for RFC 7540 priorities). */
        cr_assert_geq(proxy_h2mem_trim(&own), H2MEM_SLOT);
        cr_assert_eq(proxy_h2mem_trim(&own), 0, "once until something is written");
        cr_assert_eq(memcmp(slot, (const uint8_t[9]){0}, 9), 0, "zero pages after the trim");
    }
    cr_assert_eq(sw.headers, 20, "requests the server saw");
    cr_assert_eq(cw.headers, 20, "responses the client saw");
    nghttp2_session_del(srv);
    cr_assert_null(own.slots[0], "the slots went back with the session");
    cr_assert_null(own.slots[1]);
    nghttp2_session_del(cli);
    nghttp2_session_callbacks_del(cbs);
}

/* Blocks of 1 and 2 KiB have classes of their own (libevent's buffer
 * chains); larger ones are not kept. */
Test(h2mem, kilobyte_blocks_are_reused_by_power_of_two)
{
    static const size_t sizes[] = {513, 1024, 1500, 2048};
    static const size_t kept[] = {1024, 1024, 2048, 2048};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *a = m->malloc(sizes[i], m->mem_user_data), *b;

        memset(a, 0x5a, sizes[i]);
        m->free(a, m->mem_user_data);
        cr_assert_eq(proxy_h2mem_cached(), kept[i], "%zu bytes: kept %zu", sizes[i],
                     proxy_h2mem_cached());
        b = m->malloc(kept[i], m->mem_user_data);
        cr_assert_eq(b, a, "%zu bytes: the kept block comes back", sizes[i]);
        m->free(b, m->mem_user_data);
        proxy_h2mem_release();
    }
    m->free(m->malloc(2049, m->mem_user_data), m->mem_user_data);
    cr_assert_eq(proxy_h2mem_cached(), 0, "2049 bytes: not kept");
}

/* libevent allocates through the cache once told to: an evbuffer's chain
 * comes back to it when the buffer is freed. */
Test(h2mem, libevent_buffer_chains_come_from_the_cache)
{
    struct evbuffer *b;
    char msg[100] = {0};

    proxy_h2mem_for_libevent();
    b = evbuffer_new();
    cr_assert_not_null(b);
    cr_assert_eq(evbuffer_add(b, msg, sizeof(msg)), 0);
    proxy_h2mem_release();
    evbuffer_free(b);
    cr_assert_geq(proxy_h2mem_cached(), 1024, "the chain (and the buffer) were kept: %zu",
                  proxy_h2mem_cached());
}
