/*  alerts — see alerts.h.

    Applying an event (s_apply) reads what the new alert pushes out of its recipient's set (the
    oldest beyond GL_INTAKE_ALERTS_MAX, and those past seven days) and queues every write in the
    subscriber's transaction, so the alert, the trimming and the cursor move in one atomic step:
    intake killed at any moment applies each event once. The group uses batch 1, so the reads
    see every earlier event's writes.

    A reader's alerts are spread over up to 1 + HTTP_UNITS_MAX + 4 sets (their own, each unit's,
    each role's). A page merges them newest first: it reads the next limit + 1 members of each
    set, and takes the merged members down to the highest last member of a set that had more
    (below it, that set may hold members not read yet), then reads on from there.
*/
#include "alerts.h"
#include "alertpayload.h"
#include "audit.h"
#include "auth.h"
#include "gl/gl_busmetrics.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_sub.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_TYPE          "notification.console"
#define S_MAX_DEFAULT   200
#define S_OLD_READ      200         //  members past seven days dropped per apply (the rest next)
#define S_MEMBER_LEN    (16 + 1 + GL_ID_LEN)
#define S_INDEX_MAX     (1 + HTTP_UNITS_MAX + 4)
#define S_ROUNDS        16          //  merge rounds per page before a short page and a cursor
#define S_CHUNK         64          //  records read per pipeline
#define S_KEY_LEN       160

struct _alerts_t {
    intake_t *intake;
    gl_sub_t *sub;
    int64_t max;                //  GL_INTAKE_ALERTS_MAX
    zsock_t *watched;           //  the socket on_sub watches (gl_sub_sock changes on activation)
    struct event *on_sub;
    struct event *on_tick;
};


//  --------------------------------------------------------------------------------------------
//  Small things


//  A member "<16 digits>:<32 hex>", as the sets hold and cursors carry.
static bool
s_member_valid (const char *s)
{
    if (strlen (s) != S_MEMBER_LEN || s[16] != ':')
        return false;
    for (int i = 0; i < 16; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return gl_id_valid (s + 17);
}

static void
s_record_key (char *out, size_t len, const char *id)
{
    snprintf (out, len, ALERTS_PREFIX "alert:%s", id);
}

static void
s_index_key (char *out, size_t len, const char *kind, const char *to)
{
    snprintf (out, len, ALERTS_PREFIX "alerts:%s:%s", kind, to);
}

static const char *
s_field (const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
         i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING
            && strcmp (fields->element[i]->str, name) == 0
            && fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1]->str;
    return NULL;
}

//  --------------------------------------------------------------------------------------------
//  Applying notification.console


//  Members of index that the new alert pushes out, read before the write: those beyond the
//  newest max - 1 and those older than cutoff (at most S_OLD_READ). They are queued for
//  removal with their records. 0, or -1 when Redis cannot be reached.
static int
s_queue_trim (alerts_t *self, const char *index, int64_t cutoff, const char *adding,
              gl_tx_t *tx)
{
    gl_redis_t *redis = self->intake->redis;
    char bound[24];
    snprintf (bound, sizeof bound, "(%016" PRId64, cutoff);
    redisReply *beyond = gl_redis_cmd (redis, "ZREVRANGE %s %lld -1", index,
                                       (long long) (self->max - 1));
    redisReply *old = beyond ? gl_redis_cmd (redis, "ZRANGEBYLEX %s - %s LIMIT 0 %d", index,
                                             bound, S_OLD_READ)
                             : NULL;
    int rc = -1;
    if (beyond && old && beyond->type == REDIS_REPLY_ARRAY && old->type == REDIS_REPLY_ARRAY) {
        rc = 0;
        const redisReply *lists[2] = { beyond, old };
        for (int l = 0; l < 2 && rc == 0; l++)
            for (size_t i = 0; i < lists[l]->elements && rc == 0; i++) {
                const redisReply *m = lists[l]->element[i];
                if (m->type != REDIS_REPLY_STRING || !s_member_valid (m->str)
                    || strcmp (m->str, adding) == 0)
                    continue;
                char key[S_KEY_LEN];
                s_record_key (key, sizeof key, m->str + 17);
                //  A member in both lists is removed twice: harmless.
                rc = gl_tx_cmdf (tx, "ZREM %s %s", index, m->str)
                     || gl_tx_cmdf (tx, "DEL %s", key) ? -1 : 0;
            }
    }
    else if (beyond && old)
        gl_error ("alerts: reading %s failed", index);
    if (beyond)
        freeReplyObject (beyond);
    if (old)
        freeReplyObject (old);
    return rc;
}

//  The set's time to live: that of its newest alert (never shortened).
static int64_t
s_index_ttl (alerts_t *self, const char *index, int64_t ttl)
{
    redisReply *r = gl_redis_cmd (self->intake->redis, "PTTL %s", index);
    long long have = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        have = r->integer;
    if (r)
        freeReplyObject (r);
    return have > ttl ? have : ttl;
}

static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    alerts_t *self = arg;
    if (strcmp (ev->type, S_TYPE) != 0)
        return 0;
    alertpayload_t a;
    const char *field = NULL;
    if (alertpayload_parse (ev, &a, &field) != 0) {
        //  Retrying cannot fix it: skipped (the cursor moves on), loudly.
        gl_warn ("alerts: event %s (%s seq %" PRIu64 ") skipped: field %s is not valid", ev->id,
                 ev->src, ev->seq, field);
        return 0;
    }
    if (a.other) {
        gl_debug ("alerts: event %s is for a %s recipient: not a console user", ev->id, a.kind);
        return 0;
    }
    int64_t now = gl_now_ms ();
    //  A producer's clock ahead of ours: the alert is as new as now.
    int64_t created = ev->ts < now ? ev->ts : now;
    int64_t ttl = created + ALERTS_KEEP_MS - now;
    if (created < 0 || ttl <= 0) {
        gl_info ("alerts: event %s is older than the alerts kept: not stored", ev->id);
        return 0;
    }
    char key[S_KEY_LEN], index[S_KEY_LEN], member[64];
    s_record_key (key, sizeof key, ev->id);
    s_index_key (index, sizeof index, a.kind, a.to);
    snprintf (member, sizeof member, "%016" PRId64 ":%s", created, ev->id);
    if (s_queue_trim (self, index, now - ALERTS_KEEP_MS, member, tx) != 0)
        return -1;
    int64_t index_ttl = s_index_ttl (self, index, ttl);
    int rc = gl_tx_cmdf (tx,
                         "HSET %s to_kind %s to %s priority %s template %s title %b body %b "
                         "language %s created %lld notification_id %s corr %s",
                         key, a.kind, a.to, a.priority, a.tmpl, a.title, a.title_len, a.body,
                         a.body_len, a.language, (long long) created, a.nid, ev->corr)
             || gl_tx_cmdf (tx, "PEXPIRE %s %lld", key, (long long) ttl)
             || gl_tx_cmdf (tx, "ZADD %s 0 %s", index, member)
             || gl_tx_cmdf (tx, "PEXPIRE %s %lld", index, (long long) index_ttl);
    if (rc != 0)
        return -1;
    gl_info ("alerts: %s alert %s for a %s (template %s)", a.priority, ev->id, a.kind, a.tmpl);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The subscriber on intake's loop

static void s_on_sub (evutil_socket_t fd, short what, void *arg);

//  Watch the subscriber's current socket (it changes when the group's lease is won or lost).
static void
s_watch (alerts_t *self)
{
    zsock_t *sock = gl_sub_sock (self->sub);
    if (sock == self->watched)
        return;
    if (self->on_sub)
        event_free (self->on_sub);
    self->on_sub = NULL;
    self->watched = NULL;
    if (!sock)
        return;
    self->on_sub = event_new (self->intake->base, zsock_fd (sock), EV_READ | EV_PERSIST,
                              s_on_sub, self);
    if (!self->on_sub || event_add (self->on_sub, NULL) != 0) {
        //  The logs are still polled on the tick; try again at the next one.
        gl_error ("alerts: cannot watch the subscriber's socket");
        if (self->on_sub)
            event_free (self->on_sub);
        self->on_sub = NULL;
        return;
    }
    self->watched = sock;
    //  Frames may have arrived before the event existed: their edge is gone.
    event_active (self->on_sub, EV_READ, 0);
}

static void
s_on_sub (evutil_socket_t fd, short what, void *arg)
{
    alerts_t *self = arg;
    zsock_t *sock = self->watched;
    if (!sock || !(zsock_events (sock) & ZMQ_POLLIN))
        return;
    //  A failure leaves the events in the logs, for the tick's catch-up.
    if (gl_sub_handle (self->sub) != 0)
        gl_debug ("alerts: frames not applied now (redis unreachable); the logs have them");
    //  gl_sub_handle takes a bounded number: the rest after the HTTP requests that are ready.
    if (zsock_events (sock) & ZMQ_POLLIN)
        event_active (self->on_sub, EV_READ, 0);
}

static void
s_on_tick (evutil_socket_t fd, short what, void *arg)
{
    alerts_t *self = arg;
    int64_t next = gl_sub_tick (self->sub);
    s_watch (self);
    if (self->on_sub)
        event_active (self->on_sub, EV_READ, 0);       //  in case an edge was lost
    if (next < 0)
        next = 0;
    if (next > 1000)
        next = 1000;
    struct timeval tv = { (time_t) (next / 1000), (suseconds_t) ((next % 1000) * 1000) };
    evtimer_add (self->on_tick, &tv);
}

alerts_t *
alerts_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake && intake->base && intake->redis);
    alerts_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    self->max = gl_config_int (intake->config, "GL_INTAKE_ALERTS_MAX", S_MAX_DEFAULT, 1, 10000);
    if (gl_config_error (intake->config)) {
        snprintf (err, errlen, "%s", gl_config_error (intake->config));
        alerts_destroy (&self);
        return NULL;
    }
    gl_sub_opts_t opts;
    gl_sub_opts_default (&opts);
    opts.endpoints = gl_config_str (intake->config, "GL_BUS_PUB_ENDPOINTS", "");
    opts.prefixes = S_TYPE;
    //  Only notifier's logs: intake's own (and every other service's) log is never read here,
    //  nor held back from trimming by this group.
    opts.sources = "notifier-";
    opts.curve = intake->curve;
    self->sub = gl_sub_new (intake->redis, ALERTS_GROUP, &opts, s_apply, self, err, errlen);
    if (!self->sub) {
        alerts_destroy (&self);
        return NULL;
    }
    if (intake->busmetrics)
        gl_busmetrics_watch_sub (intake->busmetrics, ALERTS_GROUP, self->sub);
    self->on_tick = evtimer_new (intake->base, s_on_tick, self);
    if (!self->on_tick) {
        snprintf (err, errlen, "cannot set up the alerts' timer");
        alerts_destroy (&self);
        return NULL;
    }
    event_active (self->on_tick, EV_TIMEOUT, 0);
    return self;
}

void
alerts_destroy (alerts_t **self_p)
{
    assert (self_p);
    alerts_t *self = *self_p;
    if (!self)
        return;
    if (self->on_sub)
        event_free (self->on_sub);
    if (self->on_tick)
        event_free (self->on_tick);
    gl_sub_destroy (&self->sub);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Who sees what

static bool
s_visible (const http_caller_t *caller, const char *kind, const char *to)
{
    if (!kind || !to)
        return false;
    if (strcmp (kind, "user") == 0)
        return strcmp (to, caller->user_id) == 0;
    if (strcmp (kind, "unit") == 0) {
        for (size_t i = 0; i < caller->unit_count; i++)
            if (strcmp (caller->units[i], to) == 0)
                return true;
        return false;
    }
    if (strcmp (kind, "role") == 0) {
        uint32_t flag = auth_role_flag (to);
        return flag && (caller->roles & flag) && flag != GL_ROLE_API_CLIENT;
    }
    return false;
}

//  The sets a caller reads: their own, each unit's, each role's.
static size_t
s_indexes (const http_caller_t *caller, char keys[][S_KEY_LEN])
{
    size_t n = 0;
    s_index_key (keys[n++], S_KEY_LEN, "user", caller->user_id);
    for (size_t i = 0; i < caller->unit_count && i < HTTP_UNITS_MAX; i++)
        s_index_key (keys[n++], S_KEY_LEN, "unit", caller->units[i]);
    for (uint32_t bit = GL_ROLE_AGENT; bit <= GL_ROLE_ADMIN; bit <<= 1)
        if ((caller->roles & bit) && auth_role_code (bit))
            s_index_key (keys[n++], S_KEY_LEN, "role", auth_role_code (bit));
    return n;
}

//  A field, or "" when absent.
static const char *
s_fs (const redisReply *fields, const char *name)
{
    const char *v = s_field (fields, name);
    return v ? v : "";
}

static json_t *
s_item (const char *id, const redisReply *f, const char *ack_field)
{
    const char *kind = s_fs (f, "to_kind"), *to = s_fs (f, "to");
    const char *name = strcmp (kind, "user") == 0 ? "id" : strcmp (kind, "unit") == 0 ? "code"
                                                                                        : "role";
    const char *acked = s_field (f, ack_field);
    const char *lang = s_field (f, "language");
    const char *corr = s_field (f, "corr");
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:{s:s, s:s}, s:o, s:b, s:o}",
                      "id", id, "notification_id", s_fs (f, "notification_id"),
                      "priority", s_fs (f, "priority"), "template",
                      s_fs (f, "template"), "title", s_fs (f, "title"),
                      "body", s_fs (f, "body"), "language",
                      lang && *lang ? json_string (lang) : json_null (), "created_at",
                      (json_int_t) strtoll (s_fs (f, "created"), NULL, 10),
                      "recipient", "kind", kind, name, to, "corr",
                      corr && *corr ? json_string (corr) : json_null (), "acknowledged",
                      acked != NULL, "acknowledged_at",
                      acked ? json_integer ((json_int_t) strtoll (acked, NULL, 10))
                            : json_null ());
}

//  --------------------------------------------------------------------------------------------
//  GET /api/v1/alerts

typedef struct {
    char m[S_MEMBER_LEN + 1];
} s_member_t;

static int
s_desc (const void *a, const void *b)
{
    return strcmp (((const s_member_t *) b)->m, ((const s_member_t *) a)->m);
}

typedef struct {
    intake_t *intake;
    const http_caller_t *caller;
    bool unacked_only;
    int64_t cutoff;
    char ack_field[8 + GL_ID_LEN];
    json_t *items;
    int limit;
    char last[S_MEMBER_LEN + 1];        //  the last member looked at
} s_page_t;

//  Read the records of members (in order) into the page until it is full. Returns how many
//  members were looked at, or -1 when Redis cannot be reached.
static int
s_take (s_page_t *p, const s_member_t *members, size_t n)
{
    gl_redis_t *redis = p->intake->redis;
    size_t looked = 0;
    for (size_t from = 0; from < n && (int) json_array_size (p->items) < p->limit;
         from += S_CHUNK) {
        size_t count = n - from < S_CHUNK ? n - from : S_CHUNK;
        for (size_t i = 0; i < count; i++) {
            char key[S_KEY_LEN];
            s_record_key (key, sizeof key, members[from + i].m + 17);
            if (gl_redis_append (redis, "HGETALL %s", key) != 0)
                return -1;
        }
        int rc = 0;
        for (size_t i = 0; i < count; i++) {
            redisReply *r = gl_redis_reply (redis);
            if (!r) {
                rc = -1;
                continue;
            }
            const char *m = members[from + i].m;
            if (rc == 0 && (int) json_array_size (p->items) < p->limit) {
                looked++;
                snprintf (p->last, sizeof p->last, "%s", m);
                //  Gone (trimmed or expired since the set was read), or not for this caller
                //  (the sets are the caller's, so only a record changed under us): skipped.
                bool show = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                            && s_visible (p->caller, s_field (r, "to_kind"), s_field (r, "to"))
                            && !(p->unacked_only && s_field (r, p->ack_field));
                if (show)
                    json_array_append_new (p->items, s_item (m + 17, r, p->ack_field));
            }
            freeReplyObject (r);
        }
        if (rc != 0)
            return -1;
    }
    return (int) looked;
}

static int
s_list (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "limit", "cursor", "unacknowledged", NULL };
    http_page_t page;
    if (http_query_only (req, params) || http_page (req, &page))
        return -1;
    bool unacked_only = false;
    const char *u = http_query (req, "unacknowledged");
    if (u && strcmp (u, "true") != 0 && strcmp (u, "false") != 0)
        return http_reply_error (req, 400, "invalid_parameter", "true or false",
                                 "unacknowledged");
    unacked_only = u && strcmp (u, "true") == 0;
    if (page.has_cursor && !s_member_valid (page.cursor))
        return http_reply_error (req, 400, "invalid_parameter", "this cursor is not valid",
                                 "cursor");
    const http_caller_t *caller = http_caller (req);
    char keys[S_INDEX_MAX][S_KEY_LEN];
    size_t nkeys = s_indexes (caller, keys);
    s_page_t p = { .intake = intake, .caller = caller, .unacked_only = unacked_only,
                   .items = json_array (), .limit = page.limit };
    snprintf (p.ack_field, sizeof p.ack_field, "ack:%s", caller->user_id);
    char min[24], max[HTTP_CURSOR_MAX + 2] = "+";
    snprintf (min, sizeof min, "[%016" PRId64, gl_now_ms () - ALERTS_KEEP_MS);
    if (page.has_cursor)
        snprintf (max, sizeof max, "(%s", page.cursor);
    size_t cap = nkeys * (size_t) (page.limit + 1);
    s_member_t *cand = malloc (cap * sizeof *cand);
    if (!p.items || !cand) {
        json_decref (p.items);
        free (cand);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    bool failed = false, more = false;
    for (int round = 0; round < S_ROUNDS && !failed; round++) {
        for (size_t k = 0; k < nkeys && !failed; k++)
            failed = gl_redis_append (intake->redis, "ZREVRANGEBYLEX %s %s %s LIMIT 0 %d",
                                      keys[k], max, min, page.limit + 1)
                     != 0;
        size_t n = 0;
        char frontier[S_MEMBER_LEN + 1] = "";       //  below it, a set may hold more
        for (size_t k = 0; k < nkeys && !failed; k++) {
            redisReply *r = gl_redis_reply (intake->redis);
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                failed = true;
                if (r)
                    freeReplyObject (r);
                continue;
            }
            const char *last = NULL;
            for (size_t i = 0; i < r->elements; i++)
                if (r->element[i]->type == REDIS_REPLY_STRING
                    && s_member_valid (r->element[i]->str) && n < cap) {
                    snprintf (cand[n++].m, sizeof cand[0].m, "%s", r->element[i]->str);
                    last = r->element[i]->str;
                }
            if (r->elements == (size_t) (page.limit + 1) && last && strcmp (last, frontier) > 0)
                snprintf (frontier, sizeof frontier, "%s", last);
            freeReplyObject (r);
        }
        if (failed)
            break;
        qsort (cand, n, sizeof *cand, s_desc);
        size_t usable = 0;
        while (usable < n && strcmp (cand[usable].m, frontier) >= 0)
            usable++;
        int looked = s_take (&p, cand, usable);
        if (looked < 0) {
            failed = true;
            break;
        }
        if ((int) json_array_size (p.items) == page.limit) {
            more = (size_t) looked < n || *frontier;
            break;
        }
        if (!*frontier)
            break;                              //  every set read to its end
        snprintf (max, sizeof max, "(%s", frontier);
        snprintf (p.last, sizeof p.last, "%s", frontier);
        more = true;                            //  if the rounds run out: a short page
    }
    free (cand);
    if (failed) {
        json_decref (p.items);
        return http_reply_error (req, 503, "unavailable", "alerts cannot be read now", NULL);
    }
    return http_reply_page (req, p.items, more && *p.last ? p.last : NULL);
}

//  --------------------------------------------------------------------------------------------
//  POST /api/v1/alerts/{id}/ack

//  KEYS[1] the alert, KEYS[2] the audit stream; ARGV[1] ack:<user>, ARGV[2] now, then the
//  audit entry (AUDIT_ARGC). Returns {1 acknowledged now | 0 already, the ack time}, or -1
//  when the alert is gone. The first acknowledgement is audited in the same step.
static gl_redis_script_t s_ack_script = { .source = AUDIT_LUA
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "local n = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])\n"
    "if n == 1 then audit_append(KEYS[2], ARGV, 3) end\n"
    "return {n, redis.call('HGET', KEYS[1], ARGV[1])}\n" };

static int
s_ack (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    const char *id = http_param (req, "id");
    if (!id || !gl_id_valid (id))
        return http_reply_error (req, 400, "invalid_parameter", "an alert id (32 hex digits)",
                                 "id");
    if (http_body_only (req, fields))
        return -1;
    const http_caller_t *caller = http_caller (req);
    char key[S_KEY_LEN];
    s_record_key (key, sizeof key, id);
    redisReply *r = gl_redis_cmd (intake->redis, "HMGET %s to_kind to created", key);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r)
            freeReplyObject (r);
        return http_reply_error (req, 503, "unavailable", "alerts cannot be read now", NULL);
    }
    const char *kind = r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : NULL;
    const char *to = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : NULL;
    int64_t created = r->element[2]->type == REDIS_REPLY_STRING
                          ? strtoll (r->element[2]->str, NULL, 10) : 0;
    bool seen = s_visible (caller, kind, to) && created >= gl_now_ms () - ALERTS_KEEP_MS;
    freeReplyObject (r);
    //  Someone else's alert is as absent as one that never was.
    if (!seen)
        return http_reply_error (req, 404, "not_found", "no such alert", NULL);

    audit_entry_t audit;
    if (audit_entry_req (intake, req, "ack", "alert", id, "acknowledged", &audit) != 0)
        return http_reply_error (req, 500, "internal", "audit entry refused", NULL);
    char field[8 + GL_ID_LEN], now[24];
    snprintf (field, sizeof field, "ack:%s", caller->user_id);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    const char *argv[4 + 2 + AUDIT_ARGC] = { key, AUDIT_KEY, field, now };
    memcpy (argv + 4, audit.argv, sizeof audit.argv);
    r = gl_redis_eval (intake->redis, &s_ack_script, 2, 4 + AUDIT_ARGC, argv, NULL);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        freeReplyObject (r);
        return http_reply_error (req, 404, "not_found", "no such alert", NULL);
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[1]->type != REDIS_REPLY_STRING) {
        if (r && r->type == REDIS_REPLY_ERROR)
            gl_error ("alerts: ack script failed: %s", r->str);
        if (r)
            freeReplyObject (r);
        return http_reply_error (req, 503, "unavailable", "the alert cannot be updated now", NULL);
    }
    bool first = r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
    json_int_t at = (json_int_t) strtoll (r->element[1]->str, NULL, 10);
    freeReplyObject (r);
    return http_reply_json (req, 200, json_pack ("{s:s, s:b, s:I, s:b}", "id", id,
                                                 "acknowledged", 1, "acknowledged_at", at,
                                                 "already", !first));
}

void
alerts_routes (intake_t *intake)
{
    http_route (intake->http, "GET", "/api/v1/alerts", GL_ROLE_STAFF, s_list);
    http_route (intake->http, "POST", "/api/v1/alerts/{id}/ack", GL_ROLE_STAFF, s_ack);
}
