/*  contacts — see contacts.h. This file holds the state, identifiers and their index hashes,
    the record's storage form, and the outbox; the HTTP handlers are in api_contacts.c and
    raise.c.

    Why the outbox, and why this way round (docs/api/contacts.md, "Records and events"): the
    record must not exist without its event, nor the event without its record. Redis cannot put
    our record write and gl_pub's append in one script (the append is libshared's, under the
    publisher's lease), so the record is written first together with the complete event, and
    the event is appended from there. The event keeps its id, time and payload through a crash,
    so a late delivery is the same event, and the sweep checks the log for that id before it
    appends, so it is not doubled.
*/
#include "contacts.h"
#include "aredis.h"
#include "audit.h"
#include "intake.h"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include "gl/gl_outbox.h"
#include "gl/gl_pub.h"
#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_BYTES         32
#define S_OUTBOX            CONTACTS_PREFIX "outbox"
#define S_INDEX_KEY         CONTACTS_PREFIX "contacts:index_key"
#define S_INDEX_KEY_ID      CONTACTS_PREFIX "contacts:index_key_id"
#define S_REPEAT_CANDIDATES 100         //  latest contacts of one person looked at for a repeat

struct _contacts_t {
    intake_t *intake;
    taxonomy_t *taxonomy;
    unsigned char key[S_KEY_BYTES];     //  the index key
    char country[4];                    //  GL_INTAKE_PHONE_COUNTRY_CODE, "" when unset
    int64_t window_ms;                  //  repeat window
    int64_t idem_ttl_ms;
    struct event *sweep;
    struct event *flush;                //  delivers the outbox's deferred events (s_on_flush)
};

//  --------------------------------------------------------------------------------------------
//  Scripts

//  Create a record with its indexes, idempotency key, outbox entry and audit entry
//  (contacts_write_new). The repeat check reads earlier records (ARGV[11] .. id) that are not in
//  KEYS: they share the {intake} hash tag, so they are in the same Cluster slot as every
//  declared key.
//  KEYS: 1 record, 2 outbox, 3 idempotency key (read only when ARGV[3] is "1"), 4 the audit
//  stream, 5.. index zsets (the first ARGV[8] of them are person indexes).
//  ARGV: 1 id, 2 score, 3 idempotency on, 4 its value, 5 its TTL (ms), 6 event id, 7 outbox
//  entry without its closing "}}", 8 person index count, 9 detect repeats, 10 window (ms),
//  11 record key prefix, 12 the new record's categories (space-separated), 13 field count,
//  then field, value pairs, then "1" and the audit entry's AUDIT_ARGC strings, or "0".
//  Returns {'OK', repeat_of, audited ('1' or an error)} or {'IDEM', stored}. The audit entry
//  comes last and its failure does not undo the record (as when audit_record follows a write).
static gl_redis_script_t s_create = { .source = AUDIT_LUA
    "if ARGV[3] == '1' then\n"
    "  local prior = redis.call('GET', KEYS[3])\n"
    "  if prior then return {'IDEM', prior} end\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end\n"
    "local id, score = ARGV[1], tonumber(ARGV[2])\n"
    "local repeat_of, tail = '', ''\n"
    "if ARGV[9] == '1' then\n"
    "  local want = {}\n"
    "  for c in string.gmatch(ARGV[12], '%S+') do want[c] = true end\n"
    "  local best = nil\n"
    "  for i = 1, tonumber(ARGV[8]) do\n"
    "    local from, page = 0, 8\n"
    "    while from < 100 do\n"
    "      local cands = redis.call('ZREVRANGEBYSCORE', KEYS[4 + i], score,\n"
    "        best or (score - tonumber(ARGV[10])), 'WITHSCORES', 'LIMIT', from, page)\n"
    "      local found = false\n"
    "      for j = 1, #cands, 2 do\n"
    "        local cs = tonumber(cands[j + 1])\n"
    "        if best == nil or cs > best then\n"
    "          local cats = redis.call('HGET', ARGV[11] .. cands[j], 'topcats')\n"
    "          for c in string.gmatch(cats or '', '%S+') do\n"
    "            if want[c] then best = cs; repeat_of = cands[j]; found = true; break end\n"
    "          end\n"
    "        end\n"
    "        if found then break end\n"
    "      end\n"
    "      if found or #cands < 2 * page then break end\n"
    "      from = from + page\n"
    "      page = 100 - from < 23 and 100 - from or 23\n"
    "    end\n"
    "  end\n"
    "  if repeat_of == '' then tail = ',\"repeat\":false,\"repeat_of\":null'\n"
    "  else tail = ',\"repeat\":true,\"repeat_of\":\"' .. repeat_of .. '\"' end\n"
    "end\n"
    "local n = tonumber(ARGV[13])\n"
    "local fields = { unpack(ARGV, 14, 13 + 2 * n) }\n"
    "if ARGV[9] == '1' then\n"
    "  fields[#fields + 1] = 'repeat'\n"
    "  fields[#fields + 1] = repeat_of == '' and '0' or '1'\n"
    "  fields[#fields + 1] = 'repeat_of'\n"
    "  fields[#fields + 1] = repeat_of\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(fields))\n"
    "for i = 5, #KEYS do redis.call('ZADD', KEYS[i], score, id) end\n"
    "redis.call('HSET', KEYS[2], ARGV[6], ARGV[7] .. tail .. '}}')\n"
    "if ARGV[3] == '1' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5]) end\n"
    "local audited = '1'\n"
    "if ARGV[14 + 2 * n] == '1' then\n"
    "  local ok, err = pcall(audit_append, KEYS[4], ARGV, 15 + 2 * n)\n"
    "  if not ok then audited = tostring(err and (err.err or err) or 'error') end\n"
    "end\n"
    "return {'OK', repeat_of, audited}\n" };

//  Update a record when its version is still the one read (contacts_write_update).
//  KEYS: 1 record, 2 outbox, then ARGV[6] zsets to remove id from, then the zsets to add it to.
//  ARGV: 1 id, 2 expected version, 3 score, 4 event id, 5 outbox entry (empty: no event),
//  6 removals, 7 field pairs to set, 8 fields to delete, then the pairs, then the names.
static gl_redis_script_t s_update = { .source =
    "local v = redis.call('HGET', KEYS[1], 'version')\n"
    "if not v then return 'GONE' end\n"
    "if v ~= ARGV[2] then return 'CONFLICT' end\n"
    "local nrem, nset, ndel = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])\n"
    "for i = 3, 2 + nrem do redis.call('ZREM', KEYS[i], ARGV[1]) end\n"
    "for i = 3 + nrem, #KEYS do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1]) end\n"
    "if nset > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 9, 8 + 2 * nset)) end\n"
    "if ndel > 0 then\n"
    "  redis.call('HDEL', KEYS[1], unpack(ARGV, 9 + 2 * nset, 8 + 2 * nset + ndel))\n"
    "end\n"
    "if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[5]) end\n"
    "return 'OK'\n" };

//  --------------------------------------------------------------------------------------------
//  The record's storage form

typedef enum { S_STR, S_INT, S_BOOL, S_LIST } s_type_t;

//  Every field of a contact, in the order the API shows them. Internal fields (index hashes,
//  top-level categories) are stored under their name and shown to code as "_<name>".
static const struct {
    const char *name;
    s_type_t type;
    bool internal;
} s_fields[] = {
    { "id", S_STR, false },           { "created_at", S_INT, false },
    { "updated_at", S_INT, false },   { "version", S_INT, false },
    { "channel", S_STR, false },      { "direction", S_STR, false },
    { "anonymous", S_BOOL, false },   { "case_number", S_STR, false },
    { "individual_number", S_STR, false }, { "phone", S_STR, false },
    { "language", S_STR, false },     { "categories", S_LIST, false },
    { "sensitive", S_BOOL, false },   { "outcome", S_STR, false },
    { "notes", S_STR, false },        { "frustration", S_BOOL, false },
    { "recording_ref", S_STR, false }, { "call_id", S_STR, false },
    { "agent_id", S_STR, false },     { "updated_by", S_STR, false },
    { "sex", S_STR, false },          { "age_group", S_STR, false },
    { "nationality", S_STR, false },  { "specific_needs", S_LIST, false },
    { "location", S_STR, false },     { "repeat", S_BOOL, false },
    { "repeat_of", S_STR, false },    { "topcats", S_STR, true },
    { "case_h", S_STR, true },        { "ind_h", S_STR, true },
    { "phone_h", S_STR, true },
};
#define S_NFIELDS (sizeof s_fields / sizeof s_fields[0])

//  The JSON value of one stored field (NULL: absent and no default).
static json_t *
s_field_json (s_type_t type, const char *value, size_t len)
{
    switch (type) {
    case S_STR:
        return value && len ? json_stringn (value, len) : json_null ();
    case S_INT:
        return json_integer (value ? (json_int_t) strtoll (value, NULL, 10) : 0);
    case S_BOOL:
        return json_boolean (value && len == 1 && value[0] == '1');
    case S_LIST: {
        json_t *list = value ? json_loadb (value, len, 0, NULL) : NULL;
        if (!json_is_array (list)) {
            json_decref (list);
            list = json_array ();
        }
        return list;
    }
    }
    return json_null ();
}

//  The record of an HGETALL reply; NULL for an empty reply (no such record) or an error.
static json_t *
s_record_from_reply (const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->elements % 2)
        return NULL;
    json_t *rec = json_object ();
    for (size_t f = 0; rec && f < S_NFIELDS; f++) {
        const char *value = NULL;
        size_t len = 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const redisReply *k = r->element[i], *v = r->element[i + 1];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING
                && strcmp (k->str, s_fields[f].name) == 0) {
                value = v->str;
                len = v->len;
                break;
            }
        }
        char name[40];
        snprintf (name, sizeof name, "%s%s", s_fields[f].internal ? "_" : "", s_fields[f].name);
        json_object_set_new (rec, name, s_field_json (s_fields[f].type, value, len));
    }
    return rec;
}

int
contacts_read (intake_t *intake, const char *id, json_t **out)
{
    assert (intake && id && out);
    *out = NULL;
    if (!gl_id_valid (id))
        return 1;
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL " CONTACTS_PREFIX "contact:%s", id);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    *out = s_record_from_reply (r);
    freeReplyObject (r);
    return *out ? 0 : 1;
}

int
contacts_read_many (intake_t *intake, const char *const *ids, size_t n, json_t **out)
{
    assert (intake && (ids || n == 0) && (out || n == 0));
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    for (size_t i = 0; i < n; i++)
        if (gl_redis_append (intake->redis, "HGETALL " CONTACTS_PREFIX "contact:%s", ids[i])
            != 0)
            return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = gl_redis_reply (intake->redis);
        if (!r || r->type == REDIS_REPLY_ERROR)
            rc = -1;
        else
            out[i] = s_record_from_reply (r);
        if (r)
            freeReplyObject (r);
        if (!r)
            break;          //  the connection dropped: the other replies are lost
    }
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            json_decref (out[i]), out[i] = NULL;
    return rc;
}

//  The stored text of one field of rec; NULL when it is not stored (null, absent). *buf is
//  freed by the caller when set.
static const char *
s_field_text (const json_t *v, s_type_t type, char *num, size_t numlen, char **buf)
{
    *buf = NULL;
    switch (type) {
    case S_STR:
        return json_is_string (v) ? json_string_value (v) : NULL;
    case S_INT:
        if (!json_is_integer (v))
            return NULL;
        snprintf (num, numlen, "%" JSON_INTEGER_FORMAT, json_integer_value (v));
        return num;
    case S_BOOL:
        return json_is_boolean (v) ? (json_is_true (v) ? "1" : "0") : NULL;
    case S_LIST:
        if (!json_is_array (v))
            return NULL;
        *buf = json_dumps (v, JSON_COMPACT);
        return *buf;
    }
    return NULL;
}

int
contacts_record_fields (const json_t *rec, const json_t *old, json_t **set, json_t **del)
{
    assert (rec && set && del);
    *set = json_array ();
    *del = json_array ();
    if (!*set || !*del)
        return -1;
    for (size_t f = 0; f < S_NFIELDS; f++) {
        char name[40];
        snprintf (name, sizeof name, "%s%s", s_fields[f].internal ? "_" : "", s_fields[f].name);
        char num[32], num_old[32];
        char *buf = NULL, *buf_old = NULL;
        const char *text
            = s_field_text (json_object_get (rec, name), s_fields[f].type, num, sizeof num, &buf);
        const char *before = old ? s_field_text (json_object_get (old, name), s_fields[f].type,
                                                 num_old, sizeof num_old, &buf_old)
                                 : NULL;
        if (text && (!before || strcmp (text, before) != 0)) {
            json_array_append_new (*set, json_string (s_fields[f].name));
            json_array_append_new (*set, json_string (text));
        }
        else if (!text && before)
            json_array_append_new (*del, json_string (s_fields[f].name));
        free (buf);
        free (buf_old);
    }
    return 0;
}

bool
contacts_visible (const json_t *record, const http_caller_t *who)
{
    assert (record && who);
    if (!json_is_true (json_object_get (record, "sensitive")))
        return true;
    if (who->roles & (GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION))
        return true;
    const char *author = json_string_value (json_object_get (record, "agent_id"));
    return author && strcmp (author, who->user_id) == 0;
}

json_t *
contacts_public (const json_t *record)
{
    json_t *out = json_object ();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) record, key, value)
        if (key[0] != '_')
            json_object_set (out, key, value);
    return out;
}

//  --------------------------------------------------------------------------------------------
//  Identifiers

int
contacts_phone_normalise (const char *in, const char *country, char *out, size_t outlen)
{
    assert (in && out && outlen > 0);
    char digits[CONTACTS_PHONE_MAX + 1];
    size_t n = 0;
    bool plus = false, seen = false;
    if (strlen (in) > CONTACTS_PHONE_MAX)
        return -1;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c >= '0' && c <= '9') {
            digits[n++] = c;
            seen = true;
        }
        else if (c == '+' && !seen && !plus)
            plus = true;
        else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
            continue;
        else
            return -1;
    }
    digits[n] = 0;
    const char *national = NULL;
    char result[CONTACTS_PHONE_MAX + 8];
    if (plus)
        snprintf (result, sizeof result, "%s", digits);
    else if (n >= 2 && digits[0] == '0' && digits[1] == '0')
        snprintf (result, sizeof result, "%s", digits + 2);
    else
        national = digits;
    if (national) {
        if (country && *country)
            snprintf (result, sizeof result, "%s%s", country,
                      national[0] == '0' ? national + 1 : national);
        else
            snprintf (result, sizeof result, "%s", national);
    }
    size_t len = strlen (result);
    if (len < 4 || len > CONTACTS_PHONE_DIGITS || len + 1 > outlen)
        return -1;
    memcpy (out, result, len + 1);
    return 0;
}

int
contacts_number_normalise (const char *in, char *out, size_t outlen)
{
    assert (in && out && outlen > 0);
    size_t n = 0;
    if (strlen (in) > CONTACTS_NUMBER_MAX)
        return -1;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char) (c - 'a' + 'A');
        if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            if (n + 1 >= outlen)
                return -1;
            out[n++] = c;
        }
        else if (c != ' ' && c != '-' && c != '/' && c != '.')
            return -1;
    }
    out[n] = 0;
    return n > 0 ? 0 : -1;
}

static void
s_hash (const unsigned char *key, const char *kind, const char *value, char *out)
{
    unsigned char digest[CONTACTS_HASH_HEX / 2];
    crypto_generichash_state st;
    crypto_generichash_init (&st, key, S_KEY_BYTES, sizeof digest);
    crypto_generichash_update (&st, (const unsigned char *) kind, strlen (kind) + 1);
    crypto_generichash_update (&st, (const unsigned char *) value, strlen (value));
    crypto_generichash_final (&st, digest, sizeof digest);
    sodium_bin2hex (out, CONTACTS_HASH_HEX + 1, digest, sizeof digest);
}

void
contacts_index_hash (intake_t *intake, const char *kind, const char *value,
                     char out[CONTACTS_HASH_HEX + 1])
{
    assert (intake && intake->contacts && kind && value && out);
    s_hash (intake->contacts->key, kind, value, out);
}

const char *
contacts_country (intake_t *intake)
{
    assert (intake && intake->contacts);
    return intake->contacts->country;
}

int64_t
contacts_repeat_window_ms (intake_t *intake)
{
    assert (intake && intake->contacts);
    return intake->contacts->window_ms;
}

const taxonomy_t *
contacts_taxonomy (intake_t *intake)
{
    assert (intake && intake->contacts);
    return intake->contacts->taxonomy;
}

//  --------------------------------------------------------------------------------------------
//  The outbox

char *
contacts_outbox_entry (intake_t *intake, const gl_event_t *ev, int flags)
{
    assert (intake && intake->outbox && ev);
    return gl_outbox_entry (intake->outbox, ev, flags);
}

int
contacts_outbox_deliver (intake_t *intake, gl_event_t *ev, int flags)
{
    assert (intake && intake->outbox && ev);
    //  Published when this pass of the loop ends, together with the other requests' events
    //  (s_on_flush); if the queue cannot take it, the sweep delivers it.
    return gl_outbox_defer (intake->outbox, ev, flags);
}

//  The outbox has deferred events: flush them once the requests of this pass are handled and
//  their answers written. A zero timer runs in the next pass of the loop, after its socket
//  events: the answers queued in this pass go out first (the flush's append waits for Redis,
//  under appendfsync always for an fsync, and must not hold them back), and the requests read
//  meanwhile join the same append.
static void
s_on_wake (void *arg)
{
    intake_t *intake = arg;
    static const struct timeval now = { 0, 0 };
    if (intake->contacts && intake->contacts->flush)
        evtimer_add (intake->contacts->flush, &now);
}

static void
s_on_flush (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    intake_t *intake = arg;
    gl_outbox_flush (intake->outbox);
}

//  The create script's arguments, packed: every string copied into one block, so an
//  asynchronous call (or its synchronous retry) can outlive the handler's stack.
typedef struct {
    int nkeys, argc;
    const char **argv;
    size_t *lens;
    char *block;
    bool audit, detect_repeat;
} s_create_args_t;

static void
s_create_args_free (s_create_args_t *a)
{
    free (a->argv);
    free (a->lens);
    free (a->block);
    memset (a, 0, sizeof *a);
}

//  0 with *out filled, or -1 (out of memory).
static int
s_create_args (intake_t *intake, const contacts_write_t *w, const gl_event_t *ev, int flags,
               s_create_args_t *out)
{
    contacts_t *self = intake->contacts;
    memset (out, 0, sizeof *out);
    char *entry = contacts_outbox_entry (intake, ev, flags);
    if (!entry)
        return -1;
    size_t entry_len = strlen (entry);
    assert (entry_len > 2 && strcmp (entry + entry_len - 2, "}}") == 0);

    char score[24], ttl[24], npersons[24], window[24], nfields[24];
    snprintf (score, sizeof score, "%" PRId64, w->created_at);
    snprintf (ttl, sizeof ttl, "%" PRId64, self->idem_ttl_ms);
    snprintf (npersons, sizeof npersons, "%zu", w->detect_repeat ? w->npersons : 0);
    snprintf (window, sizeof window, "%" PRId64, self->window_ms);
    snprintf (nfields, sizeof nfields, "%zu", w->nfields);
    size_t nkeys = 4 + w->nindex;
    size_t argc = nkeys + 14 + 2 * w->nfields + (w->audit ? AUDIT_ARGC : 0);
    const char **argv = calloc (argc, sizeof *argv);
    size_t *lens = calloc (argc, sizeof *lens);
    if (!argv || !lens) {
        free (argv);
        free (lens);
        free (entry);
        return -1;
    }
    size_t a = 0;
    argv[a++] = w->record_key;
    argv[a++] = S_OUTBOX;
    argv[a++] = w->idem_key ? w->idem_key : CONTACTS_PREFIX "idemkey:none";
    argv[a++] = AUDIT_KEY;
    for (size_t i = 0; i < w->nindex; i++)
        argv[a++] = w->index[i];
    argv[a++] = w->id;
    argv[a++] = score;
    argv[a++] = w->idem_key ? "1" : "0";
    argv[a++] = w->idem_value ? w->idem_value : "";
    argv[a++] = ttl;
    argv[a++] = ev->id;
    size_t entry_at = a;
    argv[a++] = entry;
    argv[a++] = npersons;
    argv[a++] = w->detect_repeat ? "1" : "0";
    argv[a++] = window;
    argv[a++] = CONTACTS_PREFIX "contact:";
    argv[a++] = w->topcats ? w->topcats : "";
    argv[a++] = nfields;
    for (size_t i = 0; i < 2 * w->nfields; i++)
        argv[a++] = w->fields[i];
    argv[a++] = w->audit ? "1" : "0";
    for (size_t i = 0; w->audit && i < AUDIT_ARGC; i++)
        argv[a++] = w->audit->argv[i];
    assert (a == argc);
    size_t total = 0;
    for (size_t i = 0; i < argc; i++) {
        lens[i] = strlen (argv[i]);
        total += lens[i] + 1;
    }
    lens[entry_at] = entry_len - 2;     //  without "}}": the script closes it
    char *block = malloc (total ? total : 1);
    if (!block) {
        free (argv);
        free (lens);
        free (entry);
        return -1;
    }
    char *at = block;
    for (size_t i = 0; i < argc; i++) {
        size_t n = i == entry_at ? entry_len : lens[i];
        memcpy (at, argv[i], n);
        at[n] = 0;
        argv[i] = at;
        at += n + 1;
    }
    free (entry);
    *out = (s_create_args_t) { .nkeys = (int) nkeys, .argc = (int) argc, .argv = argv,
                               .lens = lens, .block = block, .audit = w->audit != NULL,
                               .detect_repeat = w->detect_repeat };
    return 0;
}

//  Read the create script's reply r (NULL: no answer) as contacts_write_new returns it, and
//  have ev delivered when written.
static int
s_create_result (intake_t *intake, const s_create_args_t *a, gl_event_t *ev, int flags,
                 const redisReply *r, char repeat_of[GL_ID_LEN + 1], char *stored,
                 size_t stored_len)
{
    int rc = -1;
    if (repeat_of)
        repeat_of[0] = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2
        && r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        const char *status = r->element[0]->str;
        const char *value = r->element[1]->str;
        if (strcmp (status, "IDEM") == 0) {
            if (stored)
                snprintf (stored, stored_len, "%s", value);
            rc = 1;
        }
        else if (strcmp (status, "OK") == 0) {
            rc = 0;
            const redisReply *audited = r->elements == 3 ? r->element[2] : NULL;
            if (a->audit && (!audited || audited->type != REDIS_REPLY_STRING
                             || strcmp (audited->str, "1") != 0))
                gl_error ("audit: cannot append (%s)",
                          audited && audited->type == REDIS_REPLY_STRING ? audited->str
                                                                          : "no answer");
            if (a->detect_repeat) {
                bool is_repeat = gl_id_valid (value);
                json_object_set_new (ev->data, "repeat", json_boolean (is_repeat));
                json_object_set_new (ev->data, "repeat_of",
                                     is_repeat ? json_string (value) : json_null ());
                if (repeat_of && is_repeat)
                    snprintf (repeat_of, GL_ID_LEN + 1, "%s", value);
            }
        }
    }
    else if (r && r->type == REDIS_REPLY_ERROR)
        gl_error ("contacts: create script failed: %s", r->str);
    if (rc == 0)
        contacts_outbox_deliver (intake, ev, flags);
    return rc;
}

static void
s_check_write (const contacts_write_t *w, const gl_event_t *ev)
{
    assert (w && ev && w->record_key && w->id && w->nindex <= CONTACTS_INDEX_MAX);
    assert (!w->detect_repeat || (w->npersons <= w->nindex && w->topcats));
    assert (json_object_size (ev->data) > 0);
}

//  An HDEL of published events' entries on its way: their ids stay held meanwhile, so that a
//  sweep does not search the log for events that are there (gl_outbox_hold).
typedef struct {
    intake_t *intake;
    size_t n;
    char ids[][GL_ID_LEN + 1];
} s_clearing_t;

static void
s_on_cleared (redisReply *reply, void *arg)
{
    s_clearing_t *c = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        gl_debug ("contacts: outbox entries not cleared (%s); the sweep clears them",
                  reply ? reply->str : "connection lost");
    for (size_t i = 0; i < c->n; i++)
        gl_outbox_release (c->intake->outbox, c->ids[i]);
    free (c);
}

//  The flush's HDEL goes over the asynchronous connection when it is up: the loop does not
//  wait for it (gl_outbox_set_clear).
static int
s_on_clear (const char *key, const char *const *ids, size_t n, void *arg)
{
    intake_t *intake = arg;
    if (!intake->aredis || n > GL_OUTBOX_BATCH_MAX)
        return -1;
    s_clearing_t *c = malloc (sizeof *c + n * sizeof c->ids[0]);
    if (!c)
        return -1;
    c->intake = intake;
    c->n = 0;
    const char *argv[2 + GL_OUTBOX_BATCH_MAX];
    argv[0] = "HDEL";
    argv[1] = key;
    for (size_t i = 0; i < n; i++) {
        argv[2 + i] = ids[i];
        snprintf (c->ids[i], GL_ID_LEN + 1, "%s", ids[i]);
        if (gl_outbox_hold (intake->outbox, ids[i]) == 0)
            c->n = i + 1;
        else
            break;
    }
    if (c->n < n
        || aredis_cmdargv (intake->aredis, (int) (2 + n), argv, NULL, s_on_cleared, c) != 0) {
        for (size_t i = 0; i < c->n; i++)
            gl_outbox_release (intake->outbox, c->ids[i]);
        free (c);
        return -1;
    }
    return 0;
}

int
contacts_write_new (intake_t *intake, const contacts_write_t *w, gl_event_t *ev, int flags,
                    char repeat_of[GL_ID_LEN + 1], char *stored, size_t stored_len)
{
    assert (intake);
    s_check_write (w, ev);
    if (repeat_of)
        repeat_of[0] = 0;
    s_create_args_t a;
    if (s_create_args (intake, w, ev, flags, &a) != 0)
        return -1;
    redisReply *r = gl_redis_eval (intake->redis, &s_create, a.nkeys, a.argc, a.argv, a.lens);
    int rc = s_create_result (intake, &a, ev, flags, r, repeat_of, stored, stored_len);
    if (r)
        freeReplyObject (r);
    s_create_args_free (&a);
    return rc;
}

//  One asynchronous create in flight.
typedef struct {
    intake_t *intake;
    s_create_args_t args;
    gl_event_t *ev;
    int flags;
    contacts_done_fn *done;
    void *arg;
} s_pending_t;

static void
s_on_created (redisReply *reply, void *arg)
{
    s_pending_t *p = arg;
    intake_t *intake = p->intake;
    redisReply *retry;
    reply = aredis_settle (intake->aredis, reply, &s_create, p->args.nkeys, p->args.argc,
                           p->args.argv, p->args.lens, &retry);
    char repeat_of[GL_ID_LEN + 1] = "", stored[GL_ID_LEN + CONTACTS_HASH_HEX + 2] = "";
    int rc = s_create_result (intake, &p->args, p->ev, p->flags, reply, repeat_of, stored,
                              sizeof stored);
    if (retry)
        freeReplyObject (retry);
    //  Delivered (deferred) or left to the sweep: either way the sweep may look at it now.
    gl_outbox_release (intake->outbox, p->ev->id);
    p->done (intake, rc, repeat_of, stored, p->arg);
    gl_event_destroy (&p->ev);
    s_create_args_free (&p->args);
    free (p);
}

int
contacts_write_new_async (intake_t *intake, const contacts_write_t *w, gl_event_t **ev_p,
                          int flags, contacts_done_fn *done, void *arg)
{
    assert (intake && ev_p && *ev_p && done);
    s_check_write (w, *ev_p);
    if (!intake->aredis || !aredis_ready (intake->aredis))
        return -1;
    s_pending_t *p = calloc (1, sizeof *p);
    if (!p)
        return -1;
    if (s_create_args (intake, w, *ev_p, flags, &p->args) != 0) {
        free (p);
        return -1;
    }
    if (gl_outbox_hold (intake->outbox, (*ev_p)->id) != 0) {
        s_create_args_free (&p->args);
        free (p);
        return -1;
    }
    p->intake = intake;
    p->ev = *ev_p;
    p->flags = flags;
    p->done = done;
    p->arg = arg;
    int rc = aredis_eval (intake->aredis, &s_create, p->args.nkeys, p->args.argc, p->args.argv,
                          p->args.lens, s_on_created, p);
    if (rc != 0) {
        gl_outbox_release (intake->outbox, (*ev_p)->id);
        s_create_args_free (&p->args);
        free (p);
        return rc;
    }
    *ev_p = NULL;                       //  ours now
    return 0;
}

int
contacts_write_update (intake_t *intake, const contacts_update_t *u, gl_event_t *ev)
{
    assert (intake && u && u->record_key && u->id && u->expected_version);
    assert (u->nremove <= CONTACTS_INDEX_MAX && u->nadd <= CONTACTS_INDEX_MAX);
    char *entry = ev ? contacts_outbox_entry (intake, ev, 0) : NULL;
    if (ev && !entry)
        return -1;
    char score[24], nrem[24], nset[24], ndel[24];
    snprintf (score, sizeof score, "%" PRId64, u->score);
    snprintf (nrem, sizeof nrem, "%zu", u->nremove);
    snprintf (nset, sizeof nset, "%zu", u->nset);
    snprintf (ndel, sizeof ndel, "%zu", u->ndel);
    size_t nkeys = 2 + u->nremove + u->nadd;
    size_t argc = nkeys + 8 + 2 * u->nset + u->ndel;
    const char **argv = calloc (argc, sizeof *argv);
    if (!argv) {
        free (entry);
        return -1;
    }
    size_t a = 0;
    argv[a++] = u->record_key;
    argv[a++] = S_OUTBOX;
    for (size_t i = 0; i < u->nremove; i++)
        argv[a++] = u->remove[i];
    for (size_t i = 0; i < u->nadd; i++)
        argv[a++] = u->add[i];
    argv[a++] = u->id;
    argv[a++] = u->expected_version;
    argv[a++] = score;
    argv[a++] = ev ? ev->id : "";
    argv[a++] = entry ? entry : "";
    argv[a++] = nrem;
    argv[a++] = nset;
    argv[a++] = ndel;
    for (size_t i = 0; i < 2 * u->nset; i++)
        argv[a++] = u->set[i];
    for (size_t i = 0; i < u->ndel; i++)
        argv[a++] = u->del[i];
    assert (a == argc);
    redisReply *r = gl_redis_eval (intake->redis, &s_update, (int) nkeys, (int) argc, argv, NULL);
    free (argv);
    free (entry);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_STATUS)
        rc = strcmp (r->str, "OK") == 0 ? 0 : strcmp (r->str, "GONE") == 0 ? 1 : 2;
    else if (r && r->type == REDIS_REPLY_STRING)
        rc = strcmp (r->str, "OK") == 0 ? 0 : strcmp (r->str, "GONE") == 0 ? 1 : 2;
    else if (r && r->type == REDIS_REPLY_ERROR)
        gl_error ("contacts: update script failed: %s", r->str);
    if (r)
        freeReplyObject (r);
    if (rc == 0 && ev)
        contacts_outbox_deliver (intake, ev, 0);
    return rc;
}

int
contacts_outbox_sweep (intake_t *intake)
{
    assert (intake && intake->outbox);
    return gl_outbox_sweep (intake->outbox);
}

static void
s_on_sweep (evutil_socket_t fd, short what, void *arg)
{
    intake_t *intake = arg;
    contacts_outbox_sweep (intake);
    struct timeval tv = { CONTACTS_SWEEP_MS / 1000, (CONTACTS_SWEEP_MS % 1000) * 1000 };
    evtimer_add (intake->contacts->sweep, &tv);
}

//  --------------------------------------------------------------------------------------------
//  Idempotency-Key

int
contacts_idempotency (intake_t *intake, http_req_t *req, const char *scope, bool *has,
                      char *key_out, size_t key_len, char body_hash[CONTACTS_HASH_HEX + 1])
{
    assert (intake && req && scope && has && key_out && body_hash);
    *has = false;
    body_hash[0] = 0;
    key_out[0] = 0;
    const char *key = http_header (req, "Idempotency-Key");
    if (!key)
        return 0;
    size_t len = strlen (key);
    bool valid = len >= 1 && len <= CONTACTS_IDEM_KEY_MAX;
    for (size_t i = 0; valid && i < len; i++)
        valid = key[i] > 0x20 && key[i] < 0x7f;
    if (!valid) {
        http_reply_error (req, 400, "invalid_header",
                          "'Idempotency-Key' must be 1 to 255 visible ASCII characters",
                          "Idempotency-Key");
        return -1;
    }
    const http_caller_t *who = http_caller (req);
    size_t scoped_len = strlen (who->user_id) + len + 2;
    char *scoped = malloc (scoped_len);
    if (!scoped) {
        http_reply_error (req, 500, "internal", "out of memory", NULL);
        return -1;
    }
    snprintf (scoped, scoped_len, "%s\n%s", who->user_id, key);
    char h[CONTACTS_HASH_HEX + 1];
    contacts_index_hash (intake, "idem", scoped, h);
    free (scoped);
    snprintf (key_out, key_len, CONTACTS_PREFIX "idemkey:%s:%s", scope, h);

    const json_t *body = http_body (req);
    char *text = body ? json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    contacts_index_hash (intake, "body", text ? text : "{}", body_hash);
    free (text);
    *has = true;
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Start and stop

//  The index key: GL_INTAKE_INDEX_KEY, or one kept in Redis (created on first start). Its
//  fingerprint is kept too, so that a changed key stops the start instead of silently making
//  every earlier contact unfindable.
static int
s_index_key (contacts_t *self, char *err, size_t errlen)
{
    intake_t *intake = self->intake;
    const char *hex = gl_config_str (intake->config, "GL_INTAKE_INDEX_KEY", NULL);
    char stored[2 * S_KEY_BYTES + 1] = "";
    if (!hex || !*hex) {
        unsigned char fresh[S_KEY_BYTES];
        randombytes_buf (fresh, sizeof fresh);
        sodium_bin2hex (stored, sizeof stored, fresh, sizeof fresh);
        redisReply *r = gl_redis_cmd (intake->redis, "SET " S_INDEX_KEY " %s NX", stored);
        if (r)
            freeReplyObject (r);
        r = gl_redis_cmd (intake->redis, "GET " S_INDEX_KEY);
        bool ok = r && r->type == REDIS_REPLY_STRING && r->len == 2 * S_KEY_BYTES;
        if (ok)
            memcpy (stored, r->str, r->len + 1);
        if (r)
            freeReplyObject (r);
        if (!ok) {
            snprintf (err, errlen, "cannot load the contacts index key from redis");
            return -1;
        }
        gl_warn ("contacts: GL_INTAKE_INDEX_KEY is not set: the index key is kept in redis "
                 "(set it in production, docs/api/contacts.md)");
        hex = stored;
    }
    size_t bin_len = 0;
    if (strlen (hex) != 2 * S_KEY_BYTES
        || sodium_hex2bin (self->key, sizeof self->key, hex, strlen (hex), NULL, &bin_len, NULL)
               != 0
        || bin_len != S_KEY_BYTES) {
        snprintf (err, errlen, "GL_INTAKE_INDEX_KEY must be %d hex digits", 2 * S_KEY_BYTES);
        return -1;
    }
    char fingerprint[CONTACTS_HASH_HEX + 1];
    s_hash (self->key, "index key id", "", fingerprint);
    redisReply *r = gl_redis_cmd (intake->redis, "SET " S_INDEX_KEY_ID " %s NX", fingerprint);
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (intake->redis, "GET " S_INDEX_KEY_ID);
    int rc = -1;
    if (!r || r->type != REDIS_REPLY_STRING)
        snprintf (err, errlen, "cannot check the contacts index key in redis");
    else if (strcmp (r->str, fingerprint) != 0)
        snprintf (err, errlen, "GL_INTAKE_INDEX_KEY is not the key the contact indexes were "
                               "built with (docs/api/contacts.md, \"Index key\")");
    else
        rc = 0;
    if (r)
        freeReplyObject (r);
    return rc;
}

contacts_t *
contacts_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake && intake->redis && intake->pub && intake->base && err);
    contacts_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    gl_config_t *config = intake->config;
    const char *country = gl_config_str (config, "GL_INTAKE_PHONE_COUNTRY_CODE", "");
    self->window_ms
        = gl_config_int (config, "GL_INTAKE_REPEAT_WINDOW_DAYS", 7, 1, 90) * 86400000LL;
    self->idem_ttl_ms
        = gl_config_int (config, "GL_INTAKE_IDEMPOTENCY_TTL_S", 86400, 60, 604800) * 1000LL;
    bool country_ok = strlen (country) <= 3 && country[0] != '0';
    for (const char *p = country; *p && country_ok; p++)
        country_ok = *p >= '0' && *p <= '9';
    if (gl_config_error (config))
        snprintf (err, errlen, "%s", gl_config_error (config));
    else if (!country_ok)
        snprintf (err, errlen, "GL_INTAKE_PHONE_COUNTRY_CODE must be a country calling code "
                               "(1 to 3 digits, no leading 0)");
    else
        snprintf (self->country, sizeof self->country, "%s", country);
    if (gl_config_error (config) || !country_ok) {
        contacts_destroy (&self);
        return NULL;
    }
    self->taxonomy = taxonomy_new_from_config (config, err, errlen);
    if (!self->taxonomy || s_index_key (self, err, errlen) != 0) {
        contacts_destroy (&self);
        return NULL;
    }
    self->sweep = evtimer_new (intake->base, s_on_sweep, intake);
    self->flush = evtimer_new (intake->base, s_on_flush, intake);
    if (!self->sweep || !self->flush) {
        snprintf (err, errlen, "cannot set up the outbox sweep");
        contacts_destroy (&self);
        return NULL;
    }
    gl_outbox_set_wake (intake->outbox, s_on_wake, intake);
    gl_outbox_set_clear (intake->outbox, s_on_clear, intake);
    //  First sweep as soon as the loop runs: whatever a crash left is delivered at start.
    event_active (self->sweep, EV_TIMEOUT, 0);
    gl_info ("contacts: taxonomy of %zu codes, repeat window %" PRId64 " days",
             taxonomy_size (self->taxonomy), (int64_t) (self->window_ms / 86400000));
    return self;
}

void
contacts_destroy (contacts_t **self_p)
{
    assert (self_p);
    contacts_t *self = *self_p;
    if (!self)
        return;
    if (self->intake && self->intake->outbox) {
        //  What this pass deferred goes out now rather than at the next start's sweep.
        gl_outbox_set_wake (self->intake->outbox, NULL, NULL);
        gl_outbox_set_clear (self->intake->outbox, NULL, NULL);
        gl_outbox_flush (self->intake->outbox);
    }
    if (self->flush)
        event_free (self->flush);
    if (self->sweep)
        event_free (self->sweep);
    taxonomy_destroy (&self->taxonomy);
    sodium_memzero (self->key, sizeof self->key);
    free (self);
    *self_p = NULL;
}
