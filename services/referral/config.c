/*  config — referral's configuration file (docs/operations.md, "The configuration
    file") and the business clock arithmetic.

    One directive per line, words separated by spaces or tabs, '#' starts a comment line:
        timezone +03:00
        hours mon-fri 08:00-17:00
        unit <code> [sensitive] [24x7] [focal=<user id>] [supervisor=<user id>]
        member <unit> <user id> [<user id> …]
        roster <unit> <days> <HH:MM>-<HH:MM> <primary user id> [<backup user id>]
        partner <code> unit=<unit> [email=<address>] [webhook=<https url>] [language=<code>]
        sensitive_categories <category> [<category> …]
        rule <category|*> <location|*> <language|*> <priority|*> <unit|partner:<code>>
        default <unit|partner:<code>>
        sla <unit|*> <priority|*> ack=<duration> resolve=<duration>
        escalation focal=<duration> supervisor=<duration>
        emergency <unit> ack=<duration> repeat=<duration>
        ack_link <https url> ttl=<duration>
        signing_key <32..128 printable characters>
    Any error stops the load with "file:line: reason"; nothing from outside is trusted.
*/
#include "referral.h"
#include "gl/gl_log.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WORDS_MAX     40
#define S_DAY_MS        INT64_C(86400000)
#define S_MIN_MS        INT64_C(60000)
#define S_SEARCH_DAYS   3700                //  business arithmetic looks at most this far

static const char *const s_priorities[] = { "low", "normal", "high", "emergency" };

const char *
rf_priority_name (rf_priority_t p)
{
    return p >= 0 && p < RF_PRIORITY__COUNT ? s_priorities[p] : "unknown";
}

int
rf_priority_parse (const char *s)
{
    for (int i = 0; s && i < RF_PRIORITY__COUNT; i++)
        if (strcmp (s, s_priorities[i]) == 0)
            return i;
    return -1;
}

bool
rf_code_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > RF_CODE_MAX || !(islower ((unsigned char) s[0]) || isdigit ((unsigned char) s[0])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower ((unsigned char) s[i]) || isdigit ((unsigned char) s[i]) || s[i] == '_'
              || s[i] == '-'))
            return false;
    return true;
}

bool
rf_category_valid (const char *s)
{
    if (!s)
        return false;
    const char *dot = strchr (s, '.');
    if (!dot)
        return rf_code_valid (s);
    char head[RF_CODE_MAX + 2];
    size_t n = (size_t) (dot - s);
    if (n > RF_CODE_MAX)
        return false;
    memcpy (head, s, n);
    head[n] = 0;
    return rf_code_valid (head) && rf_code_valid (dot + 1);
}

int64_t
rf_parse_duration (const char *s)
{
    if (!s || !isdigit ((unsigned char) s[0]))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll (s, &end, 10);
    if (errno || end == s || end[0] == 0 || end[1] != 0 || v <= 0)
        return -1;
    int64_t unit = end[0] == 's' ? 1000 : end[0] == 'm' ? S_MIN_MS : end[0] == 'h' ? 60 * S_MIN_MS
                 : end[0] == 'd' ? S_DAY_MS : 0;
    if (!unit || v > 365 * S_DAY_MS / unit)
        return -1;
    return (int64_t) v * unit;
}

//  --------------------------------------------------------------------------------------------
//  Parsing

typedef struct {
    rf_config_t *cfg;
    const char *name;
    int line;
    char *err;
    size_t errlen;
    bool have_default, have_emergency, have_escalation;
    int emergency_line;
} s_parser_t;

static int
s_fail (s_parser_t *p, const char *fmt, ...)
{
    char reason[200];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (reason, sizeof reason, fmt, ap);
    va_end (ap);
    snprintf (p->err, p->errlen, "%s:%d: %s", p->name, p->line, reason);
    return -1;
}

static bool
s_uid_valid (const char *s)
{
    return gl_id_valid (s);
}

//  "key=value": the value when w starts with key=, else NULL.
static const char *
s_kv (const char *w, const char *key)
{
    size_t n = strlen (key);
    return strncmp (w, key, n) == 0 && w[n] == '=' ? w + n + 1 : NULL;
}

//  Copy a value that must fit; -1 when it does not.
static int
s_copy (char *dst, size_t cap, const char *src)
{
    size_t n = strlen (src);
    if (n >= cap)
        return -1;
    memcpy (dst, src, n + 1);
    return 0;
}

static int
s_hhmm (const char *s, size_t n, int *out)
{
    if (n != 5 || !isdigit ((unsigned char) s[0]) || !isdigit ((unsigned char) s[1]) || s[2] != ':'
        || !isdigit ((unsigned char) s[3]) || !isdigit ((unsigned char) s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    *out = h * 60 + m;
    return 0;
}

static int
s_day (const char *s, size_t n)
{
    static const char *const names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
    for (int i = 0; i < 7; i++)
        if (n == 3 && strncmp (s, names[i], 3) == 0)
            return i;
    return -1;
}

//  "daily", "mon-fri", "sat,sun", "mon,wed-fri" -> a bit set; -1 when malformed.
static int
s_days (const char *s)
{
    if (strcmp (s, "daily") == 0)
        return 0x7f;
    int bits = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr (p, ',');
        size_t n = comma ? (size_t) (comma - p) : strlen (p);
        const char *dash = memchr (p, '-', n);
        int a, b;
        if (dash) {
            a = s_day (p, (size_t) (dash - p));
            b = s_day (dash + 1, n - (size_t) (dash - p) - 1);
        }
        else
            a = b = s_day (p, n);
        if (a < 0 || b < 0)
            return -1;
        for (int d = a;; d = (d + 1) % 7) {
            bits |= 1 << d;
            if (d == b)
                break;
        }
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return -1;
    }
    return bits ? bits : -1;
}

static int
s_window (s_parser_t *p, const char *days, const char *span, rf_window_t *w)
{
    int bits = s_days (days);
    if (bits < 0)
        return s_fail (p, "days must be like mon-fri, sat,sun or daily");
    const char *dash = strchr (span, '-');
    if (!dash || s_hhmm (span, (size_t) (dash - span), &w->start_min) < 0
        || s_hhmm (dash + 1, strlen (dash + 1), &w->end_min) < 0)
        return s_fail (p, "times must be like 08:00-17:00");
    if (w->start_min == w->end_min)
        return s_fail (p, "an empty time window");
    w->days = (uint8_t) bits;
    return 0;
}

static rf_unit_t *
s_unit (rf_config_t *cfg, const char *code)
{
    for (size_t i = 0; i < cfg->n_units; i++)
        if (strcmp (cfg->units[i].code, code) == 0)
            return &cfg->units[i];
    return NULL;
}

static int
s_unit_ref (s_parser_t *p, const char *code, rf_unit_t **out)
{
    rf_unit_t *u = s_unit (p->cfg, code);
    if (!u)
        return s_fail (p, "unknown unit '%.32s' (declare it with a unit line first)", code);
    if (out)
        *out = u;
    return 0;
}

static int
s_on_unit (s_parser_t *p, char **w, int n)
{
    rf_config_t *cfg = p->cfg;
    if (n < 2 || !rf_code_valid (w[1]))
        return s_fail (p, "unit needs a code ([a-z0-9_-], at most 32)");
    if (s_unit (cfg, w[1]))
        return s_fail (p, "unit '%s' declared twice", w[1]);
    if (cfg->n_units == RF_UNITS_MAX)
        return s_fail (p, "more than %d units", RF_UNITS_MAX);
    rf_unit_t *u = &cfg->units[cfg->n_units];
    memset (u, 0, sizeof *u);
    strcpy (u->code, w[1]);
    u->line = p->line;
    for (int i = 2; i < n; i++) {
        const char *v;
        if (strcmp (w[i], "sensitive") == 0)
            u->sensitive = true;
        else if (strcmp (w[i], "24x7") == 0)
            u->always_open = true;
        else if ((v = s_kv (w[i], "focal"))) {
            if (!s_uid_valid (v))
                return s_fail (p, "focal must be a user id (32 hex)");
            strcpy (u->focal, v);
        }
        else if ((v = s_kv (w[i], "supervisor"))) {
            if (!s_uid_valid (v))
                return s_fail (p, "supervisor must be a user id (32 hex)");
            strcpy (u->supervisor, v);
        }
        else
            return s_fail (p, "unknown unit option '%.40s'", w[i]);
    }
    cfg->n_units++;
    return 0;
}

static int
s_on_member (s_parser_t *p, char **w, int n)
{
    rf_unit_t *u = NULL;
    if (n < 3)
        return s_fail (p, "member needs a unit and at least one user id");
    if (s_unit_ref (p, w[1], &u) < 0)
        return -1;
    for (int i = 2; i < n; i++) {
        if (!s_uid_valid (w[i]))
            return s_fail (p, "word %d is not a user id (32 hex)", i + 1);
        if (u->n_members == RF_MEMBERS_MAX)
            return s_fail (p, "more than %d members in unit %s", RF_MEMBERS_MAX, u->code);
        strcpy (u->members[u->n_members++], w[i]);
    }
    return 0;
}

static int
s_on_roster (s_parser_t *p, char **w, int n)
{
    rf_config_t *cfg = p->cfg;
    if (n < 5 || n > 6)
        return s_fail (p, "roster needs: unit days HH:MM-HH:MM primary [backup]");
    if (s_unit_ref (p, w[1], NULL) < 0)
        return -1;
    if (cfg->n_roster == RF_ROSTER_MAX)
        return s_fail (p, "more than %d roster lines", RF_ROSTER_MAX);
    rf_roster_t *r = &cfg->roster[cfg->n_roster];
    memset (r, 0, sizeof *r);
    if (s_window (p, w[2], w[3], &r->window) < 0)
        return -1;
    if (!s_uid_valid (w[4]) || (n == 6 && !s_uid_valid (w[5])))
        return s_fail (p, "primary and backup must be user ids (32 hex)");
    strcpy (r->unit, w[1]);
    strcpy (r->primary, w[4]);
    if (n == 6)
        strcpy (r->backup, w[5]);
    r->line = p->line;
    cfg->n_roster++;
    return 0;
}

static bool
s_url_valid (const char *s, const char *scheme)
{
    size_t n = strlen (s), k = strlen (scheme);
    if (n <= k || n > RF_URL_MAX || strncmp (s, scheme, k) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
            return false;
    return true;
}

static bool
s_email_valid (const char *s)
{
    const char *at = strchr (s, '@');
    size_t n = strlen (s);
    if (!at || at == s || strchr (at + 1, '@') || !strchr (at + 1, '.') || n > RF_URL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f || s[i] == ','
            || s[i] == '<' || s[i] == '>')
            return false;
    return true;
}

static int
s_on_partner (s_parser_t *p, char **w, int n)
{
    rf_config_t *cfg = p->cfg;
    if (n < 3 || !rf_code_valid (w[1]))
        return s_fail (p, "partner needs a code and unit=<unit>");
    for (size_t i = 0; i < cfg->n_partners; i++)
        if (strcmp (cfg->partners[i].code, w[1]) == 0)
            return s_fail (p, "partner '%s' declared twice", w[1]);
    if (cfg->n_partners == RF_PARTNERS_MAX)
        return s_fail (p, "more than %d partners", RF_PARTNERS_MAX);
    rf_partner_t *pt = &cfg->partners[cfg->n_partners];
    memset (pt, 0, sizeof *pt);
    strcpy (pt->code, w[1]);
    pt->line = p->line;
    for (int i = 2; i < n; i++) {
        const char *v;
        if ((v = s_kv (w[i], "unit"))) {
            if (s_unit_ref (p, v, NULL) < 0)
                return -1;
            strcpy (pt->unit, v);
        }
        else if ((v = s_kv (w[i], "email"))) {
            if (!s_email_valid (v))
                return s_fail (p, "email is not an e-mail address");
            strcpy (pt->email, v);
        }
        else if ((v = s_kv (w[i], "webhook"))) {
            if (!s_url_valid (v, "https://"))
                return s_fail (p, "webhook must be an https:// URL of at most %d characters",
                               RF_URL_MAX);
            strcpy (pt->webhook, v);
        }
        else if ((v = s_kv (w[i], "language"))) {
            //  As notifier takes it: 2..7 of a-z and '-'.
            size_t len = strlen (v);
            bool ok = len >= 2 && len <= 7;
            for (size_t k = 0; ok && k < len; k++)
                ok = islower ((unsigned char) v[k]) || v[k] == '-';
            if (!ok)
                return s_fail (p, "language must be 2..7 of a-z and - (ar, fr, en-gb)");
            strcpy (pt->language, v);
        }
        else
            return s_fail (p, "unknown partner option '%.40s'", w[i]);
    }
    if (!pt->unit[0])
        return s_fail (p, "partner needs unit=<unit> (the unit that follows its referrals)");
    if (!pt->email[0] && !pt->webhook[0])
        return s_fail (p, "partner needs email= or webhook=");
    cfg->n_partners++;
    return 0;
}

//  A rule or default target: a unit or partner:<code>.
static int
s_target (s_parser_t *p, const char *t, rf_rule_t *r)
{
    if (strncmp (t, "partner:", 8) == 0) {
        const rf_partner_t *pt = rf_config_partner (p->cfg, t + 8);
        if (!pt)
            return s_fail (p, "unknown partner '%.32s' (declare it first)", t + 8);
        strcpy (r->partner, pt->code);
        strcpy (r->unit, pt->unit);
        return 0;
    }
    if (s_unit_ref (p, t, NULL) < 0)
        return -1;
    strcpy (r->unit, t);
    return 0;
}

static int
s_on_rule (s_parser_t *p, char **w, int n)
{
    rf_config_t *cfg = p->cfg;
    bool is_default = strcmp (w[0], "default") == 0;
    if (is_default ? n != 2 : n != 6)
        return s_fail (p, is_default ? "default needs one target: a unit or partner:<code>"
                                     : "rule needs: category location language priority target");
    if (p->have_default)
        return s_fail (p, "a %s after the default can never match", w[0]);
    if (cfg->n_rules == RF_RULES_MAX)
        return s_fail (p, "more than %d rules", RF_RULES_MAX);
    rf_rule_t *r = &cfg->rules[cfg->n_rules];
    memset (r, 0, sizeof *r);
    r->line = p->line;
    r->priority = -1;
    if (is_default) {
        r->is_default = true;
        strcpy (r->category, "*");
        strcpy (r->location, "*");
        strcpy (r->language, "*");
        if (s_target (p, w[1], r) < 0)
            return -1;
        p->have_default = true;
        cfg->n_rules++;
        return 0;
    }
    if (strcmp (w[1], "*") != 0 && !rf_category_valid (w[1]))
        return s_fail (p, "category must be * or a category code");
    if (strcmp (w[2], "*") != 0 && !rf_code_valid (w[2]))
        return s_fail (p, "location must be * or a location code");
    if (strcmp (w[3], "*") != 0 && !rf_code_valid (w[3]))
        return s_fail (p, "language must be * or a language code");
    if (strcmp (w[4], "*") != 0 && (r->priority = rf_priority_parse (w[4])) < 0)
        return s_fail (p, "priority must be * or one of low, normal, high, emergency");
    strcpy (r->category, w[1]);
    strcpy (r->location, w[2]);
    strcpy (r->language, w[3]);
    if (s_target (p, w[5], r) < 0)
        return -1;
    cfg->n_rules++;
    return 0;
}

static int
s_on_sla (s_parser_t *p, char **w, int n)
{
    rf_config_t *cfg = p->cfg;
    if (n != 5)
        return s_fail (p, "sla needs: unit|* priority|* ack=<duration> resolve=<duration>");
    if (strcmp (w[1], "*") != 0 && s_unit_ref (p, w[1], NULL) < 0)
        return -1;
    int prio = -1;
    if (strcmp (w[2], "*") != 0 && (prio = rf_priority_parse (w[2])) < 0)
        return s_fail (p, "priority must be * or one of low, normal, high, emergency");
    const char *a = s_kv (w[3], "ack"), *r = s_kv (w[4], "resolve");
    int64_t ack = a ? rf_parse_duration (a) : -1, res = r ? rf_parse_duration (r) : -1;
    if (ack < 0 || res < 0)
        return s_fail (p, "ack= and resolve= take durations like 30m, 4h, 3d");
    if (res < ack)
        return s_fail (p, "resolve must not be shorter than ack");
    if (cfg->n_slas == RF_SLA_MAX)
        return s_fail (p, "more than %d sla lines", RF_SLA_MAX);
    rf_sla_t *s = &cfg->slas[cfg->n_slas++];
    strcpy (s->unit, w[1]);
    s->priority = prio;
    s->ack_ms = ack;
    s->resolve_ms = res;
    s->line = p->line;
    return 0;
}

static int
s_on_timezone (s_parser_t *p, char **w, int n)
{
    const char *s = n == 2 ? w[1] : "";
    int mins;
    if (strlen (s) != 6 || (s[0] != '+' && s[0] != '-') || s_hhmm (s + 1, 5, &mins) < 0
        || mins > 14 * 60)
        return s_fail (p, "timezone must be like +03:00 or -05:00");
    p->cfg->tz_offset_min = s[0] == '-' ? -mins : mins;
    return 0;
}

static int
s_on_hours (s_parser_t *p, char **w, int n)
{
    if (n != 3)
        return s_fail (p, "hours needs: days HH:MM-HH:MM");
    if (p->cfg->n_hours == RF_HOURS_MAX)
        return s_fail (p, "more than %d hours lines", RF_HOURS_MAX);
    rf_window_t *win = &p->cfg->hours[p->cfg->n_hours];
    if (s_window (p, w[1], w[2], win) < 0)
        return -1;
    if (win->end_min <= win->start_min)
        return s_fail (p, "business hours must not cross midnight (write two lines)");
    for (size_t i = 0; i < p->cfg->n_hours; i++) {
        const rf_window_t *o = &p->cfg->hours[i];
        if ((o->days & win->days) && win->start_min < o->end_min && o->start_min < win->end_min)
            return s_fail (p, "these hours overlap an earlier hours line");
    }
    p->cfg->n_hours++;
    return 0;
}

static int
s_on_sensitive (s_parser_t *p, char **w, int n)
{
    if (n < 2)
        return s_fail (p, "sensitive_categories needs at least one category");
    for (int i = 1; i < n; i++) {
        if (!rf_category_valid (w[i]) || strlen (w[i]) > RF_CODE_MAX)
            return s_fail (p, "'%.40s' is not a category code", w[i]);
        if (p->cfg->n_sensitive == RF_SENSITIVE_MAX)
            return s_fail (p, "more than %d sensitive categories", RF_SENSITIVE_MAX);
        strcpy (p->cfg->sensitive[p->cfg->n_sensitive++], w[i]);
    }
    return 0;
}

//  Options key=<duration> of words w[from..n): every key given exactly once.
static int
s_durations (s_parser_t *p, char **w, int from, int n, const char *const *keys, int64_t *out)
{
    int nkeys = 0;
    while (keys[nkeys])
        nkeys++;
    if (n - from != nkeys)
        return s_fail (p, "%s needs exactly: %s=<duration>%s%s=<duration>", w[0], keys[0],
                       nkeys > 1 ? " " : "", nkeys > 1 ? keys[1] : "");
    for (int k = 0; k < nkeys; k++) {
        out[k] = -1;
        for (int i = from; i < n; i++) {
            const char *v = s_kv (w[i], keys[k]);
            if (v && (out[k] = rf_parse_duration (v)) < 0)
                return s_fail (p, "%s= takes a duration like 30s, 5m, 4h, 3d", keys[k]);
        }
        if (out[k] < 0)
            return s_fail (p, "%s needs %s=<duration>", w[0], keys[k]);
    }
    return 0;
}

static int
s_on_escalation (s_parser_t *p, char **w, int n)
{
    static const char *const keys[] = { "focal", "supervisor", NULL };
    int64_t d[2];
    if (s_durations (p, w, 1, n, keys, d) < 0)
        return -1;
    if (d[1] <= d[0])
        return s_fail (p, "supervisor must come after focal");
    p->cfg->focal_after_ms = d[0];
    p->cfg->supervisor_after_ms = d[1];
    p->have_escalation = true;
    return 0;
}

static int
s_on_emergency (s_parser_t *p, char **w, int n)
{
    static const char *const keys[] = { "ack", "repeat", NULL };
    if (n < 2 || s_unit_ref (p, w[1], NULL) < 0)
        return n < 2 ? s_fail (p, "emergency needs a unit") : -1;
    int64_t d[2];
    if (s_durations (p, w, 2, n, keys, d) < 0)
        return -1;
    strcpy (p->cfg->emergency_unit, w[1]);
    p->emergency_line = p->line;
    p->cfg->emergency_ack_ms = d[0];
    p->cfg->emergency_repeat_ms = d[1];
    p->have_emergency = true;
    return 0;
}

static int
s_on_ack_link (s_parser_t *p, char **w, int n)
{
    static const char *const keys[] = { "ttl", NULL };
    //  The link with its token (about 150 characters) must fit notifier's 256-byte params.
    if (n < 2 || !(s_url_valid (w[1], "https://") || s_url_valid (w[1], "http://"))
        || strchr (w[1], '?') || strlen (w[1]) > RF_ACK_LINK_MAX)
        return s_fail (p, "ack_link needs an http(s) URL of at most %d characters without a query",
                       RF_ACK_LINK_MAX);
    int64_t d[1];
    if (s_durations (p, w, 2, n, keys, d) < 0)
        return -1;
    strcpy (p->cfg->ack_link, w[1]);
    p->cfg->ack_link_ttl_ms = d[0];
    return 0;
}

static int
s_on_signing_key (s_parser_t *p, char **w, int n)
{
    if (n != 2 || strlen (w[1]) < 32 || s_copy (p->cfg->signing_key, sizeof p->cfg->signing_key,
                                                w[1]) < 0)
        return s_fail (p, "signing_key needs one word of 32..128 characters");
    return 0;
}

typedef int (s_directive_fn) (s_parser_t *p, char **w, int n);

static const struct {
    const char *name;
    s_directive_fn *fn;
} s_directives[] = {
    { "unit", s_on_unit },          { "member", s_on_member },
    { "roster", s_on_roster },      { "partner", s_on_partner },
    { "rule", s_on_rule },          { "default", s_on_rule },
    { "sla", s_on_sla },            { "timezone", s_on_timezone },
    { "hours", s_on_hours },        { "sensitive_categories", s_on_sensitive },
    { "escalation", s_on_escalation }, { "emergency", s_on_emergency },
    { "ack_link", s_on_ack_link },  { "signing_key", s_on_signing_key },
};

static int
s_line (s_parser_t *p, char *line)
{
    char *w[S_WORDS_MAX];
    int n = 0;
    for (char *s = line; *s;) {
        while (*s == ' ' || *s == '\t')
            *s++ = 0;
        if (!*s)
            break;
        if (n == S_WORDS_MAX)
            return s_fail (p, "more than %d words", S_WORDS_MAX);
        w[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    if (n == 0 || w[0][0] == '#')
        return 0;
    for (size_t i = 0; i < sizeof s_directives / sizeof s_directives[0]; i++)
        if (strcmp (w[0], s_directives[i].name) == 0)
            return s_directives[i].fn (p, w, n);
    return s_fail (p, "unknown directive '%.40s'", w[0]);
}

static bool s_in_window (const rf_window_t *w, int wd, int minute);

//  Checks that need the whole file.
static int
s_finish (s_parser_t *p)
{
    rf_config_t *cfg = p->cfg;
    if (cfg->n_units == 0)
        return s_fail (p, "no unit declared");
    if (!p->have_default)
        return s_fail (p, "no default rule (default <unit>): a referral must always go somewhere");
    if (!p->have_emergency)
        return s_fail (p, "no emergency line (emergency <unit> ack=<duration> repeat=<duration>)");
    if (!p->have_escalation)
        return s_fail (p, "no escalation line (escalation focal=<duration> supervisor=<duration>)");
    for (size_t i = 0; i < cfg->n_units; i++)
        for (int pr = 0; pr < RF_PRIORITY__COUNT; pr++)
            if (!rf_config_sla (cfg, cfg->units[i].code, (rf_priority_t) pr)) {
                p->line = cfg->units[i].line;
                return s_fail (p, "unit %s has no sla for priority %s", cfg->units[i].code,
                               rf_priority_name ((rf_priority_t) pr));
            }
    //  Emergencies are dispatched 24/7: someone must be on the emergency unit's roster at
    //  every minute of the week.
    p->line = p->emergency_line;
    static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
    for (int wd = 0; wd < 7; wd++)
        for (int minute = 0; minute < 24 * 60; minute++) {
            bool covered = false;
            for (size_t i = 0; i < cfg->n_roster && !covered; i++)
                covered = strcmp (cfg->roster[i].unit, cfg->emergency_unit) == 0
                          && s_in_window (&cfg->roster[i].window, wd, minute);
            if (!covered)
                return s_fail (p, "nobody is on the emergency unit %s's roster on %s at %02d:%02d",
                               cfg->emergency_unit, days[wd], minute / 60, minute % 60);
        }
    p->line = cfg->n_partners ? cfg->partners[0].line : 0;
    if (cfg->n_partners && !cfg->ack_link[0])
        return s_fail (p, "partners need an ack_link line (the base of their acknowledgement links)");
    return 0;
}

rf_config_t *
rf_config_parse (const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    rf_config_t *cfg = calloc (1, sizeof *cfg);
    if (!cfg) {
        snprintf (err, errlen, "%s:0: out of memory", name);
        return NULL;
    }
    snprintf (cfg->path, sizeof cfg->path, "%s", name);
    s_parser_t p = { .cfg = cfg, .name = name, .err = err, .errlen = errlen };
    int rc = 0;
    if (len > RF_FILE_MAX)
        rc = s_fail (&p, "larger than %d bytes", RF_FILE_MAX);
    char line[RF_LINE_MAX + 1];
    size_t pos = 0;
    while (rc == 0 && pos < len) {
        p.line++;
        const char *nl = memchr (text + pos, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - (text + pos)) : len - pos;
        if (n && text[pos + n - 1] == '\r')
            n--;
        if (n > RF_LINE_MAX)
            rc = s_fail (&p, "longer than %d bytes", RF_LINE_MAX);
        else if (memchr (text + pos, 0, n))
            rc = s_fail (&p, "a NUL byte");
        else {
            for (size_t i = 0; i < n && rc == 0; i++)
                if ((unsigned char) text[pos + i] < 0x20 && text[pos + i] != '\t')
                    rc = s_fail (&p, "a control character");
            if (rc == 0) {
                memcpy (line, text + pos, n);
                line[n] = 0;
                rc = s_line (&p, line);
            }
        }
        pos += nl ? (size_t) (nl - (text + pos)) + 1 : n;
        if (!nl)
            break;
    }
    if (rc == 0) {
        p.line = 0;
        rc = s_finish (&p);
    }
    if (rc < 0) {
        free (cfg);
        return NULL;
    }
    return cfg;
}

rf_config_t *
rf_config_load (const char *path, char *err, size_t errlen)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        snprintf (err, errlen, "%s:0: cannot open (%s)", path, strerror (errno));
        return NULL;
    }
    char *buf = malloc (RF_FILE_MAX + 2);
    size_t n = buf ? fread (buf, 1, RF_FILE_MAX + 1, f) : 0;
    bool bad = ferror (f);
    fclose (f);
    if (!buf || bad) {
        free (buf);
        snprintf (err, errlen, "%s:0: cannot read", path);
        return NULL;
    }
    rf_config_t *cfg = rf_config_parse (path, buf, n, err, errlen);
    free (buf);
    return cfg;
}

void
rf_config_destroy (rf_config_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------------------------
//  Look-ups

const rf_unit_t *
rf_config_unit (const rf_config_t *self, const char *code)
{
    for (size_t i = 0; code && i < self->n_units; i++)
        if (strcmp (self->units[i].code, code) == 0)
            return &self->units[i];
    return NULL;
}

const rf_partner_t *
rf_config_partner (const rf_config_t *self, const char *code)
{
    for (size_t i = 0; code && i < self->n_partners; i++)
        if (strcmp (self->partners[i].code, code) == 0)
            return &self->partners[i];
    return NULL;
}

bool
rf_config_is_member (const rf_config_t *self, const char *unit, const char *user_id)
{
    const rf_unit_t *u = rf_config_unit (self, unit);
    if (!u || !user_id || !*user_id)
        return false;
    if (strcmp (u->focal, user_id) == 0 || strcmp (u->supervisor, user_id) == 0)
        return true;
    for (size_t i = 0; i < u->n_members; i++)
        if (strcmp (u->members[i], user_id) == 0)
            return true;
    return false;
}

//  True when code is pattern or under it (pattern "gbv" holds "gbv.at_risk").
static bool
s_under (const char *pattern, const char *code)
{
    size_t n = strlen (pattern);
    return strncmp (pattern, code, n) == 0 && (code[n] == 0 || code[n] == '.');
}

bool
rf_config_sensitive (const rf_config_t *self, const char *unit, const char *category)
{
    const rf_unit_t *u = rf_config_unit (self, unit);
    if (u && u->sensitive)
        return true;
    for (size_t i = 0; category && i < self->n_sensitive; i++)
        if (s_under (self->sensitive[i], category))
            return true;
    return false;
}

bool
rf_config_sla_wall (const rf_config_t *self, const char *unit, rf_priority_t p)
{
    const rf_unit_t *u = rf_config_unit (self, unit);
    return (u && u->always_open) || p == RF_EMERGENCY;
}

//  Local day (days since the epoch) and minute of the day of t.
static void
s_local (const rf_config_t *self, int64_t t, int64_t *day, int *minute)
{
    int64_t local = t + (int64_t) self->tz_offset_min * S_MIN_MS;
    int64_t d = local / S_DAY_MS;
    if (local % S_DAY_MS < 0)
        d--;
    *day = d;
    *minute = (int) ((local - d * S_DAY_MS) / S_MIN_MS);
}

//  Weekday of a local day: 0 = Monday (1970-01-01 was a Thursday).
static int
s_weekday (int64_t day)
{
    int64_t w = (day + 3) % 7;
    return (int) (w < 0 ? w + 7 : w);
}

static bool
s_in_window (const rf_window_t *w, int wd, int minute)
{
    if (w->start_min < w->end_min)
        return (w->days >> wd & 1) && minute >= w->start_min && minute < w->end_min;
    //  Across midnight: the evening part on its days, the morning part on the day after.
    if ((w->days >> wd & 1) && minute >= w->start_min)
        return true;
    return (w->days >> ((wd + 6) % 7) & 1) && minute < w->end_min;
}

bool
rf_config_on_duty (const rf_config_t *self, const char *unit, int64_t now, rf_uid_t primary,
                   rf_uid_t backup)
{
    int64_t day;
    int minute;
    s_local (self, now, &day, &minute);
    int wd = s_weekday (day);
    primary[0] = backup[0] = 0;
    for (size_t i = 0; i < self->n_roster; i++) {
        const rf_roster_t *r = &self->roster[i];
        if (strcmp (r->unit, unit) == 0 && s_in_window (&r->window, wd, minute)) {
            strcpy (primary, r->primary);
            strcpy (backup, r->backup);
            return true;
        }
    }
    return false;
}

const rf_sla_t *
rf_config_sla (const rf_config_t *self, const char *unit, rf_priority_t p)
{
    const rf_sla_t *any = NULL;
    for (size_t i = 0; i < self->n_slas; i++) {
        const rf_sla_t *s = &self->slas[i];
        if (s->priority != -1 && s->priority != (int) p)
            continue;
        if (strcmp (s->unit, unit) == 0)
            return s;
        if (!any && strcmp (s->unit, "*") == 0)
            any = s;
    }
    return any;
}

//  --------------------------------------------------------------------------------------------
//  Business time

//  The business windows of local day d as UTC [start, end) pairs, sorted; returns how many.
static size_t
s_day_windows (const rf_config_t *self, int64_t d, int64_t *starts, int64_t *ends)
{
    int wd = s_weekday (d);
    int64_t base = d * S_DAY_MS - (int64_t) self->tz_offset_min * S_MIN_MS;
    size_t n = 0;
    for (size_t i = 0; i < self->n_hours; i++) {
        const rf_window_t *w = &self->hours[i];
        if (!(w->days >> wd & 1))
            continue;
        int64_t s = base + w->start_min * S_MIN_MS, e = base + w->end_min * S_MIN_MS;
        size_t j = n++;
        while (j > 0 && starts[j - 1] > s) {
            starts[j] = starts[j - 1];
            ends[j] = ends[j - 1];
            j--;
        }
        starts[j] = s;
        ends[j] = e;
    }
    return n;
}

int64_t
rf_config_business_add (const rf_config_t *self, bool wall, int64_t start, int64_t dur)
{
    if (wall || self->n_hours == 0 || dur <= 0)
        return start + (dur > 0 ? dur : 0);
    int64_t day;
    int minute;
    s_local (self, start, &day, &minute);
    int64_t t = start, left = dur, starts[RF_HOURS_MAX], ends[RF_HOURS_MAX];
    for (int k = 0; k < S_SEARCH_DAYS; k++, day++) {
        size_t n = s_day_windows (self, day, starts, ends);
        for (size_t i = 0; i < n; i++) {
            if (ends[i] <= t)
                continue;
            if (starts[i] > t)
                t = starts[i];
            if (left <= ends[i] - t)
                return t + left;
            left -= ends[i] - t;
            t = ends[i];
        }
    }
    return start + dur;     //  no business hours within ten years: a wall-time answer
}

int64_t
rf_config_business_between (const rf_config_t *self, bool wall, int64_t a, int64_t b)
{
    if (b <= a)
        return 0;
    if (wall || self->n_hours == 0)
        return b - a;
    int64_t day, total = 0, starts[RF_HOURS_MAX], ends[RF_HOURS_MAX];
    int minute;
    s_local (self, a, &day, &minute);
    for (int k = 0; k < S_SEARCH_DAYS; k++, day++) {
        size_t n = s_day_windows (self, day, starts, ends);
        for (size_t i = 0; i < n; i++) {
            int64_t s = starts[i] > a ? starts[i] : a, e = ends[i] < b ? ends[i] : b;
            if (s >= b)
                return total;
            if (e > s)
                total += e - s;
        }
        if (day * S_DAY_MS - (int64_t) self->tz_offset_min * S_MIN_MS > b)
            break;
    }
    return total;
}
