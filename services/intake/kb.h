/*  kb — the knowledge base: articles on services and assistance, one per language, with their
    full version history (author, time, note, and a diff between any two versions), validity
    dates (an article past its end is flagged expired, and kb.article_expired is published
    once), tags, and full-text search in any language (kbtext.h: English, French and Arabic
    folded). Briefings: each published change becomes a briefing that agents read and
    acknowledge; supervisors see who has not (docs/api/kb.md; events in
    docs/events.md).

    State held by the actor (intake->kb): the expiry sweep timer. Records are docstore
    documents (docstore.h):
      intake:{intake}:kb:article:<id>           hash {doc, v}  the article as it is now
      intake:{intake}:kb:version:<id>:<n>       hash {doc, v}  version n, never changed
      intake:{intake}:kb:articles               zset  article ids by creation time
      intake:{intake}:kb:word:<word>            set   ids of the articles holding the word
      intake:{intake}:kb:lang:<language>        set   ids of the articles in the language
      intake:{intake}:kb:expiry                 zset  article ids by the end of validity, until
                                                      their kb.article_expired is published
      intake:{intake}:kb:briefing:<id>          hash {doc, v}  a briefing
      intake:{intake}:kb:briefings              zset  briefing ids by time
      intake:{intake}:kb:briefing_acks:<id>     hash  user id -> acknowledged at (ms)

    Settings: GL_INTAKE_KB_SWEEP_MS (1000): how often the expiry sweep runs.
*/
#ifndef INTAKE_KB_H
#define INTAKE_KB_H
#include "http.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _kb_t kb_t;

#define KB_PREFIX           "intake:{intake}:kb:"
#define KB_TITLE_MAX        200         //  characters
#define KB_BODY_MAX         20000       //  characters
#define KB_NOTE_MAX         500         //  characters of a change note
#define KB_TAGS_MAX         16
#define KB_TAG_MAX          32          //  characters of a tag code
#define KB_WORDS_MAX        4000        //  distinct words indexed per article
#define KB_QUERY_WORDS_MAX  8
#define KB_SEARCH_MAX       200         //  candidates ranked for one search (memory bound)
#define KB_AUDIENCE_MAX     5000        //  users looked at for a briefing's audience

//  Read the settings and start the expiry sweep on intake->base. NULL with the reason in err.
kb_t *kb_new (intake_t *intake, char *err, size_t errlen);

//  Stop the sweep, free. NULLs *self_p.
void kb_destroy (kb_t **self_p);

//  Publish kb.article_expired for every article whose validity ended by now and has not had
//  it. Returns the number published, or -1 when Redis failed.
int kb_sweep (intake_t *intake);

//  The distinct normalised words of an article (title, body and tags) as a new JSON object
//  used as a set (word -> true), at most KB_WORDS_MAX.
json_t *kb_words (const json_t *article);

//  The words of a search query, at most KB_QUERY_WORDS_MAX, as a new array: for an Arabic word
//  with the article, only its form without it (which every form is indexed under).
json_t *kb_query_words (const char *q);

#endif
