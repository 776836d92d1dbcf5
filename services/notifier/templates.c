/*  templates — message templates per notification type and language, the small template
    language they are written in, and SMS length (GSM-7 / UCS-2 segments).

    A template file (config/templates/<code>.<lang>.txt, UTF-8):
        # comments and blank lines before the first section are ignored
        subject: Appointment {{appointment_id}} booked
        ---- text
        Your appointment is on {{at|time}}.
        ---- email
        (optional; the e-mail's plain text; defaults to text)
        ---- voice
        (optional; what a voice call says; defaults to text)
    Variables are the request's params; a missing one fails the render (the notification is
    dead-lettered with "missing_variable"), it is never sent with a hole in it, unless the
    template marks it optional: {{?name}} renders nothing when the param is missing or nil.
*/
#include "notifier.h"
#include "gl/gl_log.h"
#include "gl/gl_msgpack.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_SRC_MAX       65536       //  longest template file / string
#define S_OUT_MAX       65536       //  longest rendered text
#define S_PARTS_MAX     2048
#define S_NAME_MAX      32
#define S_CODE_MAX      48

typedef enum { F_NONE = 0, F_TIME, F_DATE, F_URL, F_JSON } s_filter_t;

typedef struct {
    char *text;             //  literal text, or the variable's name
    size_t len;
    bool var;
    bool optional;          //  {{?name}}: nothing when the param is missing or nil
    s_filter_t filter;
} s_part_t;

struct _tpl_t {
    s_part_t *parts;
    size_t nparts;
};

typedef struct _s_entry_t {
    char code[S_CODE_MAX + 1];
    char lang[NOTIFIER_LANG_MAX];
    tpl_t *subject, *text, *email, *voice;
    struct _s_entry_t *next;
} s_entry_t;

struct _templates_t {
    s_entry_t *head;
    size_t count;
};

//  --------------------------------------------------------------------------------------------
//  A growing buffer with a ceiling

typedef struct {
    char *p;
    size_t len, cap;
    bool over;
} s_buf_t;

static void
s_put (s_buf_t *b, const char *s, size_t n)
{
    if (b->over)
        return;
    if (b->len + n + 1 > S_OUT_MAX) {
        b->over = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc (b->p, cap);
        if (!p) {
            b->over = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy (b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void
s_puts (s_buf_t *b, const char *s)
{
    s_put (b, s, strlen (s));
}

//  --------------------------------------------------------------------------------------------
//  The template language

static bool
s_name_valid (const char *s, size_t n)
{
    if (n == 0 || n > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower ((unsigned char) s[i]) || isdigit ((unsigned char) s[i]) || s[i] == '_'))
            return false;
    return true;
}

static size_t
s_trim (const char **s, size_t n)
{
    while (n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        n--;
    }
    while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
        n--;
    return n;
}

static int
s_line_of (const char *src, const char *at)
{
    int line = 1;
    for (const char *p = src; p < at; p++)
        if (*p == '\n')
            line++;
    return line;
}

static int
s_add_part (tpl_t *self, const char *s, size_t n, bool var, s_filter_t filter)
{
    if (self->nparts >= S_PARTS_MAX)
        return -1;
    s_part_t *parts = realloc (self->parts, (self->nparts + 1) * sizeof (s_part_t));
    if (!parts)
        return -1;
    self->parts = parts;
    char *text = malloc (n + 1);
    if (!text)
        return -1;
    memcpy (text, s, n);
    text[n] = 0;
    self->parts[self->nparts++] = (s_part_t) { text, n, var, false, filter };
    return 0;
}

tpl_t *
tpl_parse (const char *src, size_t len, char *err, size_t errlen)
{
    assert (src || len == 0);
    if (len > S_SRC_MAX) {
        snprintf (err, errlen, "line 1: template longer than %d bytes", S_SRC_MAX);
        return NULL;
    }
    if (!gl_utf8_valid (src, len, false)) {
        snprintf (err, errlen, "line 1: not valid UTF-8");
        return NULL;
    }
    tpl_t *self = calloc (1, sizeof (tpl_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    const char *p = src, *end = src + len;
    while (p < end) {
        const char *open = NULL;
        for (const char *q = p; q + 1 < end; q++)
            if (q[0] == '{' && q[1] == '{') {
                open = q;
                break;
            }
        if (!open) {
            if (s_add_part (self, p, (size_t) (end - p), false, F_NONE))
                goto toobig;
            break;
        }
        if (open > p && s_add_part (self, p, (size_t) (open - p), false, F_NONE))
            goto toobig;
        const char *close = NULL;
        for (const char *q = open + 2; q + 1 < end && *q != '\n'; q++)
            if (q[0] == '}' && q[1] == '}') {
                close = q;
                break;
            }
        if (!close) {
            snprintf (err, errlen, "line %d: '{{' without '}}' on the same line",
                      s_line_of (src, open));
            goto fail;
        }
        const char *in = open + 2;
        size_t n = (size_t) (close - in);
        const char *bar = memchr (in, '|', n);
        const char *name = in;
        size_t nlen = s_trim (&name, bar ? (size_t) (bar - in) : n);
        s_filter_t filter = F_NONE;
        if (bar) {
            const char *f = bar + 1;
            size_t flen = s_trim (&f, (size_t) (close - f));
            if (flen == 4 && memcmp (f, "time", 4) == 0)
                filter = F_TIME;
            else if (flen == 4 && memcmp (f, "date", 4) == 0)
                filter = F_DATE;
            else if (flen == 3 && memcmp (f, "url", 3) == 0)
                filter = F_URL;
            else if (flen == 4 && memcmp (f, "json", 4) == 0)
                filter = F_JSON;
            else {
                snprintf (err, errlen, "line %d: unknown filter (time, date, url, json)",
                          s_line_of (src, open));
                goto fail;
            }
        }
        bool optional = nlen > 0 && name[0] == '?';
        if (optional)
            name++, nlen--;
        if (!s_name_valid (name, nlen)) {
            snprintf (err, errlen, "line %d: variable names are 1..%d of [a-z0-9_]",
                      s_line_of (src, open), S_NAME_MAX);
            goto fail;
        }
        if (s_add_part (self, name, nlen, true, filter))
            goto toobig;
        self->parts[self->nparts - 1].optional = optional;
        p = close + 2;
    }
    return self;
toobig:
    snprintf (err, errlen, "line 1: too many parts or out of memory");
fail:
    tpl_destroy (&self);
    return NULL;
}

void
tpl_destroy (tpl_t **self_p)
{
    assert (self_p);
    tpl_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nparts; i++)
        free (self->parts[i].text);
    free (self->parts);
    free (self);
    *self_p = NULL;
}

static void
s_put_html (s_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
            case '&': s_puts (b, "&amp;"); break;
            case '<': s_puts (b, "&lt;"); break;
            case '>': s_puts (b, "&gt;"); break;
            case '"': s_puts (b, "&quot;"); break;
            case '\'': s_puts (b, "&#39;"); break;
            default: s_put (b, s + i, 1);
        }
    }
}

static void
s_put_filtered (s_buf_t *b, const char *s, size_t n, s_filter_t filter)
{
    static const char hex[] = "0123456789ABCDEF";
    if (filter == F_URL) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char) s[i];
            if (isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~')
                s_put (b, s + i, 1);
            else {
                char e[3] = { '%', hex[c >> 4], hex[c & 15] };
                s_put (b, e, 3);
            }
        }
    }
    else if (filter == F_JSON) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char) s[i];
            if (c == '"' || c == '\\') {
                char e[2] = { '\\', (char) c };
                s_put (b, e, 2);
            }
            else if (c < 0x20) {
                char e[7];
                snprintf (e, sizeof e, "\\u%04x", c);
                s_put (b, e, 6);
            }
            else
                s_put (b, s + i, 1);
        }
    }
    else
        s_put (b, s, n);
}

char *
tpl_render (const tpl_t *self, const json_t *vars, int escape, char *reason, size_t reasonlen,
            char *detail, size_t detaillen)
{
    assert (self && reason);
    s_buf_t b = { 0 };
    s_put (&b, "", 0);
    const char *culprit = "";
    for (size_t i = 0; i < self->nparts && !b.over; i++) {
        const s_part_t *part = &self->parts[i];
        culprit = part->text;
        if (!part->var) {
            if (escape == TPL_ESC_HTML)
                s_put_html (&b, part->text, part->len);
            else
                s_put (&b, part->text, part->len);
            continue;
        }
        json_t *v = vars ? json_object_get (vars, part->text) : NULL;
        if ((!v || json_is_null (v)) && part->optional)
            continue;
        if (!v || json_is_null (v)) {
            snprintf (reason, reasonlen, "missing_variable");
            goto fail_named;
        }
        char num[64];
        const char *s = NULL;
        size_t n = 0;
        if (part->filter == F_TIME || part->filter == F_DATE) {
            if (!json_is_integer (v))
                goto bad;
            json_int_t ms = json_integer_value (v);
            if (ms < 0 || ms > 253402300799999LL)   //  9999-12-31
                goto bad;
            time_t t = (time_t) (ms / 1000);
            struct tm tm;
            gmtime_r (&t, &tm);
            strftime (num, sizeof num, part->filter == F_TIME ? "%Y-%m-%d %H:%M UTC" : "%Y-%m-%d",
                      &tm);
            s = num;
            n = strlen (num);
        }
        else if (json_is_string (v)) {
            s = json_string_value (v);
            n = json_string_length (v);
            //  No control characters: a value must not break a header or a line.
            for (size_t k = 0; k < n; k++)
                if ((unsigned char) s[k] < 0x20 || s[k] == 0x7f)
                    goto bad;
            if (!gl_utf8_valid (s, n, false))
                goto bad;
        }
        else if (json_is_integer (v)) {
            snprintf (num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value (v));
            s = num;
            n = strlen (num);
        }
        else if (json_is_boolean (v)) {
            s = json_is_true (v) ? "yes" : "no";
            n = strlen (s);
        }
        else
            goto bad;
        if (escape == TPL_ESC_HTML && part->filter == F_JSON) {
            //  JSON escapes leave '<' alone: escaped again for HTML.
            s_buf_t j = { 0 };
            s_put_filtered (&j, s, n, part->filter);
            if (j.over)
                b.over = true;
            else if (j.p)
                s_put_html (&b, j.p, j.len);
            free (j.p);
        }
        else if (escape == TPL_ESC_HTML && part->filter != F_URL)
            s_put_html (&b, s, n);
        else
            s_put_filtered (&b, s, n, part->filter);
    }
    if (b.over) {
        snprintf (reason, reasonlen, "too_long");
        free (b.p);
        return NULL;
    }
    return b.p;
bad:
    snprintf (reason, reasonlen, "bad_variable");
fail_named:
    if (detail)
        snprintf (detail, detaillen, "%s", culprit);
    free (b.p);
    return NULL;
}

//  --------------------------------------------------------------------------------------------
//  Template files

templates_t *
templates_new (void)
{
    return calloc (1, sizeof (templates_t));
}

static void
s_entry_free (s_entry_t *e)
{
    tpl_destroy (&e->subject);
    tpl_destroy (&e->text);
    tpl_destroy (&e->email);
    tpl_destroy (&e->voice);
    free (e);
}

void
templates_destroy (templates_t **self_p)
{
    assert (self_p);
    templates_t *self = *self_p;
    if (!self)
        return;
    while (self->head) {
        s_entry_t *next = self->head->next;
        s_entry_free (self->head);
        self->head = next;
    }
    free (self);
    *self_p = NULL;
}

static bool
s_code_valid (const char *code)
{
    size_t n = strlen (code);
    if (n == 0 || n > S_CODE_MAX || code[0] == '.' || code[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower ((unsigned char) code[i]) || isdigit ((unsigned char) code[i])
              || code[i] == '_' || code[i] == '.'))
            return false;
    return true;
}

static bool
s_lang_valid (const char *lang)
{
    size_t n = strlen (lang);
    if (n < 2 || n >= NOTIFIER_LANG_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower ((unsigned char) lang[i]) || lang[i] == '-'))
            return false;
    return true;
}

//  Compile one section body; the error names the line in the whole file.
static tpl_t *
s_section (const char *file, const char *s, size_t n, char *err, size_t errlen)
{
    //  Trailing newlines are not part of the message.
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    char why[160];
    tpl_t *t = tpl_parse (s, n, why, sizeof why);
    if (!t) {
        int line = 0;
        if (sscanf (why, "line %d:", &line) == 1) {
            const char *colon = strchr (why, ':');
            snprintf (err, errlen, "line %d:%s", s_line_of (file, s) + line - 1,
                      colon ? colon + 1 : "");
        }
        else
            snprintf (err, errlen, "line %d: %s", s_line_of (file, s), why);
    }
    return t;
}

int
templates_add (templates_t *self, const char *code, const char *lang, const char *buf,
               size_t len, char *err, size_t errlen)
{
    assert (self && code && lang && (buf || len == 0));
    if (!s_code_valid (code) || !s_lang_valid (lang)) {
        snprintf (err, errlen, "line 1: template code or language not valid");
        return -1;
    }
    if (len > S_SRC_MAX) {
        snprintf (err, errlen, "line 1: file longer than %d bytes", S_SRC_MAX);
        return -1;
    }
    if (!gl_utf8_valid (buf, len, false)) {
        snprintf (err, errlen, "line 1: not valid UTF-8");
        return -1;
    }
    s_entry_t *e = calloc (1, sizeof (s_entry_t));
    if (!e) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    snprintf (e->code, sizeof e->code, "%s", code);
    snprintf (e->lang, sizeof e->lang, "%s", lang);

    const char *p = buf, *end = buf + len;
    const char *body = NULL;        //  start of the current section's body
    tpl_t **slot = NULL;
    int line = 0;
    while (p < end || body) {
        const char *nl = p < end ? memchr (p, '\n', (size_t) (end - p)) : NULL;
        const char *eol = nl ? nl : end;
        line++;
        bool marker = p < end && (size_t) (eol - p) >= 5 && memcmp (p, "---- ", 5) == 0;
        if (p >= end || marker) {
            //  Close the open section.
            if (slot) {
                *slot = s_section (buf, body, (size_t) (p - body), err, errlen);
                if (!*slot)
                    goto fail;
                slot = NULL;
                body = NULL;
            }
            if (p >= end)
                break;
            const char *name = p + 5;
            size_t nlen = s_trim (&name, (size_t) (eol - name));
            if (nlen && name[nlen - 1] == '\r')
                nlen--;
            if (nlen == 4 && memcmp (name, "text", 4) == 0)
                slot = &e->text;
            else if (nlen == 5 && memcmp (name, "email", 5) == 0)
                slot = &e->email;
            else if (nlen == 5 && memcmp (name, "voice", 5) == 0)
                slot = &e->voice;
            else {
                snprintf (err, errlen, "line %d: unknown section (text, email, voice)", line);
                goto fail;
            }
            if (*slot) {
                snprintf (err, errlen, "line %d: section given twice", line);
                goto fail;
            }
            body = nl ? nl + 1 : end;
        }
        else if (!body) {
            //  The header: comments, blank lines, "subject: ...".
            const char *s = p;
            size_t n = s_trim (&s, (size_t) (eol - p));
            if (n && s[n - 1] == '\r')
                n--;
            if (n == 0 || s[0] == '#')
                ;
            else if (n >= 8 && memcmp (s, "subject:", 8) == 0) {
                if (e->subject) {
                    snprintf (err, errlen, "line %d: subject given twice", line);
                    goto fail;
                }
                const char *v = s + 8;
                size_t vlen = s_trim (&v, n - 8);
                char why[160];
                e->subject = tpl_parse (v, vlen, why, sizeof why);
                if (!e->subject) {
                    const char *colon = strchr (why, ':');
                    snprintf (err, errlen, "line %d:%s", line, colon ? colon + 1 : why);
                    goto fail;
                }
            }
            else {
                snprintf (err, errlen, "line %d: expected 'subject: ...', a comment or "
                          "'---- text'", line);
                goto fail;
            }
        }
        p = nl ? nl + 1 : end;
        if (!nl && !body)
            break;
    }
    if (!e->subject) {
        snprintf (err, errlen, "line %d: no 'subject:' line", line ? line : 1);
        goto fail;
    }
    if (!e->text) {
        snprintf (err, errlen, "line %d: no '---- text' section", line ? line : 1);
        goto fail;
    }
    //  Replace an earlier one with the same code and language.
    for (s_entry_t **pp = &self->head; *pp; pp = &(*pp)->next)
        if (strcmp ((*pp)->code, code) == 0 && strcmp ((*pp)->lang, lang) == 0) {
            s_entry_t *old = *pp;
            e->next = old->next;
            *pp = e;
            s_entry_free (old);
            return 0;
        }
    e->next = self->head;
    self->head = e;
    self->count++;
    return 0;
fail:
    s_entry_free (e);
    return -1;
}

int
templates_load_dir (templates_t *self, const char *dir, char *err, size_t errlen)
{
    assert (self && dir);
    DIR *d = opendir (dir);
    if (!d) {
        snprintf (err, errlen, "%s: %s", dir, strerror (errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir (d))) {
        size_t n = strlen (de->d_name);
        if (n < 5 || strcmp (de->d_name + n - 4, ".txt") != 0 || de->d_name[0] == '.')
            continue;
        char name[256];
        snprintf (name, sizeof name, "%.*s", (int) (n - 4), de->d_name);
        char *dot = strrchr (name, '.');
        char path[1024];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        if (!dot) {
            snprintf (err, errlen, "%s:1: file names are <template>.<language>.txt", path);
            rc = -1;
            break;
        }
        *dot = 0;
        FILE *f = fopen (path, "rb");
        if (!f) {
            snprintf (err, errlen, "%s:1: %s", path, strerror (errno));
            rc = -1;
            break;
        }
        char *buf = malloc (S_SRC_MAX + 1);
        size_t len = buf ? fread (buf, 1, S_SRC_MAX + 1, f) : 0;
        fclose (f);
        char why[200];
        if (!buf)
            snprintf (why, sizeof why, "line 1: out of memory");
        if (!buf || templates_add (self, name, dot + 1, buf, len, why, sizeof why) != 0) {
            snprintf (err, errlen, "%s:%s", path, strncmp (why, "line ", 5) == 0 ? why + 5 : why);
            rc = -1;
        }
        free (buf);
    }
    closedir (d);
    return rc;
}

static s_entry_t *
s_find (templates_t *self, const char *code, const char *lang)
{
    for (s_entry_t *e = self->head; e; e = e->next)
        if (strcmp (e->code, code) == 0 && strcmp (e->lang, lang) == 0)
            return e;
    return NULL;
}

bool
templates_has (templates_t *self, const char *code, const char *lang)
{
    return s_find (self, code, lang) != NULL;
}

size_t
templates_count (templates_t *self)
{
    return self->count;
}

void
rendered_clear (rendered_t *r)
{
    if (!r)
        return;
    free (r->subject);
    free (r->text);
    free (r->email);
    free (r->html);
    free (r->voice);
    memset (r, 0, sizeof *r);
}

static bool
s_rtl (const char *lang)
{
    static const char *rtl[] = { "ar", "fa", "ur", "he", "ps", "ckb" };
    for (size_t i = 0; i < sizeof rtl / sizeof rtl[0]; i++) {
        size_t n = strlen (rtl[i]);
        if (strncmp (lang, rtl[i], n) == 0 && (lang[n] == 0 || lang[n] == '-'))
            return true;
    }
    return false;
}

//  The HTML part: the escaped text, paragraphs at blank lines, line breaks kept, and the
//  direction and language on the root so that mail readers lay Arabic out right to left.
static char *
s_html (const tpl_t *email, const json_t *params, const char *lang, bool rtl, const char *title,
        char *reason, size_t reasonlen)
{
    char *inner = tpl_render (email, params, TPL_ESC_HTML, reason, reasonlen, NULL, 0);
    if (!inner)
        return NULL;
    s_buf_t b = { 0 };
    s_puts (&b, "<!DOCTYPE html>\n<html lang=\"");
    s_puts (&b, lang);
    s_puts (&b, rtl ? "\" dir=\"rtl\">\n" : "\" dir=\"ltr\">\n");
    s_puts (&b, "<head><meta charset=\"utf-8\"><title>");
    s_put_html (&b, title, strlen (title));
    s_puts (&b, "</title></head>\n<body");
    s_puts (&b, rtl ? " dir=\"rtl\" style=\"direction:rtl;text-align:right\">\n<p>"
                    : " dir=\"ltr\">\n<p>");
    for (const char *p = inner; *p; p++) {
        if (p[0] == '\n' && p[1] == '\n') {
            s_puts (&b, "</p>\n<p>");
            while (p[1] == '\n')
                p++;
        }
        else if (*p == '\n')
            s_puts (&b, "<br>\n");
        else
            s_put (&b, p, 1);
    }
    s_puts (&b, "</p>\n</body>\n</html>\n");
    free (inner);
    if (b.over) {
        free (b.p);
        snprintf (reason, reasonlen, "too_long");
        return NULL;
    }
    return b.p;
}

int
templates_render (templates_t *self, const char *code, const char *const *langs, int nlangs,
                  const char *fallback, const json_t *params, rendered_t *out, char *reason,
                  size_t reasonlen)
{
    assert (self && code && out && reason);
    memset (out, 0, sizeof *out);
    s_entry_t *e = NULL;
    for (int i = 0; i < nlangs && !e; i++)
        if (langs[i] && *langs[i])
            e = s_find (self, code, langs[i]);
    if (!e && fallback)
        e = s_find (self, code, fallback);
    if (!e) {
        snprintf (reason, reasonlen, "unknown_template");
        return -1;
    }
    snprintf (out->lang, sizeof out->lang, "%s", e->lang);
    out->rtl = s_rtl (e->lang);
    out->subject = tpl_render (e->subject, params, TPL_ESC_NONE, reason, reasonlen, NULL, 0);
    if (out->subject)
        out->text = tpl_render (e->text, params, TPL_ESC_NONE, reason, reasonlen, NULL, 0);
    const tpl_t *email = e->email ? e->email : e->text;
    if (out->text)
        out->email = tpl_render (email, params, TPL_ESC_NONE, reason, reasonlen, NULL, 0);
    if (out->email)
        out->html = s_html (email, params, e->lang, out->rtl, out->subject, reason, reasonlen);
    if (out->html)
        out->voice = tpl_render (e->voice ? e->voice : e->text, params, TPL_ESC_NONE, reason,
                                 reasonlen, NULL, 0);
    if (!out->voice) {
        rendered_clear (out);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  SMS length

//  The GSM 03.38 default alphabet (one septet) and its extension table (two septets), as
//  Unicode code points.
static const uint16_t s_gsm_basic[] = {
    '@', 0xa3, '$', 0xa5, 0xe8, 0xe9, 0xf9, 0xec, 0xf2, 0xc7, '\n', 0xd8, 0xf8, '\r', 0xc5, 0xe5,
    0x394, '_', 0x3a6, 0x393, 0x39b, 0x3a9, 0x3a0, 0x3a8, 0x3a3, 0x398, 0x39e, 0xc6, 0xe6, 0xdf,
    0xc9, ' ', '!', '"', '#', 0xa4, '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', ':',
    ';', '<', '=', '>', '?', 0xa1, 0xc4, 0xd6, 0xd1, 0xdc, 0xa7, 0xbf, 0xe4, 0xf6, 0xf1, 0xfc,
    0xe0
};
static const uint16_t s_gsm_ext[] = { '^', '{', '}', '\\', '[', '~', ']', '|', 0x20ac, '\f' };

static int
s_gsm_septets (uint32_t cp)
{
    if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
        return 1;
    for (size_t i = 0; i < sizeof s_gsm_basic / sizeof s_gsm_basic[0]; i++)
        if (s_gsm_basic[i] == cp)
            return 1;
    for (size_t i = 0; i < sizeof s_gsm_ext / sizeof s_gsm_ext[0]; i++)
        if (s_gsm_ext[i] == cp)
            return 2;
    return 0;
}

int
sms_length (const char *text, sms_length_t *out)
{
    assert (text && out);
    size_t n = strlen (text);
    if (!gl_utf8_valid (text, n, false))
        return -1;
    size_t septets = 0, utf16 = 0;
    bool gsm = true;
    const unsigned char *p = (const unsigned char *) text;
    while (*p) {
        uint32_t cp;
        int len;
        if (*p < 0x80) {
            cp = *p;
            len = 1;
        }
        else if ((*p & 0xe0) == 0xc0) {
            cp = *p & 0x1f;
            len = 2;
        }
        else if ((*p & 0xf0) == 0xe0) {
            cp = *p & 0x0f;
            len = 3;
        }
        else {
            cp = *p & 0x07;
            len = 4;
        }
        for (int i = 1; i < len; i++)
            cp = (cp << 6) | (p[i] & 0x3f);
        p += len;
        utf16 += cp > 0xffff ? 2 : 1;
        int s = s_gsm_septets (cp);
        if (s == 0)
            gsm = false;
        septets += (size_t) s;
    }
    out->ucs2 = !gsm;
    out->units = gsm ? septets : utf16;
    size_t single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    if (out->units == 0)
        out->segments = 1;
    else if (out->units <= single)
        out->segments = 1;
    else
        out->segments = (int) ((out->units + multi - 1) / multi);
    return 0;
}

bool
phone_e164 (const char *s)
{
    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (!isdigit ((unsigned char) *p))
            return false;
    return n >= 8 && n <= 15;
}
