/*  booking — an appointment is booked by scheduler, which owns slots and appointments; intake
    only asks (request "scheduler.book", schema in docs/events.md ("intake: callers")) and tells the
    agent what scheduler said. Nothing about the booking is written in intake, so a scheduler
    that is down or late leaves nothing half done: the agent gets 503 scheduler_unavailable and
    may try again with the same Idempotency-Key, which reaches scheduler as the same bus key, so
    a booking that did happen before the timeout is answered again rather than made twice.

    The request does not wait on the actor's thread: it goes out through forward_call and the
    HTTP request is deferred until scheduler answers or GL_INTAKE_SCHEDULER_TIMEOUT_MS (default
    2000 ms) passes; meanwhile intake serves everyone else. The client and its settings, and the
    idempotency key (forward_idem_key), are forward.c's.
*/
#include "audit.h"
#include "callers.h"
#include "forward.h"
#include "gl/gl_log.h"
#include "gl/gl_req.h"
#include <stdlib.h>
#include <string.h>

//  A booking waiting for scheduler.
typedef struct {
    http_req_t *req;
    char ref[CALLERS_REF_LEN + 1];
} s_booking_t;

//  Audit the outcome, then answer. A refusal from scheduler is passed on: its codes and messages
//  carry no personal data (docs/events.md, "The reply").
static int
s_answer (intake_t *intake, http_req_t *req, const char *ref, const gl_reply_t *reply)
{
    int status = reply->status;
    bool served = !reply->local;
    bool booked = served && (status == 200 || status == 202);
    bool refused = served
                   && (status == 400 || status == 404 || status == 409 || status == 422
                       || status == 429);
    const char *outcome = booked ? "booked" : refused ? "refused" : "unavailable";
    if (audit_record_req (intake, req, "book_result", "case", ref, outcome) != 0)
        gl_error ("callers: the outcome of a booking could not be audited (request %s)",
                  http_request_id (req));
    if (booked)
        return http_reply_json (req, status == 200 ? 201 : 202, json_incref (reply->body));
    if (refused) {
        char message[256];
        snprintf (message, sizeof message, "scheduler: %s",
                  reply->error_message ? reply->error_message : "");
        return http_reply_error (req, status,
                                 reply->error_code && *reply->error_code ? reply->error_code
                                                                         : "refused",
                                 message,
                                 reply->error_field && *reply->error_field ? reply->error_field
                                                                           : NULL);
    }
    //  No answer in time (the booking may still have happened: the agent retries with the same
    //  Idempotency-Key), none could be sent, 401/403 (intake's bus token is wrong, an
    //  operator's problem) or 5xx (scheduler's).
    const char *code = reply->error_code ? reply->error_code : "";
    gl_warn ("callers: scheduler.book %s: %d %s", reply->id, status, code);
    const char *message
        = strcmp (code, "not_configured") == 0
              ? "scheduler is not configured (GL_ENDPOINT_SCHEDULER); nothing was booked"
          : strcmp (code, "busy") == 0
              ? "too many requests are waiting for services; nothing was booked: retry"
          : reply->local ? "scheduler did not answer in time; nothing was booked here; retry "
                           "with the same Idempotency-Key"
                         : "scheduler could not book now; nothing was booked";
    return http_reply_error (req, 503, "scheduler_unavailable", message, NULL);
}

static void
s_booked (intake_t *intake, const gl_reply_t *reply, void *arg)
{
    s_booking_t *b = arg;
    s_answer (intake, b->req, b->ref, reply);
    free (b);
}

int
booking_book (callers_t *self, http_req_t *req, const char *key, const json_t *body,
              const char *ref)
{
    intake_t *intake = callers_intake (self);
    s_booking_t *b = calloc (1, sizeof *b);
    if (!b)
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    b->req = req;
    snprintf (b->ref, sizeof b->ref, "%s", ref);
    gl_reply_t reply = { 0 };
    if (forward_call (intake, "scheduler", "scheduler.book", key, body, s_booked, b, &reply)
        == 0) {
        http_defer (req);       //  answered by s_booked
        return 0;
    }
    free (b);
    int rc = s_answer (intake, req, ref, &reply);
    gl_reply_clear (&reply);
    return rc;
}
