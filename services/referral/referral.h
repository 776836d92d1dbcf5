/*  referral — units, partners, duty rosters, routing rules, SLAs; referrals and their lifecycle;
    emergencies and their escalation chain (ARCHITECTURE.md, "Services"; docs/api/referral.md,
    docs/events.md, docs/operations.md).

    Where is what:
      config.c       the configuration file (units, partners, rosters, rules, SLAs, hours) and
                     the business clock arithmetic (business time between two instants)
      routing.c      which unit (or partner) a referral goes to, first matching rule wins
      store.c        the one Lua script every change goes through (compare the record's version,
                     run the writes, store the outbox entries and the stored reply), op lists
      referrals.c    the referral lifecycle: routed, acknowledged, in progress, closed,
                     rejected, re-routed; comments, pause and resume
      escalation.c   the timer: reminders and escalations of referrals and emergencies when due;
                     the retention purge of closed records
      emergencies.c  emergencies: dispatch to the on-duty officer, the alarm, acknowledgement
      partners.c     signed acknowledgement links for partners without accounts
      notify.c       notification.requested events (the contract shared with notifier)
      requests.c     the bus requests (intake's forwarded API, referral.partner_contact)
      service.c      the service object: configuration, subscriber, timers, handlers

    Everything runs on gl_service's one thread: no locks.
*/
#ifndef REFERRAL_H
#define REFERRAL_H

#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_metrics.h"
#include "gl/gl_service.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RF_PREFIX           "referral:{referral}:"
#define RF_CODE_MAX         32          //  unit, partner, category, location, language codes
#define RF_UNITS_MAX        64
#define RF_PARTNERS_MAX     64
#define RF_RULES_MAX        256
#define RF_ROSTER_MAX       512
#define RF_MEMBERS_MAX      128         //  members per unit
#define RF_HOURS_MAX        32          //  business hours lines
#define RF_SLA_MAX          512
#define RF_SENSITIVE_MAX    32
#define RF_URL_MAX          256
#define RF_ACK_LINK_MAX     96          //  the base of partners' links (the token follows)
#define RF_LINE_MAX         512
#define RF_FILE_MAX         (256 * 1024)

//  Priorities, in order; the index is used in tables.
typedef enum { RF_LOW = 0, RF_NORMAL, RF_HIGH, RF_EMERGENCY, RF_PRIORITY__COUNT } rf_priority_t;

const char *rf_priority_name (rf_priority_t p);
//  -1 when s is not a priority.
int rf_priority_parse (const char *s);

//  --------------------------------------------------------------------------------------------
//  Configuration (config.c)

typedef char rf_uid_t[GL_ID_LEN + 1];

typedef struct {
    char code[RF_CODE_MAX + 1];
    bool sensitive;                     //  only members see its referrals
    bool always_open;                   //  24x7: its SLAs run on wall time
    rf_uid_t focal;                     //  focal point ("" none)
    rf_uid_t supervisor;                //  supervisor ("" none)
    rf_uid_t members[RF_MEMBERS_MAX];
    size_t n_members;
    int line;
} rf_unit_t;

typedef struct {
    char code[RF_CODE_MAX + 1];
    char unit[RF_CODE_MAX + 1];         //  the unit that follows its referrals up
    char email[RF_URL_MAX + 1];         //  "" none
    char webhook[RF_URL_MAX + 1];       //  "" none
    char language[RF_CODE_MAX + 1];     //  "" none
    int line;
} rf_partner_t;

typedef struct {
    uint8_t days;                       //  bit 0 = Monday … bit 6 = Sunday
    int start_min, end_min;             //  local minutes of the day; end <= start wraps midnight
} rf_window_t;

typedef struct {
    char unit[RF_CODE_MAX + 1];
    rf_window_t window;
    rf_uid_t primary, backup;
    int line;
} rf_roster_t;

typedef struct {
    char category[RF_CODE_MAX * 2 + 2]; //  "*", a code, or a category (matches its subcodes)
    char location[RF_CODE_MAX + 1];     //  "*" or a code
    char language[RF_CODE_MAX + 1];     //  "*" or a code ("ar" matches "ar-SY")
    int priority;                       //  -1 any
    char unit[RF_CODE_MAX + 1];         //  target unit
    char partner[RF_CODE_MAX + 1];      //  target partner ("" none)
    bool is_default;
    int line;
} rf_rule_t;

typedef struct {
    char unit[RF_CODE_MAX + 1];         //  "*" any
    int priority;
    int64_t ack_ms, resolve_ms;
    int line;
} rf_sla_t;

typedef struct {
    char path[256];
    rf_unit_t units[RF_UNITS_MAX];
    size_t n_units;
    rf_partner_t partners[RF_PARTNERS_MAX];
    size_t n_partners;
    rf_roster_t roster[RF_ROSTER_MAX];
    size_t n_roster;
    rf_rule_t rules[RF_RULES_MAX];
    size_t n_rules;
    rf_sla_t slas[RF_SLA_MAX];
    size_t n_slas;
    rf_window_t hours[RF_HOURS_MAX];
    size_t n_hours;
    int tz_offset_min;                  //  local time = UTC + this
    char sensitive[RF_SENSITIVE_MAX][RF_CODE_MAX + 1];  //  sensitive categories
    size_t n_sensitive;
    char emergency_unit[RF_CODE_MAX + 1];
    int64_t emergency_ack_ms;           //  a person must acknowledge within this
    int64_t emergency_repeat_ms;        //  alarm re-sent and escalated this often until then
    int64_t focal_after_ms;             //  after the ack deadline: focal point
    int64_t supervisor_after_ms;        //  after the ack deadline: supervisor
    char ack_link[RF_URL_MAX + 1];      //  base of partners' acknowledgement links
    int64_t ack_link_ttl_ms;
    char signing_key[129];              //  HMAC key of those links
} rf_config_t;

//  Parse the configuration file at path. NULL with "path:line: reason" in err (line 0 when the
//  file cannot be read). The caller destroys the result with rf_config_destroy.
rf_config_t *rf_config_load (const char *path, char *err, size_t errlen);

//  Parse text (len bytes, from outside: any bytes) as if read from name. Same contract.
rf_config_t *rf_config_parse (const char *name, const char *text, size_t len, char *err,
                              size_t errlen);

void rf_config_destroy (rf_config_t **self_p);

//  The unit or partner with code; NULL when unknown.
const rf_unit_t *rf_config_unit (const rf_config_t *self, const char *code);
const rf_partner_t *rf_config_partner (const rf_config_t *self, const char *code);

//  True when user is listed as a member, the focal point or the supervisor of unit.
bool rf_config_is_member (const rf_config_t *self, const char *unit, const char *user_id);

//  True when a referral of category to unit is sensitive (a sensitive unit, or a category at or
//  under a sensitive category).
bool rf_config_sensitive (const rf_config_t *self, const char *unit, const char *category);

//  Who is on duty for unit at business time now: the first roster line of the unit whose window
//  holds now. Returns false (primary and backup "") when nobody is.
bool rf_config_on_duty (const rf_config_t *self, const char *unit, int64_t now, rf_uid_t primary,
                        rf_uid_t backup);

//  The SLA of unit for priority (a line for the unit wins over a "*" line). Always found in a
//  loaded configuration (the loader checks every unit has one for every priority).
const rf_sla_t *rf_config_sla (const rf_config_t *self, const char *unit, rf_priority_t p);

//  True when the SLA clock of a referral of priority p in unit runs on wall time (a 24x7 unit,
//  or priority emergency) rather than business hours.
bool rf_config_sla_wall (const rf_config_t *self, const char *unit, rf_priority_t p);

//  start + dur of business time: on wall time when wall is true or no business hours are
//  configured, else counting only time inside the business hours.
int64_t rf_config_business_add (const rf_config_t *self, bool wall, int64_t start, int64_t dur);

//  Business time between a and b (0 when b <= a), the same way.
int64_t rf_config_business_between (const rf_config_t *self, bool wall, int64_t a, int64_t b);

//  Parse a duration "90s", "30m", "4h", "3d" (at most 365 days). -1 when malformed.
int64_t rf_parse_duration (const char *s);

//  True when s is a code: 1..RF_CODE_MAX of [a-z0-9_-], starting with a letter or digit.
bool rf_code_valid (const char *s);

//  True when s is a category code: a code, optionally ".sub" with sub a code.
bool rf_category_valid (const char *s);

//  --------------------------------------------------------------------------------------------
//  Routing (routing.c)

typedef struct {
    char unit[RF_CODE_MAX + 1];
    char partner[RF_CODE_MAX + 1];      //  "" when the unit itself handles it
    int rule_line;                      //  the configuration line of the rule that matched
    size_t rule_index;                  //  that rule in cfg->rules
    bool by_default;                    //  the default rule matched
} rf_route_t;

//  Route a referral: the first rule matching category, location (NULL or ""), language (NULL
//  or "") and priority wins; the default otherwise. A partner target without consent goes to
//  the partner's unit instead (nothing is shared outside without consent). 0, or -1 when no
//  rule matched and no default exists.
int rf_route (const rf_config_t *cfg, const char *category, const char *location,
              const char *language, rf_priority_t priority, bool consent, rf_route_t *out);

//  --------------------------------------------------------------------------------------------
//  Store (store.c): op lists and the compare-and-write script

typedef struct _rf_ops_t rf_ops_t;

rf_ops_t *rf_ops_new (void);
void rf_ops_destroy (rf_ops_t **self_p);
//  Queue one command (argc C strings).
void rf_ops_add (rf_ops_t *self, int argc, ...);
//  Queue HSET key field value for every key of obj (strings, integers, booleans as 0/1).
void rf_ops_hset_json (rf_ops_t *self, const char *key, const json_t *obj);
size_t rf_ops_count (rf_ops_t *self);
//  Queue every command in tx (a gl_sub handler's transaction). 0 or -1.
int rf_ops_to_tx (rf_ops_t *self, gl_tx_t *tx);

//  Result of rf_store_apply.
typedef enum { RF_STORE_OK = 0, RF_STORE_CONFLICT, RF_STORE_IN_PROGRESS, RF_STORE_ERROR } rf_store_rc_t;

//  Run ops atomically when the hash at record_key has field "version" equal to version
//  (NULL: the record must not exist). idem_key (NULL: none) must hold nothing or marker; it is
//  then set to idem_value for idem_ttl_ms.
rf_store_rc_t rf_store_apply (gl_redis_t *redis, const char *record_key, const char *version,
                              const char *idem_key, const char *marker, const char *idem_value,
                              size_t idem_len, int64_t idem_ttl_ms, rf_ops_t *ops);

//  Read a hash into a JSON object of strings. NULL when absent or Redis failed (*failed true).
json_t *rf_store_hgetall (gl_redis_t *redis, const char *key, bool *failed);

//  Field helpers on such an object.
const char *rf_str (const json_t *rec, const char *field);
int64_t rf_int (const json_t *rec, const char *field);
bool rf_bool (const json_t *rec, const char *field);

//  --------------------------------------------------------------------------------------------
//  The service object (service.c)

typedef struct _referral_t referral_t;

struct _referral_t {
    gl_service_t *svc;                  //  borrowed
    rf_config_t *cfg;
    gl_redis_t *redis;                  //  borrowed from svc
    gl_outbox_t *outbox;                //  borrowed from svc
    int64_t tick_ms;                    //  escalation timer period (GL_REFERRAL_TICK_MS)
    size_t list_max;                    //  most records a list answers (GL_REFERRAL_LIST_MAX)
    size_t comments_max;                //  comments per referral (GL_REFERRAL_COMMENTS_MAX)
    int64_t retention_ms;               //  closed records are purged after (GL_REFERRAL_RETENTION_DAYS)
    gl_metric_t *m_unacked;             //  emergencies waiting for a person, at the last tick
    gl_metric_t *m_overdue;             //  referrals past their acknowledgement deadline
    gl_metric_t *m_ref_steps;           //  referral escalation steps fired
    gl_metric_t *m_emg_steps;           //  emergency chain steps fired
};

//  Load the configuration (GL_REFERRAL_CONFIG), subscribe to intake's events, register the
//  request handlers and the escalation timer. NULL with the reason in err.
referral_t *referral_new (gl_service_t *svc, char *err, size_t errlen);
void referral_destroy (referral_t **self_p);

//  Pending events of a change: built, their outbox entries queued in ops, delivered after.
typedef struct {
    gl_event_t *evs[16];
    int flags[16];
    size_t n;
} rf_events_t;

//  Queue ev (taken) in evs and its outbox entry in ops. 0, or -1 (out of room or memory: ev
//  destroyed).
int rf_events_add (referral_t *self, rf_events_t *evs, rf_ops_t *ops, gl_event_t *ev, int flags);
//  Stage every event in tx (a subscriber's transaction) and free them. 0 or -1.
int rf_events_stage (referral_t *self, rf_events_t *evs, gl_tx_t *tx);
//  Deliver every event (their entries are stored) and free them.
void rf_events_deliver (referral_t *self, rf_events_t *evs);
//  Free them undelivered (the change was not stored).
void rf_events_drop (rf_events_t *evs);

//  A change of one record (a referral, an emergency) in the making: the record as read (rec,
//  updated as fields are set), the fields this change writes (set), the Redis writes (ops) and
//  the events (evs), all at one time (now). store.c.
#define RF_KEY_MAX 160
typedef struct {
    referral_t *self;
    json_t *rec;                        //  the record after the change (read, then updated)
    json_t *set;                        //  fields written by this change
    rf_ops_t *ops;
    rf_events_t evs;
    int64_t now;                        //  gl_now_ms at the start
    char id[GL_ID_LEN + 1];
    char key[RF_KEY_MAX];               //  the record's key
    char by[48];                        //  who makes it ("" for referral itself)
    int alarms;                         //  emergencies: alarms this change requested
} rf_change_t;

//  Start a change of record id at key, by by (NULL: ""). rec is NULL until the caller reads it.
void rf_change_init (rf_change_t *c, referral_t *self, const char *id, const char *key,
                     const char *by);
//  Free what the change holds; its events undelivered.
void rf_change_clear (rf_change_t *c);
//  Set field to v ("" for NULL) in the record and in the fields written.
void rf_change_set_str (rf_change_t *c, const char *field, const char *v);
void rf_change_set_int (rf_change_t *c, const char *field, int64_t v);
//  Queue an event about the record: id_field = the record's id, its unit and status, then extra
//  (taken; may be NULL) merged in; flags for the publisher (GL_PUB_CRITICAL or 0).
void rf_change_event (rf_change_t *c, const char *type, const char *id_field, json_t *extra,
                      int flags);

//  --------------------------------------------------------------------------------------------
//  Notifications (notify.c)

typedef struct {
    const char *template_;              //  "referral.assigned" …
    bool emergency;                     //  priority emergency
    const char *channels;               //  comma-separated: "sms,voice,console"
    const char *kind;                   //  user, partner, unit, role
    const char *ref;                    //  user id, partner code, unit code, role
    const char *language;               //  NULL: none
    const char *corr;                   //  referral or emergency id
} rf_notice_t;

//  A notification.requested event for notice with params (taken; NULL: {}). NULL when the
//  notice cannot be made (a bug, logged).
gl_event_t *rf_notify (const rf_notice_t *notice, json_t *params);

//  --------------------------------------------------------------------------------------------
//  Partners (partners.c)

//  The signed acknowledgement token of referral_id for partner, valid until expires (unix ms):
//  "<referral id>.<partner>.<expires>.<hmac hex>". Written to out. 0, or -1 (out too small).
int rf_partner_token (const rf_config_t *cfg, const char *referral_id, const char *partner,
                      int64_t expires, char *out, size_t outlen);

//  Check a token from outside at business time now: 0 with referral_id and partner filled;
//  -1 malformed or bad signature; -2 expired.
int rf_partner_token_check (const rf_config_t *cfg, const char *token, int64_t now,
                            char referral_id[GL_ID_LEN + 1], char partner[RF_CODE_MAX + 1]);

//  --------------------------------------------------------------------------------------------
//  Referrals (referrals.c)

//  Key of referral id's record.
void rf_referral_key (const char *id, char *out, size_t outlen);

//  Apply referral.requested (subscriber). 0, or -1 to retry later.
int rf_referral_requested (referral_t *self, const gl_event_t *ev, gl_tx_t *tx);

//  Who is asking (the forwarded body's caller).
typedef struct {
    char user_id[GL_ID_LEN + 1];        //  "" for a public caller (partner link)
    bool supervisor, protection, admin, agent;
    char units[RF_UNITS_MAX][RF_CODE_MAX + 1];
    size_t n_units;
} rf_caller_t;

bool rf_caller_in_unit (const rf_caller_t *caller, const char *unit);

//  True when caller may see record rec (sensitive: only members of its unit).
bool rf_referral_visible (referral_t *self, const rf_caller_t *caller, const json_t *rec);

//  The record as answered to the API (a new object).
json_t *rf_referral_view (const json_t *rec);

//  A change to referral id asked by caller: action is "ack", "start", "close", "reject",
//  "reroute", "priority", "comment", "pause", "resume", "partner_ack"; body the request's body. Returns the
//  status with *reply set (200) or err filled.
int rf_referral_change (referral_t *self, const gl_rep_request_t *req, const rf_caller_t *caller,
                        const char *id, const char *action, const json_t *body, json_t **reply,
                        gl_rep_error_t *err);

//  One escalation step of referral id when it is due at now. 0 (done or nothing to do), -1
//  (Redis failed: try again at the next tick).
int rf_referral_escalate (referral_t *self, const char *id, int64_t now);

//  --------------------------------------------------------------------------------------------
//  Emergencies (emergencies.c)

void rf_emergency_key (const char *id, char *out, size_t outlen);

//  Apply emergency.raised (subscriber). 0, or -1 to retry later.
int rf_emergency_raised (referral_t *self, const gl_event_t *ev, gl_tx_t *tx);

//  Apply notification.sent / .delivered / .failed / .dead about an emergency's alarm: counts
//  shown on the board.
int rf_emergency_notification (referral_t *self, const gl_event_t *ev, gl_tx_t *tx);

//  True when caller may see emergencies (supervisors, admins, the emergency unit's members).
bool rf_emergency_visible (referral_t *self, const rf_caller_t *caller);

json_t *rf_emergency_view (const json_t *rec);

//  ack or close emergency id (see rf_referral_change).
int rf_emergency_change (referral_t *self, const gl_rep_request_t *req, const rf_caller_t *caller,
                         const char *id, const char *action, const json_t *body, json_t **reply,
                         gl_rep_error_t *err);

//  One escalation step of emergency id when due at now. 0 or -1 (Redis failed).
int rf_emergency_escalate (referral_t *self, const char *id, int64_t now);

//  --------------------------------------------------------------------------------------------
//  Escalation timer (escalation.c) and requests (requests.c)

//  The timer: every due referral and emergency, one step each. 0, or -1 to stop the service.
int rf_escalation_tick (gl_service_t *svc, void *arg);

//  Purge what was closed more than the retention period before now: records, history,
//  comments, index entries (at most a batch per call). 0, or -1 (Redis failed).
int rf_retention_purge (referral_t *self, int64_t now);

//  Register every request handler. 0 or -1.
int rf_requests_register (referral_t *self);

//  Keys shared by the files.
#define RF_KEY_DUE          RF_PREFIX "due"             //  zset referral id -> next step due
#define RF_KEY_EMG_DUE      RF_PREFIX "emg:due"         //  zset emergency id -> next alarm due
#define RF_KEY_ACK_DUE      RF_PREFIX "ackdue"          //  zset unacknowledged -> ack due
#define RF_KEY_RESOLVE_DUE  RF_PREFIX "resolvedue"      //  zset open -> resolve due
#define RF_KEY_OPEN         RF_PREFIX "open"            //  zset every open referral -> created
#define RF_KEY_CLOSED       RF_PREFIX "closed"          //  zset closed or rejected -> closed at
#define RF_KEY_EMG_OPEN     RF_PREFIX "emg:open"        //  zset unacknowledged -> raised at
#define RF_KEY_EMG_ACKED    RF_PREFIX "emg:acked"       //  zset acknowledged, not closed
#define RF_KEY_EMG_CLOSED   RF_PREFIX "emg:closed"      //  zset closed -> closed at

#endif
