/*  gl-reporting --rebuild: every aggregate recomputed from the events themselves — the archives
    (GL_ARCHIVE_DIR/<source>/<first>-<last>.glog, written by gl_log_trim) and then each source's
    log in Redis — and stored with the cursors reached, replacing the checkpoint in one MULTI.
    Sources are merged by event time, as they arrived live, so the rebuild equals the
    incremental result. The consumer group's lease is held for the duration: a gl-reporting
    started meanwhile stands by, and a running one makes the rebuild refuse to start.
*/
#include "reporting.h"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LEASE     "gl:lease:{reporting}"
#define S_CURSORS   "gl:cur:{reporting}"
#define S_CHUNK     1000
#define S_FRAME_MAX (4u << 20)

typedef struct {
    char name[GL_EVENT_NAME_MAX + 1];
    uint64_t next;              //  next seq wanted
    uint64_t epoch;
    char **files;               //  archive files, by first seq
    size_t nfiles, file;
    FILE *fp;
    gl_event_t *buf[S_CHUNK];
    size_t n, i;
    bool done;
    uint64_t lost;
} s_reader_t;

typedef struct {
    gl_redis_t *redis;
    const char *archive;
    uint64_t bad;
} s_rebuild_t;

static int
s_cmp_files (const void *a, const void *b)
{
    uint64_t x = strtoull (strrchr (*(char *const *) a, '/') + 1, NULL, 10);
    uint64_t y = strtoull (strrchr (*(char *const *) b, '/') + 1, NULL, 10);
    return x < y ? -1 : x > y;
}

static void
s_list_archives (s_reader_t *r, const char *dir)
{
    if (!dir || !*dir)
        return;
    char path[1024];
    snprintf (path, sizeof path, "%s/%s", dir, r->name);
    DIR *d = opendir (path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir (d))) {
        size_t len = strlen (e->d_name);
        if (len < 6 || strcmp (e->d_name + len - 5, ".glog") != 0 || e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        r->files = realloc (r->files, (r->nfiles + 1) * sizeof (char *));
        assert (r->files);
        char full[1400];
        snprintf (full, sizeof full, "%s/%s", path, e->d_name);
        r->files[r->nfiles++] = strdup (full);
    }
    closedir (d);
    if (r->nfiles)
        qsort (r->files, r->nfiles, sizeof (char *), s_cmp_files);
}

//  Decode one envelope; events at or behind the reader's position are skipped.
static void
s_take (s_rebuild_t *rb, s_reader_t *r, uint64_t seq, const char *bytes, size_t len)
{
    if (seq < r->next)
        return;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    if (!ev) {
        rb->bad++;
        r->next = seq + 1;
        return;
    }
    if (seq > r->next)
        r->lost += seq - r->next;
    r->next = seq + 1;
    r->buf[r->n++] = ev;
}

static int
s_log_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    void **pair = arg;
    s_take (pair[0], pair[1], seq, bytes, len);
    return 0;
}

//  Refill r's buffer: from the archives first, then from the log. -1 on a Redis failure.
static int
s_refill (s_rebuild_t *rb, s_reader_t *r)
{
    for (size_t k = r->i; k < r->n; k++)
        gl_event_destroy (&r->buf[k]);
    r->n = r->i = 0;
    while (r->n == 0 && r->file < r->nfiles) {
        if (!r->fp && !(r->fp = fopen (r->files[r->file], "rb"))) {
            gl_warn ("reporting: rebuild: cannot open an archive of %s", r->name);
            r->file++;
            continue;
        }
        char *frame = malloc (S_FRAME_MAX);
        assert (frame);
        while (r->n < S_CHUNK) {
            uint32_t be;
            if (fread (&be, 4, 1, r->fp) != 1)
                break;
            uint32_t len = ntohl (be);
            if (len == 0 || len > S_FRAME_MAX || fread (frame, 1, len, r->fp) != len) {
                gl_warn ("reporting: rebuild: truncated or malformed archive of %s", r->name);
                rb->bad++;
                break;
            }
            gl_event_err_t why;
            gl_event_t *ev = gl_event_decode (frame, len, &why, NULL, 0);
            if (!ev) {
                rb->bad++;
                continue;
            }
            uint64_t seq = ev->seq;
            if (seq < r->next) {
                gl_event_destroy (&ev);
                continue;
            }
            if (seq > r->next)
                r->lost += seq - r->next;
            r->next = seq + 1;
            r->buf[r->n++] = ev;
        }
        free (frame);
        if (r->n < S_CHUNK) {
            fclose (r->fp);
            r->fp = NULL;
            r->file++;
        }
    }
    if (r->n > 0)
        return 0;
    void *pair[2] = { rb, r };
    uint64_t first = 0;
    int64_t got = gl_log_read (rb->redis, r->name, r->next, 0, S_CHUNK, s_log_entry, pair, &first);
    if (got < 0)
        return -1;
    if (got == 0)
        r->done = true;
    return 0;
}

static gl_event_t *
s_peek (s_rebuild_t *rb, s_reader_t *r, int *rc)
{
    if (r->done)
        return NULL;
    if (r->i >= r->n && s_refill (rb, r) != 0) {
        *rc = -1;
        return NULL;
    }
    return r->i < r->n ? r->buf[r->i] : NULL;
}

//  Redis commands into a MULTI: each must answer QUEUED.
typedef struct {
    gl_redis_t *redis;
    int failed;
} s_multi_t;

static int
s_sink_multi (void *arg, int argc, const char **argv, const size_t *lens)
{
    s_multi_t *m = arg;
    redisReply *r = gl_redis_cmdargv (m->redis, argc, argv, lens);
    if (!r || r->type != REDIS_REPLY_STATUS || strcmp (r->str, "QUEUED") != 0)
        m->failed = 1;
    if (r)
        freeReplyObject (r);
    return 0;
}

static int
s_store (gl_redis_t *redis, rep_agg_t *agg, s_reader_t *readers, size_t n, char *err, size_t errlen)
{
    redisReply *r = gl_redis_cmd (redis, "MULTI");
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf (err, errlen, "redis: MULTI failed");
        if (r)
            freeReplyObject (r);
        return -1;
    }
    freeReplyObject (r);
    s_multi_t m = { redis, 0 };
    rep_agg_wipe (s_sink_multi, &m);
    rep_agg_checkpoint (agg, s_sink_multi, &m);
    const char *del[] = { "DEL", S_CURSORS };
    s_sink_multi (&m, 2, del, NULL);
    for (size_t i = 0; i < n; i++) {
        if (readers[i].next <= 1)
            continue;
        char cur[64];
        gl_cursor_format ((gl_cursor_t) { readers[i].epoch, readers[i].next - 1 }, cur, sizeof cur);
        const char *argv[] = { "HSET", S_CURSORS, readers[i].name, cur };
        s_sink_multi (&m, 4, argv, NULL);
    }
    const char *sadd[] = { "SADD", "gl:consumers", "reporting" };
    s_sink_multi (&m, 3, sadd, NULL);
    r = gl_redis_cmd (redis, m.failed ? "DISCARD" : "EXEC");
    bool ok = !m.failed && r && r->type == REDIS_REPLY_ARRAY;
    if (r)
        freeReplyObject (r);
    if (!ok) {
        snprintf (err, errlen, "redis: storing the rebuilt aggregates failed (nothing changed)");
        return -1;
    }
    return 0;
}

int
reporting_rebuild (gl_config_t *config, char *err, size_t errlen, uint64_t *events)
{
    rep_conf_t conf;
    if (rep_conf_load (&conf, config, err, errlen) != 0)
        return -1;
    gl_redis_t *redis = gl_redis_new_from_config (config);
    if (!redis || gl_redis_ping (redis) != 0) {
        snprintf (err, errlen, "redis unreachable");
        gl_redis_destroy (&redis);
        return -1;
    }
    char token[GL_ID_LEN + 1];
    gl_id_new (token);
    int64_t until = 0;
    int held = gl_lease_acquire (redis, S_LEASE, token, gl_now_ms (), 60000, &until);
    if (held != 1) {
        snprintf (err, errlen, held == 0 ? "gl-reporting is running (it holds %s): stop it first"
                                         : "redis: cannot take the lease %s", S_LEASE);
        gl_redis_destroy (&redis);
        return -1;
    }
    char **sources = gl_sources_list (redis);
    if (!sources) {
        snprintf (err, errlen, "redis: cannot list the sources");
        gl_lease_release (redis, S_LEASE, token);
        gl_redis_destroy (&redis);
        return -1;
    }
    size_t n = 0;
    while (sources[n])
        n++;
    s_reader_t *readers = calloc (n + 1, sizeof *readers);
    assert (readers);
    s_rebuild_t rb = { redis, gl_config_str (config, "GL_ARCHIVE_DIR", NULL), 0 };
    for (size_t i = 0; i < n; i++) {
        snprintf (readers[i].name, sizeof readers[i].name, "%s", sources[i]);
        readers[i].next = 1;
        gl_srcinfo_t info;
        if (gl_srcinfo_read (redis, sources[i], &info) == 0)
            readers[i].epoch = info.epoch;
        s_list_archives (&readers[i], rb.archive);
        free (sources[i]);
    }
    free (sources);
    rep_agg_t *agg = rep_agg_new (&conf);
    rep_agg_fresh (agg);
    uint64_t applied = 0;
    int rc = 0;
    int64_t renewed = gl_mono_ms ();
    while (rc == 0) {
        //  The next event by time over all sources (ties: the source listed first).
        s_reader_t *best = NULL;
        gl_event_t *next = NULL;
        for (size_t i = 0; i < n && rc == 0; i++) {
            gl_event_t *ev = s_peek (&rb, &readers[i], &rc);
            if (ev && (!next || ev->ts < next->ts))
                best = &readers[i], next = ev;
        }
        if (rc || !best)
            break;
        rep_agg_apply (agg, next);
        gl_event_destroy (&best->buf[best->i]);
        best->i++;
        applied++;
        if (gl_mono_ms () - renewed > 10000) {
            if (gl_lease_acquire (redis, S_LEASE, token, gl_now_ms (), 60000, &until) != 1) {
                snprintf (err, errlen, "lost the lease %s", S_LEASE);
                rc = -2;
            }
            renewed = gl_mono_ms ();
        }
    }
    if (rc == -1)
        snprintf (err, errlen, "redis: reading the logs failed");
    uint64_t lost = 0;
    for (size_t i = 0; i < n; i++) {
        lost += readers[i].lost;
        if (readers[i].lost)
            gl_warn ("reporting: rebuild: %" PRIu64 " events of %s are in neither the archive nor the log",
                     readers[i].lost, readers[i].name);
    }
    if (rb.bad)
        gl_warn ("reporting: rebuild: %" PRIu64 " malformed entries skipped", rb.bad);
    if (rc == 0)
        rc = s_store (redis, agg, readers, n, err, errlen);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = readers[i].i; k < readers[i].n; k++)
            gl_event_destroy (&readers[i].buf[k]);
        if (readers[i].fp)
            fclose (readers[i].fp);
        for (size_t k = 0; k < readers[i].nfiles; k++)
            free (readers[i].files[k]);
        free (readers[i].files);
    }
    free (readers);
    rep_agg_destroy (&agg);
    gl_lease_release (redis, S_LEASE, token);
    gl_redis_destroy (&redis);
    if (events)
        *events = applied;
    (void) lost;
    return rc == 0 ? 0 : -1;
}
