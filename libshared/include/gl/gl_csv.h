/*  gl_csv — a strict, bounded CSV reader (RFC 4180) for files that come from outside: intake's
    case-status extract, scheduler's outbound target lists.

    What it reads:
      - fields separated by ',', records ended by CRLF or LF (the last one may have no ending);
      - a field that starts with '"' is quoted: it may hold ',', CR, LF and '""' (one quote) and
        must be followed by ',', a line end or the end of the input;
      - a UTF-8 byte-order mark at the very start is skipped;
      - an empty line (nothing between two line ends) is skipped and is not a row;
      - spaces are data: nothing is trimmed.
    What it refuses, naming the row, the column and the physical line: a '"' inside an unquoted
    field, anything but ',' or a line end after a closing quote, a quoted field still open at the
    end, a CR not followed by LF outside quotes, a NUL byte, invalid UTF-8 in a field, a field
    longer than max_field bytes, more than max_fields fields in a row, more than max_rows rows, and
    (with same_width) a row whose field count differs from the first row's.
    Error messages never quote the input: it may hold personal data.

    Rows are numbered from 1 and the header, if the file has one, is row 1 (as a spreadsheet shows
    them when no field spans lines); columns are numbered from 1.

        static int
        s_row (void *arg, const gl_csv_row_t *row)
        {
            for (size_t i = 0; i < row->count; i++)
                use (row->fields[i], row->lens[i]);
            return 0;                           //  non-zero stops the parse
        }
        gl_csv_limits_t limits;
        gl_csv_limits_default (&limits);
        gl_csv_error_t err;
        int rc = gl_csv_parse (text, len, &limits, s_row, state, &err);
        //  0: every row read; -1: err says what and where; 1: s_row stopped it

    Memory: one row at a time, at most max_fields * (max_field + 1) bytes plus the field table.
*/
#ifndef GL_CSV_H
#define GL_CSV_H
#include <stdbool.h>
#include <stddef.h>

#define GL_CSV_MAX_FIELD_DEFAULT    1024        //  bytes in one field, after unquoting
#define GL_CSV_MAX_FIELDS_DEFAULT   64          //  fields in one row
#define GL_CSV_MAX_ROWS_DEFAULT     100000      //  rows, the header included
#define GL_CSV_MAX_FIELDS_LIMIT     4096        //  the most max_fields may be

typedef struct {
    size_t max_field;       //  1.. bytes in a field
    size_t max_fields;      //  1..GL_CSV_MAX_FIELDS_LIMIT fields in a row
    size_t max_rows;        //  1.. rows
    bool same_width;        //  every row has as many fields as the first (default true)
} gl_csv_limits_t;

//  Why a parse failed.
typedef enum {
    GL_CSV_OK = 0,
    GL_CSV_ERR_QUOTE,           //  '"' inside an unquoted field
    GL_CSV_ERR_AFTER_QUOTE,     //  a closing quote followed by other than ',' or a line end
    GL_CSV_ERR_UNTERMINATED,    //  the input ends inside a quoted field
    GL_CSV_ERR_CR,              //  a CR without LF outside quotes
    GL_CSV_ERR_NUL,             //  a NUL byte
    GL_CSV_ERR_UTF8,            //  a field that is not valid UTF-8
    GL_CSV_ERR_FIELD_SIZE,      //  a field over max_field bytes
    GL_CSV_ERR_FIELD_COUNT,     //  a row with more than max_fields fields
    GL_CSV_ERR_ROW_COUNT,       //  more than max_rows rows
    GL_CSV_ERR_WIDTH,           //  a row whose field count differs from the first row's
    GL_CSV_ERR_MEMORY,          //  out of memory
    GL_CSV_ERR__COUNT
} gl_csv_err_t;

typedef struct {
    gl_csv_err_t code;
    size_t row;             //  1-based row where it happened
    size_t column;          //  1-based field of that row
    size_t line;            //  1-based physical line (differs from row when fields span lines)
    char message[192];      //  "row 3, column 2: a quote inside an unquoted field"
} gl_csv_error_t;

//  One row as the callback sees it; everything is borrowed and valid during the call only.
//  Fields are NUL-terminated (a field never holds a NUL byte) and valid UTF-8.
typedef struct {
    size_t row;             //  1-based
    size_t line;            //  physical line the row starts on
    size_t count;           //  fields, at least 1
    const char *const *fields;
    const size_t *lens;     //  bytes of each field
} gl_csv_row_t;

//  Called once per row; 0 goes on, anything else stops the parse.
typedef int (gl_csv_row_fn) (void *arg, const gl_csv_row_t *row);

//  Fill limits with the defaults above (same_width true).
void gl_csv_limits_default (gl_csv_limits_t *limits);

//  Read buf (len bytes, need not be NUL-terminated) and call fn for each row, in order. limits
//  NULL means the defaults. Returns 0 when every row was read; -1 when the input breaks a rule
//  or a limit (err filled; the rows before it were already passed to fn), or limits are invalid;
//  1 when fn stopped it. err may be NULL; it is left with code GL_CSV_OK unless -1 is returned.
int gl_csv_parse (const char *buf, size_t len, const gl_csv_limits_t *limits, gl_csv_row_fn *fn,
                  void *arg, gl_csv_error_t *err);

//  Short name of an error code, for logs and metrics labels ("quote", "field_size", ...).
const char *gl_csv_err_name (gl_csv_err_t code);

//  True when s[0..len) is valid UTF-8 (no overlong forms, surrogates or code points past
//  U+10FFFF).
bool gl_csv_utf8_valid (const char *s, size_t len);

#endif
