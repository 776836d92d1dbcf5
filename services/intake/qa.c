/*  qa — the scorecards and the drawing of samples (qa.h). The endpoints are in api_qa.c. */
#include "qa.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH 200

struct _qa_t {
    scorecard_set_t cards;
};

qa_t *
qa_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake);
    qa_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    const char *path = gl_config_str (intake->config, "GL_INTAKE_QA_SCORECARDS", NULL);
    int rc = path && *path
                 ? scorecard_load (path, &self->cards, err, errlen)
                 : scorecard_parse (scorecard_default, strlen (scorecard_default),
                                    "built-in scorecards", &self->cards, err, errlen);
    if (rc != 0) {
        free (self);
        return NULL;
    }
    return self;
}

void
qa_destroy (qa_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

const scorecard_set_t *
qa_scorecards (intake_t *intake)
{
    return &intake->qa->cards;
}

json_t *
qa_scorecard_json (const scorecard_t *card)
{
    json_t *criteria = json_array ();
    for (size_t i = 0; i < card->count; i++)
        json_array_append_new (criteria,
                               json_pack ("{s:s, s:i, s:b}", "code", card->criteria[i].code,
                                          "max", card->criteria[i].max, "critical",
                                          card->criteria[i].critical));
    return json_pack ("{s:s, s:i, s:o}", "code", card->code, "max", card->max, "criteria",
                      criteria);
}

int
qa_draw (intake_t *intake, const char *agent_id, int64_t from, int64_t to, size_t size,
         json_t **ids, int64_t *population)
{
    assert (intake && agent_id && ids && population);
    *ids = NULL;
    *population = 0;
    json_t *found = json_array ();
    if (!found)
        return -1;
    char lo[24], hi[24];
    snprintf (lo, sizeof lo, "%" PRId64, from);
    snprintf (hi, sizeof hi, "(%" PRId64, to);
    size_t offset = 0, scanned = 0;
    int rc = 0;
    while (rc == 0 && scanned < QA_SCAN_MAX) {
        char off[24], count[24];
        snprintf (off, sizeof off, "%zu", offset);
        snprintf (count, sizeof count, "%d", S_BATCH);
        const char *argv[] = { "ZREVRANGEBYSCORE", CONTACTS_PREFIX "contacts:time", hi, lo,
                               "LIMIT", off, count };
        redisReply *r = gl_redis_cmdargv (intake->redis, 7, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            rc = -1;
            break;
        }
        size_t got = r->elements;
        offset += got;
        for (size_t i = 0; i < got; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING && gl_id_valid (r->element[i]->str))
                gl_redis_append (intake->redis, "HGET " CONTACTS_PREFIX "contact:%s agent_id",
                                 r->element[i]->str);
        for (size_t i = 0; i < got; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING || !gl_id_valid (r->element[i]->str))
                continue;
            redisReply *a = gl_redis_reply (intake->redis);
            if (!a) {
                rc = -1;
                break;
            }
            scanned++;
            if (a->type == REDIS_REPLY_STRING && strcmp (a->str, agent_id) == 0)
                json_array_append_new (found, json_string (r->element[i]->str));
            freeReplyObject (a);
        }
        freeReplyObject (r);
        if (got < S_BATCH)
            break;
    }
    if (rc != 0) {
        json_decref (found);
        return -1;
    }
    //  A partial Fisher-Yates shuffle picks size of them, uniformly; then newest first again.
    size_t n = json_array_size (found);
    size_t k = size < n ? size : n;
    size_t *order = calloc (n ? n : 1, sizeof *order);
    if (!order) {
        json_decref (found);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t) randombytes_uniform ((uint32_t) (n - i));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && order[j - 1] > order[j]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    json_t *out = json_array ();
    for (size_t i = 0; out && i < k; i++)
        json_array_append (out, json_array_get (found, order[i]));
    free (order);
    json_decref (found);
    *ids = out;
    *population = (int64_t) n;
    return out ? 0 : -1;
}
