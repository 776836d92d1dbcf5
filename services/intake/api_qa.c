/*  api_qa — the QA reviews API (docs/api/qa.md): scorecards, samples, reviews, the agent's
    acknowledgement, and scores by criterion. Scorecards and sampling are in qa.c, storage in
    docstore.c.

    Who may do what:
      - supervisors draw samples, review contacts and see every review and figure;
      - an agent sees only its own reviews and figures (anything else answers 404, or 403 for
        an explicit other agent_id), and acknowledges its own feedback;
      - staff read the scorecards.
    Reviews and acknowledgements are audited (record type qa_review).
*/
#include "audit.h"
#include "auth.h"
#include "contacts.h"
#include "docstore.h"
#include "intake.h"
#include "qa.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_SAMPLE        QA_PREFIX "sample:"
#define S_REVIEW        QA_PREFIX "review:"
#define S_REVIEWS       QA_PREFIX "reviews"
#define S_TIME_MAX      INT64_C(999999999999999)

static const char *
s_str (const json_t *doc, const char *name)
{
    return docstore_str (doc, name);
}

static bool
s_supervisor (http_req_t *req)
{
    return (http_caller (req)->roles & GL_ROLE_SUPERVISOR) != 0;
}

//  --------------------------------------------------------------------------------------------
//  Scorecards

static int
s_scorecards (intake_t *intake, http_req_t *req)
{
    const scorecard_set_t *set = qa_scorecards (intake);
    json_t *items = json_array ();
    for (size_t i = 0; i < set->count; i++)
        json_array_append_new (items, qa_scorecard_json (&set->cards[i]));
    return http_reply_json (req, 200, json_pack ("{s:o}", "items", items));
}

//  --------------------------------------------------------------------------------------------
//  Samples

static int
s_sample_new (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "agent_id", "from", "to", "size", NULL };
    const char *agent_id = NULL;
    int64_t from = 0, to = 0, size = 5;
    if (http_body_only (req, fields) || http_body_id (req, "agent_id", true, &agent_id)
        || http_body_int (req, "from", true, 0, S_TIME_MAX, &from)
        || http_body_int (req, "to", true, 0, S_TIME_MAX, &to)
        || http_body_int (req, "size", false, 1, QA_SAMPLE_MAX, &size))
        return -1;
    if (from >= to)
        return http_reply_error (req, 400, "invalid_field", "'from' must be before 'to'", "from");
    auth_user_t user;
    int rc = auth_user_get (intake, agent_id, &user);
    if (rc < 0)
        return docstore_unavailable (req);
    if (rc > 0 || !(user.roles & GL_ROLE_AGENT))
        return http_reply_error (req, 422, "unknown_agent", "no agent has this id", "agent_id");
    json_t *ids = NULL;
    int64_t population = 0;
    if (qa_draw (intake, agent_id, from, to, (size_t) size, &ids, &population) != 0)
        return docstore_unavailable (req);
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    json_t *doc = json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:s, s:I}", "id", id,
                             "agent_id", agent_id, "from", (json_int_t) from, "to",
                             (json_int_t) to, "size", (json_int_t) size, "population",
                             (json_int_t) population, "contact_ids", ids, "drawn_by",
                             http_caller (req)->user_id, "drawn_at", (json_int_t) gl_now_ms ());
    docstore_tx_t *tx = docstore_tx_new (intake);
    if (!doc || !tx) {
        json_decref (doc);
        docstore_tx_destroy (&tx);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    char key[128];
    snprintf (key, sizeof key, S_SAMPLE "%s", id);
    docstore_tx_put (tx, key, doc, 0, 1);
    if (docstore_tx_commit (&tx, NULL, 0) != 0) {
        json_decref (doc);
        return docstore_unavailable (req);
    }
    audit_record_req (intake, req, "create", "qa_sample", id, "");
    return http_reply_json (req, 201, doc);
}

static int
s_load (intake_t *intake, http_req_t *req, const char *prefix, const char *what, json_t **doc,
        int64_t *v)
{
    const char *id = http_param (req, "id");
    char message[64];
    snprintf (message, sizeof message, "no such %s", what);
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", message, NULL), -1;
    char key[128];
    snprintf (key, sizeof key, "%s%s", prefix, id);
    int rc = docstore_read (intake, key, doc, v);
    if (rc < 0)
        return docstore_unavailable (req), -1;
    if (rc > 0)
        return http_reply_error (req, 404, "not_found", message, NULL), -1;
    return 0;
}

static int
s_sample_get (intake_t *intake, http_req_t *req)
{
    json_t *doc = NULL;
    if (s_load (intake, req, S_SAMPLE, "sample", &doc, NULL))
        return -1;
    return http_reply_json (req, 200, doc);
}

//  --------------------------------------------------------------------------------------------
//  Reviews

//  Check the scores against card: every criterion, and nothing else, each 0..max. *total and
//  *passed (no critical criterion at 0). -1 after answering 400 naming "scores.<criterion>".
static int
s_check_scores (http_req_t *req, const scorecard_t *card, const json_t *scores, int *total,
                bool *passed)
{
    char field[SCORECARD_CODE_MAX + 16];
    *total = 0;
    *passed = true;
    if (!json_is_object (scores)) {
        http_reply_error (req, 400, "invalid_field", "'scores' must be an object of criterion "
                                                     "scores",
                          "scores");
        return -1;
    }
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *) scores, name, v) {
        bool known = false;
        for (size_t i = 0; i < card->count && !known; i++)
            known = strcmp (card->criteria[i].code, name) == 0;
        if (!known) {
            snprintf (field, sizeof field, "scores.%.*s", SCORECARD_CODE_MAX, name);
            http_reply_error (req, 400, "invalid_field", "not a criterion of this scorecard",
                              field);
            return -1;
        }
    }
    for (size_t i = 0; i < card->count; i++) {
        const scorecard_criterion_t *c = &card->criteria[i];
        snprintf (field, sizeof field, "scores.%s", c->code);
        const json_t *s = json_object_get (scores, c->code);
        if (!s) {
            http_reply_error (req, 400, "missing_field", "every criterion must be scored", field);
            return -1;
        }
        if (!json_is_integer (s) || json_integer_value (s) < 0
            || json_integer_value (s) > c->max) {
            char message[96];
            snprintf (message, sizeof message, "a whole number from 0 to %d", c->max);
            http_reply_error (req, 400, "invalid_field", message, field);
            return -1;
        }
        *total += (int) json_integer_value (s);
        if (c->critical && json_integer_value (s) == 0)
            *passed = false;
    }
    return 0;
}

static int
s_review_new (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "contact_id", "sample_id", "scorecard", "scores",
                                          "comment", NULL };
    const char *contact_id = NULL, *sample_id = NULL, *code = NULL, *comment = NULL;
    if (http_body_only (req, fields) || http_body_id (req, "contact_id", true, &contact_id)
        || http_body_id (req, "sample_id", false, &sample_id)
        || http_body_str (req, "scorecard", true, SCORECARD_CODE_MAX, &code)
        || http_body_str (req, "comment", false, QA_COMMENT_MAX, &comment))
        return -1;
    const scorecard_t *card = scorecard_find (qa_scorecards (intake), code);
    if (!card)
        return http_reply_error (req, 422, "unknown_scorecard", "no scorecard has this code",
                                 "scorecard");
    const json_t *scores = json_object_get (http_body (req), "scores");
    if (!scores)
        return http_reply_error (req, 400, "missing_field", "'scores' is required", "scores");
    int total = 0;
    bool passed = true;
    if (s_check_scores (req, card, scores, &total, &passed))
        return -1;
    json_t *contact = NULL;
    int rc = contacts_read (intake, contact_id, &contact);
    if (rc < 0)
        return docstore_unavailable (req);
    const char *agent_id = rc == 0 ? s_str (contact, "agent_id") : NULL;
    if (!agent_id || !gl_id_valid (agent_id)) {
        json_decref (contact);
        return http_reply_error (req, 422, "unknown_contact", "no contact has this id",
                                 "contact_id");
    }
    char agent[GL_ID_LEN + 1];
    snprintf (agent, sizeof agent, "%s", agent_id);
    json_decref (contact);
    if (sample_id) {
        char key[128];
        snprintf (key, sizeof key, S_SAMPLE "%s", sample_id);
        json_t *sample = NULL;
        rc = docstore_read (intake, key, &sample, NULL);
        if (rc < 0)
            return docstore_unavailable (req);
        bool in = false;
        size_t i;
        json_t *c;
        json_array_foreach (json_object_get (sample, "contact_ids"), i, c)
            in = in || strcmp (json_string_value (c), contact_id) == 0;
        json_decref (sample);
        if (rc > 0 || !in)
            return http_reply_error (req, 422, "not_in_sample",
                                     rc > 0 ? "no sample has this id"
                                            : "this contact is not in the sample",
                                     "sample_id");
    }
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    int64_t now = gl_now_ms ();
    json_int_t percent = card->max ? (json_int_t) ((total * 100 + card->max / 2) / card->max) : 0;
    json_t *doc = json_pack (
        "{s:s, s:s, s:s?, s:s, s:s, s:s, s:O, s:i, s:i, s:I, s:b, s:s?, s:s, s:I, s:n, s:n, s:I}",
        "id", id, "contact_id", contact_id, "sample_id", sample_id, "agent_id", agent,
        "reviewer_id", http_caller (req)->user_id, "scorecard", card->code, "scores", scores,
        "total", total, "max", card->max, "percent", percent, "passed", passed, "comment",
        comment, "status", "completed", "created_at", (json_int_t) now, "acknowledged_at",
        "agent_comment", "version", (json_int_t) 1);
    gl_event_t *ev = gl_event_new ("qa.review_completed");
    docstore_tx_t *tx = docstore_tx_new (intake);
    if (!doc || !ev || !tx) {
        json_decref (doc);
        gl_event_destroy (&ev);
        docstore_tx_destroy (&tx);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    json_decref (ev->data);
    ev->data = json_pack ("{s:s, s:s, s:s, s:s?, s:s, s:s, s:O, s:i, s:i, s:I, s:b}",
                          "review_id", id, "agent_id", agent, "contact_id", contact_id,
                          "sample_id", sample_id, "reviewer_id", http_caller (req)->user_id,
                          "scorecard", card->code, "scores", scores, "total", total, "max",
                          card->max, "percent", percent, "passed", passed);
    gl_event_set_corr (ev, id);
    char key[128], akey[128];
    snprintf (key, sizeof key, S_REVIEW "%s", id);
    snprintf (akey, sizeof akey, QA_PREFIX "reviews:agent:%s", agent);
    docstore_tx_put (tx, key, doc, 0, 1);
    docstore_tx_zadd (tx, S_REVIEWS, now, id);
    docstore_tx_zadd (tx, akey, now, id);
    docstore_tx_event (tx, &ev, 0);
    if (docstore_tx_commit (&tx, NULL, 0) != 0) {
        json_decref (doc);
        return docstore_unavailable (req);
    }
    audit_record_req (intake, req, "create", "qa_review", id, "");
    return http_reply_json (req, 201, doc);
}

//  The review of the path, for the caller: an agent's own only (others answer 404).
static int
s_load_review (intake_t *intake, http_req_t *req, json_t **doc, int64_t *v)
{
    if (s_load (intake, req, S_REVIEW, "review", doc, v))
        return -1;
    const char *agent = s_str (*doc, "agent_id");
    if (!s_supervisor (req) && (!agent || strcmp (agent, http_caller (req)->user_id) != 0)) {
        json_decref (*doc);
        *doc = NULL;
        return http_reply_error (req, 404, "not_found", "no such review", NULL), -1;
    }
    return 0;
}

static int
s_review_get (intake_t *intake, http_req_t *req)
{
    json_t *doc = NULL;
    if (s_load_review (intake, req, &doc, NULL))
        return -1;
    return http_reply_json (req, 200, doc);
}

static int
s_review_ack (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "comment", NULL };
    const char *comment = NULL;
    if (http_body_only (req, fields)
        || http_body_str (req, "comment", false, QA_COMMENT_MAX, &comment))
        return -1;
    json_t *doc = NULL;
    int64_t v = 0;
    if (s_load_review (intake, req, &doc, &v))
        return -1;
    if (strcmp (s_str (doc, "agent_id"), http_caller (req)->user_id) != 0) {
        json_decref (doc);
        return http_reply_error (req, 403, "forbidden",
                                 "only the agent reviewed acknowledges its feedback", NULL);
    }
    if (json_is_integer (json_object_get (doc, "acknowledged_at"))) {
        json_object_set_new (doc, "already", json_true ());
        return http_reply_json (req, 200, doc);
    }
    int64_t now = gl_now_ms ();
    json_object_set_new (doc, "status", json_string ("acknowledged"));
    json_object_set_new (doc, "acknowledged_at", json_integer (now));
    json_object_set_new (doc, "agent_comment", comment && *comment ? json_string (comment)
                                                                   : json_null ());
    json_object_set_new (doc, "version", json_integer (docstore_int (doc, "version", 1) + 1));
    gl_event_t *ev = gl_event_new ("qa.feedback_acknowledged");
    docstore_tx_t *tx = docstore_tx_new (intake);
    if (!ev || !tx) {
        json_decref (doc);
        gl_event_destroy (&ev);
        docstore_tx_destroy (&tx);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    json_decref (ev->data);
    ev->data = json_pack ("{s:O?, s:O?, s:O?, s:I, s:b}", "review_id", json_object_get (doc, "id"),
                          "agent_id", json_object_get (doc, "agent_id"), "scorecard",
                          json_object_get (doc, "scorecard"), "acknowledged_at", (json_int_t) now,
                          "commented", comment && *comment);
    gl_event_set_corr (ev, s_str (doc, "id"));
    char key[128];
    snprintf (key, sizeof key, S_REVIEW "%s", s_str (doc, "id"));
    docstore_tx_put (tx, key, doc, v, v + 1);
    docstore_tx_event (tx, &ev, 0);
    int rc = docstore_tx_commit (&tx, NULL, 0);
    if (rc != 0) {
        json_decref (doc);
        if (rc == 2)
            return http_reply_error (req, 409, "conflict",
                                     "the review changed meanwhile; read it and retry", NULL);
        return docstore_unavailable (req);
    }
    audit_record_req (intake, req, "acknowledge", "qa_review", s_str (doc, "id"), "");
    json_object_set_new (doc, "already", json_false ());
    return http_reply_json (req, 200, doc);
}

//  The agent whose reviews a list or figures are about: the query's agent_id (supervisors), or
//  the caller itself (agents; another agent_id answers 403). *agent is "" for all (supervisors
//  without agent_id). -1 after answering.
static int
s_agent_scope (http_req_t *req, char agent[GL_ID_LEN + 1])
{
    const char *q = http_query (req, "agent_id");
    if (q && !gl_id_valid (q)) {
        http_reply_error (req, 400, "invalid_parameter", "not an id", "agent_id");
        return -1;
    }
    if (s_supervisor (req)) {
        snprintf (agent, GL_ID_LEN + 1, "%s", q ? q : "");
        return 0;
    }
    if (q && strcmp (q, http_caller (req)->user_id) != 0) {
        http_reply_error (req, 403, "forbidden", "an agent sees only its own reviews", "agent_id");
        return -1;
    }
    snprintf (agent, GL_ID_LEN + 1, "%s", http_caller (req)->user_id);
    return 0;
}

typedef struct {
    bool unacknowledged;
} s_rlist_t;

static bool
s_review_filter (intake_t *intake, void *arg, const json_t *doc, json_t **item)
{
    s_rlist_t *q = arg;
    return !q->unacknowledged || !json_is_integer (json_object_get (doc, "acknowledged_at"));
}

static int
s_reviews (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "agent_id", "unacknowledged", "limit", "cursor",
                                          NULL };
    http_page_t page;
    char agent[GL_ID_LEN + 1];
    s_rlist_t q = { false };
    if (http_query_only (req, params) || http_page (req, &page)
        || docstore_query_bool (req, "unacknowledged", &q.unacknowledged)
        || s_agent_scope (req, agent))
        return -1;
    char index[128];
    if (*agent)
        snprintf (index, sizeof index, QA_PREFIX "reviews:agent:%s", agent);
    else
        snprintf (index, sizeof index, "%s", S_REVIEWS);
    json_t *items = NULL;
    char next[HTTP_CURSOR_MAX + 1];
    int rc = docstore_page (intake, index, S_REVIEW, &page, s_review_filter, &q, &items, next);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'cursor' is not a cursor this API gave out", "cursor");
    if (rc != 0)
        return docstore_unavailable (req);
    return http_reply_page (req, items, *next ? next : NULL);
}

//  --------------------------------------------------------------------------------------------
//  Scores by criterion

static int
s_scores (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "agent_id", "from", "to", NULL };
    char agent[GL_ID_LEN + 1];
    int64_t from = 0, to = S_TIME_MAX;
    if (http_query_only (req, params) || s_agent_scope (req, agent)
        || docstore_query_ms (req, "from", &from) || docstore_query_ms (req, "to", &to))
        return -1;
    if (from >= to)
        return http_reply_error (req, 400, "invalid_parameter", "'from' must be before 'to'",
                                 "from");
    char index[128], lo[24], hi[24], count[24];
    if (*agent)
        snprintf (index, sizeof index, QA_PREFIX "reviews:agent:%s", agent);
    else
        snprintf (index, sizeof index, "%s", S_REVIEWS);
    snprintf (lo, sizeof lo, "%" PRId64, from);
    snprintf (hi, sizeof hi, "(%" PRId64, to);
    snprintf (count, sizeof count, "%d", QA_STATS_MAX);
    const char *argv[] = { "ZREVRANGEBYSCORE", index, hi, lo, "LIMIT", "0", count };
    redisReply *r = gl_redis_cmdargv (intake->redis, 7, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return docstore_unavailable (req);
    }
    size_t n = r->elements;
    char (*keys)[128] = calloc (n ? n : 1, sizeof *keys);
    const char **keyp = calloc (n ? n : 1, sizeof *keyp);
    json_t **docs = calloc (n ? n : 1, sizeof *docs);
    size_t m = 0;
    for (size_t i = 0; keys && keyp && docs && i < n; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && gl_id_valid (r->element[i]->str)) {
            snprintf (keys[m], sizeof keys[m], S_REVIEW "%s", r->element[i]->str);
            keyp[m] = keys[m];
            m++;
        }
    freeReplyObject (r);
    int rc = keys && keyp && docs ? docstore_read_many (intake, keyp, m, docs) : -1;
    //  Per scorecard: the number of reviews, and per criterion the sum of scores.
    const scorecard_set_t *set = qa_scorecards (intake);
    int64_t reviews[SCORECARD_CARDS_MAX] = { 0 }, passed[SCORECARD_CARDS_MAX] = { 0 };
    int64_t totals[SCORECARD_CARDS_MAX] = { 0 };
    int64_t sums[SCORECARD_CARDS_MAX][SCORECARD_CRITERIA_MAX] = { { 0 } };
    for (size_t i = 0; rc == 0 && i < m; i++) {
        if (!docs[i])
            continue;
        const char *code = s_str (docs[i], "scorecard");
        size_t c = 0;
        while (c < set->count && (!code || strcmp (set->cards[c].code, code) != 0))
            c++;
        if (c == set->count)
            continue;                   //  a scorecard no longer configured
        reviews[c]++;
        passed[c] += json_is_true (json_object_get (docs[i], "passed"));
        totals[c] += docstore_int (docs[i], "total", 0);
        const json_t *scores = json_object_get (docs[i], "scores");
        for (size_t k = 0; k < set->cards[c].count; k++)
            sums[c][k] += docstore_int (scores, set->cards[c].criteria[k].code, 0);
    }
    for (size_t i = 0; docs && i < m; i++)
        json_decref (docs[i]);
    free (docs);
    free (keyp);
    free (keys);
    if (rc != 0)
        return docstore_unavailable (req);
    json_t *cards = json_array ();
    for (size_t c = 0; c < set->count; c++) {
        if (!reviews[c])
            continue;
        const scorecard_t *card = &set->cards[c];
        json_t *criteria = json_array ();
        for (size_t k = 0; k < card->count; k++) {
            double average = (double) sums[c][k] / (double) reviews[c];
            json_array_append_new (
                criteria, json_pack ("{s:s, s:i, s:f, s:f}", "code", card->criteria[k].code,
                                     "max", card->criteria[k].max, "average", average,
                                     "percent", 100.0 * average / card->criteria[k].max));
        }
        double average = (double) totals[c] / (double) reviews[c];
        json_array_append_new (
            cards, json_pack ("{s:s, s:I, s:I, s:i, s:f, s:f, s:o}", "scorecard", card->code,
                              "reviews", (json_int_t) reviews[c], "passed",
                              (json_int_t) passed[c], "max", card->max, "average_total", average,
                              "percent", 100.0 * average / card->max, "criteria", criteria));
    }
    return http_reply_json (req, 200,
                            json_pack ("{s:s?, s:I, s:I, s:o}", "agent_id", *agent ? agent : NULL,
                                       "from", (json_int_t) from, "to", (json_int_t) to,
                                       "scorecards", cards));
}

void
api_qa_routes (intake_t *intake)
{
    http_t *http = intake->http;
    uint32_t both = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR;
    http_route (http, "GET", "/api/v1/qa/scorecards", GL_ROLE_STAFF, s_scorecards);
    http_route (http, "POST", "/api/v1/qa/samples", GL_ROLE_SUPERVISOR, s_sample_new);
    http_route (http, "GET", "/api/v1/qa/samples/{id}", GL_ROLE_SUPERVISOR, s_sample_get);
    http_route (http, "POST", "/api/v1/qa/reviews", GL_ROLE_SUPERVISOR, s_review_new);
    http_route (http, "GET", "/api/v1/qa/reviews", both, s_reviews);
    http_route (http, "GET", "/api/v1/qa/reviews/{id}", both, s_review_get);
    http_route (http, "POST", "/api/v1/qa/reviews/{id}/acknowledge", GL_ROLE_AGENT, s_review_ack);
    http_route (http, "GET", "/api/v1/qa/scores", both, s_scores);
}
