/*  cases — the read-only case-status extract (callers.h): checking values, writing cases field by
    field under their "as of" dates, the CSV import, reading.

    A case is one hash, intake:{intake}:case:<ref>: case_no (in clear: the record is personal data
    and is read only through the API's checks), and for each field given so far the value and
    "<field>:as_of". A field is replaced only by a value whose as_of is the same or later, so an
    old extract sent again, or a push that crosses an import, never turns a case back in time.
    An empty value clears a field (the extract says "none"); an absent column leaves it alone.

    The import reads the CSV twice with gl_csv: first to check every row (nothing is written if
    any row is refused), then to write, GL_CASES_BATCH rows per Lua call.
*/
#include "callers.h"
#include "gl/gl_clock.h"
#include "gl/gl_csv.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH         200         //  rows per Lua call
#define S_FIELD_BYTES   256         //  bytes in one CSV field
#define S_COLUMNS_MAX   16

//  KEYS: one case key per row. ARGV: src, now, then per row: case_no, as_of, n, n pairs of
//  field and value. Returns one outcome per row: 3 created, 2 updated (a field took a new value
//  or a later date), 1 unchanged (nothing older, nothing new: the same data again), 0 stale
//  (something given was older than what is held, nothing was newer).
static gl_redis_script_t s_write_script = { .source =
    "local src, now = ARGV[1], ARGV[2]\n"
    "local out, a = {}, 3\n"
    "for k = 1, #KEYS do\n"
    "  local key = KEYS[k]\n"
    "  local case_no, as_of, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])\n"
    "  a = a + 3\n"
    "  local created = redis.call('EXISTS', key) == 0\n"
    "  local taken, older = 0, 0\n"
    "  for i = 1, n do\n"
    "    local f, v = ARGV[a], ARGV[a + 1]\n"
    "    a = a + 2\n"
    "    local cur = redis.call('HGET', key, f .. ':as_of')\n"
    "    if not cur or cur < as_of or (cur == as_of and redis.call('HGET', key, f) ~= v) then\n"
    "      redis.call('HSET', key, f, v, f .. ':as_of', as_of)\n"
    "      taken = taken + 1\n"
    "    elseif cur > as_of then\n"
    "      older = older + 1\n"
    "    end\n"
    "  end\n"
    "  if created or taken > 0 then\n"
    "    redis.call('HSET', key, 'case_no', case_no, 'updated', now, 'src', src)\n"
    "  end\n"
    "  if created then out[k] = 3 elseif taken > 0 then out[k] = 2\n"
    "  elseif older > 0 then out[k] = 0 else out[k] = 1 end\n"
    "end\n"
    "return out\n" };

//  --------------------------------------------------------------------------------------------
//  Values

const char *
cases_value_check (callers_field_t field, const char *value)
{
    if (!*value)
        return NULL;        //  empty: the extract says none
    switch (field) {
    case CALLERS_F_REGISTRATION:
    case CALLERS_F_RSD:
    case CALLERS_F_RESETTLEMENT:
    case CALLERS_F_ASSISTANCE:
        return callers_status_valid (value)
                   ? NULL
                   : "a status is at most 64 characters without control characters";
    case CALLERS_F_NEXT_APPOINTMENT:
    case CALLERS_F_DOB:
        return callers_date_valid (value) ? NULL : "not a date YYYY-MM-DD";
    case CALLERS_F_FAMILY_SIZE: {
        size_t n = strlen (value);
        bool digits = n >= 1 && n <= 2 && strspn (value, "0123456789") == n;
        return digits && atoi (value) >= 1 ? NULL : "not an integer 1..99";
    }
    case CALLERS_F_PHONES: {
        size_t count = 0;
        for (const char *p = value;; count++) {
            size_t len = strcspn (p, ";");
            char one[64], norm[CALLERS_PHONE_MAX + 2];
            if (len >= sizeof one)
                return "not a list of phone numbers separated by ';'";
            memcpy (one, p, len);
            one[len] = 0;
            if (callers_phone_norm (one, norm) != 0)
                return "not a list of phone numbers separated by ';'";
            if (count >= CALLERS_PHONES_MAX)
                return "more than 3 phone numbers";
            if (!p[len])
                break;
            p += len + 1;
        }
        return NULL;
    }
    case CALLERS_F_LANGUAGE:
        return callers_lang_valid (value) ? NULL : "not a language code (ar, en, fr-CA ...)";
    case CALLERS_F_LOCATION:
        return callers_code_valid (value) ? NULL : "not a location code";
    default:
        return "unknown field";
    }
}

//  The stored form of a checked value: family size without leading zeros, phones in their
//  normal forms joined by ';'.
static void
s_stored (callers_field_t field, const char *value, char *out, size_t outlen)
{
    if (field == CALLERS_F_FAMILY_SIZE && *value) {
        snprintf (out, outlen, "%d", atoi (value));
        return;
    }
    if (field != CALLERS_F_PHONES) {
        snprintf (out, outlen, "%s", value);
        return;
    }
    size_t n = 0;
    out[0] = 0;
    for (const char *p = value; *p;) {
        size_t len = strcspn (p, ";");
        char one[64], norm[CALLERS_PHONE_MAX + 2];
        snprintf (one, sizeof one, "%.*s", (int) len, p);
        if (callers_phone_norm (one, norm) == 0)
            n += (size_t) snprintf (out + n, outlen - n, "%s%s", n ? ";" : "", norm);
        p += len + (p[len] == ';');
    }
}

//  as_of: a date, not after tomorrow on the business clock (the extract cannot be from the
//  future; a day's slack for time zones).
static const char *
s_as_of_check (const char *value)
{
    if (!callers_date_valid (value))
        return "not a date YYYY-MM-DD";
    char tomorrow[11];
    time_t t = (time_t) ((gl_now_ms () + 86400000) / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (tomorrow, sizeof tomorrow, "%Y-%m-%d", &tm);
    return strcmp (value, tomorrow) <= 0 ? NULL : "in the future";
}

//  --------------------------------------------------------------------------------------------
//  Writing, in batches of rows

typedef struct {
    callers_t *callers;
    const char *src;
    char now[24];
    size_t rows;
    char **keys;
    char **args;
    size_t nargs, capargs;
    int64_t counts[4];          //  stale, unchanged, updated, created
} s_batch_t;

static int
s_arg (s_batch_t *b, const char *text)
{
    if (b->nargs == b->capargs) {
        size_t cap = b->capargs ? b->capargs * 2 : 256;
        char **args = realloc (b->args, cap * sizeof *args);
        if (!args)
            return -1;
        b->args = args;
        b->capargs = cap;
    }
    b->args[b->nargs] = strdup (text);
    return b->args[b->nargs++] ? 0 : -1;
}

static void
s_batch_reset (s_batch_t *b)
{
    for (size_t i = 0; i < b->rows; i++)
        free (b->keys[i]);
    for (size_t i = 0; i < b->nargs; i++)
        free (b->args[i]);
    b->rows = 0;
    b->nargs = 0;
}

static void
s_batch_free (s_batch_t *b)
{
    s_batch_reset (b);
    free (b->keys);
    free (b->args);
}

static int
s_batch_add (s_batch_t *b, const callers_case_in_t *in)
{
    char ref[CALLERS_REF_LEN + 1], key[96];
    callers_case_ref (b->callers, in->case_no, ref);
    snprintf (key, sizeof key, "%scase:%s", CALLERS_KEY_PREFIX, ref);
    b->keys[b->rows] = strdup (key);
    if (!b->keys[b->rows])
        return -1;
    b->rows++;
    size_t given = 0;
    for (int f = 0; f < CALLERS_F__COUNT; f++)
        given += in->values[f] != NULL;
    char n[8];
    snprintf (n, sizeof n, "%zu", given);
    if (s_arg (b, in->case_no) || s_arg (b, in->as_of) || s_arg (b, n))
        return -1;
    for (int f = 0; f < CALLERS_F__COUNT; f++) {
        if (!in->values[f])
            continue;
        char value[S_FIELD_BYTES + 1];
        s_stored ((callers_field_t) f, in->values[f], value, sizeof value);
        if (s_arg (b, callers_field_name ((callers_field_t) f)) || s_arg (b, value))
            return -1;
    }
    return 0;
}

//  Run the batch. 0, or -1 when Redis failed.
static int
s_batch_flush (s_batch_t *b, callers_write_t *last)
{
    if (b->rows == 0)
        return 0;
    size_t argc = b->rows + 2 + b->nargs;
    const char **argv = malloc (argc * sizeof *argv);
    if (!argv)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < b->rows; i++)
        argv[k++] = b->keys[i];
    argv[k++] = b->src;
    argv[k++] = b->now;
    for (size_t i = 0; i < b->nargs; i++)
        argv[k++] = b->args[i];
    redisReply *r = gl_redis_eval (callers_intake (b->callers)->redis, &s_write_script,
                                   (int) b->rows, (int) argc, argv, NULL);
    free (argv);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == b->rows) {
        rc = 0;
        for (size_t i = 0; i < r->elements; i++) {
            long long o = 0;
            gl_redis_reply_int (r->element[i], &o);
            if (o < 0 || o > 3)
                o = 0;
            b->counts[o]++;
            if (last)
                *last = (callers_write_t) o;
        }
    }
    else if (r && r->type == REDIS_REPLY_ERROR)
        gl_error ("cases: the write script failed: %s", r->str);
    if (r)
        freeReplyObject (r);
    s_batch_reset (b);
    return rc;
}

static int
s_batch_init (s_batch_t *b, callers_t *callers, const char *src, size_t max_rows)
{
    memset (b, 0, sizeof *b);
    b->callers = callers;
    b->src = src;
    snprintf (b->now, sizeof b->now, "%" PRId64, gl_now_ms ());
    b->keys = calloc (max_rows, sizeof *b->keys);
    return b->keys ? 0 : -1;
}

int
cases_write (callers_t *self, const callers_case_in_t *in, const char *src,
             callers_write_t *outcome)
{
    s_batch_t b;
    if (s_batch_init (&b, self, src, 1) != 0)
        return -1;
    int rc = s_batch_add (&b, in) == 0 ? s_batch_flush (&b, outcome) : -1;
    s_batch_free (&b);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  The CSV import

#define S_COL_CASE_NO   (-1)
#define S_COL_AS_OF     (-2)

typedef struct {
    callers_t *callers;
    size_t columns;
    int map[S_COLUMNS_MAX];         //  column -> field, or S_COL_*
    bool has_case_no, has_as_of;
    //  First pass: the first problem and how many rows had one.
    char first[224];
    size_t bad_rows;
    //  Second pass.
    bool write;
    s_batch_t batch;
    bool failed;
} s_import_t;

static void
s_problem (s_import_t *im, size_t row, size_t column, const char *name, const char *why)
{
    if (im->bad_rows++ == 0) {
        if (name)
            snprintf (im->first, sizeof im->first, "row %zu, column %zu (%s): %s", row, column,
                      name, why);
        else
            snprintf (im->first, sizeof im->first, "row %zu, column %zu: %s", row, column, why);
    }
}

static int
s_header (s_import_t *im, const gl_csv_row_t *row)
{
    im->columns = row->count;
    for (size_t c = 0; c < row->count; c++) {
        const char *name = row->fields[c];
        int which = -100;
        if (strcmp (name, "case_no") == 0)
            which = S_COL_CASE_NO;
        else if (strcmp (name, "as_of") == 0)
            which = S_COL_AS_OF;
        for (int f = 0; f < CALLERS_F__COUNT && which == -100; f++)
            if (strcmp (name, callers_field_name ((callers_field_t) f)) == 0)
                which = f;
        if (which == -100) {
            s_problem (im, 1, c + 1, NULL, "unknown column (see docs/api/callers.md)");
            return 1;
        }
        for (size_t k = 0; k < c; k++)
            if (im->map[k] == which) {
                s_problem (im, 1, c + 1, NULL, "the column appears twice");
                return 1;
            }
        im->map[c] = which;
        im->has_case_no = im->has_case_no || which == S_COL_CASE_NO;
        im->has_as_of = im->has_as_of || which == S_COL_AS_OF;
    }
    if (!im->has_case_no || !im->has_as_of) {
        s_problem (im, 1, row->count + 1, NULL,
                   !im->has_case_no ? "no case_no column" : "no as_of column");
        return 1;
    }
    return 0;
}

//  One data row into in; 0, or -1 after recording the problem.
static int
s_data_row (s_import_t *im, const gl_csv_row_t *row, callers_case_in_t *in)
{
    memset (in, 0, sizeof *in);
    for (size_t c = 0; c < row->count; c++) {
        const char *value = row->fields[c];
        int which = im->map[c];
        const char *why = NULL;
        const char *name = which == S_COL_CASE_NO  ? "case_no"
                         : which == S_COL_AS_OF   ? "as_of"
                                                  : callers_field_name ((callers_field_t) which);
        if (which == S_COL_CASE_NO) {
            if (callers_case_no_norm (value, in->case_no) != 0)
                why = *value ? "not a case number (1..32 of A-Z, 0-9, -)" : "empty";
        }
        else if (which == S_COL_AS_OF) {
            why = s_as_of_check (value);
            if (!why)
                snprintf (in->as_of, sizeof in->as_of, "%s", value);
        }
        else {
            why = cases_value_check ((callers_field_t) which, value);
            in->values[which] = value;
        }
        if (why) {
            s_problem (im, row->row, c + 1, name, why);
            return -1;
        }
    }
    return 0;
}

static int
s_on_row (void *arg, const gl_csv_row_t *row)
{
    s_import_t *im = arg;
    if (row->row == 1)
        return im->write ? 0 : s_header (im, row);
    callers_case_in_t in;
    if (s_data_row (im, row, &in) != 0)
        return im->bad_rows > 1000 ? 1 : 0;     //  enough counted
    if (!im->write)
        return 0;
    if (s_batch_add (&im->batch, &in) != 0
        || (im->batch.rows == S_BATCH && s_batch_flush (&im->batch, NULL) != 0)) {
        im->failed = true;
        return 1;
    }
    return 0;
}

int
cases_import (callers_t *self, const char *csv, size_t len, json_t **result, char *message,
              size_t msglen)
{
    gl_csv_limits_t limits = {
        .max_field = S_FIELD_BYTES,
        .max_fields = S_COLUMNS_MAX,
        .max_rows = (size_t) gl_config_int (callers_intake (self)->config,
                                            "GL_INTAKE_IMPORT_MAX_ROWS", 100000, 1, 10000000)
                  + 1,
        .same_width = true,
    };
    s_import_t im = { .callers = self };
    gl_csv_error_t err;
    int rc = gl_csv_parse (csv, len, &limits, s_on_row, &im, &err);
    if (rc < 0) {
        snprintf (message, msglen, "%s%s", err.message,
                  im.bad_rows ? " (and rows before it were refused too)" : "");
        return 400;
    }
    if (im.bad_rows) {
        if (im.bad_rows > 1)
            snprintf (message, msglen, "%s; %zu%s more rows refused", im.first, im.bad_rows - 1,
                      im.bad_rows > 1000 ? " or" : "");
        else
            snprintf (message, msglen, "%s", im.first);
        return 400;
    }
    if (im.columns == 0) {
        snprintf (message, msglen, "row 1, column 1: no header row");
        return 400;
    }
    //  Every row is fine: write.
    im.write = true;
    if (s_batch_init (&im.batch, self, "import", S_BATCH) != 0) {
        snprintf (message, msglen, "out of memory");
        return 503;
    }
    rc = gl_csv_parse (csv, len, &limits, s_on_row, &im, NULL);
    if (rc == 0 && s_batch_flush (&im.batch, NULL) != 0)
        im.failed = true;
    int64_t stale = im.batch.counts[0], unchanged = im.batch.counts[1],
            updated = im.batch.counts[2], created = im.batch.counts[3];
    s_batch_free (&im.batch);
    if (rc != 0 || im.failed) {
        snprintf (message, msglen, "Redis failed during the import; sending the file again is "
                                   "safe");
        return 503;
    }
    *result = json_pack ("{s:I, s:I, s:I, s:I, s:I}", "rows",
                         (json_int_t) (stale + unchanged + updated + created), "created",
                         (json_int_t) created, "updated", (json_int_t) updated, "unchanged",
                         (json_int_t) unchanged, "stale", (json_int_t) stale);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Reading

int
cases_field (callers_t *self, const char *ref, callers_field_t field, char *out, size_t outlen)
{
    redisReply *r = gl_redis_cmd (callers_intake (self)->redis, "HMGET %scase:%s case_no %s",
                                  CALLERS_KEY_PREFIX, ref, callers_field_name (field));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    int rc = 1;
    if (r->element[0]->type == REDIS_REPLY_STRING) {
        rc = 0;
        snprintf (out, outlen, "%s",
                  r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    }
    freeReplyObject (r);
    return rc;
}

//  A field's value as JSON: family_size an integer, phones an array, "" is null.
static json_t *
s_value_json (callers_field_t field, const char *value)
{
    if (!*value)
        return json_null ();
    if (field == CALLERS_F_FAMILY_SIZE)
        return json_integer (atoi (value));
    if (field != CALLERS_F_PHONES)
        return json_string (value);
    json_t *list = json_array ();
    for (const char *p = value; *p;) {
        size_t len = strcspn (p, ";");
        json_array_append_new (list, json_stringn (p, len));
        p += len + (p[len] == ';');
    }
    return list;
}

int
cases_read (callers_t *self, const char *ref, json_t **out)
{
    redisReply *r = gl_redis_cmd (callers_intake (self)->redis, "HGETALL %scase:%s",
                                  CALLERS_KEY_PREFIX, ref);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    const char *case_no = NULL;
    const char *values[CALLERS_F__COUNT] = { 0 }, *as_of[CALLERS_F__COUNT] = { 0 };
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *name = r->element[i]->str, *value = r->element[i + 1]->str;
        if (strcmp (name, "case_no") == 0)
            case_no = value;
        for (int f = 0; f < CALLERS_F__COUNT; f++) {
            const char *fname = callers_field_name ((callers_field_t) f);
            size_t n = strlen (fname);
            if (strncmp (name, fname, n) != 0)
                continue;
            if (name[n] == 0)
                values[f] = value;
            else if (strcmp (name + n, ":as_of") == 0)
                as_of[f] = value;
        }
    }
    if (!case_no) {
        freeReplyObject (r);
        return 1;
    }
    json_t *obj = json_pack ("{s:s}", "case_no", case_no);
    for (int f = 0; obj && f < CALLERS_F__COUNT; f++) {
        //  The date of birth is for verification only: never shown.
        if (f == CALLERS_F_DOB)
            continue;
        json_t *v = values[f] && as_of[f]
                        ? json_pack ("{s:o, s:s}", "value",
                                     s_value_json ((callers_field_t) f, values[f]), "as_of",
                                     as_of[f])
                        : json_null ();
        json_object_set_new (obj, callers_field_name ((callers_field_t) f), v);
    }
    freeReplyObject (r);
    *out = obj;
    return obj ? 0 : -1;
}
