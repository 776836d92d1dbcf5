/*  gl_req — the client side of a request: one DEALER socket, one call at a time, with a deadline.

    A request is for a question that needs an answer now (ARCHITECTURE.md, "The bus"); anything
    that must not be lost is an event instead. The wire format is in docs/events.md ("Requests"):
    the client sends one frame, a msgpack map
      {v:1, id:str, op:str, key:str, ttl:uint, auth:str, body:map}
    and the server (gl_rep) answers one frame
      {v:1, id:str, status:uint, body:map, error:nil|{code:str, message:str, field:str}}.

    gl_req_call never hangs: it returns after at most timeout_ms. Each call carries a fresh id;
    a reply whose id is not the current call's (the late answer to an earlier call that timed out)
    is discarded and counted. A timed-out call may still have run on the server: retry it with the
    same idempotency key so that it cannot take effect twice.

    The asynchronous side (gl_req_send, gl_req_recv, gl_req_forget) lets a loop keep several
    calls outstanding on the one socket, at most GL_REQ_OUTSTANDING_MAX, each matched to its reply
    by id, without ever waiting: an event loop polls gl_req_fd for reading and calls gl_req_recv
    until it returns 0. ZMQ_FD is edge-triggered and only says "something changed": after
    gl_req_send (or gl_req_call) ask gl_req_ready and run the read handler when it says so, or a
    reply already waiting may never be noticed. The caller keeps each call's deadline itself and
    calls gl_req_forget when it gives up; a late reply is then discarded and counted.

        gl_reply_t reply = { 0 };
        if (gl_req_send (req, "scheduler.book", key, body, 2000, &reply) != 0)
            ... reply.status, reply.error_code say why; nothing is outstanding
        remember (reply.id, deadline);
        ...
        on readable (gl_req_fd), and after each send when gl_req_ready:
            while (gl_req_recv (req, &reply) == 1)
                ... reply.id names the call answered
        at the deadline: gl_req_forget (req, id): timed out
        gl_reply_clear (&reply);

    gl_req_call may be used on the same client meanwhile: a reply it reads for an outstanding
    asynchronous call is kept for gl_req_recv, not discarded.

    One gl_req_t belongs to one thread (ZeroMQ sockets are not thread-safe).
*/
#ifndef GL_REQ_H
#define GL_REQ_H
#include "gl/gl_curve.h"
#include "gl/gl_id.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GL_REQ_VERSION      1
#define GL_REQ_OP_MAX       63          //  op name: [a-z0-9_.], 1..63 bytes
#define GL_REQ_KEY_MAX      128         //  idempotency key: printable ASCII, no space, 0..128
#define GL_REQ_AUTH_MAX     512         //  auth token, 0..512 bytes ("" for none)
#define GL_REQ_TTL_MAX      600000      //  ttl: at most 10 minutes
#define GL_REQ_CODE_MAX     63          //  error.code: [a-z0-9_], 1..63 bytes
#define GL_REQ_FIELD_MAX    63          //  error.field: 0..63 bytes
#define GL_REQ_MESSAGE_MAX  1023        //  error.message: 0..1023 bytes
#define GL_REQ_OUTSTANDING_MAX 1024     //  asynchronous calls outstanding on one client

//  What a call produced. Every field is set by gl_req_call, whatever it returns.
typedef struct {
    int status;                 //  the server's status, or 400/502/503/504 made up locally
    char id[GL_ID_LEN + 1];     //  the request id of this call
    json_t *body;               //  owned; an object, never NULL after a call
    char *error_code;           //  owned; NULL when the reply carried no error
    char *error_message;        //  owned; NULL when no error
    char *error_field;          //  owned; NULL when no error ("" when the error names no field)
    bool local;                 //  made up by the client (timeout, bad_reply ...), not the server's
} gl_reply_t;

typedef struct _gl_req_t gl_req_t;

//  New client: a DEALER connected to endpoint (e.g. "tcp://scheduler:7102"; a comma-separated
//  list connects to every replica, and each call goes to one of those connected), with
//  ZMQ_LINGER 0, ZMQ_IMMEDIATE (a request is never queued for a server that is not connected),
//  bounded high-water marks and a maximum reply size. NULL if the endpoint is malformed.
gl_req_t *gl_req_new (const char *endpoint);

//  Same as a CURVE client with curve's certificate (borrowed); endpoint names the server's key
//  ("tcp://scheduler:7112#scheduler", see gl_curve.h). A server that does not allow our key never
//  completes the connection: calls answer 504 "timeout" (never sent). curve NULL: gl_req_new,
//  except that a '#server' suffix is dropped with a warning.
gl_req_t *gl_req_new_curve (const char *endpoint, gl_curve_t *curve);

//  Close the socket (queued requests are dropped) and free; *self_p becomes NULL.
void gl_req_destroy (gl_req_t **self_p);

//  Token sent in every request's auth field (NULL or "" for none): 1..512 bytes of printable
//  ASCII without spaces or commas. Copied; wiped on destroy. 0, or -1 (and the old token is
//  kept) when the token is not valid.
int gl_req_set_auth (gl_req_t *self, const char *token);

//  Send op with body (borrowed; NULL for an empty map) and wait at most timeout_ms (> 0; above
//  GL_REQ_TTL_MAX it is capped) for its reply; timeout_ms is also sent as the request's ttl.
//  idem_key (NULL or "" for none) lets the server answer a retry from its stored reply.
//  reply must start zeroed (gl_reply_t reply = { 0 };); whatever a previous call left in it is
//  freed first, so one reply can serve many calls; release it with gl_reply_clear at the end.
//  Returns 0 when the server answered, whatever the status. Returns -1 when it did not, with:
//    504 "timeout"      no reply within timeout_ms, or no server connected to send to (the
//                       message says which; in the latter case the request was never sent);
//    503 "unavailable"  the socket refused the message;
//    502 "bad_reply"    a reply with this call's id that breaks the wire format;
//    400 "bad_request"  op, key or body is invalid here (nothing was sent; field names which).
int gl_req_call (gl_req_t *self, const char *op, const char *idem_key, const json_t *body,
                 int timeout_ms, gl_reply_t *reply);

//  Start an asynchronous call: like gl_req_call, but returns at once. reply must start zeroed;
//  it is cleared, then reply->id names the call. When no server is connected yet (a connection
//  is still being made, or the server is down) the request is kept, in order, and sent by
//  gl_req_recv once one is; a request never sent is simply never answered: the caller's deadline
//  covers both cases, as for gl_req_call. timeout_ms is sent as the ttl (capped at
//  GL_REQ_TTL_MAX); a call whose timeout has passed is forgotten by the client itself only when
//  room is needed for a new one. Returns 0 when the call is outstanding; -1, with nothing
//  outstanding and reply holding a made-up error, when:
//    400 "bad_request"  op, key or body is invalid (field names which; nothing was sent);
//    503 "busy"         GL_REQ_OUTSTANDING_MAX calls are outstanding already;
//    503 "unavailable"  the socket refused the message.
int gl_req_send (gl_req_t *self, const char *op, const char *idem_key, const json_t *body,
                 int timeout_ms, gl_reply_t *reply);

//  Read the answer to one outstanding call, without waiting. reply must start zeroed; what it
//  held is freed first. Returns 1 with reply filled as by gl_req_call and reply->id naming the
//  call, which is no longer outstanding: a server's answer (any status), or 502 "bad_reply" for
//  a reply with that id that breaks the wire format, or 503 "unavailable" when the socket
//  refused a request kept for sending. Returns 0 when nothing more can be read now. Replies to
//  ids not outstanding (forgotten, or never ours) and unreadable frames are discarded and
//  counted (gl_req_discarded). Also sends requests kept for want of a connection.
int gl_req_recv (gl_req_t *self, gl_reply_t *reply);

//  The caller gave up on call id (its deadline passed): it is no longer outstanding, a request
//  not yet sent is dropped, and a reply arriving later is discarded. Unknown ids are ignored.
void gl_req_forget (gl_req_t *self, const char *id);

//  The socket's ZMQ_FD, to poll for reading (edge-triggered: see above). Borrowed.
int gl_req_fd (gl_req_t *self);

//  True when gl_req_recv has work now: a reply is waiting, or a kept request can be sent.
//  Checks ZMQ_EVENTS, which also re-arms gl_req_fd.
bool gl_req_ready (gl_req_t *self);

//  Asynchronous calls outstanding (sent or kept for sending, not yet answered or forgotten).
size_t gl_req_outstanding (gl_req_t *self);

//  Free what a reply owns and zero it. Safe on a zeroed reply and twice in a row.
void gl_reply_clear (gl_reply_t *reply);

//  Replies discarded so far: late replies to earlier or forgotten calls, and frames that could
//  not be read.
uint64_t gl_req_discarded (gl_req_t *self);

//  The endpoint given to gl_req_new (borrowed).
const char *gl_req_endpoint (gl_req_t *self);

//  True when s is a valid op name: 1..63 bytes of [a-z0-9_.], no leading, trailing or double dot.
bool gl_req_op_valid (const char *s);

//  True when s is a valid idempotency key: 0..128 bytes of printable ASCII (0x21..0x7e).
bool gl_req_key_valid (const char *s);

//  The first token of a comma-separated list (GL_BUS_TOKENS), surrounding spaces removed, cut
//  at GL_REQ_AUTH_MAX bytes, into out; "" when list is NULL or empty.
void gl_req_first_token (const char *list, char out[GL_REQ_AUTH_MAX + 1]);

#endif
