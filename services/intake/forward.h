/*  forward — intake's endpoints that another service answers (referral's inbox, scheduler's
    slots, reporting's figures, notifier's dead letters …). intake authenticates the caller and
    checks the route's roles, then asks the owning service over the bus and passes its answer on.
    One file per service declares its routes (api_referral.c, api_scheduler.c …):
        static const forward_route_t s_routes[] = {
            { "GET",  "/api/v1/referrals",          GL_ROLE_PROTECTION | GL_ROLE_SUPERVISOR,
              "referral", "referral.inbox", 0 },
            { "POST", "/api/v1/referrals/{id}/ack", GL_ROLE_PROTECTION,
              "referral", "referral.ack", FORWARD_AUDIT },
        };
        void
        api_referral_routes (intake_t *intake)
        {
            forward_routes (intake, s_routes, sizeof s_routes / sizeof s_routes[0]);
        }
    and one line in s_routes() (intake.c), and the operations in docs/api/<service>.md.

    The request (op as declared, ttl = the timeout) carries the body
        {"caller": {"user_id": "<32 hex>", "roles": ["protection", …], "units": ["gbv", …]},
         "params": {path parameters, decoded},
         "query":  {query parameters, decoded strings},
         "body":   the request's JSON object ({} when it had none)}
    roles are "agent", "supervisor", "protection", "admin", "api_client". The service validates
    params, query and body itself (a 400 naming the field), and decides what the caller may see
    (sensitive records only for their unit).
    Idempotency: for POST, PUT, PATCH and DELETE the bus key is a keyed hash of the user id and
    the request's Idempotency-Key header ("h-<hex>"), or a fresh id when there is none, so a
    client retrying after a timeout with the same header reaches the service with the same key.
    The answer: status 200, 201 or 202 passes the service's body through (a service answers 200;
    with FORWARD_CREATED a 200 becomes 201); 400/403/404/409/410/422/423/429 pass its error
    {code, message, field} through; anything else (no endpoint configured, no answer within the
    timeout, 401 from a wrong bus token, 5xx) answers 503 "<service>_unavailable" saying that
    nothing may have happened and to retry with the same Idempotency-Key.
    Nothing waits on intake's loop: the handler sends the request (gl_req_send) and defers the
    HTTP request (http_defer); the answer comes from a read event on the client's socket, or from
    the call's deadline timer (the service's timeout), whichever is first. Several calls may be
    outstanding on each client, matched by request id; at most GL_INTAKE_FORWARD_PENDING_MAX
    (1024) wait in all, and a request beyond that is answered 503 <service>_unavailable at once.
    At stop (forward_stop, before http_destroy) every call still waiting is answered 503.
    Settings, per service NAME (upper case): GL_ENDPOINT_<NAME> (its ROUTER endpoints),
    GL_INTAKE_<NAME>_TIMEOUT_MS (2000), GL_INTAKE_<NAME>_TOKEN (default: the first of
    GL_BUS_TOKENS).

    intake's own requests to other services use the same machinery (forward_call: booking.c,
    board.c's wallboard, api_retention.c's person export): none waits on the loop.
*/
#ifndef INTAKE_FORWARD_H
#define INTAKE_FORWARD_H

#include "intake.h"
#include "gl/gl_req.h"
#include <stddef.h>
#include <stdint.h>

#define FORWARD_KEY_LEN  34         //  a bus idempotency key: "h-" or "n-" and 32 hex digits
#define FORWARD_AUDIT    (1u << 0)  //  write an audit entry: action = op, record = params.id
#define FORWARD_CREATED  (1u << 1)  //  the service's 200 is answered 201
#define FORWARD_PENDING_DEFAULT 1024    //  GL_INTAKE_FORWARD_PENDING_MAX: calls waiting in all

typedef struct {
    const char *method;             //  GET, POST, PUT, PATCH, DELETE
    const char *pattern;            //  as http_route
    uint32_t roles;                 //  GL_ROLE_* flags
    const char *service;            //  "referral"
    const char *op;                 //  the bus request, "referral.ack"
    unsigned flags;                 //  FORWARD_*
} forward_route_t;

//  Register routes (borrowed: a static table). Asserts on a malformed entry.
void forward_routes (intake_t *intake, const forward_route_t *routes, size_t n);


//  The end of an asynchronous call (forward_call): reply (borrowed for the call) is the
//  service's answer, any status, or, with reply->local, one made up here: 504 "timeout" at the
//  deadline, 503 "stopping" at forward_stop, 502 "bad_reply" for an answer that breaks the wire
//  format, 503 "unavailable" when the socket refused the request.
typedef void (forward_done_fn) (intake_t *intake, const gl_reply_t *reply, void *arg);

//  Ask service to run op with body (borrowed; NULL for {}) and key (NULL or "" for none),
//  without waiting. 0: done (with arg) will be called exactly once, later, from the loop (never
//  from inside forward_call): with the answer, at the deadline (GL_INTAKE_<NAME>_TIMEOUT_MS),
//  or at forward_stop. -1: nothing was sent and done will not be called; reply (zeroed by the
//  caller, cleared with gl_reply_clear) says why: 503 "not_configured", 503 "busy" (too many
//  calls waiting), or gl_req_send's errors.
int forward_call (intake_t *intake, const char *service, const char *op, const char *key,
                  const json_t *body, forward_done_fn *done, void *arg, gl_reply_t *reply);


//  GL_INTAKE_<NAME>_TIMEOUT_MS for service name.
int forward_timeout_ms (intake_t *intake, const char *service);

//  The bus idempotency key of a changing request: "h-" and a keyed hash of the user, the route
//  and the client's Idempotency-Key header (so a retry reaches the service as the same request,
//  two users' keys never meet and nothing the client wrote reaches a Redis key name), or "n-"
//  and a fresh id without the header. 0, or -1 after answering 400 for a malformed header.
//  Shared with intake's own requests to other services (booking).
int forward_idem_key (intake_t *intake, http_req_t *req, char out[FORWARD_KEY_LEN + 1]);

//  Answer every call still waiting (done with 503 "stopping"). Call before http_destroy, while
//  the requests they answer still exist.
void forward_stop (intake_t *intake);

//  Forget every client (at stop, after forward_stop).
void forward_destroy (intake_t *intake);

#endif
