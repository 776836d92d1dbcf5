/*  taxonomy — see taxonomy.h. The parser reads the format described at the top of
    config/taxonomy.txt; the built-in default below is that file's entries, without its comments
    (test_intake_contacts checks that the two give the same taxonomy).
*/
#include "taxonomy.h"
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char taxonomy_default_text[] =
    "information_request         -           Information request\n"
    "  information_request.services          -   Services and where to get them\n"
    "  information_request.procedures        -   Procedures and eligibility\n"
    "  information_request.office            -   Office locations, hours and contacts\n"
    "  information_request.other             -   Other information\n"
    "assistance_status           -           Assistance status\n"
    "  assistance_status.food                -   Food assistance\n"
    "  assistance_status.shelter             -   Shelter\n"
    "  assistance_status.core_relief_items   -   Core relief items\n"
    "  assistance_status.other               -   Other assistance\n"
    "registration                -           Registration\n"
    "  registration.new                      -   New registration\n"
    "  registration.renewal                  -   Renewal of documents\n"
    "  registration.update_details           -   Update of contact or personal details\n"
    "  registration.family_composition       -   Family composition\n"
    "  registration.documents                -   Documents lost, stolen or damaged\n"
    "  registration.status                   -   Status of a registration or RSD case\n"
    "appointment                 -           Appointment\n"
    "  appointment.book                      -   Book an appointment\n"
    "  appointment.reschedule                -   Move an appointment\n"
    "  appointment.cancel                    -   Cancel an appointment\n"
    "  appointment.confirm                   -   Confirm an appointment\n"
    "resettlement                -           Resettlement\n"
    "  resettlement.status                   -   Status of a resettlement case\n"
    "  resettlement.eligibility              -   Eligibility\n"
    "  resettlement.departure                -   Departure arrangements\n"
    "cash_assistance             -           Cash assistance\n"
    "  cash_assistance.eligibility           -   Eligibility\n"
    "  cash_assistance.payment               -   Payment status\n"
    "  cash_assistance.card_or_pin           -   Card, PIN or mobile wallet\n"
    "  cash_assistance.amount                -   Amount\n"
    "health                      -           Health\n"
    "  health.access                         -   Access to health care\n"
    "  health.medication                     -   Medication\n"
    "  health.mental_health                  -   Mental health and psychosocial support\n"
    "  health.disability                     -   Disability\n"
    "education                   -           Education\n"
    "  education.enrolment                   -   School enrolment\n"
    "  education.certificates                -   Certificates and equivalence\n"
    "  education.higher_education            -   Higher education and scholarships\n"
    "legal                       -           Legal\n"
    "  legal.civil_documentation             -   Civil documentation (birth, marriage, death)\n"
    "  legal.housing_land_property           -   Housing, land and property\n"
    "  legal.legal_aid                       -   Legal aid and counselling\n"
    "  legal.residency                       -   Residency and permits\n"
    "protection_concern          sensitive   Protection concern\n"
    "  protection_concern.threat             -   Threats or harassment\n"
    "  protection_concern.detention          -   Arrest or detention\n"
    "  protection_concern.refoulement        -   Risk of refoulement or deportation\n"
    "  protection_concern.eviction           -   Eviction\n"
    "  protection_concern.family_separation  -   Family separation\n"
    "gbv                         sensitive   Gender-based violence\n"
    "  gbv.disclosure                        -   Disclosure of an incident\n"
    "  gbv.at_risk                           -   At risk\n"
    "  gbv.services                          -   Survivor services\n"
    "child_protection            sensitive   Child protection\n"
    "  child_protection.separated            -   Unaccompanied or separated child\n"
    "  child_protection.abuse                -   Abuse, exploitation or neglect\n"
    "  child_protection.child_labour         -   Child labour\n"
    "  child_protection.child_marriage       -   Child marriage\n"
    "complaint                   -           Complaint\n"
    "  complaint.staff_conduct               -   Staff conduct\n"
    "  complaint.service_quality             -   Quality of a service\n"
    "  complaint.partner                     -   A partner organisation\n"
    "  complaint.exclusion                   -   Exclusion from assistance\n"
    "feedback                    -           Feedback\n"
    "  feedback.positive                     -   Positive feedback\n"
    "  feedback.suggestion                   -   Suggestion\n"
    "fraud                       -           Fraud\n"
    "  fraud.payment_requested               -   Payment asked for a free service\n"
    "  fraud.impersonation                   -   Someone posing as staff\n"
    "  fraud.false_promise                   -   False promise of resettlement or assistance\n"
    "psea                        sensitive   Sexual exploitation and abuse (PSEA)\n"
    "  psea.allegation                       -   Allegation\n"
    "  psea.information                      -   Information on reporting channels\n"
    "other                       -           Other\n"
    ;

typedef struct {
    char code[TAXONOMY_CODE_MAX + 1];
    char label[TAXONOMY_LABEL_MAX * 4 + 1];     //  UTF-8: up to 4 bytes a character
    bool marked;                                //  its own MARK column
    bool sensitive;                             //  marked, or its category is
    int category;                               //  index of its category; -1 for a category
    size_t subs;                                //  a category's number of subcategories
} s_entry_t;

struct _taxonomy_t {
    size_t count;
    size_t cap;
    size_t categories;
    s_entry_t *entries;
};

static int s_fail (char *err, size_t errlen, const char *origin, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

static int
s_fail (char *err, size_t errlen, const char *origin, int line, const char *fmt, ...)
{
    char reason[160];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (reason, sizeof reason, fmt, ap);
    va_end (ap);
    if (line > 0)
        snprintf (err, errlen, "%s:%d: %s", origin, line, reason);
    else
        snprintf (err, errlen, "%s: %s", origin, reason);
    return -1;
}

//  One level of a code: [a-z][a-z0-9_]*, 1..TAXONOMY_PART_MAX.
static bool
s_part_valid (const char *s, size_t len)
{
    if (len == 0 || len > TAXONOMY_PART_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

//  Characters of a UTF-8 label, or -1 when it is not valid UTF-8 or holds a control character.
static long
s_label_chars (const char *s, size_t len)
{
    long chars = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char) s[i];
        size_t need;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return -1;
            need = 0;
            cp = c;
        }
        else if ((c & 0xe0) == 0xc0) {
            need = 1;
            cp = c & 0x1f;
        }
        else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
        }
        else if ((c & 0xf8) == 0xf0) {
            need = 3;
            cp = c & 0x07;
        }
        else
            return -1;
        if (need && i + need >= len)
            return -1;
        for (size_t k = 1; k <= need; k++) {
            unsigned char cc = (unsigned char) s[i + k];
            if ((cc & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (cc & 0x3f);
        }
        //  Overlong forms, surrogates, beyond U+10FFFF, C1 controls.
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000)
            || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0))
            return -1;
        i += need + 1;
        chars++;
    }
    return chars;
}

static s_entry_t *
s_lookup (const taxonomy_t *self, const char *code, size_t len)
{
    for (size_t i = 0; i < self->count; i++)
        if (strlen (self->entries[i].code) == len && memcmp (self->entries[i].code, code, len) == 0)
            return (s_entry_t *) &self->entries[i];
    return NULL;
}

static bool
s_space (char c)
{
    return c == ' ' || c == '\t';
}

//  Parse one line (without its end of line). 0, or -1 with err.
static int
s_parse_line (taxonomy_t *self, const char *line, size_t len, const char *origin, int lineno,
              char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && s_space (line[i]))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    size_t code_at = i;
    while (i < len && !s_space (line[i]))
        i++;
    size_t code_len = i - code_at;
    while (i < len && s_space (line[i]))
        i++;
    size_t mark_at = i;
    while (i < len && !s_space (line[i]))
        i++;
    size_t mark_len = i - mark_at;
    while (i < len && s_space (line[i]))
        i++;
    size_t label_at = i, label_len = len - i;
    while (label_len > 0 && s_space (line[label_at + label_len - 1]))
        label_len--;
    if (mark_len == 0 || label_len == 0)
        return s_fail (err, errlen, origin, lineno, "expected CODE MARK LABEL");

    const char *code = line + code_at;
    const char *dot = memchr (code, '.', code_len);
    size_t cat_len = dot ? (size_t) (dot - code) : code_len;
    if (!s_part_valid (code, cat_len)
        || (dot && !s_part_valid (dot + 1, code_len - cat_len - 1)))
        return s_fail (err, errlen, origin, lineno,
                       "a code is [a-z][a-z0-9_]* (at most %d characters), or two such parts "
                       "joined by '.'",
                       TAXONOMY_PART_MAX);
    bool marked;
    if (mark_len == 1 && line[mark_at] == '-')
        marked = false;
    else if (mark_len == 9 && memcmp (line + mark_at, "sensitive", 9) == 0)
        marked = true;
    else
        return s_fail (err, errlen, origin, lineno, "the mark must be '-' or 'sensitive'");
    long chars = s_label_chars (line + label_at, label_len);
    if (chars < 0)
        return s_fail (err, errlen, origin, lineno,
                       "the label is not valid UTF-8 or holds a control character");
    if (chars > TAXONOMY_LABEL_MAX)
        return s_fail (err, errlen, origin, lineno, "the label is longer than %d characters",
                       TAXONOMY_LABEL_MAX);
    if (s_lookup (self, code, code_len))
        return s_fail (err, errlen, origin, lineno, "duplicate code");

    int category = -1;
    if (dot) {
        s_entry_t *parent = s_lookup (self, code, cat_len);
        if (!parent)
            return s_fail (err, errlen, origin, lineno,
                           "subcategory before (or without) its category's line");
        if (parent->subs >= TAXONOMY_SUBS_MAX)
            return s_fail (err, errlen, origin, lineno, "more than %d subcategories in one category",
                           TAXONOMY_SUBS_MAX);
        parent->subs++;
        category = (int) (parent - self->entries);
    }
    else if (self->categories >= TAXONOMY_CATEGORIES_MAX)
        return s_fail (err, errlen, origin, lineno, "more than %d categories",
                       TAXONOMY_CATEGORIES_MAX);
    else
        self->categories++;

    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        s_entry_t *grown = realloc (self->entries, cap * sizeof *grown);
        if (!grown)
            return s_fail (err, errlen, origin, lineno, "out of memory");
        self->entries = grown;
        self->cap = cap;
    }
    s_entry_t *e = &self->entries[self->count++];
    memset (e, 0, sizeof *e);
    memcpy (e->code, code, code_len);
    e->code[code_len] = 0;
    memcpy (e->label, line + label_at, label_len);
    e->label[label_len] = 0;
    e->marked = marked;
    e->category = category;
    e->sensitive = marked || (category >= 0 && self->entries[category].marked);
    return 0;
}

taxonomy_t *
taxonomy_new_from_text (const char *text, size_t len, const char *origin, char *err,
                        size_t errlen)
{
    assert (text && origin && err);
    taxonomy_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_fail (err, errlen, origin, 0, "out of memory");
        return NULL;
    }
    int rc = 0;
    if (len > TAXONOMY_FILE_MAX)
        rc = s_fail (err, errlen, origin, 0, "larger than %d bytes", TAXONOMY_FILE_MAX);
    else if (memchr (text, 0, len))
        rc = s_fail (err, errlen, origin, 0, "holds a NUL byte");
    size_t at = 0;
    int lineno = 0;
    while (rc == 0 && at < len) {
        lineno++;
        const char *nl = memchr (text + at, '\n', len - at);
        size_t line_len = nl ? (size_t) (nl - (text + at)) : len - at;
        size_t next = at + line_len + (nl ? 1 : 0);
        if (line_len > 0 && text[at + line_len - 1] == '\r')
            line_len--;
        if (line_len > TAXONOMY_LINE_MAX)
            rc = s_fail (err, errlen, origin, lineno, "line longer than %d bytes",
                         TAXONOMY_LINE_MAX);
        else
            rc = s_parse_line (self, text + at, line_len, origin, lineno, err, errlen);
        at = next;
    }
    if (rc == 0 && self->categories == 0)
        rc = s_fail (err, errlen, origin, 0, "no categories");
    if (rc != 0)
        taxonomy_destroy (&self);
    return self;
}

taxonomy_t *
taxonomy_new_from_file (const char *path, char *err, size_t errlen)
{
    assert (path && err);
    FILE *f = fopen (path, "rb");
    if (!f) {
        s_fail (err, errlen, path, 0, "cannot open (%s)", strerror (errno));
        return NULL;
    }
    char *buf = malloc (TAXONOMY_FILE_MAX + 1);
    size_t len = buf ? fread (buf, 1, TAXONOMY_FILE_MAX + 1, f) : 0;
    bool failed = !buf || ferror (f);
    fclose (f);
    taxonomy_t *self = NULL;
    if (failed)
        s_fail (err, errlen, path, 0, "cannot read");
    else
        self = taxonomy_new_from_text (buf, len, path, err, errlen);
    free (buf);
    return self;
}

taxonomy_t *
taxonomy_new_from_config (gl_config_t *config, char *err, size_t errlen)
{
    const char *path = config ? gl_config_str (config, "GL_INTAKE_TAXONOMY", NULL) : NULL;
    if (path && *path)
        return taxonomy_new_from_file (path, err, errlen);
    return taxonomy_new_from_text (taxonomy_default_text, strlen (taxonomy_default_text),
                                   "built-in taxonomy", err, errlen);
}

void
taxonomy_destroy (taxonomy_t **self_p)
{
    assert (self_p);
    if (*self_p)
        free ((*self_p)->entries);
    free (*self_p);
    *self_p = NULL;
}

bool
taxonomy_find (const taxonomy_t *self, const char *code, bool *sensitive, const char **category)
{
    assert (self && code);
    const s_entry_t *e = s_lookup (self, code, strlen (code));
    if (!e)
        return false;
    if (sensitive)
        *sensitive = e->sensitive;
    if (category)
        *category = e->category < 0 ? e->code : self->entries[e->category].code;
    return true;
}

json_t *
taxonomy_json (const taxonomy_t *self)
{
    assert (self);
    json_t *categories = json_array ();
    for (size_t i = 0; categories && i < self->count; i++) {
        const s_entry_t *c = &self->entries[i];
        if (c->category >= 0)
            continue;
        json_t *subs = json_array ();
        for (size_t k = i + 1; subs && k < self->count; k++) {
            const s_entry_t *s = &self->entries[k];
            if (s->category == (int) i)
                json_array_append_new (subs, json_pack ("{s:s, s:s, s:b}", "code", s->code,
                                                        "label", s->label, "sensitive",
                                                        s->sensitive));
        }
        json_array_append_new (categories,
                               json_pack ("{s:s, s:s, s:b, s:o*}", "code", c->code, "label",
                                          c->label, "sensitive", c->sensitive, "subcategories",
                                          subs));
    }
    return json_pack ("{s:o*}", "categories", categories);
}

size_t
taxonomy_size (const taxonomy_t *self)
{
    assert (self);
    return self->count;
}
