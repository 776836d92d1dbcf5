/*  retention — the purge of personal data past its retention period, and the export of what is
    held about one person (retention.h). */
#include "retention.h"
#include "audit.h"
#include "callers.h"
#include "contacts.h"
#include "docstore.h"
#include "intake.h"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_P             CONTACTS_PREFIX
#define S_EXPORT_MAX    1000        //  records of one kind in an export
#define S_SCAN_FACTOR   20          //  keys a SCAN looks at per record of the batch

//  The record types, their setting and default period in days.
typedef enum { S_CONTACTS, S_COMPLAINTS, S_CHANGES, S_CASES, S_RAISED, S_ARCHIVES, S_NTYPES } s_type_t;
static const struct {
    const char *name;
    const char *key;
    int64_t days;
} s_types[S_NTYPES] = {
    { "contacts", "GL_INTAKE_RETAIN_CONTACTS_DAYS", 730 },
    { "complaints", "GL_INTAKE_RETAIN_COMPLAINTS_DAYS", 1095 },
    { "change_requests", "GL_INTAKE_RETAIN_CHANGE_REQUESTS_DAYS", 365 },
    { "cases", "GL_INTAKE_RETAIN_CASES_DAYS", 365 },
    { "raised", "GL_INTAKE_RETAIN_RAISED_DAYS", 730 },
    { "archives", "GL_INTAKE_RETAIN_ARCHIVES_DAYS", 730 },
};

//  Contact fields that are personal data (contacts.c's names; internal ones are the hashes).
static const char *const s_contact_fields[]
    = { "case_number", "individual_number", "phone", "notes", "recording_ref", "sex",
        "age_group", "nationality", "specific_needs", "location", "case_h", "ind_h", "phone_h",
        NULL };
static const char *const s_complaint_fields[]
    = { "description", "response", "answer", "case_number", "phone", NULL };

//  The changes of one record type in one run, applied by s_apply_lua: ops are
//  (op, key, nargs, args...) with op one of CHKV (the hash's field v must equal the one arg),
//  HDEL, HSET, HINCRBY, ZREM, DEL.
typedef struct {
    json_t *ops;            //  array of strings
    size_t nops;
    int64_t count;          //  records purged
    bool more;              //  the batch was full: more may be left
    char mark[64];          //  the progress value to store ("" none)
} s_batch_t;

//  KEYS: retention hash, outbox. ARGV: mark field, mark value, event id, entry, nops, ops...
//  The version checks run first: when one fails nothing is written and 2 is returned.
static gl_redis_script_t s_apply_lua = { .source =
    "local n = tonumber(ARGV[5])\n"
    "local a = 6\n"
    "for k = 1, n do\n"
    "  local c = tonumber(ARGV[a + 2])\n"
    "  if ARGV[a] == 'CHKV' and (redis.call('HGET', ARGV[a + 1], 'v') or '') ~= ARGV[a + 3] then\n"
    "    return 2\n"
    "  end\n"
    "  a = a + 3 + c\n"
    "end\n"
    "a = 6\n"
    "for k = 1, n do\n"
    "  local op, key, c = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])\n"
    "  if op == 'DEL' then redis.call('DEL', key)\n"
    "  elseif op ~= 'CHKV' then redis.call(op, key, unpack(ARGV, a + 3, a + 2 + c)) end\n"
    "  a = a + 3 + c\n"
    "end\n"
    "if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end\n"
    "if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end\n"
    "return 1\n" };

//  KEYS: retention hash. ARGV: now, every ms. 1 when a run is due (and claimed), else 0.
static gl_redis_script_t s_claim_lua = { .source =
    "local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')\n"
    "if nxt > tonumber(ARGV[1]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'next', tonumber(ARGV[1]) + tonumber(ARGV[2]))\n"
    "return 1\n" };

//  --------------------------------------------------------------------------------------------
//  Settings, read from the configuration each time (cheap; the values are checked at start)

static int64_t
s_days (intake_t *intake, s_type_t t)
{
    return gl_config_int (intake->config, s_types[t].key, s_types[t].days, 1, 36500);
}

static int64_t
s_batch_max (intake_t *intake)
{
    return gl_config_int (intake->config, "GL_INTAKE_RETAIN_BATCH", 500, 1, 100000);
}

static int64_t
s_check_ms (intake_t *intake)
{
    return gl_config_int (intake->config, "GL_INTAKE_RETAIN_CHECK_MS", 60000, 100, 86400000);
}

static int64_t
s_every_ms (intake_t *intake)
{
    return gl_config_int (intake->config, "GL_INTAKE_RETAIN_EVERY_H", 24, 1, 8760) * 3600000;
}

//  --------------------------------------------------------------------------------------------
//  Building a batch

static void
s_op (s_batch_t *b, const char *op, const char *key, size_t nargs, const char *const *args)
{
    char c[16];
    snprintf (c, sizeof c, "%zu", nargs);
    json_array_append_new (b->ops, json_string (op));
    json_array_append_new (b->ops, json_string (key));
    json_array_append_new (b->ops, json_string (c));
    for (size_t i = 0; i < nargs; i++)
        json_array_append_new (b->ops, json_string (args[i]));
    b->nops++;
}

static void
s_op1 (s_batch_t *b, const char *op, const char *key, const char *arg)
{
    s_op (b, op, key, arg ? 1 : 0, &arg);
}

//  The mark field of a type ("<type>:wm" or "<type>:cursor").
static const char *
s_mark_field (s_type_t t, const char *what, char *out, size_t len)
{
    snprintf (out, len, "%s:%s", s_types[t].name, what);
    return out;
}

//  The stored mark, "" when none. 0, or -1.
static int
s_mark_read (intake_t *intake, const char *field, char *out, size_t len)
{
    *out = 0;
    redisReply *r = gl_redis_cmd (intake->redis, "HGET %s %s", RETENTION_KEY, field);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING)
        snprintf (out, len, "%s", r->str);
    freeReplyObject (r);
    return 0;
}

//  Commit b for type t with its retention.purged event. 0, 2 (a record changed meanwhile:
//  nothing written, the next run retries), -1.
static int
s_commit (intake_t *intake, s_type_t t, const char *mark_field, s_batch_t *b, int64_t cutoff)
{
    gl_event_t *ev = NULL;
    char *entry = NULL;
    if (b->count > 0) {
        ev = gl_event_new ("retention.purged");
        if (!ev)
            return -1;
        json_object_set_new (ev->data, "record_type", json_string (s_types[t].name));
        json_object_set_new (ev->data, "count", json_integer (b->count));
        json_object_set_new (ev->data, "cutoff", json_integer (cutoff));
        json_object_set_new (ev->data, "more", json_boolean (b->more));
        entry = contacts_outbox_entry (intake, ev, 0);
        if (!entry) {
            gl_event_destroy (&ev);
            return -1;
        }
    }
    size_t nargs = json_array_size (b->ops);
    size_t argc = 5 + nargs;
    const char **argv = calloc (argc + 2, sizeof *argv);
    char nops[16];
    snprintf (nops, sizeof nops, "%zu", b->nops);
    if (!argv) {
        free (entry);
        gl_event_destroy (&ev);
        return -1;
    }
    argv[0] = RETENTION_KEY;
    argv[1] = S_P "outbox";
    argv[2] = *b->mark ? mark_field : "";
    argv[3] = b->mark;
    argv[4] = ev ? ev->id : "";
    argv[5] = entry ? entry : "";
    argv[6] = nops;
    for (size_t i = 0; i < nargs; i++)
        argv[7 + i] = json_string_value (json_array_get (b->ops, i));
    redisReply *r = gl_redis_eval (intake->redis, &s_apply_lua, 2, (int) argc + 2, argv, NULL);
    free (argv);
    free (entry);
    long long rc = -1;
    if (!r || gl_redis_reply_int (r, &rc) != 0)
        rc = -1;
    if (r)
        freeReplyObject (r);
    if (rc == 1 && ev)
        contacts_outbox_deliver (intake, ev, 0);
    gl_event_destroy (&ev);
    return rc == 1 ? 0 : rc == 2 ? 2 : -1;
}

//  Ids (and scores) of index between the type's mark and cutoff (exclusive), at most max.
static redisReply *
s_range (intake_t *intake, const char *index, const char *wm, int64_t cutoff, int64_t max)
{
    redisReply *r = gl_redis_cmd (intake->redis,
                                  "ZRANGEBYSCORE %s %s (%lld WITHSCORES LIMIT 0 %lld", index,
                                  *wm ? wm : "-inf", (long long) cutoff, (long long) max);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0)
        return r;
    if (r)
        freeReplyObject (r);
    return NULL;
}

//  Records in a time index whose hash gets its personal fields removed: contacts and raised.
//  kind is the record's key part ("contact", "emergency", "referral").
static int
s_collect_hash (intake_t *intake, s_batch_t *b, const char *index, const char *kind,
                const char *wm, int64_t cutoff, int64_t max, int64_t now)
{
    redisReply *r = s_range (intake, index, wm, cutoff, max);
    if (!r)
        return -1;
    size_t n = r->elements / 2;
    for (size_t i = 0; i < n; i++)
        gl_redis_append (intake->redis, "HMGET %s%s:%s purged case_h ind_h phone_h created_at", S_P, kind,
                         r->element[2 * i]->str);
    int rc = 0;
    char now_s[24];
    snprintf (now_s, sizeof now_s, "%" PRId64, now);
    for (size_t i = 0; i < n; i++) {
        redisReply *h = gl_redis_reply (intake->redis);
        const char *id = r->element[2 * i]->str;
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 5)
            rc = -1;
        else if (rc == 0) {
            snprintf (b->mark, sizeof b->mark, "%s", r->element[2 * i + 1]->str);
            bool purged = h->element[0]->type == REDIS_REPLY_STRING;
            bool exists = h->element[4]->type == REDIS_REPLY_STRING;
            char key[160];
            snprintf (key, sizeof key, "%s%s:%s", S_P, kind, id);
            if (!purged && exists) {
                if (strcmp (kind, "contact") == 0) {
                    static const char *const idx[] = { "case", "ind", "phone" };
                    for (size_t k = 0; k < 3; k++)
                        if (h->element[k + 1]->type == REDIS_REPLY_STRING) {
                            char ik[160];
                            snprintf (ik, sizeof ik, "%scontacts:%s:%s", S_P, idx[k],
                                      h->element[k + 1]->str);
                            s_op1 (b, "ZREM", ik, id);
                        }
                    size_t nf = 0;
                    while (s_contact_fields[nf])
                        nf++;
                    s_op (b, "HDEL", key, nf, (const char *const *) s_contact_fields);
                    const char *incr[] = { "version", "1" };
                    s_op (b, "HINCRBY", key, 2, incr);
                }
                else
                    s_op1 (b, "HDEL", key, "notes");
                const char *set[] = { "purged", now_s };
                s_op (b, "HSET", key, 2, set);
                b->count++;
            }
        }
        if (h)
            freeReplyObject (h);
    }
    b->more = (int64_t) n == max;
    freeReplyObject (r);
    return rc;
}

//  Complaints: documents, rewritten without their text and numbers (version-checked).
static int
s_collect_complaints (intake_t *intake, s_batch_t *b, const char *wm, int64_t cutoff,
                      int64_t max, int64_t now)
{
    redisReply *r = s_range (intake, S_P "complaints:time", wm, cutoff, max);
    if (!r)
        return -1;
    size_t n = r->elements / 2;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char key[160];
        snprintf (key, sizeof key, "%scomplaint:%s", S_P, r->element[2 * i]->str);
        json_t *doc = NULL;
        int64_t v = 0;
        int got = docstore_read (intake, key, &doc, &v);
        if (got < 0) {
            rc = -1;
            break;
        }
        snprintf (b->mark, sizeof b->mark, "%s", r->element[2 * i + 1]->str);
        if (got == 1 || json_object_get (doc, "purged")) {
            json_decref (doc);
            continue;
        }
        for (size_t k = 0; s_complaint_fields[k]; k++)
            if (json_object_get (doc, s_complaint_fields[k]))
                json_object_set_new (doc, s_complaint_fields[k], json_null ());
        json_object_set_new (doc, "purged", json_integer (now));
        json_object_set_new (doc, "version", json_integer (docstore_int (doc, "version", 0) + 1));
        char *text = json_dumps (doc, JSON_COMPACT);
        json_decref (doc);
        if (!text) {
            rc = -1;
            break;
        }
        char vs[24], nv[24];
        snprintf (vs, sizeof vs, "%" PRId64, v);
        snprintf (nv, sizeof nv, "%" PRId64, v + 1);
        s_op1 (b, "CHKV", key, vs);
        const char *set[] = { "doc", text, "v", nv };
        s_op (b, "HSET", key, 4, set);
        free (text);
        b->count++;
    }
    b->more = (int64_t) n == max;
    freeReplyObject (r);
    return rc;
}

//  Change requests and case-extract rows: found by SCAN (no time index covers them all), from
//  the stored cursor: max * S_SCAN_FACTOR keys of the slot looked at a run (most are other
//  records), so a pass over ten million keys takes a day of checks at the defaults.
static int
s_collect_scan (intake_t *intake, s_batch_t *b, bool cases, const char *cursor,
                int64_t cutoff, int64_t max)
{
    redisReply *r = gl_redis_cmd (intake->redis, "SCAN %s MATCH %s%s:* COUNT %lld",
                                  *cursor ? cursor : "0", S_P, cases ? "case" : "chg",
                                  (long long) max * S_SCAN_FACTOR);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements; i++)
        gl_redis_append (intake->redis, cases ? "HMGET %s updated updated" : "HMGET %s created ref",
                         keys->element[i]->str);
    int rc = 0;
    size_t plen = strlen (S_P) + (cases ? 5 : 4);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *h = gl_redis_reply (intake->redis);
        const char *key = keys->element[i]->str;
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 2)
            rc = -1;
        else if (rc == 0 && h->element[0]->type == REDIS_REPLY_STRING
                 && strlen (key) > plen) {
            long long t = strtoll (h->element[0]->str, NULL, 10);
            const char *tail = key + plen;
            if (t < cutoff) {
                s_op1 (b, "DEL", key, NULL);
                char other[160];
                if (cases) {
                    snprintf (other, sizeof other, "%svfail:%s", S_P, tail);
                    s_op1 (b, "DEL", other, NULL);
                }
                else {
                    if (h->element[1]->type == REDIS_REPLY_STRING) {
                        snprintf (other, sizeof other, "%schg_case:%s", S_P,
                                  h->element[1]->str);
                        s_op1 (b, "ZREM", other, tail);
                    }
                    s_op1 (b, "ZREM", S_P "chg_pending", tail);
                    s_op1 (b, "ZREM", S_P "chg_sent", tail);
                }
                b->count++;
            }
        }
        if (h)
            freeReplyObject (h);
    }
    //  The cursor: "0" again means the pass over the keyspace is complete; the next run starts
    //  a new one (mark "0" is stored as such).
    snprintf (b->mark, sizeof b->mark, "%s", r->element[0]->str);
    b->more = strcmp (r->element[0]->str, "0") != 0;
    freeReplyObject (r);
    return rc;
}

//  One record type's part of a run. Appends its line to types (may be NULL).
static int
s_purge_type (intake_t *intake, s_type_t t, int64_t now, json_t *types, bool *more)
{
    int64_t cutoff = now - s_days (intake, t) * RETENTION_DAY_MS;
    int64_t max = s_batch_max (intake);
    s_batch_t b = { json_array (), 0, 0, false, "" };
    if (!b.ops)
        return -1;
    char field[64], mark[64];
    bool scan = t == S_CHANGES || t == S_CASES;
    s_mark_field (t, scan ? "cursor" : "wm", field, sizeof field);
    int rc = t == S_RAISED ? 0 : s_mark_read (intake, field, mark, sizeof mark);
    int64_t count = 0;
    for (int part = 0; rc == 0 && part < (t == S_RAISED ? 2 : 1); part++) {
        if (t == S_RAISED) {
            //  Two indexes: each keeps its own mark.
            const char *kind = part == 0 ? "emergency" : "referral";
            snprintf (field, sizeof field, "raised:%s:wm", kind);
            rc = s_mark_read (intake, field, mark, sizeof mark);
            char index[96];
            snprintf (index, sizeof index, "%s%s:time", S_P,
                      part == 0 ? "emergencies" : "referrals");
            if (rc == 0)
                rc = s_collect_hash (intake, &b, index, kind, mark, cutoff, max, now);
        }
        else if (t == S_CONTACTS)
            rc = s_collect_hash (intake, &b, S_P "contacts:time", "contact", mark, cutoff, max,
                                 now);
        else if (t == S_COMPLAINTS)
            rc = s_collect_complaints (intake, &b, mark, cutoff, max, now);
        else
            rc = s_collect_scan (intake, &b, t == S_CASES, mark, cutoff, max);
        if (rc == 0)
            rc = s_commit (intake, t, field, &b, cutoff);
        count += rc == 0 ? b.count : 0;
        *more = *more || (rc == 0 && b.more);
        json_array_clear (b.ops);
        b.nops = 0;
        b.count = 0;
        b.more = false;
        *b.mark = 0;
    }
    json_decref (b.ops);
    if (types)
        json_array_append_new (types, json_pack ("{s:s, s:I, s:I, s:b}", "record_type",
                                                 s_types[t].name, "cutoff", (json_int_t) cutoff,
                                                 "purged", (json_int_t) count, "more",
                                                 (int) *more));
    if (rc == 2)
        return 0;       //  a record changed meanwhile: the next run takes it up
    if (rc != 0)
        gl_warn ("intake: retention of %s failed: %s", s_types[t].name,
                 gl_redis_errstr (intake->redis));
    return rc;
}

//  Archives of intake's own sources ("intake" and "intake-N").
static int
s_purge_archives (intake_t *intake, int64_t now, json_t *report)
{
    const char *dir = gl_config_str (intake->config, "GL_ARCHIVE_DIR", NULL);
    int64_t cutoff = now - s_days (intake, S_ARCHIVES) * RETENTION_DAY_MS;
    int64_t removed = 0, kept = 0;
    int rc = 0;
    if (dir && *dir) {
        char **sources = gl_sources_list (intake->redis);
        if (!sources)
            return -1;
        for (size_t i = 0; sources[i]; i++) {
            const char *s = sources[i];
            if (strcmp (s, INTAKE_SERVICE) == 0
                || strncmp (s, INTAKE_SERVICE "-", strlen (INTAKE_SERVICE) + 1) == 0) {
                int64_t left = 0;
                int64_t n = gl_log_archive_purge (dir, s, cutoff, &left);
                if (n < 0) {
                    gl_warn ("intake: cannot read the archive folder of %s", s);
                    rc = -1;
                }
                else {
                    removed += n;
                    kept += left;
                }
            }
            free (sources[i]);
        }
        free (sources);
    }
    if (removed > 0) {
        s_batch_t b = { json_array (), 0, removed, false, "" };
        if (!b.ops || s_commit (intake, S_ARCHIVES, "", &b, cutoff) != 0)
            rc = -1;
        json_decref (b.ops);
    }
    if (report)
        json_object_set_new (report, "archives",
                             json_pack ("{s:I, s:I, s:I}", "cutoff", (json_int_t) cutoff,
                                        "removed", (json_int_t) removed, "kept",
                                        (json_int_t) kept));
    return rc;
}

int
retention_purge (intake_t *intake, json_t **report)
{
    assert (intake);
    int64_t now = gl_now_ms ();
    json_t *rep = json_pack ("{s:I, s:[]}", "now", (json_int_t) now, "types");
    if (!rep)
        return -1;
    json_t *types = json_object_get (rep, "types");
    int rc = 0;
    bool more = false;
    for (s_type_t t = 0; t < S_ARCHIVES; t++) {
        bool m = false;
        if (s_purge_type (intake, t, now, types, &m) != 0)
            rc = -1;
        more = more || m;
    }
    if (s_purge_archives (intake, now, rep) != 0)
        rc = -1;
    json_object_set_new (rep, "more", json_boolean (more));
    //  More left (a full batch) or a failure: the next check runs again instead of a day later.
    redisReply *r = gl_redis_cmd (intake->redis, "HSET %s last_run %lld%s", RETENTION_KEY,
                                  (long long) now, more || rc != 0 ? " next 0" : "");
    if (r)
        freeReplyObject (r);
    if (report)
        *report = rep;
    else
        json_decref (rep);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  The timer

static void s_on_timer (evutil_socket_t fd, short what, void *arg);

static void
s_arm (intake_t *intake)
{
    int64_t ms = s_check_ms (intake);
    struct timeval tv = { (time_t) (ms / 1000), (suseconds_t) ((ms % 1000) * 1000) };
    if (event_base_once (intake->base, -1, EV_TIMEOUT, s_on_timer, intake, &tv) != 0)
        gl_error ("intake: cannot arm the retention timer");
}

static void
s_on_timer (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    intake_t *intake = arg;
    char now[24], every[24];
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    snprintf (every, sizeof every, "%" PRId64, s_every_ms (intake));
    const char *argv[] = { RETENTION_KEY, now, every };
    redisReply *r = gl_redis_eval (intake->redis, &s_claim_lua, 1, 3, argv, NULL);
    long long due = 0;
    if (r && gl_redis_reply_int (r, &due) == 0 && due == 1) {
        json_t *report = NULL;
        int rc = retention_purge (intake, &report);
        json_t *types = json_object_get (report, "types");
        size_t i;
        json_t *line;
        int64_t total = 0;
        json_array_foreach (types, i, line)
            total += docstore_int (line, "purged", 0);
        if (total > 0 || rc != 0)
            gl_info ("intake: retention run: %" PRId64 " records purged%s", total,
                     rc != 0 ? " (a part failed; retried at the next check)" : "");
        if (total > 0)
            audit_record (intake, NULL, "purge", "retention", "", "timer");
        json_decref (report);
    }
    if (r)
        freeReplyObject (r);
    s_arm (intake);
}

void
retention_start (intake_t *intake)
{
    assert (intake);
    if (!intake->config || !intake->base || !intake->redis)
        return;
    //  Read every setting once now, so a bad value stops the start naming its key.
    for (s_type_t t = 0; t < S_NTYPES; t++)
        s_days (intake, t);
    s_batch_max (intake);
    s_check_ms (intake);
    s_every_ms (intake);
    s_arm (intake);
}

//  --------------------------------------------------------------------------------------------
//  The export

//  The ids of a zset, newest first, at most S_EXPORT_MAX. NULL on failure.
static redisReply *
s_ids (intake_t *intake, const char *key)
{
    redisReply *r = gl_redis_cmd (intake->redis, "ZREVRANGE %s 0 %d", key, S_EXPORT_MAX - 1);
    if (r && r->type == REDIS_REPLY_ARRAY)
        return r;
    if (r)
        freeReplyObject (r);
    return NULL;
}

//  A hash as an object of strings (HGETALL). NULL when missing or on failure (*failed set).
static json_t *
s_hash (intake_t *intake, const char *key, bool *failed)
{
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        *failed = true;
        if (r)
            freeReplyObject (r);
        return NULL;
    }
    json_t *o = r->elements ? json_object () : NULL;
    for (size_t i = 0; o && i + 1 < r->elements; i += 2)
        json_object_set_new (o, r->element[i]->str,
                             json_stringn (r->element[i + 1]->str, r->element[i + 1]->len));
    freeReplyObject (r);
    return o;
}

static int
s_export_contacts (intake_t *intake, const char *kind, const char *norm, json_t *out)
{
    char h[CONTACTS_HASH_HEX + 1], key[128];
    contacts_index_hash (intake, kind, norm, h);
    snprintf (key, sizeof key, "%scontacts:%s:%s", S_P, kind, h);
    redisReply *r = s_ids (intake, key);
    if (!r)
        return -1;
    json_t *list = json_object_get (out, "contacts");
    if (r->elements >= S_EXPORT_MAX)
        json_object_set_new (out, "complete", json_false ());
    int rc = 0;
    for (size_t i = 0; i < r->elements && rc == 0; i++) {
        json_t *rec = NULL;
        int got = contacts_read (intake, r->element[i]->str, &rec);
        if (got < 0)
            rc = -1;
        else if (got == 0) {
            json_array_append_new (list, contacts_public (rec));
            json_decref (rec);
        }
    }
    freeReplyObject (r);
    return rc;
}

//  Complaints have no index by person: every complaint is looked at (newest first), up to
//  GL_INTAKE_EXPORT_SCAN_MAX.
static int
s_export_complaints (intake_t *intake, const char *ncase, const char *nphone, json_t *out)
{
    int64_t cap = gl_config_int (intake->config, "GL_INTAKE_EXPORT_SCAN_MAX", 100000, 100,
                                 10000000);
    json_t *list = json_object_get (out, "complaints");
    int64_t seen = 0;
    bool complete = true;
    for (int64_t start = 0;; start += DOCSTORE_BATCH) {
        if (seen >= cap) {
            complete = false;
            break;
        }
        redisReply *r = gl_redis_cmd (intake->redis, "ZREVRANGE %s %lld %lld",
                                      S_P "complaints:time", (long long) start,
                                      (long long) (start + DOCSTORE_BATCH - 1));
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            return -1;
        }
        size_t n = r->elements;
        const char *keys[DOCSTORE_BATCH];
        char buf[DOCSTORE_BATCH][96];
        for (size_t i = 0; i < n; i++) {
            snprintf (buf[i], sizeof buf[i], "%scomplaint:%s", S_P, r->element[i]->str);
            keys[i] = buf[i];
        }
        freeReplyObject (r);
        json_t *docs[DOCSTORE_BATCH] = { 0 };
        if (n && docstore_read_many (intake, keys, n, docs) != 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const char *c = docstore_str (docs[i], "case_number");
            const char *p = docstore_str (docs[i], "phone");
            if ((ncase && c && strcmp (c, ncase) == 0) || (nphone && p && strcmp (p, nphone) == 0))
                json_array_append (list, docs[i]);
            json_decref (docs[i]);
        }
        seen += (int64_t) n;
        if (n < DOCSTORE_BATCH)
            break;
    }
    json_object_set_new (out, "complaints_scanned", json_integer (seen));
    if (!complete)
        json_object_set_new (out, "complete", json_false ());
    return 0;
}

//  Change requests and the case-extract row of a case number (callers' own hashing).
static int
s_export_case (intake_t *intake, const char *case_number, json_t *out)
{
    char norm[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1], key[128];
    if (callers_case_no_norm (case_number, norm) != 0)
        return 0;
    callers_case_ref (intake->callers, norm, ref);
    json_t *row = NULL;
    int got = cases_read (intake->callers, ref, &row);
    if (got < 0)
        return -1;
    if (got == 0)
        json_object_set_new (out, "case", row);
    snprintf (key, sizeof key, "%schg_case:%s", S_P, ref);
    redisReply *r = s_ids (intake, key);
    if (!r)
        return -1;
    bool failed = false;
    json_t *list = json_object_get (out, "change_requests");
    if (r->elements >= S_EXPORT_MAX)
        json_object_set_new (out, "complete", json_false ());
    for (size_t i = 0; i < r->elements && !failed; i++) {
        snprintf (key, sizeof key, "%schg:%s", S_P, r->element[i]->str);
        json_t *h = s_hash (intake, key, &failed);
        if (h) {
            json_object_del (h, "ref");
            json_array_append_new (list, h);
        }
    }
    freeReplyObject (r);
    return failed ? -1 : 0;
}

//  Calls still kept (terminal ones expire after GL_INTAKE_CALL_RETAIN_MS) whose number is the
//  phone: a bounded SCAN of the call hashes.
static int
s_export_calls (intake_t *intake, const char *nphone, json_t *out)
{
    json_t *list = json_object_get (out, "calls");
    char cursor[32] = "0";
    int rounds = 0;
    do {
        redisReply *r = gl_redis_cmd (intake->redis, "SCAN %s MATCH %scall:* COUNT 10000",
                                      cursor, S_P);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            return -1;
        }
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            if (strcmp (k, S_P "call:seq") == 0)
                continue;
            redisReply *t = gl_redis_cmd (intake->redis, "TYPE %s", k);
            bool is_hash = t && t->type == REDIS_REPLY_STATUS && strcmp (t->str, "hash") == 0;
            if (t)
                freeReplyObject (t);
            if (!is_hash)
                continue;
            bool failed = false;
            json_t *h = s_hash (intake, k, &failed);
            const char *num = docstore_str (h, "number");
            char norm[CONTACTS_PHONE_DIGITS + 8];
            if (num && contacts_phone_normalise (num, contacts_country (intake), norm,
                                                 sizeof norm)
                           == 0
                && strcmp (norm, nphone) == 0)
                json_array_append (list, h);
            json_decref (h);
        }
        freeReplyObject (r);
    } while (strcmp (cursor, "0") != 0 && ++rounds < 10000);
    if (strcmp (cursor, "0") != 0)
        json_object_set_new (out, "complete", json_false ());
    return 0;
}

int
retention_export (intake_t *intake, const char *kind, const char *value, json_t **out)
{
    assert (intake && kind && value && out);
    *out = NULL;
    bool is_case = strcmp (kind, "case_number") == 0;
    bool is_ind = strcmp (kind, "individual_number") == 0;
    bool is_phone = strcmp (kind, "phone") == 0;
    char norm[CONTACTS_NUMBER_MAX + CONTACTS_PHONE_MAX + 8];
    if (!is_case && !is_ind && !is_phone)
        return 1;
    if (is_phone ? contacts_phone_normalise (value, contacts_country (intake), norm, sizeof norm)
                 : contacts_number_normalise (value, norm, sizeof norm))
        return 1;
    json_t *o = json_pack ("{s:[], s:[], s:[], s:n, s:[], s:b}", "contacts", "complaints",
                           "change_requests", "case", "calls", "complete", 1);
    if (!o)
        return -1;
    int rc = s_export_contacts (intake, is_case ? "case" : is_ind ? "ind" : "phone", norm, o);
    if (rc == 0 && is_case)
        rc = s_export_case (intake, value, o);
    if (rc == 0 && is_phone)
        rc = s_export_calls (intake, norm, o);
    //  Complaints hold a case number and a phone, not an individual number.
    if (rc == 0 && !is_ind)
        rc = s_export_complaints (intake, is_case ? norm : NULL, is_phone ? norm : NULL, o);
    if (rc != 0) {
        json_decref (o);
        return -1;
    }
    *out = o;
    return 0;
}
