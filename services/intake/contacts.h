/*  contacts — contact records (one per call, walk-in, SMS or outbound call), their search
    indexes, and the outbox that turns a record write into an event that is never lost
    (docs/api/contacts.md; events in docs/events.md ("intake: contact, emergency and referral events")).

    State held by the actor (intake->contacts): the taxonomy, the key of the index hashes, the
    settings below, and the outbox sweep timer.

    Storing a record and publishing its event (the outbox):
      1. one Lua script writes the record, its index entries, the idempotency key (when the
         request carried one), its audit entry (when given) and an outbox entry — the complete
         event, keyed by its event id, in intake:{intake}:outbox — all or nothing;
      2. at the end of the loop's pass, the events of all the requests handled in it are
         appended to intake's log in one gl_pub_send_batch and published (gl_outbox_defer,
         gl_outbox_flush);
      3. their outbox entries are deleted with one HDEL.
    A crash (or a Redis outage, or a fenced publisher) between 1 and 3 leaves the entry; the
    sweep (at start, then every CONTACTS_SWEEP_MS) looks for its event id in the log from the
    position recorded in the entry, appends the same event (same id, time and payload) if it is
    not there, and deletes the entry. raise.c (emergencies, referrals) uses the same path.

    Keys (all in the {intake} slot; docs/api/contacts.md, "Storage"):
      intake:{intake}:contact:<id>             hash  the record
      intake:{intake}:contacts:time            zset  ids by creation time
      intake:{intake}:contacts:case:<h>        zset  ids by time, per case number
      intake:{intake}:contacts:ind:<h>         zset  ids by time, per individual number
      intake:{intake}:contacts:phone:<h>       zset  ids by time, per phone number
      intake:{intake}:contacts:cat:<code>      zset  ids by time, per category and subcategory
      intake:{intake}:outbox                   hash  event id -> pending event (JSON)
      intake:{intake}:idemkey:<scope>:<h>      string "<record id> <body hash>", with a TTL
      intake:{intake}:contacts:index_key       string the index key when GL_INTAKE_INDEX_KEY is unset
      intake:{intake}:contacts:index_key_id    string fingerprint of the index key in use
    <h> is a keyed hash (BLAKE2b-128 under the index key) of the normalised identifier, so no
    case or phone number ever appears in a key name.
*/
#ifndef INTAKE_CONTACTS_H
#define INTAKE_CONTACTS_H
#include "audit.h"
#include "http.h"
#include "taxonomy.h"
#include "gl/gl_event.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _contacts_t contacts_t;

#define CONTACTS_PREFIX         "intake:{intake}:"
#define CONTACTS_HASH_HEX       32          //  hex digits of an index hash
#define CONTACTS_NOTES_MAX      4000        //  characters of free-text notes
#define CONTACTS_NUMBER_MAX     32          //  characters of a case or individual number as given
#define CONTACTS_PHONE_MAX      32          //  characters of a phone number as given
#define CONTACTS_PHONE_DIGITS   15          //  E.164's maximum
#define CONTACTS_IDEM_KEY_MAX   255         //  characters of an Idempotency-Key header
#define CONTACTS_SWEEP_MS       2000        //  outbox sweep period

//  Read the configuration (GL_INTAKE_TAXONOMY, GL_INTAKE_INDEX_KEY,
//  GL_INTAKE_PHONE_COUNTRY_CODE, GL_INTAKE_REPEAT_WINDOW_DAYS, GL_INTAKE_IDEMPOTENCY_TTL_S),
//  load the taxonomy, load or create the index key, and start the outbox sweep on
//  intake->base (its first run is as soon as the loop runs). Needs intake->redis,
//  intake->pub and intake->base. NULL with the reason in err (a taxonomy file's error names
//  the file and line).
contacts_t *contacts_new (intake_t *intake, char *err, size_t errlen);

//  Stop the sweep, free. NULLs *self_p.
void contacts_destroy (contacts_t **self_p);

//  The taxonomy (borrowed; lives as long as intake->contacts).
const taxonomy_t *contacts_taxonomy (intake_t *intake);

//  --------------------------------------------------------------------------------------------
//  Identifiers

//  Normalise a phone number (docs/api/contacts.md, "Phone numbers"): digits only, "+" or "00"
//  marks an international number, a national number gets the country code of
//  GL_INTAKE_PHONE_COUNTRY_CODE (country may be NULL or "") after dropping one trunk '0'.
//  out gets CONTACTS_PHONE_DIGITS + 1 bytes at most. 0, or -1 when in is not a phone number.
int contacts_phone_normalise (const char *in, const char *country, char *out, size_t outlen);

//  Normalise a case or individual number: ASCII letters upper-cased; spaces, '-', '/' and '.'
//  dropped; anything else but letters and digits refused. 0, or -1.
int contacts_number_normalise (const char *in, char *out, size_t outlen);

//  GL_INTAKE_PHONE_COUNTRY_CODE ("" when unset), and the repeat window in ms.
const char *contacts_country (intake_t *intake);
int64_t contacts_repeat_window_ms (intake_t *intake);

//  The keyed hash of (kind, value) as CONTACTS_HASH_HEX hex digits, for index key names.
void contacts_index_hash (intake_t *intake, const char *kind, const char *value,
                          char out[CONTACTS_HASH_HEX + 1]);

//  --------------------------------------------------------------------------------------------
//  Records

//  Read contact id. 0 with *out (a new JSON object: the API's form of the record, every field
//  present, null when not stored, plus the internal fields "_topcats", "_case_h", "_ind_h",
//  "_phone_h"), 1 when there is no such contact (or id is malformed), -1 when Redis cannot be
//  reached.
int contacts_read (intake_t *intake, const char *id, json_t **out);

//  Read several contacts in one round trip (pipelined). out[i] is a new object, or NULL when
//  ids[i] does not exist. 0, or -1 when Redis cannot be reached (every out[i] NULL).
int contacts_read_many (intake_t *intake, const char *const *ids, size_t n, json_t **out);

//  A new object holding record without its internal ("_"-prefixed) fields: what the API shows.
json_t *contacts_public (const json_t *record);

//  The hash fields to write for rec (contacts_read's form, internal fields included): *set
//  gets a new array of name, value strings that differ from old (every stored field when old
//  is NULL), *del a new array of the names old has and rec no longer has. 0, or -1.
int contacts_record_fields (const json_t *rec, const json_t *old, json_t **set, json_t **del);

//  True when who may see record (a contact as contacts_read gives it): every staff member for
//  an ordinary contact; for a sensitive one its author, supervisors and protection staff.
bool contacts_visible (const json_t *record, const http_caller_t *who);

//  --------------------------------------------------------------------------------------------
//  Writing a record with its event (the outbox)

#define CONTACTS_INDEX_MAX 24

typedef struct {
    const char *record_key;             //  full key of the new record's hash
    const char *id;                     //  the record's id (member of the index zsets)
    int64_t created_at;                 //  score in the index zsets
    const char *idem_key;               //  full idempotency key, or NULL
    const char *idem_value;             //  "<id> <body hash>" stored under idem_key
    size_t nindex;                      //  index zsets that get id at created_at
    const char *index[CONTACTS_INDEX_MAX];
    bool detect_repeat;                 //  contacts only: the first npersons of index are the
    size_t npersons;                    //  person indexes searched for a repeat, and topcats
    const char *topcats;                //  (space-separated category codes) must intersect
    size_t nfields;                     //  hash fields of the record: name, value pairs
    const char **fields;                //  2 * nfields strings
    const audit_entry_t *audit;         //  appended in the same step (audit_entry_req), or NULL
} contacts_write_t;

//  Write w's record, indexes and idempotency key together with ev's outbox entry (and w->audit's
//  audit entry, when set), in one atomic step, then have ev published (flags: GL_PUB_CRITICAL
//  or 0) and its entry cleared at the end of this pass of the loop (contacts_outbox_deliver).
//  With detect_repeat, looks for the latest earlier contact of the same person (any of the
//  person indexes) with a common category within the repeat window, stores "repeat" and
//  "repeat_of" in the record, and adds "repeat" (bool) and "repeat_of" (id or null) at the end
//  of ev->data (*repeat_of gets the id or ""; it may be NULL otherwise).
//  Returns 0 when written (published or left to the sweep: the record and its event are safe
//  either way); 1 when idem_key was already taken: *stored (GL_ID_LEN + 1 + CONTACTS_HASH_HEX
//  + 1 bytes) gets its "<id> <body hash>" and nothing is written; -1 when Redis cannot be
//  reached (nothing written, or the outcome is unknown: answer 503 and let the client retry
//  with its idempotency key).
int contacts_write_new (intake_t *intake, const contacts_write_t *w, gl_event_t *ev, int flags,
                        char repeat_of[GL_ID_LEN + 1], char *stored, size_t stored_len);

//  The same write over intake's asynchronous Redis connection (aredis.h): the script is sent
//  now and done (intake, rc, repeat_of, stored, arg) is called later from the loop, exactly
//  once, with what contacts_write_new would have returned (repeat_of and stored borrowed for
//  the call). The event becomes ours (*ev_p is NULLed; repeat fields are added to it before it
//  is delivered). The strings of w are copied. Returns 0 when sent; -1 when the asynchronous
//  connection is not ready (nothing sent, *ev_p untouched: call contacts_write_new), -2 when
//  too many writes are in flight (answer 503).
typedef void (contacts_done_fn) (intake_t *intake, int rc, const char *repeat_of,
                                 const char *stored, void *arg);
int contacts_write_new_async (intake_t *intake, const contacts_write_t *w, gl_event_t **ev_p,
                              int flags, contacts_done_fn *done, void *arg);

//  Update a record whose "version" is still expected_version: remove id from the zsets in
//  remove, add it (at score) to those in add, set and delete hash fields, and store ev's
//  outbox entry (ev may be NULL: no event), in one atomic step; then publish ev.
//  0 done, 1 no such record, 2 the version moved on (a concurrent update), -1 Redis failed.
typedef struct {
    const char *record_key;
    const char *id;
    const char *expected_version;
    int64_t score;
    size_t nremove;
    const char *remove[CONTACTS_INDEX_MAX];
    size_t nadd;
    const char *add[CONTACTS_INDEX_MAX];
    size_t nset;                        //  pairs in set
    const char **set;
    size_t ndel;
    const char **del;
} contacts_update_t;
int contacts_write_update (intake_t *intake, const contacts_update_t *u, gl_event_t *ev);

//  Have ev, whose outbox entry a script has just written (contacts_outbox_entry), published and
//  its entry cleared once the requests of this pass of the loop are handled: the events of all
//  of them go out in one append (gl_outbox_defer; the caller keeps ev). 0 when queued; -1 when
//  left to the sweep.
int contacts_outbox_deliver (intake_t *intake, gl_event_t *ev, int flags);

//  The outbox entry of ev: JSON {type, id, ts, corr, flags, src, seq, data}. A new string
//  (caller frees), or NULL when out of memory.
char *contacts_outbox_entry (intake_t *intake, const gl_event_t *ev, int flags);

//  Run the sweep now (it also runs by itself). Returns the number of entries delivered, or -1
//  when Redis cannot be reached.
int contacts_outbox_sweep (intake_t *intake);

//  --------------------------------------------------------------------------------------------
//  Idempotency-Key (contacts, emergencies, referrals)

//  Read the request's Idempotency-Key header. 0 with *key_out (full Redis key, scope and the
//  caller's user id folded into the hash) and value_hash (the body's hash) filled, or *has =
//  false when there is none; -1 after answering 400 for a malformed header.
int contacts_idempotency (intake_t *intake, http_req_t *req, const char *scope, bool *has,
                          char *key_out, size_t key_len, char body_hash[CONTACTS_HASH_HEX + 1]);

//  Routes (api_contacts.c, raise.c).
void api_contacts_routes (intake_t *intake);
void api_raise_routes (intake_t *intake);

#endif
