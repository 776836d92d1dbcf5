/*  slots — which slots exist (the configuration: opening days and hours, weekends, holidays,
    special periods, the service's duration) and how many places are left in each (the bookings
    counted in Redis). A slot is named by the centre's local start, "YYYYMMDDTHHMM", so a slot id
    is stable, readable at the counter, and never needs a record of its own.

    Times: a centre has a fixed offset from UTC (the region's countries keep no daylight saving
    time today); local day d, minute m starts at (d * 1440 + m - offset) minutes after the epoch.
*/
#include "scheduler.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_MS 60000

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

bool
sched_day_hours (const sched_centre_t *centre, int32_t day, sched_hours_t *hours)
{
    if (centre->weekend & (1u << sched_weekday (day)))
        return false;
    //  holidays are sorted
    size_t lo = 0, hi = centre->holiday_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (centre->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < centre->holiday_count && centre->holidays[lo] == day)
        return false;
    *hours = centre->hours[sched_weekday (day)];
    for (size_t i = 0; i < centre->special_count; i++) {
        const sched_special_t *s = &centre->specials[i];
        if (day >= s->from_day && day <= s->to_day) {
            if (s->closed)
                return false;
            *hours = s->hours;
            break;
        }
    }
    return hours->close > hours->open;
}

static void
s_fill (const sched_centre_t *centre, const sched_service_t *service, int32_t day, int minute,
        sched_slot_t *slot)
{
    int64_t start_min = (int64_t) day * 1440 + minute - centre->tz_offset_min;
    slot->start = start_min * S_MIN_MS;
    slot->end = slot->start + (int64_t) service->duration_min * S_MIN_MS;
    //  "YYYYMMDDTHHMM" by hand: this runs for every slot of a 90-day search.
    int y, m, d;
    sched_civil_from_days (day, &y, &m, &d);
    int parts[5] = { y % 10000, m, d, minute / 60, minute % 60 };
    char *p = slot->slot_id;
    for (int i = 0; i < 5; i++) {
        int v = parts[i];
        if (i == 0) {
            *p++ = (char) ('0' + v / 1000);
            *p++ = (char) ('0' + v / 100 % 10);
        }
        *p++ = (char) ('0' + v / 10 % 10);
        *p++ = (char) ('0' + v % 10);
        if (i == 2)
            *p++ = 'T';
    }
    *p = 0;
    slot->capacity = sched_config_capacity (centre, service);
    slot->taken = 0;
}

//  Whether a start is bookable at now, as far as time goes.
static sched_slot_why_t
s_when_ok (const sched_service_t *service, int64_t start, int64_t now)
{
    if (start <= now)
        return SCHED_SLOT_PAST;
    if (start < now + service->lead_ms)
        return SCHED_SLOT_LEAD;
    if (start > now + service->horizon_ms)
        return SCHED_SLOT_HORIZON;
    return SCHED_SLOT_OK;
}

sched_slot_why_t
sched_slot_resolve (const sched_centre_t *centre, const sched_service_t *service,
                    const char *slot_id, int64_t start, int64_t now, sched_slot_t *slot)
{
    if (sched_config_capacity (centre, service) == 0)
        return SCHED_SLOT_NOT_OFFERED;
    int32_t day;
    int minute;
    if (slot_id) {
        //  YYYYMMDDTHHMM
        if (strlen (slot_id) != 13 || slot_id[8] != 'T')
            return SCHED_SLOT_OUTSIDE_HOURS;
        char date[11];
        snprintf (date, sizeof date, "%.4s-%.2s-%.2s", slot_id, slot_id + 4, slot_id + 6);
        for (int i = 9; i < 13; i++)
            if (slot_id[i] < '0' || slot_id[i] > '9')
                return SCHED_SLOT_OUTSIDE_HOURS;
        if (sched_parse_date (date, &day) != 0)
            return SCHED_SLOT_OUTSIDE_HOURS;
        int hh = (slot_id[9] - '0') * 10 + (slot_id[10] - '0');
        int mm = (slot_id[11] - '0') * 10 + (slot_id[12] - '0');
        if (hh > 23 || mm > 59)
            return SCHED_SLOT_OUTSIDE_HOURS;
        minute = hh * 60 + mm;
    }
    else {
        if (start % S_MIN_MS != 0)
            return SCHED_SLOT_OUTSIDE_HOURS;
        int64_t local_min = start / S_MIN_MS + centre->tz_offset_min;
        day = (int32_t) s_floor_div (local_min, 1440);
        minute = (int) (local_min - (int64_t) day * 1440);
    }
    sched_hours_t hours;
    if (!sched_day_hours (centre, day, &hours))
        return SCHED_SLOT_CLOSED;
    if (minute < hours.open || minute + service->duration_min > hours.close
        || (minute - hours.open) % service->duration_min != 0)
        return SCHED_SLOT_OUTSIDE_HOURS;
    s_fill (centre, service, day, minute, slot);
    return s_when_ok (service, slot->start, now);
}

const char *
sched_slot_why_code (sched_slot_why_t why)
{
    switch (why) {
        case SCHED_SLOT_OK:
            return "ok";
        case SCHED_SLOT_NOT_OFFERED:
            return "service_not_offered";
        case SCHED_SLOT_CLOSED:
            return "centre_closed";
        case SCHED_SLOT_OUTSIDE_HOURS:
            return "not_a_slot";
        case SCHED_SLOT_PAST:
            return "in_the_past";
        case SCHED_SLOT_LEAD:
            return "too_soon";
        case SCHED_SLOT_HORIZON:
            return "too_far_ahead";
    }
    return "not_a_slot";
}

const char *
sched_slot_why_message (sched_slot_why_t why)
{
    switch (why) {
        case SCHED_SLOT_OK:
            return "ok";
        case SCHED_SLOT_NOT_OFFERED:
            return "the centre does not offer this service";
        case SCHED_SLOT_CLOSED:
            return "the centre is closed that day (weekend, public holiday or closed period)";
        case SCHED_SLOT_OUTSIDE_HOURS:
            return "not a slot: outside opening hours or not on a slot boundary";
        case SCHED_SLOT_PAST:
            return "the slot is in the past";
        case SCHED_SLOT_LEAD:
            return "the slot starts sooner than the service's minimum lead time";
        case SCHED_SLOT_HORIZON:
            return "the slot is beyond the service's booking horizon";
    }
    return "not a slot";
}

size_t
sched_slots_each (const sched_centre_t *centre, const sched_service_t *service, int64_t from,
                  int64_t to, int64_t now, sched_slot_fn *fn, void *arg)
{
    if (sched_config_capacity (centre, service) == 0)
        return 0;
    //  Only what is bookable now: after now + lead, up to now + horizon.
    int64_t earliest = now + (service->lead_ms > 0 ? service->lead_ms : 1);
    int64_t latest = now + service->horizon_ms + 1;
    if (from < earliest)
        from = earliest;
    if (to > latest)
        to = latest;
    if (from >= to)
        return 0;
    int64_t tz_ms = (int64_t) centre->tz_offset_min * S_MIN_MS;
    int32_t first = (int32_t) s_floor_div (from + tz_ms, SCHED_DAY_MS);
    int32_t last = (int32_t) s_floor_div (to - 1 + tz_ms, SCHED_DAY_MS);
    size_t count = 0;
    for (int32_t day = first; day <= last; day++) {
        sched_hours_t hours;
        if (!sched_day_hours (centre, day, &hours))
            continue;
        for (int m = hours.open; m + service->duration_min <= hours.close;
             m += service->duration_min) {
            sched_slot_t slot;
            s_fill (centre, service, day, m, &slot);
            if (slot.start < from || slot.start >= to)
                continue;
            count++;
            if (fn (arg, &slot))
                return count;
        }
    }
    return count;
}

void
sched_local_date (const sched_centre_t *centre, int64_t ms, char out[11])
{
    int64_t local_min = s_floor_div (ms, S_MIN_MS) + centre->tz_offset_min;
    int y, m, d;
    sched_civil_from_days ((int32_t) s_floor_div (local_min, 1440), &y, &m, &d);
    char tmp[48];
    snprintf (tmp, sizeof tmp, "%04d-%02d-%02d", y % 10000, m, d);
    memcpy (out, tmp, 10);
    out[10] = 0;
}

void
sched_local_time (const sched_centre_t *centre, int64_t ms, char out[6])
{
    int64_t local_min = s_floor_div (ms, S_MIN_MS) + centre->tz_offset_min;
    int minute = (int) (local_min - s_floor_div (local_min, 1440) * 1440);
    char tmp[48];
    snprintf (tmp, sizeof tmp, "%02d:%02d", minute / 60, minute % 60);
    memcpy (out, tmp, 5);
    out[5] = 0;
}

//  --------------------------------------------------------------------------------------------
//  Free slots: the configuration's slots minus the counts booked in Redis

//  The booked counts of one centre and service in [from, to): pairs of start, count.
static gl_redis_script_t s_taken = { .source =
    "local starts = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '(' .. ARGV[2])\n"
    "if #starts == 0 then return {} end\n"
    "local counts = redis.call('HMGET', KEYS[2], unpack(starts))\n"
    "local out = {}\n"
    "for i = 1, #starts do out[#out + 1] = starts[i]; out[#out + 1] = counts[i] or '0' end\n"
    "return out\n" };

typedef struct {
    int64_t start;
    int count;
} s_taken_t;

typedef struct {
    const sched_centre_t *centre;
    s_taken_t *taken;
    size_t taken_count;
    size_t pos;                 //  slots come in order: walk the taken list alongside
    sched_slot_t *out;
    size_t out_count, out_max;
} s_collect_t;

static int
s_collect (void *arg, const sched_slot_t *slot)
{
    s_collect_t *c = arg;
    while (c->pos < c->taken_count && c->taken[c->pos].start < slot->start)
        c->pos++;
    int taken = c->pos < c->taken_count && c->taken[c->pos].start == slot->start
                    ? c->taken[c->pos].count
                    : 0;
    if (taken >= slot->capacity)
        return 0;
    sched_slot_t *s = &c->out[c->out_count++];
    *s = *slot;
    s->taken = taken;
    return c->out_count == c->out_max;
}

typedef struct {
    sched_slot_t slot;
    const sched_centre_t *centre;
} s_found_t;

static int
s_cmp_found (const void *a, const void *b)
{
    const s_found_t *x = a, *y = b;
    if (x->slot.start != y->slot.start)
        return x->slot.start < y->slot.start ? -1 : 1;
    return strcmp (x->centre->code, y->centre->code);
}

//  Read the booked counts; NULL count 0 on an empty range; -1 on a Redis failure.
static int
s_read_taken (scheduler_t *self, const sched_centre_t *centre, const sched_service_t *service,
              int64_t from, int64_t to, s_taken_t **out, size_t *count)
{
    char idx[160], hash[160], a[24], b[24];
    snprintf (idx, sizeof idx, SCHED_PREFIX "takenidx:%s:%s", centre->code, service->code);
    snprintf (hash, sizeof hash, SCHED_PREFIX "taken:%s:%s", centre->code, service->code);
    snprintf (a, sizeof a, "%lld", (long long) from);
    snprintf (b, sizeof b, "%lld", (long long) to);
    const char *argv[] = { idx, hash, a, b };
    redisReply *r = gl_redis_eval (self->redis, &s_taken, 2, 4, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    *count = r->elements / 2;
    *out = *count ? calloc (*count, sizeof (s_taken_t)) : NULL;
    for (size_t i = 0; *out && i < *count; i++) {
        const redisReply *s = r->element[2 * i], *n = r->element[2 * i + 1];
        (*out)[i].start = s->type == REDIS_REPLY_STRING ? strtoll (s->str, NULL, 10) : 0;
        (*out)[i].count = n->type == REDIS_REPLY_STRING ? atoi (n->str) : 0;
    }
    freeReplyObject (r);
    return *count && !*out ? -1 : 0;
}

json_t *
sched_slots_free (scheduler_t *self, const sched_service_t *service,
                  const sched_centre_t **centres, size_t centre_count, int64_t from, int64_t to,
                  const char *language, size_t limit, bool *redis_failed)
{
    *redis_failed = false;
    int64_t now = gl_now_ms ();
    //  Each centre contributes at most limit + 1 slots (its earliest); the merge keeps limit.
    s_found_t *found = malloc ((centre_count * (limit + 1) + 1) * sizeof (s_found_t));
    sched_slot_t *buf = malloc ((limit + 1) * sizeof (sched_slot_t));
    json_t *reply = json_object ();
    json_t *unspoken = json_array ();
    if (!found || !buf || !reply || !unspoken) {
        free (found);
        free (buf);
        json_decref (reply);
        json_decref (unspoken);
        *redis_failed = true;
        return NULL;
    }
    size_t found_count = 0;
    for (size_t i = 0; i < centre_count; i++) {
        const sched_centre_t *centre = centres[i];
        if (!sched_config_language_ok (centre, service, language)) {
            json_array_append_new (unspoken, json_string (centre->code));
            continue;
        }
        s_taken_t *taken = NULL;
        size_t taken_count = 0;
        if (s_read_taken (self, centre, service, from, to, &taken, &taken_count) != 0) {
            free (taken);
            *redis_failed = true;
            break;
        }
        s_collect_t c = { .centre = centre, .taken = taken, .taken_count = taken_count,
                          .out = buf, .out_max = limit + 1 };
        sched_slots_each (centre, service, from, to, now, s_collect, &c);
        for (size_t j = 0; j < c.out_count; j++)
            found[found_count++] = (s_found_t) { .slot = buf[j], .centre = centre };
        free (taken);
    }
    free (buf);
    if (*redis_failed) {
        free (found);
        json_decref (reply);
        json_decref (unspoken);
        return NULL;
    }
    qsort (found, found_count, sizeof *found, s_cmp_found);
    json_t *slots = json_array ();
    size_t n = found_count < limit ? found_count : limit;
    for (size_t i = 0; i < n; i++) {
        const s_found_t *f = &found[i];
        json_array_append_new (
            slots, json_pack ("{s:s, s:s, s:s, s:I, s:I, s:i, s:i}", "centre", f->centre->code,
                              "service", service->code, "slot_id", f->slot.slot_id, "start",
                              (json_int_t) f->slot.start, "end", (json_int_t) f->slot.end,
                              "capacity", f->slot.capacity, "free",
                              f->slot.capacity - f->slot.taken));
    }
    json_object_set_new (reply, "slots", slots);
    json_object_set_new (reply, "truncated", json_boolean (found_count > limit));
    json_object_set_new (reply, "centres_without_language", unspoken);
    free (found);
    return reply;
}
