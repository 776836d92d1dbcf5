/*  payload — the notification.requested payload (docs/events.md), checked field by
    field before anything is queued: it comes from other services, so it is outside data.
*/
#include "notifier.h"
#include "gl/gl_id.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define S_PARAMS_MAX    32
#define S_PARAM_LEN     256

static const char *s_channels[CH__COUNT] = { "sms", "email", "webhook", "console", "voice" };

const char *
channel_name (channel_t ch)
{
    return ch >= 0 && ch < CH__COUNT ? s_channels[ch] : "?";
}

int
channel_parse (const char *name)
{
    for (int i = 0; name && i < CH__COUNT; i++)
        if (strcmp (name, s_channels[i]) == 0)
            return i;
    return -1;
}

//  --------------------------------------------------------------------------------------------
//  Validation of notification.requested (outside data)

static bool
s_charset (const char *s, size_t min, size_t max, const char *extra, bool upper)
{
    size_t n = s ? strlen (s) : 0;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (!(islower (c) || isdigit (c) || (upper && isupper (c)) || strchr (extra, c)))
            return false;
    }
    return true;
}

static int
s_bad (char *field, size_t len, const char *name)
{
    snprintf (field, len, "%s", name);
    return -1;
}

int
delivery_validate (const json_t *data, char *field, size_t fieldlen)
{
    if (!json_is_object (data))
        return s_bad (field, fieldlen, "data");
    const char *nid = json_string_value (json_object_get (data, "notification_id"));
    if (!nid || !gl_id_valid (nid))
        return s_bad (field, fieldlen, "notification_id");
    if (!s_charset (json_string_value (json_object_get (data, "template")), 1, 48, "_.", false))
        return s_bad (field, fieldlen, "template");
    const char *prio = json_string_value (json_object_get (data, "priority"));
    if (!prio || (strcmp (prio, "emergency") != 0 && strcmp (prio, "routine") != 0))
        return s_bad (field, fieldlen, "priority");
    json_t *chs = json_object_get (data, "channels");
    if (!json_is_array (chs) || json_array_size (chs) < 1 || json_array_size (chs) > CH__COUNT)
        return s_bad (field, fieldlen, "channels");
    unsigned seen = 0;
    for (size_t i = 0; i < json_array_size (chs); i++) {
        int ch = channel_parse (json_string_value (json_array_get (chs, i)));
        if (ch < 0 || (seen & (1u << ch)))
            return s_bad (field, fieldlen, "channels");
        seen |= 1u << ch;
    }
    json_t *r = json_object_get (data, "recipient");
    const char *kind = json_string_value (json_object_get (r, "kind"));
    if (!json_is_object (r) || !kind)
        return s_bad (field, fieldlen, "recipient");
    const char *v;
    if (strcmp (kind, "person") == 0)
        v = json_string_value (json_object_get (r, "ref")),
        v = s_charset (v, 1, 32, "-", true) ? v : NULL;
    else if (strcmp (kind, "user") == 0)
        v = json_string_value (json_object_get (r, "id")), v = v && gl_id_valid (v) ? v : NULL;
    else if (strcmp (kind, "partner") == 0 || strcmp (kind, "unit") == 0
             || strcmp (kind, "endpoint") == 0)
        v = json_string_value (json_object_get (r, "code")),
        v = s_charset (v, 1, 32, "_-", false) ? v : NULL;
    else if (strcmp (kind, "role") == 0)
        v = json_string_value (json_object_get (r, "role")),
        v = s_charset (v, 1, 32, "_", false) ? v : NULL;
    else
        v = NULL;
    if (!v || json_object_size (r) != 2)
        return s_bad (field, fieldlen, "recipient");
    //  A unit or a role can only be reached on the console: their other channels are
    //  dead-lettered one by one (channel_not_for_recipient), the console alert still goes.
    json_t *lang = json_object_get (data, "language");
    if (lang && !json_is_null (lang)
        && !s_charset (json_string_value (lang), 2, NOTIFIER_LANG_MAX - 1, "-", false))
        return s_bad (field, fieldlen, "language");
    json_t *params = json_object_get (data, "params");
    if (params && !json_is_object (params))
        return s_bad (field, fieldlen, "params");
    if (params && json_object_size (params) > S_PARAMS_MAX)
        return s_bad (field, fieldlen, "params");
    const char *key;
    json_t *val;
    json_object_foreach (params, key, val) {
        if (!s_charset (key, 1, 32, "_", false))
            return s_bad (field, fieldlen, "params");
        if (json_is_string (val) && json_string_length (val) > S_PARAM_LEN)
            return s_bad (field, fieldlen, "params");
        if (!json_is_string (val) && !json_is_integer (val) && !json_is_boolean (val)
            && !json_is_null (val))
            return s_bad (field, fieldlen, "params");
    }
    return 0;
}
