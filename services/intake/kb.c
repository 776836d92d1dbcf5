/*  kb — the expiry sweep and the words of articles and queries (kb.h). The endpoints are in
    api_kb.c. */
#include "kb.h"
#include "docstore.h"
#include "intake.h"
#include "kbtext.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_SWEEP_BATCH 50

struct _kb_t {
    intake_t *intake;
    struct event *timer;
    int64_t sweep_ms;
};

static void
s_on_sweep (evutil_socket_t fd, short what, void *arg)
{
    kb_t *self = arg;
    kb_sweep (self->intake);
    struct timeval tv = { (time_t) (self->sweep_ms / 1000),
                          (suseconds_t) ((self->sweep_ms % 1000) * 1000) };
    evtimer_add (self->timer, &tv);
}

kb_t *
kb_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake);
    kb_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    self->sweep_ms = gl_config_int (intake->config, "GL_INTAKE_KB_SWEEP_MS", 1000, 100, 3600000);
    if (gl_config_error (intake->config)) {
        snprintf (err, errlen, "%s", gl_config_error (intake->config));
        kb_destroy (&self);
        return NULL;
    }
    if (intake->base) {
        self->timer = evtimer_new (intake->base, s_on_sweep, self);
        if (!self->timer) {
            snprintf (err, errlen, "cannot set up the knowledge base's expiry sweep");
            kb_destroy (&self);
            return NULL;
        }
        event_active (self->timer, EV_TIMEOUT, 0);
    }
    return self;
}

void
kb_destroy (kb_t **self_p)
{
    kb_t *self = *self_p;
    if (!self)
        return;
    if (self->timer)
        event_free (self->timer);
    free (self);
    *self_p = NULL;
}

//  Mark one article expired and publish kb.article_expired. 1 published, 0 nothing to do
//  (gone, moved on, or marked by another replica), -1 Redis failed.
static int
s_expire (intake_t *intake, const char *id, int64_t now)
{
    char key[128];
    snprintf (key, sizeof key, KB_PREFIX "article:%s", id);
    json_t *doc = NULL;
    int64_t v = 0;
    int rc = docstore_read (intake, key, &doc, &v);
    if (rc < 0)
        return -1;
    docstore_tx_t *tx = docstore_tx_new (intake);
    if (!tx) {
        json_decref (doc);
        return -1;
    }
    int64_t valid_to = doc ? docstore_int (doc, "valid_to", -1) : -1;
    if (!doc || valid_to < 0 || json_is_true (json_object_get (doc, "expiry_notified"))) {
        //  Nothing to announce: drop the entry.
        docstore_tx_zrem (tx, KB_PREFIX "expiry", id);
        json_decref (doc);
        return docstore_tx_commit (&tx, NULL, 0) < 0 ? -1 : 0;
    }
    if (valid_to > now) {
        //  Its validity was extended: the entry waits for the new end.
        docstore_tx_zadd (tx, KB_PREFIX "expiry", valid_to, id);
        json_decref (doc);
        return docstore_tx_commit (&tx, NULL, 0) < 0 ? -1 : 0;
    }
    json_object_set_new (doc, "expiry_notified", json_true ());
    gl_event_t *ev = gl_event_new ("kb.article_expired");
    if (ev) {
        json_decref (ev->data);
        ev->data = json_pack ("{s:s, s:I, s:O?, s:I}", "article_id", id, "version",
                              (json_int_t) docstore_int (doc, "version", 0), "language",
                              json_object_get (doc, "language"), "valid_to",
                              (json_int_t) valid_to);
        gl_event_set_corr (ev, id);
    }
    docstore_tx_put (tx, key, doc, v, v + 1);
    docstore_tx_zrem (tx, KB_PREFIX "expiry", id);
    docstore_tx_event (tx, &ev, 0);
    json_decref (doc);
    rc = docstore_tx_commit (&tx, NULL, 0);
    return rc == 0 ? 1 : rc == 2 ? 0 : -1;
}

int
kb_sweep (intake_t *intake)
{
    int64_t now = gl_now_ms ();
    char max[24];
    snprintf (max, sizeof max, "%" PRId64, now);
    redisReply *r = gl_redis_cmd (intake->redis, "ZRANGEBYSCORE %s -inf %s LIMIT 0 %d",
                                  KB_PREFIX "expiry", max, S_SWEEP_BATCH);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject (r);
        return -1;
    }
    int published = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING || !gl_id_valid (m->str))
            continue;
        int rc = s_expire (intake, m->str, now);
        if (rc < 0) {
            published = -1;
            break;
        }
        published += rc;
    }
    freeReplyObject (r);
    if (published > 0)
        gl_info ("kb: %d article(s) expired", published);
    return published;
}

//  --------------------------------------------------------------------------------------------
//  Words

static int
s_add_word (void *arg, const char *word)
{
    json_t *set = arg;
    if (json_object_size (set) >= KB_WORDS_MAX)
        return -1;
    json_object_set_new (set, word, json_true ());
    return 0;
}

json_t *
kb_words (const json_t *article)
{
    json_t *set = json_object ();
    if (!set)
        return NULL;
    static const char *const fields[] = { "title", "body" };
    for (size_t f = 0; f < 2; f++) {
        const char *s = docstore_str (article, fields[f]);
        if (s)
            kbtext_words (s, strlen (s), s_add_word, set);
    }
    size_t i;
    json_t *tag;
    json_array_foreach (json_object_get (article, "tags"), i, tag)
        if (json_is_string (tag))
            kbtext_words (json_string_value (tag), json_string_length (tag), s_add_word, set);
    return set;
}

static int
s_add_query_word (void *arg, const char *word)
{
    json_t *list = arg;
    size_t n = json_array_size (list);
    //  ال + word, then word: keep only the form without the article.
    const char *prev = n ? json_string_value (json_array_get (list, n - 1)) : NULL;
    if (prev && strlen (prev) == strlen (word) + 4 && memcmp (prev, "\xD8\xA7\xD9\x84", 4) == 0
        && strcmp (prev + 4, word) == 0) {
        json_array_set_new (list, n - 1, json_string (word));
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp (json_string_value (json_array_get (list, i)), word) == 0)
            return 0;
    if (n >= KB_QUERY_WORDS_MAX)
        return -1;
    json_array_append_new (list, json_string (word));
    return 0;
}

json_t *
kb_query_words (const char *q)
{
    json_t *list = json_array ();
    if (list)
        kbtext_words (q, strlen (q), s_add_query_word, list);
    return list;
}
