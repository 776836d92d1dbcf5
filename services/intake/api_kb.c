/*  api_kb — the knowledge base API (docs/api/kb.md): articles, their versions and diffs,
    search, and briefings. Words and the expiry sweep are in kb.c, storage in docstore.c.

    Who may do what:
      - supervisors write articles (each change a new version, made from the latest one only:
        an edit based on an older version is refused 409 stale_version);
      - agents, supervisors and protection staff read, search and compare versions;
      - agents acknowledge briefings; supervisors see, per briefing, who has and who has not.
    Changes are audited (record type kb_article); reads are not (nothing personal here).
*/
#include "audit.h"
#include "auth.h"
#include "docstore.h"
#include "intake.h"
#include "kb.h"
#include "kbtext.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_ARTICLE       KB_PREFIX "article:"
#define S_ARTICLES      KB_PREFIX "articles"
#define S_BRIEFING      KB_PREFIX "briefing:"
#define S_BRIEFINGS     KB_PREFIX "briefings"
#define S_TIME_MAX      INT64_C(999999999999999)

static const char *const s_content[] = { "title", "body", "tags", "valid_from", "valid_to",
                                         NULL };

static const char *
s_str (const json_t *doc, const char *name)
{
    return docstore_str (doc, name);
}

static int
s_bad (http_req_t *req, const char *code, const char *field, const char *message)
{
    http_reply_error (req, 400, code, message, field);
    return -1;
}

//  The article as the API shows it: with "expired" (its validity ended) and "valid_now".
static json_t *
s_view (const json_t *doc)
{
    json_t *view = json_deep_copy (doc);
    if (!view)
        return NULL;
    json_object_del (view, "expiry_notified");
    int64_t now = gl_now_ms ();
    int64_t to = docstore_int (doc, "valid_to", -1);
    bool expired = to >= 0 && now >= to;
    json_object_set_new (view, "expired", json_boolean (expired));
    json_object_set_new (view, "valid_now",
                         json_boolean (!expired && now >= docstore_int (doc, "valid_from", 0)));
    return view;
}

//  --------------------------------------------------------------------------------------------
//  Validation of an article's fields (create and update)

static int
s_time_field (http_req_t *req, const char *name, bool nullable, json_t *rec)
{
    const json_t *v = json_object_get (http_body (req), name);
    if (!v)
        return 0;
    if (json_is_null (v)) {
        if (!nullable)
            return s_bad (req, "invalid_field", name, "this time cannot be null");
        json_object_set_new (rec, name, json_null ());
        return 0;
    }
    int64_t ms = 0;
    if (http_body_int (req, name, true, 0, S_TIME_MAX, &ms))
        return -1;
    json_object_set_new (rec, name, json_integer (ms));
    return 0;
}

//  Apply the body's content fields to rec. -1 after answering.
static int
s_apply (http_req_t *req, json_t *rec, bool creating)
{
    const json_t *body = http_body (req);
    const char *title = NULL, *text = NULL;
    if (http_body_str (req, "title", creating, KB_TITLE_MAX, &title)
        || http_body_str (req, "body", creating, KB_BODY_MAX, &text))
        return -1;
    if (title && !*title)
        return s_bad (req, "missing_field", "title", "'title' cannot be empty");
    if (title)
        json_object_set_new (rec, "title", json_string (title));
    if (text)
        json_object_set_new (rec, "body", json_string (text));
    const json_t *tags = json_object_get (body, "tags");
    if (tags) {
        if (!json_is_array (tags) || json_array_size (tags) > KB_TAGS_MAX)
            return s_bad (req, "invalid_field", "tags", "'tags' must be an array of at most 16 "
                                                        "tag codes");
        for (size_t i = 0; i < json_array_size (tags); i++) {
            const char *t = json_string_value (json_array_get (tags, i));
            if (!t || !docstore_code_valid (t, KB_TAG_MAX))
                return s_bad (req, "invalid_field", "tags",
                              "a tag is a code: 1..32 of [a-z0-9_.-], starting with a letter or "
                              "digit");
            for (size_t k = 0; k < i; k++)
                if (strcmp (t, json_string_value (json_array_get (tags, k))) == 0)
                    return s_bad (req, "invalid_field", "tags", "'tags' holds a duplicate");
        }
        json_object_set_new (rec, "tags", json_deep_copy (tags));
    }
    if (s_time_field (req, "valid_from", false, rec) || s_time_field (req, "valid_to", true, rec))
        return -1;
    int64_t from = docstore_int (rec, "valid_from", 0), to = docstore_int (rec, "valid_to", -1);
    if (to >= 0 && to <= from)
        return s_bad (req, "invalid_field", "valid_to", "'valid_to' must be after 'valid_from'");
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Diffs

typedef struct {
    json_t *lines;
    int added, removed;
} s_diff_t;

static void
s_diff_line (void *arg, char op, const char *line, size_t len)
{
    s_diff_t *d = arg;
    char o[2] = { op, 0 };
    json_array_append_new (d->lines, json_pack ("{s:s, s:s%}", "op", o, "line", line, len));
    if (op == '+')
        d->added++;
    else if (op == '-')
        d->removed++;
}

static bool
s_in (const json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (array, i, v)
        if (json_is_string (v) && strcmp (json_string_value (v), s) == 0)
            return true;
    return false;
}

//  What changed from version a (NULL: nothing before) to version b: {from, to, fields: {name:
//  {from, to}}, tags: {added, removed}, body: [{op, line}], added, removed}. NULL when out of
//  memory.
static json_t *
s_diff (const json_t *a, const json_t *b)
{
    json_t *fields = json_object ();
    static const char *const scalars[] = { "title", "valid_from", "valid_to", NULL };
    for (size_t i = 0; scalars[i]; i++) {
        json_t *va = a ? json_object_get (a, scalars[i]) : NULL;
        json_t *vb = json_object_get (b, scalars[i]);
        if (!json_equal (va ? va : json_null (), vb ? vb : json_null ()))
            json_object_set_new (fields, scalars[i],
                                 json_pack ("{s:O?, s:O?}", "from", va, "to", vb));
    }
    json_t *added = json_array (), *removed = json_array ();
    size_t i;
    json_t *t;
    json_t *ta = a ? json_object_get (a, "tags") : NULL, *tb = json_object_get (b, "tags");
    json_array_foreach (tb, i, t)
        if (!s_in (ta, json_string_value (t)))
            json_array_append (added, t);
    json_array_foreach (ta, i, t)
        if (!s_in (tb, json_string_value (t)))
            json_array_append (removed, t);
    s_diff_t d = { json_array (), 0, 0 };
    const char *old_body = a && s_str (a, "body") ? s_str (a, "body") : "";
    const char *new_body = s_str (b, "body") ? s_str (b, "body") : "";
    if (!fields || !added || !removed || !d.lines
        || kbtext_diff (old_body, new_body, s_diff_line, &d) != 0) {
        json_decref (fields);
        json_decref (added);
        json_decref (removed);
        json_decref (d.lines);
        return NULL;
    }
    return json_pack ("{s:I, s:I, s:o, s:{s:o, s:o}, s:o, s:i, s:i}", "from",
                      (json_int_t) (a ? docstore_int (a, "version", 0) : 0), "to",
                      (json_int_t) docstore_int (b, "version", 0), "fields", fields, "tags",
                      "added", added, "removed", removed, "body", d.lines, "added", d.added,
                      "removed", d.removed);
}

//  --------------------------------------------------------------------------------------------
//  Loading

//  The article of the path. 0 with *doc and *v, or -1 after answering 404/503.
static int
s_load (intake_t *intake, http_req_t *req, json_t **doc, int64_t *v)
{
    const char *id = http_param (req, "id");
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", "no such article", NULL), -1;
    char key[128];
    snprintf (key, sizeof key, S_ARTICLE "%s", id);
    int rc = docstore_read (intake, key, doc, v);
    if (rc < 0)
        return docstore_unavailable (req), -1;
    if (rc > 0)
        return http_reply_error (req, 404, "not_found", "no such article", NULL), -1;
    return 0;
}

//  Version n of article id. 0 with *doc, 1 none, -1 Redis failed.
static int
s_load_version (intake_t *intake, const char *id, int64_t n, json_t **doc)
{
    char key[160];
    snprintf (key, sizeof key, KB_PREFIX "version:%s:%" PRId64, id, n);
    return docstore_read (intake, key, doc, NULL);
}

//  --------------------------------------------------------------------------------------------
//  Writing: the article, its version, its words, its expiry entry, a briefing, the event

typedef struct {
    json_t *doc;                        //  the article after the change
    json_t *old;                        //  before (NULL: new)
    int64_t v;                          //  storage version of old (0: new)
    json_t *changed;                    //  content field names
    const char *note;
    bool briefing;
} s_write_t;

static void
s_version_doc (const s_write_t *w, json_t **out)
{
    *out = json_pack ("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:s?, s:O}",
                      "article_id", json_object_get (w->doc, "id"), "version",
                      json_object_get (w->doc, "version"), "language",
                      json_object_get (w->doc, "language"), "title",
                      json_object_get (w->doc, "title"), "body",
                      json_object_get (w->doc, "body"), "tags", json_object_get (w->doc, "tags"),
                      "valid_from", json_object_get (w->doc, "valid_from"), "valid_to",
                      json_object_get (w->doc, "valid_to"), "author_id",
                      json_object_get (w->doc, "updated_by"), "at",
                      json_object_get (w->doc, "updated_at"), "note", w->note, "changed",
                      w->changed);
}

static int
s_write (intake_t *intake, http_req_t *req, s_write_t *w, char briefing_id[GL_ID_LEN + 1])
{
    const char *id = s_str (w->doc, "id");
    int64_t version = docstore_int (w->doc, "version", 1);
    int64_t now = docstore_int (w->doc, "updated_at", gl_now_ms ());
    char key[128], vkey[160];
    snprintf (key, sizeof key, S_ARTICLE "%s", id);
    snprintf (vkey, sizeof vkey, KB_PREFIX "version:%s:%" PRId64, id, version);
    docstore_tx_t *tx = docstore_tx_new (intake);
    json_t *vdoc = NULL;
    s_version_doc (w, &vdoc);
    json_t *words = kb_words (w->doc);
    json_t *old_words = w->old ? kb_words (w->old) : json_object ();
    if (!tx || !vdoc || !words || !old_words) {
        docstore_tx_destroy (&tx);
        json_decref (vdoc);
        json_decref (words);
        json_decref (old_words);
        return -1;
    }
    docstore_tx_put (tx, key, w->doc, w->v, w->v + 1);
    docstore_tx_put (tx, vkey, vdoc, 0, 1);
    json_decref (vdoc);
    if (!w->old) {
        char lkey[96];
        snprintf (lkey, sizeof lkey, KB_PREFIX "lang:%s", s_str (w->doc, "language"));
        docstore_tx_zadd (tx, S_ARTICLES, now, id);
        docstore_tx_sadd (tx, lkey, id);
    }
    const char *word;
    json_t *v;
    char wkey[KBTEXT_WORD_MAX + 64];
    json_object_foreach (words, word, v)
        if (!json_object_get (old_words, word)) {
            snprintf (wkey, sizeof wkey, KB_PREFIX "word:%s", word);
            docstore_tx_sadd (tx, wkey, id);
        }
    json_object_foreach (old_words, word, v)
        if (!json_object_get (words, word)) {
            snprintf (wkey, sizeof wkey, KB_PREFIX "word:%s", word);
            docstore_tx_srem (tx, wkey, id);
        }
    json_decref (words);
    json_decref (old_words);
    int64_t to = docstore_int (w->doc, "valid_to", -1);
    if (to >= 0 && !json_is_true (json_object_get (w->doc, "expiry_notified")))
        docstore_tx_zadd (tx, KB_PREFIX "expiry", to, id);
    else
        docstore_tx_zrem (tx, KB_PREFIX "expiry", id);
    *briefing_id = 0;
    if (w->briefing) {
        gl_id_new (briefing_id);
        json_t *b = json_pack ("{s:s, s:s, s:I, s:I, s:O?, s:O?, s:s?, s:I, s:O?}", "id",
                               briefing_id, "article_id", id, "version", (json_int_t) version,
                               "from_version",
                               (json_int_t) (w->old ? docstore_int (w->old, "version", 0) : 0),
                               "language", json_object_get (w->doc, "language"), "title",
                               json_object_get (w->doc, "title"), "note", w->note, "created_at",
                               (json_int_t) now, "created_by",
                               json_object_get (w->doc, "updated_by"));
        char bkey[128];
        snprintf (bkey, sizeof bkey, S_BRIEFING "%s", briefing_id);
        if (b)
            docstore_tx_put (tx, bkey, b, 0, 1);
        json_decref (b);
        docstore_tx_zadd (tx, S_BRIEFINGS, now, briefing_id);
    }
    gl_event_t *ev = gl_event_new (w->old ? "kb.article_updated" : "kb.article_published");
    if (ev) {
        json_decref (ev->data);
        ev->data = json_pack (
            "{s:s, s:I, s:O?, s:O?, s:O?, s:O?, s:O?, s:s?, s:O}", "article_id", id, "version",
            (json_int_t) version, "language", json_object_get (w->doc, "language"), "tags",
            json_object_get (w->doc, "tags"), "valid_from", json_object_get (w->doc, "valid_from"),
            "valid_to", json_object_get (w->doc, "valid_to"), "author_id",
            json_object_get (w->doc, "updated_by"), "briefing_id",
            *briefing_id ? briefing_id : NULL, "changed", w->changed);
        if (w->old && ev->data)
            json_object_set_new (ev->data, "from_version",
                                 json_integer (docstore_int (w->old, "version", 0)));
        gl_event_set_corr (ev, id);
    }
    docstore_tx_event (tx, &ev, 0);
    int rc = docstore_tx_commit (&tx, NULL, 0);
    if (rc == 0)
        audit_record_req (intake, req, w->old ? "update" : "create", "kb_article", id,
                          w->briefing ? "briefing" : "");
    return rc;
}

static const char *const s_article_fields[]
    = { "language", "title", "body", "tags", "valid_from", "valid_to", "note", "briefing",
        "base_version", NULL };

static int
s_create (intake_t *intake, http_req_t *req)
{
    const char *language = NULL, *note = NULL;
    bool briefing = true;
    json_t *doc = json_pack ("{s:[], s:n}", "tags", "valid_to");
    if (!doc)
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    json_object_set_new (doc, "valid_from", json_integer (gl_now_ms ()));
    if (http_body_only (req, s_article_fields)
        || http_body_str (req, "language", true, 15, &language)
        || http_body_str (req, "note", false, KB_NOTE_MAX, &note)
        || http_body_bool (req, "briefing", false, &briefing)) {
        json_decref (doc);
        return -1;
    }
    if (json_object_get (http_body (req), "base_version")) {
        json_decref (doc);
        return s_bad (req, "invalid_field", "base_version",
                      "'base_version' is for changing an article");
    }
    if (!auth_language_valid (language)) {
        json_decref (doc);
        return s_bad (req, "invalid_field", "language",
                      "'language' must be a language code such as \"ar\" or \"fr\"");
    }
    if (s_apply (req, doc, true)) {
        json_decref (doc);
        return -1;
    }
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    int64_t now = gl_now_ms ();
    const char *by = http_caller (req)->user_id;
    json_object_set_new (doc, "id", json_string (id));
    json_object_set_new (doc, "language", json_string (language));
    json_object_set_new (doc, "version", json_integer (1));
    json_object_set_new (doc, "created_at", json_integer (now));
    json_object_set_new (doc, "created_by", json_string (by));
    json_object_set_new (doc, "updated_at", json_integer (now));
    json_object_set_new (doc, "updated_by", json_string (by));
    json_object_set_new (doc, "expiry_notified", json_false ());
    json_t *changed = json_array ();
    for (size_t i = 0; s_content[i]; i++)
        json_array_append_new (changed, json_string (s_content[i]));
    s_write_t w = { .doc = doc, .changed = changed, .note = note, .briefing = briefing };
    char briefing_id[GL_ID_LEN + 1];
    int rc = s_write (intake, req, &w, briefing_id);
    json_decref (changed);
    if (rc != 0) {
        json_decref (doc);
        return docstore_unavailable (req);
    }
    json_t *view = s_view (doc);
    json_decref (doc);
    json_object_set_new (view, "briefing_id", *briefing_id ? json_string (briefing_id)
                                                           : json_null ());
    return http_reply_json (req, 201, view);
}

static int
s_update (intake_t *intake, http_req_t *req)
{
    const char *note = NULL;
    bool briefing = true;
    int64_t base = 0;
    if (http_body_only (req, s_article_fields)
        || http_body_int (req, "base_version", true, 1, INT32_MAX, &base)
        || http_body_str (req, "note", false, KB_NOTE_MAX, &note)
        || http_body_bool (req, "briefing", false, &briefing))
        return -1;
    if (json_object_get (http_body (req), "language"))
        return s_bad (req, "invalid_field", "language",
                      "an article's language cannot change: write a new article for another "
                      "language");
    json_t *old = NULL;
    int64_t v = 0;
    if (s_load (intake, req, &old, &v))
        return -1;
    int64_t current = docstore_int (old, "version", 0);
    if (base != current) {
        json_decref (old);
        char message[160];
        snprintf (message, sizeof message,
                  "version %" PRId64 " is not the latest (%" PRId64
                  "): read the article and edit the latest version",
                  base, current);
        return http_reply_error (req, 409, "stale_version", message, "base_version");
    }
    json_t *doc = json_deep_copy (old);
    if (!doc || s_apply (req, doc, false)) {
        json_decref (doc);
        json_decref (old);
        return doc ? -1 : http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    json_t *changed = json_array ();
    for (size_t i = 0; s_content[i]; i++) {
        json_t *a = json_object_get (old, s_content[i]), *b = json_object_get (doc, s_content[i]);
        if (!json_equal (a ? a : json_null (), b ? b : json_null ()))
            json_array_append_new (changed, json_string (s_content[i]));
    }
    if (json_array_size (changed) == 0) {
        json_decref (changed);
        json_decref (old);
        json_t *view = s_view (doc);
        json_decref (doc);
        json_object_set_new (view, "briefing_id", json_null ());
        return http_reply_json (req, 200, view);
    }
    int64_t now = gl_now_ms ();
    json_object_set_new (doc, "version", json_integer (current + 1));
    json_object_set_new (doc, "updated_at", json_integer (now));
    json_object_set_new (doc, "updated_by", json_string (http_caller (req)->user_id));
    //  A new end of validity still ahead is announced again when it comes.
    int64_t to = docstore_int (doc, "valid_to", -1);
    if (!json_equal (json_object_get (old, "valid_to"), json_object_get (doc, "valid_to")))
        json_object_set_new (doc, "expiry_notified", json_boolean (to >= 0 && to <= now));
    s_write_t w = { .doc = doc, .old = old, .v = v, .changed = changed, .note = note,
                    .briefing = briefing };
    char briefing_id[GL_ID_LEN + 1];
    int rc = s_write (intake, req, &w, briefing_id);
    json_decref (changed);
    json_decref (old);
    if (rc != 0) {
        json_decref (doc);
        if (rc == 2)
            return http_reply_error (req, 409, "stale_version",
                                     "the article changed meanwhile: read it and edit the latest "
                                     "version",
                                     "base_version");
        return docstore_unavailable (req);
    }
    json_t *view = s_view (doc);
    json_decref (doc);
    json_object_set_new (view, "briefing_id", *briefing_id ? json_string (briefing_id)
                                                           : json_null ());
    return http_reply_json (req, 200, view);
}

//  --------------------------------------------------------------------------------------------
//  Reading

static int
s_get (intake_t *intake, http_req_t *req)
{
    json_t *doc = NULL;
    int64_t v = 0;
    if (s_load (intake, req, &doc, &v))
        return -1;
    json_t *view = s_view (doc);
    json_decref (doc);
    return http_reply_json (req, 200, view);
}

typedef struct {
    const char *language;
    const char *tag;
    int expired;                        //  -1 any
} s_filter_t;

static int
s_parse_filter (http_req_t *req, s_filter_t *f)
{
    f->language = http_query (req, "language");
    f->tag = http_query (req, "tag");
    f->expired = -1;
    bool expired = false;
    if (docstore_query_bool (req, "expired", &expired))
        return -1;
    if (http_query (req, "expired"))
        f->expired = expired;
    if (f->language && !auth_language_valid (f->language)) {
        http_reply_error (req, 400, "invalid_parameter", "not a language code", "language");
        return -1;
    }
    if (f->tag && !docstore_code_valid (f->tag, KB_TAG_MAX)) {
        http_reply_error (req, 400, "invalid_parameter", "not a tag code", "tag");
        return -1;
    }
    return 0;
}

//  True when doc passes f; *item gets its list form (no body).
static bool
s_filter_doc (const s_filter_t *f, const json_t *doc, json_t **item)
{
    if (f->language && (!s_str (doc, "language") || strcmp (f->language, s_str (doc, "language"))))
        return false;
    if (f->tag && !s_in (json_object_get (doc, "tags"), f->tag))
        return false;
    json_t *view = s_view (doc);
    if (!view)
        return false;
    if (f->expired >= 0 && json_is_true (json_object_get (view, "expired")) != (f->expired == 1)) {
        json_decref (view);
        return false;
    }
    json_object_del (view, "body");
    *item = view;
    return true;
}

static bool
s_list_filter (intake_t *intake, void *arg, const json_t *doc, json_t **item)
{
    return s_filter_doc (arg, doc, item);
}

static int
s_list (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "language", "tag", "expired", "limit", "cursor",
                                          NULL };
    http_page_t page;
    s_filter_t f;
    if (http_query_only (req, params) || http_page (req, &page) || s_parse_filter (req, &f))
        return -1;
    json_t *items = NULL;
    char next[HTTP_CURSOR_MAX + 1];
    int rc = docstore_page (intake, S_ARTICLES, S_ARTICLE, &page, s_list_filter, &f, &items,
                            next);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'cursor' is not a cursor this API gave out", "cursor");
    if (rc != 0)
        return docstore_unavailable (req);
    return http_reply_page (req, items, *next ? next : NULL);
}

//  A version number from the path or the query. 0 (absent: *out untouched) or -1 answered.
static int
s_version_number (http_req_t *req, const char *value, const char *name, int64_t *out)
{
    if (!value)
        return 0;
    size_t n = strlen (value);
    bool ok = n >= 1 && n <= 9 && value[0] != '0';
    for (size_t i = 0; ok && i < n; i++)
        ok = value[i] >= '0' && value[i] <= '9';
    if (!ok) {
        http_reply_error (req, 400, "invalid_parameter", "a version is a number from 1", name);
        return -1;
    }
    *out = (int64_t) strtoll (value, NULL, 10);
    return 0;
}

static int
s_versions (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { NULL };
    if (http_query_only (req, params))
        return -1;
    json_t *doc = NULL;
    int64_t v = 0;
    if (s_load (intake, req, &doc, &v))
        return -1;
    int64_t n = docstore_int (doc, "version", 0);
    json_decref (doc);
    const char *id = http_param (req, "id");
    json_t *items = json_array ();
    //  Newest first; at most HTTP_PAGE_MAX versions read (older ones by their number).
    for (int64_t k = n; k >= 1 && k > n - HTTP_PAGE_MAX; k--) {
        json_t *vdoc = NULL;
        int rc = s_load_version (intake, id, k, &vdoc);
        if (rc < 0) {
            json_decref (items);
            return docstore_unavailable (req);
        }
        if (rc > 0)
            continue;
        json_object_del (vdoc, "body");
        json_array_append_new (items, vdoc);
    }
    return http_reply_json (req, 200, json_pack ("{s:s, s:I, s:o}", "article_id", id, "latest",
                                                 (json_int_t) n, "items", items));
}

static int
s_version (intake_t *intake, http_req_t *req)
{
    int64_t n = 0;
    if (s_version_number (req, http_param (req, "version"), "version", &n))
        return -1;
    json_t *doc = NULL;
    int64_t v = 0;
    if (s_load (intake, req, &doc, &v))
        return -1;
    json_decref (doc);
    json_t *vdoc = NULL;
    int rc = s_load_version (intake, http_param (req, "id"), n, &vdoc);
    if (rc < 0)
        return docstore_unavailable (req);
    if (rc > 0)
        return http_reply_error (req, 404, "not_found", "no such version", NULL);
    return http_reply_json (req, 200, vdoc);
}

static int
s_diff_route (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "from", "to", NULL };
    if (http_query_only (req, params))
        return -1;
    json_t *doc = NULL;
    int64_t v = 0;
    if (s_load (intake, req, &doc, &v))
        return -1;
    int64_t latest = docstore_int (doc, "version", 1);
    json_decref (doc);
    int64_t to = latest, from = -1;
    if (s_version_number (req, http_query (req, "to"), "to", &to)
        || s_version_number (req, http_query (req, "from"), "from", &from))
        return -1;
    if (from < 0)
        from = to - 1;
    if (to > latest)
        return http_reply_error (req, 404, "not_found", "no such version", "to");
    if (from >= to)
        return http_reply_error (req, 400, "invalid_parameter", "'from' must be before 'to'",
                                 "from");
    const char *id = http_param (req, "id");
    json_t *a = NULL, *b = NULL;
    int ra = from > 0 ? s_load_version (intake, id, from, &a) : 0;
    int rb = s_load_version (intake, id, to, &b);
    if (ra < 0 || rb < 0) {
        json_decref (a);
        json_decref (b);
        return docstore_unavailable (req);
    }
    if (ra > 0 || rb > 0) {
        json_decref (a);
        json_decref (b);
        return http_reply_error (req, 404, "not_found", "no such version", ra > 0 ? "from" : "to");
    }
    json_t *diff = s_diff (a, b);
    json_decref (a);
    json_decref (b);
    if (diff)
        json_object_set_new (diff, "article_id", json_string (id));
    return http_reply_json (req, 200, diff);
}

//  --------------------------------------------------------------------------------------------
//  Search

typedef struct {
    json_t *words;                      //  the query's words
    size_t score;
} s_score_t;

static int
s_score_word (void *arg, const char *word)
{
    s_score_t *s = arg;
    size_t i;
    json_t *w;
    json_array_foreach (s->words, i, w)
        if (strcmp (json_string_value (w), word) == 0)
            s->score++;
    return 0;
}

//  Title matches weigh three times body matches.
static size_t
s_score (const json_t *doc, json_t *words)
{
    s_score_t s = { words, 0 };
    const char *title = s_str (doc, "title"), *body = s_str (doc, "body");
    if (title)
        kbtext_words (title, strlen (title), s_score_word, &s);
    s.score *= 3;
    if (body)
        kbtext_words (body, strlen (body), s_score_word, &s);
    return s.score;
}

static int
s_by_score (const void *a, const void *b)
{
    const json_t *x = *(json_t *const *) a, *y = *(json_t *const *) b;
    int64_t sx = docstore_int (x, "score", 0), sy = docstore_int (y, "score", 0);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    int64_t ux = docstore_int (x, "updated_at", 0), uy = docstore_int (y, "updated_at", 0);
    return ux > uy ? -1 : ux < uy ? 1 : 0;
}

static int
s_search (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "q", "language", "tag", "expired", "limit", NULL };
    http_page_t page;
    s_filter_t f;
    if (http_query_only (req, params) || http_page (req, &page) || s_parse_filter (req, &f))
        return -1;
    if (page.has_cursor)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "search answers one page, best first", "cursor");
    const char *q = http_query (req, "q");
    if (!q || !*q || strlen (q) > 400)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'q' is required: 1 to 400 bytes of text", "q");
    json_t *words = kb_query_words (q);
    if (json_array_size (words) == 0) {
        json_decref (words);
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'q' holds no word to search for", "q");
    }
    size_t nw = json_array_size (words);
    //  The words' sets, and the language's: candidates are cut at KB_SEARCH_MAX after both.
    const char *argv[2 + KB_QUERY_WORDS_MAX];
    char keys[KB_QUERY_WORDS_MAX + 1][KBTEXT_WORD_MAX + 64];
    argv[0] = "SINTER";
    for (size_t i = 0; i < nw; i++) {
        snprintf (keys[i], sizeof keys[i], KB_PREFIX "word:%s",
                  json_string_value (json_array_get (words, i)));
        argv[1 + i] = keys[i];
    }
    int argc = (int) (1 + nw);
    if (f.language) {
        snprintf (keys[nw], sizeof keys[nw], KB_PREFIX "lang:%s", f.language);
        argv[argc++] = keys[nw];
    }
    redisReply *r = gl_redis_cmdargv (intake->redis, argc, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        json_decref (words);
        return docstore_unavailable (req);
    }
    size_t n = r->elements < KB_SEARCH_MAX ? r->elements : KB_SEARCH_MAX;
    char (*akeys)[128] = calloc (n ? n : 1, sizeof *akeys);
    const char **keyp = calloc (n ? n : 1, sizeof *keyp);
    json_t **docs = calloc (n ? n : 1, sizeof *docs);
    size_t m = 0;
    for (size_t i = 0; akeys && keyp && docs && i < n; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || !gl_id_valid (e->str))
            continue;
        snprintf (akeys[m], sizeof akeys[m], S_ARTICLE "%s", e->str);
        keyp[m] = akeys[m];
        m++;
    }
    freeReplyObject (r);
    int rc = akeys && keyp && docs ? docstore_read_many (intake, keyp, m, docs) : -1;
    json_t *items = json_array ();
    for (size_t i = 0; rc == 0 && i < m; i++) {
        json_t *item = NULL;
        if (docs[i] && s_filter_doc (&f, docs[i], &item)) {
            json_object_set_new (item, "score",
                                 json_integer ((json_int_t) s_score (docs[i], words)));
            json_array_append_new (items, item);
        }
    }
    for (size_t i = 0; docs && i < m; i++)
        json_decref (docs[i]);
    free (docs);
    free (keyp);
    free (akeys);
    if (rc != 0) {
        json_decref (words);
        json_decref (items);
        return docstore_unavailable (req);
    }
    //  Best first, then the page's limit.
    size_t count = json_array_size (items);
    json_t **sorted = calloc (count ? count : 1, sizeof *sorted);
    json_t *out = json_array ();
    if (sorted) {
        for (size_t i = 0; i < count; i++)
            sorted[i] = json_array_get (items, i);
        qsort (sorted, count, sizeof *sorted, s_by_score);
        for (size_t i = 0; i < count && (int) i < page.limit; i++)
            json_array_append (out, sorted[i]);
    }
    free (sorted);
    json_decref (items);
    return http_reply_json (req, 200, json_pack ("{s:o, s:o, s:I}", "items", out, "words", words,
                                                 "total", (json_int_t) count));
}

//  --------------------------------------------------------------------------------------------
//  Briefings

//  The briefing of the path. 0 with *doc, or -1 after answering.
static int
s_load_briefing (intake_t *intake, http_req_t *req, json_t **doc)
{
    const char *id = http_param (req, "id");
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", "no such briefing", NULL), -1;
    char key[128];
    snprintf (key, sizeof key, S_BRIEFING "%s", id);
    int rc = docstore_read (intake, key, doc, NULL);
    if (rc < 0)
        return docstore_unavailable (req), -1;
    if (rc > 0)
        return http_reply_error (req, 404, "not_found", "no such briefing", NULL), -1;
    return 0;
}

//  When user acknowledged briefing id: 0 with *at (0: not yet), -1 Redis failed.
static int
s_ack_time (intake_t *intake, const char *id, const char *user, int64_t *at)
{
    redisReply *r = gl_redis_cmd (intake->redis, "HGET %s%s %s", KB_PREFIX "briefing_acks:", id,
                                  user);
    if (!r)
        return -1;
    long long v = 0;
    *at = r->type == REDIS_REPLY_STRING && gl_redis_reply_int (r, &v) == 0 ? (int64_t) v : 0;
    freeReplyObject (r);
    return 0;
}

typedef struct {
    http_req_t *req;
    int pending;                        //  -1 any, 1 only not acknowledged, 0 only acknowledged
    bool failed;
} s_blist_t;

static bool
s_briefing_filter (intake_t *intake, void *arg, const json_t *doc, json_t **item)
{
    s_blist_t *q = arg;
    int64_t at = 0;
    if (s_ack_time (intake, s_str (doc, "id"), http_caller (q->req)->user_id, &at) != 0) {
        q->failed = true;
        return false;
    }
    if (q->pending >= 0 && (at == 0) != (q->pending == 1))
        return false;
    *item = json_deep_copy (doc);
    json_object_set_new (*item, "acknowledged", json_boolean (at != 0));
    json_object_set_new (*item, "acknowledged_at", at ? json_integer (at) : json_null ());
    return true;
}

static int
s_briefings (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "pending", "limit", "cursor", NULL };
    http_page_t page;
    bool pending = false;
    if (http_query_only (req, params) || http_page (req, &page)
        || docstore_query_bool (req, "pending", &pending))
        return -1;
    s_blist_t q = { req, http_query (req, "pending") ? pending : -1, false };
    json_t *items = NULL;
    char next[HTTP_CURSOR_MAX + 1];
    int rc = docstore_page (intake, S_BRIEFINGS, S_BRIEFING, &page, s_briefing_filter, &q,
                            &items, next);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'cursor' is not a cursor this API gave out", "cursor");
    if (rc != 0 || q.failed) {
        json_decref (items);
        return docstore_unavailable (req);
    }
    return http_reply_page (req, items, *next ? next : NULL);
}

//  The briefing's audience: every enabled user with the agent role who existed when it was
//  made. *out gets a new array of user ids. 0 or -1.
static int
s_audience (intake_t *intake, int64_t created_at, json_t **out)
{
    *out = NULL;
    char max[24];
    snprintf (max, sizeof max, "%d", KB_AUDIENCE_MAX - 1);
    redisReply *r = gl_redis_cmd (intake->redis, "ZRANGE %s 0 %s", "intake:{intake}:users", max);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject (r);
        return -1;
    }
    json_t *ids = json_array ();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->elements; i++) {
        const redisReply *m = r->element[i];
        const char *colon = m->type == REDIS_REPLY_STRING ? strrchr (m->str, ':') : NULL;
        if (!colon || !gl_id_valid (colon + 1))
            continue;
        json_t *view = NULL;
        int got = auth_user_view (intake, colon + 1, &view);
        if (got < 0)
            rc = -1;
        else if (got == 0 && !json_is_true (json_object_get (view, "disabled"))
                 && s_in (json_object_get (view, "roles"), "agent")
                 && docstore_int (view, "created_ms", 0) <= created_at)
            json_array_append_new (ids, json_string (colon + 1));
        json_decref (view);
    }
    freeReplyObject (r);
    if (rc != 0) {
        json_decref (ids);
        return -1;
    }
    *out = ids;
    return 0;
}

static int
s_briefing (intake_t *intake, http_req_t *req)
{
    json_t *doc = NULL;
    if (s_load_briefing (intake, req, &doc))
        return -1;
    const http_caller_t *who = http_caller (req);
    const char *id = http_param (req, "id");
    //  What changed: the diff of the briefed version against the one before.
    json_t *a = NULL, *b = NULL;
    const char *article = s_str (doc, "article_id");
    int64_t from = docstore_int (doc, "from_version", 0), to = docstore_int (doc, "version", 1);
    int ra = article && from > 0 ? s_load_version (intake, article, from, &a) : 0;
    int rb = article ? s_load_version (intake, article, to, &b) : 1;
    int64_t mine = 0;
    int rm = s_ack_time (intake, id, who->user_id, &mine);
    if (ra < 0 || rb < 0 || rm < 0) {
        json_decref (a);
        json_decref (b);
        json_decref (doc);
        return docstore_unavailable (req);
    }
    json_t *changes = rb == 0 && ra == 0 ? s_diff (a, b) : NULL;
    json_decref (a);
    json_decref (b);
    json_object_set_new (doc, "changes", changes ? changes : json_null ());
    json_object_set_new (doc, "acknowledged", json_boolean (mine != 0));
    json_object_set_new (doc, "acknowledged_at", mine ? json_integer (mine) : json_null ());
    if (!(who->roles & GL_ROLE_SUPERVISOR))
        return http_reply_json (req, 200, doc);

    //  The supervisor's view: who acknowledged (and when), who has not.
    json_t *audience = NULL;
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL %s%s", KB_PREFIX "briefing_acks:", id);
    if (!r || r->type != REDIS_REPLY_ARRAY || s_audience (intake, docstore_int (doc, "created_at",
                                                                                 0),
                                                          &audience)
                                                  != 0) {
        if (r)
            freeReplyObject (r);
        json_decref (doc);
        return docstore_unavailable (req);
    }
    json_t *acked = json_array (), *pending = json_array ();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *u = r->element[i], *t = r->element[i + 1];
        long long at = 0;
        if (u->type == REDIS_REPLY_STRING && gl_redis_reply_int (t, &at) == 0)
            json_array_append_new (acked, json_pack ("{s:s, s:I}", "user_id", u->str, "at",
                                                     (json_int_t) at));
    }
    freeReplyObject (r);
    size_t i;
    json_t *user;
    json_array_foreach (audience, i, user) {
        bool done = false;
        size_t k;
        json_t *a2;
        json_array_foreach (acked, k, a2)
            done = done || strcmp (s_str (a2, "user_id"), json_string_value (user)) == 0;
        if (!done)
            json_array_append (pending, user);
    }
    json_decref (audience);
    json_object_set_new (doc, "acknowledged_by", acked);
    json_object_set_new (doc, "pending", pending);
    return http_reply_json (req, 200, doc);
}

static int
s_briefing_ack (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields))
        return -1;
    json_t *doc = NULL;
    if (s_load_briefing (intake, req, &doc))
        return -1;
    const char *id = http_param (req, "id");
    const char *user = http_caller (req)->user_id;
    int64_t now = gl_now_ms ();
    char key[128], at[24];
    snprintf (key, sizeof key, KB_PREFIX "briefing_acks:%s", id);
    snprintf (at, sizeof at, "%" PRId64, now);
    docstore_tx_t *tx = docstore_tx_new (intake);
    gl_event_t *ev = gl_event_new ("kb.briefing_acknowledged");
    if (!tx || !ev) {
        docstore_tx_destroy (&tx);
        gl_event_destroy (&ev);
        json_decref (doc);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    json_decref (ev->data);
    ev->data = json_pack ("{s:s, s:O?, s:O?, s:s, s:I}", "briefing_id", id, "article_id",
                          json_object_get (doc, "article_id"), "version",
                          json_object_get (doc, "version"), "agent_id", user, "acknowledged_at",
                          (json_int_t) now);
    gl_event_set_corr (ev, s_str (doc, "article_id") ? s_str (doc, "article_id") : "");
    docstore_tx_hsetnx (tx, key, user, at);
    docstore_tx_event (tx, &ev, 0);
    int rc = docstore_tx_commit (&tx, NULL, 0);
    int64_t when = now;
    if (rc == 3 && s_ack_time (intake, id, user, &when) != 0)
        rc = -1;
    if (rc != 0 && rc != 3) {
        json_decref (doc);
        return docstore_unavailable (req);
    }
    json_decref (doc);
    return http_reply_json (req, 200, json_pack ("{s:s, s:b, s:I, s:b}", "briefing_id", id,
                                                 "acknowledged", 1, "acknowledged_at",
                                                 (json_int_t) when, "already", rc == 3));
}

void
api_kb_routes (intake_t *intake)
{
    http_t *http = intake->http;
    uint32_t readers = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION;
    http_route (http, "POST", "/api/v1/kb/articles", GL_ROLE_SUPERVISOR, s_create);
    http_route (http, "GET", "/api/v1/kb/articles", readers, s_list);
    http_route (http, "GET", "/api/v1/kb/articles/{id}", readers, s_get);
    http_route (http, "PATCH", "/api/v1/kb/articles/{id}", GL_ROLE_SUPERVISOR, s_update);
    http_route (http, "GET", "/api/v1/kb/articles/{id}/versions", readers, s_versions);
    http_route (http, "GET", "/api/v1/kb/articles/{id}/versions/{version}", readers, s_version);
    http_route (http, "GET", "/api/v1/kb/articles/{id}/diff", readers, s_diff_route);
    http_route (http, "GET", "/api/v1/kb/search", readers, s_search);
    http_route (http, "GET", "/api/v1/kb/briefings", GL_ROLE_AGENT | GL_ROLE_SUPERVISOR,
                s_briefings);
    http_route (http, "GET", "/api/v1/kb/briefings/{id}", GL_ROLE_AGENT | GL_ROLE_SUPERVISOR,
                s_briefing);
    http_route (http, "POST", "/api/v1/kb/briefings/{id}/acknowledge", GL_ROLE_AGENT,
                s_briefing_ack);
}
