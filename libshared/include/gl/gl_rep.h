/*  gl_rep — the server side of requests: a ROUTER socket, a handler per op, one answer per request.

    Wire format: see gl_req.h and docs/events.md ("Requests"). The service owns the socket, puts
    gl_rep_sock() in its zpoller and calls gl_rep_dispatch() when it is readable, or at once while
    gl_rep_pending() is not zero:

        int64_t wait = gl_rep_pending (rep) ? 0 : 1000;
        void *which = zpoller_wait (poller, (int) wait);
        if (which == gl_rep_sock (rep) || gl_rep_pending (rep))
            gl_rep_dispatch (rep);

    Deadlines. Each request says how long its client waits (ttl, ms). The server stamps a request
    with its own monotonic clock when it reads it off the socket and never compares clocks of two
    hosts. gl_rep_dispatch first reads every request waiting on the socket (up to the queue limit)
    so that time spent queued behind slow handlers is counted; a request whose ttl has run out by
    the time its turn comes is answered 504 "expired" without running its handler. Time spent in
    ZeroMQ's own buffers before the server reads it is not counted: keep the HWM small.

    Order of checks for each request: frame shape and fields (400, or dropped when the id is
    unreadable) -> auth (401) -> deadline (504) -> op (404) -> idempotency (stored reply, 409,
    422, 503) -> handler -> store the reply -> answer.

    Idempotency (gl_rep_set_idempotency). A request with a non-empty key claims the Redis key
    <prefix><op>:<key> with a pending marker that expires after the request's ttl. A second
    request with that key then gets: the stored reply (handler not run) when the first finished
    with a status below 500; 409 "in_progress" while the first still runs; 422 "key_reused" when
    its body differs from the first's. A reply with status 500 or more is not stored (the marker is
    removed), so a retry runs the handler again. A handler whose effect must happen exactly once
    — even if this process dies between its effect and the store, or its marker expires while it
    runs — writes the effect and the stored reply in one Redis transaction (MULTI/EXEC or a Lua
    script), using gl_rep_idem_key() and gl_rep_idem_encode(); the server then leaves that stored
    reply alone. See docs/events.md for a worked example.

    One gl_rep_t belongs to one thread (its socket and its Redis connection).
*/
#ifndef GL_REP_H
#define GL_REP_H
#include "gl/gl_curve.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
#include <czmq.h>
#include <jansson.h>
#include <stdint.h>

#define GL_REP_QUEUE_DEFAULT    256     //  requests read but not yet answered
#define GL_REP_HWM_DEFAULT      1000    //  ZeroMQ send/receive high-water marks

//  A parsed request, as a handler sees it. Everything is owned by the server and valid only
//  during the handler call.
typedef struct {
    char id[GL_ID_LEN + 1];             //  "" when the frame had no readable id
    char op[GL_REQ_OP_MAX + 1];
    char key[GL_REQ_KEY_MAX + 1];       //  idempotency key, "" for none
    char auth[GL_REQ_AUTH_MAX + 1];     //  the token as sent; wiped after the auth check
    int64_t ttl_ms;
    json_t *body;                       //  an object on a parsed request
    int64_t received_ms;                //  gl_mono_ms() when the server read it
    int64_t deadline_ms;                //  received_ms + ttl_ms (monotonic, this host only)
} gl_rep_request_t;

//  The error a handler reports with a status of 400 or more. Messages are read by developers
//  and callers: name the rule that failed, never quote personal data.
typedef struct {
    char code[GL_REQ_CODE_MAX + 1];     //  machine-readable, [a-z0-9_] ("slot_taken")
    char message[256];
    char field[GL_REQ_FIELD_MAX + 1];   //  the body field at fault, "" when none
} gl_rep_error_t;

//  Handler: fill *reply_body with a new object reference (or leave it NULL for an empty map),
//  or err when failing, and return the status: 200, 202, 400, 401, 403, 404, 409, 422, 429, 500,
//  503 or 504. Any other status, or a body that is not an object, is answered 500. With a status
//  of 400 or more the reply carries err and an empty body (a body set anyway is dropped); an err
//  without a code gets the status's default ("not_found", "conflict", ...).
typedef int (gl_rep_fn) (void *arg, const gl_rep_request_t *req, json_t **reply_body,
                         gl_rep_error_t *err);

//  Counters since gl_rep_new, for metrics and tests.
typedef struct {
    uint64_t received;          //  frames read off the socket
    uint64_t answered;          //  replies sent (any status)
    uint64_t malformed;         //  frames rejected with 400
    uint64_t dropped;           //  frames dropped unanswered (no readable id, wrong frame count)
    uint64_t unauthorized;      //  401
    uint64_t unknown_op;        //  404 for an op with no handler
    uint64_t expired;           //  504 without running the handler
    uint64_t handled;           //  handler calls
    uint64_t replayed;          //  stored replies sent again
    uint64_t in_progress;       //  409 for a key whose first request still runs
    uint64_t key_reused;        //  422 for a key sent again with a different body
    uint64_t idem_errors;       //  Redis failures around idempotency (503, or reply not stored)
    uint64_t send_errors;       //  replies the socket refused
} gl_rep_stats_t;

typedef struct _gl_rep_t gl_rep_t;

//  New server: a ROUTER bound to bind_endpoint ("tcp://*:7102"; "tcp://127.0.0.1:*" picks a free
//  port, see gl_rep_endpoint), bounded HWMs, a maximum request size, ZMQ_ROUTER_MANDATORY off
//  (a reply to a client that went away is dropped). NULL when the bind fails.
gl_rep_t *gl_rep_new (const char *bind_endpoint);

//  Same, the ROUTER being a CURVE server with curve's certificate (borrowed; only clients whose
//  key it allows get in). curve NULL: gl_rep_new.
gl_rep_t *gl_rep_new_curve (const char *bind_endpoint, gl_curve_t *curve);

//  Close the socket, drop queued requests, free; *self_p becomes NULL. The Redis connection given
//  to gl_rep_set_idempotency is not destroyed.
void gl_rep_destroy (gl_rep_t **self_p);

//  The endpoint actually bound, e.g. "tcp://127.0.0.1:49153" (borrowed).
const char *gl_rep_endpoint (gl_rep_t *self);

//  Register fn for op. -1 if op is not a valid op name or already has a handler.
int gl_rep_on (gl_rep_t *self, const char *op, gl_rep_fn *fn, void *arg);

//  Require every request to carry one of these comma-separated tokens (surrounding spaces
//  ignored) in auth, else 401. NULL or "" turns the check off. Tokens are kept as BLAKE2b
//  digests and compared in constant time.
void gl_rep_set_tokens (gl_rep_t *self, const char *comma_separated_tokens);

//  Answer retries from stored replies (see above). redis is borrowed and must outlive self and
//  be used from this thread only; prefix (at most 256 bytes) starts every key (give it the
//  service's prefix and hash tag, e.g. "scheduler:{scheduler}:idem:"); stored replies expire
//  after ttl_ms (> 0). redis NULL turns it off.
void gl_rep_set_idempotency (gl_rep_t *self, gl_redis_t *redis, const char *prefix,
                             int64_t ttl_ms);

//  Limit on requests read but not yet answered (default GL_REP_QUEUE_DEFAULT, at least 1).
void gl_rep_set_queue_max (gl_rep_t *self, size_t queue_max);

//  The ROUTER socket, for the service's zpoller (borrowed).
zsock_t *gl_rep_sock (gl_rep_t *self);

//  Read the requests waiting on the socket into the queue, then answer the oldest one (or drop it
//  when it cannot be answered). Returns 0, or -1 when the socket failed (context terminated).
int gl_rep_dispatch (gl_rep_t *self);

//  Requests read but not yet answered. While it is not zero, call gl_rep_dispatch again without
//  waiting for the socket.
size_t gl_rep_pending (gl_rep_t *self);

//  Copy the counters into *stats.
void gl_rep_stats (gl_rep_t *self, gl_rep_stats_t *stats);

//  Parse and validate one request frame from outside. Returns 0 with req filled (req->body is
//  owned by req: release with gl_rep_request_clear), or -1 with err filled (code "bad_request" or
//  "bad_version", field naming the key at fault) and req->id set when the id was readable ("" when
//  not). Never asserts on input; req needs no initialisation.
int gl_rep_parse_request (const void *buf, size_t len, gl_rep_request_t *req, gl_rep_error_t *err);

//  Free what req owns and wipe its token.
void gl_rep_request_clear (gl_rep_request_t *req);

//  Set err (code, field may be NULL or ""; message printf-style). Returns status, so a handler can
//  write: return gl_rep_error (err, 409, "slot_taken", "slot", "slot is no longer free");
int gl_rep_error (gl_rep_error_t *err, int status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

//  Milliseconds left before req's deadline (0 when it has passed).
int64_t gl_rep_remaining_ms (const gl_rep_request_t *req);

//  The Redis key holding req's stored reply, written to out. -1 when idempotency is off, req has
//  no key, or out is too small.
int gl_rep_idem_key (gl_rep_t *self, const gl_rep_request_t *req, char *out, size_t outlen);

//  The pending marker this server wrote under gl_rep_idem_key() for req: "pending:" followed by
//  req->id. A handler's transaction applies its effect only when the key holds this marker or
//  nothing. -1 when out is too small.
int gl_rep_idem_marker (const gl_rep_request_t *req, char *out, size_t outlen);

//  How long stored replies live (ms); 0 when idempotency is off.
int64_t gl_rep_idem_ttl_ms (gl_rep_t *self);

//  The stored-reply value for req answered with status, body (borrowed, NULL for empty) and err
//  (NULL or ignored below 400): what a handler writes under gl_rep_idem_key() in the same
//  transaction as its effect (SET key value PX gl_rep_idem_ttl_ms()). *out is malloc'd (caller
//  frees). 0, or -1 when body cannot be encoded.
int gl_rep_idem_encode (const gl_rep_request_t *req, int status, const json_t *body,
                        const gl_rep_error_t *err, char **out, size_t *outlen);

#endif
