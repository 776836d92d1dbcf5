/*  gl_outbox — see gl_outbox.h. Lifted from intake's contacts.c, where it was born, so that every
    service stores a record and its event the same way.
*/
#include "gl/gl_outbox.h"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define S_SWEEP_MAX 1000        //  entries looked at per sweep
#define S_LOG_CHUNK 500         //  log entries read per round trip when looking for an id
#define S_KEY_MAX   200

struct _gl_outbox_t {
    gl_redis_t *redis;
    gl_pub_t *pub;
    char key[S_KEY_MAX + 1];
    char bad[S_KEY_MAX + 8];
    int64_t pending;
    uint64_t staged;
    gl_metric_t *m_pending;     //  entries seen but not delivered by the last sweep
    gl_metric_t *m_swept;       //  entries the sweep delivered (their first send failed)
    //  Events deferred to the next flush, in order (gl_outbox_defer).
    gl_event_t *queue[GL_OUTBOX_BATCH_MAX];
    int queue_flags[GL_OUTBOX_BATCH_MAX];
    size_t queued;
    gl_outbox_wake_fn *wake;
    void *wake_arg;
    gl_outbox_clear_fn *clear;          //  gl_outbox_set_clear; NULL: HDEL here
    //  Copies of the events staged and not yet seen committed (gl_outbox_settle).
    gl_event_t *staged_evs[GL_OUTBOX_BATCH_MAX];
    int staged_flags[GL_OUTBOX_BATCH_MAX];
    size_t nstaged;
    bool staged_overflow;
    void *clear_arg;
    //  Event ids whose entries are being written over an asynchronous connection (unordered).
    char (*held)[GL_ID_LEN + 1];
    size_t nheld;
};

static void s_staged_clear (gl_outbox_t *self);

gl_outbox_t *
gl_outbox_new (gl_redis_t *redis, gl_pub_t *pub, const char *key, const char *metrics_name)
{
    assert (redis && pub && key);
    if (!*key || strlen (key) > S_KEY_MAX)
        return NULL;
    gl_outbox_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->redis = redis;
    self->pub = pub;
    snprintf (self->key, sizeof self->key, "%s", key);
    snprintf (self->bad, sizeof self->bad, "%s:bad", key);
    if (metrics_name) {
        char name[128];
        snprintf (name, sizeof name, "%s_outbox_pending", metrics_name);
        self->m_pending = gl_metrics_gauge (name, "Outbox entries waiting for delivery at the "
                                                  "last sweep", NULL);
        snprintf (name, sizeof name, "%s_outbox_delivered_total", metrics_name);
        self->m_swept = gl_metrics_counter (name, "Events the outbox sweep delivered after "
                                                  "their first delivery failed", NULL);
    }
    return self;
}

void
gl_outbox_destroy (gl_outbox_t **self_p)
{
    assert (self_p);
    gl_outbox_t *self = *self_p;
    if (!self)
        return;
    if (self->queued)
        gl_info ("outbox: %zu deferred event(s) not flushed; the sweep will deliver them",
                 self->queued);
    for (size_t i = 0; i < self->queued; i++)
        gl_event_destroy (&self->queue[i]);
    s_staged_clear (self);
    free (self->held);
    free (self);
    *self_p = NULL;
}

const char *
gl_outbox_key (gl_outbox_t *self)
{
    assert (self);
    return self->key;
}

uint64_t
gl_outbox_staged (gl_outbox_t *self)
{
    assert (self);
    return self->staged;
}

int64_t
gl_outbox_pending (gl_outbox_t *self)
{
    assert (self);
    return self->pending;
}

char *
gl_outbox_entry (gl_outbox_t *self, const gl_event_t *ev, int flags)
{
    assert (self && ev && json_is_object (ev->data));
    //  data last: a script may append fields inside it.
    json_t *entry = json_pack ("{s:s, s:s, s:I, s:s, s:i, s:s, s:I, s:O}", "type", ev->type, "id",
                               ev->id, "ts", (json_int_t) ev->ts, "corr", ev->corr, "flags", flags,
                               "src", gl_pub_src (self->pub), "seq",
                               (json_int_t) gl_pub_seq (self->pub), "data", ev->data);
    char *text = entry ? json_dumps (entry, JSON_COMPACT) : NULL;
    json_decref (entry);
    return text;
}

//  A copy of ev (id, time, corr, data), or NULL when out of memory.
static gl_event_t *
s_copy (const gl_event_t *ev)
{
    gl_event_t *copy = gl_event_new (ev->type);
    json_t *data = json_deep_copy (ev->data);
    if (!copy || !data) {
        gl_event_destroy (&copy);
        json_decref (data);
        return NULL;
    }
    memcpy (copy->id, ev->id, sizeof copy->id);
    copy->ts = ev->ts;
    gl_event_set_corr (copy, ev->corr);
    json_decref (copy->data);
    copy->data = data;
    return copy;
}

//  Forget the staged copies (the sweep has looked at the whole outbox).
static void
s_staged_clear (gl_outbox_t *self)
{
    for (size_t i = 0; i < self->nstaged; i++)
        gl_event_destroy (&self->staged_evs[i]);
    self->nstaged = 0;
    self->staged_overflow = false;
}

int
gl_outbox_stage (gl_outbox_t *self, gl_tx_t *tx, const gl_event_t *ev, int flags)
{
    assert (self && tx && ev);
    char *entry = gl_outbox_entry (self, ev, flags);
    if (!entry)
        return -1;
    int rc = gl_tx_cmdf (tx, "HSET %s %s %s", self->key, ev->id, entry);
    free (entry);
    if (rc == 0) {
        self->staged++;
        //  Kept, so that gl_outbox_settle can deliver it once committed without a sweep. The
        //  same event staged again (a transaction retried after a failed commit) is kept once:
        //  it is one entry, and must be one append.
        bool known = false;
        for (size_t i = 0; i < self->nstaged && !known; i++)
            if (strcmp (self->staged_evs[i]->id, ev->id) == 0) {
                self->staged_flags[i] = flags;
                known = true;
            }
        gl_event_t *copy = known || self->nstaged >= GL_OUTBOX_BATCH_MAX ? NULL : s_copy (ev);
        if (copy) {
            self->staged_evs[self->nstaged] = copy;
            self->staged_flags[self->nstaged++] = flags;
        }
        else if (!known)
            self->staged_overflow = true;
    }
    return rc;
}

int
gl_outbox_settle (gl_outbox_t *self)
{
    assert (self);
    if (self->staged_overflow)
        return gl_outbox_sweep (self);  //  it forgets the copies
    if (self->nstaged == 0)
        return 0;
    const char *argv[2 + GL_OUTBOX_BATCH_MAX];
    argv[0] = "HMGET";
    argv[1] = self->key;
    for (size_t i = 0; i < self->nstaged; i++)
        argv[2 + i] = self->staged_evs[i]->id;
    redisReply *r = gl_redis_cmdargv (self->redis, (int) (2 + self->nstaged), argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != self->nstaged) {
        if (r)
            freeReplyObject (r);
        return -1;                      //  kept: the next settle or the sweep
    }
    //  Committed (its entry is there): delivered now, in staging order. Not there: its
    //  transaction was rolled back, or is not committed yet (a manual checkpoint): kept until
    //  the next settle, or forgotten by the next sweep, which looks at everything.
    size_t kept = 0;
    int delivered = 0;
    for (size_t i = 0; i < self->nstaged; i++) {
        gl_event_t *ev = self->staged_evs[i];
        if (r->element[i]->type == REDIS_REPLY_STRING) {
            if (gl_outbox_defer (self, ev, self->staged_flags[i]) == 0)
                delivered++;
            gl_event_destroy (&ev);
        }
        else {
            self->staged_evs[kept] = ev;
            self->staged_flags[kept++] = self->staged_flags[i];
        }
    }
    self->nstaged = kept;
    freeReplyObject (r);
    if (self->queued && gl_outbox_flush (self) < 0)
        return -1;
    return delivered;
}

//  --------------------------------------------------------------------------------------------
//  Batched delivery

void
gl_outbox_set_wake (gl_outbox_t *self, gl_outbox_wake_fn *wake, void *arg)
{
    assert (self);
    self->wake = wake;
    self->wake_arg = arg;
}

size_t
gl_outbox_deferred (gl_outbox_t *self)
{
    assert (self);
    return self->queued;
}

//  Publish queue[from .. from + n) (same flags) in one append, then delete their entries in
//  one HDEL. 0, or -1 when the append failed (the entries stay for the sweep).
static int
s_flush_run (gl_outbox_t *self, size_t from, size_t n)
{
    gl_event_t **evs = self->queue + from;
    int flags = self->queue_flags[from];
    int rc = gl_pub_send_batch (self->pub, evs, n, flags);
    if (rc != 0) {
        gl_warn ("outbox: %zu event(s) left in the outbox (%s); the sweep will deliver them", n,
                 rc == GL_PUB_FENCED ? "source name taken over" : "redis unreachable");
        return -1;
    }
    const char *argv[2 + GL_OUTBOX_BATCH_MAX];
    argv[0] = "HDEL";
    argv[1] = self->key;
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = evs[i]->id;
    if (self->clear && self->clear (self->key, argv + 2, n, self->clear_arg) == 0)
        return 0;
    redisReply *r = gl_redis_cmdargv (self->redis, (int) (2 + n), argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR)
        //  Harmless: the sweep finds the events in the log and only deletes the entries.
        gl_warn ("outbox: %zu event(s) published, their outbox entries not yet cleared", n);
    if (r)
        freeReplyObject (r);
    return 0;
}

int
gl_outbox_flush (gl_outbox_t *self)
{
    assert (self);
    int published = 0;
    bool failed = false;
    size_t from = 0;
    while (from < self->queued && !failed) {
        size_t n = 1;
        while (from + n < self->queued && self->queue_flags[from + n] == self->queue_flags[from])
            n++;
        if (s_flush_run (self, from, n) == 0)
            published += (int) n;
        else
            failed = true;      //  keep the order: what follows waits for the sweep too
        from += n;
    }
    for (size_t i = 0; i < self->queued; i++)
        gl_event_destroy (&self->queue[i]);
    self->queued = 0;
    return failed ? -1 : published;
}

int
gl_outbox_defer (gl_outbox_t *self, const gl_event_t *ev, int flags)
{
    assert (self && ev && json_is_object (ev->data));
    if (self->queued == GL_OUTBOX_BATCH_MAX)
        gl_outbox_flush (self);
    gl_event_t *copy = s_copy (ev);
    if (!copy) {
        gl_warn ("outbox: %s %s not queued (out of memory); the sweep will deliver it", ev->type,
                 ev->id);
        return -1;
    }
    self->queue[self->queued] = copy;
    self->queue_flags[self->queued] = flags;
    if (self->queued++ == 0 && self->wake)
        self->wake (self->wake_arg);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Delivery one by one

int
gl_outbox_deliver (gl_outbox_t *self, gl_event_t *ev, int flags)
{
    assert (self && ev);
    if (self->queued)
        gl_outbox_flush (self);
    int rc = gl_pub_send (self->pub, ev, flags);
    if (rc != 0) {
        gl_warn ("outbox: %s %s left in the outbox (%s); the sweep will deliver it", ev->type,
                 ev->id, rc == GL_PUB_FENCED ? "source name taken over" : "redis unreachable");
        return -1;
    }
    redisReply *r = gl_redis_cmd (self->redis, "HDEL %s %s", self->key, ev->id);
    if (!r || r->type == REDIS_REPLY_ERROR)
        //  Harmless: the sweep finds the event in the log and only deletes the entry.
        gl_warn ("outbox: %s %s published, its outbox entry not yet cleared", ev->type, ev->id);
    if (r)
        freeReplyObject (r);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The sweep

//  Looking for an event id in a log, from a sequence number on.
typedef struct {
    const char *id;
    bool found;
    uint64_t last;
} s_find_t;

static int
s_find_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    s_find_t *find = arg;
    find->last = seq;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    if (ev && strcmp (ev->id, find->id) == 0)
        find->found = true;
    gl_event_destroy (&ev);
    return find->found ? -1 : 0;
}

//  1 when id is in src's log after seq from, 0 when not, -1 when Redis cannot be reached.
static int
s_in_log (gl_outbox_t *self, const char *src, uint64_t from, const char *id)
{
    s_find_t find = { .id = id };
    while (true) {
        uint64_t first = 0;
        find.last = 0;
        int64_t n = gl_log_read (self->redis, src, from, 0, S_LOG_CHUNK, s_find_entry, &find,
                                 &first);
        if (n < 0 && !find.found)
            return -1;
        if (find.found)
            return 1;
        if (n < S_LOG_CHUNK || find.last == 0)
            return 0;
        from = find.last + 1;
    }
}

//  1 when another process holds src's lease now (it sweeps its own entries), 0 when not, -1
//  when Redis cannot be reached.
static int
s_src_alive (gl_outbox_t *self, const char *src)
{
    redisReply *r = gl_redis_cmd (self->redis, "HMGET gl:src:{%s} owner until", src);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    bool owned = r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len > 0;
    int64_t until = r->element[1]->type == REDIS_REPLY_STRING
                        ? (int64_t) strtoll (r->element[1]->str, NULL, 10)
                        : 0;
    freeReplyObject (r);
    return owned && until >= gl_now_ms () ? 1 : 0;
}

//  The event an outbox entry holds; NULL when the entry is malformed.
static gl_event_t *
s_entry_event (const char *text, size_t len, int *flags, char *src, size_t srclen, uint64_t *seq)
{
    json_t *entry = json_loadb (text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value (json_object_get (entry, "type"));
    const char *id = json_string_value (json_object_get (entry, "id"));
    const char *corr = json_string_value (json_object_get (entry, "corr"));
    const char *from = json_string_value (json_object_get (entry, "src"));
    json_t *ts = json_object_get (entry, "ts"), *fl = json_object_get (entry, "flags");
    json_t *sq = json_object_get (entry, "seq"), *data = json_object_get (entry, "data");
    gl_event_t *ev = NULL;
    if (type && gl_event_type_valid (type) && id && gl_id_valid (id) && corr
        && strlen (corr) <= GL_EVENT_NAME_MAX && from && gl_event_src_valid (from)
        && json_is_integer (ts) && json_is_integer (fl) && json_is_integer (sq)
        && json_integer_value (sq) >= 0 && json_is_object (data))
        ev = gl_event_new (type);
    if (ev) {
        memcpy (ev->id, id, GL_ID_LEN + 1);
        ev->ts = (int64_t) json_integer_value (ts);
        gl_event_set_corr (ev, corr);
        json_decref (ev->data);
        ev->data = json_incref (data);
        *flags = json_integer_value (fl) == GL_PUB_CRITICAL ? GL_PUB_CRITICAL : 0;
        snprintf (src, srclen, "%s", from);
        *seq = (uint64_t) json_integer_value (sq);
    }
    json_decref (entry);
    return ev;
}

void
gl_outbox_set_clear (gl_outbox_t *self, gl_outbox_clear_fn *clear, void *arg)
{
    assert (self);
    self->clear = clear;
    self->clear_arg = arg;
}

static long
s_held_at (gl_outbox_t *self, const char *id)
{
    for (size_t i = 0; i < self->nheld; i++)
        if (strcmp (self->held[i], id) == 0)
            return (long) i;
    return -1;
}

int
gl_outbox_hold (gl_outbox_t *self, const char *event_id)
{
    assert (self && event_id && strlen (event_id) <= GL_ID_LEN);
    if (self->nheld >= GL_OUTBOX_HOLD_MAX)
        return -1;
    if (!self->held) {
        self->held = calloc (GL_OUTBOX_HOLD_MAX, sizeof *self->held);
        if (!self->held)
            return -1;
    }
    snprintf (self->held[self->nheld++], GL_ID_LEN + 1, "%s", event_id);
    return 0;
}

void
gl_outbox_release (gl_outbox_t *self, const char *event_id)
{
    assert (self && event_id);
    long at = s_held_at (self, event_id);
    if (at < 0)
        return;
    self->nheld--;
    if ((size_t) at != self->nheld)
        memcpy (self->held[at], self->held[self->nheld], GL_ID_LEN + 1);
}

size_t
gl_outbox_held (gl_outbox_t *self)
{
    assert (self);
    return self->nheld;
}

//  Deliver one entry. 1 delivered (or found delivered), 0 left (another live process owns it,
//  or it was set aside), -1 Redis or the publisher failed (stop the sweep).
static int
s_sweep_entry (gl_outbox_t *self, const char *field, const char *text, size_t len)
{
    int flags = 0;
    char src[GL_EVENT_NAME_MAX + 1];
    uint64_t seq = 0;
    gl_event_t *ev = s_entry_event (text, len, &flags, src, sizeof src, &seq);
    if (!ev || strcmp (ev->id, field) != 0) {
        //  Not ours to guess at: set aside for an operator, so the sweep does not stall on it.
        gl_error ("outbox: entry %.32s of %s is malformed; moved to %s", field, self->key,
                  self->bad);
        gl_event_destroy (&ev);
        redisReply *r = gl_redis_cmd (self->redis, "HSET %s %s %b", self->bad, field, text, len);
        if (r)
            freeReplyObject (r);
        r = gl_redis_cmd (self->redis, "HDEL %s %s", self->key, field);
        if (r)
            freeReplyObject (r);
        return 0;
    }
    int rc = 1;
    if (s_held_at (self, ev->id) >= 0) {
        gl_event_destroy (&ev);
        return 0;                       //  its writer delivers it when the reply comes
    }
    if (strcmp (src, gl_pub_src (self->pub)) != 0) {
        int alive = s_src_alive (self, src);
        if (alive != 0)
            rc = alive < 0 ? -1 : 0;
    }
    if (rc == 1) {
        int found = s_in_log (self, src, seq + 1, ev->id);
        if (found < 0)
            rc = -1;
        else if (!found && gl_pub_send (self->pub, ev, flags) != 0)
            rc = -1;
        else {
            if (!found)
                gl_debug ("outbox: %s %s delivered by the sweep", ev->type, ev->id);
            redisReply *r = gl_redis_cmd (self->redis, "HDEL %s %s", self->key, ev->id);
            rc = r && r->type == REDIS_REPLY_INTEGER ? 1 : -1;
            if (r)
                freeReplyObject (r);
            if (!found && self->m_swept)
                gl_metric_inc (self->m_swept, 1);
        }
    }
    gl_event_destroy (&ev);
    return rc;
}

int
gl_outbox_sweep (gl_outbox_t *self)
{
    assert (self);
    //  What is queued was not sent yet: sending it from here and again from the queue would
    //  double it, so the queue goes first.
    if (self->queued && gl_outbox_flush (self) < 0)
        return -1;
    char cursor[32] = "0";
    int delivered = 0, seen = 0;
    do {
        redisReply *r = gl_redis_cmd (self->redis, "HSCAN %s %s COUNT 100", self->key, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[0]->type != REDIS_REPLY_STRING
            || r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            return -1;
        }
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *items = r->element[1];
        for (size_t i = 0; i + 1 < items->elements; i += 2) {
            const redisReply *k = items->element[i], *v = items->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            seen++;
            int rc = s_sweep_entry (self, k->str, v->str, v->len);
            if (rc < 0) {
                freeReplyObject (r);
                self->pending = seen - delivered;
                if (self->m_pending)
                    gl_metric_set (self->m_pending, self->pending);
                return -1;
            }
            delivered += rc;
        }
        freeReplyObject (r);
    } while (strcmp (cursor, "0") != 0 && seen < S_SWEEP_MAX);
    //  Whatever was staged and committed, the sweep has just delivered.
    if (strcmp (cursor, "0") == 0)
        s_staged_clear (self);
    self->pending = seen - delivered;
    if (self->m_pending)
        gl_metric_set (self->m_pending, self->pending);
    return delivered;
}
