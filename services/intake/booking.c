/*  booking — an appointment is booked by scheduler, which owns slots and appointments; intake
    only asks (request "scheduler.book", schema in docs/events.md ("intake: callers")) and tells the
    agent what scheduler said. Nothing about the booking is written in intake, so a scheduler
    that is down or late leaves nothing half done: the agent gets 503 scheduler_unavailable and
    may try again with the same Idempotency-Key, which reaches scheduler as the same bus key, so
    a booking that did happen before the timeout is answered again rather than made twice.

    The request is synchronous on the actor's thread (gl_req_call), so while scheduler is slow
    intake's loop waits up to GL_INTAKE_SCHEDULER_TIMEOUT_MS (default 2000 ms). The client and
    its settings, and the idempotency key (forward_idem_key), are forward.c's.
*/
#include "callers.h"
#include "forward.h"
#include "gl/gl_log.h"
#include "gl/gl_req.h"
#include <string.h>

static void
s_unavailable (booking_result_t *out, const char *message)
{
    out->status = 503;
    snprintf (out->code, sizeof out->code, "scheduler_unavailable");
    snprintf (out->message, sizeof out->message, "%s", message);
    out->field[0] = 0;
}

void
booking_book (callers_t *self, const char *key, const json_t *body, booking_result_t *out)
{
    memset (out, 0, sizeof *out);
    intake_t *intake = callers_intake (self);
    gl_req_t *client = forward_client (intake, "scheduler");
    if (!client) {
        s_unavailable (out, "scheduler is not configured (GL_ENDPOINT_SCHEDULER); nothing was "
                            "booked");
        return;
    }
    gl_reply_t reply = { 0 };
    int rc = gl_req_call (client, "scheduler.book", key, body, forward_timeout_ms (intake, "scheduler"),
                          &reply);
    if (rc != 0) {
        //  No answer in time (or none could be sent). The booking may still have happened:
        //  the agent retries with the same Idempotency-Key.
        gl_warn ("callers: scheduler.book %s: %d %s", reply.id, reply.status,
                 reply.error_code ? reply.error_code : "");
        s_unavailable (out, "scheduler did not answer in time; nothing was booked here; retry "
                            "with the same Idempotency-Key");
        gl_reply_clear (&reply);
        return;
    }
    int status = reply.status;
    if (status == 200 || status == 202) {
        out->status = status == 200 ? 201 : 202;
        out->body = json_incref (reply.body);
    }
    else if (status == 400 || status == 404 || status == 409 || status == 422 || status == 429) {
        //  Scheduler's refusal, passed on: its codes and messages carry no personal data
        //  (docs/events.md, "The reply").
        out->status = status;
        snprintf (out->code, sizeof out->code, "%s",
                  reply.error_code && *reply.error_code ? reply.error_code : "refused");
        snprintf (out->message, sizeof out->message, "scheduler: %s",
                  reply.error_message ? reply.error_message : "");
        snprintf (out->field, sizeof out->field, "%s", reply.error_field ? reply.error_field : "");
    }
    else {
        //  401/403: intake's bus token is wrong, an operator's problem; 5xx: scheduler's.
        gl_warn ("callers: scheduler.book %s answered %d %s", reply.id, status,
                 reply.error_code ? reply.error_code : "");
        s_unavailable (out, "scheduler could not book now; nothing was booked");
    }
    gl_reply_clear (&reply);
}
