/*  http — see http.h.

    Why some things are done here rather than by evhttp:
      - Paths are split and percent-decoded here, strictly, one segment at a time, so that an
        encoded '/' or a "." / ".." segment can never reach a handler or the file system.
      - Query strings are parsed here (evhttp_parse_query_str is lenient about bad escapes and
        keeps duplicates), strictly, into the request.
      - The body limit: evhttp answers bodies over its own limit with an HTML page we cannot
        shape. So evhttp's limit is a hard cap well above GL_HTTP_MAX_BODY (bounded memory per
        connection), and bodies between the two get our JSON 413. Over the cap, evhttp reads
        and drops the body (lingering close) and answers its own 413.
      - A body on a method that takes none is refused and the connection closed: evhttp does
        not read such a body, and would parse it as the next request on the connection.
*/
#include "http.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_health.h"
#include "gl/gl_log.h"
#include "gl/gl_msgpack.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_ROUTES_MAX        512
#define S_ROUTE_SEGMENTS    16
#define S_PATTERN_MAX       128
#define S_HARD_CAP_MIN      (1 << 20)
#define S_CSP "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

typedef enum { S_GET, S_POST, S_PUT, S_PATCH, S_DELETE, S_METHODS } s_method_t;
static const char *s_method_names[S_METHODS] = { "GET", "POST", "PUT", "PATCH", "DELETE" };

typedef enum { S_SEG_REST = 0, S_SEG_PARAM = 1, S_SEG_LITERAL = 2 } s_seg_kind_t;

typedef struct {
    s_seg_kind_t kind;
    const char *text;           //  literal text or parameter name (inside storage)
} s_seg_t;

typedef struct {
    s_method_t method;
    char pattern[S_PATTERN_MAX + 1];
    char storage[S_PATTERN_MAX + 1];
    s_seg_t segs[S_ROUTE_SEGMENTS];
    size_t nsegs;
    uint32_t roles;
    http_handler_fn *fn;
    gl_metric_t *classes[5];    //  1xx..5xx, registered on first use
    gl_metric_t *latency;
} s_route_t;

struct _http_t {
    intake_t *owner;
    s_route_t *routes[S_ROUTES_MAX];
    size_t count;
    struct evhttp *evhttp;
    int port;
    size_t max_body;
    s_route_t unmatched;        //  metrics for requests that matched no route
    struct evhttp_bound_socket *bound;  //  the listening socket, NULL once stopped
    http_req_t *waiting;        //  deferred requests and open streams (a list through next)
    size_t waiting_count;
    int timeout_s;              //  GL_HTTP_TIMEOUT_S, given back to a connection whose stream ended
};

struct _http_req_t {
    http_t *http;
    struct evhttp_request *ev;
    const s_route_t *route;
    const char *method_name;    //  as sent (HEAD, OPTIONS ...), for the log and metrics
    bool head;
    char id[GL_ID_LEN + 1];
    int64_t start_us;
    //  Path: decoded segments, each NUL-terminated, inside path.
    char path[HTTP_PATH_MAX + 1];
    const char *segs[HTTP_SEGMENTS_MAX];
    size_t nsegs;
    char rest[HTTP_PATH_MAX + 1];
    const char *param_names[S_ROUTE_SEGMENTS];
    const char *param_values[S_ROUTE_SEGMENTS];
    size_t nparams;
    //  Query: decoded keys and values inside query_buf (malloc'd).
    char *query_buf;
    const char *qkeys[HTTP_QUERY_MAX];
    const char *qvals[HTTP_QUERY_MAX];
    size_t nquery;
    json_t *body;
    http_caller_t caller;
    bool replied;
    int status;
    //  Deferred replies and streams (http_defer, http_stream_start).
    bool in_handler;            //  the handler has not returned yet
    bool deferred;              //  answered later; freed by the reply (or the stream's end)
    bool gone;                  //  a stream's client went away (s_on_conn_closed)
    bool streaming;             //  a stream was started and not ended
    http_stream_closed_fn *on_closed;
    void *closed_arg;
    http_req_t *prev, *next;    //  in http->waiting while deferred
};

//  A validation failure, before it is answered.
typedef struct {
    const char *code;
    char message[192];
    char field[64];
} s_verr_t;


//  --------------------------------------------------------------------------------------------
//  Text checks


//  Characters (code points) in valid UTF-8.
static size_t
s_utf8_chars (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xc0) != 0x80)
            n++;
    return n;
}

//  Copy at most cap-1 bytes of s, not cutting a UTF-8 sequence.
static void
s_copy_utf8 (char *out, size_t cap, const char *s)
{
    size_t len = strlen (s);
    if (len >= cap) {
        len = cap - 1;
        while (len > 0 && ((unsigned char) s[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy (out, s, len);
    out[len] = 0;
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Percent-decode in[0..len) into out (NUL-terminated), '+' as space when plus. Refuses bad
//  escapes, control bytes (NUL included) and invalid UTF-8. Returns the decoded length or -1.
static ssize_t
s_decode (const char *in, size_t len, char *out, bool plus)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = s_hex (in[i + 1]), lo = s_hex (in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char) (hi * 16 + lo);
            i += 2;
        }
        else if (c == '+' && plus)
            c = ' ';
        if (c < 0x20 || c == 0x7f)
            return -1;
        out[n++] = (char) c;
    }
    out[n] = 0;
    return gl_utf8_valid (out, n, true) ? (ssize_t) n : -1;
}

//  --------------------------------------------------------------------------------------------
//  Route table

static int
s_method_parse (const char *name)
{
    for (int i = 0; i < S_METHODS; i++)
        if (strcmp (name, s_method_names[i]) == 0)
            return i;
    return -1;
}

static bool
s_literal_valid (const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '.' || *s == '_' || *s == '~' || *s == '-'))
            return false;
    return true;
}

static bool
s_param_name_valid (const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

//  Split pattern into r->segs. false when the pattern breaks the rules in http.h.
static bool
s_pattern_parse (s_route_t *r, const char *pattern)
{
    size_t len = strlen (pattern);
    if (len == 0 || len > S_PATTERN_MAX || pattern[0] != '/')
        return false;
    snprintf (r->pattern, sizeof r->pattern, "%s", pattern);
    snprintf (r->storage, sizeof r->storage, "%s", pattern + 1);
    r->nsegs = 0;
    if (len == 1)
        return true;
    char *p = r->storage;
    while (true) {
        char *slash = strchr (p, '/');
        if (slash)
            *slash = 0;
        if (r->nsegs == S_ROUTE_SEGMENTS || !*p)
            return false;
        s_seg_t *seg = &r->segs[r->nsegs++];
        size_t n = strlen (p);
        if (p[0] == '{' && n > 2 && p[n - 1] == '}') {
            p[n - 1] = 0;
            p++;
            seg->kind = S_SEG_PARAM;
            if (p[strlen (p) - 1] == '*') {
                p[strlen (p) - 1] = 0;
                seg->kind = S_SEG_REST;
                if (slash)
                    return false;       //  {name*} only last
            }
            if (!s_param_name_valid (p))
                return false;
            for (size_t i = 0; i + 1 < r->nsegs; i++)
                if (r->segs[i].kind != S_SEG_LITERAL && strcmp (r->segs[i].text, p) == 0)
                    return false;       //  the same name twice
            seg->text = p;
        }
        else {
            if (!s_literal_valid (p))
                return false;
            seg->kind = S_SEG_LITERAL;
            seg->text = p;
        }
        if (!slash)
            return true;
        p = slash + 1;
    }
}

//  Same method and same shape: the two could never be told apart.
static bool
s_same_shape (const s_route_t *a, const s_route_t *b)
{
    if (a->method != b->method || a->nsegs != b->nsegs)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == S_SEG_LITERAL && strcmp (a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

static void
s_roles_text (uint32_t roles, char *out, size_t cap)
{
    static const struct {
        uint32_t flag;
        const char *name;
    } names[] = { { GL_ROLE_PUBLIC, "public" },         { GL_ROLE_AGENT, "agent" },
                  { GL_ROLE_SUPERVISOR, "supervisor" }, { GL_ROLE_PROTECTION, "protection" },
                  { GL_ROLE_ADMIN, "admin" },           { GL_ROLE_API_CLIENT, "api_client" } };
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (roles & names[i].flag)
            n += (size_t) snprintf (out + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "",
                                    names[i].name);
}

http_t *
http_new (intake_t *owner)
{
    http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->owner = owner;
    self->port = -1;
    snprintf (self->unmatched.pattern, sizeof self->unmatched.pattern, "unmatched");
    return self;
}

void
http_destroy (http_t **self_p)
{
    assert (self_p);
    http_t *self = *self_p;
    if (!self)
        return;
    //  Whatever is still waiting is answered now, before evhttp frees the connections under
    //  it: open streams end (their owners are told), deferred requests get 503.
    while (self->waiting) {
        http_req_t *req = self->waiting;
        if (req->streaming)
            http_stream_end (req);
        else {
            gl_warn ("http: %s %s still waiting at shutdown: answered 503",
                        http_method (req), http_route_pattern (req));
            http_reply_error (req, 503, "unavailable", "the service is shutting down", NULL);
        }
    }
    if (self->evhttp)
        evhttp_free (self->evhttp);
    for (size_t i = 0; i < self->count; i++)
        free (self->routes[i]);
    free (self);
    *self_p = NULL;
}

void
http_route (http_t *self, const char *method, const char *pattern, uint32_t roles,
            http_handler_fn *fn)
{
    assert (self && method && pattern && fn);
    assert (self->count < S_ROUTES_MAX);
    const uint32_t all = GL_ROLE_PUBLIC | GL_ROLE_STAFF | GL_ROLE_API_CLIENT;
    //  PUBLIC stands alone: "public or agent" would mean public.
    assert (roles != 0 && (roles & ~all) == 0);
    assert (roles == GL_ROLE_PUBLIC || !(roles & GL_ROLE_PUBLIC));
    (void) all;
    s_route_t *r = calloc (1, sizeof *r);
    assert (r);
    int m = s_method_parse (method);
    assert (m >= 0);
    r->method = (s_method_t) m;
    bool pattern_ok = s_pattern_parse (r, pattern);
    assert (pattern_ok);
    (void) pattern_ok;
    for (size_t i = 0; i < self->count; i++) {
        bool duplicate = s_same_shape (self->routes[i], r);
        assert (!duplicate);
        (void) duplicate;
    }
    r->roles = roles;
    r->fn = fn;
    char labels[GL_METRICS_MAX_LABELS_LEN + 1];
    snprintf (labels, sizeof labels, "route=\"%s\",method=\"%s\"", r->pattern, method);
    r->latency = gl_metrics_histogram ("greenline_intake_http_request_seconds",
                                       "Time to answer an API request, by route.", labels);
    self->routes[self->count++] = r;
}

void
http_print_routes (http_t *self, FILE *out)
{
    assert (self && out);
    for (size_t i = 0; i < self->count; i++) {
        char roles[128];
        s_roles_text (self->routes[i]->roles, roles, sizeof roles);
        fprintf (out, "%s %s %s\n", s_method_names[self->routes[i]->method],
                 self->routes[i]->pattern, roles);
    }
}

//  Split and decode the raw path. 0, or the status that refuses it: 414 too long, 400 malformed
//  (bad escape, control byte, invalid UTF-8, an encoded '/', a "." or ".." segment), 404 when no
//  route can match (an empty segment, too many segments).
static int
s_split_path (http_req_t *req, const char *raw)
{
    size_t len = strlen (raw);
    if (len > HTTP_PATH_MAX)
        return 414;
    if (raw[0] != '/')
        return 400;
    req->nsegs = 0;
    if (len == 1)
        return 0;
    char *out = req->path;
    const char *p = raw + 1;
    while (true) {
        const char *end = strchr (p, '/');
        if (!end)
            end = p + strlen (p);
        if (end == p || req->nsegs == HTTP_SEGMENTS_MAX)
            return 404;
        ssize_t n = s_decode (p, (size_t) (end - p), out, false);
        if (n < 0 || memchr (out, '/', (size_t) n) || strcmp (out, ".") == 0
            || strcmp (out, "..") == 0)
            return 400;
        req->segs[req->nsegs++] = out;
        out += n + 1;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

static bool
s_matches (const s_route_t *r, const http_req_t *req)
{
    bool rest = r->nsegs > 0 && r->segs[r->nsegs - 1].kind == S_SEG_REST;
    if (rest ? req->nsegs < r->nsegs : req->nsegs != r->nsegs)
        return false;
    for (size_t i = 0; i < r->nsegs; i++)
        if (r->segs[i].kind == S_SEG_LITERAL && strcmp (r->segs[i].text, req->segs[i]) != 0)
            return false;
    return true;
}

//  True when a is more specific than b: at the first place they differ, a literal beats a
//  parameter, which beats the rest of the path.
static bool
s_better (const s_route_t *a, const s_route_t *b)
{
    for (size_t i = 0; i < a->nsegs && i < b->nsegs; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return a->segs[i].kind > b->segs[i].kind;
    return a->nsegs > b->nsegs;
}

//  The best route for method (-1: none wanted), and in *allowed the methods some route answers
//  on this path.
static const s_route_t *
s_find (http_t *self, const http_req_t *req, int method, unsigned *allowed)
{
    const s_route_t *best = NULL;
    *allowed = 0;
    for (size_t i = 0; i < self->count; i++) {
        const s_route_t *r = self->routes[i];
        if (!s_matches (r, req))
            continue;
        *allowed |= 1u << r->method;
        if ((int) r->method == method && (!best || s_better (r, best)))
            best = r;
    }
    return best;
}

static void
s_bind_params (http_req_t *req)
{
    const s_route_t *r = req->route;
    req->nparams = 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        if (r->segs[i].kind == S_SEG_LITERAL)
            continue;
        req->param_names[req->nparams] = r->segs[i].text;
        if (r->segs[i].kind == S_SEG_PARAM)
            req->param_values[req->nparams++] = req->segs[i];
        else {
            //  Decoded segments and their slashes are never longer than the raw path.
            size_t n = 0;
            for (size_t k = i; k < req->nsegs && n < sizeof req->rest; k++)
                n += (size_t) snprintf (req->rest + n, sizeof req->rest - n, "%s%s",
                                        k > i ? "/" : "", req->segs[k]);
            req->param_values[req->nparams++] = req->rest;
        }
    }
}

//  --------------------------------------------------------------------------------------------
//  Query strings

static bool
s_query_key_valid (const char *s)
{
    if (!*s || strlen (s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

//  Parse raw (may be NULL) into req. 0, or -1 with the reason in e.
static int
s_parse_query (http_req_t *req, const char *raw, s_verr_t *e)
{
    req->nquery = 0;
    if (!raw || !*raw)
        return 0;
    //  Decoding never grows text, but each key and value gets its own NUL: "a&b" (3 bytes)
    //  becomes "a\0\0b\0\0" (6). Twice the input plus two always fits.
    size_t len = strlen (raw);
    req->query_buf = malloc (2 * len + 2);
    if (!req->query_buf) {
        e->code = "internal";
        return -1;
    }
    char *out = req->query_buf;
    const char *p = raw;
    while (*p) {
        const char *amp = strchr (p, '&');
        const char *end = amp ? amp : p + strlen (p);
        if (end > p) {
            const char *eq = memchr (p, '=', (size_t) (end - p));
            const char *kend = eq ? eq : end;
            if (req->nquery == HTTP_QUERY_MAX) {
                e->code = "invalid_parameter";
                snprintf (e->message, sizeof e->message, "more than %d query parameters",
                          HTTP_QUERY_MAX);
                return -1;
            }
            ssize_t kn = s_decode (p, (size_t) (kend - p), out, true);
            if (kn < 0 || !s_query_key_valid (out)) {
                e->code = "invalid_parameter";
                snprintf (e->message, sizeof e->message,
                          "malformed query parameter name (use A-Z, a-z, 0-9, '_', '-', '.')");
                return -1;
            }
            const char *key = out;
            out += kn + 1;
            ssize_t vn = eq ? s_decode (eq + 1, (size_t) (end - eq - 1), out, true) : 0;
            if (!eq)
                *out = 0;
            if (vn < 0) {
                e->code = "invalid_parameter";
                snprintf (e->message, sizeof e->message,
                          "malformed query value (bad %%-escape, control character or invalid "
                          "UTF-8)");
                s_copy_utf8 (e->field, sizeof e->field, key);
                return -1;
            }
            for (size_t i = 0; i < req->nquery; i++)
                if (strcmp (req->qkeys[i], key) == 0) {
                    e->code = "invalid_parameter";
                    snprintf (e->message, sizeof e->message, "query parameter given twice");
                    s_copy_utf8 (e->field, sizeof e->field, key);
                    return -1;
                }
            req->qkeys[req->nquery] = key;
            req->qvals[req->nquery++] = out;
            out += vn + 1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  JSON bodies

//  Walk the text as the parser will, counting nesting outside strings; refuse deeper than
//  HTTP_MAX_DEPTH before jansson builds anything. Lines and columns count from 1, columns in
//  characters, as jansson does.
static int
s_depth_scan (const char *buf, size_t len, int *line, int *column)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    *line = 1;
    *column = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) buf[i];
        if (c == '\n') {
            (*line)++;
            *column = 0;
        }
        else if ((c & 0xc0) != 0x80)
            (*column)++;
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        }
        else if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[') {
            if (++depth > HTTP_MAX_DEPTH)
                return -1;
        }
        else if ((c == '}' || c == ']') && depth > 0)
            depth--;
    }
    return 0;
}

int
http_json_parse (const char *buf, size_t len, json_t **out, char *message, size_t msglen)
{
    assert (out && message);
    *out = NULL;
    int line, column;
    if (s_depth_scan (buf, len, &line, &column) != 0) {
        snprintf (message, msglen, "malformed JSON at line %d, column %d: nested deeper than %d",
                  line, column, HTTP_MAX_DEPTH);
        return -1;
    }
    json_error_t err;
    //  Without JSON_DECODE_ANY the top level must be an object or an array; without
    //  JSON_DISABLE_EOF_CHECK anything after it is an error; without JSON_ALLOW_NUL "\u0000" is.
    json_t *json = json_loadb (buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!json) {
        //  jansson quotes the input near the error ("near 'abc'"): cut that, so nothing the
        //  client sent is echoed; and do not name jansson's flags.
        char *near = strstr (err.text, " near ");
        if (near)
            *near = 0;
        const char *reason = strstr (err.text, "JSON_ALLOW_NUL") ? "\\u0000 is not allowed"
                                                                 : err.text;
        snprintf (message, msglen, "malformed JSON at line %d, column %d: %s", err.line,
                  err.column, reason);
        return -1;
    }
    if (!json_is_object (json)) {
        json_decref (json);
        snprintf (message, msglen, "the body must be a JSON object");
        return -1;
    }
    *out = json;
    return 0;
}

//  Is the Content-Type application/json (parameters allowed; a charset must be utf-8)?
static bool
s_is_json_type (const char *type)
{
    if (!type)
        return false;
    while (*type == ' ')
        type++;
    size_t n = strlen ("application/json");
    if (strncasecmp (type, "application/json", n) != 0)
        return false;
    const char *p = type + n;
    while (*p == ' ')
        p++;
    if (*p && *p != ';')
        return false;
    //  Parameters: ; name=value ; ...
    while (*p == ';') {
        p++;
        while (*p == ' ')
            p++;
        if (strncasecmp (p, "charset=", 8) == 0) {
            const char *v = p + 8;
            if (*v == '"')
                v++;
            if (strncasecmp (v, "utf-8", 5) != 0 || (v[5] && v[5] != '"' && v[5] != ';'
                                                     && v[5] != ' '))
                return false;
        }
        p = strchr (p, ';') ? strchr (p, ';') : p + strlen (p);
    }
    return true;
}

//  --------------------------------------------------------------------------------------------
//  Validation cores (no reply; the fuzz target calls these directly)

//  Start a validation failure; the caller writes the message with s_verr_msg.
static void
s_verr (s_verr_t *e, const char *code, const char *field)
{
    e->code = code;
    s_copy_utf8 (e->field, sizeof e->field, field ? field : "");
    e->message[0] = 0;
}

//  Drop an incomplete UTF-8 sequence that snprintf's cut left at the end of s.
static void
s_utf8_trim (char *s)
{
    size_t len = strlen (s);
    size_t start = len;
    while (start > 0 && ((unsigned char) s[start - 1] & 0xc0) == 0x80)
        start--;
    if (start == 0)
        return;
    unsigned char lead = (unsigned char) s[start - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (len - (start - 1) < need)
        s[start - 1] = 0;
}

static void s_verr_msg (s_verr_t *e, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_verr_msg (s_verr_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (e->message, sizeof e->message, fmt, ap);
    va_end (ap);
    s_utf8_trim (e->message);
}

static int
s_check_only (const json_t *body, const char *const *allowed, s_verr_t *e)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) body, key, value) {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp (allowed[i], key) == 0;
        if (!known) {
            e->code = "unknown_field";
            s_verr_msg (e, "%s",
                      *key ? "unknown field" : "unknown field (a field with an empty name)");
            //  The name is the client's own; it is cut, and only ever sent back to the client.
            s_copy_utf8 (e->field, sizeof e->field, key);
            return -1;
        }
    }
    return 0;
}

//  The field's value, or NULL when absent; -1 when absent but required.
static int
s_get (const json_t *body, const char *field, bool required, json_t **value, s_verr_t *e)
{
    *value = json_object_get (body, field);
    if (!*value && required) {
        s_verr (e, "missing_field", field);
        s_verr_msg (e, "'%s' is required", field);
        return -1;
    }
    return 0;
}

static int
s_check_str (const json_t *body, const char *field, bool required, size_t max_len,
             const char **out, s_verr_t *e)
{
    json_t *v;
    if (s_get (body, field, required, &v, e))
        return -1;
    if (!v)
        return 0;
    if (!json_is_string (v) || s_utf8_chars (json_string_value (v)) > max_len) {
        s_verr (e, "invalid_field", field);
        s_verr_msg (e, "'%s' must be a string of at most %zu characters",
                  field, max_len);
        return -1;
    }
    if (required && json_string_length (v) == 0) {
        s_verr (e, "missing_field", field);
        s_verr_msg (e, "'%s' must not be empty", field);
        return -1;
    }
    *out = json_string_value (v);
    return 0;
}

static int
s_check_int (const json_t *body, const char *field, bool required, int64_t min, int64_t max,
             int64_t *out, s_verr_t *e)
{
    json_t *v;
    if (s_get (body, field, required, &v, e))
        return -1;
    if (!v)
        return 0;
    if (!json_is_integer (v) || json_integer_value (v) < min || json_integer_value (v) > max) {
        s_verr (e, "invalid_field", field);
        s_verr_msg (e, "'%s' must be an integer from %lld to %lld",
                  field, (long long) min, (long long) max);
        return -1;
    }
    *out = json_integer_value (v);
    return 0;
}

static int
s_check_bool (const json_t *body, const char *field, bool required, bool *out, s_verr_t *e)
{
    json_t *v;
    if (s_get (body, field, required, &v, e))
        return -1;
    if (!v)
        return 0;
    if (!json_is_boolean (v)) {
        s_verr (e, "invalid_field", field);
        s_verr_msg (e, "'%s' must be true or false", field);
        return -1;
    }
    *out = json_is_true (v);
    return 0;
}

static int
s_check_enum (const json_t *body, const char *field, bool required, const char *const *allowed,
              const char **out, s_verr_t *e)
{
    json_t *v;
    if (s_get (body, field, required, &v, e))
        return -1;
    if (!v)
        return 0;
    for (size_t i = 0; json_is_string (v) && allowed[i]; i++)
        if (strcmp (allowed[i], json_string_value (v)) == 0) {
            *out = allowed[i];
            return 0;
        }
    char list[128];
    size_t n = 0;
    list[0] = 0;
    for (size_t i = 0; allowed[i] && n < sizeof list; i++)
        n += (size_t) snprintf (list + n, sizeof list - n, "%s%s", i ? ", " : "", allowed[i]);
    s_verr (e, "invalid_field", field);
    s_verr_msg (e, "'%s' must be one of: %s", field, list);
    return -1;
}

static int
s_check_id (const json_t *body, const char *field, bool required, const char **out, s_verr_t *e)
{
    json_t *v;
    if (s_get (body, field, required, &v, e))
        return -1;
    if (!v)
        return 0;
    if (!json_is_string (v) || !gl_id_valid (json_string_value (v))) {
        s_verr (e, "invalid_field", field);
        s_verr_msg (e, "'%s' must be an id (32 lowercase hex digits)",
                  field);
        return -1;
    }
    *out = json_string_value (v);
    return 0;
}

//  Decode a base64url cursor into page. 0, or -1 with e.
static int
s_check_cursor (const char *text, http_page_t *page, s_verr_t *e)
{
    size_t bin_len = 0;
    size_t text_len = strlen (text);
    if (text_len == 0 || text_len > sodium_base64_ENCODED_LEN (HTTP_CURSOR_MAX,
                                                               sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        || sodium_base642bin ((unsigned char *) page->cursor, HTTP_CURSOR_MAX, text, text_len,
                              NULL, &bin_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
               != 0
        || memchr (page->cursor, 0, bin_len)) {
        s_verr (e, "invalid_parameter", "cursor");
        s_verr_msg (e, "'cursor' is not a cursor this API gave out");
        page->cursor[0] = 0;
        return -1;
    }
    page->cursor[bin_len] = 0;
    page->has_cursor = true;
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Replies

static void s_finish (http_req_t *req);

//  The reply was handed to evhttp (which frees a request whose client has gone when it is
//  answered). A deferred request answered after its handler returned is finished here; one
//  answered inside its handler is finished by s_on_request.
static void
s_sent (http_req_t *req)
{
    if (req->deferred && !req->in_handler)
        s_finish (req);
}

static void
s_common_headers (http_req_t *req, const char *content_type, const char *cache)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers (req->ev);
    evhttp_add_header (h, "Content-Type", content_type);
    evhttp_add_header (h, "Cache-Control", cache);
    evhttp_add_header (h, "Content-Security-Policy", S_CSP);
    evhttp_add_header (h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header (h, "X-Frame-Options", "DENY");
    evhttp_add_header (h, "Referrer-Policy", "no-referrer");
    evhttp_add_header (h, "X-Request-Id", req->id);
}

static int
s_begin_reply (http_req_t *req)
{
    if (req->replied) {
        gl_error ("http: %s %s answered twice; the second answer is dropped",
                  http_method (req), http_route_pattern (req));
        return -1;
    }
    req->replied = true;
    return 0;
}

static void
s_send (http_req_t *req, int status, const char *content_type, const char *cache,
        const char *body, size_t len)
{
    if (status < 100 || status > 599)
        status = 500;
    req->status = status;
    s_common_headers (req, content_type, cache);
    //  libevent 2.1 would write the body for HEAD too: give HEAD the length only.
    if (req->head) {
        char length[24];
        snprintf (length, sizeof length, "%zu", len);
        evhttp_add_header (evhttp_request_get_output_headers (req->ev), "Content-Length", length);
    }
    else
        evbuffer_add (evhttp_request_get_output_buffer (req->ev), body, len);
    evhttp_send_reply (req->ev, status, NULL, NULL);
    s_sent (req);
}

static void
s_send_json (http_req_t *req, int status, json_t *body)
{
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    if (!text) {
        static const char fallback[]
            = "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\",\"field\":null}}";
        gl_error ("http: a reply could not be encoded");
        s_send (req, 500, "application/json", "no-store", fallback, sizeof fallback - 1);
        return;
    }
    s_send (req, status, "application/json", "no-store", text, strlen (text));
    free (text);
}

static void
s_send_error (http_req_t *req, int status, const char *code, const char *message,
              const char *field)
{
    json_t *body = json_pack ("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", message,
                              "field", field && *field ? json_string (field) : json_null ());
    s_send_json (req, status, body);
}

int
http_reply_json (http_req_t *req, int status, json_t *body)
{
    assert (req);
    if (s_begin_reply (req)) {
        json_decref (body);
        return -1;
    }
    if (!body) {
        gl_error ("http: %s %s replied with no body", http_method (req),
                  http_route_pattern (req));
        s_send_error (req, 500, "internal", "internal error", NULL);
        return 0;
    }
    s_send_json (req, status, body);
    return 0;
}

int
http_reply_error (http_req_t *req, int status, const char *code, const char *message,
                  const char *field)
{
    assert (req && code && message);
    if (s_begin_reply (req))
        return -1;
    if (status == 500) {
        gl_error ("http: %s %s failed: %s", http_method (req), http_route_pattern (req),
                  message);
        code = "internal";
        message = "internal error";
        field = NULL;
    }
    s_send_error (req, status, code, message, field);
    return 0;
}

static int
s_reply_verr (http_req_t *req, int status, const s_verr_t *e)
{
    return http_reply_error (req, status, e->code, e->message, e->field);
}

int
http_reply_page (http_req_t *req, json_t *items, const char *next_cursor)
{
    assert (req);
    if (!json_is_array (items)) {
        json_decref (items);
        return http_reply_error (req, 500, "internal", "a page without an item array", NULL);
    }
    json_t *next = json_null ();
    if (next_cursor) {
        size_t len = strlen (next_cursor);
        if (len == 0 || len > HTTP_CURSOR_MAX) {
            json_decref (items);
            return http_reply_error (req, 500, "internal", "a next cursor out of bounds", NULL);
        }
        char text[sodium_base64_ENCODED_LEN (HTTP_CURSOR_MAX,
                                            sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
        sodium_bin2base64 (text, sizeof text, (const unsigned char *) next_cursor, len,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        next = json_string (text);
    }
    return http_reply_json (req, 200,
                            json_pack ("{s:o, s:o}", "items", items, "next_cursor", next));
}

int
http_reply_file (http_req_t *req, int fd, size_t size, const char *content_type)
{
    assert (req && fd >= 0 && content_type);
    if (s_begin_reply (req)) {
        close (fd);
        return -1;
    }
    if (req->head || size == 0) {
        close (fd);
        req->status = 200;
        //  Static files may be cached, but must be revalidated: a new deploy shows at once.
        s_common_headers (req, content_type, "no-cache");
        if (req->head) {
            char length[24];
            snprintf (length, sizeof length, "%zu", size);
            evhttp_add_header (evhttp_request_get_output_headers (req->ev), "Content-Length",
                               length);
        }
        evhttp_send_reply (req->ev, 200, NULL, NULL);
        s_sent (req);
        return 0;
    }
    //  sendfile through a file segment: the segment owns fd from here (closed when the last
    //  buffer that holds it lets go); if it cannot be made, fd is still ours.
    struct evbuffer_file_segment *seg
        = evbuffer_file_segment_new (fd, 0, (ev_off_t) size, EVBUF_FS_CLOSE_ON_FREE);
    if (!seg)
        close (fd);
    int rc = seg ? evbuffer_add_file_segment (evhttp_request_get_output_buffer (req->ev), seg, 0,
                                              (ev_off_t) size)
                 : -1;
    if (seg)
        evbuffer_file_segment_free (seg);
    if (rc != 0) {
        gl_error ("http: %s %s could not send a file", http_method (req), http_route_pattern (req));
        s_send_error (req, 500, "internal", "internal error", NULL);
        return 0;
    }
    req->status = 200;
    s_common_headers (req, content_type, "no-cache");
    evhttp_send_reply (req->ev, 200, NULL, NULL);
    s_sent (req);
    return 0;
}

int
http_reply_not_modified (http_req_t *req)
{
    assert (req);
    if (s_begin_reply (req))
        return -1;
    req->status = 304;
    struct evkeyvalq *h = evhttp_request_get_output_headers (req->ev);
    evhttp_add_header (h, "Cache-Control", "no-cache");
    evhttp_add_header (h, "X-Request-Id", req->id);
    evhttp_send_reply (req->ev, 304, "Not Modified", NULL);
    s_sent (req);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Deferred replies and streams

static void
s_wait_link (http_req_t *req)
{
    http_t *self = req->http;
    req->prev = NULL;
    req->next = self->waiting;
    if (self->waiting)
        self->waiting->prev = req;
    self->waiting = req;
    self->waiting_count++;
}

static void
s_wait_unlink (http_req_t *req)
{
    http_t *self = req->http;
    if (req->prev)
        req->prev->next = req->next;
    else if (self->waiting == req)
        self->waiting = req->next;
    else
        return;                         //  not linked
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    self->waiting_count--;
}

void
http_defer (http_req_t *req)
{
    assert (req && req->in_handler);
    if (req->deferred || req->replied)
        return;
    req->deferred = true;
    s_wait_link (req);
}

size_t
http_waiting (http_t *self)
{
    assert (self);
    return self->waiting_count;
}

//  evhttp closes the connection of an open stream (the client left, a write failed, or the
//  server is going down): by then evhttp has detached the request from the connection.
static void
s_on_conn_closed (struct evhttp_connection *evcon, void *arg)
{
    (void) evcon;
    http_req_t *req = arg;
    req->gone = true;
    if (req->streaming)
        http_stream_end (req);
}

int
http_stream_start (http_req_t *req, const char *content_type, http_stream_closed_fn *on_closed,
                   void *arg)
{
    assert (req && req->in_handler && content_type);
    if (s_begin_reply (req))
        return -1;
    if (req->head) {
        //  libevent 2.1 would write the chunks of a HEAD reply too: answer the headers alone,
        //  and no stream starts (-1: the owner keeps nothing).
        s_send (req, 200, content_type, "no-store", "", 0);
        return -1;
    }
    if (!req->deferred) {
        req->deferred = true;
        s_wait_link (req);
    }
    req->streaming = true;
    req->status = 200;
    req->on_closed = on_closed;
    req->closed_arg = arg;
    s_common_headers (req, content_type, "no-store");
    //  A proxy in front (nginx in docker/) must pass each event on at once.
    evhttp_add_header (evhttp_request_get_output_headers (req->ev), "X-Accel-Buffering", "no");
    struct evhttp_connection *evcon = evhttp_request_get_connection (req->ev);
    if (evcon) {
        evhttp_connection_set_closecb (evcon, s_on_conn_closed, req);
        //  No idle timeout on a stream: the heartbeat finds a client that has gone.
        evhttp_connection_set_timeout (evcon, 24 * 3600);
    }
    evhttp_send_reply_start (req->ev, 200, "OK");
    return 0;
}

int
http_stream_send (http_req_t *req, const char *data, size_t len)
{
    assert (req && data);
    if (!req->streaming || req->gone)
        return -1;
    struct evbuffer *chunk = evbuffer_new ();
    if (!chunk || evbuffer_add (chunk, data, len) != 0) {
        evbuffer_free (chunk);
        return -1;
    }
    evhttp_send_reply_chunk (req->ev, chunk);
    evbuffer_free (chunk);
    return 0;
}

size_t
http_stream_pending (http_req_t *req)
{
    assert (req);
    struct evhttp_connection *evcon
        = req->streaming && !req->gone ? evhttp_request_get_connection (req->ev) : NULL;
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent (evcon) : NULL;
    return bev ? evbuffer_get_length (bufferevent_get_output (bev)) : 0;
}

void
http_stream_end (http_req_t *req)
{
    assert (req);
    if (!req->streaming)
        return;
    req->streaming = false;
    struct evhttp_connection *evcon = req->gone ? NULL : evhttp_request_get_connection (req->ev);
    if (evcon) {
        evhttp_connection_set_closecb (evcon, NULL, NULL);
        //  The connection lives on (keep-alive) with the usual timeout again, not the stream's
        //  day: a client that does not read what is still queued (a slow client the owner
        //  dropped) is cut off after GL_HTTP_TIMEOUT_S instead of holding it and its memory.
        evhttp_connection_set_timeout (evcon, req->http->timeout_s);
    }
    if (req->on_closed) {
        http_stream_closed_fn *fn = req->on_closed;
        req->on_closed = NULL;
        fn (req, req->closed_arg);
    }
    //  Ends the chunked reply; on a request whose client has gone it frees the request.
    evhttp_send_reply_end (req->ev);
    if (!req->in_handler)
        s_finish (req);
}

//  --------------------------------------------------------------------------------------------
//  Request accessors and validation wrappers

const char *
http_method (http_req_t *req)
{
    return req->route ? s_method_names[req->route->method] : req->method_name;
}

const char *
http_route_pattern (http_req_t *req)
{
    return req->route ? req->route->pattern : "unmatched";
}

const char *
http_request_id (http_req_t *req)
{
    return req->id;
}

const char *
http_param (http_req_t *req, const char *name)
{
    assert (req && name);
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp (req->param_names[i], name) == 0)
            return req->param_values[i];
    return NULL;
}

const char *
http_query (http_req_t *req, const char *name)
{
    assert (req && name);
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp (req->qkeys[i], name) == 0)
            return req->qvals[i];
    return NULL;
}

json_t *
http_params_json (http_req_t *req)
{
    assert (req);
    json_t *out = json_object ();
    for (size_t i = 0; out && i < req->nparams; i++)
        json_object_set_new (out, req->param_names[i], json_string (req->param_values[i]));
    return out;
}

json_t *
http_query_json (http_req_t *req)
{
    assert (req);
    json_t *out = json_object ();
    for (size_t i = 0; out && i < req->nquery; i++)
        json_object_set_new (out, req->qkeys[i], json_string (req->qvals[i]));
    return out;
}

const char *
http_peer (http_req_t *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection (req->ev);
    if (!conn)
        return NULL;
    char *address = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer (conn, &address, &port);
    return address;
}

const char *
http_header (http_req_t *req, const char *name)
{
    assert (req && name);
    return evhttp_find_header (evhttp_request_get_input_headers (req->ev), name);
}

const json_t *
http_body (http_req_t *req)
{
    return req->body;
}

const http_caller_t *
http_caller (http_req_t *req)
{
    return &req->caller;
}

void
http_set_header (http_req_t *req, const char *name, const char *value)
{
    assert (req && name && value);
    if (!req->replied)
        evhttp_add_header (evhttp_request_get_output_headers (req->ev), name, value);
}

int
http_authenticate_nobody (intake_t *intake, http_req_t *req, http_caller_t *caller)
{
    return 401;
}

//  A validation core's result, answered when it failed.
static int
s_verdict (http_req_t *req, int rc, const s_verr_t *e)
{
    if (rc == 0)
        return 0;
    s_reply_verr (req, 400, e);
    return -1;
}

int
http_body_only (http_req_t *req, const char *const *allowed)
{
    assert (req && allowed);
    s_verr_t e;
    if (req->replied)
        return -1;
    return s_verdict (req, s_check_only (req->body, allowed, &e), &e);
}

int
http_body_str (http_req_t *req, const char *field, bool required, size_t max_len,
               const char **out)
{
    assert (req && field && out);
    s_verr_t e;
    if (req->replied)
        return -1;
    return s_verdict (req, s_check_str (req->body, field, required, max_len, out, &e), &e);
}

int
http_body_int (http_req_t *req, const char *field, bool required, int64_t min, int64_t max,
               int64_t *out)
{
    assert (req && field && out && min <= max);
    s_verr_t e;
    if (req->replied)
        return -1;
    return s_verdict (req, s_check_int (req->body, field, required, min, max, out, &e), &e);
}

int
http_body_bool (http_req_t *req, const char *field, bool required, bool *out)
{
    assert (req && field && out);
    s_verr_t e;
    if (req->replied)
        return -1;
    return s_verdict (req, s_check_bool (req->body, field, required, out, &e), &e);
}

int
http_body_enum (http_req_t *req, const char *field, bool required, const char *const *allowed,
                const char **out)
{
    assert (req && field && allowed && out);
    s_verr_t e;
    if (req->replied)
        return -1;
    return s_verdict (req, s_check_enum (req->body, field, required, allowed, out, &e), &e);
}

int
http_body_id (http_req_t *req, const char *field, bool required, const char **out)
{
    assert (req && field && out);
    s_verr_t e;
    if (req->replied)
        return -1;
    return s_verdict (req, s_check_id (req->body, field, required, out, &e), &e);
}

int
http_query_only (http_req_t *req, const char *const *allowed)
{
    assert (req && allowed);
    if (req->replied)
        return -1;
    for (size_t i = 0; i < req->nquery; i++) {
        bool known = false;
        for (size_t k = 0; allowed[k] && !known; k++)
            known = strcmp (allowed[k], req->qkeys[i]) == 0;
        if (!known) {
            http_reply_error (req, 400, "unknown_parameter", "unknown query parameter",
                              req->qkeys[i]);
            return -1;
        }
    }
    return 0;
}

int
http_page (http_req_t *req, http_page_t *page)
{
    assert (req && page);
    memset (page, 0, sizeof *page);
    page->limit = HTTP_PAGE_DEFAULT;
    if (req->replied)
        return -1;
    const char *limit = http_query (req, "limit");
    if (limit) {
        char *end = NULL;
        long v = strtol (limit, &end, 10);
        if (!*limit || *end || limit[0] == '+' || limit[0] == '-' || limit[0] == ' ' || v < 1
            || v > HTTP_PAGE_MAX) {
            char message[96];
            snprintf (message, sizeof message, "'limit' must be an integer from 1 to %d",
                      HTTP_PAGE_MAX);
            http_reply_error (req, 400, "invalid_parameter", message, "limit");
            return -1;
        }
        page->limit = (int) v;
    }
    const char *cursor = http_query (req, "cursor");
    s_verr_t e;
    if (cursor && s_check_cursor (cursor, page, &e) != 0) {
        s_reply_verr (req, 400, &e);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Serving

static void
s_count (http_t *self, http_req_t *req)
{
    s_route_t *r = req->route ? (s_route_t *) req->route : &self->unmatched;
    int cls = req->status / 100;
    if (cls < 1 || cls > 5)
        cls = 5;
    const char *method = req->method_name ? req->method_name : "OTHER";
    //  A route's counters are kept on the route; unmatched requests (a few methods, five
    //  classes) are looked up in the registry each time.
    gl_metric_t **slot = req->route ? &r->classes[cls - 1] : NULL;
    gl_metric_t *counter = slot ? *slot : NULL;
    if (!counter) {
        char labels[GL_METRICS_MAX_LABELS_LEN + 1];
        snprintf (labels, sizeof labels, "route=\"%s\",method=\"%s\",class=\"%dxx\"", r->pattern,
                  req->route ? s_method_names[r->method] : method, cls);
        counter = gl_metrics_counter (
            "greenline_intake_http_requests_total",
            "API requests answered, by route (the pattern, never the path) and status class.",
            labels);
        if (slot)
            *slot = counter;
    }
    gl_metric_inc (counter, 1);
    int64_t us = gl_mono_us () - req->start_us;
    if (r->latency)
        gl_metric_observe_us (r->latency, (uint64_t) (us > 0 ? us : 0));
    //  The pattern, never the raw path or the query: both may carry case numbers or names.
    gl_debug ("http: %s %s %d %.1f ms id=%s", method, r->pattern, req->status,
              (double) us / 1000.0, req->id);
}

static bool
s_has_body_header (struct evhttp_request *ev)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers (ev);
    const char *length = evhttp_find_header (in, "Content-Length");
    return evhttp_find_header (in, "Transfer-Encoding")
        || (length && strspn (length, "0 ") != strlen (length));
}

static const struct {
    enum evhttp_cmd_type cmd;
    const char *name;
    int method;                 //  -1: no route takes it
} s_commands[] = {
    { EVHTTP_REQ_GET, "GET", S_GET },         { EVHTTP_REQ_HEAD, "HEAD", S_GET },
    { EVHTTP_REQ_POST, "POST", S_POST },      { EVHTTP_REQ_PUT, "PUT", S_PUT },
    { EVHTTP_REQ_PATCH, "PATCH", S_PATCH },   { EVHTTP_REQ_DELETE, "DELETE", S_DELETE },
    { EVHTTP_REQ_OPTIONS, "OPTIONS", -1 },    { EVHTTP_REQ_TRACE, "TRACE", -1 },
    { EVHTTP_REQ_CONNECT, "CONNECT", -1 },
};

//  Step 2 of the order of checks: path and method. true when req->route is set.
static bool
s_route_request (http_t *self, http_req_t *req, int method)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri (req->ev);
    const char *path = uri ? evhttp_uri_get_path (uri) : NULL;
    int rc = path ? s_split_path (req, path) : 400;
    if (rc == 414) {
        http_reply_error (req, 414, "uri_too_long", "the path is too long", NULL);
        return false;
    }
    if (rc == 400) {
        http_reply_error (req, 400, "invalid_path",
                          "malformed path: bad %-escape, control character, invalid UTF-8, "
                          "encoded '/', or a '.' or '..' segment",
                          NULL);
        return false;
    }
    unsigned allowed = 0;
    //  OPTIONS, TRACE and CONNECT (method -1) match nothing but still learn the Allow list.
    req->route = rc == 0 ? s_find (self, req, method, &allowed) : NULL;
    if (req->route) {
        s_bind_params (req);
        return true;
    }
    if (allowed == 0) {
        http_reply_error (req, 404, "not_found", "no such endpoint", NULL);
        return false;
    }
    char list[64] = "";
    size_t n = 0;
    for (int m = 0; m < S_METHODS; m++)
        if (allowed & (1u << m))
            n += (size_t) snprintf (list + n, sizeof list - n, "%s%s%s", n ? ", " : "",
                                    s_method_names[m], m == S_GET ? ", HEAD" : "");
    evhttp_add_header (evhttp_request_get_output_headers (req->ev), "Allow", list);
    http_reply_error (req, 405, "method_not_allowed", "this endpoint does not take this method",
                      NULL);
    return false;
}

//  Step 4: who calls, and may they. true when the handler may run.
static bool
s_authorize (http_t *self, http_req_t *req)
{
    if (req->route->roles & GL_ROLE_PUBLIC)
        return true;
    intake_t *owner = self->owner;
    http_auth_fn *auth
        = owner && owner->authenticate ? owner->authenticate : http_authenticate_nobody;
    int verdict = auth (owner, req, &req->caller);
    if (verdict == 401)
        http_reply_error (req, 401, "unauthorized", "credentials are missing or not valid", NULL);
    else if (verdict == 503)
        http_reply_error (req, 503, "unavailable", "cannot check credentials now", NULL);
    else if (verdict != 0)
        http_reply_error (req, 500, "internal", "the authentication hook failed", NULL);
    else if (!(req->caller.roles & req->route->roles))
        http_reply_error (req, 403, "forbidden", "your role does not allow this", NULL);
    return !req->replied;
}

//  Steps 5 and 6: query string and body.
static bool
s_read_input (http_req_t *req, size_t body_len)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri (req->ev);
    s_verr_t e = { 0 };
    if (s_parse_query (req, uri ? evhttp_uri_get_query (uri) : NULL, &e) != 0) {
        if (strcmp (e.code, "internal") == 0)
            http_reply_error (req, 500, "internal", "out of memory for the query", NULL);
        else
            s_reply_verr (req, 400, &e);
        return false;
    }
    if (body_len == 0)
        return true;
    if (!s_is_json_type (http_header (req, "Content-Type"))) {
        http_reply_error (req, 415, "unsupported_media_type", "send the body as application/json",
                          NULL);
        return false;
    }
    const char *buf = (const char *) evbuffer_pullup (evhttp_request_get_input_buffer (req->ev),
                                                      (ev_ssize_t) body_len);
    if (!buf) {
        http_reply_error (req, 500, "internal", "out of memory for the body", NULL);
        return false;
    }
    char message[192];
    if (http_json_parse (buf, body_len, &req->body, message, sizeof message) != 0) {
        http_reply_error (req, 400, "invalid_json", message, NULL);
        return false;
    }
    return true;
}

//  Everything before the handler, in the documented order (http.h, docs/api.md). true when the
//  handler may run; false when the request was answered here.
static bool
s_prepare (http_t *self, http_req_t *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command (req->ev);
    int method = -1;
    req->method_name = "OTHER";
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (s_commands[i].cmd == cmd) {
            method = s_commands[i].method;
            req->method_name = s_commands[i].name;
        }
    req->head = cmd == EVHTTP_REQ_HEAD;
    size_t body_len = evbuffer_get_length (evhttp_request_get_input_buffer (req->ev));
    bool takes_body = method == S_POST || method == S_PUT || method == S_PATCH;
    if (!takes_body && (body_len > 0 || s_has_body_header (req->ev))) {
        evhttp_add_header (evhttp_request_get_output_headers (req->ev), "Connection", "close");
        http_reply_error (req, 400, "bad_request", "this method takes no body", NULL);
        return false;
    }
    if (!s_route_request (self, req, method))
        return false;
    if (body_len > self->max_body) {
        char message[96];
        snprintf (message, sizeof message, "the body is over the limit of %zu bytes",
                  self->max_body);
        http_reply_error (req, 413, "payload_too_large", message, NULL);
        return false;
    }
    return s_authorize (self, req) && s_read_input (req, body_len);
}

static void
s_on_request (struct evhttp_request *ev, void *arg)
{
    http_t *self = arg;
    //  One request at a time on this thread: the struct is big for a stack frame, so it lives
    //  on the heap, zeroed per request.
    http_req_t *req = calloc (1, sizeof *req);
    if (!req) {
        evhttp_send_error (ev, 500, NULL);
        return;
    }
    req->http = self;
    req->ev = ev;
    req->start_us = gl_mono_us ();
    gl_id_new (req->id);
    if (s_prepare (self, req)) {
        req->in_handler = true;
        int rc = req->route->fn (self->owner, req);
        req->in_handler = false;
        if (req->deferred && rc != 0 && !req->replied) {
            gl_error ("http: %s %s deferred and then failed without answering",
                      s_method_names[req->route->method], req->route->pattern);
            http_reply_error (req, 500, "internal", "the handler did not answer", NULL);
        }
        if (req->deferred && (!req->replied || req->streaming))
            return;                     //  answered later: http_reply_*, http_stream_end
        if (!req->replied) {
            if (rc == 0)
                gl_error ("http: %s %s returned without answering",
                          s_method_names[req->route->method], req->route->pattern);
            http_reply_error (req, 500, "internal", "the handler did not answer", NULL);
        }
    }
    s_finish (req);
}

//  Count the request and free it.
static void
s_finish (http_req_t *req)
{
    s_wait_unlink (req);
    s_count (req->http, req);
    json_decref (req->body);
    free (req->query_buf);
    sodium_memzero (&req->caller, sizeof req->caller);
    free (req);
}


int
http_listen (http_t *self, struct event_base *base, const http_opts_t *opts, char *err,
             size_t errlen)
{
    assert (self && base && opts && !self->evhttp);
    if (opts->port < 0 || opts->port > 65535 || opts->max_body < 1 || opts->max_headers < 1024
        || opts->timeout_s < 1) {
        snprintf (err, errlen, "invalid HTTP options");
        return -1;
    }
    self->evhttp = evhttp_new (base);
    if (!self->evhttp) {
        snprintf (err, errlen, "cannot create the HTTP server");
        return -1;
    }
    self->max_body = opts->max_body;
    self->timeout_s = opts->timeout_s;
    size_t cap = opts->max_body * 4 > S_HARD_CAP_MIN ? opts->max_body * 4 : S_HARD_CAP_MIN;
    evhttp_set_timeout (self->evhttp, opts->timeout_s);
    evhttp_set_max_headers_size (self->evhttp, (ev_ssize_t) opts->max_headers);
    evhttp_set_max_body_size (self->evhttp, (ev_ssize_t) cap);
    //  Over the cap, read and drop the body before answering, so the client sees the 413
    //  rather than a reset while it is still sending.
    evhttp_set_flags (self->evhttp, EVHTTP_SERVER_LINGERING_CLOSE);
    //  Every method reaches s_on_request, so 405 has our shape and an Allow header.
    evhttp_set_allowed_methods (self->evhttp,
                                EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT
                                    | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE
                                    | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb (self->evhttp, s_on_request, self);
    const char *host = opts->host ? opts->host : "127.0.0.1";
    struct evhttp_bound_socket *bound
        = evhttp_bind_socket_with_handle (self->evhttp, host, (ev_uint16_t) opts->port);
    if (!bound) {
        snprintf (err, errlen, "cannot bind HTTP on %s:%d", host, opts->port);
        evhttp_free (self->evhttp);
        self->evhttp = NULL;
        return -1;
    }
    self->port = gl_health_bound_port (bound);
    self->bound = bound;
    gl_info ("http: serving the API and console on %s:%d (%zu routes)", host, self->port,
             self->count);
    return 0;
}

void
http_stop_listening (http_t *self)
{
    assert (self);
    if (self->evhttp && self->bound) {
        evhttp_del_accept_socket (self->evhttp, self->bound);
        self->bound = NULL;
    }
}

int
http_port (http_t *self)
{
    assert (self);
    return self->port;
}
