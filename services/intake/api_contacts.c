/*  api_contacts — the contacts API (docs/api/contacts.md): create, update, read and search
    contact records, and the taxonomy they are filed under. Storage and the outbox are in
    contacts.c.

    Who may do what:
      - agents and supervisors create contacts; an agent updates its own, a supervisor any;
      - agents, supervisors and protection staff read and search; a sensitive contact (one
        carrying a sensitive category) is shown only to its author, supervisors and protection
        staff: to other agents it does not exist (404, and left out of searches);
      - every read and search is audited before it is answered, and every change after it is
        made.
*/
#include "audit.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define S_CATEGORIES_MAX    8           //  codes on one contact
#define S_NEEDS_MAX         12          //  specific needs codes on one contact
#define S_REF_MAX           256         //  characters of a recording reference
#define S_CODE_MAX          32          //  characters of a location code
#define S_LANG_MAX          15          //  characters of a language code
#define S_SEARCH_BATCH      100         //  index entries read per round trip
#define S_SEARCH_SCAN_MAX   1000        //  index entries looked at for one page

static const char *const s_channels[] = { "call", "walk_in", "sms", NULL };
static const char *const s_directions[] = { "inbound", "outbound", NULL };
static const char *const s_outcomes[]
    = { "information_given", "appointment_booked", "referral_made", "callback_scheduled",
        "complaint_logged",  "emergency_raised",   "silent",        "wrong_number",
        "prank_or_abusive",  NULL };
static const char *const s_sexes[] = { "female", "male", "other", "unknown", NULL };
static const char *const s_age_groups[]
    = { "0-4", "5-11", "12-17", "18-59", "60+", "unknown", NULL };
//  UNHCR's specific needs categories (proGres); a code may carry up to two sub-codes: "SM-CI".
static const char *const s_needs[] = { "CR", "DS", "ER", "FU", "LP", "PG", "SC",
                                       "SM", "SP", "SV", "TR", "UM", "WR", NULL };

typedef enum {
    K_ENUM,
    K_BOOL,
    K_NUMBER,
    K_PHONE,
    K_LANG,
    K_CATEGORIES,
    K_NOTES,
    K_REF,
    K_ID,
    K_NATIONALITY,
    K_NEEDS,
    K_LOCATION
} s_kind_t;

//  The body of POST and PATCH, in the order fields are checked.
static const struct {
    const char *name;
    s_kind_t kind;
    const char *const *values;      //  K_ENUM
    bool required;                  //  on create
    bool immutable;                 //  not in PATCH
    bool nullable;                  //  PATCH may clear it with null
} s_body[] = {
    { "channel", K_ENUM, s_channels, true, true, false },
    { "direction", K_ENUM, s_directions, false, true, false },
    { "call_id", K_ID, NULL, false, true, false },
    { "anonymous", K_BOOL, NULL, false, false, false },
    { "case_number", K_NUMBER, NULL, false, false, true },
    { "individual_number", K_NUMBER, NULL, false, false, true },
    { "phone", K_PHONE, NULL, false, false, true },
    { "language", K_LANG, NULL, true, false, false },
    { "categories", K_CATEGORIES, NULL, false, false, false },
    { "outcome", K_ENUM, s_outcomes, true, false, false },
    { "notes", K_NOTES, NULL, false, false, true },
    { "frustration", K_BOOL, NULL, false, false, false },
    { "recording_ref", K_REF, NULL, false, false, true },
    { "sex", K_ENUM, s_sexes, false, false, true },
    { "age_group", K_ENUM, s_age_groups, false, false, true },
    { "nationality", K_NATIONALITY, NULL, false, false, true },
    { "specific_needs", K_NEEDS, NULL, false, false, false },
    { "location", K_LOCATION, NULL, false, false, true },
};
#define S_NBODY (sizeof s_body / sizeof s_body[0])

static const char *const s_body_names[] = {
    "channel",  "direction", "call_id",     "anonymous",     "case_number", "individual_number",
    "phone",    "language",  "categories",  "outcome",       "notes",       "frustration",
    "recording_ref", "sex",  "age_group",   "nationality",   "specific_needs", "location",
    NULL
};

//  Fields a search result shows (no identifiers, no notes).
static const char *const s_summary[]
    = { "id",        "created_at", "channel",   "direction", "language", "categories",
        "sensitive", "outcome",    "frustration", "repeat",  "repeat_of", "anonymous",
        "agent_id",  "call_id",    NULL };

static int s_bad (http_req_t *req, const char *code, const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Answer 400 (or another 4xx by code) naming field; returns -1 for chaining.
static int
s_bad (http_req_t *req, const char *code, const char *field, const char *fmt, ...)
{
    char message[200];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    http_reply_error (req, 400, code, message, field);
    return -1;
}

static bool
s_charset (const char *s, size_t min, size_t max, const char *extra, bool upper, bool lower,
           bool digits)
{
    size_t n = strlen (s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (upper && c >= 'A' && c <= 'Z') || (lower && c >= 'a' && c <= 'z')
                  || (digits && c >= '0' && c <= '9') || (extra && c && strchr (extra, c));
        if (!ok)
            return false;
    }
    return true;
}

//  A language code: [a-z]{2,3}, optionally -[A-Za-z0-9]{2,8} ("ar", "prs", "ar-SY").
static bool
s_lang_valid (const char *s)
{
    const char *dash = strchr (s, '-');
    size_t base = dash ? (size_t) (dash - s) : strlen (s);
    if (base < 2 || base > 3)
        return false;
    for (size_t i = 0; i < base; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return false;
    return !dash || s_charset (dash + 1, 2, 8, NULL, true, true, true);
}

//  A specific needs code: one of s_needs, then up to two "-" sub-codes of 1..4 [A-Z0-9].
static bool
s_need_valid (const char *s)
{
    if (!s_charset (s, 2, 12, "-", true, false, true))
        return false;
    bool known = false;
    for (size_t i = 0; s_needs[i] && !known; i++)
        known = strncmp (s, s_needs[i], 2) == 0;
    if (!known)
        return false;
    const char *p = s + 2;
    for (int parts = 0; *p; parts++) {
        if (*p != '-' || parts == 2)
            return false;
        size_t len = strcspn (p + 1, "-");
        if (len < 1 || len > 4)
            return false;
        p += 1 + len;
    }
    return true;
}

//  An array of distinct strings, each passing check; at most max. -1 after answering.
static int
s_check_list (http_req_t *req, const char *field, const json_t *v, size_t max,
              bool (*check) (void *arg, const char *s), void *arg, const char *what)
{
    if (!json_is_array (v))
        return s_bad (req, "invalid_field", field, "'%s' must be an array of %s", field, what);
    if (json_array_size (v) > max)
        return s_bad (req, "invalid_field", field, "'%s' holds more than %zu items", field, max);
    for (size_t i = 0; i < json_array_size (v); i++) {
        const char *s = json_string_value (json_array_get (v, i));
        if (!s || !check (arg, s))
            return s_bad (req, "invalid_field", field, "'%s' item %zu is not %s", field, i + 1,
                          what);
        for (size_t k = 0; k < i; k++)
            if (strcmp (s, json_string_value (json_array_get (v, k))) == 0)
                return s_bad (req, "invalid_field", field, "'%s' item %zu is a duplicate", field,
                              i + 1);
    }
    return 0;
}

static bool
s_is_category (void *arg, const char *s)
{
    return strlen (s) <= TAXONOMY_CODE_MAX && taxonomy_find (arg, s, NULL, NULL);
}

static bool
s_is_need (void *arg, const char *s)
{
    return s_need_valid (s);
}

//  Validate one body field and store it in rec (null clears a nullable field). -1 after
//  answering 400.
static int
s_apply_field (intake_t *intake, http_req_t *req, size_t f, json_t *rec)
{
    const char *name = s_body[f].name;
    const json_t *v = json_object_get (http_body (req), name);
    if (!v)
        return 0;
    if (json_is_null (v)) {
        if (!s_body[f].nullable)
            return s_bad (req, "invalid_field", name, "'%s' cannot be null", name);
        json_object_set_new (rec, name, json_null ());
        return 0;
    }
    const char *s = NULL;
    bool b = false;
    char norm[CONTACTS_PHONE_MAX + 8];
    switch (s_body[f].kind) {
    case K_ENUM:
        if (http_body_enum (req, name, false, s_body[f].values, &s))
            return -1;
        break;
    case K_BOOL:
        if (http_body_bool (req, name, false, &b))
            return -1;
        json_object_set_new (rec, name, json_boolean (b));
        return 0;
    case K_NUMBER:
        if (http_body_str (req, name, true, CONTACTS_NUMBER_MAX, &s))
            return -1;
        if (contacts_number_normalise (s, norm, sizeof norm) != 0)
            return s_bad (req, "invalid_field", name,
                          "'%s' must be letters and digits (spaces, '-', '/' and '.' are "
                          "ignored)",
                          name);
        break;
    case K_PHONE:
        if (http_body_str (req, name, true, CONTACTS_PHONE_MAX, &s))
            return -1;
        if (contacts_phone_normalise (s, contacts_country (intake), norm, sizeof norm) != 0)
            return s_bad (req, "invalid_field", name,
                          "'%s' must be a phone number: digits, an optional leading '+', "
                          "spaces, '-', '.', '(' and ')'; 4 to 15 digits",
                          name);
        break;
    case K_LANG:
        if (http_body_str (req, name, true, S_LANG_MAX, &s))
            return -1;
        if (!s_lang_valid (s))
            return s_bad (req, "invalid_field", name,
                          "'%s' must be a language code such as \"ar\" or \"ar-SY\"", name);
        break;
    case K_CATEGORIES:
        if (s_check_list (req, name, v, S_CATEGORIES_MAX, s_is_category,
                          (void *) contacts_taxonomy (intake), "a category code of the taxonomy"))
            return -1;
        json_object_set_new (rec, name, json_deep_copy (v));
        return 0;
    case K_NEEDS:
        if (s_check_list (req, name, v, S_NEEDS_MAX, s_is_need, NULL,
                          "a UNHCR specific needs code"))
            return -1;
        json_object_set_new (rec, name, json_deep_copy (v));
        return 0;
    case K_NOTES:
        if (http_body_str (req, name, false, CONTACTS_NOTES_MAX, &s))
            return -1;
        break;
    case K_REF:
        if (http_body_str (req, name, true, S_REF_MAX, &s))
            return -1;
        if (!s_charset (s, 1, S_REF_MAX, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", true, true, true))
            return s_bad (req, "invalid_field", name,
                          "'%s' must be visible ASCII characters without spaces", name);
        break;
    case K_ID:
        if (http_body_id (req, name, false, &s))
            return -1;
        break;
    case K_NATIONALITY:
        if (http_body_str (req, name, true, 3, &s))
            return -1;
        if (!s_charset (s, 3, 3, NULL, true, false, false))
            return s_bad (req, "invalid_field", name,
                          "'%s' must be an ISO 3166-1 alpha-3 code (\"SYR\")", name);
        break;
    case K_LOCATION:
        if (http_body_str (req, name, true, S_CODE_MAX, &s))
            return -1;
        if (!s_charset (s, 1, S_CODE_MAX, "_.-", true, true, true))
            return s_bad (req, "invalid_field", name,
                          "'%s' must be a location code: letters, digits, '_', '.', '-'", name);
        break;
    }
    //  Empty notes are no notes.
    json_object_set_new (rec, name, s && *s ? json_string (s) : json_null ());
    return 0;
}

//  Apply the body to rec: every field on create (required ones checked), the mutable ones on
//  update. -1 after answering.
static int
s_apply (intake_t *intake, http_req_t *req, json_t *rec, bool creating)
{
    if (http_body_only (req, s_body_names))
        return -1;
    const json_t *body = http_body (req);
    for (size_t f = 0; f < S_NBODY; f++) {
        const char *name = s_body[f].name;
        if (!creating && s_body[f].immutable && json_object_get (body, name))
            return s_bad (req, "invalid_field", name, "'%s' cannot be changed after creation",
                          name);
        if (creating && s_body[f].required && !json_object_get (body, name))
            return s_bad (req, "missing_field", name, "'%s' is required", name);
        if (s_apply_field (intake, req, f, rec))
            return -1;
    }
    return 0;
}

static bool
s_no_contact (const char *outcome)
{
    return outcome
           && (strcmp (outcome, "silent") == 0 || strcmp (outcome, "wrong_number") == 0
               || strcmp (outcome, "prank_or_abusive") == 0);
}

static const char *
s_str (const json_t *rec, const char *name)
{
    return json_string_value (json_object_get (rec, name));
}

//  True when rec's field name is the string value. Records read back from Redis are outside
//  input: a field may be missing.
static bool
s_is (const json_t *rec, const char *name, const char *value)
{
    const char *s = s_str (rec, name);
    return s && strcmp (s, value) == 0;
}

//  Rules across fields (docs/api/contacts.md, "Fields"). -1 after answering.
static int
s_check_record (http_req_t *req, const json_t *rec)
{
    const char *outcome = s_str (rec, "outcome");
    if (s_is (rec, "channel", "walk_in") && s_is (rec, "direction", "outbound"))
        return s_bad (req, "invalid_field", "direction", "a walk-in is always inbound");
    if (json_array_size (json_object_get (rec, "categories")) == 0 && !s_no_contact (outcome))
        return s_bad (req, "missing_field", "categories",
                      "'categories' needs at least one code unless the outcome is silent, "
                      "wrong_number or prank_or_abusive");
    bool identified = s_str (rec, "case_number") || s_str (rec, "individual_number")
                      || s_str (rec, "phone");
    bool anonymous = json_is_true (json_object_get (rec, "anonymous"));
    if (anonymous && identified)
        return s_bad (req, "invalid_field", "anonymous",
                      "an anonymous contact carries no case number, individual number or phone");
    if (!anonymous && !identified && !s_no_contact (outcome))
        return s_bad (req, "missing_field", "anonymous",
                      "give case_number, individual_number or phone, or set anonymous to true");
    return 0;
}

//  The fields derived from the others: sensitive, the top-level categories, the index hashes.
static void
s_derive (intake_t *intake, json_t *rec)
{
    const taxonomy_t *tax = contacts_taxonomy (intake);
    bool sensitive = false;
    char topcats[S_CATEGORIES_MAX * (TAXONOMY_PART_MAX + 1) + 1] = "";
    size_t i;
    json_t *code;
    json_array_foreach (json_object_get (rec, "categories"), i, code) {
        bool s = false;
        const char *category = NULL;
        if (!json_is_string (code) || !taxonomy_find (tax, json_string_value (code), &s, &category))
            continue;
        sensitive = sensitive || s;
        char word[TAXONOMY_PART_MAX + 3];
        snprintf (word, sizeof word, " %s ", category);
        char padded[sizeof topcats + 2];
        snprintf (padded, sizeof padded, " %s ", topcats);
        if (!strstr (padded, word)) {
            size_t n = strlen (topcats);
            snprintf (topcats + n, sizeof topcats - n, "%s%s", n ? " " : "", category);
        }
    }
    json_object_set_new (rec, "sensitive", json_boolean (sensitive));
    json_object_set_new (rec, "_topcats", *topcats ? json_string (topcats) : json_null ());

    static const struct {
        const char *field;
        const char *hash;
        const char *kind;
    } ids[] = { { "case_number", "_case_h", "case" },
                { "individual_number", "_ind_h", "ind" },
                { "phone", "_phone_h", "phone" } };
    for (size_t k = 0; k < 3; k++) {
        const char *value = s_str (rec, ids[k].field);
        char norm[CONTACTS_PHONE_MAX + 8], h[CONTACTS_HASH_HEX + 1];
        int rc = !value ? -1
                 : k == 2 ? contacts_phone_normalise (value, contacts_country (intake), norm,
                                                      sizeof norm)
                          : contacts_number_normalise (value, norm, sizeof norm);
        if (rc == 0) {
            contacts_index_hash (intake, ids[k].kind, norm, h);
            json_object_set_new (rec, ids[k].hash, json_string (h));
        }
        else
            json_object_set_new (rec, ids[k].hash, json_null ());
    }
}

//  The index zsets of rec: person indexes first (their count in *npersons), then the time
//  index, then one per category and subcategory code. Strings are written to keys (n entries
//  of key_len bytes).
static size_t
s_index_keys (intake_t *intake, const json_t *rec, char keys[][96], size_t max, size_t *npersons)
{
    static const struct {
        const char *hash;
        const char *kind;
    } persons[] = { { "_case_h", "case" }, { "_ind_h", "ind" }, { "_phone_h", "phone" } };
    size_t n = 0;
    for (size_t k = 0; k < 3; k++) {
        const char *h = s_str (rec, persons[k].hash);
        if (h)
            snprintf (keys[n++], 96, CONTACTS_PREFIX "contacts:%s:%s", persons[k].kind, h);
    }
    *npersons = n;
    snprintf (keys[n++], 96, CONTACTS_PREFIX "contacts:time");
    size_t i;
    json_t *code;
    json_array_foreach (json_object_get (rec, "categories"), i, code) {
        const char *category = NULL;
        const char *c = json_string_value (code);
        if (!c || !taxonomy_find (contacts_taxonomy (intake), c, NULL, &category))
            continue;
        const char *both[2] = { category, c };
        for (size_t b = 0; b < 2 && n < max; b++) {
            char key[96];
            snprintf (key, sizeof key, CONTACTS_PREFIX "contacts:cat:%s", both[b]);
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++)
                dup = strcmp (keys[k], key) == 0;
            if (!dup)
                memcpy (keys[n++], key, sizeof key);
        }
    }
    assert (n <= max);
    return n;
}

//  The payload of contact.created / contact.updated: ids and codes only.
static json_t *
s_event_data (const json_t *rec)
{
    json_t *agd = json_pack ("{s:O?, s:O?, s:O?, s:O?, s:O?}", "sex", json_object_get (rec, "sex"),
                             "age_group", json_object_get (rec, "age_group"), "nationality",
                             json_object_get (rec, "nationality"), "specific_needs",
                             json_object_get (rec, "specific_needs"), "location",
                             json_object_get (rec, "location"));
    //  O? packs an absent field as null.
    return json_pack ("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:o*}",
                      "contact_id", json_object_get (rec, "id"), "channel",
                      json_object_get (rec, "channel"), "direction",
                      json_object_get (rec, "direction"), "language",
                      json_object_get (rec, "language"), "categories",
                      json_object_get (rec, "categories"), "outcome",
                      json_object_get (rec, "outcome"), "frustration",
                      json_object_get (rec, "frustration"), "anonymous",
                      json_object_get (rec, "anonymous"), "sensitive",
                      json_object_get (rec, "sensitive"), "call_id",
                      json_object_get (rec, "call_id"), "agent_id",
                      json_object_get (rec, "agent_id"), "agd", agd);
}

//  A new array of C strings borrowed from a JSON array of strings (for the script's argv).
static const char **
s_argv_of (const json_t *array)
{
    size_t n = json_array_size (array);
    const char **argv = calloc (n ? n : 1, sizeof *argv);
    for (size_t i = 0; argv && i < n; i++)
        argv[i] = json_string_value (json_array_get (array, i));
    return argv;
}

static int
s_unavailable (http_req_t *req)
{
    return http_reply_error (req, 503, "unavailable", "storage unreachable; retry", NULL);
}

//  --------------------------------------------------------------------------------------------
//  POST /api/v1/contacts

//  A retry with an Idempotency-Key already used: the same answer as the first time, or 409 when
//  the body differs.
static int
s_replay (intake_t *intake, http_req_t *req, const char *stored, const char *body_hash)
{
    char id[GL_ID_LEN + 1] = "";
    const char *space = strchr (stored, ' ');
    if (space && space - stored == GL_ID_LEN)
        memcpy (id, stored, GL_ID_LEN);
    if (!space || strcmp (space + 1, body_hash) != 0)
        return http_reply_error (req, 409, "idempotency_conflict",
                                 "this Idempotency-Key was used with another body", NULL);
    json_t *rec = NULL;
    int rc = contacts_read (intake, id, &rec);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return http_reply_error (req, 409, "idempotency_conflict",
                                 "this Idempotency-Key's contact no longer exists", NULL);
    http_set_header (req, "Idempotent-Replayed", "true");
    json_t *pub = contacts_public (rec);
    json_decref (rec);
    return http_reply_json (req, 201, pub);
}

//  Answer a contact write: rec (taken) is the new record; rc, repeat_of and stored as
//  contacts_write_new gives them.
static int
s_answer_created (intake_t *intake, http_req_t *req, json_t *rec, int rc, const char *repeat_of,
                  const char *stored, const char *body_hash)
{
    if (rc == 1) {
        json_decref (rec);
        return s_replay (intake, req, stored, body_hash);
    }
    if (rc != 0) {
        json_decref (rec);
        return s_unavailable (req);
    }
    if (*repeat_of) {
        json_object_set_new (rec, "repeat", json_true ());
        json_object_set_new (rec, "repeat_of", json_string (repeat_of));
    }
    //  The record exists: a failed audit append was logged but the contact stands.
    json_t *pub = contacts_public (rec);
    json_decref (rec);
    return http_reply_json (req, 201, pub);
}

//  A contact write sent over the asynchronous connection, waiting for its answer.
typedef struct {
    http_req_t *req;                    //  deferred (http_defer)
    json_t *rec;
    char body_hash[CONTACTS_HASH_HEX + 1];
} s_created_t;

static void
s_on_created (intake_t *intake, int rc, const char *repeat_of, const char *stored, void *arg)
{
    s_created_t *p = arg;
    s_answer_created (intake, p->req, p->rec, rc, repeat_of, stored, p->body_hash);
    free (p);
}

static int
s_create (intake_t *intake, http_req_t *req)
{
    const http_caller_t *who = http_caller (req);
    json_t *rec = json_pack ("{s:s, s:b, s:[], s:b, s:[]}", "direction", "inbound", "anonymous",
                             0, "categories", "frustration", 0, "specific_needs");
    if (!rec)
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    bool has_idem = false;
    char idem_key[160], body_hash[CONTACTS_HASH_HEX + 1];
    if (s_apply (intake, req, rec, true) || s_check_record (req, rec)
        || contacts_idempotency (intake, req, "contacts", &has_idem, idem_key, sizeof idem_key,
                                 body_hash)) {
        json_decref (rec);
        return -1;
    }
    s_derive (intake, rec);
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    int64_t now = gl_now_ms ();
    json_object_set_new (rec, "id", json_string (id));
    json_object_set_new (rec, "created_at", json_integer (now));
    json_object_set_new (rec, "updated_at", json_integer (now));
    json_object_set_new (rec, "version", json_integer (1));
    json_object_set_new (rec, "agent_id", json_string (who->user_id));
    json_object_set_new (rec, "updated_by", json_string (who->user_id));
    json_object_set_new (rec, "repeat", json_false ());
    json_object_set_new (rec, "repeat_of", json_null ());

    json_t *set = NULL, *del = NULL;
    gl_event_t *ev = gl_event_new ("contact.created");
    char keys[CONTACTS_INDEX_MAX][96];
    contacts_write_t w = { .id = id, .created_at = now, .detect_repeat = true };
    w.nindex = s_index_keys (intake, rec, keys, CONTACTS_INDEX_MAX, &w.npersons);
    for (size_t i = 0; i < w.nindex; i++)
        w.index[i] = keys[i];
    char record_key[96], idem_value[GL_ID_LEN + CONTACTS_HASH_HEX + 2];
    snprintf (record_key, sizeof record_key, CONTACTS_PREFIX "contact:%s", id);
    snprintf (idem_value, sizeof idem_value, "%s %s", id, body_hash);
    w.record_key = record_key;
    w.idem_key = has_idem ? idem_key : NULL;
    w.idem_value = idem_value;
    w.topcats = s_str (rec, "_topcats") ? s_str (rec, "_topcats") : "";
    //  The audit entry is written by the same script as the record (one round trip).
    audit_entry_t audit;
    if (audit_entry_req (intake, req, "create", "contact", id,
                         json_is_true (json_object_get (rec, "sensitive")) ? "sensitive" : "",
                         &audit)
        == 0)
        w.audit = &audit;
    int rc = -1;
    char repeat_of[GL_ID_LEN + 1] = "", stored[GL_ID_LEN + CONTACTS_HASH_HEX + 2] = "";
    s_created_t *pending = NULL;
    if (ev && contacts_record_fields (rec, NULL, &set, &del) == 0) {
        json_decref (ev->data);
        ev->data = s_event_data (rec);
        gl_event_set_corr (ev, id);
        w.nfields = json_array_size (set) / 2;
        w.fields = s_argv_of (set);
        pending = malloc (sizeof *pending);
        if (ev->data && w.fields && pending) {
            //  Asynchronous when the connection for it is up (the answer comes from
            //  s_on_created); synchronous otherwise.
            *pending = (s_created_t) { .req = req, .rec = rec };
            snprintf (pending->body_hash, sizeof pending->body_hash, "%s", body_hash);
            rc = contacts_write_new_async (intake, &w, &ev, 0, s_on_created, pending);
            if (rc == 0) {
                pending = NULL;
                rec = NULL;
                rc = 2;                 //  sent
            }
            else if (rc == -1)
                rc = contacts_write_new (intake, &w, ev, 0, repeat_of, stored, sizeof stored);
        }
        free ((void *) w.fields);
    }
    free (pending);
    json_decref (set);
    json_decref (del);
    gl_event_destroy (&ev);
    if (rc == 2) {
        http_defer (req);
        return 0;
    }
    return s_answer_created (intake, req, rec, rc, repeat_of, stored, body_hash);
}

//  --------------------------------------------------------------------------------------------
//  GET /api/v1/contacts/{id}, PATCH /api/v1/contacts/{id}

//  Read the contact of the path for who. 0 with *rec, or -1 after answering 404/503. A
//  sensitive contact the caller may not see answers 404 like a missing one, and the attempt is
//  audited.
static int
s_load (intake_t *intake, http_req_t *req, json_t **rec)
{
    const char *id = http_param (req, "id");
    int rc = contacts_read (intake, id, rec);
    if (rc < 0)
        return s_unavailable (req), -1;
    if (rc > 0)
        return http_reply_error (req, 404, "not_found", "no such contact", NULL), -1;
    if (!contacts_visible (*rec, http_caller (req))) {
        json_decref (*rec);
        *rec = NULL;
        if (audit_record_req (intake, req, "read_denied", "contact", id, "sensitive") != 0)
            return s_unavailable (req), -1;
        return http_reply_error (req, 404, "not_found", "no such contact", NULL), -1;
    }
    return 0;
}

static int
s_get (intake_t *intake, http_req_t *req)
{
    json_t *rec = NULL;
    if (s_load (intake, req, &rec))
        return -1;
    bool sensitive = json_is_true (json_object_get (rec, "sensitive"));
    if (audit_record_req (intake, req, "read", "contact", http_param (req, "id"),
                          sensitive ? "sensitive" : "")
        != 0) {
        json_decref (rec);
        return http_reply_error (req, 503, "unavailable", "cannot audit the read now; retry",
                                 NULL);
    }
    json_t *pub = contacts_public (rec);
    json_decref (rec);
    return http_reply_json (req, 200, pub);
}

static int
s_update (intake_t *intake, http_req_t *req)
{
    const http_caller_t *who = http_caller (req);
    json_t *old = NULL;
    if (s_load (intake, req, &old))
        return -1;
    const char *author = s_str (old, "agent_id");
    if (!(who->roles & GL_ROLE_SUPERVISOR) && (!author || strcmp (author, who->user_id) != 0)) {
        json_decref (old);
        return http_reply_error (req, 403, "forbidden", "an agent updates only its own contacts",
                                 NULL);
    }
    if (json_object_size (http_body (req)) == 0) {
        json_decref (old);
        return s_bad (req, "missing_field", NULL, "nothing to change");
    }
    json_t *rec = json_deep_copy (old);
    if (!rec || s_apply (intake, req, rec, false) || s_check_record (req, rec)) {
        json_decref (rec);
        json_decref (old);
        return rec ? -1 : http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    s_derive (intake, rec);
    json_t *changed = json_array ();
    for (size_t f = 0; f < S_NBODY; f++)
        if (!json_equal (json_object_get (old, s_body[f].name),
                         json_object_get (rec, s_body[f].name)))
            json_array_append_new (changed, json_string (s_body[f].name));
    if (json_array_size (changed) == 0) {
        json_decref (changed);
        json_decref (rec);
        json_t *pub = contacts_public (old);
        json_decref (old);
        return http_reply_json (req, 200, pub);
    }
    const char *id = http_param (req, "id");        //  a valid id: contacts_read found it
    json_int_t version = json_integer_value (json_object_get (old, "version"));
    json_object_set_new (rec, "version", json_integer (version + 1));
    json_object_set_new (rec, "updated_at", json_integer (gl_now_ms ()));
    json_object_set_new (rec, "updated_by", json_string (who->user_id));

    char old_keys[CONTACTS_INDEX_MAX][96], new_keys[CONTACTS_INDEX_MAX][96];
    size_t np;
    contacts_update_t u = { .id = id };
    u.nremove = s_index_keys (intake, old, old_keys, CONTACTS_INDEX_MAX, &np);
    u.nadd = s_index_keys (intake, rec, new_keys, CONTACTS_INDEX_MAX, &np);
    for (size_t i = 0; i < u.nremove; i++)
        u.remove[i] = old_keys[i];
    for (size_t i = 0; i < u.nadd; i++)
        u.add[i] = new_keys[i];
    char record_key[96], expected[24];
    snprintf (record_key, sizeof record_key, CONTACTS_PREFIX "contact:%s", id);
    snprintf (expected, sizeof expected, "%" JSON_INTEGER_FORMAT, version);
    u.record_key = record_key;
    u.expected_version = expected;
    u.score = json_integer_value (json_object_get (old, "created_at"));

    json_t *set = NULL, *del = NULL;
    gl_event_t *ev = gl_event_new ("contact.updated");
    int rc = -1;
    if (ev && contacts_record_fields (rec, old, &set, &del) == 0) {
        json_t *data = s_event_data (rec);
        json_object_set (data, "repeat", json_object_get (rec, "repeat"));
        json_object_set (data, "repeat_of", json_object_get (rec, "repeat_of"));
        json_object_set (data, "version", json_object_get (rec, "version"));
        json_object_set (data, "updated_by", json_object_get (rec, "updated_by"));
        json_object_set (data, "changed", changed);
        json_decref (ev->data);
        ev->data = data;
        gl_event_set_corr (ev, id);
        u.nset = json_array_size (set) / 2;
        u.set = s_argv_of (set);
        u.ndel = json_array_size (del);
        u.del = s_argv_of (del);
        if (data && u.set && u.del)
            rc = contacts_write_update (intake, &u, ev);
        free ((void *) u.set);
        free ((void *) u.del);
    }
    json_decref (set);
    json_decref (del);
    gl_event_destroy (&ev);
    json_decref (changed);
    json_decref (old);
    if (rc != 0) {
        json_decref (rec);
        if (rc == 1)
            return http_reply_error (req, 404, "not_found", "no such contact", NULL);
        if (rc == 2)
            return http_reply_error (req, 409, "conflict",
                                     "the contact changed meanwhile; read it and retry", NULL);
        return s_unavailable (req);
    }
    audit_record_req (intake, req, "update", "contact", http_param (req, "id"),
                      json_is_true (json_object_get (rec, "sensitive")) ? "sensitive" : "");
    json_t *pub = contacts_public (rec);
    json_decref (rec);
    return http_reply_json (req, 200, pub);
}

//  --------------------------------------------------------------------------------------------
//  GET /api/v1/contacts (search)

typedef struct {
    char index[96];                     //  the zset walked
    const char *detail;                 //  audit detail code: the primary filter
    char case_h[CONTACTS_HASH_HEX + 1]; //  filters ("" for none)
    char ind_h[CONTACTS_HASH_HEX + 1];
    char phone_h[CONTACTS_HASH_HEX + 1];
    const char *category;
    int64_t from, to;                   //  [from, to); -1 for none
} s_search_t;

//  A time in unix ms from the query (digits only). -1 after answering.
static int
s_query_ms (http_req_t *req, const char *name, int64_t *out)
{
    const char *s = http_query (req, name);
    if (!s)
        return 0;
    if (!s_charset (s, 1, 15, NULL, false, false, true)) {
        http_reply_error (req, 400, "invalid_parameter",
                          "a time is unix milliseconds (digits only)", name);
        return -1;
    }
    *out = (int64_t) strtoll (s, NULL, 10);
    return 0;
}

//  An identifier filter from the query: its keyed hash in h. -1 after answering.
static int
s_query_id (intake_t *intake, http_req_t *req, const char *name, const char *kind, char *h)
{
    const char *s = http_query (req, name);
    if (!s)
        return 0;
    char norm[CONTACTS_PHONE_MAX + 8];
    int rc = strcmp (kind, "phone") == 0
                 ? contacts_phone_normalise (s, contacts_country (intake), norm, sizeof norm)
                 : contacts_number_normalise (s, norm, sizeof norm);
    if (rc != 0) {
        http_reply_error (req, 400, "invalid_parameter",
                          strcmp (kind, "phone") == 0 ? "not a phone number"
                                                      : "not a case or individual number",
                          name);
        return -1;
    }
    contacts_index_hash (intake, kind, norm, h);
    return 0;
}

static int
s_parse_search (intake_t *intake, http_req_t *req, s_search_t *q)
{
    memset (q, 0, sizeof *q);
    q->from = q->to = -1;
    if (s_query_id (intake, req, "case_number", "case", q->case_h)
        || s_query_id (intake, req, "individual_number", "ind", q->ind_h)
        || s_query_id (intake, req, "phone", "phone", q->phone_h)
        || s_query_ms (req, "from", &q->from) || s_query_ms (req, "to", &q->to))
        return -1;
    q->category = http_query (req, "category");
    if (q->category
        && (strlen (q->category) > TAXONOMY_CODE_MAX
            || !taxonomy_find (contacts_taxonomy (intake), q->category, NULL, NULL))) {
        http_reply_error (req, 400, "invalid_parameter", "not a category code of the taxonomy",
                          "category");
        return -1;
    }
    if (q->from >= 0 && q->to >= 0 && q->from >= q->to) {
        http_reply_error (req, 400, "invalid_parameter", "'from' must be before 'to'", "from");
        return -1;
    }
    if (*q->case_h)
        snprintf (q->index, sizeof q->index, CONTACTS_PREFIX "contacts:case:%s", q->case_h),
            q->detail = "case_number";
    else if (*q->ind_h)
        snprintf (q->index, sizeof q->index, CONTACTS_PREFIX "contacts:ind:%s", q->ind_h),
            q->detail = "individual_number";
    else if (*q->phone_h)
        snprintf (q->index, sizeof q->index, CONTACTS_PREFIX "contacts:phone:%s", q->phone_h),
            q->detail = "phone";
    else if (q->category)
        snprintf (q->index, sizeof q->index, CONTACTS_PREFIX "contacts:cat:%s", q->category),
            q->detail = "category";
    else
        snprintf (q->index, sizeof q->index, CONTACTS_PREFIX "contacts:time"),
            q->detail = q->from >= 0 || q->to >= 0 ? "date" : "all";
    return 0;
}

static bool
s_hash_matches (const json_t *rec, const char *field, const char *want)
{
    if (!*want)
        return true;
    const char *have = s_str (rec, field);
    return have && strcmp (have, want) == 0;
}

static bool
s_matches (intake_t *intake, const s_search_t *q, const json_t *rec)
{
    if (!s_hash_matches (rec, "_case_h", q->case_h) || !s_hash_matches (rec, "_ind_h", q->ind_h)
        || !s_hash_matches (rec, "_phone_h", q->phone_h))
        return false;
    if (!q->category)
        return true;
    size_t i;
    json_t *code;
    json_array_foreach (json_object_get (rec, "categories"), i, code) {
        const char *category = NULL;
        const char *c = json_string_value (code);
        if (!c)
            continue;
        if (strcmp (c, q->category) == 0
            || (taxonomy_find (contacts_taxonomy (intake), c, NULL, &category)
                && strcmp (category, q->category) == 0))
            return true;
    }
    return false;
}

static json_t *
s_summary_of (const json_t *rec)
{
    json_t *item = json_object ();
    for (size_t i = 0; s_summary[i]; i++)
        json_object_set (item, s_summary[i], json_object_get (rec, s_summary[i]));
    return item;
}

//  The page's cursor text is "<score> <id>": the last index entry looked at.
static int
s_parse_cursor (const char *text, int64_t *score, char *id)
{
    const char *space = strchr (text, ' ');
    if (!space || space == text || space - text > 15 || !gl_id_valid (space + 1))
        return -1;
    for (const char *p = text; p < space; p++)
        if (*p < '0' || *p > '9')
            return -1;
    *score = (int64_t) strtoll (text, NULL, 10);
    memcpy (id, space + 1, GL_ID_LEN + 1);
    return 0;
}

static int
s_search (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "case_number", "individual_number", "phone",
                                           "category",    "from",  "to", "limit", "cursor",
                                           NULL };
    http_page_t page;
    s_search_t q;
    if (http_query_only (req, params) || http_page (req, &page) || s_parse_search (intake, req, &q))
        return -1;
    int64_t cur_score = -1;
    char cur_id[GL_ID_LEN + 1] = "";
    if (page.has_cursor && s_parse_cursor (page.cursor, &cur_score, cur_id) != 0)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'cursor' is not a cursor this API gave out", "cursor");
    if (audit_record_req (intake, req, "search", "contact", "", q.detail) != 0)
        return http_reply_error (req, 503, "unavailable", "cannot audit the search now; retry",
                                 NULL);
    char hi[24] = "+inf", lo[24] = "-inf";
    int64_t top = cur_score >= 0 ? cur_score : -1;
    if (q.to >= 0 && (top < 0 || q.to - 1 < top))
        top = q.to - 1;
    if (top >= 0)
        snprintf (hi, sizeof hi, "%" PRId64, top);
    if (q.from >= 0)
        snprintf (lo, sizeof lo, "%" PRId64, q.from);

    json_t *items = json_array ();
    const http_caller_t *who = http_caller (req);
    size_t offset = 0, scanned = 0;
    bool exhausted = false, failed = false;
    char last[GL_ID_LEN + 24] = "";
    while (!failed && (int) json_array_size (items) < page.limit && scanned < S_SEARCH_SCAN_MAX) {
        char off[24], count[24];
        snprintf (off, sizeof off, "%zu", offset);
        snprintf (count, sizeof count, "%d", S_SEARCH_BATCH);
        const char *argv[] = { "ZREVRANGEBYSCORE", q.index, hi, lo, "WITHSCORES", "LIMIT", off,
                               count };
        redisReply *r = gl_redis_cmdargv (intake->redis, 8, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            failed = true;
            break;
        }
        size_t got = r->elements / 2;
        offset += got;
        exhausted = got < S_SEARCH_BATCH;
        const char *ids[S_SEARCH_BATCH];
        int64_t scores[S_SEARCH_BATCH];
        size_t n = 0;
        for (size_t i = 0; i < got; i++) {
            const redisReply *m = r->element[2 * i], *s = r->element[2 * i + 1];
            if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING
                || !gl_id_valid (m->str))
                continue;
            int64_t score = (int64_t) strtoll (s->str, NULL, 10);
            //  Entries up to and including the cursor were on earlier pages.
            if (cur_score >= 0 && score == cur_score && strcmp (m->str, cur_id) >= 0)
                continue;
            ids[n] = m->str;
            scores[n++] = score;
        }
        json_t *recs[S_SEARCH_BATCH];
        if (contacts_read_many (intake, ids, n, recs) != 0)
            failed = true;
        for (size_t i = 0; !failed && i < n; i++) {
            if ((int) json_array_size (items) >= page.limit || scanned >= S_SEARCH_SCAN_MAX) {
                exhausted = false;
                break;
            }
            scanned++;
            snprintf (last, sizeof last, "%" PRId64 " %s", scores[i], ids[i]);
            if (recs[i] && s_matches (intake, &q, recs[i]) && contacts_visible (recs[i], who))
                json_array_append_new (items, s_summary_of (recs[i]));
        }
        for (size_t i = 0; !failed && i < n; i++)
            json_decref (recs[i]);
        freeReplyObject (r);
        if (exhausted)
            break;
    }
    if (failed) {
        json_decref (items);
        return s_unavailable (req);
    }
    return http_reply_page (req, items, exhausted || !*last ? NULL : last);
}

//  --------------------------------------------------------------------------------------------
//  GET /api/v1/taxonomy

static int
s_taxonomy (intake_t *intake, http_req_t *req)
{
    return http_reply_json (req, 200, taxonomy_json (contacts_taxonomy (intake)));
}

void
api_contacts_routes (intake_t *intake)
{
    http_t *http = intake->http;
    uint32_t readers = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION;
    uint32_t writers = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR;
    http_route (http, "GET", "/api/v1/taxonomy", GL_ROLE_STAFF, s_taxonomy);
    http_route (http, "POST", "/api/v1/contacts", writers, s_create);
    http_route (http, "GET", "/api/v1/contacts", readers, s_search);
    http_route (http, "GET", "/api/v1/contacts/{id}", readers, s_get);
    http_route (http, "PATCH", "/api/v1/contacts/{id}", writers, s_update);
    //  Emergencies and referrals raised from a contact (raise.c).
    api_raise_routes (intake);
}
