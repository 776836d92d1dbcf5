/*  gl_buslog — see gl_buslog.h. The Lua scripts here are the whole of the bus's atomicity:
    read them with docs/events.md ("The reliability protocol") at hand. */
#include "gl/gl_buslog.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

//  Take or renew a lease. KEYS[1] lease hash; ARGV token, now, ttl.
static gl_redis_script_t s_lease_script = { .source =
    "local h = redis.call('HMGET', KEYS[1], 'owner', 'until')\n"
    "local now = tonumber(ARGV[2])\n"
    "if h[1] and h[1] ~= ARGV[1] and tonumber(h[2] or '0') > now then\n"
    "  return {0, h[2]}\n"
    "end\n"
    "local u = string.format('%d', now + tonumber(ARGV[3]))\n"
    "redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', u)\n"
    "return {1, u}\n" };

//  Release a lease if still ours: set until to 0 so anyone may take it at once.
static gl_redis_script_t s_release_script = { .source =
    "if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then\n"
    "  redis.call('HSET', KEYS[1], 'until', '0')\n"
    "  return 1\n"
    "end\n"
    "return 0\n" };

//  Append: lease check, sequence check and XADDs in one step. KEYS[1] gl:src, KEYS[2] gl:log;
//  ARGV token, lease_until, first, payload...
static gl_redis_script_t s_append_script = { .source =
    "local h = redis.call('HMGET', KEYS[1], 'owner', 'seq')\n"
    "if h[1] ~= ARGV[1] then return redis.error_reply('FENCED lease held by another') end\n"
    "local last = tonumber(h[2] or '0')\n"
    "local first = tonumber(ARGV[3])\n"
    "if first ~= last + 1 then\n"
    "  return redis.error_reply(string.format('SEQ %d', last))\n"
    "end\n"
    "local n = #ARGV - 3\n"
    "for i = 1, n do\n"
    "  redis.call('XADD', KEYS[2], string.format('%d-0', first + i - 1), 'e', ARGV[3 + i])\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'seq', string.format('%d', last + n), 'until', ARGV[2])\n"
    "return last + n\n" };

static void
s_key (char *out, size_t len, const char *kind, const char *name)
{
    snprintf (out, len, "gl:%s:{%s}", kind, name);
}

int
gl_lease_acquire (gl_redis_t *redis, const char *key, const char *token, int64_t now_ms,
                  int64_t ttl_ms, int64_t *holder_until)
{
    char now[24], ttl[24];
    snprintf (now, sizeof now, "%" PRId64, now_ms);
    snprintf (ttl, sizeof ttl, "%" PRId64, ttl_ms);
    const char *argv[] = { key, token, now, ttl };
    redisReply *r = gl_redis_eval (redis, &s_lease_script, 1, 4, argv, NULL);
    if (!r)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2
        && r->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = (int) r->element[0]->integer;
        long long until = 0;
        if (holder_until && gl_redis_reply_int (r->element[1], &until) == 0)
            *holder_until = until;
    }
    else
        gl_error ("lease: unexpected reply for %s: %s", key,
                  r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject (r);
    return rc;
}

int
gl_lease_release (gl_redis_t *redis, const char *key, const char *token)
{
    const char *argv[] = { key, token };
    redisReply *r = gl_redis_eval (redis, &s_release_script, 1, 2, argv, NULL);
    if (!r)
        return -1;
    freeReplyObject (r);
    return 0;
}

static uint64_t
s_u64 (const redisReply *r)
{
    long long v = 0;
    return gl_redis_reply_int (r, &v) == 0 && v > 0 ? (uint64_t) v : 0;
}

int
gl_srcinfo_read (gl_redis_t *redis, const char *src, gl_srcinfo_t *info)
{
    char key[128];
    s_key (key, sizeof key, "src", src);
    redisReply *r = gl_redis_cmd (redis, "HMGET %s seq epoch epoch_base hb", key);
    if (!r)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        info->seq = s_u64 (r->element[0]);
        info->epoch = s_u64 (r->element[1]);
        info->epoch_base = s_u64 (r->element[2]);
        info->heartbeat_ms = (int64_t) s_u64 (r->element[3]);
        rc = 0;
    }
    freeReplyObject (r);
    return rc;
}

//  After a failed round trip: does the log already hold exactly these payloads from first on?
static bool
s_already_appended (gl_redis_t *redis, const char *logkey, uint64_t first, const char *payload,
                    size_t len)
{
    char id[32];
    snprintf (id, sizeof id, "%" PRIu64 "-0", first);
    redisReply *r = gl_redis_cmd (redis, "XRANGE %s %s %s", logkey, id, id);
    bool same = false;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *fields = r->element[0]->element[1];
        if (fields->type == REDIS_REPLY_ARRAY && fields->elements == 2)
            same = fields->element[1]->len == len
                   && memcmp (fields->element[1]->str, payload, len) == 0;
    }
    if (r)
        freeReplyObject (r);
    return same;
}

int64_t
gl_log_append (gl_redis_t *redis, const char *src, const char *token, int64_t now_ms,
               int64_t lease_until, uint64_t first, const char **payloads, const size_t *lens,
               size_t n, uint64_t *last_out)
{
    assert (n > 0 && n <= 4000);
    (void) now_ms;
    char srckey[128], logkey[128], until[24], firsts[24];
    s_key (srckey, sizeof srckey, "src", src);
    s_key (logkey, sizeof logkey, "log", src);
    snprintf (until, sizeof until, "%" PRId64, lease_until);
    snprintf (firsts, sizeof firsts, "%" PRIu64, first);
    size_t argc = 5 + n;
    const char **argv = malloc (sizeof (char *) * argc);
    size_t *argl = malloc (sizeof (size_t) * argc);
    assert (argv && argl);
    argv[0] = srckey, argl[0] = strlen (srckey);
    argv[1] = logkey, argl[1] = strlen (logkey);
    argv[2] = token, argl[2] = strlen (token);
    argv[3] = until, argl[3] = strlen (until);
    argv[4] = firsts, argl[4] = strlen (firsts);
    for (size_t i = 0; i < n; i++)
        argv[5 + i] = payloads[i], argl[5 + i] = lens[i];

    int64_t result = -1;
    redisReply *r = gl_redis_eval (redis, &s_append_script, 2, (int) argc, argv, argl);
    free (argv);
    free (argl);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        result = r->integer;
    else if (gl_redis_reply_is_error (r, "FENCED"))
        result = -2;
    else if (gl_redis_reply_is_error (r, "SEQ ")) {
        uint64_t last = strtoull (r->str + 4, NULL, 10);
        if (last_out)
            *last_out = last;
        //  A retry of an append whose reply was lost: the log already ends with our batch.
        if (last == first + n - 1 && s_already_appended (redis, logkey, first, payloads[0], lens[0]))
            result = (int64_t) last;
        else
            result = -3;
    }
    else
        gl_error ("bus: append to %s failed: %s", src, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject (r);
    return result;
}

static uint64_t
s_seq_of_id (const redisReply *id)
{
    return id && id->type == REDIS_REPLY_STRING ? strtoull (id->str, NULL, 10) : 0;
}

static uint64_t
s_first_avail (gl_redis_t *redis, const char *logkey)
{
    redisReply *r = gl_redis_cmd (redis, "XRANGE %s - + COUNT 1", logkey);
    uint64_t first = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        first = s_seq_of_id (r->element[0]->element[0]);
    if (r)
        freeReplyObject (r);
    return first;
}

int64_t
gl_log_read (gl_redis_t *redis, const char *src, uint64_t from, uint64_t to, size_t max,
             gl_log_entry_fn *fn, void *arg, uint64_t *first_avail)
{
    char logkey[128], start[32], end[32];
    s_key (logkey, sizeof logkey, "log", src);
    snprintf (start, sizeof start, "%" PRIu64 "-0", from);
    if (to)
        snprintf (end, sizeof end, "%" PRIu64 "-0", to);
    else
        snprintf (end, sizeof end, "+");
    redisReply *r = gl_redis_cmd (redis, "XRANGE %s %s %s COUNT %llu", logkey, start, end,
                                    (unsigned long long) max);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        gl_error ("bus: XRANGE %s failed: %s", src, r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject (r);
        return -1;
    }
    int64_t delivered = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *entry = r->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
            continue;
        redisReply *fields = entry->element[1];
        uint64_t seq = s_seq_of_id (entry->element[0]);
        if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 2
            || fields->element[1]->type != REDIS_REPLY_STRING) {
            gl_error ("bus: log entry %s/%" PRIu64 " is malformed; skipped", src, seq);
            continue;
        }
        delivered++;
        if (fn (arg, seq, fields->element[1]->str, fields->element[1]->len) != 0)
            break;
    }
    freeReplyObject (r);
    if (first_avail)
        *first_avail = s_first_avail (redis, logkey);
    return delivered;
}

char **
gl_sources_list (gl_redis_t *redis)
{
    redisReply *r = gl_redis_cmd (redis, "SMEMBERS gl:sources");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return NULL;
    }
    char **list = calloc (r->elements + 1, sizeof (char *));
    assert (list);
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && gl_event_src_valid (r->element[i]->str))
            list[n++] = strdup (r->element[i]->str);
    freeReplyObject (r);
    return list;
}

void
gl_cursor_format (gl_cursor_t c, char *out, size_t len)
{
    snprintf (out, len, "%" PRIu64 ":%" PRIu64, c.epoch, c.seq);
}

int
gl_cursor_parse (const char *s, size_t len, gl_cursor_t *c)
{
    char buf[48];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy (buf, s, len);
    buf[len] = 0;
    char *colon = strchr (buf, ':');
    if (!colon)
        return -1;
    char *end;
    errno = 0;
    c->epoch = strtoull (buf, &end, 10);
    if (end != colon || errno)
        return -1;
    c->seq = strtoull (colon + 1, &end, 10);
    return *end == 0 && !errno ? 0 : -1;
}

int
gl_cursors_load (gl_redis_t *redis, const char *group, gl_cursor_fn *fn, void *arg)
{
    char key[128];
    s_key (key, sizeof key, "cur", group);
    redisReply *r = gl_redis_cmd (redis, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        gl_cursor_t c;
        if (gl_cursor_parse (r->element[i + 1]->str, r->element[i + 1]->len, &c) == 0)
            fn (arg, r->element[i]->str, c);
        else
            gl_error ("bus: cursor of %s for a source is malformed; replaying it from the start",
                      group);
    }
    freeReplyObject (r);
    return 0;
}

//  True when group follows src: it has no source list in gl:consumer_sources (it follows
//  every source), or one of its prefixes starts src's name. -1 when Redis failed.
static int
s_group_follows (gl_redis_t *redis, const char *group, const char *src)
{
    redisReply *r = gl_redis_cmd (redis, "HGET gl:consumer_sources %s", group);
    if (!r)
        return -1;
    int follows = 1;
    if (r->type == REDIS_REPLY_STRING && r->len > 0) {
        follows = 0;
        const char *p = r->str;
        while (*p && !follows) {
            size_t n = strcspn (p, ",");
            if (n > 0 && strncmp (src, p, n) == 0)
                follows = 1;
            p += n;
            if (*p == ',')
                p++;
        }
    }
    freeReplyObject (r);
    return follows;
}

//  The lowest seq every registered consumer group that follows src has applied for it (0 if
//  one of them has none).
static int
s_min_cursor (gl_redis_t *redis, const char *src, uint64_t *min_out)
{
    redisReply *groups = gl_redis_cmd (redis, "SMEMBERS gl:consumers");
    if (!groups || groups->type != REDIS_REPLY_ARRAY) {
        if (groups)
            freeReplyObject (groups);
        return -1;
    }
    uint64_t min = UINT64_MAX;
    int rc = 0;
    for (size_t i = 0; i < groups->elements && rc == 0; i++) {
        int follows = s_group_follows (redis, groups->element[i]->str, src);
        if (follows < 0) {
            rc = -1;
            break;
        }
        if (!follows)
            continue;
        char key[128];
        s_key (key, sizeof key, "cur", groups->element[i]->str);
        redisReply *r = gl_redis_cmd (redis, "HGET %s %s", key, src);
        gl_cursor_t c = { 0, 0 };
        if (!r)
            rc = -1;
        else if (r->type == REDIS_REPLY_STRING)
            gl_cursor_parse (r->str, r->len, &c);
        if (r)
            freeReplyObject (r);
        if (c.seq < min)
            min = c.seq;
    }
    freeReplyObject (groups);
    *min_out = min == UINT64_MAX ? 0 : min;
    return rc;
}

typedef struct {
    FILE *file;
    uint64_t last;
    int err;
} s_archive_t;

static int
s_archive_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    s_archive_t *a = arg;
    unsigned char hdr[4] = { (unsigned char) (len >> 24), (unsigned char) (len >> 16),
                             (unsigned char) (len >> 8), (unsigned char) len };
    if (fwrite (hdr, 1, 4, a->file) != 4 || fwrite (bytes, 1, len, a->file) != len) {
        a->err = 1;
        return -1;
    }
    a->last = seq;
    return 0;
}

//  Write entries first..upto to one archive file, durably. Returns the last seq written, 0 on error.
static uint64_t
s_archive (gl_redis_t *redis, const char *src, const char *dir, uint64_t first, uint64_t upto)
{
    char path[1024], tmp[1100];
    snprintf (path, sizeof path, "%s/%s", dir, src);
    if (mkdir (dir, 0750) != 0 && errno != EEXIST)
        return 0;
    if (mkdir (path, 0750) != 0 && errno != EEXIST)
        return 0;
    snprintf (tmp, sizeof tmp, "%s/%" PRIu64 "-%" PRIu64 ".glog.tmp", path, first, upto);
    s_archive_t a = { fopen (tmp, "wb"), 0, 0 };
    if (!a.file)
        return 0;
    for (uint64_t from = first; from <= upto && !a.err;) {
        a.last = 0;
        int64_t got = gl_log_read (redis, src, from, upto, 1000, s_archive_entry, &a, NULL);
        if (got <= 0 || a.last == 0)
            break;
        from = a.last + 1;
    }
    bool ok = !a.err && fflush (a.file) == 0 && fsync (fileno (a.file)) == 0;
    fclose (a.file);
    if (!ok || a.last != upto) {
        unlink (tmp);
        return 0;
    }
    char final[1100];
    snprintf (final, sizeof final, "%s/%" PRIu64 "-%" PRIu64 ".glog", path, first, upto);
    return rename (tmp, final) == 0 ? upto : 0;
}

int64_t
gl_log_trim (gl_redis_t *redis, const char *src, const char *archive_dir, uint64_t keep)
{
    uint64_t min = 0;
    if (s_min_cursor (redis, src, &min) != 0)
        return -1;
    if (min <= keep)
        return 0;
    uint64_t upto = min - keep;
    char logkey[128];
    s_key (logkey, sizeof logkey, "log", src);
    uint64_t first = s_first_avail (redis, logkey);
    if (first == 0 || first > upto)
        return 0;
    if (archive_dir && s_archive (redis, src, archive_dir, first, upto) != upto) {
        gl_error ("bus: archiving %s up to %" PRIu64 " failed; log not trimmed", src, upto);
        return -1;
    }
    redisReply *r = gl_redis_cmd (redis, "XTRIM %s MINID %" PRIu64 "-0", logkey, upto + 1);
    int64_t trimmed = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject (r);
    return trimmed;
}

//  The ts of the last record of an archive file. 0, or -1 when it cannot be read.
static int
s_archive_last_ts (const char *path, int64_t *ts)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return -1;
    long last = -1;
    uint32_t last_len = 0;
    unsigned char hdr[4];
    while (fread (hdr, 1, 4, file) == 4) {
        uint32_t len = (uint32_t) hdr[0] << 24 | (uint32_t) hdr[1] << 16 | (uint32_t) hdr[2] << 8
                     | hdr[3];
        long at = ftell (file);
        if (len == 0 || len > (64u << 20) || at < 0 || fseek (file, (long) len, SEEK_CUR) != 0)
            break;
        last = at;
        last_len = len;
    }
    int rc = -1;
    if (last >= 0 && fseek (file, last, SEEK_SET) == 0) {
        char *buf = malloc (last_len);
        if (buf && fread (buf, 1, last_len, file) == last_len) {
            gl_event_err_t why;
            gl_event_t *ev = gl_event_decode (buf, last_len, &why, NULL, 0);
            if (ev) {
                *ts = ev->ts;
                rc = 0;
                gl_event_destroy (&ev);
            }
        }
        free (buf);
    }
    fclose (file);
    return rc;
}

int64_t
gl_log_archive_purge (const char *archive_dir, const char *src, int64_t cutoff_ms,
                      int64_t *kept)
{
    assert (archive_dir && src);
    if (kept)
        *kept = 0;
    if (!gl_event_src_valid (src))
        return -1;
    char dir[1024];
    snprintf (dir, sizeof dir, "%s/%s", archive_dir, src);
    DIR *d = opendir (dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int64_t removed = 0, left = 0;
    struct dirent *de;
    while ((de = readdir (d))) {
        size_t n = strlen (de->d_name);
        if (n < 6 || strcmp (de->d_name + n - 5, ".glog") != 0)
            continue;
        char path[1400];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        int64_t ts = 0;
        if (s_archive_last_ts (path, &ts) != 0) {
            gl_warn ("bus: archive %s has no readable last record; left for an operator", path);
            left++;
        }
        else if (ts < cutoff_ms && unlink (path) == 0)
            removed++;
        else
            left++;
    }
    closedir (d);
    if (kept)
        *kept = left;
    return removed;
}
