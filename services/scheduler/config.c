/*  config — scheduler's configuration file: reception centres, services, reminders, the callback
    list. The format (docs/operations.md) is INI-like:
        [centre amman-1]
        name = Amman reception centre
        timezone = +03:00
        weekend = fri, sat
        hours = 08:00-15:00
        hours.thu = 08:00-13:00
        holiday = 2026-05-25 independence-day
        special = 2026-02-18..2026-03-19 09:00-14:00 ramadan
        services = registration_renewal, rsd_interview:2
        [service registration_renewal]
        duration = 30m
        capacity = 4
    Everything is checked; the first fault stops the load with "file:line: reason". The file is
    outside input (an operator's typo), so nothing here asserts on it.
*/
#include "scheduler.h"
#include "gl/gl_csv.h"
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_FILE_MAX   (1024 * 1024)
#define S_LINE_MAX   1024

static const char *s_days[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

//  --------------------------------------------------------------------------------------------
//  Dates (Howard Hinnant's civil calendar algorithms)

int32_t
sched_days_from_civil (int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned) (y - era * 400);
    const unsigned doy = (unsigned) ((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t) (era * 146097 + (int) doe - 719468);
}

void
sched_civil_from_days (int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned) (z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int yy = (int) yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yy + (*m <= 2);
}

int
sched_weekday (int32_t days)
{
    int w = (int) ((days + 4) % 7);     //  1970-01-01 was a Thursday
    return w < 0 ? w + 7 : w;
}

int
sched_parse_date (const char *s, int32_t *days)
{
    if (!s || strlen (s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit ((unsigned char) s[i]))
            return -1;
    int y = atoi (s), m = atoi (s + 5), d = atoi (s + 8);
    if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1)
        return -1;
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return -1;
    *days = sched_days_from_civil (y, m, d);
    return 0;
}

int
sched_parse_duration (const char *s, int64_t def_unit_ms, int64_t *out)
{
    if (!s || !isdigit ((unsigned char) *s))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll (s, &end, 10);
    if (errno || n < 0 || n > 1000000000LL)
        return -1;
    int64_t unit = def_unit_ms;
    if (strcmp (end, "ms") == 0)
        unit = 1;
    else if (strcmp (end, "s") == 0)
        unit = 1000;
    else if (strcmp (end, "m") == 0)
        unit = 60000;
    else if (strcmp (end, "h") == 0)
        unit = 3600000;
    else if (strcmp (end, "d") == 0)
        unit = SCHED_DAY_MS;
    else if (*end)
        return -1;
    if (n > INT64_MAX / unit)
        return -1;
    *out = n * unit;
    return 0;
}

//  "HH:MM" into minutes; 24:00 only when allow_24.
static int
s_parse_hhmm (const char *s, bool allow_24, int *out)
{
    if (strlen (s) != 5 || s[2] != ':' || !isdigit ((unsigned char) s[0])
        || !isdigit ((unsigned char) s[1]) || !isdigit ((unsigned char) s[3])
        || !isdigit ((unsigned char) s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
        return -1;
    *out = h * 60 + m;
    return 0;
}

int
sched_parse_hours (const char *s, sched_hours_t *hours)
{
    if (!s || strlen (s) != 11 || s[5] != '-')
        return -1;
    char a[6], b[6];
    memcpy (a, s, 5);
    a[5] = 0;
    memcpy (b, s + 6, 5);
    b[5] = 0;
    if (s_parse_hhmm (a, false, &hours->open) || s_parse_hhmm (b, true, &hours->close))
        return -1;
    return hours->open < hours->close ? 0 : -1;
}

//  "+03:00" / "-05:30" / "Z" into minutes.
static int
s_parse_tz (const char *s, int *out)
{
    if (strcmp (s, "Z") == 0 || strcmp (s, "UTC") == 0) {
        *out = 0;
        return 0;
    }
    if (strlen (s) != 6 || (s[0] != '+' && s[0] != '-'))
        return -1;
    int m;
    if (s_parse_hhmm (s + 1, false, &m) || m > 14 * 60)
        return -1;
    *out = s[0] == '-' ? -m : m;
    return 0;
}

bool
sched_code_valid (const char *s, size_t max)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum ((unsigned char) s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

//  Language codes: "ar", "fr", "ar-SY", "prs" (2..3 lowercase letters, optional -XX region).
bool
sched_lang_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    size_t i = 0;
    while (i < n && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return false;
    if (i == n)
        return true;
    if (s[i] != '-' || n - i - 1 < 2 || n - i - 1 > 4)
        return false;
    for (size_t j = i + 1; j < n; j++)
        if (!isalnum ((unsigned char) s[j]))
            return false;
    return true;
}

//  --------------------------------------------------------------------------------------------
//  The parser

typedef struct {
    sched_config_t *config;
    const char *name;
    int line;
    char *err;
    size_t errlen;
    enum { S_NONE, S_REMINDERS, S_CALLBACKS, S_CENTRE, S_SERVICE } section;
    sched_centre_t *centre;
    sched_service_t *service;
    int services_line[SCHED_CENTRES_MAX];   //  where each centre listed its services
    bool seen[8];                           //  keys given once (per section)
} s_parser_t;

static int
s_fail (s_parser_t *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    snprintf (p->err, p->errlen, "%s:%d: %s", p->name, p->line, msg);
    return -1;
}

static char *
s_trim (char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen (s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

//  Split value on commas into trimmed items (in place). Returns the count, -1 when over max or
//  an item is empty.
static int
s_split (char *value, char **items, int max)
{
    int n = 0;
    if (!*value)
        return 0;
    //  strtok_r would skip empty items: walk by hand.
    char *p = value;
    while (p) {
        char *comma = strchr (p, ',');
        if (comma)
            *comma = 0;
        char *item = s_trim (p);
        if (!*item || n == max)
            return -1;
        items[n++] = item;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

static int
s_text (s_parser_t *p, const char *value, char *out, size_t outlen)
{
    if (!*value)
        return s_fail (p, "empty value");
    if (strlen (value) >= outlen)
        return s_fail (p, "value longer than %zu bytes", outlen - 1);
    for (const unsigned char *c = (const unsigned char *) value; *c; c++)
        if (*c < 0x20)
            return s_fail (p, "control character in value");
    snprintf (out, outlen, "%s", value);
    return 0;
}

static int
s_lang_list (s_parser_t *p, char *value, char langs[][8], size_t *count)
{
    char *items[SCHED_LANG_MAX];
    int n = s_split (value, items, SCHED_LANG_MAX);
    if (n <= 0)
        return s_fail (p, "a list of 1..%d language codes is expected", SCHED_LANG_MAX);
    for (int i = 0; i < n; i++) {
        if (!sched_lang_valid (items[i]))
            return s_fail (p, "'%.16s' is not a language code (ar, fr, ar-SY)", items[i]);
        snprintf (langs[i], 8, "%s", items[i]);
    }
    *count = (size_t) n;
    return 0;
}

static int
s_days_mask (s_parser_t *p, char *value, uint8_t *mask)
{
    char *items[7];
    int n = s_split (value, items, 7);
    if (n < 0)
        return s_fail (p, "a list of weekdays (sun, mon ... sat) is expected");
    *mask = 0;
    for (int i = 0; i < n; i++) {
        int d = 0;
        while (d < 7 && strcasecmp (items[i], s_days[d]) != 0)
            d++;
        if (d == 7)
            return s_fail (p, "'%.16s' is not a weekday (sun, mon ... sat)", items[i]);
        *mask |= (uint8_t) (1u << d);
    }
    return 0;
}

static int
s_localised (s_parser_t *p, const char *key, const char *value, sched_name_t *names,
             size_t *count)
{
    const char *lang = strchr (key, '.') + 1;
    if (!sched_lang_valid (lang))
        return s_fail (p, "'%s' is not a language code", lang);
    if (*count == SCHED_NAMES_MAX)
        return s_fail (p, "more than %d translations", SCHED_NAMES_MAX);
    for (size_t i = 0; i < *count; i++)
        if (strcmp (names[i].lang, lang) == 0)
            return s_fail (p, "translation '%s' given twice", lang);
    snprintf (names[*count].lang, sizeof names[*count].lang, "%s", lang);
    if (s_text (p, value, names[*count].text, sizeof names[*count].text))
        return -1;
    (*count)++;
    return 0;
}

static int
s_once (s_parser_t *p, int slot, const char *key)
{
    if (p->seen[slot])
        return s_fail (p, "'%s' given twice in this section", key);
    p->seen[slot] = true;
    return 0;
}

static int
s_centre_key (s_parser_t *p, const char *key, char *value)
{
    sched_centre_t *c = p->centre;
    if (strcmp (key, "name") == 0)
        return s_once (p, 0, key) ? -1 : s_text (p, value, c->name, sizeof c->name);
    if (strncmp (key, "name.", 5) == 0)
        return s_localised (p, key, value, c->names, &c->name_count);
    if (strcmp (key, "address") == 0)
        return s_once (p, 1, key) ? -1 : s_text (p, value, c->address, sizeof c->address);
    if (strncmp (key, "address.", 8) == 0)
        return s_localised (p, key, value, c->addresses, &c->address_count);
    if (strcmp (key, "timezone") == 0) {
        if (s_once (p, 2, key))
            return -1;
        return s_parse_tz (value, &c->tz_offset_min)
                   ? s_fail (p, "timezone must be an offset like +03:00")
                   : 0;
    }
    if (strcmp (key, "weekend") == 0) {
        if (s_once (p, 3, key) || s_days_mask (p, value, &c->weekend))
            return -1;
        return c->weekend == 0x7f ? s_fail (p, "a centre closed every day of the week") : 0;
    }
    if (strcmp (key, "hours") == 0 || strncmp (key, "hours.", 6) == 0) {
        sched_hours_t h;
        if (sched_parse_hours (value, &h))
            return s_fail (p, "hours must be HH:MM-HH:MM, opening before closing");
        if (key[5] == 0) {
            if (s_once (p, 4, key))
                return -1;
            for (int d = 0; d < 7; d++)
                c->hours[d] = h;
            return 0;
        }
        for (int d = 0; d < 7; d++)
            if (strcmp (key + 6, s_days[d]) == 0) {
                c->hours[d] = h;
                return 0;
            }
        return s_fail (p, "'%s': the day must be sun, mon ... sat", key);
    }
    if (strcmp (key, "holiday") == 0) {
        //  "YYYY-MM-DD [code]" or "YYYY-MM-DD..YYYY-MM-DD [code]"
        char from[11] = "", to[11] = "";
        if (strlen (value) < 10)
            return s_fail (p, "holiday must be YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD");
        memcpy (from, value, 10);
        const char *rest = value + 10;
        if (strncmp (rest, "..", 2) == 0) {
            if (strlen (rest) < 12)
                return s_fail (p, "holiday range must be YYYY-MM-DD..YYYY-MM-DD");
            memcpy (to, rest + 2, 10);
            rest += 12;
        }
        else
            memcpy (to, from, 11);
        if (*rest && *rest != ' ' && *rest != '\t')
            return s_fail (p, "holiday must be YYYY-MM-DD[..YYYY-MM-DD] [code]");
        int32_t a, b;
        if (sched_parse_date (from, &a) || sched_parse_date (to, &b) || b < a)
            return s_fail (p, "holiday dates must be valid YYYY-MM-DD, in order");
        if (b - a > 60)
            return s_fail (p, "a holiday range longer than 60 days");
        for (int32_t d = a; d <= b; d++) {
            if (c->holiday_count == SCHED_HOLIDAYS_MAX)
                return s_fail (p, "more than %d holidays", SCHED_HOLIDAYS_MAX);
            c->holidays[c->holiday_count++] = d;
        }
        return 0;
    }
    if (strcmp (key, "special") == 0) {
        //  "YYYY-MM-DD..YYYY-MM-DD HH:MM-HH:MM code" or "... closed code"
        if (c->special_count == SCHED_SPECIALS_MAX)
            return s_fail (p, "more than %d special periods", SCHED_SPECIALS_MAX);
        char from[11], to[11], what[16], code[64];
        int n = sscanf (value, "%10[0-9-]..%10[0-9-] %15s %63s", from, to, what, code);
        if (n != 4)
            return s_fail (p, "special must be YYYY-MM-DD..YYYY-MM-DD HH:MM-HH:MM|closed code");
        sched_special_t *s = &c->specials[c->special_count];
        if (sched_parse_date (from, &s->from_day) || sched_parse_date (to, &s->to_day)
            || s->to_day < s->from_day)
            return s_fail (p, "special period dates must be valid YYYY-MM-DD, in order");
        if (s->to_day - s->from_day > 366)
            return s_fail (p, "a special period longer than a year");
        if (strcmp (what, "closed") == 0)
            s->closed = true;
        else if (sched_parse_hours (what, &s->hours))
            return s_fail (p, "special hours must be HH:MM-HH:MM or closed");
        if (!sched_code_valid (code, SCHED_CODE_MAX))
            return s_fail (p, "special period code must be 1..32 of A-Z a-z 0-9 _ . -");
        snprintf (s->code, sizeof s->code, "%.32s", code);
        c->special_count++;
        return 0;
    }
    if (strcmp (key, "languages") == 0)
        return s_once (p, 5, key) ? -1 : s_lang_list (p, value, c->languages, &c->language_count);
    if (strcmp (key, "services") == 0) {
        if (s_once (p, 6, key))
            return -1;
        char *items[SCHED_SERVICES_MAX];
        int n = s_split (value, items, SCHED_SERVICES_MAX);
        if (n <= 0)
            return s_fail (p, "a list of 1..%d service codes is expected", SCHED_SERVICES_MAX);
        for (int i = 0; i < n; i++) {
            char *colon = strchr (items[i], ':');
            int cap = 0;
            if (colon) {
                *colon = 0;
                char *end;
                long v = strtol (colon + 1, &end, 10);
                if (*end || end == colon + 1 || v < 1 || v > 1000)
                    return s_fail (p, "capacity after ':' must be 1..1000");
                cap = (int) v;
            }
            if (!sched_code_valid (items[i], SCHED_CODE_MAX))
                return s_fail (p, "service code must be 1..32 of A-Z a-z 0-9 _ . -");
            for (size_t j = 0; j < c->service_count; j++)
                if (strcmp (c->services[j], items[i]) == 0)
                    return s_fail (p, "service '%s' listed twice", items[i]);
            snprintf (c->services[c->service_count], SCHED_CODE_MAX + 1, "%s", items[i]);
            c->capacity[c->service_count++] = cap;
        }
        p->services_line[p->config->centre_count - 1] = p->line;
        return 0;
    }
    return s_fail (p, "unknown key '%.32s' in a centre", key);
}

static int
s_service_key (s_parser_t *p, const char *key, char *value)
{
    sched_service_t *s = p->service;
    int64_t ms;
    if (strcmp (key, "name") == 0)
        return s_once (p, 0, key) ? -1 : s_text (p, value, s->name, sizeof s->name);
    if (strncmp (key, "name.", 5) == 0)
        return s_localised (p, key, value, s->names, &s->name_count);
    if (strcmp (key, "duration") == 0) {
        if (s_once (p, 1, key))
            return -1;
        if (sched_parse_duration (value, 60000, &ms) || ms % 60000 || ms < 5 * 60000
            || ms > 8 * 3600000)
            return s_fail (p, "duration must be whole minutes, 5m..8h");
        s->duration_min = (int) (ms / 60000);
        return 0;
    }
    if (strcmp (key, "capacity") == 0) {
        if (s_once (p, 2, key))
            return -1;
        char *end;
        long v = strtol (value, &end, 10);
        if (*end || end == value || v < 1 || v > 1000)
            return s_fail (p, "capacity must be 1..1000");
        s->capacity = (int) v;
        return 0;
    }
    if (strcmp (key, "lead") == 0) {
        if (s_once (p, 3, key))
            return -1;
        if (sched_parse_duration (value, 3600000, &ms) || ms > 365 * SCHED_DAY_MS)
            return s_fail (p, "lead must be a duration up to 365d");
        s->lead_ms = ms;
        return 0;
    }
    if (strcmp (key, "horizon") == 0) {
        if (s_once (p, 4, key))
            return -1;
        if (sched_parse_duration (value, SCHED_DAY_MS, &ms) || ms < 3600000
            || ms > 730 * SCHED_DAY_MS)
            return s_fail (p, "horizon must be a duration from 1h to 730d");
        s->horizon_ms = ms;
        return 0;
    }
    if (strcmp (key, "languages") == 0)
        return s_once (p, 5, key) ? -1 : s_lang_list (p, value, s->languages, &s->language_count);
    return s_fail (p, "unknown key '%.32s' in a service", key);
}

static int
s_reminders_key (s_parser_t *p, const char *key, char *value)
{
    sched_config_t *c = p->config;
    if (strcmp (key, "before") == 0) {
        if (s_once (p, 0, key))
            return -1;
        char *items[SCHED_REMINDERS_MAX];
        c->reminder_count = 0;         //  the file's list replaces the defaults
        int n = s_split (value, items, SCHED_REMINDERS_MAX);
        if (n < 0)
            return s_fail (p, "before must list at most %d durations", SCHED_REMINDERS_MAX);
        for (int i = 0; i < n; i++) {
            int64_t ms;
            if (sched_parse_duration (items[i], 3600000, &ms) || ms < 60000
                || ms > 30 * SCHED_DAY_MS)
                return s_fail (p, "a reminder must be 1m..30d before the start");
            for (size_t j = 0; j < c->reminder_count; j++)
                if (c->reminders[j] == ms)
                    return s_fail (p, "the same reminder time twice");
            c->reminders[c->reminder_count++] = ms;
        }
        //  descending: the earliest reminder first
        for (size_t i = 1; i < c->reminder_count; i++)
            for (size_t j = i; j > 0 && c->reminders[j] > c->reminders[j - 1]; j--) {
                int64_t t = c->reminders[j];
                c->reminders[j] = c->reminders[j - 1];
                c->reminders[j - 1] = t;
            }
        return 0;
    }
    if (strcmp (key, "channels") == 0) {
        if (s_once (p, 1, key))
            return -1;
        char copy[S_LINE_MAX];
        snprintf (copy, sizeof copy, "%s", value);
        char *items[5];
        int n = s_split (copy, items, 5);
        if (n <= 0)
            return s_fail (p, "channels must list 1..5 of sms, email, webhook, console, voice");
        c->channels[0] = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp (items[i], "sms") && strcmp (items[i], "email")
                && strcmp (items[i], "webhook") && strcmp (items[i], "console")
                && strcmp (items[i], "voice"))
                return s_fail (p, "'%.16s' is not a channel (sms, email, webhook, console, voice)",
                               items[i]);
            size_t len = strlen (c->channels);
            snprintf (c->channels + len, sizeof c->channels - len, "%s%s", i ? "," : "",
                      items[i]);
        }
        return 0;
    }
    return s_fail (p, "unknown key '%.32s' in [reminders]", key);
}

static int
s_callbacks_key (s_parser_t *p, const char *key, char *value)
{
    sched_config_t *c = p->config;
    int64_t ms;
    if (strcmp (key, "enabled") == 0) {
        if (strcmp (value, "yes") == 0 || strcmp (value, "true") == 0 || strcmp (value, "1") == 0)
            c->callbacks = true;
        else if (strcmp (value, "no") == 0 || strcmp (value, "false") == 0
                 || strcmp (value, "0") == 0)
            c->callbacks = false;
        else
            return s_fail (p, "enabled must be yes or no");
        return 0;
    }
    if (strcmp (key, "min_wait") == 0) {
        if (sched_parse_duration (value, 1000, &ms) || ms > 3600000)
            return s_fail (p, "min_wait must be a duration up to 1h");
        c->callback_min_wait_ms = ms;
        return 0;
    }
    if (strcmp (key, "max_attempts") == 0) {
        char *end;
        long v = strtol (value, &end, 10);
        if (*end || end == value || v < 1 || v > 20)
            return s_fail (p, "max_attempts must be 1..20");
        c->callback_max_attempts = (int) v;
        return 0;
    }
    if (strcmp (key, "spacing") == 0) {
        if (sched_parse_duration (value, 60000, &ms) || ms < 60000 || ms > 7 * SCHED_DAY_MS)
            return s_fail (p, "spacing must be 1m..7d");
        c->callback_spacing_ms = ms;
        return 0;
    }
    if (strcmp (key, "hours") == 0)
        return sched_parse_hours (value, &c->callback_hours)
                   ? s_fail (p, "hours must be HH:MM-HH:MM, opening before closing")
                   : 0;
    if (strcmp (key, "timezone") == 0)
        return s_parse_tz (value, &c->callback_tz_offset_min)
                   ? s_fail (p, "timezone must be an offset like +03:00")
                   : 0;
    if (strcmp (key, "days") == 0) {
        if (s_days_mask (p, value, &c->callback_days))
            return -1;
        return c->callback_days ? 0 : s_fail (p, "days must list at least one weekday");
    }
    return s_fail (p, "unknown key '%.32s' in [callbacks]", key);
}

static int
s_section (s_parser_t *p, char *line)
{
    size_t n = strlen (line);
    if (line[n - 1] != ']')
        return s_fail (p, "a section header must end with ']'");
    line[n - 1] = 0;
    char *name = s_trim (line + 1);
    memset (p->seen, 0, sizeof p->seen);
    p->centre = NULL;
    p->service = NULL;
    sched_config_t *c = p->config;
    if (strcmp (name, "reminders") == 0) {
        p->section = S_REMINDERS;
        return 0;
    }
    if (strcmp (name, "callbacks") == 0) {
        p->section = S_CALLBACKS;
        return 0;
    }
    char kind[16], code[64], more;
    if (sscanf (name, "%15s %63s %c", kind, code, &more) != 2)
        return s_fail (p, "unknown section (expected [centre CODE], [service CODE], [reminders], "
                          "[callbacks])");
    if (!sched_code_valid (code, SCHED_CODE_MAX))
        return s_fail (p, "code must be 1..32 of A-Z a-z 0-9 _ . -");
    if (strcmp (kind, "centre") == 0) {
        if (sched_config_centre (c, code))
            return s_fail (p, "centre '%s' defined twice", code);
        if (c->centre_count == SCHED_CENTRES_MAX)
            return s_fail (p, "more than %d centres", SCHED_CENTRES_MAX);
        p->centre = &c->centres[c->centre_count++];
        memset (p->centre, 0, sizeof *p->centre);
        snprintf (p->centre->code, sizeof p->centre->code, "%.32s", code);
        p->services_line[c->centre_count - 1] = p->line;
        p->section = S_CENTRE;
        return 0;
    }
    if (strcmp (kind, "service") == 0) {
        if (sched_config_service (c, code))
            return s_fail (p, "service '%s' defined twice", code);
        if (c->service_count == SCHED_SERVICES_MAX)
            return s_fail (p, "more than %d services", SCHED_SERVICES_MAX);
        p->service = &c->services[c->service_count++];
        memset (p->service, 0, sizeof *p->service);
        snprintf (p->service->code, sizeof p->service->code, "%.32s", code);
        p->service->duration_min = 30;
        p->service->capacity = 1;
        p->service->lead_ms = 3600000;
        p->service->horizon_ms = 60 * SCHED_DAY_MS;
        p->section = S_SERVICE;
        return 0;
    }
    return s_fail (p, "unknown section kind '%.15s' (centre, service, reminders, callbacks)",
                   kind);
}

static int
s_line (s_parser_t *p, char *line)
{
    line = s_trim (line);
    if (!*line || *line == '#' || *line == ';')
        return 0;
    if (*line == '[')
        return s_section (p, line);
    char *eq = strchr (line, '=');
    if (!eq)
        return s_fail (p, "expected 'key = value'");
    *eq = 0;
    char *key = s_trim (line), *value = s_trim (eq + 1);
    if (!*key)
        return s_fail (p, "empty key");
    switch (p->section) {
        case S_CENTRE:
            return s_centre_key (p, key, value);
        case S_SERVICE:
            return s_service_key (p, key, value);
        case S_REMINDERS:
            return s_reminders_key (p, key, value);
        case S_CALLBACKS:
            return s_callbacks_key (p, key, value);
        default:
            return s_fail (p, "'%.32s' outside a section", key);
    }
}

static int
s_cmp_day (const void *a, const void *b)
{
    int32_t x = *(const int32_t *) a, y = *(const int32_t *) b;
    return x < y ? -1 : x > y;
}

//  Whole-file checks, each naming the line it is about.
static int
s_finish (s_parser_t *p)
{
    sched_config_t *c = p->config;
    if (c->centre_count == 0)
        return s_fail (p, "no [centre CODE] section");
    if (c->service_count == 0)
        return s_fail (p, "no [service CODE] section");
    for (size_t i = 0; i < c->centre_count; i++) {
        sched_centre_t *centre = &c->centres[i];
        p->line = p->services_line[i];
        if (!*centre->name)
            return s_fail (p, "centre '%s' has no name", centre->code);
        if (!*centre->address)
            return s_fail (p, "centre '%s' has no address", centre->code);
        if (centre->service_count == 0)
            return s_fail (p, "centre '%s' lists no services", centre->code);
        for (size_t j = 0; j < centre->service_count; j++)
            if (!sched_config_service (c, centre->services[j]))
                return s_fail (p, "centre '%s' lists unknown service '%s'", centre->code,
                               centre->services[j]);
        bool open = false;
        for (int d = 0; d < 7; d++)
            if (!(centre->weekend & (1u << d)) && centre->hours[d].close > centre->hours[d].open)
                open = true;
        if (!open)
            return s_fail (p, "centre '%s' has no opening hours on a working day", centre->code);
        qsort (centre->holidays, centre->holiday_count, sizeof (int32_t), s_cmp_day);
    }
    for (size_t i = 0; i < c->service_count; i++)
        if (!*c->services[i].name) {
            snprintf (p->err, p->errlen, "%s: service '%s' has no name", p->name,
                      c->services[i].code);
            return -1;
        }
    return 0;
}

sched_config_t *
sched_config_parse (const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    sched_config_t *config = calloc (1, sizeof *config);
    if (config) {
        config->centres = calloc (SCHED_CENTRES_MAX, sizeof (sched_centre_t));
        config->services = calloc (SCHED_SERVICES_MAX, sizeof (sched_service_t));
    }
    s_parser_t *p = calloc (1, sizeof *p);
    if (!config || !config->centres || !config->services || !p) {
        snprintf (err, errlen, "%s: out of memory", name);
        free (p);
        sched_config_destroy (&config);
        return NULL;
    }
    //  Defaults: two reminders, SMS; the callback list on with common call-centre values.
    config->reminders[0] = 48 * 3600000LL;
    config->reminders[1] = 2 * 3600000LL;
    config->reminder_count = 2;
    snprintf (config->channels, sizeof config->channels, "sms");
    config->callbacks = true;
    config->callback_min_wait_ms = 10000;
    config->callback_max_attempts = 3;
    config->callback_spacing_ms = 30 * 60000;
    config->callback_hours = (sched_hours_t) { 9 * 60, 18 * 60 };
    config->callback_days = 0x7f;
    *p = (s_parser_t) { .config = config, .name = name, .err = err, .errlen = errlen };

    int rc = 0;
    size_t pos = 0;
    char line[S_LINE_MAX + 2];
    while (pos < len && rc == 0) {
        p->line++;
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        size_t n = end - pos;
        if (n > S_LINE_MAX)
            rc = s_fail (p, "line longer than %d bytes", S_LINE_MAX);
        else if (memchr (text + pos, 0, n))
            rc = s_fail (p, "NUL byte");
        else if (!gl_csv_utf8_valid (text + pos, n))
            rc = s_fail (p, "not UTF-8");
        else {
            memcpy (line, text + pos, n);
            line[n] = 0;
            rc = s_line (p, line);
        }
        pos = end + 1;
    }
    if (rc == 0) {
        p->line++;
        rc = s_finish (p);
    }
    free (p);
    if (rc != 0)
        sched_config_destroy (&config);
    return config;
}

sched_config_t *
sched_config_load (const char *path, char *err, size_t errlen)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        snprintf (err, errlen, "%s:0: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    char *buf = malloc (S_FILE_MAX + 1);
    size_t len = buf ? fread (buf, 1, S_FILE_MAX + 1, f) : 0;
    bool ioerr = ferror (f);
    fclose (f);
    if (!buf || ioerr || len > S_FILE_MAX) {
        snprintf (err, errlen, "%s:0: %s", path,
                  !buf ? "out of memory" : ioerr ? "read error" : "file larger than 1 MiB");
        free (buf);
        return NULL;
    }
    sched_config_t *config = sched_config_parse (buf, len, path, err, errlen);
    free (buf);
    return config;
}

void
sched_config_destroy (sched_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->centres);
    free ((*self_p)->services);
    free (*self_p);
    *self_p = NULL;
}

const sched_centre_t *
sched_config_centre (const sched_config_t *self, const char *code)
{
    for (size_t i = 0; code && i < self->centre_count; i++)
        if (strcmp (self->centres[i].code, code) == 0)
            return &self->centres[i];
    return NULL;
}

const sched_service_t *
sched_config_service (const sched_config_t *self, const char *code)
{
    for (size_t i = 0; code && i < self->service_count; i++)
        if (strcmp (self->services[i].code, code) == 0)
            return &self->services[i];
    return NULL;
}

int
sched_config_capacity (const sched_centre_t *centre, const sched_service_t *service)
{
    for (size_t i = 0; i < centre->service_count; i++)
        if (strcmp (centre->services[i], service->code) == 0)
            return centre->capacity[i] ? centre->capacity[i] : service->capacity;
    return 0;
}

static const char *
s_localised_text (const sched_name_t *names, size_t count, const char *lang, const char *def)
{
    if (lang)
        for (size_t i = 0; i < count; i++)
            if (strncmp (names[i].lang, lang, strlen (names[i].lang)) == 0)
                return names[i].text;
    return def;
}

const char *
sched_centre_name (const sched_centre_t *centre, const char *lang)
{
    return s_localised_text (centre->names, centre->name_count, lang, centre->name);
}

const char *
sched_centre_address (const sched_centre_t *centre, const char *lang)
{
    return s_localised_text (centre->addresses, centre->address_count, lang, centre->address);
}

const char *
sched_service_name (const sched_service_t *service, const char *lang)
{
    return s_localised_text (service->names, service->name_count, lang, service->name);
}

//  "ar-SY" matches "ar" and "ar-SY"; "ar" matches "ar" only (an interpreter for one regional
//  variant speaks the base language).
static bool
s_lang_in (const char langs[][8], size_t count, const char *lang)
{
    size_t base = strcspn (lang, "-");
    for (size_t i = 0; i < count; i++)
        if (strcmp (langs[i], lang) == 0
            || (strlen (langs[i]) == base && strncmp (langs[i], lang, base) == 0))
            return true;
    return false;
}

bool
sched_config_language_ok (const sched_centre_t *centre, const sched_service_t *service,
                          const char *lang)
{
    if (!lang || !*lang)
        return true;
    if (service->language_count && !s_lang_in (service->languages, service->language_count, lang))
        return false;
    return centre->language_count == 0
           || s_lang_in (centre->languages, centre->language_count, lang);
}
