/*  notify — notification.requested, the contract shared with notifier (docs/events.md and
    docs/events.md): an idempotency id, a template code, a priority, channels, a
    recipient that is never a phone number, address or name, and parameters that are ids,
    codes, times and counts only. corr is the referral or emergency the notice is about.
*/
#include "referral.h"
#include "gl/gl_log.h"
#include <string.h>

gl_event_t *
rf_notify (const rf_notice_t *notice, json_t *params)
{
    gl_event_t *ev = gl_event_new ("notification.requested");
    if (!ev) {
        json_decref (params);
        return NULL;
    }
    gl_event_set_corr (ev, notice->corr);
    char nid[GL_ID_LEN + 1];
    gl_id_new (nid);
    json_t *channels = json_array ();
    const char *p = notice->channels;
    while (p && *p) {
        const char *comma = strchr (p, ',');
        size_t n = comma ? (size_t) (comma - p) : strlen (p);
        json_array_append_new (channels, json_stringn (p, n));
        p = comma ? comma + 1 : p + n;
    }
    json_t *recipient = json_pack ("{s:s}", "kind", notice->kind);
    const char *field = strcmp (notice->kind, "user") == 0 ? "id"
                      : strcmp (notice->kind, "role") == 0 ? "role" : "code";
    json_object_set_new (recipient, field, json_string (notice->ref));
    json_t *data = ev->data;
    json_object_set_new (data, "notification_id", json_string (nid));
    json_object_set_new (data, "template", json_string (notice->template_));
    json_object_set_new (data, "priority", json_string (notice->emergency ? "emergency" : "routine"));
    json_object_set_new (data, "channels", channels);
    json_object_set_new (data, "recipient", recipient);
    json_object_set_new (data, "language",
                         notice->language && *notice->language ? json_string (notice->language)
                                                               : json_null ());
    json_object_set_new (data, "params", params ? params : json_object ());
    return ev;
}
