/*  gl_sub — see gl_sub.h. Read with docs/events.md ("The reliability protocol").

    Per source we keep two cursors: `done` is what Redis holds (committed), `pos` is how far this
    process has got (applied into the pending transaction, or skipped). A commit moves done to
    pos for every source touched, with a compare-and-set on done, in one Lua script together
    with the handlers' writes.
*/
#include "gl/gl_sub.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define GL_SUB_MAX_SOURCES 1024
#define GL_SUB_DRAIN_MAX 4096       //  frames per gl_sub_handle call
#define GL_SUB_FETCH_CHUNK 1000     //  log entries per XRANGE
#define GL_SUB_TICK_BUDGET 20000    //  log entries per gl_sub_tick (stays responsive)
#define GL_SUB_RETRY_MS 500

size_t gl_tx_flat (gl_tx_t *self, const char ***argv, size_t **lens);
void gl_tx_snapshot (gl_tx_t *self, size_t snap[3]);
void gl_tx_restore (gl_tx_t *self, const size_t snap[3]);
void gl_tx_append (gl_tx_t *self, gl_tx_t *other);

typedef struct {
    char name[GL_EVENT_NAME_MAX + 1];
    gl_cursor_t done;           //  committed in Redis
    bool has_done;              //  a cursor exists in Redis
    gl_cursor_t pos;            //  reached in this process
    bool dirty;                 //  pos != done: part of the next commit
    uint64_t head;              //  latest seq known to exist (frame, heartbeat or poll)
    uint64_t polled;            //  the log's head at the last poll (see s_poll_heads)
    uint64_t epoch;             //  the source's epoch as last seen
    int64_t heard;              //  mono ms of the last frame from it
    int64_t blocked_until;      //  mono ms: handler asked to retry
    bool silent;
    int64_t lag_warned;
} s_source_t;

struct _gl_sub_t {
    gl_redis_t *redis;
    char group[GL_EVENT_NAME_MAX + 1];
    char curkey[128];
    char leasekey[128];
    char token[GL_ID_LEN + 1];
    gl_sub_opts_t opts;
    char *endpoints;
    char **prefixes;
    size_t nprefixes;
    char **srcprefixes;             //  opts.sources, split
    size_t nsrcprefixes;
    gl_sub_apply_fn *fn;
    void *arg;
    zsock_t *sock;
    bool active;
    s_source_t *sources;
    size_t nsources;
    gl_tx_t *tx;
    size_t pending;             //  events applied into tx, not yet committed
    int64_t next_lease;
    int64_t next_poll;
    int64_t next_sources;
    bool fresh;                 //  no poll since becoming active: trust the next one at once
    uint64_t budget;            //  log entries left in this tick
    gl_sub_stats_t stats;
};

//  Commit: cursors CAS, then the handlers' commands, then the new cursors.
//  KEYS[1] gl:cur:{group}; ARGV ncur, (src, expected, new)*, then commands as (argc, args...)*.
static gl_redis_script_t s_commit_script = { .source =
    "local n = tonumber(ARGV[1])\n"
    "local same, done = 0, 0\n"
    "for c = 0, n - 1 do\n"
    "  local i = 2 + 3 * c\n"
    "  local cur = redis.call('HGET', KEYS[1], ARGV[i]) or ''\n"
    "  if cur == ARGV[i + 1] then same = same + 1\n"
    "  elseif cur == ARGV[i + 2] then done = done + 1\n"
    "  else return redis.error_reply('CURSOR ' .. ARGV[i] .. ' ' .. cur) end\n"
    "end\n"
    "if done == n and n > 0 then return 0 end\n"
    "if same ~= n then return redis.error_reply('CURSOR mixed') end\n"
    "local i = 2 + 3 * n\n"
    "while i <= #ARGV do\n"
    "  local argc = tonumber(ARGV[i])\n"
    "  redis.call(unpack(ARGV, i + 1, i + argc))\n"
    "  i = i + argc + 1\n"
    "end\n"
    "for c = 0, n - 1 do\n"
    "  local j = 2 + 3 * c\n"
    "  redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 2])\n"
    "end\n"
    "return 1\n" };

void
gl_sub_opts_default (gl_sub_opts_t *opts)
{
    memset (opts, 0, sizeof *opts);
    opts->batch = 1;
    opts->rcvhwm = 100000;
    opts->lease_ms = 10000;
    opts->poll_ms = 1000;
    opts->silent_ms = 5000;
    opts->lag_warn = 10000;
}

//  Split a comma-separated list into *out (n entries).
static void
s_split_list (const char *list, char ***out, size_t *n)
{
    if (!list || !*list)
        return;
    char *copy = strdup (list);
    assert (copy);
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    *out = calloc (cap, sizeof (char *));
    assert (*out);
    char *save = NULL;
    for (char *tok = strtok_r (copy, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
        if (*tok)
            (*out)[(*n)++] = strdup (tok);
    free (copy);
}

static void
s_split_prefixes (gl_sub_t *self, const char *list)
{
    s_split_list (list, &self->prefixes, &self->nprefixes);
}

//  True when this group follows source name (opts.sources).
static bool
s_follows (gl_sub_t *self, const char *name)
{
    if (self->nsrcprefixes == 0)
        return true;
    for (size_t i = 0; i < self->nsrcprefixes; i++)
        if (strncmp (name, self->srcprefixes[i], strlen (self->srcprefixes[i])) == 0)
            return true;
    return false;
}

static bool
s_wanted (gl_sub_t *self, const char *type)
{
    if (self->nprefixes == 0)
        return true;
    for (size_t i = 0; i < self->nprefixes; i++)
        if (strncmp (type, self->prefixes[i], strlen (self->prefixes[i])) == 0)
            return true;
    return false;
}

gl_sub_t *
gl_sub_new (gl_redis_t *redis, const char *group, const gl_sub_opts_t *opts, gl_sub_apply_fn *fn,
            void *arg, char *err, size_t errlen)
{
    assert (redis && group && fn);
    if (!gl_event_src_valid (group)) {
        snprintf (err, errlen, "invalid consumer group name (use a-z, 0-9, _ and -)");
        return NULL;
    }
    gl_sub_t *self = calloc (1, sizeof (gl_sub_t));
    assert (self);
    self->redis = redis;
    if (opts)
        self->opts = *opts;
    else
        gl_sub_opts_default (&self->opts);
    if (self->opts.batch < 1)
        self->opts.batch = 1;
    snprintf (self->group, sizeof self->group, "%s", group);
    snprintf (self->curkey, sizeof self->curkey, "gl:cur:{%s}", group);
    snprintf (self->leasekey, sizeof self->leasekey, "gl:lease:{%s}", group);
    gl_id_new (self->token);
    self->endpoints = self->opts.endpoints && *self->opts.endpoints
                          ? strdup (self->opts.endpoints) : NULL;
    s_split_prefixes (self, self->opts.prefixes);
    s_split_list (self->opts.sources, &self->srcprefixes, &self->nsrcprefixes);
    self->fn = fn;
    self->arg = arg;
    self->tx = gl_tx_new ();
    self->sources = calloc (GL_SUB_MAX_SOURCES, sizeof (s_source_t));
    assert (self->tx && self->sources);
    if (self->opts.curve && self->endpoints
        && gl_curve_check_endpoints (self->opts.curve, self->endpoints, err, errlen) != 0) {
        gl_sub_destroy (&self);
        return NULL;
    }
    //  What the group follows, before it is registered: the trimmer must never see the group
    //  without its list and hold back (or, worse, release) a source on a wrong guess.
    const char *list = self->opts.sources;
    redisReply *r = list && *list
                        ? gl_redis_cmd (redis, "HSET gl:consumer_sources %s %s", group, list)
                        : gl_redis_cmd (redis, "HDEL gl:consumer_sources %s", group);
    if (r) {
        freeReplyObject (r);
        r = gl_redis_cmd (redis, "SADD gl:consumers %s", group);
    }
    if (!r) {
        snprintf (err, errlen, "redis unreachable: %s", gl_redis_errstr (redis));
        gl_sub_destroy (&self);
        return NULL;
    }
    freeReplyObject (r);
    return self;
}

void
gl_sub_destroy (gl_sub_t **self_p)
{
    assert (self_p);
    gl_sub_t *self = *self_p;
    if (!self)
        return;
    if (self->active)
        gl_lease_release (self->redis, self->leasekey, self->token);
    zsock_destroy (&self->sock);
    for (size_t i = 0; i < self->nprefixes; i++)
        free (self->prefixes[i]);
    free (self->prefixes);
    for (size_t i = 0; i < self->nsrcprefixes; i++)
        free (self->srcprefixes[i]);
    free (self->srcprefixes);
    free (self->endpoints);
    gl_tx_destroy (&self->tx);
    free (self->sources);
    free (self);
    *self_p = NULL;
}

static s_source_t *
s_source (gl_sub_t *self, const char *name, bool create)
{
    for (size_t i = 0; i < self->nsources; i++)
        if (strcmp (self->sources[i].name, name) == 0)
            return &self->sources[i];
    if (!create || !s_follows (self, name))
        return NULL;
    if (self->nsources == GL_SUB_MAX_SOURCES) {
        gl_error ("bus: %s follows %d sources already; ignoring another", self->group,
                  GL_SUB_MAX_SOURCES);
        return NULL;
    }
    s_source_t *s = &self->sources[self->nsources++];
    memset (s, 0, sizeof *s);
    snprintf (s->name, sizeof s->name, "%s", name);
    s->heard = gl_mono_ms ();
    return s;
}

//  Forget uncommitted progress: everything since the last commit is replayed from the logs.
static void
s_rollback (gl_sub_t *self)
{
    gl_tx_reset (self->tx);
    self->pending = 0;
    for (size_t i = 0; i < self->nsources; i++) {
        self->sources[i].pos = self->sources[i].done;
        self->sources[i].dirty = false;
    }
}

static void
s_on_cursor (void *arg, const char *src, gl_cursor_t c)
{
    gl_sub_t *self = arg;
    s_source_t *s = s_source (self, src, true);
    if (s) {
        s->done = s->pos = c;
        s->has_done = true;
        s->dirty = false;
        if (c.epoch > s->epoch)
            s->epoch = c.epoch;
    }
}

static int
s_reload (gl_sub_t *self)
{
    gl_tx_reset (self->tx);
    self->pending = 0;
    self->nsources = 0;
    return gl_cursors_load (self->redis, self->group, s_on_cursor, self);
}

//  Write every dirty cursor (and the transaction) in one step.
static int
s_commit (gl_sub_t *self, gl_tx_t *extra)
{
    size_t ndirty = 0;
    for (size_t i = 0; i < self->nsources; i++)
        ndirty += self->sources[i].dirty;
    gl_tx_t *tx = self->tx;
    if (extra)
        gl_tx_append (tx, extra);
    if (ndirty == 0 && gl_tx_count (tx) == 0)
        return 0;
    const char **cmdv = NULL;
    size_t *cmdl = NULL;
    size_t ncmd = gl_tx_flat (tx, &cmdv, &cmdl);
    size_t argc = 2 + 3 * ndirty + ncmd;
    const char **argv = malloc (sizeof (char *) * argc);
    size_t *lens = malloc (sizeof (size_t) * argc);
    char (*text)[2][48] = calloc (ndirty + 1, sizeof *text);
    assert (argv && lens && text);
    char count[16];
    snprintf (count, sizeof count, "%zu", ndirty);
    argv[0] = self->curkey, lens[0] = strlen (self->curkey);
    argv[1] = count, lens[1] = strlen (count);
    size_t k = 2, d = 0;
    for (size_t i = 0; i < self->nsources; i++) {
        s_source_t *s = &self->sources[i];
        if (!s->dirty)
            continue;
        if (s->has_done)
            gl_cursor_format (s->done, text[d][0], sizeof text[d][0]);
        gl_cursor_format (s->pos, text[d][1], sizeof text[d][1]);
        argv[k] = s->name, lens[k++] = strlen (s->name);
        argv[k] = text[d][0], lens[k++] = strlen (text[d][0]);
        argv[k] = text[d][1], lens[k++] = strlen (text[d][1]);
        d++;
    }
    for (size_t i = 0; i < ncmd; i++)
        argv[k] = cmdv[i], lens[k++] = cmdl[i];

    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc == -1; attempt++) {
        redisReply *r = gl_redis_eval (self->redis, &s_commit_script, 1, (int) argc, argv, lens);
        if (!r)
            continue;       //  unknown outcome: the CAS makes the retry safe
        if (r->type == REDIS_REPLY_INTEGER)
            rc = 0;
        else if (gl_redis_reply_is_error (r, "CURSOR")) {
            self->stats.conflicts++;
            gl_warn ("bus: %s: another replica moved the cursors; reloading", self->group);
            rc = -2;
        }
        else {
            gl_error ("bus: %s: commit failed: %s", self->group,
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            rc = -3;
        }
        freeReplyObject (r);
    }
    free (argv);
    free (lens);
    free (text);
    free (cmdv);
    free (cmdl);
    if (rc == 0) {
        for (size_t i = 0; i < self->nsources; i++)
            if (self->sources[i].dirty) {
                self->sources[i].done = self->sources[i].pos;
                self->sources[i].has_done = true;
                self->sources[i].dirty = false;
            }
        self->stats.applied += self->pending;
        self->pending = 0;
        gl_tx_reset (self->tx);
        return 0;
    }
    if (rc == -2)
        s_reload (self);
    else
        s_rollback (self);
    return -1;
}

//  Offer one decoded event in order. Returns 0 when taken, 1 when it must wait (handler retry),
//  -1 on a Redis failure.
static int
s_take (gl_sub_t *self, s_source_t *s, const gl_event_t *ev)
{
    if (s_wanted (self, ev->type)) {
        size_t snap[3];
        gl_tx_snapshot (self->tx, snap);
        if (self->fn (self->arg, ev, self->tx) != 0) {
            //  Drop what the handler queued for this event only; earlier events stay pending.
            gl_tx_restore (self->tx, snap);
            self->stats.retries++;
            s->blocked_until = gl_mono_ms () + GL_SUB_RETRY_MS;
            return 1;
        }
        self->pending++;
    }
    else
        self->stats.skipped++;
    s->pos.seq = ev->seq;
    s->pos.epoch = s->epoch;
    s->dirty = true;
    if (!self->opts.manual_checkpoint && self->pending >= (size_t) self->opts.batch)
        return s_commit (self, NULL) == 0 ? 0 : -1;
    return 0;
}

typedef struct {
    gl_sub_t *self;
    s_source_t *src;
    int rc;
} s_fetch_t;

static int
s_on_log_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    s_fetch_t *f = arg;
    gl_sub_t *self = f->self;
    self->stats.fetched++;
    if (self->budget)
        self->budget--;
    if (seq != f->src->pos.seq + 1)
        return -1;      //  a hole in the log: handled by the caller
    gl_event_err_t why;
    char err[160];
    gl_event_t *ev = gl_event_decode (bytes, len, &why, err, sizeof err);
    if (!ev || ev->seq != seq || strcmp (ev->src, f->src->name) != 0) {
        //  Our own log holds a frame we cannot read: a bug or tampering. Skipping it loses it
        //  for this group; stopping would stop the service. Skip loudly and count.
        gl_error ("bus: %s: log entry %s/%" PRIu64 " unreadable (%s); skipped", self->group,
                  f->src->name, seq, ev ? "envelope does not match its log position" : err);
        self->stats.rejected[ev ? GL_EVENT_ERR_SHAPE : why]++;
        gl_event_destroy (&ev);
        f->src->pos.seq = seq;
        f->src->dirty = true;
        return 0;
    }
    f->rc = s_take (self, f->src, ev);
    gl_event_destroy (&ev);
    return f->rc == 0 && self->budget > 0 ? 0 : -1;
}

//  Read the log from pos+1 up to `upto` (0: the end), within the tick budget.
//  Returns 0 when caught up to upto (or out of budget), 1 when blocked, -1 on Redis failure.
static int
s_catch_up (gl_sub_t *self, s_source_t *s, uint64_t upto)
{
    if (s->blocked_until > gl_mono_ms ())
        return 1;
    while ((upto == 0 || s->pos.seq < upto) && self->budget > 0) {
        s_fetch_t f = { self, s, 0 };
        uint64_t from = s->pos.seq + 1;
        uint64_t first_avail = 0;
        int64_t got = gl_log_read (self->redis, s->name, from, upto, GL_SUB_FETCH_CHUNK,
                                   s_on_log_entry, &f, &first_avail);
        if (got < 0 || f.rc < 0)
            return -1;
        if (f.rc == 1)
            return 1;
        if (s->pos.seq >= from)
            continue;       //  progress made
        if (first_avail > from) {
            //  Trimmed before we applied it: only possible for a group that was not registered
            //  when the log was trimmed, or after an operator's forced trim. Loud, counted.
            if (s->has_done || s->pos.seq > 0)
                gl_error ("bus: %s: events %" PRIu64 "..%" PRIu64 " of %s were trimmed before "
                          "this group applied them; they are in the archive",
                          self->group, from, first_avail - 1, s->name);
            else
                gl_info ("bus: %s: new group starts %s at %" PRIu64 " (earlier events archived)",
                         self->group, s->name, first_avail);
            if (s->has_done || s->pos.seq > 0)
                self->stats.lost += first_avail - from;
            s->pos.seq = first_avail - 1;
            s->dirty = true;
            continue;
        }
        break;          //  nothing more in the log yet
    }
    return 0;
}

static void
s_check_epoch (gl_sub_t *self, s_source_t *s, uint64_t epoch)
{
    if (epoch <= s->epoch)
        return;
    gl_srcinfo_t info;
    if (gl_srcinfo_read (self->redis, s->name, &info) != 0 || info.epoch < epoch)
        return;
    if (s->pos.seq > info.epoch_base) {
        gl_error ("bus: %s: %s started epoch %" PRIu64 " at %" PRIu64 "; events after it that "
                  "this group applied were lost by Redis and are applied again from the new log",
                  self->group, s->name, info.epoch, info.epoch_base);
        s->pos.seq = info.epoch_base;
    }
    s->epoch = info.epoch;
    s->pos.epoch = info.epoch;
    s->dirty = true;
}

static void
s_on_heartbeat (gl_sub_t *self, const void *bytes, size_t len)
{
    char err[128];
    json_t *hb = gl_mp_decode (bytes, len, NULL, err, sizeof err);
    const char *src = hb ? json_string_value (json_object_get (hb, "src")) : NULL;
    json_t *seq = hb ? json_object_get (hb, "seq") : NULL;
    json_t *epoch = hb ? json_object_get (hb, "epoch") : NULL;
    if (!src || !gl_event_src_valid (src) || !json_is_integer (seq) || json_integer_value (seq) < 0
        || !json_is_integer (epoch) || json_integer_value (epoch) < 0) {
        self->stats.rejected[hb ? GL_EVENT_ERR_SHAPE : GL_EVENT_ERR_MSGPACK]++;
        json_decref (hb);
        return;
    }
    s_source_t *s = s_source (self, src, true);
    if (s) {
        s->heard = gl_mono_ms ();
        if (s->silent)
            gl_info ("bus: %s: source %s is heard again", self->group, s->name);
        s->silent = false;
        s_check_epoch (self, s, (uint64_t) json_integer_value (epoch));
        if ((uint64_t) json_integer_value (seq) > s->head)
            s->head = (uint64_t) json_integer_value (seq);
    }
    json_decref (hb);
}

//  One live frame pair. Returns -1 only on a Redis failure.
static int
s_on_frame (gl_sub_t *self, zmq_msg_t *topic, zmq_msg_t *body)
{
    size_t tlen = zmq_msg_size (topic);
    const char *t = zmq_msg_data (topic);
    if (tlen == strlen (GL_HEARTBEAT_TOPIC) && memcmp (t, GL_HEARTBEAT_TOPIC, tlen) == 0) {
        s_on_heartbeat (self, zmq_msg_data (body), zmq_msg_size (body));
        return 0;
    }
    gl_event_err_t why;
    char err[160];
    gl_event_t *ev = gl_event_decode (zmq_msg_data (body), zmq_msg_size (body), &why, err,
                                      sizeof err);
    if (!ev) {
        self->stats.rejected[why]++;
        gl_debug ("bus: %s: frame dropped: %s", self->group, err);
        return 0;
    }
    if (tlen != strlen (ev->type) || memcmp (t, ev->type, tlen) != 0 || ev->seq == 0) {
        self->stats.rejected[GL_EVENT_ERR_SHAPE]++;
        gl_event_destroy (&ev);
        return 0;
    }
    int rc = 0;
    s_source_t *s = s_source (self, ev->src, true);
    if (!s) {
        gl_event_destroy (&ev);
        return 0;
    }
    s->heard = gl_mono_ms ();
    if (ev->seq > s->head)
        s->head = ev->seq;
    if (ev->seq <= s->pos.seq)
        self->stats.duplicates++;
    else if (s->blocked_until > gl_mono_ms ())
        ;       //  left in the log for the retry
    else {
        if (ev->seq > s->pos.seq + 1) {
            self->stats.gaps++;
            self->budget = GL_SUB_TICK_BUDGET;
            rc = s_catch_up (self, s, ev->seq - 1);
        }
        if (rc == 0 && ev->seq == s->pos.seq + 1)
            rc = s_take (self, s, ev) < 0 ? -1 : 0;
    }
    gl_event_destroy (&ev);
    return rc < 0 ? -1 : 0;
}

int
gl_sub_handle (gl_sub_t *self)
{
    if (!self->sock || !self->active)
        return 0;
    void *h = zsock_resolve (self->sock);
    int rc = 0;
    for (int i = 0; i < GL_SUB_DRAIN_MAX && rc == 0; i++) {
        zmq_msg_t topic, body;
        zmq_msg_init (&topic);
        if (zmq_msg_recv (&topic, h, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&topic);
            break;
        }
        self->stats.received++;
        if (!zmq_msg_more (&topic)) {
            self->stats.rejected[GL_EVENT_ERR_SHAPE]++;
            zmq_msg_close (&topic);
            continue;
        }
        zmq_msg_init (&body);
        zmq_msg_recv (&body, h, 0);
        bool extra = zmq_msg_more (&body);
        while (zmq_msg_more (&body)) {      //  frames beyond two: drain and reject
            zmq_msg_close (&body);
            zmq_msg_init (&body);
            zmq_msg_recv (&body, h, 0);
        }
        if (extra)
            self->stats.rejected[GL_EVENT_ERR_SHAPE]++;
        else
            rc = s_on_frame (self, &topic, &body);
        zmq_msg_close (&topic);
        zmq_msg_close (&body);
    }
    if (rc == 0 && !self->opts.manual_checkpoint && self->pending > 0)
        rc = s_commit (self, NULL);
    return rc;
}

static void
s_deactivate (gl_sub_t *self)
{
    zsock_destroy (&self->sock);
    s_rollback (self);
    self->nsources = 0;
    self->active = false;
}

static int
s_activate (gl_sub_t *self)
{
    //  Connect first, then load cursors and catch up: frames that arrive meanwhile are either
    //  behind the cursor (dropped) or ahead of it (a gap, fetched from the log).
    if (self->endpoints) {
        self->sock = zsock_new (ZMQ_SUB);
        assert (self->sock);
        zsock_set_rcvhwm (self->sock, self->opts.rcvhwm);
        zsock_set_linger (self->sock, 0);
        zsock_set_subscribe (self->sock, "");
        char err[256];
        if (gl_curve_connect (self->opts.curve, self->sock, self->endpoints, err, sizeof err)
            != 0)
            gl_error ("bus: %s: cannot connect to some of its endpoints: %s", self->group, err);
    }
    if (s_reload (self) != 0) {
        zsock_destroy (&self->sock);
        return -1;
    }
    self->active = true;
    self->fresh = true;
    self->next_poll = 0;
    self->next_sources = 0;
    gl_info ("bus: %s is active (%zu sources with cursors)", self->group, self->nsources);
    return 0;
}

static int
s_lease (gl_sub_t *self, int64_t mono)
{
    if (mono < self->next_lease)
        return 0;
    int held = gl_lease_acquire (self->redis, self->leasekey, self->token, gl_now_ms (),
                                 self->opts.lease_ms, NULL);
    if (held < 0)
        return -1;
    self->next_lease = mono + self->opts.lease_ms / 3;
    if (held == 1 && !self->active)
        return s_activate (self);
    if (held == 0 && self->active) {
        gl_warn ("bus: %s: lease lost to another replica; standing by", self->group);
        s_deactivate (self);
    }
    return 0;
}

static int
s_refresh_sources (gl_sub_t *self)
{
    char **names = gl_sources_list (self->redis);
    if (!names)
        return -1;
    for (size_t i = 0; names[i]; i++) {
        s_source (self, names[i], true);
        free (names[i]);
    }
    free (names);
    return 0;
}

//  Poll every source's head in one pipeline; the safety net when PUB frames and heartbeats
//  are lost or no endpoints are configured.
static int
s_poll_heads (gl_sub_t *self)
{
    for (size_t i = 0; i < self->nsources; i++)
        if (gl_redis_append (self->redis, "HMGET gl:src:{%s} seq epoch", self->sources[i].name) != 0)
            return -1;
    for (size_t i = 0; i < self->nsources; i++) {
        redisReply *r = gl_redis_reply (self->redis);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            long long seq = 0, epoch = 0;
            gl_redis_reply_int (r->element[0], &seq);
            gl_redis_reply_int (r->element[1], &epoch);
            //  The log's head runs ahead of the live stream by the events in flight (appended,
            //  not yet published or received). Fetching up to it at once races the socket:
            //  the same events are then applied from the log and dropped later as duplicates,
            //  and the live ones wait behind the fetch. So a polled head is acted on one poll
            //  later (events that existed poll_ms ago and never arrived were lost), except
            //  right after activation and when there is no socket to deliver anything.
            s_source_t *s = &self->sources[i];
            uint64_t due = (self->fresh || !self->sock) ? (uint64_t) seq : s->polled;
            s->polled = (uint64_t) seq;
            if (due > s->head)
                s->head = due;
            freeReplyObject (r);
            s_check_epoch (self, s, (uint64_t) epoch);
        }
        else
            freeReplyObject (r);
    }
    return 0;
}

int64_t
gl_sub_tick (gl_sub_t *self)
{
    int64_t mono = gl_mono_ms ();
    if (s_lease (self, mono) != 0)
        return GL_SUB_RETRY_MS;
    if (!self->active)
        return self->opts.lease_ms / 3;
    if (mono >= self->next_sources) {
        if (s_refresh_sources (self) != 0)
            return GL_SUB_RETRY_MS;
        self->next_sources = mono + 5 * self->opts.poll_ms;
    }
    if (mono >= self->next_poll) {
        if (s_poll_heads (self) != 0)
            return GL_SUB_RETRY_MS;
        self->next_poll = mono + self->opts.poll_ms;
        self->fresh = false;
    }
    self->budget = GL_SUB_TICK_BUDGET;
    bool more = false;
    uint64_t lag = 0;
    for (size_t i = 0; i < self->nsources; i++) {
        s_source_t *s = &self->sources[i];
        if (s->head > s->pos.seq) {
            uint64_t behind = s->head - s->pos.seq;
            lag += behind;
            if (behind > self->opts.lag_warn && mono - s->lag_warned > 10000) {
                gl_warn ("bus: %s is %" PRIu64 " events behind %s; recovering from the log",
                         self->group, behind, s->name);
                s->lag_warned = mono;
            }
            //  Up to the known head only: what is appended meanwhile comes live.
            if (s_catch_up (self, s, s->head) < 0)
                return GL_SUB_RETRY_MS;
            if (s->head > s->pos.seq && s->blocked_until <= mono)
                more = more || self->budget == 0;
        }
        if (!s->silent && mono - s->heard > self->opts.silent_ms && s->head > 0) {
            gl_warn ("bus: %s: no heartbeat from %s for %" PRId64 " ms", self->group, s->name,
                     mono - s->heard);
            s->silent = true;
        }
    }
    self->stats.lag = lag;
    //  Cursor advances over skipped events are written here, at most once per tick.
    if (!self->opts.manual_checkpoint && s_commit (self, NULL) != 0)
        return GL_SUB_RETRY_MS;
    if (more)
        return 0;
    int64_t next = self->next_poll - gl_mono_ms ();
    return next > 0 ? next : 0;
}

int
gl_sub_run_once (gl_sub_t *self, int timeout_ms)
{
    int64_t due = gl_sub_tick (self);
    if (due < timeout_ms)
        timeout_ms = (int) due;
    if (self->sock && timeout_ms >= 0) {
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout_ms) > 0)
            return gl_sub_handle (self);
    }
    else if (timeout_ms > 0)
        gl_sleep_ms (timeout_ms);
    return 0;
}

zsock_t *
gl_sub_sock (gl_sub_t *self)
{
    return self->active ? self->sock : NULL;
}

bool
gl_sub_active (gl_sub_t *self)
{
    return self->active;
}

int
gl_sub_checkpoint (gl_sub_t *self, gl_tx_t *extra)
{
    assert (self->opts.manual_checkpoint);
    int rc = s_commit (self, extra);
    if (rc == 0 && extra)
        gl_tx_reset (extra);
    return rc;
}

gl_cursor_t
gl_sub_cursor (gl_sub_t *self, const char *src)
{
    s_source_t *s = s_source (self, src, false);
    return s ? s->pos : (gl_cursor_t) { 0, 0 };
}

gl_sub_stats_t
gl_sub_stats (gl_sub_t *self)
{
    return self->stats;
}
