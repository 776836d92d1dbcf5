/*  docstore — records kept as JSON documents, written together with their index entries and the
    outbox entries of their events in one atomic step (complaints, the knowledge base, QA).

    A document lives in a hash {doc: JSON text, v: version}. A transaction collects writes —
    documents (each with the version it expects to replace: 0 for "must not exist yet"), zset,
    set and hash changes, an idempotency claim, and events — and commits them with one Lua
    script: the expectations and the claim are checked first, and nothing is written unless
    all hold. The events' outbox entries are written by the same script (contacts.h, "the
    outbox"), then published and cleared; a crash in between leaves them to the outbox sweep.

    Keys are full names in the {intake} slot (CONTACTS_PREFIX ...).
*/
#ifndef INTAKE_DOCSTORE_H
#define INTAKE_DOCSTORE_H
#include "http.h"
#include "gl/gl_event.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _docstore_tx_t docstore_tx_t;

#define DOCSTORE_EVENTS_MAX 8           //  events in one transaction
#define DOCSTORE_SCAN_MAX   1000        //  index entries looked at for one page
#define DOCSTORE_BATCH      100         //  index entries read per round trip

//  Read the document at key. 0 with *doc (caller's) and *version, 1 when there is none, -1 when
//  Redis cannot be reached or the stored text is not a JSON object (logged).
int docstore_read (intake_t *intake, const char *key, json_t **doc, int64_t *version);

//  Read n documents in one round trip. docs[i] is a new object or NULL when missing. 0, or -1
//  (every docs[i] NULL).
int docstore_read_many (intake_t *intake, const char *const *keys, size_t n, json_t **docs);

//  New, empty transaction. NULL when out of memory.
docstore_tx_t *docstore_tx_new (intake_t *intake);

//  Free without committing. NULLs *self_p.
void docstore_tx_destroy (docstore_tx_t **self_p);

//  Write doc (borrowed; serialised now) at key as version new_version, provided the stored
//  version is expect (0: the key must not exist).
void docstore_tx_put (docstore_tx_t *self, const char *key, const json_t *doc, int64_t expect,
                      int64_t new_version);

//  Index changes.
void docstore_tx_zadd (docstore_tx_t *self, const char *key, int64_t score, const char *member);
void docstore_tx_zrem (docstore_tx_t *self, const char *key, const char *member);
void docstore_tx_sadd (docstore_tx_t *self, const char *key, const char *member);
void docstore_tx_srem (docstore_tx_t *self, const char *key, const char *member);
void docstore_tx_hset (docstore_tx_t *self, const char *key, const char *field,
                       const char *value);
//  Set field only if the hash does not have it yet; when it has, the commit answers 3 and
//  writes nothing (a second acknowledgement).
void docstore_tx_hsetnx (docstore_tx_t *self, const char *key, const char *field,
                         const char *value);

//  Claim key (an idempotency key) with value for ttl_ms: when key exists the commit writes
//  nothing and answers 1 with its value in stored.
void docstore_tx_claim (docstore_tx_t *self, const char *key, const char *value, int64_t ttl_ms);

//  Add an event (taken): its outbox entry is written by the commit, then it is published.
void docstore_tx_event (docstore_tx_t *self, gl_event_t **ev_p, int flags);

//  Commit and free (*self_p NULLed). 0 written (events published or left to the sweep); 1 the
//  claim was taken (stored gets its value, stored_len bytes at most; may be NULL otherwise);
//  2 a document's version was not the expected one (a concurrent change, or it exists / does
//  not exist); 3 an hsetnx field existed; -1 Redis failed or out of memory (nothing written, or
//  the outcome is unknown).
int docstore_tx_commit (docstore_tx_t **self_p, char *stored, size_t stored_len);

//  --------------------------------------------------------------------------------------------
//  Pages over an index zset, newest first

//  Decide on one document of a page: return true to include it; *item (caller's) is what the
//  page shows (NULL: the document itself, copied). -1 is not possible: filters cannot fail.
typedef bool (docstore_filter_fn) (intake_t *intake, void *arg, const json_t *doc,
                                   json_t **item);

//  Walk index (a zset of ids scored by time) newest first from page's cursor, reading the
//  document at "<prefix><id>" for each, and collect up to page->limit items that filter
//  accepts, looking at DOCSTORE_SCAN_MAX entries at most. *items gets a new array,
//  next_cursor (HTTP_CURSOR_MAX + 1 bytes) the cursor of the next page or "" at the end.
//  0; 1 when the page's cursor is not ours; -1 when Redis failed.
int docstore_page (intake_t *intake, const char *index, const char *prefix,
                   const http_page_t *page, docstore_filter_fn *filter, void *arg,
                   json_t **items, char *next_cursor);

//  --------------------------------------------------------------------------------------------
//  Small helpers shared by the concerns

//  The string, integer or bool field of doc; def when absent or of another type.
const char *docstore_str (const json_t *doc, const char *name);
int64_t docstore_int (const json_t *doc, const char *name, int64_t def);

//  True when s is a code: 1..max of [a-z0-9_.-], starting with a letter or digit.
bool docstore_code_valid (const char *s, size_t max);

//  A time in unix ms from the query (digits only, at most 15). 0 (absent: *out untouched), or
//  -1 after answering 400 naming the parameter.
int docstore_query_ms (http_req_t *req, const char *name, int64_t *out);

//  A bool from the query ("true" or "false"). 0 (absent: *out untouched), or -1 after answering.
int docstore_query_bool (http_req_t *req, const char *name, bool *out);

//  Answer 503 "storage unreachable; retry".
int docstore_unavailable (http_req_t *req);

#endif
