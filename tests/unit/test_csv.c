/*  gl_csv: RFC 4180 reading (quotes, embedded commas and line ends, CRLF, BOM), its refusals with
    row, column and line, its limits, and that no refusal quotes the input.
    ctest: timeout=60 */
#include "gl/gl_csv.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

//  Every row read, as "f1|f2|..." lines, with each row's number and line.
typedef struct {
    char text[4096];
    size_t rows;
    size_t lines[64];
    size_t stop_after;      //  0: never stop
} t_rows_t;

static int
t_collect (void *arg, const gl_csv_row_t *row)
{
    t_rows_t *r = arg;
    assert_int_equal (row->row, r->rows + 1);
    assert_true (row->count >= 1);
    if (r->rows < 64)
        r->lines[r->rows] = row->line;
    r->rows++;
    size_t n = strlen (r->text);
    for (size_t i = 0; i < row->count; i++) {
        assert_int_equal (strlen (row->fields[i]), row->lens[i]);
        n += (size_t) snprintf (r->text + n, sizeof r->text - n, "%s%s", i ? "|" : "",
                                row->fields[i]);
    }
    snprintf (r->text + n, sizeof r->text - n, "\n");
    return r->stop_after && r->rows == r->stop_after;
}

static int
t_parse (const char *input, size_t len, const gl_csv_limits_t *limits, t_rows_t *rows,
         gl_csv_error_t *err)
{
    memset (rows, 0, sizeof *rows);
    return gl_csv_parse (input, len, limits, t_collect, rows, err);
}

static void
t_ok (const char *input, const char *expected, size_t rows_expected)
{
    t_rows_t rows;
    gl_csv_error_t err;
    int rc = t_parse (input, strlen (input), NULL, &rows, &err);
    if (rc != 0)
        fprintf (stderr, "refused: %s\n", err.message);
    assert_int_equal (rc, 0);
    assert_int_equal (err.code, GL_CSV_OK);
    assert_string_equal (rows.text, expected);
    assert_int_equal (rows.rows, rows_expected);
}

//  A refusal: its code, row, column and line; the message names row and column and quotes
//  nothing of the input (every test input holds the marker SECRET in some field).
static void
t_refused (const char *input, size_t len, const gl_csv_limits_t *limits, gl_csv_err_t code,
           size_t row, size_t column, size_t line)
{
    t_rows_t rows;
    gl_csv_error_t err;
    int rc = t_parse (input, len, limits, &rows, &err);
    if (rc != -1 || err.code != code || err.row != row || err.column != column
        || err.line != line)
        fprintf (stderr, "rc %d code %s row %zu column %zu line %zu: %s\n", rc,
                 gl_csv_err_name (err.code), err.row, err.column, err.line, err.message);
    assert_int_equal (rc, -1);
    assert_int_equal (err.code, code);
    assert_int_equal (err.row, row);
    assert_int_equal (err.column, column);
    assert_int_equal (err.line, line);
    char where[64];
    snprintf (where, sizeof where, "row %zu", row);
    assert_non_null (strstr (err.message, where));
    if (code != GL_CSV_ERR_ROW_COUNT) {
        snprintf (where, sizeof where, "column %zu", column);
        assert_non_null (strstr (err.message, where));
    }
    assert_null (strstr (err.message, "SECRET"));
    //  The rows before the bad one were handed on.
    assert_int_equal (rows.rows, row - 1);
}

static void
test_plain_and_line_ends (void **state)
{
    t_ok ("a,b,c\n1,2,3\n", "a|b|c\n1|2|3\n", 2);
    t_ok ("a,b,c\r\n1,2,3\r\n", "a|b|c\n1|2|3\n", 2);
    t_ok ("a,b,c\r\n1,2,3", "a|b|c\n1|2|3\n", 2);     //  no line end after the last row
    t_ok ("a,b\n1,2\r\n3,4", "a|b\n1|2\n3|4\n", 3);    //  mixed line ends
    t_ok ("", "", 0);
    t_ok ("\n\r\n\n", "", 0);                           //  only empty lines
    t_ok ("a\n\n\r\nb\n", "a\nb\n", 2);                 //  empty lines are not rows
    t_ok ("a,,c\n,,\n", "a||c\n||\n", 2);               //  empty fields
    t_ok ("a,b,\n1,2,\n", "a|b|\n1|2|\n", 2);           //  a trailing comma is an empty field
    t_ok (" a , b \n", " a | b \n", 1);                 //  spaces are data
}

static void
test_bom_and_utf8 (void **state)
{
    t_ok ("\xef\xbb\xbf" "case_no,name\nX1,\xd8\xb9\xd9\x84\xd9\x8a\n",
          "case_no|name\nX1|\xd8\xb9\xd9\x84\xd9\x8a\n", 2);
    //  A BOM anywhere else is data.
    t_ok ("a,\xef\xbb\xbf" "b\n", "a|\xef\xbb\xbf" "b\n", 1);
    assert_true (gl_csv_utf8_valid ("\xf0\x9f\x98\x80", 4));           //  U+1F600
    assert_false (gl_csv_utf8_valid ("\xc0\xaf", 2));                   //  overlong '/'
    assert_false (gl_csv_utf8_valid ("\xed\xa0\x80", 3));               //  a surrogate
    assert_false (gl_csv_utf8_valid ("\xf4\x90\x80\x80", 4));           //  past U+10FFFF
    assert_false (gl_csv_utf8_valid ("\xe2\x82", 2));                   //  truncated
    assert_false (gl_csv_utf8_valid ("\xff", 1));
    const char bad[] = "a,b\nSECRET,x\xffy\n";
    t_refused (bad, sizeof bad - 1, NULL, GL_CSV_ERR_UTF8, 2, 2, 2);
}

static void
test_quotes (void **state)
{
    t_ok ("\"a,b\",c\n", "a,b|c\n", 1);
    t_ok ("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x\n", 1);
    t_ok ("\"\",\"\"\n", "|\n", 1);
    t_ok ("\"\"\"\"\n", "\"\n", 1);
    //  Line ends inside quotes are data, CR LF kept as it is; the next row's line is counted.
    t_rows_t rows;
    gl_csv_error_t err;
    const char *multi = "h1,h2\r\n\"line one\r\nline two\",\"x\ny\"\r\nlast,row\r\n";
    assert_int_equal (t_parse (multi, strlen (multi), NULL, &rows, &err), 0);
    assert_string_equal (rows.text, "h1|h2\nline one\r\nline two|x\ny\nlast|row\n");
    assert_int_equal (rows.rows, 3);
    assert_int_equal (rows.lines[0], 1);
    assert_int_equal (rows.lines[1], 2);
    assert_int_equal (rows.lines[2], 5);
    //  A quoted last field with no line end after it.
    t_ok ("a,\"b\"", "a|b\n", 1);
}

static void
test_refusals (void **state)
{
    const char quote[] = "a,b\nSECRET,x\"y\n";
    t_refused (quote, sizeof quote - 1, NULL, GL_CSV_ERR_QUOTE, 2, 2, 2);
    const char after[] = "a,b\n\"SECRET\"x,y\n";
    t_refused (after, sizeof after - 1, NULL, GL_CSV_ERR_AFTER_QUOTE, 2, 1, 2);
    const char open[] = "a,b\nx,\"SECRET\n\n";
    t_refused (open, sizeof open - 1, NULL, GL_CSV_ERR_UNTERMINATED, 2, 2, 2);
    const char cr[] = "a,b\nSECRET\r,y\n";
    t_refused (cr, sizeof cr - 1, NULL, GL_CSV_ERR_CR, 2, 1, 2);
    const char lone_cr[] = "a,b\nSECRET,c\n\r";
    t_refused (lone_cr, sizeof lone_cr - 1, NULL, GL_CSV_ERR_CR, 3, 1, 3);
    const char cr_after_quote[] = "a,b\n\"SECRET\"\r";
    t_refused (cr_after_quote, sizeof cr_after_quote - 1, NULL, GL_CSV_ERR_CR, 2, 1, 2);
    const char nul[] = "a,b\nSECRET,x\0y\n";
    t_refused (nul, sizeof nul - 1, NULL, GL_CSV_ERR_NUL, 2, 2, 2);
    const char nul_quoted[] = "a,b\nSECRET,\"x\0y\"\n";
    t_refused (nul_quoted, sizeof nul_quoted - 1, NULL, GL_CSV_ERR_NUL, 2, 2, 2);
    //  Found on the field's third line: the row and the line differ, and both are named.
    const char late[] = "a,b\n\"SECRET\n\nz\"q,b\n";
    t_rows_t rows;
    gl_csv_error_t err;
    assert_int_equal (t_parse (late, sizeof late - 1, NULL, &rows, &err), -1);
    assert_int_equal (err.code, GL_CSV_ERR_AFTER_QUOTE);
    assert_int_equal (err.row, 2);
    assert_int_equal (err.line, 4);
    assert_non_null (strstr (err.message, "(line 4)"));
    //  A different width, missing and extra fields: the first column at fault.
    const char narrow[] = "a,b,c\nSECRET,2\n";
    t_refused (narrow, sizeof narrow - 1, NULL, GL_CSV_ERR_WIDTH, 2, 3, 2);
    const char wide[] = "a,b\n1,2\nSECRET,2,3,4\n";
    t_refused (wide, sizeof wide - 1, NULL, GL_CSV_ERR_WIDTH, 3, 3, 3);
    gl_csv_limits_t limits;
    gl_csv_limits_default (&limits);
    limits.same_width = false;
    assert_int_equal (t_parse (wide, sizeof wide - 1, &limits, &rows, &err), 0);
    assert_int_equal (rows.rows, 3);
}

static void
test_limits (void **state)
{
    gl_csv_limits_t limits;
    gl_csv_limits_default (&limits);
    assert_int_equal (limits.max_field, GL_CSV_MAX_FIELD_DEFAULT);
    assert_int_equal (limits.max_fields, GL_CSV_MAX_FIELDS_DEFAULT);
    assert_int_equal (limits.max_rows, GL_CSV_MAX_ROWS_DEFAULT);
    assert_true (limits.same_width);
    limits.max_field = 6;
    limits.max_fields = 3;
    limits.max_rows = 3;
    t_rows_t rows;
    gl_csv_error_t err;
    //  Exactly at each limit: read.
    const char at[] = "SECRET,\"ab\"\"cd\",c\n1,2,3\n4,5,6\n";     //  "ab"cd" is 5 bytes
    assert_int_equal (t_parse (at, sizeof at - 1, &limits, &rows, &err), 0);
    assert_int_equal (rows.rows, 3);
    //  One past: refused where it happens.
    const char field[] = "a,b,c\n1,SECRETS,3\n";
    t_refused (field, sizeof field - 1, &limits, GL_CSV_ERR_FIELD_SIZE, 2, 2, 2);
    const char quoted[] = "a,b,c\n1,2,\"SECRET\n\"\n";
    t_refused (quoted, sizeof quoted - 1, &limits, GL_CSV_ERR_FIELD_SIZE, 2, 3, 2);
    const char count[] = "a,b,c\n1,2,3,SECRET\n";
    t_refused (count, sizeof count - 1, &limits, GL_CSV_ERR_FIELD_COUNT, 2, 4, 2);
    const char many[] = "a,b,c\n1,2,3\n4,5,6\nSECRET,8,9\n";
    t_refused (many, sizeof many - 1, &limits, GL_CSV_ERR_ROW_COUNT, 4, 1, 4);
    //  A long input of empty lines is not rows.
    size_t n = 100000;
    char *blank = malloc (n + 8);
    assert_non_null (blank);
    memset (blank, '\n', n);
    memcpy (blank + n, "a,b,c\n", 6);
    assert_int_equal (t_parse (blank, n + 6, &limits, &rows, &err), 0);
    assert_int_equal (rows.rows, 1);
    assert_int_equal (rows.lines[0], n + 1);
    free (blank);
    //  Limits that make no sense are refused.
    limits.max_fields = 0;
    assert_int_equal (t_parse ("a", 1, &limits, &rows, &err), -1);
    limits.max_fields = GL_CSV_MAX_FIELDS_LIMIT + 1;
    assert_int_equal (t_parse ("a", 1, &limits, &rows, &err), -1);
}

static void
test_callback_stops (void **state)
{
    t_rows_t rows;
    memset (&rows, 0, sizeof rows);
    rows.stop_after = 2;
    const char *text = "a\nb\nc\nd\n";
    gl_csv_error_t err;
    assert_int_equal (gl_csv_parse (text, strlen (text), NULL, t_collect, &rows, &err), 1);
    assert_int_equal (rows.rows, 2);
    assert_int_equal (err.code, GL_CSV_OK);
    //  err may be NULL.
    memset (&rows, 0, sizeof rows);
    assert_int_equal (gl_csv_parse ("a\"", 2, NULL, t_collect, &rows, NULL), -1);
    assert_string_equal (gl_csv_err_name (GL_CSV_ERR_FIELD_SIZE), "field_size");
    assert_string_equal (gl_csv_err_name ((gl_csv_err_t) 99), "unknown");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_plain_and_line_ends),
        cmocka_unit_test (test_bom_and_utf8),
        cmocka_unit_test (test_quotes),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_callback_stops),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
