/*  scheduler — reception centres, services, slots, appointments, reminders and outbound call
    lists (campaigns). One header for the service's concerns; each has its own source file:
      config.c        the configuration file (centres, services, reminders, callbacks)
      slots.c         free slots over a date range: the configuration minus the bookings
      appointments.c  book, move, cancel, attended, no-show; the slip text
      reminders.c     reminder due times and the timer that sends them
      campaigns.c     outbound call lists: targets, next call, outcomes, export, callbacks
      requests.c      the bus handlers (scheduler.*) and the forwarded-request envelope
      store.c         the one Lua script every write goes through (guards, writes, outbox, reply)
      retention.c     personal data removed after the retention period
    Keys: "scheduler:{scheduler}:..." (docs/operations.md lists them).
*/
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl/gl_rep.h"
#include "gl/gl_service.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_PREFIX        "scheduler:{scheduler}:"
#define SCHED_CODE_MAX      32          //  centre, service, language codes
#define SCHED_LANG_MAX      16          //  languages listed per centre or service
#define SCHED_CENTRES_MAX   64
#define SCHED_SERVICES_MAX  64
#define SCHED_HOLIDAYS_MAX  512
#define SCHED_SPECIALS_MAX  64
#define SCHED_REMINDERS_MAX 8
#define SCHED_NAMES_MAX     8           //  localised names (name.fr, name.ar ...)
#define SCHED_TEXT_MAX      256
#define SCHED_DAY_MS        INT64_C(86400000)
#define SCHED_RANGE_DAYS    92          //  the longest free-slot query

typedef struct _scheduler_t scheduler_t;

//  ---------------------------------------------------------------------------------------------
//  Configuration (config.c)

typedef struct {
    int open;                           //  minutes from local midnight
    int close;                          //  open == close: closed
} sched_hours_t;

typedef struct {
    int32_t from_day, to_day;           //  local dates, days since 1970-01-01, inclusive
    sched_hours_t hours;                //  replaces the usual hours on open days
    bool closed;                        //  the centre is closed for the whole period
    char code[SCHED_CODE_MAX + 1];      //  "ramadan"
} sched_special_t;

typedef struct {
    char lang[8];
    char text[SCHED_TEXT_MAX];
} sched_name_t;

typedef struct {
    char code[SCHED_CODE_MAX + 1];
    char name[SCHED_TEXT_MAX];
    char address[SCHED_TEXT_MAX];
    sched_name_t names[SCHED_NAMES_MAX];        //  localised names
    size_t name_count;
    sched_name_t addresses[SCHED_NAMES_MAX];    //  localised addresses
    size_t address_count;
    int tz_offset_min;                  //  local = UTC + offset
    uint8_t weekend;                    //  bit d set: weekday d (0 = Sunday) is closed
    sched_hours_t hours[7];             //  per weekday
    int32_t holidays[SCHED_HOLIDAYS_MAX];   //  sorted local dates
    size_t holiday_count;
    sched_special_t specials[SCHED_SPECIALS_MAX];
    size_t special_count;
    char languages[SCHED_LANG_MAX][8];  //  spoken, or interpreters available
    size_t language_count;
    char services[SCHED_SERVICES_MAX][SCHED_CODE_MAX + 1];
    int capacity[SCHED_SERVICES_MAX];   //  per service listed: 0 = the service's own
    size_t service_count;
} sched_centre_t;

typedef struct {
    char code[SCHED_CODE_MAX + 1];
    char name[SCHED_TEXT_MAX];
    sched_name_t names[SCHED_NAMES_MAX];
    size_t name_count;
    int duration_min;
    int capacity;                       //  people per slot (counters or staff)
    int64_t lead_ms;                    //  earliest start: now + lead
    int64_t horizon_ms;                 //  latest start: now + horizon
    char languages[SCHED_LANG_MAX][8];  //  empty: the centre's languages
    size_t language_count;
} sched_service_t;

typedef struct {
    sched_centre_t *centres;
    size_t centre_count;
    sched_service_t *services;
    size_t service_count;
    int64_t reminders[SCHED_REMINDERS_MAX];     //  ms before the start, descending
    size_t reminder_count;
    char channels[64];                  //  comma-separated notification channels
    //  the callback list fed by abandoned calls
    bool callbacks;
    int64_t callback_min_wait_ms;       //  shorter abandons are not called back
    int callback_max_attempts;
    int64_t callback_spacing_ms;
    sched_hours_t callback_hours;
    int callback_tz_offset_min;
    uint8_t callback_days;              //  bit d: calls allowed on weekday d
} sched_config_t;

//  Load and check a configuration file. NULL with "path:line: reason" in err.
sched_config_t *sched_config_load (const char *path, char *err, size_t errlen);

//  Same from text in memory (name is used in messages). For tests and the fuzzer.
sched_config_t *sched_config_parse (const char *text, size_t len, const char *name, char *err,
                                    size_t errlen);

void sched_config_destroy (sched_config_t **self_p);

//  Lookups (borrowed; NULL when unknown).
const sched_centre_t *sched_config_centre (const sched_config_t *self, const char *code);
const sched_service_t *sched_config_service (const sched_config_t *self, const char *code);

//  Capacity per slot of service at centre; 0 when the centre does not offer it.
int sched_config_capacity (const sched_centre_t *centre, const sched_service_t *service);

//  The name of a centre/service in lang, or the default name (borrowed).
const char *sched_centre_name (const sched_centre_t *centre, const char *lang);
const char *sched_centre_address (const sched_centre_t *centre, const char *lang);
const char *sched_service_name (const sched_service_t *service, const char *lang);

//  True when the centre speaks lang (or has an interpreter) and the service allows it.
bool sched_config_language_ok (const sched_centre_t *centre, const sched_service_t *service,
                               const char *lang);

//  Date helpers: days since 1970-01-01 from a civil date, and back; weekday (0 = Sunday).
int32_t sched_days_from_civil (int y, int m, int d);
void sched_civil_from_days (int32_t days, int *y, int *m, int *d);
int sched_weekday (int32_t days);

//  Parse "YYYY-MM-DD" into days. 0 or -1.
int sched_parse_date (const char *s, int32_t *days);

//  Parse a duration "90", "90s", "30m", "48h", "60d", "500ms" (bare number: unit def_ms). 0 or -1.
int sched_parse_duration (const char *s, int64_t def_unit_ms, int64_t *out);

//  Parse "HH:MM-HH:MM" (24:00 allowed as an end). 0 or -1.
int sched_parse_hours (const char *s, sched_hours_t *hours);

//  ---------------------------------------------------------------------------------------------
//  Slots (slots.c)

typedef struct {
    int64_t start, end;                 //  unix ms
    char slot_id[24];                   //  local "YYYYMMDDTHHMM"
    int capacity;
    int taken;
} sched_slot_t;

//  The opening hours of centre on local day (days since epoch): false when closed.
bool sched_day_hours (const sched_centre_t *centre, int32_t day, sched_hours_t *hours);

//  Why a start is not bookable (or SCHED_SLOT_OK).
typedef enum {
    SCHED_SLOT_OK = 0,
    SCHED_SLOT_NOT_OFFERED,             //  the centre does not offer the service
    SCHED_SLOT_CLOSED,                  //  weekend, holiday, closed period
    SCHED_SLOT_OUTSIDE_HOURS,           //  not a slot boundary within the day's hours
    SCHED_SLOT_PAST,                    //  in the past
    SCHED_SLOT_LEAD,                    //  sooner than the lead time
    SCHED_SLOT_HORIZON                  //  beyond the booking horizon
} sched_slot_why_t;

//  Resolve a slot id or a start into a slot of service at centre, checked against now
//  (lead, horizon). SCHED_SLOT_OK with *slot filled (taken 0), else the reason.
sched_slot_why_t sched_slot_resolve (const sched_centre_t *centre, const sched_service_t *service,
                                     const char *slot_id, int64_t start, int64_t now,
                                     sched_slot_t *slot);

//  Short code and message for a reason.
const char *sched_slot_why_code (sched_slot_why_t why);
const char *sched_slot_why_message (sched_slot_why_t why);

//  Call fn for every slot of service at centre starting in [from, to) that is bookable at now
//  (lead time and horizon applied), in time order. fn returns non-zero to stop. Returns the
//  number of slots passed to fn.
typedef int (sched_slot_fn) (void *arg, const sched_slot_t *slot);
size_t sched_slots_each (const sched_centre_t *centre, const sched_service_t *service,
                         int64_t from, int64_t to, int64_t now, sched_slot_fn *fn, void *arg);

//  Format a local time of centre: "YYYY-MM-DD" and "HH:MM".
void sched_local_date (const sched_centre_t *centre, int64_t ms, char out[11]);
void sched_local_time (const sched_centre_t *centre, int64_t ms, char out[6]);

//  Free slots with bookings read from Redis: {"slots":[{centre,service,slot_id,start,end,
//  capacity,free}], "truncated":bool}. NULL (err set) on a Redis failure.
json_t *sched_slots_free (scheduler_t *self, const sched_service_t *service,
                          const sched_centre_t **centres, size_t centre_count, int64_t from,
                          int64_t to, const char *language, size_t limit, bool *redis_failed);

//  ---------------------------------------------------------------------------------------------
//  The write path (store.c)

//  One atomic write: guards checked first (nothing written when one fails), then the commands,
//  then the outbox entries of the events, then the stored reply under the idempotency key.
typedef struct _sched_write_t sched_write_t;

typedef enum {
    SCHED_WRITE_OK = 1,
    SCHED_WRITE_IN_PROGRESS = 0,        //  the idempotency key holds another request's marker
    SCHED_WRITE_STALE = -1,             //  a version guard failed: read again and retry
    SCHED_WRITE_FULL = -2,              //  a capacity guard failed
    SCHED_WRITE_OVERLAP = -3,           //  the person holds an overlapping appointment
    SCHED_WRITE_EXISTS = -4,            //  a set-if-absent guard failed
    SCHED_WRITE_GONE = -5,              //  a zhas guard failed: someone else took it
    SCHED_WRITE_ERROR = -9              //  Redis unreachable or the script failed
} sched_write_rc_t;

sched_write_t *sched_write_new (void);
void sched_write_destroy (sched_write_t **self_p);

//  Guards. ver: HGET key "version" equals expected ("0" when the key must not exist).
void sched_write_ver (sched_write_t *self, const char *key, int64_t expected);
//  cap: HGET key field (a count) is below max.
void sched_write_cap (sched_write_t *self, const char *key, const char *field, int max);
//  free: no appointment in person zset key overlaps [start, end), except self_id.
void sched_write_free (sched_write_t *self, const char *key, int64_t start, int64_t end,
                       const char *self_id);
//  absent: HEXISTS key field is 0.
void sched_write_absent (sched_write_t *self, const char *key, const char *field);
//  zhas: member is in sorted set key (a due item not yet taken by another replica).
void sched_write_zhas (sched_write_t *self, const char *key, const char *member);

//  A command, as arguments (copied). printf-style for each argument is not needed: pass strings.
void sched_write_cmd (sched_write_t *self, int argc, const char **argv);
//  Convenience: up to 16 string arguments, NULL-terminated.
void sched_write_cmdv (sched_write_t *self, const char *first, ...);

//  Stage an event (outbox entry built now; the event is delivered after a successful run).
//  Takes ownership of *ev_p.
void sched_write_event (sched_write_t *self, gl_event_t **ev_p);

//  Store the reply (status, body) under req's idempotency key in the same step.
void sched_write_reply (sched_write_t *self, scheduler_t *sched, const gl_rep_request_t *req,
                        int status, const json_t *body);

//  Run it, and on success deliver the events. The write may be run again (after STALE) only
//  after sched_write_reset.
sched_write_rc_t sched_write_run (scheduler_t *sched, sched_write_t *self);
void sched_write_reset (sched_write_t *self);

//  ---------------------------------------------------------------------------------------------
//  The service (requests.c and the others)

struct _scheduler_t {
    gl_service_t *svc;
    gl_redis_t *redis;
    gl_outbox_t *outbox;
    gl_rep_t *rep;
    sched_config_t *config;
    unsigned char hash_key[32];         //  keyed hash of case numbers and phones in key names
    int64_t lease_ms;                   //  how long an agent holds an outbound target
    size_t slot_limit;                  //  most slots in one answer
    size_t csv_max_rows;
    int64_t reminder_batch;
    int64_t retain_ms;                  //  personal data kept this long (retention.c)
    gl_sub_t *sub;
    uint64_t reminders_sent;
    uint64_t leases_expired;
    //  metrics (docs/operations.md)
    struct _gl_metric_t *m_booked, *m_refused, *m_reminders, *m_leases, *m_outcomes,
        *m_slots_us;
};

//  Create the service's state and register its handlers, timers and subscriber on svc.
//  NULL with the reason in err (a bad configuration file names file:line).
scheduler_t *scheduler_new (gl_service_t *svc, char *err, size_t errlen);
void scheduler_destroy (scheduler_t **self_p);

//  32 hex digits of a keyed hash of a personal value (case number, phone), for key names.
void sched_person_hash (scheduler_t *self, const char *value, char out[33]);

//  The caller of a forwarded request (forward.h).
typedef struct {
    char user_id[GL_ID_LEN + 1];
    bool agent, supervisor, protection, admin, api_client;
} sched_caller_t;

//  Parse the forwarded envelope {caller, params, query, body}; borrowed parts. 0 or a status
//  (400) with err set.
int sched_forwarded (const gl_rep_request_t *req, sched_caller_t *caller, json_t **params,
                     json_t **query, json_t **body, gl_rep_error_t *err);

//  Field helpers for outside input: 0, or 400 with err naming the field.
int sched_str_field (json_t *obj, const char *name, bool required, size_t max, const char *charset,
                     const char **out, gl_rep_error_t *err);
int sched_int_field (json_t *obj, const char *name, bool required, int64_t min, int64_t max,
                     int64_t *out, bool *present, gl_rep_error_t *err);
int sched_query_int (json_t *query, const char *name, int64_t def, int64_t min, int64_t max,
                     int64_t *out, gl_rep_error_t *err);
//  Refuse keys of obj not in the NULL-terminated list allowed: 0 or 400 unknown_field.
int sched_only_fields (json_t *obj, const char *const *allowed, gl_rep_error_t *err);
//  The same for query parameters: 400 unknown_parameter.
int sched_only_params (json_t *query, const char *const *allowed, gl_rep_error_t *err);
bool sched_code_valid (const char *s, size_t max);
bool sched_lang_valid (const char *s);

//  Redis helpers: HGETALL into a JSON object of strings (NULL on failure; empty object when
//  the key does not exist).
json_t *sched_hgetall (scheduler_t *self, const char *key, bool *failed);
int64_t sched_jint (json_t *obj, const char *field, int64_t def);
const char *sched_jstr (json_t *obj, const char *field, const char *def);

//  Appointments (appointments.c): handlers.
gl_rep_fn appointments_book, appointments_search, appointments_list, appointments_move,
    appointments_cancel, appointments_attended, appointments_no_show, appointments_get;
//  The slip text in lang (en, fr, ar; other languages get en). A new string.
char *appointments_slip (const sched_centre_t *centre, const sched_service_t *service,
                         const char *appointment_id, int64_t start, const char *lang,
                         const char **used_lang);

//  Reminders (reminders.c).
//  Queue the writes that schedule the reminders of appointment rec (its id and start) at
//  version, those still in the future at now; their due times are appended to dues_out (may be
//  NULL) and rec's "reminders" field lists them. Returns how many were scheduled.
int reminders_schedule (scheduler_t *self, sched_write_t *w, json_t *rec, int64_t version,
                        int64_t now, json_t *dues_out);
//  Queue the writes that drop the reminders rec's "reminders" field lists.
void reminders_unschedule (scheduler_t *self, sched_write_t *w, json_t *rec);
//  A notification.requested event about appointment (a record as stored).
gl_event_t *reminders_notification (scheduler_t *self, json_t *appointment, const char *template_,
                                    int64_t due);
//  The timer: send what is due. 0 or -1.
gl_service_timer_fn reminders_tick;

//  Campaigns (campaigns.c).
gl_rep_fn campaigns_create, campaigns_list, campaigns_get, campaigns_targets, campaigns_next,
    campaigns_outcome, campaigns_progress, campaigns_export, campaigns_status;
gl_service_timer_fn campaigns_tick;            //  expired leases back to the queue
gl_service_timer_fn campaigns_resolve_tick;    //  phone numbers asked from intake
gl_sub_apply_fn campaigns_on_event;            //  call.abandoned -> the callback list
int campaigns_start (scheduler_t *self, char *err, size_t errlen);

//  Retention (retention.c): the timer that removes personal data past GL_SCHEDULER_RETAIN_DAYS.
gl_service_timer_fn retention_tick;

//  Centres and slots handlers (requests.c).
gl_rep_fn requests_slots, requests_centres;
int requests_register (scheduler_t *self);

#endif
