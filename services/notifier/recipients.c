/*  recipients — how to reach the recipient of a notification, asked at send time so that no
    phone number, address or name ever travels in an event:
      person    intake  intake.delivery_details {person_ref, purpose, requester} -> phone, language
      user      intake  intake.user_contact {user_id, purpose, requester} -> email, phone,
                        language, disabled (a disabled account is not notified)
      partner   referral referral.partner_contact {code} -> email, webhook_url, language
      endpoint  configuration: GL_NOTIFIER_WEBHOOK_<CODE>_URL, _SECRET, _LANGUAGE
      unit, role  console alerts only (intake pushes them to the signed-in members)
    The answers carry personal data: nothing of them is logged or stored; the requests carry no
    idempotency key (a stored reply would keep the phone number in Redis).
*/
#include "notifier.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
contact_clear (contact_t *c)
{
    if (!c)
        return;
    free (c->phone);
    free (c->email);
    free (c->url);
    free (c->secret);
    memset (c, 0, sizeof *c);
}

static char *
s_dup_str (const json_t *obj, const char *key)
{
    const char *s = json_string_value (json_object_get (obj, key));
    return s && *s ? strdup (s) : NULL;
}

static void
s_lang (contact_t *c, const json_t *obj)
{
    const char *l = json_string_value (json_object_get (obj, "language"));
    if (!l || strlen (l) >= sizeof c->lang)
        return;
    for (const char *p = l; *p; p++)
        if (!(islower ((unsigned char) *p) || *p == '-'))
            return;
    snprintf (c->lang, sizeof c->lang, "%s", l);
}

//  Configuration key for a code: upper case, anything else than [A-Z0-9] becomes '_'.
static void
s_key (char *out, size_t len, const char *fmt_a, const char *code, const char *suffix)
{
    char up[64];
    size_t i = 0;
    for (; code[i] && i < sizeof up - 1; i++)
        up[i] = isalnum ((unsigned char) code[i]) ? (char) toupper ((unsigned char) code[i]) : '_';
    up[i] = 0;
    snprintf (out, len, "%s%s%s", fmt_a, up, suffix);
}

static int
s_call (notifier_t *self, const char *service, const char *op, json_t *body, contact_t *out,
        channel_t ch, char *reason, size_t reasonlen)
{
    gl_reply_t reply = { 0 };
    gl_service_call (self->svc, service, op, NULL, body, &reply);
    json_decref (body);
    int rc = 0;
    if (reply.status == 200 && json_is_true (json_object_get (reply.body, "disabled"))) {
        snprintf (reason, reasonlen, "recipient_disabled");
        rc = SEND_PERMANENT;
    }
    else if (reply.status == 200) {
        out->phone = s_dup_str (reply.body, "phone");
        out->email = s_dup_str (reply.body, "email");
        out->url = s_dup_str (reply.body, "webhook_url");
        s_lang (out, reply.body);
    }
    else if (reply.status == 404) {
        snprintf (reason, reasonlen, "recipient_unknown");
        rc = SEND_PERMANENT;
    }
    else if (reply.status == 400 || reply.status == 403 || reply.status == 422) {
        gl_warn ("notifier: %s answered %d %s", op, reply.status,
                 reply.error_code ? reply.error_code : "");
        snprintf (reason, reasonlen, "bad_recipient");
        rc = SEND_PERMANENT;
    }
    else {
        snprintf (reason, reasonlen, "recipient_unavailable");
        rc = SEND_RETRY;
    }
    gl_reply_clear (&reply);
    (void) ch;
    return rc;
}

int
recipients_resolve (notifier_t *self, const json_t *recipient, channel_t ch, contact_t *out,
                    char *reason, size_t reasonlen)
{
    assert (self && recipient && out);
    memset (out, 0, sizeof *out);
    const char *kind = json_string_value (json_object_get (recipient, "kind"));
    gl_config_t *config = gl_service_config (self->svc);
    int rc = 0;
    if (!kind)
        rc = SEND_PERMANENT;
    else if (ch == CH_CONSOLE)
        return 0;       //  intake finds the users; nothing to look up
    else if (strcmp (kind, "person") == 0) {
        if (ch != CH_SMS && ch != CH_VOICE) {
            snprintf (reason, reasonlen, "channel_not_for_recipient");
            return SEND_PERMANENT;
        }
        json_t *body = json_pack ("{s:s, s:s, s:s}", "person_ref",
                                  json_string_value (json_object_get (recipient, "ref")),
                                  "purpose", "notification", "requester", "notifier");
        if (!body)
            rc = SEND_PERMANENT;
        else
            rc = s_call (self, "intake", "intake.delivery_details", body, out, ch, reason,
                         reasonlen);
    }
    else if (strcmp (kind, "user") == 0) {
        json_t *body = json_pack ("{s:s, s:s, s:s}", "user_id",
                                  json_string_value (json_object_get (recipient, "id")),
                                  "purpose", "notification", "requester", "notifier");
        rc = body ? s_call (self, "intake", "intake.user_contact", body, out, ch, reason,
                            reasonlen)
                  : SEND_PERMANENT;
    }
    else if (strcmp (kind, "partner") == 0) {
        const char *code = json_string_value (json_object_get (recipient, "code"));
        json_t *body = json_pack ("{s:s}", "code", code);
        rc = body ? s_call (self, "referral", "referral.partner_contact", body, out, ch, reason,
                            reasonlen)
                  : SEND_PERMANENT;
        if (rc == 0 && ch == CH_WEBHOOK) {
            char key[128];
            s_key (key, sizeof key, "GL_NOTIFIER_PARTNER_", code, "_SECRET");
            const char *secret = gl_config_str (config, key, NULL);
            if (!secret)
                secret = gl_config_str (config, "GL_NOTIFIER_PARTNER_SECRET", NULL);
            out->secret = secret ? strdup (secret) : NULL;
        }
    }
    else if (strcmp (kind, "endpoint") == 0) {
        const char *code = json_string_value (json_object_get (recipient, "code"));
        char key[128];
        s_key (key, sizeof key, "GL_NOTIFIER_WEBHOOK_", code, "_URL");
        const char *url = gl_config_str (config, key, NULL);
        if (!url) {
            snprintf (reason, reasonlen, "recipient_unknown");
            return SEND_PERMANENT;
        }
        out->url = strdup (url);
        s_key (key, sizeof key, "GL_NOTIFIER_WEBHOOK_", code, "_SECRET");
        const char *secret = gl_config_str (config, key, NULL);
        out->secret = secret ? strdup (secret) : NULL;
        s_key (key, sizeof key, "GL_NOTIFIER_WEBHOOK_", code, "_LANGUAGE");
        const char *lang = gl_config_str (config, key, NULL);
        if (lang)
            snprintf (out->lang, sizeof out->lang, "%s", lang);
    }
    else {
        //  unit and role recipients are for console alerts only.
        snprintf (reason, reasonlen, "channel_not_for_recipient");
        return SEND_PERMANENT;
    }
    if (rc == SEND_PERMANENT && !*reason)
        snprintf (reason, reasonlen, "bad_recipient");
    if (rc != 0) {
        contact_clear (out);
        return rc;
    }
    //  What the channel needs.
    if ((ch == CH_SMS || ch == CH_VOICE) && !out->phone)
        rc = SEND_PERMANENT, snprintf (reason, reasonlen, "no_phone");
    else if ((ch == CH_SMS || ch == CH_VOICE) && !phone_e164 (out->phone))
        rc = SEND_PERMANENT, snprintf (reason, reasonlen, "phone_not_e164");
    else if (ch == CH_EMAIL && !out->email)
        rc = SEND_PERMANENT, snprintf (reason, reasonlen, "no_email");
    else if (ch == CH_WEBHOOK && !out->url)
        rc = SEND_PERMANENT, snprintf (reason, reasonlen, "no_webhook");
    if (rc != 0)
        contact_clear (out);
    return rc;
}
