/*  intake's live board stream (GET /api/v1/board/stream, server-sent events) over a raw loopback
    socket: gl-intake as a process against a private redis-server, no reporting configured.

    A supervisor's stream starts with an `event: board` whose queue is what GET /api/v1/queue
    answers (but for the clock), whose agents are GET /api/v1/agents' items (with display
    names), and whose wallboard is the error reporting's absence gives; a call offered through
    POST /api/v1/calls reaches the stream as the next event; an agent gets 403, a client without
    credentials 401, a query parameter 400, HEAD the headers alone; beyond GL_INTAKE_STREAMS_MAX
    streams 503 too_many_streams; a client that closes its socket is forgotten (the open-streams
    gauge on /metrics back to 0, and a new stream can take its place); a client that does not
    read while the board grows is dropped past 1 MiB waiting (the dropped counter, the gauge,
    and the reply's last chunk after what was queued); intake stopped with
    SIGTERM while a stream is open ends it and exits 0 (under ASan: without a leak).

    ctest: timeout=240 */
#define _GNU_SOURCE     //  memmem, strcasestr
#include "gl/gl_id.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include "gl_testintake.h"
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS       60000           //  the longest any read waits (a bound, not a measure)
#define T_STREAMS_MAX   3               //  GL_INTAKE_STREAMS_MAX in this test
#define T_BUF           (4 << 20)       //  more than one event of T_SLOW_OFFERS_MAX calls
#define T_SLOW_OFFERS_MAX 10000         //  GL_INTAKE_QUEUE_MAX in this test

enum { U_ADMIN, U_AGENT, U_SUPER, U_COUNT };
static gl_testintake_account_t s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", NULL, "", "" },
    { "super1", "[\"supervisor\"]", NULL, "", "" },
};

#define GL_TESTINTAKE_HARNESS
#include "gl_testintake.h"

//  --------------------------------------------------------------------------------------------
//  A stream client: the request, the chunked reply decoded, the events split.

typedef struct {
    int fd;
    int status;
    char headers[4096];
    char *raw;                  //  bytes read, not yet decoded from chunks
    size_t raw_len;
    char *sse;                  //  the decoded body, not yet split into events
    size_t sse_len;
    bool ended;                 //  the last chunk came, or the server closed
} t_stream_t;

static void
t_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

//  Read what is there (waiting up to T_WAIT_MS). false when the server closed or nothing came.
static bool
t_read_more (t_stream_t *s)
{
    struct pollfd p = { s->fd, POLLIN, 0 };
    int rc;
    do
        rc = poll (&p, 1, T_WAIT_MS);
    while (rc < 0 && errno == EINTR);
    if (rc <= 0) {
        fprintf (stderr, "t_read_more: nothing within %d ms\n", T_WAIT_MS);
        return false;
    }
    assert_true (s->raw_len < T_BUF);
    ssize_t n;
    do
        n = recv (s->fd, s->raw + s->raw_len, T_BUF - s->raw_len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        s->ended = true;
        return false;
    }
    s->raw_len += (size_t) n;
    return true;
}

//  Move whole chunks from raw to sse.
static void
t_dechunk (t_stream_t *s)
{
    while (!s->ended) {
        char *crlf = memmem (s->raw, s->raw_len, "\r\n", 2);
        if (!crlf)
            return;
        unsigned long size = strtoul (s->raw, NULL, 16);
        size_t head = (size_t) (crlf - s->raw) + 2;
        if (s->raw_len < head + size + 2)
            return;
        if (size == 0)
            s->ended = true;
        assert_true (s->sse_len + size < T_BUF);
        memcpy (s->sse + s->sse_len, s->raw + head, size);
        s->sse_len += size;
        assert_memory_equal (s->raw + head + size, "\r\n", 2);
        memmove (s->raw, s->raw + head + size + 2, s->raw_len - head - size - 2);
        s->raw_len -= head + size + 2;
    }
}

//  Send a stream request as user (-1: no credentials) with extra query text (NULL: none) on a
//  socket to intake; read the status line and the headers. rcvbuf > 0 makes the socket's
//  receive buffer that small (a client that reads slowly).
static t_stream_t *
t_open_with (int user, const char *query, int rcvbuf)
{
    t_stream_t *s = calloc (1, sizeof *s);
    assert_non_null (s);
    s->raw = malloc (T_BUF);
    s->sse = malloc (T_BUF);
    assert_true (s->raw && s->sse);
    s->fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (s->fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal (setsockopt (s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in addr
        = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) s_in->http_port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (s->fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char request[1024];
    int len = snprintf (request, sizeof request,
                        "GET /api/v1/board/stream%s HTTP/1.1\r\nHost: localhost\r\n"
                        "Accept: text/event-stream\r\n%s%s%s\r\n",
                        query ? query : "", user >= 0 ? "Authorization: Bearer " : "",
                        user >= 0 ? s_users[user].token : "", user >= 0 ? "\r\n" : "");
    assert_int_equal (send (s->fd, request, (size_t) len, MSG_NOSIGNAL), len);
    char *end = NULL;
    while (!(end = memmem (s->raw, s->raw_len, "\r\n\r\n", 4)))
        assert_true (t_read_more (s));
    size_t head = (size_t) (end - s->raw) + 4;
    assert_true (head < sizeof s->headers);
    memcpy (s->headers, s->raw, head);
    s->headers[head] = 0;
    memmove (s->raw, s->raw + head, s->raw_len - head);
    s->raw_len -= head;
    assert_int_equal (sscanf (s->headers, "HTTP/1.1 %d", &s->status), 1);
    return s;
}

static t_stream_t *
t_open (int user, const char *query)
{
    return t_open_with (user, query, 0);
}

static void
t_close (t_stream_t **s_p)
{
    t_stream_t *s = *s_p;
    if (!s)
        return;
    if (s->fd >= 0)
        close (s->fd);
    free (s->raw);
    free (s->sse);
    free (s);
    *s_p = NULL;
}

//  The next event (comment-only blocks, the heartbeat, skipped): its name in name, its data
//  parsed (caller frees). Fails the test when the stream ends first.
static json_t *
t_next_event (t_stream_t *s, char *name, size_t name_len)
{
    while (true) {
        t_dechunk (s);
        char *end = memmem (s->sse, s->sse_len, "\n\n", 2);
        if (!end) {
            if (s->ended || !t_read_more (s))
                fail_msg ("the stream ended before the next event");
            continue;
        }
        size_t block_len = (size_t) (end - s->sse) + 2;
        char *block = strndup (s->sse, block_len - 1);
        memmove (s->sse, s->sse + block_len, s->sse_len - block_len);
        s->sse_len -= block_len;
        *name = 0;
        json_t *data = NULL;
        char *save = NULL;
        for (char *line = strtok_r (block, "\n", &save); line;
             line = strtok_r (NULL, "\n", &save)) {
            if (strncmp (line, "event: ", 7) == 0)
                snprintf (name, name_len, "%s", line + 7);
            else if (strncmp (line, "data: ", 6) == 0) {
                assert_null (data);         //  one line of data per event
                json_error_t err;
                data = json_loads (line + 6, 0, &err);
                if (!data)
                    fprintf (stderr, "event data is not JSON (%s)\n", err.text);
                assert_non_null (data);
            }
            else
                assert_int_equal (line[0], ':');    //  a comment (": ping")
        }
        free (block);
        if (data)
            return data;
        assert_int_equal (*name, 0);
    }
}

static json_t *
t_board_event (t_stream_t *s)
{
    char name[32];
    json_t *data = t_next_event (s, name, sizeof name);
    assert_string_equal (name, "board");
    return data;
}

//  The value of the metric line "name value" on intake's /metrics, or -1 when absent.
static int64_t
t_metric (const char *name)
{
    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    gl_test_resp_t resp = gl_test_http_raw (s_in->health_port, get, sizeof get - 1);
    assert_int_equal (resp.status, 200);
    int64_t value = -1;
    size_t len = strlen (name);
    for (const char *line = resp.body; line && *line; line = strchr (line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp (line, name, len) == 0 && line[len] == ' ')
            value = strtoll (line + len + 1, NULL, 10);
    }
    gl_test_http_free (&resp);
    return value;
}

//  Wait (up to T_WAIT_MS) until the open-streams gauge reads n; fails otherwise.
static void
t_wait_streams (int64_t n)
{
    int64_t got = -1;
    for (int waited = 0; waited < T_WAIT_MS; waited += 100) {
        got = t_metric ("greenline_intake_board_streams");
        if (got == n)
            return;
        t_sleep_ms (100);
    }
    fprintf (stderr, "greenline_intake_board_streams: expected %" PRId64 ", got %" PRId64 "\n", n,
             got);
    fail ();
}

//  --------------------------------------------------------------------------------------------

static int
t_setup (void **state)
{
    (void) state;
    static const char *const extra[]
        = { "GL_INTAKE_STREAMS_MAX=3", "GL_INTAKE_QUEUE_MAX=10000", NULL };
    return t_setup_common (extra);
}

//  The queue as GET /api/v1/queue answers it, without the figures the clock moves.
static void
t_without_clock (json_t *queue)
{
    json_object_del (queue, "now");
    size_t i;
    json_t *call;
    json_array_foreach (json_object_get (queue, "calls"), i, call)
        json_object_del (call, "wait_ms");
    const char *lang;
    json_t *entry;
    json_object_foreach (json_object_get (queue, "languages"), lang, entry)
        json_object_del (entry, "oldest_wait_ms");
}

static void
test_first_event_and_a_call (void **state)
{
    (void) state;
    //  The agent appears on the board once they have a state.
    json_decref (t_call_json (U_AGENT, "PUT", "/api/v1/agents/me/state",
                              "{\"state\":\"available\"}", 200));
    t_stream_t *s = t_open (U_SUPER, NULL);
    if (s->status != 200)
        fprintf (stderr, "%s\n", s->headers);
    assert_int_equal (s->status, 200);
    assert_non_null (strcasestr (s->headers, "\r\nContent-Type: text/event-stream"));
    assert_non_null (strcasestr (s->headers, "\r\nTransfer-Encoding: chunked"));
    assert_non_null (strcasestr (s->headers, "\r\nX-Accel-Buffering: no"));
    assert_non_null (strcasestr (s->headers, "\r\nCache-Control: no-store"));
    t_wait_streams (1);

    json_t *board = t_board_event (s);
    assert_int_equal (json_object_size (board), 3);
    json_t *queue = json_object_get (board, "queue");
    assert_true (json_is_object (queue));
    assert_true (json_is_integer (json_object_get (queue, "now")));
    assert_int_equal (t_int (queue, "waiting"), 0);
    assert_int_equal (json_array_size (json_object_get (queue, "calls")), 0);
    //  The queue is GET /api/v1/queue's answer.
    json_t *direct = t_call_json (U_SUPER, "GET", "/api/v1/queue", NULL, 200);
    t_without_clock (direct);
    t_without_clock (queue);
    assert_true (json_equal (queue, direct));
    json_decref (direct);
    //  The agents are GET /api/v1/agents' items, names included.
    json_t *agents = json_object_get (board, "agents");
    json_t *page = t_call_json (U_SUPER, "GET", "/api/v1/agents?limit=200", NULL, 200);
    assert_true (json_equal (agents, json_object_get (page, "items")));
    json_decref (page);
    assert_int_equal (json_array_size (agents), 1);
    json_t *agent = json_array_get (agents, 0);
    assert_string_equal (t_str (agent, "agent_id"), s_users[U_AGENT].id);
    assert_string_equal (t_str (agent, "state"), "available");
    assert_string_equal (t_str (agent, "display_name"), "Test agent1");
    //  No reporting in this test: the wallboard is the error shape.
    json_t *error = json_object_get (json_object_get (board, "wallboard"), "error");
    assert_string_equal (t_str (error, "code"), "reporting_unavailable");
    assert_true (json_is_string (json_object_get (error, "message")));
    json_decref (board);

    //  A call offered: the next event shows it waiting.
    json_t *call = t_call_json (U_SUPER, "POST", "/api/v1/calls",
                                "{\"line\":\"main\",\"language\":\"ar\"}", 201);
    board = t_board_event (s);
    queue = json_object_get (board, "queue");
    assert_int_equal (t_int (queue, "waiting"), 1);
    json_t *waiting = json_array_get (json_object_get (queue, "calls"), 0);
    assert_string_equal (t_str (waiting, "call_id"), t_str (call, "id"));
    assert_string_equal (t_str (waiting, "language"), "ar");
    assert_int_equal (t_int (waiting, "position"), 1);
    json_decref (board);
    json_decref (call);

    //  The client goes away: intake forgets the stream.
    t_close (&s);
    t_wait_streams (0);
    assert_true (t_metric ("greenline_intake_board_events_total") >= 2);
}

static void
test_refused (void **state)
{
    (void) state;
    t_call_error (U_AGENT, "GET", "/api/v1/board/stream", NULL, 403, "forbidden", NULL);
    t_call_error (-1, "GET", "/api/v1/board/stream", NULL, 401, "unauthorized", NULL);
    t_stream_t *s = t_open (U_SUPER, "?since=1");
    assert_int_equal (s->status, 400);
    t_close (&s);
    //  HEAD: the headers of the stream and nothing more.
    char request[512];
    int len = snprintf (request, sizeof request,
                        "HEAD /api/v1/board/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Authorization: Bearer %s\r\n\r\n",
                        s_users[U_SUPER].token);
    gl_test_resp_t resp = gl_test_http_raw (s_in->http_port, request, (size_t) len);
    assert_int_equal (resp.status, 200);
    assert_int_equal (resp.body_len, 0);
    assert_non_null (strcasestr (resp.raw, "\r\nContent-Type: text/event-stream"));
    gl_test_http_free (&resp);
    t_wait_streams (0);
}

static void
test_streams_max (void **state)
{
    (void) state;
    t_stream_t *open[T_STREAMS_MAX] = { 0 };
    for (int i = 0; i < T_STREAMS_MAX; i++) {
        open[i] = t_open (i % 2 ? U_ADMIN : U_SUPER, NULL);
        assert_int_equal (open[i]->status, 200);
        json_decref (t_board_event (open[i]));
    }
    t_wait_streams (T_STREAMS_MAX);
    t_call_error (U_SUPER, "GET", "/api/v1/board/stream", NULL, 503, "too_many_streams", NULL);
    //  One leaves: its place is free again.
    t_close (&open[0]);
    t_wait_streams (T_STREAMS_MAX - 1);
    open[0] = t_open (U_SUPER, NULL);
    assert_int_equal (open[0]->status, 200);
    json_decref (t_board_event (open[0]));
    for (int i = 0; i < T_STREAMS_MAX; i++)
        t_close (&open[i]);
    t_wait_streams (0);
}

//  A client that does not read while the board keeps changing: once more than 1 MiB waits
//  for it, intake drops it (the gauge goes down, the counter up) and closes its connection.
static void
test_slow_client_dropped (void **state)
{
    (void) state;
    t_stream_t *slow = t_open_with (U_SUPER, NULL, 4096);
    assert_int_equal (slow->status, 200);
    t_wait_streams (1);
    int64_t dropped = t_metric ("greenline_intake_board_streams_dropped_total");
    //  Every offer makes the queue (and so each later event) longer: the events that wait for
    //  the slow client grow until they pass the bound.
    int offers = 0;
    while (t_metric ("greenline_intake_board_streams_dropped_total") == dropped) {
        assert_true (offers < T_SLOW_OFFERS_MAX);
        for (int i = 0; i < 50; i++, offers++)
            json_decref (t_call_json (U_SUPER, "POST", "/api/v1/calls",
                                      "{\"line\":\"main\",\"language\":\"en\"}", 201));
    }
    assert_int_equal (t_metric ("greenline_intake_board_streams_dropped_total"), dropped + 1);
    t_wait_streams (0);
    //  What was sent before is still there to read, then the end of the reply (the last chunk).
    while (!slow->ended) {
        assert_true (t_read_more (slow));
        t_dechunk (slow);
        slow->sse_len = 0;              //  the events themselves do not matter here
    }
    t_close (&slow);
    fprintf (stderr, "slow client dropped after %d offers\n", offers);
}

//  Last: intake stops with a stream open, ends it, and exits 0.
static void
test_sigterm_with_a_stream (void **state)
{
    (void) state;
    t_stream_t *s = t_open (U_ADMIN, NULL);
    assert_int_equal (s->status, 200);
    json_decref (t_board_event (s));
    t_wait_streams (1);
    int status = gl_test_stop (s_in->pid, 20000);
    s_in->pid = -1;
    //  The server closed the connection (after the last chunk, when it could still send it).
    while (!s->ended && t_read_more (s))
        t_dechunk (s);
    assert_true (s->ended);
    t_close (&s);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "gl-intake ended with status %d\n", status);
        gl_testintake_log_tail (s_in);
    }
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_first_event_and_a_call),
        cmocka_unit_test (test_refused),
        cmocka_unit_test (test_streams_max),
        cmocka_unit_test (test_slow_client_dropped),
        cmocka_unit_test (test_sigterm_with_a_stream),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
