/*  libFuzzer target: intake's request-body parser (http_json_parse) and the validation helpers
    that read its result never crash, leak or hang on any input; a refusal says where, in our
    words, without quoting the input; an accepted body is an object that survives a round trip;
    each helper either accepts a value within its rules or names the field. The same bytes also
    go through the path and query decoders, which must only ever hand on well-formed segments,
    and the Content-Type check.
    http.c is compiled in (tests/CMakeLists.txt links fuzz targets with glshared only). */
#include "../../services/intake/http.c"
#include <stdint.h>

static void
s_check_refusal (const char *message)
{
    bool ours = strncmp (message, "malformed JSON at line ", 23) == 0
             || strcmp (message, "the body must be a JSON object") == 0;
    if (!ours || strstr (message, " near "))
        abort ();
}

//  A refusal names the field it was about (cut to fit, at a character boundary), in UTF-8.
static void
s_check_verr (const s_verr_t *e, const char *code_expected, const char *field)
{
    size_t n = strlen (e->field);
    if (!e->code || !e->message[0] || !gl_utf8_valid (e->field, n, true)
        || !gl_utf8_valid (e->message, strlen (e->message), true))
        abort ();
    if (field && (strncmp (e->field, field, n) != 0 || (n < strlen (field) && n < 60)))
        abort ();
    if (code_expected && strcmp (e->code, code_expected) != 0)
        abort ();
}

//  Run every helper on every key of body.
static void
s_validate (const json_t *body)
{
    static const char *const allowed[] = { "kind", "view", "id", NULL };
    static const char *const colours[] = { "red", "green", NULL };
    s_verr_t e;
    if (s_check_only (body, allowed, &e) != 0)
        s_check_verr (&e, "unknown_field", NULL);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) body, key, value) {
        const char *str = NULL;
        if (s_check_str (body, key, true, 8, &str, &e) == 0) {
            if (!str || !*str || s_utf8_chars (str) > 8)
                abort ();
        }
        else
            s_check_verr (&e, NULL, key);
        int64_t n = -99;
        if (s_check_int (body, key, false, -5, 5, &n, &e) == 0) {
            if (n < -5 || n > 5)
                abort ();
        }
        else
            s_check_verr (&e, "invalid_field", key);
        bool b;
        if (s_check_bool (body, key, false, &b, &e) != 0)
            s_check_verr (&e, "invalid_field", key);
        const char *colour = NULL;
        if (s_check_enum (body, key, false, colours, &colour, &e) == 0) {
            if (colour != colours[0] && colour != colours[1])
                abort ();
        }
        else
            s_check_verr (&e, "invalid_field", key);
        const char *id = NULL;
        if (s_check_id (body, key, false, &id, &e) == 0) {
            if (!gl_id_valid (id))
                abort ();
        }
        else
            s_check_verr (&e, "invalid_field", key);
    }
}

static void
s_body (const uint8_t *data, size_t size)
{
    json_t *body = NULL;
    char message[192] = "";
    if (http_json_parse ((const char *) data, size, &body, message, sizeof message) != 0) {
        if (body)
            abort ();
        s_check_refusal (message);
        return;
    }
    if (!json_is_object (body))
        abort ();
    s_validate (body);
    //  What we accepted, written back, parses to the same thing.
    char *text = json_dumps (body, JSON_COMPACT);
    if (!text)
        abort ();
    json_t *again = NULL;
    if (http_json_parse (text, strlen (text), &again, message, sizeof message) != 0
        || !json_equal (body, again))
        abort ();
    free (text);
    json_decref (again);
    json_decref (body);
}

static void
s_path_and_query (const uint8_t *data, size_t size)
{
    char *text = strndup ((const char *) data, size);
    if (!text)
        return;
    http_req_t *req = calloc (1, sizeof *req);
    if (!req) {
        free (text);
        return;
    }
    int rc = s_split_path (req, text);
    if (rc != 0 && rc != 400 && rc != 404 && rc != 414)
        abort ();
    for (size_t i = 0; rc == 0 && i < req->nsegs; i++) {
        const char *seg = req->segs[i];
        if (!*seg || strchr (seg, '/') || strcmp (seg, ".") == 0 || strcmp (seg, "..") == 0
            || !gl_utf8_valid (seg, strlen (seg), true))
            abort ();
    }
    s_is_json_type (text);
    s_verr_t e = { 0 };
    if (s_parse_query (req, text, &e) == 0) {
        for (size_t i = 0; i < req->nquery; i++)
            if (!s_query_key_valid (req->qkeys[i])
                || !gl_utf8_valid (req->qvals[i], strlen (req->qvals[i]), true))
                abort ();
    }
    else if (!e.code)
        abort ();
    free (req->query_buf);
    free (req);
    free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_body (data, size);
    s_path_and_query (data, size);
    return 0;
}
