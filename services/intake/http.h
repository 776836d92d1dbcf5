/*  http — intake's JSON API framework on libevent's evhttp: a route table with roles, the request
    as handlers see it, strict body validation, pagination, and the one error shape.

    Adding endpoints (one file per concern, e.g. api_calls.c):

        static int
        s_answer (intake_t *intake, http_req_t *req)
        {
            static const char *const fields[] = { "note", "outcome", NULL };
            static const char *const outcomes[] = { "resolved", "callback", NULL };
            const char *note = NULL, *outcome = NULL;
            if (http_body_only (req, fields)
                || http_body_str (req, "note", false, 2000, &note)
                || http_body_enum (req, "outcome", true, outcomes, &outcome))
                return -1;                      //  already answered 400
            const char *id = http_param (req, "id");
            ...
            return http_reply_json (req, 200, json_pack ("{s:s}", "id", id));
        }

        void
        api_calls_routes (intake_t *intake)
        {
            http_route (intake->http, "POST", "/api/v1/calls/{id}/answer", GL_ROLE_AGENT, s_answer);
        }

    and one line in intake.c (s_routes) calling api_calls_routes, and the operation in docs/api.md
    (a test fails when the route table and the OpenAPI document disagree).

    Before a handler runs, the framework has answered, in this order (docs/api.md, "Order of
    checks"): 400 for a body on a method that takes none; 414/400/404/405 from the path and
    method; 413 for a body over GL_HTTP_MAX_BODY; 401/403 from the authentication hook and the
    route's roles; 400 for a malformed query string; 415 for a body that is not
    application/json; 400 for malformed JSON, duplicate keys, nesting deeper than
    HTTP_MAX_DEPTH or a body that is not an object.

    Handlers run on the actor's thread, one at a time; everything a handler gets from req is
    borrowed and valid until the handler returns (or, for a deferred request, until it is
    answered). A handler replies exactly once (http_reply_*) and returns 0, or -1; a handler
    that returns without replying, and did not defer, is answered 500 (logged).
*/
#ifndef INTAKE_HTTP_H
#define INTAKE_HTTP_H
#include "gl/gl_id.h"
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct _intake_t intake_t;
typedef struct _http_t http_t;
typedef struct _http_req_t http_req_t;

//  Roles, as bit flags. A route allows a set of them; GL_ROLE_PUBLIC (no credentials needed)
//  stands alone.
#define GL_ROLE_PUBLIC      (1u << 0)
#define GL_ROLE_AGENT       (1u << 1)
#define GL_ROLE_SUPERVISOR  (1u << 2)
#define GL_ROLE_PROTECTION  (1u << 3)
#define GL_ROLE_ADMIN       (1u << 4)
#define GL_ROLE_API_CLIENT  (1u << 5)
#define GL_ROLE_STAFF       (GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION | GL_ROLE_ADMIN)

//  Limits (docs/api.md, "Limits").
#define HTTP_MAX_DEPTH      32          //  JSON nesting
#define HTTP_PATH_MAX       1024        //  bytes of the raw path (414 beyond)
#define HTTP_SEGMENTS_MAX   32          //  path segments
#define HTTP_QUERY_MAX      32          //  query parameters
#define HTTP_UNITS_MAX      32          //  units a caller belongs to
#define HTTP_UNIT_LEN       63
#define HTTP_PAGE_DEFAULT   50
#define HTTP_PAGE_MAX       200
#define HTTP_CURSOR_MAX     256         //  bytes of a decoded cursor

//  Who is calling: filled by the authentication hook, read by handlers.
typedef struct {
    char user_id[GL_ID_LEN + 1];
    uint32_t roles;                     //  GL_ROLE_* flags
    size_t unit_count;
    char units[HTTP_UNITS_MAX][HTTP_UNIT_LEN + 1];
} http_caller_t;

//  Handler of one route.
typedef int (http_handler_fn) (intake_t *intake, http_req_t *req);

//  Authentication hook (intake->authenticate): read the credentials (http_header), fill caller
//  and return 0; or return 401 (no or bad credentials) or 503 (cannot check now). It may add
//  headers (http_set_header) but never replies itself. Called only for non-PUBLIC routes.
typedef int (http_auth_fn) (intake_t *intake, http_req_t *req, http_caller_t *caller);

//  The default hook: authenticates nobody (every non-PUBLIC route answers 401).
int http_authenticate_nobody (intake_t *intake, http_req_t *req, http_caller_t *caller);

//  Listening options (intake.c reads them from configuration).
typedef struct {
    const char *host;           //  GL_HTTP_HOST
    int port;                   //  GL_HTTP_PORT, 0: ephemeral (see http_port)
    size_t max_body;            //  GL_HTTP_MAX_BODY
    size_t max_headers;         //  GL_HTTP_MAX_HEADERS: request line and headers, bytes
    int timeout_s;              //  GL_HTTP_TIMEOUT_S: read/write/idle timeout per connection
} http_opts_t;

//  New, empty route table. owner (borrowed) is passed to every handler and hook.
http_t *http_new (intake_t *owner);

//  Stop listening, close every connection, free. NULLs *self_p.
void http_destroy (http_t **self_p);

//  Register a route. method is GET, POST, PUT, PATCH or DELETE (GET routes answer HEAD too);
//  pattern is "/" or "/seg/{name}/seg", literal segments of [A-Za-z0-9._~-], parameters
//  {[a-z_][a-z0-9_]*}, and the last segment may be {name*}: the rest of the path, one or more
//  segments. A literal segment wins over a parameter at the same place. Asserts on a bad
//  method, pattern or roles, and on a route that duplicates one already registered.
void http_route (http_t *self, const char *method, const char *pattern, uint32_t roles,
                 http_handler_fn *fn);

//  Print the route table, one "METHOD PATTERN role,role" line per route, in registration order.
void http_print_routes (http_t *self, FILE *out);

//  Start serving on base. 0, or -1 with the reason in err (cannot bind, bad options).
int http_listen (http_t *self, struct event_base *base, const http_opts_t *opts, char *err,
                 size_t errlen);

//  Stop accepting connections (at shutdown, before the requests in flight are drained); the
//  open connections stay until http_destroy.
void http_stop_listening (http_t *self);

//  The port bound (after port 0), or -1 when not listening.
int http_port (http_t *self);

//  The request. Strings are borrowed; NULL when absent.
const char *http_method (http_req_t *req);          //  "GET" for HEAD too
const char *http_route_pattern (http_req_t *req);   //  the matched pattern, never the raw path
const char *http_request_id (http_req_t *req);      //  also sent as X-Request-Id
const char *http_param (http_req_t *req, const char *name);    //  path parameter, decoded
const char *http_query (http_req_t *req, const char *name);    //  query parameter, decoded
const char *http_header (http_req_t *req, const char *name);
//  Every path parameter, or every query parameter, as a new JSON object of strings (decoded);
//  NULL when out of memory. Path parameters and query values are valid UTF-8 (checked on parse).
json_t *http_params_json (http_req_t *req);
json_t *http_query_json (http_req_t *req);
//  The address of the TCP peer (the proxy in front, in a deployment), as text; NULL if unknown.
const char *http_peer (http_req_t *req);
const json_t *http_body (http_req_t *req);          //  an object, or NULL without a body
const http_caller_t *http_caller (http_req_t *req); //  zeroed on PUBLIC routes

//  Add a response header (before replying). Values with CR or LF are dropped.
void http_set_header (http_req_t *req, const char *name, const char *value);

//  Validation. Each returns 0, or answers 400 naming the field and returns -1; after a reply
//  they return -1 without answering again, so a handler can chain them with ||. An absent
//  body reads as {}. Absent optional fields leave *out untouched (set the default first).
//  Unknown fields: anything in the body not in allowed (NULL-terminated).
int http_body_only (http_req_t *req, const char *const *allowed);
//  A string of at most max_len characters (UTF-8 code points); required means present and
//  non-empty. *out is borrowed from the body.
int http_body_str (http_req_t *req, const char *field, bool required, size_t max_len,
                   const char **out);
//  An integer (not a real) in [min, max].
int http_body_int (http_req_t *req, const char *field, bool required, int64_t min, int64_t max,
                   int64_t *out);
int http_body_bool (http_req_t *req, const char *field, bool required, bool *out);
//  One of allowed (NULL-terminated); *out points into allowed.
int http_body_enum (http_req_t *req, const char *field, bool required,
                    const char *const *allowed, const char **out);
//  A Greenline id (32 lowercase hex digits).
int http_body_id (http_req_t *req, const char *field, bool required, const char **out);
//  Query parameters: anything not in allowed (NULL-terminated) is refused.
int http_query_only (http_req_t *req, const char *const *allowed);

//  Pagination: ?limit= (1..HTTP_PAGE_MAX, default HTTP_PAGE_DEFAULT) and ?cursor= (opaque to
//  the client: base64url of the handler's own cursor text, which the handler must validate).
typedef struct {
    int limit;
    bool has_cursor;
    char cursor[HTTP_CURSOR_MAX + 1];   //  decoded, NUL-terminated, no NUL inside
} http_page_t;
int http_page (http_req_t *req, http_page_t *page);

//  Replies. Each returns 0 (-1 only for a second reply, which is dropped and logged).
//  body is stolen (json_pack's result can be passed directly; NULL answers 500).
int http_reply_json (http_req_t *req, int status, json_t *body);
//  {"error":{"code","message","field"}}; field NULL for none. A 500 never shows message: it is
//  logged and the client sees "internal error".
int http_reply_error (http_req_t *req, int status, const char *code, const char *message,
                      const char *field);
//  {"items": items (stolen array), "next_cursor": base64url of next_cursor, or null}.
int http_reply_page (http_req_t *req, json_t *items, const char *next_cursor);
//  A static file: fd (taken, closed by the framework) of size bytes.
int http_reply_file (http_req_t *req, int fd, size_t size, const char *content_type);
//  304 Not Modified for a conditional GET whose validator (the ETag header the caller set)
//  still holds: no body, the same caching headers as http_reply_file.
int http_reply_not_modified (http_req_t *req);

//  Deferred replies. A handler that waits for something (an asynchronous Redis call, another
//  service over the bus) calls http_defer and returns 0 without replying. The request, and
//  everything borrowed from it, stays valid until one http_reply_* answers it later, from a
//  callback on the same thread. A deferred request must be answered exactly once, even when
//  its client has gone (the answer is then dropped by evhttp and the request freed), so
//  whatever it waits for needs a deadline. http_destroy answers any still waiting with 503.
void http_defer (http_req_t *req);
//  Deferred requests and open streams.
size_t http_waiting (http_t *self);

//  Streams (server-sent events): http_stream_start answers 200 with content_type and the
//  headers every reply has, and keeps the connection open (no idle timeout); the handler
//  returns 0. http_stream_send writes bytes as they come (0, or -1 when the stream has ended
//  or its client has gone); http_stream_pending is what is still queued for a slow client.
//  http_stream_end closes the stream and frees the request. When the client goes away (noticed
//  on the next write, or by evhttp), on_closed (if given) is called once, and the request is
//  freed right after it returns: the owner forgets req there. http_stream_end calls on_closed
//  too, so the owner has one place to forget a stream. For HEAD, http_stream_start answers the
//  headers alone (no stream starts) and returns -1: the handler then just returns.
typedef void (http_stream_closed_fn) (http_req_t *req, void *arg);
int http_stream_start (http_req_t *req, const char *content_type,
                       http_stream_closed_fn *on_closed, void *arg);
int http_stream_send (http_req_t *req, const char *data, size_t len);
size_t http_stream_pending (http_req_t *req);
void http_stream_end (http_req_t *req);

//  Parse a request body: strict JSON (duplicate keys, trailing data, NUL escapes and nesting
//  deeper than HTTP_MAX_DEPTH refused), an object at the top. 0 with *out (caller's), or -1 with
//  a reason naming line and column in message (no input quoted).
int http_json_parse (const char *buf, size_t len, json_t **out, char *message, size_t msglen);

#endif
