/*  gl_pub — see gl_pub.h. The atomic step is gl_log_append's Lua script (gl_buslog.c). */
#include "gl/gl_pub.h"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define GL_PUB_MAX_BATCH 1000

struct _gl_pub_t {
    gl_redis_t *redis;          //  borrowed
    zsock_t *sock;              //  PUB, or NULL
    char src[GL_EVENT_NAME_MAX + 1];
    char srckey[128];
    char token[GL_ID_LEN + 1];
    char endpoint[256];
    gl_pub_opts_t opts;
    uint64_t seq;
    uint64_t epoch;
    int64_t next_tick;          //  monotonic ms
    bool fenced;
    //  A batch whose append outcome is unknown (Redis unreachable past the reconnect budget):
    //  its first seq, size, and the first envelope's bytes, to recognise it in the log later.
    uint64_t unsure_first;
    size_t unsure_n;
    char *unsure_bytes;
    size_t unsure_len;
    int replicas;               //  connected replicas, as last seen
    int64_t replicas_checked;   //  monotonic ms of that look
    gl_pub_stats_t stats;
};

void
gl_pub_opts_default (gl_pub_opts_t *opts)
{
    memset (opts, 0, sizeof *opts);
    opts->lease_ms = 10000;
    opts->heartbeat_ms = 1000;
    opts->sndhwm = 100000;
    opts->wait_replicas = 1;
    opts->wait_replicas_ms = 500;
}

static int
s_bind (gl_pub_t *self, char *err, size_t errlen)
{
    if (!self->opts.bind || !*self->opts.bind)
        return 0;
    self->sock = zsock_new (ZMQ_PUB);
    if (!self->sock) {
        snprintf (err, errlen, "cannot create PUB socket");
        return -1;
    }
    zsock_set_sndhwm (self->sock, self->opts.sndhwm);
    zsock_set_linger (self->sock, 0);
    if (self->opts.curve && gl_curve_server (self->opts.curve, self->sock) != 0) {
        snprintf (err, errlen, "CURVE: the publisher needs an allow directory");
        return -1;
    }
    if (zsock_bind (self->sock, "%s", self->opts.bind) < 0) {
        snprintf (err, errlen, "cannot bind PUB %s: %s", self->opts.bind, zmq_strerror (errno));
        return -1;
    }
    char *last = zsock_last_endpoint (self->sock);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", last ? last : self->opts.bind);
    free (last);
    return 0;
}

//  Epoch bookkeeping on start: if Redis says our log is shorter than the last seq we can have
//  published... we cannot know across a restart, so a new process trusts Redis; epochs are
//  bumped when a running publisher sees the log go backwards (s_log_went_back).
static int
s_load (gl_pub_t *self)
{
    gl_srcinfo_t info;
    if (gl_srcinfo_read (self->redis, self->src, &info) != 0)
        return -1;
    self->seq = info.seq;
    self->epoch = info.epoch;
    redisReply *r = gl_redis_cmd (self->redis, "SADD gl:sources %s", self->src);
    if (!r)
        return -1;
    freeReplyObject (r);
    return 0;
}

gl_pub_t *
gl_pub_new (gl_redis_t *redis, const char *src, const gl_pub_opts_t *opts, char *err,
            size_t errlen)
{
    assert (redis && src);
    if (!gl_event_src_valid (src)) {
        snprintf (err, errlen, "invalid source name (use a-z, 0-9, _ and -)");
        return NULL;
    }
    gl_pub_t *self = calloc (1, sizeof (gl_pub_t));
    assert (self);
    self->redis = redis;
    if (opts)
        self->opts = *opts;
    else
        gl_pub_opts_default (&self->opts);
    snprintf (self->src, sizeof self->src, "%s", src);
    snprintf (self->srckey, sizeof self->srckey, "gl:src:{%s}", src);
    gl_id_new (self->token);

    int64_t deadline = gl_mono_ms () + self->opts.wait_ms;
    int held;
    int64_t until = 0;
    while ((held = gl_lease_acquire (redis, self->srckey, self->token, gl_now_ms (),
                                     self->opts.lease_ms, &until))
               == 0
           && gl_mono_ms () < deadline)
        gl_sleep_ms (100);
    if (held != 1) {
        if (held == 0)
            snprintf (err, errlen, "source %s is held by another live process until %" PRId64,
                      src, until);
        else
            snprintf (err, errlen, "redis unreachable: %s", gl_redis_errstr (redis));
        free (self);
        return NULL;
    }
    if (s_load (self) != 0) {
        snprintf (err, errlen, "redis unreachable: %s", gl_redis_errstr (redis));
        gl_pub_destroy (&self);
        return NULL;
    }
    if (s_bind (self, err, errlen) != 0) {
        gl_pub_destroy (&self);
        return NULL;
    }
    gl_info ("bus: publishing as %s from seq %" PRIu64 " epoch %" PRIu64 " on %s", self->src,
             self->seq, self->epoch, self->endpoint[0] ? self->endpoint : "(log only)");
    return self;
}

gl_pub_t *
gl_pub_new_auto (gl_redis_t *redis, const char *service, int max, const gl_pub_opts_t *opts,
                 char *err, size_t errlen)
{
    gl_pub_opts_t o;
    if (opts)
        o = *opts;
    else
        gl_pub_opts_default (&o);
    o.wait_ms = 0;
    for (int i = 1; i <= max; i++) {
        char name[GL_EVENT_NAME_MAX + 1];
        snprintf (name, sizeof name, "%s-%d", service, i);
        gl_pub_t *self = gl_pub_new (redis, name, &o, err, errlen);
        if (self)
            return self;
        if (!strstr (err, "held by another"))
            return NULL;
    }
    snprintf (err, errlen, "all %d names of %s are held by live processes", max, service);
    return NULL;
}

void
gl_pub_destroy (gl_pub_t **self_p)
{
    assert (self_p);
    gl_pub_t *self = *self_p;
    if (!self)
        return;
    if (!self->fenced)
        gl_lease_release (self->redis, self->srckey, self->token);
    zsock_destroy (&self->sock);
    free (self->unsure_bytes);
    free (self);
    *self_p = NULL;
}

//  The log holds fewer events than we appended: Redis lost acknowledged writes (failover with
//  asynchronous replication, or a crash under appendfsync everysec). Start a new epoch whose
//  base is the log's last seq, so subscribers that applied the lost events know to re-apply
//  from there (docs/events.md, "Epochs").
static int
s_new_epoch (gl_pub_t *self, uint64_t log_last)
{
    gl_error ("bus: log of %s went back from %" PRIu64 " to %" PRIu64
              " (Redis lost acknowledged writes); starting a new epoch",
              self->src, self->seq, log_last);
    redisReply *r = gl_redis_cmd (self->redis, "HINCRBY %s epoch 1", self->srckey);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    self->epoch = (uint64_t) r->integer;
    freeReplyObject (r);
    r = gl_redis_cmd (self->redis, "HSET %s epoch_base %" PRIu64, self->srckey, log_last);
    if (!r)
        return -1;
    freeReplyObject (r);
    self->seq = log_last;
    self->stats.epochs++;
    return 0;
}

static void
s_publish (gl_pub_t *self, const char *type, const char *bytes, size_t len)
{
    if (!self->sock)
        return;
    void *h = zsock_resolve (self->sock);
    if (zmq_send (h, type, strlen (type), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (h, bytes, len, ZMQ_DONTWAIT) < 0)
        self->stats.pub_dropped++;
}

//  Replicas attached to our Redis primary, asked at most every 10 s (INFO replication).
static int
s_replicas (gl_pub_t *self)
{
    int64_t now = gl_mono_ms ();
    if (self->replicas_checked && now - self->replicas_checked < 10000)
        return self->replicas;
    redisReply *r = gl_redis_cmd (self->redis, "INFO replication");
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr (r->str, "connected_slaves:");
        self->replicas = p ? atoi (p + strlen ("connected_slaves:")) : 0;
        self->replicas_checked = now;
    }
    if (r)
        freeReplyObject (r);
    return self->replicas;
}

//  Only where replicas exist: WAIT on a lone primary would always time out and stall the caller.
static int
s_wait_replicas (gl_pub_t *self)
{
    if (s_replicas (self) == 0)
        return 0;
    int want = self->opts.wait_replicas < self->replicas ? self->opts.wait_replicas : self->replicas;
    redisReply *r = gl_redis_cmd (self->redis, "WAIT %d %" PRId64, want,
                                  self->opts.wait_replicas_ms);
    long long acked = 0;
    if (r && gl_redis_reply_int (r, &acked) == 0 && acked < want)
        gl_warn ("bus: critical event of %s acknowledged by %lld of %d replicas", self->src,
                 acked, want);
    if (r)
        freeReplyObject (r);
    return 0;
}

//  Remember a batch whose append may or may not have landed.
static void
s_unsure_set (gl_pub_t *self, uint64_t first, size_t n, const char *bytes, size_t len)
{
    free (self->unsure_bytes);
    self->unsure_bytes = malloc (len);
    assert (self->unsure_bytes);
    memcpy (self->unsure_bytes, bytes, len);
    self->unsure_len = len;
    self->unsure_first = first;
    self->unsure_n = n;
}

static void
s_unsure_clear (gl_pub_t *self)
{
    free (self->unsure_bytes);
    self->unsure_bytes = NULL;
    self->unsure_n = 0;
}

//  Before appending anything else, find out whether the unsure batch landed. If it did, our seq
//  moves past it (its events are in the log and will be delivered although the caller was told
//  GL_PUB_ERROR: "outcome unknown"). -1 when Redis still cannot tell us.
static int
s_unsure_resolve (gl_pub_t *self)
{
    gl_srcinfo_t info;
    if (gl_srcinfo_read (self->redis, self->src, &info) != 0)
        return -1;
    if (info.seq >= self->unsure_first + self->unsure_n - 1) {
        char id[32];
        snprintf (id, sizeof id, "%" PRIu64 "-0", self->unsure_first);
        redisReply *r = gl_redis_cmd (self->redis, "XRANGE gl:log:{%s} %s %s", self->src, id, id);
        if (!r)
            return -1;
        bool ours = r->type == REDIS_REPLY_ARRAY && r->elements == 1
                    && r->element[0]->element[1]->elements == 2
                    && r->element[0]->element[1]->element[1]->len == self->unsure_len
                    && memcmp (r->element[0]->element[1]->element[1]->str, self->unsure_bytes,
                               self->unsure_len) == 0;
        freeReplyObject (r);
        if (ours) {
            gl_warn ("bus: %zu event(s) of %s reported as not sent were appended after all "
                     "(seq %" PRIu64 "..)", self->unsure_n, self->src, self->unsure_first);
            self->seq = self->unsure_first + self->unsure_n - 1;
            self->stats.appended += self->unsure_n;
        }
    }
    s_unsure_clear (self);
    return 0;
}

int
gl_pub_send_batch (gl_pub_t *self, gl_event_t **evs, size_t n, int flags)
{
    assert (self && evs && n > 0 && n <= GL_PUB_MAX_BATCH);
    if (self->fenced)
        return GL_PUB_FENCED;
    char **bufs = calloc (n, sizeof (char *));
    size_t *lens = calloc (n, sizeof (size_t));
    assert (bufs && lens);
    int rc = GL_PUB_ERROR;
    uint64_t first = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        //  A resend of the very batch whose outcome was unknown is the same append again (same
        //  seqs, same bytes) and is recognised if it had landed; anything else first finds out.
        if (self->unsure_n && attempt == 0 && !(self->unsure_n == n
                                                && self->unsure_first == self->seq + 1
                                                && strcmp (evs[0]->src, self->src) == 0
                                                && evs[0]->seq == self->unsure_first)) {
            if (s_unsure_resolve (self) != 0)
                goto done;
        }
        first = self->seq + 1;
        for (size_t i = 0; i < n; i++) {
            snprintf (evs[i]->src, sizeof evs[i]->src, "%s", self->src);
            evs[i]->seq = first + i;
            free (bufs[i]);
            bufs[i] = NULL;
            if (gl_event_encode (evs[i], &bufs[i], &lens[i]) != 0) {
                gl_error ("bus: event %s of type %s cannot be encoded", evs[i]->id, evs[i]->type);
                goto done;
            }
        }
        uint64_t log_last = 0;
        int64_t until = gl_now_ms () + self->opts.lease_ms;
        int64_t last = gl_log_append (self->redis, self->src, self->token, gl_now_ms (), until,
                                      first, (const char **) bufs, lens, n, &log_last);
        if (last > 0) {
            self->seq = (uint64_t) last;
            self->stats.appended += n;
            s_unsure_clear (self);
            rc = 0;
            break;
        }
        self->stats.retries++;
        if (last == -2) {
            //  Either another live process holds our name, or Redis lost the lease record
            //  (restart under everysec): take it back when it is free, fence ourselves if not.
            int64_t holder = 0;
            int held = gl_lease_acquire (self->redis, self->srckey, self->token, gl_now_ms (),
                                         self->opts.lease_ms, &holder);
            if (held == 1)
                continue;
            if (held == -1)
                continue;
            gl_error ("bus: source %s was taken over by another process; fenced", self->src);
            self->fenced = true;
            rc = GL_PUB_FENCED;
            goto done;
        }
        if (last == -3) {
            if (log_last < self->seq) {
                if (s_new_epoch (self, log_last) != 0)
                    goto done;
            }
            else {
                //  The log is ahead of us: another writer used our name. Never write past it.
                gl_error ("bus: log of %s is ahead of this process; fenced", self->src);
                self->fenced = true;
                rc = GL_PUB_FENCED;
                goto done;
            }
        }
        //  -1: Redis unreachable within the reconnect budget; the next round reconnects, and a
        //  repeat of an append that did land is recognised by gl_log_append.
    }
    if (rc == GL_PUB_ERROR && first && bufs[0])
        s_unsure_set (self, first, n, bufs[0], lens[0]);
    if (rc == 0) {
        if ((flags & GL_PUB_CRITICAL) && self->opts.wait_replicas > 0)
            s_wait_replicas (self);
        for (size_t i = 0; i < n; i++)
            s_publish (self, evs[i]->type, bufs[i], lens[i]);
    }
done:
    for (size_t i = 0; i < n; i++)
        free (bufs[i]);
    free (bufs);
    free (lens);
    return rc;
}

int
gl_pub_send (gl_pub_t *self, gl_event_t *ev, int flags)
{
    return gl_pub_send_batch (self, &ev, 1, flags);
}

static void
s_heartbeat (gl_pub_t *self, int64_t now)
{
    json_t *hb = json_pack ("{s:s, s:I, s:I, s:I}", "src", self->src, "seq", (json_int_t) self->seq,
                            "epoch", (json_int_t) self->epoch, "ts", (json_int_t) now);
    char *buf = NULL;
    size_t len = 0;
    if (hb && gl_mp_encode (hb, &buf, &len) == 0)
        s_publish (self, GL_HEARTBEAT_TOPIC, buf, len);
    free (buf);
    json_decref (hb);
}

int64_t
gl_pub_tick (gl_pub_t *self)
{
    if (self->fenced)
        return GL_PUB_FENCED;
    int64_t mono = gl_mono_ms ();
    if (mono < self->next_tick)
        return self->next_tick - mono;
    int64_t now = gl_now_ms ();
    int64_t until = 0;
    int held = gl_lease_acquire (self->redis, self->srckey, self->token, now, self->opts.lease_ms,
                                 &until);
    if (held == 0) {
        gl_error ("bus: lease on %s was taken over; fenced", self->src);
        self->fenced = true;
        return GL_PUB_FENCED;
    }
    if (held == 1) {
        redisReply *r = gl_redis_cmd (self->redis, "HSET %s hb %" PRId64, self->srckey, now);
        if (r)
            freeReplyObject (r);
    }
    //  The heartbeat goes out even when Redis is down: subscribers still learn we are alive.
    s_heartbeat (self, now);
    self->next_tick = mono + self->opts.heartbeat_ms;
    return self->opts.heartbeat_ms;
}

const char *
gl_pub_src (gl_pub_t *self)
{
    return self->src;
}

uint64_t
gl_pub_seq (gl_pub_t *self)
{
    return self->seq;
}

uint64_t
gl_pub_epoch (gl_pub_t *self)
{
    return self->epoch;
}

const char *
gl_pub_endpoint (gl_pub_t *self)
{
    return self->endpoint;
}

gl_pub_stats_t
gl_pub_stats (gl_pub_t *self)
{
    return self->stats;
}
