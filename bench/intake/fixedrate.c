/*  fixedrate — an HTTP/1.1 load generator for intake's benchmark: N keep-alive connections, one
    thread, epoll; open loop at a fixed arrival rate, or closed loop.

        fixedrate --port P --scenario contact|get|cycle [--rate R] [--seconds S] [--conns N]
                  [--token T] [--path PATH] [--client-token T --agents FILE] [--cases N]
                  [--seed N] [--trace FILE]

    Open loop (--rate R > 0): request i is due at t0 + i/R, whether or not earlier requests were
    answered. A due request goes out on an idle connection; when every connection is busy it
    waits in the generator, and its latency still runs from the time it was due, not from the
    time it went out. So a server that stalls is charged for every request that arrived during
    the stall (no coordinated omission), as wrk2 does. Closed loop (--rate 0): every connection
    sends its next request as soon as it has the answer to the last, for S seconds; latency
    then runs from the send (like wrk).

    Scenarios:
      contact   POST /api/v1/contacts with --token (an agent's bearer token), or with --agents
                FILE each connection as another agent of FILE; each body a new
                contact: a case number drawn from --cases (default 100,000) numbers, a random
                phone, one of 12 subcategories, so the person, category and time indexes grow as
                they would in a day's work.
      get       GET --path (default /health), with --token as bearer when given.
      cycle     the life of a call, one agent per connection (--agents FILE: lines
                "agent_id token"; at least --conns of them): POST /api/v1/calls (the offer, as
                the API client --client-token), POST /calls/{id}/answer naming that agent and
                POST /calls/{id}/end (as the client), PUT /agents/me/state available (as the
                agent, who is in wrap_up after the end). Each step is one request; a failed
                step counts as non-2xx and the cycle goes on from a state that makes sense
                (s_cycle_next; an agent left holding a call by an earlier run is found with GET
                /agents/me, kind "agent_me", and its call ended).
                When the run ends, each connection finishes its call (end, available: at most
                8 more requests, counted like the others), so a second run finds every agent
                available and holding no call.

    Every answer's status is counted; a benchmark of 401s is worthless, so the run's line says
    how many were not 2xx. Prints, per request kind and for all, one line:
        RESULT scenario=contact kind=all mode=rate rate=1000 conns=16 seconds=10 sent=...
               answered=... ok=... non2xx=... rps=... p50_us=... p90_us=... p99_us=...
               p999_us=... max_us=... errors=... unfinished=... unsent=... reconnects=...
               lag_max_us=... codes=201:9999,...
    (the fields from errors on only on the kind=all line)
    ok: 2xx answers; errors: connections that failed with a request in flight (reset, closed,
    unparsable answer); unfinished: requests sent but still unanswered 5 s after the last was
    due (the server may still carry them out); unsent: due requests that never went out (every
    connection was still busy when the run ended: the server cannot keep up with the rate);
    lag_max_us: the longest a due request waited in the generator for a free connection.
    --trace FILE writes one line per answer: its origin (ms since the start), latency (µs),
    status and kind, to see when a tail happened (a stall every second looks different from
    a slow drift).
*/
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CONNS     1024
#define S_MAX_IN        (1 << 20)       //  one answer at most
#define S_MAX_LAT       20000000        //  latencies kept per kind
#define S_DRAIN_NS      INT64_C(5000000000)
#define S_TOKEN_MAX     200

typedef enum { K_CONTACT, K_GET, K_OFFER, K_ANSWER, K_END, K_AVAIL, K_ME, K_COUNT } s_kind_t;
static const char *const s_kind_names[K_COUNT]
    = { "contact", "get", "offer", "answer", "end", "available", "agent_me" };

typedef struct {
    int64_t *v;
    size_t n, cap;
} s_lat_t;

typedef struct {
    int fd;
    bool busy;
    bool want_out;                      //  EPOLLOUT registered (a partial write)
    char out[8192];
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    int64_t origin_ns;                  //  latency origin of the request in flight
    s_kind_t kind;
    int step;                           //  cycle: the next step (K_OFFER .. K_AVAIL)
    int wind_down;                      //  cycle: requests sent after the run to finish it
    char call_id[64];
    char agent_id[64];
    char agent_token[S_TOKEN_MAX + 1];
} s_conn_t;

typedef struct {
    //  options
    int port;
    const char *scenario;
    double rate;
    double seconds;
    int nconns;
    const char *token;
    const char *path;
    const char *client_token;
    const char *agents_file;
    FILE *trace;                        //  --trace: one line per answer
    uint32_t cases;
    uint64_t rng;
    //  state
    int ep, tfd;
    s_conn_t *conns;
    int *idle;
    int nidle;
    int inflight;
    uint64_t seq;                       //  requests built (body counter)
    uint64_t sent, answered, ok, errors, reconnects;
    uint64_t status[600];
    uint64_t kind_sent[K_COUNT], kind_answered[K_COUNT], kind_ok[K_COUNT];
    s_lat_t lat[K_COUNT], all;
    int64_t lag_max_ns;
    uint64_t unsent;                    //  open loop: due requests never sent (the run ended)
    int64_t t0, t_end, t_last_answer;
} s_run_t;

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
s_rand (s_run_t *run)
{
    //  xorshift64*
    run->rng ^= run->rng >> 12;
    run->rng ^= run->rng << 25;
    run->rng ^= run->rng >> 27;
    return run->rng * UINT64_C(2685821657736338717);
}

static void
s_lat_add (s_lat_t *lat, int64_t ns)
{
    if (lat->n == lat->cap) {
        if (lat->cap >= S_MAX_LAT)
            return;
        size_t cap = lat->cap ? 2 * lat->cap : 65536;
        int64_t *v = realloc (lat->v, cap * sizeof *v);
        if (!v)
            return;
        lat->v = v;
        lat->cap = cap;
    }
    lat->v[lat->n++] = ns;
}

static int
s_cmp64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  The q-quantile (0 < q <= 1) of a sorted array, in µs.
static double
s_quantile_us (const s_lat_t *lat, double q)
{
    if (lat->n == 0)
        return 0;
    size_t i = (size_t) (q * (double) lat->n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > lat->n)
        i = lat->n;
    return (double) lat->v[i - 1] / 1000.0;
}

//  --------------------------------------------------------------------------------------------
//  Connections

static int
s_connect (s_run_t *run, s_conn_t *c)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) run->port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl (run->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close (fd);
        return -1;
    }
    c->fd = fd;
    c->busy = false;
    c->want_out = false;
    c->in_len = 0;
    return 0;
}

static void
s_mark_idle (s_run_t *run, s_conn_t *c)
{
    c->busy = false;
    run->inflight--;
    run->idle[run->nidle++] = (int) (c - run->conns);
}

//  The connection failed or the server closed it: a new one in its place. A request in flight
//  on it is lost (counted as an error by the caller).
static int
s_reconnect (s_run_t *run, s_conn_t *c)
{
    epoll_ctl (run->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close (c->fd);
    c->fd = -1;
    run->reconnects++;
    if (s_connect (run, c) != 0) {
        fprintf (stderr, "fixedrate: cannot reconnect to 127.0.0.1:%d: %s\n", run->port,
                 strerror (errno));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Requests

static const char *const s_categories[] = {
    "information_request.services", "information_request.procedures", "assistance_status.food",
    "assistance_status.shelter",    "registration.renewal",            "registration.status",
    "appointment.book",             "resettlement.status",             "cash_assistance.payment",
    "health.access",                "education.enrolment",             "legal.residency",
};
#define S_NCATEGORIES (sizeof s_categories / sizeof s_categories[0])

static void
s_format (s_conn_t *c, const char *method, const char *path, const char *token, const char *body)
{
    int n = snprintf (c->out, sizeof c->out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    if (token && *token)
        n += snprintf (c->out + n, sizeof c->out - (size_t) n, "Authorization: Bearer %s\r\n",
                       token);
    if (body)
        n += snprintf (c->out + n, sizeof c->out - (size_t) n,
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen (body), body);
    else
        n += snprintf (c->out + n, sizeof c->out - (size_t) n, "\r\n");
    c->out_len = (size_t) n < sizeof c->out ? (size_t) n : sizeof c->out - 1;
    c->out_off = 0;
}

//  The connection's next request, into c->out.
static void
s_build (s_run_t *run, s_conn_t *c)
{
    char body[1024], path[256];
    uint64_t n = ++run->seq;
    if (strcmp (run->scenario, "contact") == 0) {
        uint32_t casen = (uint32_t) (s_rand (run) % run->cases);
        uint32_t phone = (uint32_t) (s_rand (run) % 100000000);
        const char *cat = s_categories[s_rand (run) % S_NCATEGORIES];
        snprintf (body, sizeof body,
                  "{\"channel\":\"call\",\"direction\":\"inbound\",\"case_number\":\"JOR-%06" PRIu32
                  "\",\"phone\":\"+9627%08" PRIu32 "\",\"language\":\"ar\",\"categories\":[\"%s\"],"
                  "\"outcome\":\"information_given\",\"notes\":\"bench contact %" PRIu64
                  ": asked about the status of the case\",\"sex\":\"female\",\"age_group\":"
                  "\"18-59\",\"nationality\":\"SYR\",\"location\":\"amman\"}",
                  casen, phone, cat, n);
        c->kind = K_CONTACT;
        s_format (c, "POST", "/api/v1/contacts", *c->agent_token ? c->agent_token : run->token,
                  body);
    }
    else if (strcmp (run->scenario, "get") == 0) {
        c->kind = K_GET;
        s_format (c, "GET", run->path, run->token, NULL);
    }
    else {
        c->kind = (s_kind_t) c->step;
        switch (c->step) {
        case K_OFFER:
            snprintf (body, sizeof body,
                      "{\"line\":\"main\",\"caller_number\":\"+9627%08" PRIu32
                      "\",\"language\":\"ar\"}",
                      (uint32_t) (s_rand (run) % 100000000));
            s_format (c, "POST", "/api/v1/calls", run->client_token, body);
            break;
        case K_ANSWER:
            snprintf (path, sizeof path, "/api/v1/calls/%s/answer", c->call_id);
            snprintf (body, sizeof body, "{\"agent_id\":\"%s\"}", c->agent_id);
            s_format (c, "POST", path, run->client_token, body);
            break;
        case K_END:
            snprintf (path, sizeof path, "/api/v1/calls/%s/end", c->call_id);
            s_format (c, "POST", path, run->client_token, "{\"ended_by\":\"caller\"}");
            break;
        case K_ME:
            s_format (c, "GET", "/api/v1/agents/me", c->agent_token, NULL);
            break;
        default:
            s_format (c, "PUT", "/api/v1/agents/me/state", c->agent_token,
                      "{\"state\":\"available\"}");
            break;
        }
    }
}

static void
s_want_out (s_run_t *run, s_conn_t *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl (run->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

//  Write what is left of c->out. 0, or -1 when the connection failed.
static int
s_flush (s_run_t *run, s_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send (c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s_want_out (run, c, true);
            return 0;
        }
        if (n <= 0)
            return -1;
        c->out_off += (size_t) n;
    }
    s_want_out (run, c, false);
    return 0;
}

//  Send c's next request, its latency running from origin_ns.
static void
s_send (s_run_t *run, s_conn_t *c, int64_t origin_ns)
{
    s_build (run, c);
    c->busy = true;
    c->origin_ns = origin_ns;
    c->in_len = 0;
    run->inflight++;
    run->sent++;
    run->kind_sent[c->kind]++;
    if (s_flush (run, c) != 0) {
        run->errors++;
        s_mark_idle (run, c);
        //  Taken back off the idle stack: s_reconnect makes it usable again.
        run->nidle--;
        if (s_reconnect (run, c) == 0)
            run->idle[run->nidle++] = (int) (c - run->conns);
    }
}

//  --------------------------------------------------------------------------------------------
//  Answers

static const char *
s_find (const char *hay, size_t len, const char *needle)
{
    size_t n = strlen (needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp (hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

//  A header's value in the header block [head, end), or NULL.
static const char *
s_header (const char *head, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen (name);
    const char *line = s_find (head, (size_t) (end - head), "\r\n");
    while (line && line + 2 < end) {
        line += 2;
        const char *eol = s_find (line, (size_t) (end - line), "\r\n");
        if (!eol)
            eol = end;
        if ((size_t) (eol - line) > nlen && strncasecmp (line, name, nlen) == 0
            && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < eol && *v == ' ')
                v++;
            *vlen = (size_t) (eol - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

//  The "id" (offer) or "call_id" (agents/me) of an answer's body into c->call_id; false when
//  there is none.
static bool
s_take_id (s_conn_t *c, const char *field, const char *body, size_t len)
{
    json_t *json = json_loadb (body, len, 0, NULL);
    const char *id = json_string_value (json_object_get (json, field));
    bool found = id && *id && strlen (id) < sizeof c->call_id;
    snprintf (c->call_id, sizeof c->call_id, "%s", found ? id : "");
    json_decref (json);
    return found;
}

//  The cycle's next step after an answer of kind with status. After a refusal: an offer or an
//  answer that failed left the agent available (offer again); an end that failed leaves the
//  agent to be made available; an agent who cannot go available holds a call (one this
//  connection offered, or one left by an earlier run that stopped half-way): end it, after
//  asking which it is (GET /agents/me) when the connection does not know.
static void
s_cycle_next (s_conn_t *c, int status, const char *body, size_t len)
{
    bool ok = status >= 200 && status < 300;
    if (!ok) {
        c->step = c->kind == K_OFFER || c->kind == K_ANSWER ? K_OFFER
                : c->kind == K_AVAIL && *c->call_id       ? K_END
                : c->kind == K_AVAIL                      ? K_ME
                                                          : K_AVAIL;
        if (c->kind == K_END)
            c->call_id[0] = 0;
        return;
    }
    switch (c->kind) {
    case K_ME:
        c->step = s_take_id (c, "call_id", body, len) ? K_END : K_AVAIL;
        break;
    case K_OFFER:
        c->step = s_take_id (c, "id", body, len) ? K_ANSWER : K_OFFER;
        break;
    case K_ANSWER:
        c->step = K_END;
        break;
    case K_END:
        c->call_id[0] = 0;
        c->step = K_AVAIL;
        break;
    default:
        c->step = K_OFFER;
        break;
    }
}

//  Read what c has; handle a complete answer. 1 when an answer completed, 0 when more is to
//  come, -1 when the connection failed (the request in flight is lost).
static int
s_read (s_run_t *run, s_conn_t *c)
{
    while (true) {
        if (c->in_cap - c->in_len < 16384) {
            size_t cap = c->in_cap ? 2 * c->in_cap : 65536;
            if (cap > S_MAX_IN)
                return -1;
            char *in = realloc (c->in, cap);
            if (!in)
                return -1;
            c->in = in;
            c->in_cap = cap;
        }
        ssize_t n = recv (c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        c->in_len += (size_t) n;
    }
    if (!c->busy)
        return -1;                      //  bytes nobody asked for
    const char *head = c->in;
    const char *hend = s_find (head, c->in_len, "\r\n\r\n");
    if (!hend)
        return 0;
    int status = 0;
    if (sscanf (head, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599)
        return -1;
    size_t vlen = 0;
    const char *cl = s_header (head, hend + 2, "Content-Length", &vlen);
    if (!cl)
        return -1;                      //  chunked answers are not expected from these servers
    size_t body_len = (size_t) strtoull (cl, NULL, 10);
    size_t total = (size_t) (hend + 4 - head) + body_len;
    if (c->in_len < total)
        return 0;
    const char *conn = s_header (head, hend + 2, "Connection", &vlen);
    bool close_after = conn && vlen == 5 && strncasecmp (conn, "close", 5) == 0;

    int64_t now = s_now_ns ();
    int64_t lat = now - c->origin_ns;
    s_lat_add (&run->lat[c->kind], lat);
    s_lat_add (&run->all, lat);
    run->answered++;
    run->kind_answered[c->kind]++;
    run->status[status]++;
    if (status >= 200 && status < 300) {
        run->ok++;
        run->kind_ok[c->kind]++;
    }
    run->t_last_answer = now;
    if (run->trace)
        fprintf (run->trace, "%.3f %.0f %d %s\n", (double) (c->origin_ns - run->t0) / 1e6,
                 (double) lat / 1e3, status, s_kind_names[c->kind]);
    if (strcmp (run->scenario, "cycle") == 0)
        s_cycle_next (c, status, hend + 4, body_len);
    c->in_len = 0;
    s_mark_idle (run, c);
    if (close_after) {
        run->nidle--;
        if (s_reconnect (run, c) != 0)
            return 1;
        run->idle[run->nidle++] = (int) (c - run->conns);
    }
    return 1;
}

//  --------------------------------------------------------------------------------------------
//  The run

static int
s_load_agents (s_run_t *run)
{
    FILE *f = fopen (run->agents_file, "r");
    if (!f) {
        fprintf (stderr, "fixedrate: cannot open %s\n", run->agents_file);
        return -1;
    }
    int i = 0;
    char id[64], token[S_TOKEN_MAX + 1];
    while (i < run->nconns && fscanf (f, "%63s %200s", id, token) == 2) {
        snprintf (run->conns[i].agent_id, sizeof run->conns[i].agent_id, "%s", id);
        snprintf (run->conns[i].agent_token, sizeof run->conns[i].agent_token, "%s", token);
        run->conns[i].step = K_AVAIL;   //  every agent starts by going available
        i++;
    }
    fclose (f);
    if (i < run->nconns) {
        fprintf (stderr, "fixedrate: %s names %d agents, --conns is %d\n", run->agents_file, i,
                 run->nconns);
        return -1;
    }
    return 0;
}

static void
s_arm (s_run_t *run, int64_t at_ns)
{
    struct itimerspec its = { 0 };
    if (at_ns <= 0)
        at_ns = 1;
    its.it_value.tv_sec = at_ns / 1000000000;
    its.it_value.tv_nsec = at_ns % 1000000000;
    timerfd_settime (run->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

//  Cycle: after the run, finish every connection's call (end it, make the agent available), so
//  that the next run finds its agents available and holding nothing. At most 8 requests each.
static void
s_wind_down (s_run_t *run, int64_t now)
{
    if (strcmp (run->scenario, "cycle") != 0)
        return;
    for (int k = 0; k < run->nidle;) {
        s_conn_t *c = &run->conns[run->idle[k]];
        if (c->step != K_OFFER && c->wind_down < 8) {
            run->idle[k] = run->idle[--run->nidle];
            c->wind_down++;
            s_send (run, c, now);
        }
        else
            k++;
    }
}

static void
s_loop (s_run_t *run)
{
    bool open_loop = run->rate > 0;
    uint64_t total = open_loop ? (uint64_t) (run->rate * run->seconds + 0.5) : 0;
    uint64_t released = 0;              //  open loop: requests 0 .. released-1 are due
    uint64_t dispatched = 0;            //  of which these went out
    double interval_ns = open_loop ? 1e9 / run->rate : 0;
    run->t0 = s_now_ns ();
    run->t_end = run->t0 + (int64_t) (run->seconds * 1e9);
    int64_t deadline = run->t_end + S_DRAIN_NS;
    struct epoll_event events[256];
    while (true) {
        int64_t now = s_now_ns ();
        if (open_loop) {
            while (released < total
                   && run->t0 + (int64_t) ((double) released * interval_ns) <= now)
                released++;
            while (dispatched < released && run->nidle > 0) {
                int64_t due = run->t0 + (int64_t) ((double) dispatched * interval_ns);
                if (now - due > run->lag_max_ns)
                    run->lag_max_ns = now - due;
                s_send (run, &run->conns[run->idle[--run->nidle]], due);
                dispatched++;
            }
            if (dispatched == total)
                s_wind_down (run, now);
            if (dispatched == total && run->inflight == 0)
                break;
            run->unsent = total - dispatched;
        }
        else {
            while (now < run->t_end && run->nidle > 0)
                s_send (run, &run->conns[run->idle[--run->nidle]], now);
            if (now >= run->t_end)
                s_wind_down (run, now);
            if (now >= run->t_end && run->inflight == 0)
                break;
        }
        if (now >= deadline)
            break;
        int64_t wake = deadline;
        if (open_loop && released < total)
            wake = run->t0 + (int64_t) ((double) released * interval_ns);
        else if (!open_loop && now < run->t_end)
            wake = run->t_end;
        s_arm (run, wake);
        int n = epoll_wait (run->ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                uint64_t ticks;
                if (read (run->tfd, &ticks, sizeof ticks) < 0) {
                    //  nothing: the timer is re-armed on the next turn
                }
                continue;
            }
            s_conn_t *c = events[i].data.ptr;
            if ((events[i].events & EPOLLOUT) && c->busy && s_flush (run, c) != 0) {
                run->errors++;
                s_mark_idle (run, c);
                run->nidle--;
                if (s_reconnect (run, c) == 0)
                    run->idle[run->nidle++] = (int) (c - run->conns);
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                int rc = s_read (run, c);
                if (rc < 0) {
                    bool was_busy = c->busy;
                    if (was_busy) {
                        run->errors++;
                        if (strcmp (run->scenario, "cycle") == 0)
                            c->step = K_AVAIL;
                        s_mark_idle (run, c);
                        run->nidle--;
                    }
                    else {
                        //  an idle connection closed by the server: take it off the stack
                        for (int k = 0; k < run->nidle; k++)
                            if (run->idle[k] == (int) (c - run->conns)) {
                                run->idle[k] = run->idle[--run->nidle];
                                break;
                            }
                    }
                    if (s_reconnect (run, c) == 0)
                        run->idle[run->nidle++] = (int) (c - run->conns);
                }
            }
        }
    }
}

static void
s_report_line (s_run_t *run, const char *kind, s_lat_t *lat, uint64_t sent, uint64_t answered,
               uint64_t ok)
{
    if (lat->n > 1)
        qsort (lat->v, lat->n, sizeof *lat->v, s_cmp64);
    int64_t span = (run->t_last_answer > run->t0 ? run->t_last_answer : run->t_end) - run->t0;
    if (span <= 0)
        span = 1;
    printf ("RESULT scenario=%s kind=%s mode=%s rate=%.0f conns=%d seconds=%.1f sent=%" PRIu64
            " answered=%" PRIu64 " ok=%" PRIu64 " non2xx=%" PRIu64 " rps=%.1f p50_us=%.0f"
            " p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f",
            run->scenario, kind, run->rate > 0 ? "rate" : "closed", run->rate, run->nconns,
            run->seconds, sent, answered, ok, answered - ok, (double) answered * 1e9 / (double) span,
            s_quantile_us (lat, 0.50), s_quantile_us (lat, 0.90), s_quantile_us (lat, 0.99),
            s_quantile_us (lat, 0.999), lat->n ? (double) lat->v[lat->n - 1] / 1000.0 : 0.0);
    if (strcmp (kind, "all") == 0) {
        printf (" errors=%" PRIu64 " unfinished=%d unsent=%" PRIu64 " reconnects=%" PRIu64
                " lag_max_us=%.0f codes=",
                run->errors, run->inflight, run->unsent, run->reconnects,
                (double) run->lag_max_ns / 1000.0);
        const char *sep = "";
        for (int s = 0; s < 600; s++)
            if (run->status[s]) {
                printf ("%s%d:%" PRIu64, sep, s, run->status[s]);
                sep = ",";
            }
        if (!*sep)
            printf ("none");
    }
    printf ("\n");
}

//  Close every connection and free what the run holds.
static void
s_run_free (s_run_t *run)
{
    for (int i = 0; run->conns && i < run->nconns; i++) {
        if (run->conns[i].fd > 0)
            close (run->conns[i].fd);
        free (run->conns[i].in);
    }
    for (int k = 0; k < K_COUNT; k++)
        free (run->lat[k].v);
    free (run->all.v);
    free (run->conns);
    free (run->idle);
    if (run->ep >= 0)
        close (run->ep);
    if (run->tfd >= 0)
        close (run->tfd);
    if (run->trace)
        fclose (run->trace);
}

static void
s_usage (void)
{
    fprintf (stderr,
             "usage: fixedrate --port P --scenario contact|get|cycle [--rate R (0: closed loop)]\n"
             "                 [--seconds S] [--conns N] [--token T] [--path PATH]\n"
             "                 [--client-token T --agents FILE] [--cases N] [--seed N]\n"
             "                 [--trace FILE]\n");
}

int
main (int argc, char *argv[])
{
    s_run_t run = { .rate = 1000, .seconds = 10, .nconns = 16, .path = "/health",
                    .cases = 100000, .rng = 88172645463325252ULL };
    static const struct option longopts[] = {
        { "port", required_argument, NULL, 'p' },     { "scenario", required_argument, NULL, 's' },
        { "rate", required_argument, NULL, 'r' },     { "seconds", required_argument, NULL, 'd' },
        { "conns", required_argument, NULL, 'c' },    { "token", required_argument, NULL, 't' },
        { "path", required_argument, NULL, 'P' },     { "client-token", required_argument, NULL, 'C' },
        { "agents", required_argument, NULL, 'a' },   { "cases", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 'S' },     { "trace", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': run.port = atoi (optarg); break;
        case 's': run.scenario = optarg; break;
        case 'r': run.rate = atof (optarg); break;
        case 'd': run.seconds = atof (optarg); break;
        case 'c': run.nconns = atoi (optarg); break;
        case 't': run.token = optarg; break;
        case 'P': run.path = optarg; break;
        case 'C': run.client_token = optarg; break;
        case 'a': run.agents_file = optarg; break;
        case 'n': run.cases = (uint32_t) strtoul (optarg, NULL, 10); break;
        case 'S': run.rng = strtoull (optarg, NULL, 10) | 1; break;
        case 'T':
            if (!run.trace)
                run.trace = fopen (optarg, "w");
            if (!run.trace) {
                fprintf (stderr, "fixedrate: cannot write %s\n", optarg);
                return 2;
            }
            break;
        default: s_usage (); return 2;
        }
    }
    bool cycle = run.scenario && strcmp (run.scenario, "cycle") == 0;
    if (run.port <= 0 || run.port > 65535 || !run.scenario
        || (strcmp (run.scenario, "contact") && strcmp (run.scenario, "get") && !cycle)
        || run.rate < 0 || run.rate > 1e6 || run.seconds <= 0 || run.seconds > 3600
        || run.nconns < 1 || run.nconns > S_MAX_CONNS || run.cases < 1
        || (strcmp (run.scenario, "contact") == 0 && !run.token && !run.agents_file)
        || (cycle && (!run.client_token || !run.agents_file))
        || (run.token && strlen (run.token) > S_TOKEN_MAX)
        || (run.client_token && strlen (run.client_token) > S_TOKEN_MAX)
        || strlen (run.path) > 1000) {
        s_usage ();
        return 2;
    }
    run.conns = calloc ((size_t) run.nconns, sizeof *run.conns);
    run.idle = calloc ((size_t) run.nconns, sizeof *run.idle);
    run.ep = epoll_create1 (0);
    run.tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (!run.conns || !run.idle || run.ep < 0 || run.tfd < 0) {
        s_run_free (&run);
        return 1;
    }
    struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl (run.ep, EPOLL_CTL_ADD, run.tfd, &tev);
    if (run.agents_file && strcmp (run.scenario, "get") != 0 && s_load_agents (&run) != 0) {
        s_run_free (&run);
        return 1;
    }
    for (int i = 0; i < run.nconns; i++) {
        if (s_connect (&run, &run.conns[i]) != 0) {
            fprintf (stderr, "fixedrate: cannot connect to 127.0.0.1:%d: %s\n", run.port,
                     strerror (errno));
            s_run_free (&run);
            return 1;
        }
        run.idle[run.nidle++] = i;
    }
    s_loop (&run);

    s_report_line (&run, "all", &run.all, run.sent, run.answered, run.ok);
    if (cycle)
        for (int k = K_OFFER; k < K_COUNT; k++)
            if (k != K_ME || run.kind_sent[k])
                s_report_line (&run, s_kind_names[k], &run.lat[k], run.kind_sent[k],
                               run.kind_answered[k], run.kind_ok[k]);
    int rc = run.errors || run.inflight ? 3 : 0;
    s_run_free (&run);
    return rc;
}
