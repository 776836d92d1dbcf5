/*  forward — see forward.h. One handler serves every forwarded route: it finds the route's entry
    by method and pattern, builds the request body, sends it to the owning service and defers
    the HTTP request; the answer is given from s_on_reply (the client socket's read event) or
    s_on_deadline (the call's timer), whichever comes first, and the other is cancelled.

    Each call waiting is an s_pending_t in one table keyed by request id. Exactly one of three
    things ends it, each through s_complete, which takes it out of the table before calling its
    done function: its reply, its deadline, forward_stop.
*/
#include "forward.h"
#include "audit.h"
#include "callers.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define S_TABLES_MAX    16
#define S_CLIENTS_MAX   8
#define S_NAME_MAX      31

typedef struct {
    intake_t *intake;
    char name[S_NAME_MAX + 1];
    gl_req_t *req;                      //  asynchronous calls; NULL when GL_ENDPOINT_<NAME> is
                                        //  not set (or not valid)
    struct event *on_reply;             //  req's ZMQ_FD readable
    int timeout_ms;
    gl_metric_t *unavailable;           //  answers of 503 <name>_unavailable
} s_client_t;

//  A call waiting for its answer.
typedef struct {
    s_client_t *client;
    char id[GL_ID_LEN + 1];
    struct event *deadline;
    forward_done_fn *done;
    void *arg;
} s_pending_t;

struct _forward_t {
    const forward_route_t *tables[S_TABLES_MAX];
    size_t sizes[S_TABLES_MAX];
    size_t ntables;
    s_client_t clients[S_CLIENTS_MAX];
    size_t nclients;
    zhashx_t *pending;                  //  request id -> s_pending_t (not owned by the table)
    size_t pending_max;                 //  GL_INTAKE_FORWARD_PENDING_MAX, read on first call
    gl_metric_t *waiting;               //  gauge: calls waiting now
};

static struct _forward_t *
s_self (intake_t *intake)
{
    if (!intake->forward)
        intake->forward = calloc (1, sizeof (struct _forward_t));
    assert (intake->forward);
    return intake->forward;
}

void
forward_destroy (intake_t *intake)
{
    assert (intake);
    struct _forward_t *self = intake->forward;
    if (!self)
        return;
    if (self->pending) {
        //  forward_stop answered them all, unless it was not called: then their requests may be
        //  gone already (http_destroy answered them), so they are only freed here.
        if (zhashx_size (self->pending) > 0)
            gl_error ("forward: %zu calls still waiting at destroy: forward_stop was not called",
                      zhashx_size (self->pending));
        for (s_pending_t *p = zhashx_first (self->pending); p; p = zhashx_next (self->pending)) {
            event_free (p->deadline);
            free (p);
        }
        zhashx_destroy (&self->pending);
    }
    for (size_t i = 0; i < self->nclients; i++) {
        s_client_t *c = &self->clients[i];
        if (c->on_reply)
            event_free (c->on_reply);
        gl_req_destroy (&c->req);
    }
    free (self);
    intake->forward = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Clients

static void
s_upper (const char *name, char *out, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        out[i] = (char) toupper ((unsigned char) name[i]);
    out[i] = 0;
}

static void s_on_reply (evutil_socket_t fd, short what, void *arg);

//  A client for c's service, with its token set; NULL when the endpoint is not configured (or
//  not valid), which is logged.
static gl_req_t *
s_connect (intake_t *intake, s_client_t *c)
{
    char upper[S_NAME_MAX + 1], key[S_NAME_MAX + 32];
    s_upper (c->name, upper, sizeof upper);
    snprintf (key, sizeof key, "GL_ENDPOINT_%s", upper);
    const char *endpoint = gl_config_str (intake->config, key, NULL);
    if (!endpoint || !*endpoint) {
        gl_warn ("forward: %s is not set: requests for %s answer 503", key, c->name);
        return NULL;
    }
    gl_req_t *req = gl_req_new_curve (endpoint, intake->curve);
    if (!req) {
        gl_warn ("forward: %s is not a valid endpoint list: %s answers 503", key, c->name);
        return NULL;
    }
    //  The token: GL_INTAKE_<NAME>_TOKEN, else the first of GL_BUS_TOKENS.
    snprintf (key, sizeof key, "GL_INTAKE_%s_TOKEN", upper);
    const char *token = gl_config_str (intake->config, key, NULL);
    char first[GL_REQ_AUTH_MAX + 1] = "";
    if (!token || !*token) {
        gl_req_first_token (gl_config_str (intake->config, "GL_BUS_TOKENS", NULL), first);
        token = first;
    }
    if (*token && gl_req_set_auth (req, token) != 0)
        gl_warn ("forward: the bus token for %s is not valid (printable ASCII, no spaces or "
                 "commas)",
                 c->name);
    return req;
}

static s_client_t *
s_client (intake_t *intake, const char *service)
{
    struct _forward_t *self = s_self (intake);
    for (size_t i = 0; i < self->nclients; i++)
        if (strcmp (self->clients[i].name, service) == 0)
            return &self->clients[i];
    assert (self->nclients < S_CLIENTS_MAX && strlen (service) <= S_NAME_MAX);
    s_client_t *c = &self->clients[self->nclients++];
    c->intake = intake;
    snprintf (c->name, sizeof c->name, "%s", service);
    char upper[S_NAME_MAX + 1], key[S_NAME_MAX + 32];
    s_upper (service, upper, sizeof upper);
    snprintf (key, sizeof key, "GL_INTAKE_%s_TIMEOUT_MS", upper);
    c->timeout_ms = (int) gl_config_int (intake->config, key, 2000, 1, GL_REQ_TTL_MAX);
    c->req = s_connect (intake, c);
    //  The socket joins the loop; without a loop (never, once started) calls answer 503.
    if (c->req && intake->base) {
        c->on_reply = event_new (intake->base, gl_req_fd (c->req), EV_READ | EV_PERSIST,
                                 s_on_reply, c);
        if (!c->on_reply || event_add (c->on_reply, NULL) != 0) {
            gl_error ("forward: cannot watch the socket for %s: its requests answer 503",
                      service);
            if (c->on_reply)
                event_free (c->on_reply);
            c->on_reply = NULL;
            gl_req_destroy (&c->req);
        }
    }
    else
        gl_req_destroy (&c->req);
    char metric[64];
    snprintf (metric, sizeof metric, "service=\"%s\"", service);
    c->unavailable = gl_metrics_counter ("greenline_intake_forward_unavailable_total",
                                         "Forwarded requests answered 503 because the owning "
                                         "service did not answer usefully",
                                         metric);
    return c;
}

int
forward_timeout_ms (intake_t *intake, const char *service)
{
    assert (intake && service);
    return s_client (intake, service)->timeout_ms;
}

//  --------------------------------------------------------------------------------------------
//  Calls waiting

static void
s_waiting_update (struct _forward_t *self)
{
    gl_metric_set (self->waiting, (int64_t) zhashx_size (self->pending));
}

//  End p: out of the table and its timer gone first, so that done may start other calls; then
//  done. p is freed.
static void
s_complete (intake_t *intake, s_pending_t *p, const gl_reply_t *reply)
{
    struct _forward_t *self = s_self (intake);
    zhashx_delete (self->pending, p->id);
    s_waiting_update (self);
    event_free (p->deadline);
    forward_done_fn *done = p->done;
    void *arg = p->arg;
    free (p);
    done (intake, reply, arg);
}

//  A made-up reply (a call that ended without the service's answer).
static void
s_made_up (gl_reply_t *reply, const char *id, int status, const char *code, const char *message)
{
    gl_reply_clear (reply);
    snprintf (reply->id, sizeof reply->id, "%s", id);
    reply->status = status;
    reply->local = true;
    reply->body = json_object ();
    reply->error_code = strdup (code);
    reply->error_message = strdup (message);
    reply->error_field = strdup ("");
}

//  The client's socket has something (ZMQ_FD is edge-triggered: read until gl_req_recv says
//  nothing more, which also re-arms it). Every reply ends its call.
static void
s_on_reply (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    s_client_t *c = arg;
    struct _forward_t *self = s_self (c->intake);
    gl_reply_t reply = { 0 };
    while (c->req && gl_req_recv (c->req, &reply) == 1) {
        s_pending_t *p = self->pending ? zhashx_lookup (self->pending, reply.id) : NULL;
        //  Every outstanding id is in the table (forgotten when it leaves): never NULL.
        if (p)
            s_complete (c->intake, p, &reply);
    }
    gl_reply_clear (&reply);
}

static void
s_on_deadline (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    s_pending_t *p = arg;
    s_client_t *c = p->client;
    intake_t *intake = c->intake;
    char id[GL_ID_LEN + 1];
    memcpy (id, p->id, sizeof id);
    //  The answer may be sitting on the socket unnoticed (timers and the socket's edge race):
    //  read first; p may be answered, and freed, by that.
    s_on_reply (-1, EV_READ, c);
    p = zhashx_lookup (s_self (intake)->pending, id);
    if (!p)
        return;
    gl_req_forget (c->req, id);
    char message[96];
    snprintf (message, sizeof message, "no reply within %d ms", c->timeout_ms);
    gl_reply_t reply = { 0 };
    s_made_up (&reply, id, 504, "timeout", message);
    s_complete (intake, p, &reply);
    gl_reply_clear (&reply);
}

int
forward_call (intake_t *intake, const char *service, const char *op, const char *key,
              const json_t *body, forward_done_fn *done, void *arg, gl_reply_t *reply)
{
    assert (intake && service && op && done && reply);
    struct _forward_t *self = s_self (intake);
    if (!self->pending) {
        self->pending = zhashx_new ();
        assert (self->pending);
        int64_t most = (int64_t) GL_REQ_OUTSTANDING_MAX * S_CLIENTS_MAX;
        self->pending_max = (size_t) gl_config_int (
            intake->config, "GL_INTAKE_FORWARD_PENDING_MAX", FORWARD_PENDING_DEFAULT, 1, most);
        self->waiting = gl_metrics_gauge ("greenline_intake_forward_waiting",
                                          "Forwarded requests waiting for a service's answer",
                                          NULL);
    }
    s_client_t *c = s_client (intake, service);
    gl_reply_clear (reply);
    if (!c->req) {
        s_made_up (reply, "", 503, "not_configured", "the service is not configured");
        return -1;
    }
    if (zhashx_size (self->pending) >= self->pending_max) {
        s_made_up (reply, "", 503, "busy", "too many requests are waiting for services");
        return -1;
    }
    s_pending_t *p = calloc (1, sizeof *p);
    if (!p) {
        s_made_up (reply, "", 503, "busy", "out of memory");
        return -1;
    }
    p->client = c;
    p->done = done;
    p->arg = arg;
    p->deadline = evtimer_new (intake->base, s_on_deadline, p);
    if (!p->deadline) {
        free (p);
        s_made_up (reply, "", 503, "busy", "out of memory");
        return -1;
    }
    if (gl_req_send (c->req, op, key, body, c->timeout_ms, reply) != 0) {
        event_free (p->deadline);
        free (p);
        return -1;
    }
    memcpy (p->id, reply->id, sizeof p->id);
    struct timeval tv = { (time_t) (c->timeout_ms / 1000),
                          (suseconds_t) ((c->timeout_ms % 1000) * 1000) };
    if (zhashx_insert (self->pending, p->id, p) != 0 || evtimer_add (p->deadline, &tv) != 0) {
        zhashx_delete (self->pending, p->id);
        gl_req_forget (c->req, p->id);
        event_free (p->deadline);
        free (p);
        s_made_up (reply, "", 503, "busy", "out of memory");
        return -1;
    }
    s_waiting_update (self);
    //  The send may have taken the edge of a reply that came in meanwhile (ZMQ_FD): look again,
    //  from the loop, so that done is never called from inside forward_call.
    if (gl_req_ready (c->req))
        event_active (c->on_reply, EV_READ, 0);
    return 0;
}

void
forward_stop (intake_t *intake)
{
    assert (intake);
    struct _forward_t *self = intake->forward;
    if (!self || !self->pending)
        return;
    size_t n = zhashx_size (self->pending);
    if (n > 0)
        gl_info ("forward: %zu requests still waiting at stop: answered 503", n);
    s_pending_t *p;
    while ((p = zhashx_first (self->pending))) {
        gl_req_forget (p->client->req, p->id);
        gl_reply_t reply = { 0 };
        s_made_up (&reply, p->id, 503, "stopping", "intake is stopping");
        s_complete (intake, p, &reply);
        gl_reply_clear (&reply);
    }
}

//  --------------------------------------------------------------------------------------------
//  The handler

static const forward_route_t *
s_find (intake_t *intake, http_req_t *req)
{
    struct _forward_t *self = s_self (intake);
    const char *method = http_method (req), *pattern = http_route_pattern (req);
    for (size_t t = 0; t < self->ntables; t++)
        for (size_t i = 0; i < self->sizes[t]; i++) {
            const forward_route_t *r = &self->tables[t][i];
            if (strcmp (r->pattern, pattern) == 0 && strcmp (r->method, method) == 0)
                return r;
        }
    return NULL;
}

static json_t *
s_caller (const http_caller_t *who)
{
    static const struct {
        uint32_t flag;
        const char *name;
    } roles[] = { { GL_ROLE_AGENT, "agent" },
                  { GL_ROLE_SUPERVISOR, "supervisor" },
                  { GL_ROLE_PROTECTION, "protection" },
                  { GL_ROLE_ADMIN, "admin" },
                  { GL_ROLE_API_CLIENT, "api_client" } };
    json_t *r = json_array (), *u = json_array ();
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (who->roles & roles[i].flag)
            json_array_append_new (r, json_string (roles[i].name));
    for (size_t i = 0; i < who->unit_count; i++)
        json_array_append_new (u, json_string (who->units[i]));
    return json_pack ("{s:s, s:o, s:o}", "user_id", who->user_id, "roles", r, "units", u);
}

int
forward_idem_key (intake_t *intake, http_req_t *req, char out[FORWARD_KEY_LEN + 1])
{
    const char *header = http_header (req, "Idempotency-Key");
    if (!header) {
        char id[GL_ID_LEN + 1];
        gl_id_new (id);
        snprintf (out, FORWARD_KEY_LEN + 1, "n-%s", id);
        return 0;
    }
    if (!*header || !gl_req_key_valid (header))
        return http_reply_error (req, 400, "invalid_header",
                                 "Idempotency-Key: 1..128 printable ASCII characters, no spaces",
                                 "Idempotency-Key"),
               -1;
    char material[GL_ID_LEN + GL_REQ_KEY_MAX + 64], hash[CALLERS_REF_LEN + 1];
    snprintf (material, sizeof material, "%s\n%s\n%s", http_caller (req)->user_id,
              http_route_pattern (req), header);
    callers_hash (intake->callers, "forward", material, hash);
    snprintf (out, FORWARD_KEY_LEN + 1, "h-%s", hash);
    return 0;
}

static bool
s_passed_on (int status)
{
    return status == 400 || status == 403 || status == 404 || status == 409 || status == 410
           || status == 422 || status == 423 || status == 429;
}

//  A forwarded request waiting for its service.
typedef struct {
    http_req_t *req;
    const forward_route_t *route;
    bool changing;
} s_waiting_t;

//  Answer req with what the service said (today's mapping, forward.h): 2xx and the refusals
//  pass through; anything else, or no answer, is 503 <service>_unavailable.
static int
s_answer (intake_t *intake, http_req_t *req, const forward_route_t *route, bool changing,
          const gl_reply_t *reply, bool configured)
{
    int status = reply->status;
    bool served = !reply->local;
    if (served && (status == 200 || status == 201 || status == 202)) {
        if (status == 200 && (route->flags & FORWARD_CREATED))
            status = 201;
        return http_reply_json (req, status, json_incref (reply->body));
    }
    if (served && s_passed_on (status))
        return http_reply_error (req, status,
                                 reply->error_code && *reply->error_code ? reply->error_code
                                                                         : "refused",
                                 reply->error_message ? reply->error_message : "",
                                 reply->error_field && *reply->error_field ? reply->error_field
                                                                           : NULL);
    s_client_t *c = s_client (intake, route->service);
    if (configured)
        gl_warn ("forward: %s %s answered %d %s", route->op, reply->id, status,
                 reply->error_code ? reply->error_code : "");
    gl_metric_inc (c->unavailable, 1);
    const char *why = reply->local && reply->error_code ? reply->error_code : "";
    char code[S_NAME_MAX + 16], message[256];
    snprintf (code, sizeof code, "%s_unavailable", route->service);
    if (strcmp (why, "stopping") == 0)
        snprintf (message, sizeof message,
                  "intake is stopping; %s may or may not have acted: retry%s", route->service,
                  changing ? " with the same Idempotency-Key" : "");
    else if (strcmp (why, "busy") == 0)
        snprintf (message, sizeof message,
                  "too many requests are waiting for %s; nothing was sent: retry", route->service);
    else
        snprintf (message, sizeof message,
                  "%s did not answer%s; it may or may not have acted: retry%s", route->service,
                  configured ? " in time" : " (not configured)",
                  changing ? " with the same Idempotency-Key" : "");
    return http_reply_error (req, 503, code, message, NULL);
}

static void
s_forwarded (intake_t *intake, const gl_reply_t *reply, void *arg)
{
    s_waiting_t *w = arg;
    s_answer (intake, w->req, w->route, w->changing, reply, true);
    free (w);
}

static int
s_forward (intake_t *intake, http_req_t *req)
{
    const forward_route_t *route = s_find (intake, req);
    assert (route);             //  every route with this handler is in a table
    const char *method = http_method (req);
    bool changing = strcmp (method, "GET") != 0;
    char key[FORWARD_KEY_LEN + 1] = "";
    if (changing && forward_idem_key (intake, req, key) != 0)
        return -1;
    const json_t *body = http_body (req);
    json_t *params = http_params_json (req), *query = http_query_json (req);
    json_t *request = json_pack ("{s:o, s:o, s:o, s:o}", "caller", s_caller (http_caller (req)),
                                 "params", params ? params : json_object (), "query",
                                 query ? query : json_object (), "body",
                                 body ? json_incref ((json_t *) body) : json_object ());
    s_waiting_t *w = calloc (1, sizeof *w);
    if (!request || !w) {
        json_decref (request);
        free (w);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    const char *id = http_param (req, "id");
    if ((route->flags & FORWARD_AUDIT)
        && audit_record_req (intake, req, changing ? "forward" : "read", route->op,
                             id && gl_id_valid (id) ? id : "", "requested")
               != 0) {
        json_decref (request);
        free (w);
        return http_reply_error (req, 503, "unavailable", "cannot write the audit trail now",
                                 NULL);
    }
    w->req = req;
    w->route = route;
    w->changing = changing;
    gl_reply_t reply = { 0 };
    int rc = forward_call (intake, route->service, route->op, changing ? key : NULL, request,
                           s_forwarded, w, &reply);
    json_decref (request);
    if (rc == 0) {
        http_defer (req);       //  answered by s_forwarded
        return 0;
    }
    free (w);
    bool configured = !(reply.error_code && strcmp (reply.error_code, "not_configured") == 0);
    int answered = s_answer (intake, req, route, changing, &reply, configured);
    gl_reply_clear (&reply);
    return answered;
}

void
forward_routes (intake_t *intake, const forward_route_t *routes, size_t n)
{
    assert (intake && routes && n > 0);
    struct _forward_t *self = s_self (intake);
    assert (self->ntables < S_TABLES_MAX);
    for (size_t i = 0; i < n; i++) {
        const forward_route_t *r = &routes[i];
        assert (r->method && r->pattern && r->service && r->op);
        assert (strlen (r->service) <= S_NAME_MAX && gl_req_op_valid (r->op));
        http_route (intake->http, r->method, r->pattern, r->roles, s_forward);
    }
    self->tables[self->ntables] = routes;
    self->sizes[self->ntables] = n;
    self->ntables++;
}
