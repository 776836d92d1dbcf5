/*  alertpayload — see alertpayload.h. */
#include "alertpayload.h"
#include "auth.h"
#include "gl/gl_id.h"
#include <string.h>

//  1..max characters of [a-z0-9] and extra.
static bool
s_word (const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || strchr (extra, s[i])))
            return false;
    return true;
}

int
alertpayload_parse (const gl_event_t *ev, alertpayload_t *a, const char **field)
{
    memset (a, 0, sizeof *a);
    json_t *d = ev->data;
    a->nid = gl_event_str (ev, "notification_id", NULL);
    if (!a->nid || !gl_id_valid (a->nid))
        return *field = "notification_id", -1;
    a->tmpl = gl_event_str (ev, "template", NULL);
    if (!s_word (a->tmpl, 48, "_."))
        return *field = "template", -1;
    a->priority = gl_event_str (ev, "priority", NULL);
    if (!a->priority || (strcmp (a->priority, "emergency") != 0
                         && strcmp (a->priority, "routine") != 0))
        return *field = "priority", -1;
    json_t *title = json_object_get (d, "title"), *body = json_object_get (d, "body");
    if (!json_is_string (title) || json_string_length (title) > ALERTPAYLOAD_TITLE_MAX)
        return *field = "title", -1;
    if (!json_is_string (body) || json_string_length (body) > ALERTPAYLOAD_BODY_MAX)
        return *field = "body", -1;
    a->title = json_string_value (title), a->title_len = json_string_length (title);
    a->body = json_string_value (body), a->body_len = json_string_length (body);
    json_t *lang = json_object_get (d, "language");
    a->language = json_is_string (lang) ? json_string_value (lang) : "";
    if (*a->language && !s_word (a->language, ALERTPAYLOAD_LANG_MAX, "-"))
        return *field = "language", -1;
    json_t *r = json_object_get (d, "recipient");
    a->kind = json_string_value (json_object_get (r, "kind"));
    if (!json_is_object (r) || !a->kind)
        return *field = "recipient", -1;
    if (strcmp (a->kind, "user") == 0) {
        a->to = json_string_value (json_object_get (r, "id"));
        if (!a->to || !gl_id_valid (a->to))
            return *field = "recipient", -1;
    }
    else if (strcmp (a->kind, "unit") == 0) {
        a->to = json_string_value (json_object_get (r, "code"));
        if (!a->to || !auth_unit_valid (a->to))
            return *field = "recipient", -1;
    }
    else if (strcmp (a->kind, "role") == 0) {
        a->to = json_string_value (json_object_get (r, "role"));
        if (!s_word (a->to, 32, "_"))
            return *field = "recipient", -1;
    }
    else
        a->other = true;
    return 0;
}
