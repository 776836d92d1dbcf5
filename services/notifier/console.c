/*  console — console alerts: notification.console, for intake to push to the signed-in users
    the recipient names (a user, the members of a unit, or a role). The event is staged in the
    outbox in the same atomic step that completes the work item (delivery.c), so a console
    alert is published exactly once. title and body are the rendered template: templates carry
    ids, codes and times, never personal data.
*/
#include "notifier.h"
#include <assert.h>

gl_event_t *
console_event (const send_req_t *req)
{
    assert (req && req->msg);
    gl_event_t *ev = gl_event_new ("notification.console");
    if (!ev)
        return NULL;
    if (req->corr)
        gl_event_set_corr (ev, req->corr);
    json_object_set_new (ev->data, "notification_id", json_string (req->nid));
    json_object_set (ev->data, "recipient", (json_t *) req->recipient);
    json_object_set_new (ev->data, "template", json_string (req->template_code));
    json_object_set_new (ev->data, "priority", json_string (req->priority));
    json_object_set_new (ev->data, "title", json_string (req->msg->subject));
    json_object_set_new (ev->data, "body", json_string (req->msg->text));
    json_object_set_new (ev->data, "language", json_string (req->msg->lang));
    return ev;
}
