/*  gl_csv — see gl_csv.h.

    One pass over the bytes with an explicit position. A row's fields are collected in one arena
    (offsets while the arena may move, pointers once the row is complete), so a row costs at most
    max_fields * (max_field + 1) bytes however long the input is.
*/
#include "gl/gl_csv.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_err_names[GL_CSV_ERR__COUNT] = {
    "ok", "quote", "after_quote", "unterminated", "cr", "nul", "utf8", "field_size",
    "field_count", "row_count", "width", "memory",
};

static const char *s_err_text[GL_CSV_ERR__COUNT] = {
    "no error",
    "a quote inside an unquoted field (quote the whole field and double the quote)",
    "a closing quote must be followed by a comma or the end of the line",
    "a quoted field is not closed before the end of the input",
    "a carriage return not followed by a line feed",
    "a NUL byte",
    "the field is not valid UTF-8",
    "the field is too long",
    "too many fields in the row",
    "too many rows",
    "the row does not have as many fields as the first row",
    "out of memory",
};

typedef struct {
    const unsigned char *buf;
    size_t len;
    size_t pos;
    size_t line;
    const gl_csv_limits_t *limits;
    gl_csv_error_t *err;
    //  The row being read.
    size_t row;
    size_t row_line;
    char *arena;
    size_t used, cap;
    size_t *offs;
    size_t *lens;
    const char **fields;
    size_t count;
    size_t width;           //  fields of the first row
} s_parser_t;

void
gl_csv_limits_default (gl_csv_limits_t *limits)
{
    assert (limits);
    limits->max_field = GL_CSV_MAX_FIELD_DEFAULT;
    limits->max_fields = GL_CSV_MAX_FIELDS_DEFAULT;
    limits->max_rows = GL_CSV_MAX_ROWS_DEFAULT;
    limits->same_width = true;
}

const char *
gl_csv_err_name (gl_csv_err_t code)
{
    return (unsigned) code < GL_CSV_ERR__COUNT ? s_err_names[code] : "unknown";
}

bool
gl_csv_utf8_valid (const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        }
        else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        }
        else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        }
        else
            return false;
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

//  Record the failure at the current row and column. Returns -1.
static int
s_fail (s_parser_t *p, gl_csv_err_t code, size_t line)
{
    gl_csv_error_t *e = p->err;
    e->code = code;
    e->row = p->row;
    e->column = p->count + 1;
    e->line = line;
    if (code == GL_CSV_ERR_ROW_COUNT)
        snprintf (e->message, sizeof e->message, "row %zu: more than %zu rows", p->row,
                  p->limits->max_rows);
    else if (code == GL_CSV_ERR_FIELD_COUNT)
        snprintf (e->message, sizeof e->message, "row %zu, column %zu: more than %zu fields",
                  p->row, e->column, p->limits->max_fields);
    else if (code == GL_CSV_ERR_FIELD_SIZE)
        snprintf (e->message, sizeof e->message, "row %zu, column %zu: longer than %zu bytes",
                  p->row, e->column, p->limits->max_field);
    else if (code == GL_CSV_ERR_WIDTH) {
        //  The first column that is missing, or the first one too many.
        e->column = (p->count < p->width ? p->count : p->width) + 1;
        snprintf (e->message, sizeof e->message,
                  "row %zu, column %zu: the row has %zu fields, the first row %zu", p->row,
                  e->column, p->count, p->width);
    }
    else
        snprintf (e->message, sizeof e->message, "row %zu, column %zu: %s", p->row, e->column,
                  s_err_text[code]);
    if (line != p->row && code != GL_CSV_ERR_ROW_COUNT) {
        size_t n = strlen (e->message);
        snprintf (e->message + n, sizeof e->message - n, " (line %zu)", line);
    }
    return -1;
}

static int
s_reserve (s_parser_t *p, size_t more)
{
    if (p->used + more <= p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : 256;
    while (cap < p->used + more)
        cap *= 2;
    char *arena = realloc (p->arena, cap);
    if (!arena)
        return -1;
    p->arena = arena;
    p->cap = cap;
    return 0;
}

//  Append one byte to the field that starts at start.
static int
s_put (s_parser_t *p, size_t start, unsigned char c)
{
    if (p->used - start >= p->limits->max_field)
        return s_fail (p, GL_CSV_ERR_FIELD_SIZE, p->line);
    if (s_reserve (p, 2) != 0)
        return s_fail (p, GL_CSV_ERR_MEMORY, p->line);
    p->arena[p->used++] = (char) c;
    return 0;
}

//  Close the field that starts at start.
static int
s_end_field (s_parser_t *p, size_t start, size_t line)
{
    if (s_reserve (p, 1) != 0)
        return s_fail (p, GL_CSV_ERR_MEMORY, line);
    size_t len = p->used - start;
    if (!gl_csv_utf8_valid (p->arena + start, len))
        return s_fail (p, GL_CSV_ERR_UTF8, line);
    p->arena[p->used++] = 0;
    p->offs[p->count] = start;
    p->lens[p->count] = len;
    p->count++;
    return 0;
}

//  What is at pos: 1 for a line end (LF, or CR LF), -1 for a CR without LF, 0 for anything
//  else or the end of the input. Consumes nothing.
static int
s_peek_end (const s_parser_t *p)
{
    if (p->pos >= p->len)
        return 0;
    if (p->buf[p->pos] == '\n')
        return 1;
    if (p->buf[p->pos] == '\r')
        return p->pos + 1 < p->len && p->buf[p->pos + 1] == '\n' ? 1 : -1;
    return 0;
}

//  Consume the line end s_peek_end found.
static void
s_skip_end (s_parser_t *p)
{
    p->pos += p->buf[p->pos] == '\r' ? 2 : 1;
    p->line++;
}

//  A quoted field, pos on its opening quote. Sets *more when a ',' followed it.
static int
s_quoted (s_parser_t *p, bool *more)
{
    size_t start = p->used, line = p->line;
    p->pos++;
    while (true) {
        if (p->pos >= p->len)
            return s_fail (p, GL_CSV_ERR_UNTERMINATED, line);
        unsigned char c = p->buf[p->pos];
        if (c == '"') {
            if (p->pos + 1 < p->len && p->buf[p->pos + 1] == '"') {
                if (s_put (p, start, '"') != 0)
                    return -1;
                p->pos += 2;
                continue;
            }
            p->pos++;
            break;
        }
        if (c == 0)
            return s_fail (p, GL_CSV_ERR_NUL, p->line);
        if (s_put (p, start, c) != 0)
            return -1;
        if (c == '\n')
            p->line++;
        p->pos++;
    }
    *more = p->pos < p->len && p->buf[p->pos] == ',';
    int end = s_peek_end (p);
    if (end < 0)
        return s_fail (p, GL_CSV_ERR_CR, p->line);
    if (p->pos < p->len && !*more && end == 0)
        return s_fail (p, GL_CSV_ERR_AFTER_QUOTE, p->line);
    if (s_end_field (p, start, line) != 0)
        return -1;
    if (*more)
        p->pos++;
    else if (end > 0)
        s_skip_end (p);
    return 0;
}

//  An unquoted field. Sets *more when a ',' ended it.
static int
s_unquoted (s_parser_t *p, bool *more)
{
    size_t start = p->used, line = p->line;
    *more = false;
    while (p->pos < p->len) {
        unsigned char c = p->buf[p->pos];
        if (c == ',') {
            p->pos++;
            *more = true;
            break;
        }
        int end = s_peek_end (p);
        if (end < 0)
            return s_fail (p, GL_CSV_ERR_CR, p->line);
        if (end > 0) {
            if (s_end_field (p, start, line) != 0)
                return -1;
            s_skip_end (p);
            return 0;
        }
        if (c == '"')
            return s_fail (p, GL_CSV_ERR_QUOTE, p->line);
        if (c == 0)
            return s_fail (p, GL_CSV_ERR_NUL, p->line);
        if (s_put (p, start, c) != 0)
            return -1;
        p->pos++;
    }
    return s_end_field (p, start, line);
}

//  One row, pos at its first byte (not a line end).
static int
s_row (s_parser_t *p, gl_csv_row_fn *fn, void *arg)
{
    p->row++;
    p->row_line = p->line;
    p->count = 0;
    p->used = 0;
    if (p->row > p->limits->max_rows)
        return s_fail (p, GL_CSV_ERR_ROW_COUNT, p->line);
    bool more = true;
    while (more) {
        if (p->count == p->limits->max_fields)
            return s_fail (p, GL_CSV_ERR_FIELD_COUNT, p->line);
        bool quoted = p->pos < p->len && p->buf[p->pos] == '"';
        int rc = quoted ? s_quoted (p, &more) : s_unquoted (p, &more);
        if (rc != 0)
            return -1;
    }
    if (p->row == 1)
        p->width = p->count;
    else if (p->limits->same_width && p->count != p->width)
        return s_fail (p, GL_CSV_ERR_WIDTH, p->row_line);
    for (size_t i = 0; i < p->count; i++)
        p->fields[i] = p->arena + p->offs[i];
    gl_csv_row_t row = { .row = p->row, .line = p->row_line, .count = p->count,
                         .fields = p->fields, .lens = p->lens };
    return fn (arg, &row) == 0 ? 0 : 1;
}

int
gl_csv_parse (const char *buf, size_t len, const gl_csv_limits_t *limits, gl_csv_row_fn *fn,
              void *arg, gl_csv_error_t *err)
{
    assert (fn);
    assert (buf || len == 0);
    gl_csv_error_t spare;
    if (!err)
        err = &spare;
    memset (err, 0, sizeof *err);
    gl_csv_limits_t defaults;
    if (!limits) {
        gl_csv_limits_default (&defaults);
        limits = &defaults;
    }
    if (limits->max_field == 0 || limits->max_field > SIZE_MAX / 2 - 1 || limits->max_fields == 0
        || limits->max_fields > GL_CSV_MAX_FIELDS_LIMIT || limits->max_rows == 0) {
        err->code = GL_CSV_ERR_MEMORY;
        snprintf (err->message, sizeof err->message, "invalid limits");
        return -1;
    }
    s_parser_t p = { .buf = (const unsigned char *) buf, .len = len, .line = 1,
                     .limits = limits, .err = err };
    p.offs = calloc (limits->max_fields, sizeof *p.offs);
    p.lens = calloc (limits->max_fields, sizeof *p.lens);
    p.fields = calloc (limits->max_fields, sizeof *p.fields);
    int rc = 0;
    if (!p.offs || !p.lens || !p.fields)
        rc = s_fail (&p, GL_CSV_ERR_MEMORY, 1);
    if (rc == 0 && len >= 3 && memcmp (buf, "\xef\xbb\xbf", 3) == 0)
        p.pos = 3;
    while (rc == 0 && p.pos < p.len) {
        //  Empty lines are not rows (a lone CR is, and s_row refuses it).
        if (s_peek_end (&p) > 0)
            s_skip_end (&p);
        else
            rc = s_row (&p, fn, arg);
    }
    free (p.arena);
    free (p.offs);
    free (p.lens);
    free (p.fields);
    return rc;
}
