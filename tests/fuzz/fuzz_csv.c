/*  libFuzzer target: gl_csv_parse never crashes, leaks or hangs on any input, under the default
    limits and under small ones taken from the input's first byte. Every row it hands on keeps
    the limits, holds valid UTF-8 without NUL, and written back as CSV (every field quoted) reads
    back to the same rows; a refusal says where (row, column, line), after exactly the rows before
    it, and never quotes the input.
    Used by intake's case-status import and scheduler's outbound target lists. */
#include "gl/gl_csv.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const gl_csv_limits_t *limits;
    size_t rows;
    size_t width;
    char *out;              //  the rows written back, every field quoted
    size_t out_len, out_cap;
} s_state_t;

static void
s_append (s_state_t *s, const char *data, size_t len)
{
    if (s->out_len + len + 1 > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap * 2 : 1024;
        while (cap < s->out_len + len + 1)
            cap *= 2;
        s->out = realloc (s->out, cap);
        if (!s->out)
            abort ();
        s->out_cap = cap;
    }
    memcpy (s->out + s->out_len, data, len);
    s->out_len += len;
}

static int
s_row (void *arg, const gl_csv_row_t *row)
{
    s_state_t *s = arg;
    s->rows++;
    if (row->row != s->rows || row->count == 0 || row->count > s->limits->max_fields
        || row->row > s->limits->max_rows || row->line < row->row)
        abort ();
    if (s->rows == 1)
        s->width = row->count;
    else if (s->limits->same_width && row->count != s->width)
        abort ();
    for (size_t i = 0; i < row->count; i++) {
        if (row->lens[i] > s->limits->max_field || strlen (row->fields[i]) != row->lens[i]
            || !gl_csv_utf8_valid (row->fields[i], row->lens[i]))
            abort ();
        //  Written back quoted: '"' doubled.
        s_append (s, i ? ",\"" : "\"", i ? 2 : 1);
        for (size_t k = 0; k < row->lens[i]; k++) {
            s_append (s, &row->fields[i][k], 1);
            if (row->fields[i][k] == '"')
                s_append (s, "\"", 1);
        }
        s_append (s, "\"", 1);
    }
    s_append (s, "\r\n", 2);
    return 0;
}

static void
s_run (const uint8_t *data, size_t size, const gl_csv_limits_t *limits)
{
    s_state_t s = { .limits = limits };
    gl_csv_error_t err;
    int rc = gl_csv_parse ((const char *) data, size, limits, s_row, &s, &err);
    if (rc == -1) {
        char where[64];
        snprintf (where, sizeof where, "row %zu", err.row);
        if (err.code == GL_CSV_OK || err.row != s.rows + 1 || err.column == 0 || err.line == 0
            || !strstr (err.message, where))
            abort ();
        //  No input in the message: it is made of our words and numbers only.
        for (const char *p = err.message; *p; p++)
            if ((unsigned char) *p >= 0x80)
                abort ();
    }
    else if (rc != 0 || err.code != GL_CSV_OK)
        abort ();
    else {
        //  What was read, written back, reads back the same: same rows, and written back
        //  again, the same bytes (quoting adds nothing to a field's own bytes).
        s_state_t copy = { .limits = limits };
        if (gl_csv_parse (s.out ? s.out : "", s.out_len, limits, s_row, &copy, NULL) != 0
            || copy.rows != s.rows || copy.out_len != s.out_len
            || (s.out_len && memcmp (copy.out, s.out, s.out_len) != 0))
            abort ();
        free (copy.out);
    }
    free (s.out);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    gl_csv_limits_t limits;
    gl_csv_limits_default (&limits);
    s_run (data, size, &limits);
    if (size > 0) {
        //  Small limits from the first byte, so every limit is reached often.
        limits.max_field = 1 + (data[0] & 0x07);
        limits.max_fields = 1 + ((data[0] >> 3) & 0x03);
        limits.max_rows = 1 + ((data[0] >> 5) & 0x03);
        limits.same_width = (data[0] & 0x80) == 0;
        s_run (data + 1, size - 1, &limits);
    }
    return 0;
}
