/*  complaints — settings, deadlines and visibility of complaints (complaints.h). The endpoints
    are in api_complaints.c. */
#include "complaints.h"
#include "auth.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_HOUR_MS       INT64_C(3600000)
#define S_KEY           CONTACTS_PREFIX "complaint:"
#define S_DUE           CONTACTS_PREFIX "complaints:due"
#define S_SWEEP_BATCH   50

static const char *const s_types[] = { "complaint", "feedback", "suggestion", "appreciation",
                                       "sensitive", NULL };
//  Default hours: acknowledge, respond.
static const int64_t s_default_h[][2] = { { 24, 168 }, { 72, 336 }, { 72, 720 }, { 72, 336 },
                                          { 1, 72 } };
#define S_TYPES 5

static const char *const s_kinds[] = { "psea", "fraud", "staff_misconduct", NULL };
#define S_KINDS 3

typedef struct {
    char kind;                          //  'r' role, 'u' unit, 'i' user id
    uint32_t role;
    char value[HTTP_UNIT_LEN + 1];      //  unit or user id
} s_focal_t;

struct _complaints_t {
    intake_t *intake;
    struct event *timer;                //  the deadline sweep
    int64_t sweep_ms;
    int64_t ack_ms[S_TYPES];
    int64_t respond_ms[S_TYPES];
    uint32_t sensitive_roles;
    s_focal_t focal[S_KINDS];
    bool close_unacknowledged;
    int64_t idem_ttl_ms;
};

static int
s_index (const char *const *list, const char *s)
{
    for (int i = 0; s && list[i]; i++)
        if (strcmp (list[i], s) == 0)
            return i;
    return -1;
}

//  "role:<code>", "unit:<unit>" or "user:<id>". 0 or -1.
static int
s_focal_parse (const char *s, s_focal_t *out)
{
    memset (out, 0, sizeof *out);
    if (strncmp (s, "role:", 5) == 0) {
        out->kind = 'r';
        out->role = auth_role_flag (s + 5);
        return out->role && out->role != GL_ROLE_API_CLIENT ? 0 : -1;
    }
    if (strncmp (s, "unit:", 5) == 0) {
        out->kind = 'u';
        snprintf (out->value, sizeof out->value, "%s", s + 5);
        return auth_unit_valid (s + 5) ? 0 : -1;
    }
    if (strncmp (s, "user:", 5) == 0) {
        out->kind = 'i';
        snprintf (out->value, sizeof out->value, "%s", s + 5);
        return gl_id_valid (s + 5) ? 0 : -1;
    }
    return -1;
}

static void
s_on_sweep (evutil_socket_t fd, short what, void *arg)
{
    complaints_t *self = arg;
    complaints_sweep (self->intake);
    struct timeval tv = { (time_t) (self->sweep_ms / 1000),
                          (suseconds_t) ((self->sweep_ms % 1000) * 1000) };
    evtimer_add (self->timer, &tv);
}

complaints_t *
complaints_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake);
    complaints_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    gl_config_t *config = intake->config;
    for (int t = 0; t < S_TYPES; t++) {
        char key[64], upper[32];
        snprintf (upper, sizeof upper, "%s", s_types[t]);
        for (char *p = upper; *p; p++)
            *p = (char) (*p - 'a' + 'A');
        snprintf (key, sizeof key, "GL_INTAKE_CFM_%s_ACK_H", upper);
        self->ack_ms[t] = gl_config_int (config, key, s_default_h[t][0], 1, 8760) * S_HOUR_MS;
        snprintf (key, sizeof key, "GL_INTAKE_CFM_%s_RESPOND_H", upper);
        self->respond_ms[t]
            = gl_config_int (config, key, s_default_h[t][1], 1, 8760) * S_HOUR_MS;
    }
    self->close_unacknowledged
        = gl_config_bool (config, "GL_INTAKE_CFM_CLOSE_UNACKNOWLEDGED", false);
    self->idem_ttl_ms
        = gl_config_int (config, "GL_INTAKE_IDEMPOTENCY_TTL_S", 86400, 60, 604800) * 1000;
    self->sweep_ms = gl_config_int (config, "GL_INTAKE_CFM_SWEEP_MS", 1000, 100, 3600000);
    self->intake = intake;
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        complaints_destroy (&self);
        return NULL;
    }
    for (int t = 0; t < S_TYPES; t++)
        if (self->respond_ms[t] < self->ack_ms[t]) {
            snprintf (err, errlen,
                      "GL_INTAKE_CFM_*_RESPOND_H must not be shorter than the matching _ACK_H "
                      "(%s)", s_types[t]);
            complaints_destroy (&self);
            return NULL;
        }
    const char *roles = gl_config_str (config, "GL_INTAKE_CFM_SENSITIVE_ROLES", "protection");
    char buf[256];
    snprintf (buf, sizeof buf, "%s", roles);
    char *save = NULL;
    for (char *tok = strtok_r (buf, ", ", &save); tok; tok = strtok_r (NULL, ", ", &save)) {
        uint32_t flag = auth_role_flag (tok);
        if (!flag || flag == GL_ROLE_API_CLIENT) {
            snprintf (err, errlen,
                      "GL_INTAKE_CFM_SENSITIVE_ROLES: '%.32s' is not a staff role code", tok);
            complaints_destroy (&self);
            return NULL;
        }
        self->sensitive_roles |= flag;
    }
    if (!self->sensitive_roles) {
        snprintf (err, errlen, "GL_INTAKE_CFM_SENSITIVE_ROLES names no role");
        complaints_destroy (&self);
        return NULL;
    }
    static const char *const keys[] = { "GL_INTAKE_CFM_FOCAL_PSEA", "GL_INTAKE_CFM_FOCAL_FRAUD",
                                        "GL_INTAKE_CFM_FOCAL_STAFF_MISCONDUCT" };
    for (int k = 0; k < S_KINDS; k++) {
        const char *v = gl_config_str (config, keys[k], "role:protection");
        if (s_focal_parse (v, &self->focal[k]) != 0) {
            snprintf (err, errlen,
                      "%s must be role:<role code>, unit:<unit> or user:<user id>", keys[k]);
            complaints_destroy (&self);
            return NULL;
        }
    }
    if (intake->base) {
        self->timer = evtimer_new (intake->base, s_on_sweep, self);
        if (!self->timer) {
            snprintf (err, errlen, "cannot set up the complaints' deadline sweep");
            complaints_destroy (&self);
            return NULL;
        }
        event_active (self->timer, EV_TIMEOUT, 0);
    }
    return self;
}

void
complaints_destroy (complaints_t **self_p)
{
    complaints_t *self = *self_p;
    if (!self)
        return;
    if (self->timer)
        event_free (self->timer);
    free (self);
    *self_p = NULL;
}

void
complaints_deadlines (intake_t *intake, const char *type, bool sensitive, int64_t received_ms,
                      int64_t *ack_due, int64_t *respond_due)
{
    complaints_t *self = intake->complaints;
    int t = sensitive ? S_TYPES - 1 : s_index (s_types, type);
    if (t < 0)
        t = 0;
    *ack_due = received_ms + self->ack_ms[t];
    *respond_due = received_ms + self->respond_ms[t];
}

bool
complaints_visible (intake_t *intake, const json_t *rec, const http_caller_t *who)
{
    complaints_t *self = intake->complaints;
    if (!json_is_true (json_object_get (rec, "sensitive")))
        return (who->roles & (GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION)) != 0;
    if (!(who->roles & self->sensitive_roles))
        return false;
    int k = s_index (s_kinds, json_string_value (json_object_get (rec, "sensitive_kind")));
    if (k < 0)
        return false;
    const s_focal_t *f = &self->focal[k];
    if (f->kind == 'r')
        return (who->roles & f->role) != 0;
    if (f->kind == 'i')
        return strcmp (who->user_id, f->value) == 0;
    for (size_t i = 0; i < who->unit_count; i++)
        if (strcmp (who->units[i], f->value) == 0)
            return true;
    return false;
}

json_t *
complaints_focal_recipient (intake_t *intake, const char *kind, json_t **channels)
{
    complaints_t *self = intake->complaints;
    int k = s_index (s_kinds, kind);
    const s_focal_t *f = &self->focal[k < 0 ? 0 : k];
    if (f->kind == 'i') {
        *channels = json_pack ("[s, s]", "console", "email");
        return json_pack ("{s:s, s:s}", "kind", "user", "id", f->value);
    }
    *channels = json_pack ("[s]", "console");
    if (f->kind == 'u')
        return json_pack ("{s:s, s:s}", "kind", "unit", "code", f->value);
    return json_pack ("{s:s, s:s}", "kind", "role", "role", auth_role_code (f->role));
}

bool
complaints_close_unacknowledged (intake_t *intake)
{
    return intake->complaints->close_unacknowledged;
}

int64_t
complaints_idem_ttl_ms (intake_t *intake)
{
    return intake->complaints->idem_ttl_ms;
}

//  --------------------------------------------------------------------------------------------
//  Events and deadlines

gl_event_t *
complaints_event (const json_t *rec, const char *type)
{
    gl_event_t *ev = gl_event_new (type);
    json_t *data = json_pack (
        "{s:O?, s:O?, s:O?, s:O?, s:O?, s:b, s:O?, s:O?, s:O?, s:O?, s:O?, s:I}", "complaint_id",
        json_object_get (rec, "id"), "type", json_object_get (rec, "type"), "channel",
        json_object_get (rec, "channel"), "language", json_object_get (rec, "language"),
        "category", json_object_get (rec, "category"), "sensitive",
        json_is_true (json_object_get (rec, "sensitive")), "anonymous",
        json_object_get (rec, "anonymous"), "status", json_object_get (rec, "status"),
        "received_at", json_object_get (rec, "received_at"), "acknowledge_due",
        json_object_get (rec, "acknowledge_due"), "respond_due",
        json_object_get (rec, "respond_due"), "version",
        (json_int_t) docstore_int (rec, "version", 0));
    if (!ev || !data) {
        gl_event_destroy (&ev);
        json_decref (data);
        return NULL;
    }
    json_decref (ev->data);
    ev->data = data;
    gl_event_set_corr (ev, docstore_str (rec, "id"));
    return ev;
}

static bool
s_status_is (const json_t *rec, const char *a, const char *b, const char *c)
{
    const char *s = docstore_str (rec, "status");
    return s && ((a && !strcmp (s, a)) || (b && !strcmp (s, b)) || (c && !strcmp (s, c)));
}

//  True while rec waits for the step of deadline kind ("acknowledge" or "respond") and its
//  complaint.overdue has not been published.
static bool
s_waiting (const json_t *rec, const char *kind)
{
    bool ack = strcmp (kind, "acknowledge") == 0;
    const json_t *notified = json_object_get (rec, "overdue_notified");
    size_t i;
    json_t *k;
    json_array_foreach (notified, i, k)
        if (json_is_string (k) && strcmp (json_string_value (k), kind) == 0)
            return false;
    return ack ? s_status_is (rec, "received", NULL, NULL)
               : s_status_is (rec, "received", "acknowledged", "in_progress");
}

void
complaints_due_index (docstore_tx_t *tx, const json_t *rec)
{
    static const char *const kinds[] = { "acknowledge", "respond" };
    static const char *const dues[] = { "acknowledge_due", "respond_due" };
    const char *id = docstore_str (rec, "id");
    if (!id)
        return;
    for (size_t i = 0; i < 2; i++) {
        char member[GL_ID_LEN + 16];
        snprintf (member, sizeof member, "%s:%s", id, kinds[i]);
        int64_t due = docstore_int (rec, dues[i], -1);
        if (due >= 0 && s_waiting (rec, kinds[i]))
            docstore_tx_zadd (tx, S_DUE, due, member);
        else
            docstore_tx_zrem (tx, S_DUE, member);
    }
}

//  One index entry: publish its complaint.overdue if the deadline still stands. 1 published,
//  0 nothing to do (or another replica did it), -1 Redis failed.
static int
s_overdue (intake_t *intake, const char *member, int64_t now)
{
    const char *colon = strchr (member, ':');
    char id[GL_ID_LEN + 1] = "", key[128];
    if (colon && colon - member == GL_ID_LEN) {
        memcpy (id, member, GL_ID_LEN);
        id[GL_ID_LEN] = 0;
    }
    const char *kind = colon ? colon + 1 : "";
    if (!gl_id_valid (id) || (strcmp (kind, "acknowledge") && strcmp (kind, "respond"))) {
        //  Not ours: drop it, so that it does not hold up the entries after it.
        redisReply *r = gl_redis_cmd (intake->redis, "ZREM %s %s", S_DUE, member);
        if (!r)
            return -1;
        freeReplyObject (r);
        return 0;
    }
    snprintf (key, sizeof key, S_KEY "%s", id);
    json_t *rec = NULL;
    int64_t v = 0;
    int rc = docstore_read (intake, key, &rec, &v);
    if (rc < 0)
        return -1;
    docstore_tx_t *tx = docstore_tx_new (intake);
    if (!tx) {
        json_decref (rec);
        return -1;
    }
    int64_t due = rec ? docstore_int (rec, strcmp (kind, "acknowledge") == 0 ? "acknowledge_due"
                                                                         : "respond_due",
                                      -1)
                      : -1;
    if (!rec || due < 0 || due > now || !s_waiting (rec, kind)) {
        //  Gone, done, or moved: the record's own entries say what is still due.
        docstore_tx_zrem (tx, S_DUE, member);
        if (rec)
            complaints_due_index (tx, rec);
        json_decref (rec);
        return docstore_tx_commit (&tx, NULL, 0) < 0 ? -1 : 0;
    }
    json_t *notified = json_object_get (rec, "overdue_notified");
    if (!json_is_array (notified)) {
        notified = json_array ();
        json_object_set_new (rec, "overdue_notified", notified);
    }
    json_array_append_new (notified, json_string (kind));
    json_object_set_new (rec, "version", json_integer (v + 1));
    gl_event_t *ev = complaints_event (rec, "complaint.overdue");
    if (ev) {
        json_object_set_new (ev->data, "overdue_kind", json_string (kind));
        json_object_set_new (ev->data, "due", json_integer (due));
    }
    docstore_tx_put (tx, key, rec, v, v + 1);
    docstore_tx_zrem (tx, S_DUE, member);
    docstore_tx_event (tx, &ev, 0);
    json_decref (rec);
    rc = docstore_tx_commit (&tx, NULL, 0);
    return rc == 0 ? 1 : rc == 2 ? 0 : -1;
}

int
complaints_sweep (intake_t *intake)
{
    int64_t now = gl_now_ms ();
    char max[24];
    snprintf (max, sizeof max, "%" PRId64, now);
    redisReply *r = gl_redis_cmd (intake->redis, "ZRANGEBYSCORE %s -inf %s LIMIT 0 %d", S_DUE,
                                  max, S_SWEEP_BATCH);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject (r);
        return -1;
    }
    int published = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        int rc = s_overdue (intake, m->str, now);
        if (rc < 0) {
            published = -1;
            break;
        }
        published += rc;
    }
    freeReplyObject (r);
    if (published > 0)
        gl_info ("complaints: %d deadline(s) passed", published);
    return published;
}
