/*  rep_agg — reporting's state: the counters (rep_store) and the live records the counters need
    (calls in progress, agents' states, contacts of the last days for first-contact resolution
    and corrections, open complaints, emergencies and referrals waiting for their next step, the
    shift plans, event ids seen). rep_agg_apply turns one event into counter updates.

    Time. An event is counted in the periods of the time it is about, on the owning service's
    clock: a call's outcome in the period of its offer (at - wait_ms, on the call's clock), a
    call's handling in the period it ended, a contact in the period it was created, a state
    duration in the period the state ended. Periods are local to GL_REPORTING_TZ.

    Checkpoints. rep_agg_checkpoint queues, in a gl_tx, the buckets and records changed since the
    last checkpoint; rep_agg_load reads everything back. Both use the keys
      reporting:{reporting}:agg        hash period -> encoded bucket
      reporting:{reporting}:rec        hash "<kind>:<id>" -> encoded record
      reporting:{reporting}:meta       hash (format version, watermark)
*/
#ifndef REP_AGGREGATES_H
#define REP_AGGREGATES_H
#include "store.h"
#include "gl/gl_config.h"
#include "gl/gl_event.h"
#include "gl/gl_redis.h"
#include "gl/gl_sub.h"
#include <stdbool.h>
#include <stdint.h>

#define REP_SL_MAX      4
#define REP_HIST_MAX    12
#define REP_CODE_MAX    48

typedef struct {
    char tz[64];                    //  GL_REPORTING_TZ (UTC)
    int week_start;                 //  0 Sunday .. 6 Saturday (GL_REPORTING_WEEK_START, monday)
    unsigned weekend_mask;          //  bit d set: weekday d is a weekend day (saturday,sunday)
    int64_t short_abandon_ms;       //  GL_REPORTING_SHORT_ABANDON_S (5)
    int sl_n;
    int sl_s[REP_SL_MAX];           //  GL_REPORTING_SL_THRESHOLDS_S (20,60)
    int hist_n;
    int hist_s[REP_HIST_MAX];       //  GL_REPORTING_WAIT_BUCKETS_S (10,20,30,60,120,300,600)
    int64_t fcr_window_ms;          //  GL_REPORTING_FCR_DAYS (7)
    int64_t track_ms;               //  GL_REPORTING_TRACK_DAYS (8): how long records are kept
    int64_t complaint_due_ms;       //  GL_REPORTING_COMPLAINT_DUE_DAYS (14) when an event has none
    size_t max_names;               //  GL_REPORTING_MAX_NAMES (50000) per bucket
    int small_cell;                 //  GL_REPORTING_SMALL_CELL (5)
    int trend_weeks;                //  GL_REPORTING_TREND_WEEKS (4)
    double trend_fdr;               //  GL_REPORTING_TREND_FDR (0.05)
    int trend_min_count;            //  GL_REPORTING_TREND_MIN_COUNT (5)
    int report_hour;                //  GL_REPORTING_REPORT_HOUR (6)
    char report_channels[64];       //  GL_REPORTING_REPORT_CHANNELS (email,console)
} rep_conf_t;

typedef struct _rep_agg_t rep_agg_t;

//  Read the settings (see docs/operations.md). -1 with the key at fault in err.
int rep_conf_load (rep_conf_t *conf, gl_config_t *config, char *err, size_t errlen);

//  Defaults without a configuration (tests).
void rep_conf_default (rep_conf_t *conf);

//  New, empty state (conf copied). Sets the process's TZ to conf->tz.
rep_agg_t *rep_agg_new (const rep_conf_t *conf);
void rep_agg_destroy (rep_agg_t **self_p);

//  Apply one event. Returns 0 (applied, ignored as unknown or duplicate, or rejected as
//  impossible: each counted in the lifetime bucket "t").
int rep_agg_apply (rep_agg_t *self, const gl_event_t *ev);

//  The counters (borrowed) and settings.
rep_store_t *rep_agg_store (rep_agg_t *self);
const rep_conf_t *rep_agg_conf (rep_agg_t *self);

//  Period keys of a unix-ms time: kind 'h', 'd', 'w' or 'm'. out must hold 24 bytes.
void rep_agg_period (rep_agg_t *self, int64_t ms, char kind, char *out);

//  Local midnight (unix ms) of the day of ms, and of the day after (DST-safe).
int64_t rep_agg_day_start (rep_agg_t *self, int64_t ms);
int64_t rep_agg_day_next (rep_agg_t *self, int64_t day_start_ms);

//  Weekday (0 Sunday) of a local date "YYYY-MM-DD"; -1 when malformed.
int rep_date_weekday (const char *date);

//  Parse "YYYY-MM-DD" (strict, real date). 0 or -1.
int rep_date_parse (const char *s, int *y, int *m, int *d);

//  Day number (days since 1970-01-01) of a civil date, and back.
int64_t rep_days_from_civil (int y, int m, int d);
void rep_civil_from_days (int64_t z, int *y, int *m, int *d);

//  The live figures (calls waiting now, longest current wait, agents by state, agents planned
//  now) as a new JSON object, at business time now_ms.
json_t *rep_agg_live (rep_agg_t *self, int64_t now_ms);

//  Where checkpoint commands go: one Redis command as an argument vector (lens NULL: C strings).
typedef int (rep_sink_fn) (void *arg, int argc, const char **argv, const size_t *lens);

//  A sink queueing into a gl_tx_t (arg).
int rep_sink_tx (void *arg, int argc, const char **argv, const size_t *lens);

//  Send to sink every bucket and record changed since the last checkpoint (and the deletions of
//  records forgotten). Returns the number of commands sent.
size_t rep_agg_checkpoint (rep_agg_t *self, rep_sink_fn *sink, void *arg);

//  Complaints received in [from_ms, to_ms) and still open and past their due time at now_ms.
int64_t rep_agg_overdue (rep_agg_t *self, int64_t from_ms, int64_t to_ms, int64_t now_ms);

//  After a failed checkpoint: mark everything queued by the last rep_agg_checkpoint as still to
//  be written.
void rep_agg_checkpoint_failed (rep_agg_t *self);

//  Forget everything and read the last checkpoint back. 0, or -1 (Redis, or a malformed entry:
//  the reason in err).
int rep_agg_load (rep_agg_t *self, gl_redis_t *redis, char *err, size_t errlen);

//  Say that the next checkpoint is written over an empty one (the rebuild wipes first): records
//  forgotten meanwhile need no deletion, so they are not remembered until then.
void rep_agg_fresh (rep_agg_t *self);

//  Forget everything (state empty).
void rep_agg_reset (rep_agg_t *self);

//  Delete the checkpoint keys (sent to sink).
void rep_agg_wipe (rep_sink_fn *sink, void *arg);

//  Events applied so far (by this process).
uint64_t rep_agg_applied (rep_agg_t *self);

//  The whole state as sorted text (counters and records), for comparisons; caller frees.
char *rep_agg_dump (rep_agg_t *self);

#endif
