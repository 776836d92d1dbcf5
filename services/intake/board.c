/*  board — see board.h.

    One timer (BOARD_TICK_MS, persistent) runs while at least one stream is open: it is added
    when the first stream opens and deleted when the last one goes, so an idle intake does no
    work for the board. Each tick builds the event once for every stream (the same data for
    all: supervisors and admins see the same board) and sends it to a stream only when it
    differs from what that stream last got. The comparison leaves out the figures that change
    only because time passes (the queue's `now`, each call's `wait_ms`, each language's
    `oldest_wait_ms`, the wallboard's `as_of` and `longest_current_wait_ms`): the console
    advances those itself between events, so a quiet board costs a heartbeat every 15 s and
    nothing else. A stream remembers a digest of what it got, not the text.

    Reporting's wallboard comes over the bus without waiting (forward_call): asked at most
    every BOARD_WALL_MS, one request at a time, shared by every stream; its answer replaces the
    board's wallboard and is sent to the streams at once. Until the first answer, and when
    reporting does not answer (GL_INTAKE_REPORTING_TIMEOUT_MS), the board carries
    {"error": {code, message}} in its place. It is asked on behalf of the caller of the oldest
    open stream (a supervisor or an admin), whom reporting checks like any other caller of
    GET /api/v1/wallboard.
*/
#include "board.h"
#include "agents.h"
#include "auth.h"
#include "calls.h"
#include "forward.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_STREAMS_DEFAULT   64
#define S_STREAMS_LIMIT     4096
#define S_AGENTS_MAX        2000        //  agents on the board (the console read as many)
#define S_DIGEST_LEN        16

typedef struct _s_stream_t s_stream_t;
struct _s_stream_t {
    board_t *board;
    http_req_t *req;                    //  borrowed from http until on_closed
    http_caller_t caller;               //  a copy: the request's is freed with it
    bool has_sent;
    unsigned char digest[S_DIGEST_LEN]; //  of the last event sent, clock-only figures left out
    s_stream_t *prev, *next;
};

//  A wallboard request on its way (s_wall_refresh); board is NULL once the board is gone.
typedef struct {
    struct _board_t *board;
} s_ticket_t;

struct _board_t {
    intake_t *intake;
    s_ticket_t *ticket;                 //  the wallboard request waiting, or NULL
    size_t max;                         //  GL_INTAKE_STREAMS_MAX
    s_stream_t *streams;                //  oldest first
    s_stream_t *last;
    size_t count;
    struct event *tick;                 //  persistent; pending only while count > 0
    int64_t ping_at;                    //  gl_mono_ms of the last heartbeat
    json_t *wall;                       //  reporting's wallboard, or {"error": ...}
    int64_t wall_at;                    //  gl_mono_ms when asked; valid when wall is set
    bool wall_failing;                  //  for logging the change only
    bool build_failing;
    gl_metric_t *open;                  //  gauge: streams open
    gl_metric_t *events;                //  counter: board events sent
    gl_metric_t *dropped;               //  counter: streams dropped for a slow client
    gl_metric_t *refused;               //  counter: streams refused (GL_INTAKE_STREAMS_MAX)
};

//  --------------------------------------------------------------------------------------------
//  The wallboard

static json_t *
s_wall_error (const char *code, const char *message)
{
    return json_pack ("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

//  The caller as forward.h's request body names them.
static json_t *
s_caller_json (const http_caller_t *who)
{
    json_t *units = json_array ();
    for (size_t i = 0; i < who->unit_count; i++)
        json_array_append_new (units, json_string (who->units[i]));
    return json_pack ("{s:s, s:o, s:o}", "user_id", who->user_id, "roles",
                      auth_roles_json (who->roles & ~GL_ROLE_API_CLIENT), "units", units);
}

//  Keep reply's wallboard (or the error it says) as the board's.
static void
s_wall_set (board_t *self, const gl_reply_t *reply)
{
    json_t *wall = NULL;
    bool unconfigured = reply->local && reply->error_code
                        && strcmp (reply->error_code, "not_configured") == 0;
    if (unconfigured)
        wall = s_wall_error ("reporting_unavailable", "reporting is not configured");
    else if (!reply->local && reply->status == 200 && json_is_object (reply->body))
        wall = json_incref (reply->body);
    else if (!reply->local && reply->status >= 400 && reply->status < 500 && reply->error_code
             && *reply->error_code)
        wall = s_wall_error (reply->error_code, reply->error_message ? reply->error_message : "");
    else
        wall = s_wall_error ("reporting_unavailable", "reporting did not answer in time");
    bool failing = !wall || json_object_get (wall, "error") != NULL;
    if (failing && !self->wall_failing)
        gl_warn ("board: reporting's wallboard is not available; the board shows the error");
    else if (!failing && self->wall_failing)
        gl_info ("board: reporting's wallboard is available again");
    self->wall_failing = failing;
    json_decref (self->wall);
    self->wall = wall ? wall : s_wall_error ("internal", "out of memory");
}

//  The answer to s_wall_refresh's request. The ticket outlives the board if the board goes
//  first (board_destroy detaches it): then the answer is dropped.
static void
s_on_wall (intake_t *intake, const gl_reply_t *reply, void *arg)
{
    (void) intake;
    s_ticket_t *ticket = arg;
    board_t *self = ticket->board;
    free (ticket);
    if (!self)
        return;
    self->ticket = NULL;
    s_wall_set (self, reply);
    //  The streams get it now rather than at the next tick.
    if (self->streams && self->tick)
        event_active (self->tick, EV_TIMEOUT, 0);
}

//  Ask reporting for its wallboard, without waiting (forward_call): the answer replaces the
//  board's when it comes. One request at a time.
static void
s_wall_refresh (board_t *self, const http_caller_t *who)
{
    if (self->ticket)
        return;
    self->wall_at = gl_mono_ms ();
    s_ticket_t *ticket = malloc (sizeof *ticket);
    json_t *request = json_pack ("{s:o, s:{}, s:{}, s:{}}", "caller", s_caller_json (who),
                                 "params", "query", "body");
    gl_reply_t reply = { 0 };
    int rc = -1;
    if (ticket && request) {
        ticket->board = self;
        rc = forward_call (self->intake, "reporting", "reporting.wallboard", NULL, request,
                           s_on_wall, ticket, &reply);
    }
    json_decref (request);
    if (rc == 0) {
        self->ticket = ticket;
        return;
    }
    free (ticket);
    if (!reply.error_code) {            //  out of memory here: nothing was sent
        reply.local = true;
        reply.status = 503;
    }
    s_wall_set (self, &reply);
    gl_reply_clear (&reply);
}

//  --------------------------------------------------------------------------------------------
//  The event

//  The event text (caller frees) and the digest of its data without the clock-only figures.
//  NULL when out of memory.
static char *
s_event_text (const json_t *data, unsigned char digest[S_DIGEST_LEN], size_t *len)
{
    char *json = json_dumps (data, JSON_COMPACT);
    json_t *copy = json_deep_copy (data);
    char *stable = NULL;
    if (copy) {
        json_t *queue = json_object_get (copy, "queue");
        json_object_del (queue, "now");
        size_t i;
        json_t *call;
        json_array_foreach (json_object_get (queue, "calls"), i, call)
            json_object_del (call, "wait_ms");
        const char *lang;
        json_t *entry;
        json_object_foreach (json_object_get (queue, "languages"), lang, entry)
            json_object_del (entry, "oldest_wait_ms");
        json_t *wall = json_object_get (copy, "wallboard");
        json_object_del (wall, "as_of");
        json_object_del (wall, "longest_current_wait_ms");
        stable = json_dumps (copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref (copy);
    }
    char *text = NULL;
    if (json && stable) {
        crypto_generichash (digest, S_DIGEST_LEN, (const unsigned char *) stable, strlen (stable),
                            NULL, 0);
        //  One line of JSON: json_dumps without JSON_INDENT writes no newline.
        size_t size = strlen (json) + 32;
        text = malloc (size);
        if (text)
            *len = (size_t) snprintf (text, size, "event: board\ndata: %s\n\n", json);
    }
    free (json);
    free (stable);
    return text;
}

//  {queue, agents, wallboard}: 0 with *data (the caller's), or -1 when Redis cannot be reached.
static int
s_build (board_t *self, json_t **data)
{
    *data = NULL;
    json_t *queue = NULL, *agents = NULL;
    char next[GL_ID_LEN + 1];
    if (calls_queue_view (self->intake, NULL, &queue) == 0
        && agents_list (self->intake, NULL, S_AGENTS_MAX, &agents, next) == 0)
        *data = json_pack ("{s:o, s:o, s:o}", "queue", queue, "agents", agents, "wallboard",
                           self->wall ? json_incref (self->wall)
                                      : s_wall_error ("reporting_pending",
                                                      "reporting has not answered yet"));
    else {
        json_decref (queue);
        json_decref (agents);
    }
    bool failing = *data == NULL;
    if (failing && !self->build_failing)
        gl_warn ("board: cannot read the queue and the agents (redis unreachable)");
    self->build_failing = failing;
    return failing ? -1 : 0;
}

//  --------------------------------------------------------------------------------------------
//  Streams

//  http tells us the stream ended (client gone, dropped, or http_stream_end): forget it.
static void
s_on_closed (http_req_t *req, void *arg)
{
    (void) req;
    s_stream_t *s = arg;
    board_t *self = s->board;
    if (s->prev)
        s->prev->next = s->next;
    else
        self->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        self->last = s->prev;
    self->count--;
    gl_metric_set (self->open, (int64_t) self->count);
    free (s);
    if (self->count == 0)
        event_del (self->tick);
}

//  Send text to s, or drop s when its client holds up more than BOARD_PENDING_MAX bytes or the
//  write fails. s may be freed when this returns.
static void
s_send (board_t *self, s_stream_t *s, const char *text, size_t len, bool is_event)
{
    if (http_stream_pending (s->req) > BOARD_PENDING_MAX) {
        gl_warn ("board: a stream's client does not read (over %u bytes waiting): dropped",
                 BOARD_PENDING_MAX);
        gl_metric_inc (self->dropped, 1);
        http_stream_end (s->req);
        return;
    }
    if (http_stream_send (s->req, text, len) != 0) {
        http_stream_end (s->req);
        return;
    }
    if (is_event)
        gl_metric_inc (self->events, 1);
}

static void
s_on_tick (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    board_t *self = arg;
    if (!self->streams)
        return;
    int64_t now = gl_mono_ms ();
    if (!self->wall || now - self->wall_at >= BOARD_WALL_MS)
        s_wall_refresh (self, &self->streams->caller);
    json_t *data = NULL;
    if (s_build (self, &data) == 0) {
        unsigned char digest[S_DIGEST_LEN];
        size_t len = 0;
        char *text = s_event_text (data, digest, &len);
        json_decref (data);
        s_stream_t *next;
        for (s_stream_t *s = self->streams; text && s; s = next) {
            next = s->next;
            if (s->has_sent && memcmp (s->digest, digest, S_DIGEST_LEN) == 0)
                continue;
            s->has_sent = true;
            memcpy (s->digest, digest, S_DIGEST_LEN);
            s_send (self, s, text, len, true);
        }
        free (text);
    }
    if (now - self->ping_at >= BOARD_PING_MS) {
        self->ping_at = now;
        static const char ping[] = ": ping\n\n";
        s_stream_t *next;
        for (s_stream_t *s = self->streams; s; s = next) {
            next = s->next;
            s_send (self, s, ping, sizeof ping - 1, false);
        }
    }
}

//  GET /api/v1/board/stream: open a stream and send the board at once.
static int
s_stream (intake_t *intake, http_req_t *req)
{
    static const char *const none[] = { NULL };
    if (http_query_only (req, none))
        return -1;
    board_t *self = intake->board;
    assert (self);
    if (self->count >= self->max) {
        gl_metric_inc (self->refused, 1);
        return http_reply_error (req, 503, "too_many_streams",
                                 "too many board streams are open (GL_INTAKE_STREAMS_MAX); "
                                 "retry later, or read GET /api/v1/queue",
                                 NULL);
    }
    const http_caller_t *who = http_caller (req);
    if (!self->wall || gl_mono_ms () - self->wall_at >= BOARD_WALL_MS)
        s_wall_refresh (self, who);
    json_t *data = NULL;
    if (s_build (self, &data) != 0)
        return http_reply_error (req, 503, "unavailable", "redis unreachable, retry later", NULL);
    unsigned char digest[S_DIGEST_LEN];
    size_t len = 0;
    char *text = s_event_text (data, digest, &len);
    json_decref (data);
    s_stream_t *s = text ? calloc (1, sizeof *s) : NULL;
    if (!s) {
        free (text);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    s->board = self;
    s->req = req;
    s->caller = *who;
    if (http_stream_start (req, "text/event-stream", s_on_closed, s) != 0) {
        //  Answered without a stream (HEAD): nothing to keep.
        free (s);
        free (text);
        return 0;
    }
    s->prev = self->last;
    if (self->last)
        self->last->next = s;
    else
        self->streams = s;
    self->last = s;
    self->count++;
    gl_metric_set (self->open, (int64_t) self->count);
    if (self->count == 1) {
        struct timeval every = { BOARD_TICK_MS / 1000, (BOARD_TICK_MS % 1000) * 1000 };
        self->ping_at = gl_mono_ms ();
        event_add (self->tick, &every);
    }
    s->has_sent = true;
    memcpy (s->digest, digest, S_DIGEST_LEN);
    s_send (self, s, text, len, true);
    free (text);
    return 0;
}

void
api_board_routes (intake_t *intake)
{
    http_route (intake->http, "GET", "/api/v1/board/stream", GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN,
                s_stream);
}

//  --------------------------------------------------------------------------------------------
//  Life

board_t *
board_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake && intake->config && intake->base);
    board_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    self->max = (size_t) gl_config_int (intake->config, "GL_INTAKE_STREAMS_MAX",
                                        S_STREAMS_DEFAULT, 1, S_STREAMS_LIMIT);
    if (gl_config_error (intake->config)) {
        snprintf (err, errlen, "%s", gl_config_error (intake->config));
        board_destroy (&self);
        return NULL;
    }
    self->tick = event_new (intake->base, -1, EV_PERSIST, s_on_tick, self);
    if (!self->tick) {
        snprintf (err, errlen, "cannot set up the board's timer");
        board_destroy (&self);
        return NULL;
    }
    self->open = gl_metrics_gauge ("greenline_intake_board_streams",
                                   "Board streams (GET /api/v1/board/stream) open now", NULL);
    self->events = gl_metrics_counter ("greenline_intake_board_events_total",
                                       "Board events sent to streams", NULL);
    self->dropped = gl_metrics_counter ("greenline_intake_board_streams_dropped_total",
                                        "Board streams dropped because their client held up "
                                        "more than 1 MiB of output",
                                        NULL);
    self->refused = gl_metrics_counter ("greenline_intake_board_streams_refused_total",
                                        "Board streams refused (GL_INTAKE_STREAMS_MAX open)",
                                        NULL);
    gl_metric_set (self->open, 0);
    return self;
}

void
board_destroy (board_t **self_p)
{
    board_t *self = *self_p;
    if (!self)
        return;
    //  Each end calls s_on_closed, which unlinks the stream.
    while (self->streams) {
        s_stream_t *first = self->streams;
        http_stream_end (first->req);
        assert (self->streams != first);
    }
    if (self->ticket)
        self->ticket->board = NULL;     //  its answer, when it comes, is dropped
    if (self->tick)
        event_free (self->tick);
    json_decref (self->wall);
    free (self);
    *self_p = NULL;
}

size_t
board_streams (board_t *self)
{
    assert (self);
    return self->count;
}
