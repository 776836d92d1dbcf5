/*  callers — who is calling and what intake may say about their case (docs/api/callers.md).

    The case-status extract. The registration system is the truth about a case; intake holds a
    read-only copy of a few fields per case (registration, RSD, resettlement and assistance
    status, next appointment, family size, the principal applicant's date of birth, the contact
    details on file), each with the "as of" date of the extract it came from, imported from CSV
    (cases.c) or pushed case by case. A field is replaced only by data as new or newer than what
    is held, so an old file sent again changes nothing.

    Verification. Nothing about a case is shown before the caller has answered the configured
    questions (GL_INTAKE_VERIFY_QUESTIONS) in this contact. Success gives a grant bound to
    (agent, case, call or contact) until a due time (business clock); failures are counted and
    lock the case for a while; every attempt is audited.

    Contact-detail changes are change requests (pending -> sent -> applied | rejected), never
    overwrites: the registration system takes them (export), and says what became of them.

    Case numbers and phone numbers are personal data. Redis key names hold only a keyed hash of
    them (callers_case_ref, callers_phone_ref: BLAKE2b under the case key), the records hold them
    in clear, and no log line, event or audit entry carries them.

    Every change and its event are written by one Lua script, the event into contacts.h's
    outbox (callers_event_new / _deliver below), so neither happens without the other.

    Redis keys (all in the {intake} slot; <ref> is the keyed hash of a case number or phone):
      intake:{intake}:case:<ref>            hash    the extract of one case (field, field:as_of)
      intake:{intake}:case_key              string  the hashing key when GL_INTAKE_CASE_KEY is unset
      intake:{intake}:vfail:<ref>           hash    failed verifications (count, last, locked_until)
      intake:{intake}:grant:<user>:<ref>:<ctx>   string  due time (ms) of a verification grant
      intake:{intake}:ctx_grants:<ctx>      set     grant keys made in a call or contact
      intake:{intake}:ctx_case:<ctx>        string  the case ref a call or contact was verified for
      intake:{intake}:chg:<id>              hash    a change request
      intake:{intake}:chg_case:<ref>        zset    change request ids of a case, by time
      intake:{intake}:chg_pending           zset    pending change request ids, by time
      intake:{intake}:chg_sent              zset    sent change request ids, by time sent
      intake:{intake}:flag:<ref>            hash    the abusive flag of a case number or phone
      intake:{intake}:flag_id:<id>          string  the ref a flag id belongs to
      intake:{intake}:outbox                hash    events not yet published (contacts.h)
*/
#ifndef INTAKE_CALLERS_H
#define INTAKE_CALLERS_H
#include "intake.h"
#include "gl/gl_event.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _callers_t callers_t;

#define CALLERS_KEY_PREFIX      "intake:{intake}:"
#define CALLERS_REF_LEN         32          //  hex digits of a ref
#define CALLERS_CASE_NO_MAX     32          //  [A-Z0-9-], after normalising
#define CALLERS_PHONE_MAX       20          //  digits, after normalising (leading '+' kept)
#define CALLERS_PHONES_MAX      3           //  phone numbers on file per case
#define CALLERS_LANG_MAX        15          //  [a-z]{2,3} optionally -[A-Za-z0-9]{2,8}
#define CALLERS_CODE_MAX        32          //  location, service, centre, reason codes
#define CALLERS_STATUS_MAX      64          //  a status as the registration system writes it
#define CALLERS_QUESTIONS_MAX   4

//  The fields of the extract, in the order of the CSV columns documented in callers.md.
typedef enum {
    CALLERS_F_REGISTRATION = 0,     //  registration_status     text
    CALLERS_F_RSD,                  //  rsd_status              text
    CALLERS_F_RESETTLEMENT,         //  resettlement_status     text
    CALLERS_F_ASSISTANCE,           //  assistance_status       text
    CALLERS_F_NEXT_APPOINTMENT,     //  next_appointment        date
    CALLERS_F_FAMILY_SIZE,          //  family_size             1..99
    CALLERS_F_DOB,                  //  dob                     date (verification only)
    CALLERS_F_PHONES,               //  phones                  up to 3, ';'-separated in CSV
    CALLERS_F_LANGUAGE,             //  language                code
    CALLERS_F_LOCATION,             //  location                code
    CALLERS_F__COUNT
} callers_field_t;

//  Name of a field ("registration_status" ...).
const char *callers_field_name (callers_field_t field);

//  Read the configuration (GL_INTAKE_CASE_KEY, GL_INTAKE_VERIFY_*, GL_INTAKE_IMPORT_MAX_ROWS,
//  GL_ENDPOINT_SCHEDULER, GL_INTAKE_SCHEDULER_*), load or create the case key, register the
//  bus request "intake.delivery_details" on intake->rep. Needs intake->redis, intake->pub and
//  intake->rep. NULL with the reason (naming the setting) in err.
callers_t *callers_new (intake_t *intake, char *err, size_t errlen);

//  Free. NULLs *self_p.
void callers_destroy (callers_t **self_p);

//  Routes (api_callers.c, and api_booking.c through api_booking_routes).
void api_callers_routes (intake_t *intake);
void api_booking_routes (intake_t *intake);

//  --------------------------------------------------------------------------------------------
//  Normalising and checking what comes from outside. Each returns 0 with the normal form in out,
//  or -1 when the input is not acceptable (out then holds "").

//  A case number: 1..32 of [A-Za-z0-9-], upper-cased ("abc-12c34" -> "ABC-12C34").
int callers_case_no_norm (const char *in, char out[CALLERS_CASE_NO_MAX + 1]);
//  A phone number: an optional leading '+', then 6..20 digits; spaces, '-', '.', '(' and ')'
//  between digits are dropped.
int callers_phone_norm (const char *in, char out[CALLERS_PHONE_MAX + 2]);
//  A calendar date YYYY-MM-DD that exists (1900-01-01 .. 2199-12-31).
bool callers_date_valid (const char *s);
//  A language code ([a-z]{2,3}, optionally -[A-Za-z0-9]{2,8}).
bool callers_lang_valid (const char *s);
//  A code: 1..CALLERS_CODE_MAX of [A-Za-z0-9_.-].
bool callers_code_valid (const char *s);
//  A status text: 0..CALLERS_STATUS_MAX characters of UTF-8 without control characters.
bool callers_status_valid (const char *s);
//  Today's date on the business clock (UTC), YYYY-MM-DD.
void callers_today (char out[11]);

//  The keyed hash of kind and value, 32 hex digits: what key names hold instead of personal data.
void callers_hash (callers_t *self, const char *kind, const char *value,
                   char out[CALLERS_REF_LEN + 1]);
//  The keyed hash of "case:<case number>" or "phone:<phone>" (normal forms), 32 hex digits.
void callers_case_ref (callers_t *self, const char *case_no, char out[CALLERS_REF_LEN + 1]);
void callers_phone_ref (callers_t *self, const char *phone, char out[CALLERS_REF_LEN + 1]);

//  --------------------------------------------------------------------------------------------
//  The extract (cases.c)

//  One case's fields as given by an import row or a push: value NULL = not given. Phones are
//  normal forms, at most CALLERS_PHONES_MAX.
typedef struct {
    char case_no[CALLERS_CASE_NO_MAX + 1];
    char as_of[11];
    const char *values[CALLERS_F__COUNT];
    size_t phone_count;
    char phones[CALLERS_PHONES_MAX][CALLERS_PHONE_MAX + 2];
} callers_case_in_t;

//  Outcome of writing one case (the values are the write script's).
typedef enum {
    CALLERS_WRITE_STALE = 0,        //  something given was older than what is held, nothing newer
    CALLERS_WRITE_UNCHANGED = 1,    //  the same data again
    CALLERS_WRITE_UPDATED = 2,      //  at least one field took a new value or a later date
    CALLERS_WRITE_CREATED = 3,      //  a new case
} callers_write_t;

//  Check field's value (text as in the CSV; phones ';'-separated). NULL when fine, else the
//  reason (static text, quoting nothing).
const char *cases_value_check (callers_field_t field, const char *value);

//  Write one case (fields newer than or as new as what is held win, field by field). 0 with
//  *outcome, or -1 when Redis cannot be reached.
int cases_write (callers_t *self, const callers_case_in_t *in, const char *src,
                 callers_write_t *outcome);

//  Import a CSV text (the columns of callers.md, a header row first). Every row is checked
//  before anything is written. 0 with counts in *result ({rows, created, updated, unchanged,
//  stale}); 400
//  with the first problem in message ("row 3, column 2 (dob): not a date YYYY-MM-DD; 2 more
//  rows refused"); 503 when Redis failed (rows written before it stay: sending the file again
//  is safe).
int cases_import (callers_t *self, const char *csv, size_t len, json_t **result, char *message,
                  size_t msglen);

//  Read a case: a new object {field: {value, as_of}} with every field held but dob, plus
//  case_no. 0, 1 when there is no such case, -1 when Redis cannot be reached.
int cases_read (callers_t *self, const char *ref, json_t **out);

//  One field's value of a case (e.g. for verification): 0 with out filled ("" when the case
//  does not hold it), 1 when no such case, -1 on Redis failure.
int cases_field (callers_t *self, const char *ref, callers_field_t field, char *out,
                 size_t outlen);

//  --------------------------------------------------------------------------------------------
//  Verification grants (callers.c)

//  Is the case locked by failed verifications? 0 (not locked), 1 (locked; *until set), -1 on
//  Redis failure.
int callers_locked (callers_t *self, const char *ref, int64_t *until);

//  The grant of user for case ref in call or contact ctx: 1 when valid now (*until set), 0 when
//  none or expired, -1 on Redis failure.
int callers_grant_check (callers_t *self, const char *user_id, const char *ref, const char *ctx,
                         int64_t *until);

//  The end of a call or contact: every grant made in it is withdrawn (the calls concern calls
//  this when a call ends). 0 or -1 on Redis failure.
int callers_context_end (callers_t *self, const char *ctx);

//  The case a call or contact was verified for (the link delivery details use for a contact
//  id): 0 with ref, 1 when none, -1 on Redis failure.
int callers_context_case (callers_t *self, const char *ctx, char ref[CALLERS_REF_LEN + 1]);

//  Verify: answers (an object of question -> value) against the extract, counting failures.
//  Answers 200/400/404/409/423/503 on req itself. Used by api_callers.c.
int callers_verify (callers_t *self, http_req_t *req, const char *ref, const char *ctx,
                    const json_t *answers);

//  The questions the verification asks (GL_INTAKE_VERIFY_QUESTIONS), as the answers name them
//  ("dob", "family_size", "phone", "location"): up to max borrowed names into names. Returns
//  how many.
size_t callers_verify_questions (callers_t *self, const char **names, size_t max);

//  --------------------------------------------------------------------------------------------
//  Abusive flags (callers.c)

//  The flag on ref: 0 with a new object {id, reason, kind, flagged_at} in *out, 1 when none,
//  -1 on Redis failure.
int callers_flag_get (callers_t *self, const char *ref, json_t **out);

//  --------------------------------------------------------------------------------------------
//  Booking through scheduler (booking.c)


//  Send "scheduler.book" with body (borrowed) and key for the case ref, without waiting, and
//  answer req (deferred) when scheduler has answered or GL_INTAKE_SCHEDULER_TIMEOUT_MS has
//  passed: 201/202 with scheduler's body, its refusal (400, 404, 409, 422, 429), or 503
//  scheduler_unavailable; the outcome is audited ("book_result"). Nothing is written in intake:
//  a failure leaves nothing behind. Returns as a handler does (req answered or deferred).
int booking_book (callers_t *self, http_req_t *req, const char *key, const json_t *body,
                  const char *ref);

//  --------------------------------------------------------------------------------------------
//  The service and settings other files of this concern read.

intake_t *callers_intake (callers_t *self);

//  The bus request handler (delivery.c), registered by callers_new.
int delivery_register (callers_t *self, gl_rep_t *rep);
//  A requesting service's name (the audit trail's actor): 1..32 of [a-z0-9_-].
bool delivery_requester_valid (const char *s);
//  Audit a read of personal data by another service (actor requester, action "read", the
//  purpose lower-cased as detail). 0, or -1: then nothing may be read out.
int delivery_audit_read (intake_t *intake, const char *requester, const char *record_type,
                         const char *record_id, const char *purpose);

//  Events of this concern go through the outbox of contacts.h: the script that makes a change
//  also stores its event (CALLERS_OUTBOX_KEY, field = event id, value = entry), so the change
//  and its event happen together or not at all; then the event is published and the entry
//  cleared, or, if that fails, the outbox sweep publishes it later.
#define CALLERS_OUTBOX_KEY CALLERS_KEY_PREFIX "outbox"

typedef struct {
    gl_event_t *ev;
    char *entry;                        //  the outbox entry (JSON)
} callers_event_t;

//  A new event: type, corr (NULL or "" for none), data (stolen). 0, or -1 (out of memory).
int callers_event_new (callers_t *self, callers_event_t *e, const char *type, const char *corr,
                       json_t *data);

//  The script stored e's entry: publish it and clear the entry (or leave it to the sweep).
//  Frees what e holds.
void callers_event_deliver (callers_t *self, callers_event_t *e);

//  The change did not happen: free what e holds.
void callers_event_drop (callers_event_t *e);

#endif
