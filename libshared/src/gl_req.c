/*  gl_req — see gl_req.h. The wire format is documented in docs/events.md ("Requests"). */
#include "gl/gl_req.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_msgpack.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  As many messages queued either way as calls can be outstanding, and a margin for stale
//  replies: a reply is never dropped by ZeroMQ because the queue was shorter than the table.
#define S_HWM (GL_REQ_OUTSTANDING_MAX + 100)

//  An outstanding asynchronous call.
typedef struct _s_call_t s_call_t;
struct _s_call_t {
    char id[GL_ID_LEN + 1];
    int64_t deadline;           //  gl_mono_ms; only used to make room (s_make_room)
    char *frame;                //  the request while not sent yet (in the unsent list)
    size_t frame_len;
    s_call_t *prev, *next;      //  the unsent list, oldest first
    json_t *arrived;            //  a reply gl_req_call read for us, kept for gl_req_recv
    int send_errno;             //  not 0: the socket refused the frame; answered 503
};

struct _gl_req_t {
    zsock_t *sock;
    char *endpoint;
    char *auth;                 //  "" when none
    gl_mp_limits_t limits;
    uint64_t discarded;
    zhashx_t *calls;            //  id -> s_call_t, the outstanding asynchronous calls
    s_call_t *unsent_head, *unsent_tail;
    size_t kept;                //  calls with arrived or send_errno set, for gl_req_recv
};

static void
s_call_free (void **item_p)
{
    s_call_t *call = *item_p;
    if (!call)
        return;
    free (call->frame);
    json_decref (call->arrived);
    free (call);
    *item_p = NULL;
}

bool
gl_req_op_valid (const char *s)
{
    if (!s)
        return false;
    size_t len = strlen (s);
    if (len == 0 || len > GL_REQ_OP_MAX || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
        if (!ok || (c == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

void
gl_req_first_token (const char *list, char out[GL_REQ_AUTH_MAX + 1])
{
    out[0] = 0;
    if (!list)
        return;
    while (*list == ' ' || *list == '\t')
        list++;
    size_t n = strcspn (list, ",");
    while (n > 0 && (list[n - 1] == ' ' || list[n - 1] == '\t'))
        n--;
    if (n > GL_REQ_AUTH_MAX)
        n = GL_REQ_AUTH_MAX;
    memcpy (out, list, n);
    out[n] = 0;
}

bool
gl_req_key_valid (const char *s)
{
    if (!s)
        return false;
    size_t len = strlen (s);
    if (len > GL_REQ_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
            return false;
    return true;
}

gl_req_t *
gl_req_new (const char *endpoint)
{
    return gl_req_new_curve (endpoint, NULL);
}

gl_req_t *
gl_req_new_curve (const char *endpoint, gl_curve_t *curve)
{
    assert (endpoint);
    gl_req_t *self = calloc (1, sizeof (gl_req_t));
    if (!self)
        return NULL;
    self->limits = gl_mp_limits_default ();
    self->endpoint = strdup (endpoint);
    self->auth = strdup ("");
    self->sock = zsock_new (ZMQ_DEALER);
    self->calls = zhashx_new ();
    if (self->calls)
        zhashx_set_destructor (self->calls, s_call_free);
    if (!self->endpoint || !self->auth || !self->sock || !self->calls) {
        gl_req_destroy (&self);
        return NULL;
    }
    //  Options first: ZMQ_IMMEDIATE only applies to connections made after it is set.
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, S_HWM);
    zsock_set_rcvhwm (self->sock, S_HWM);
    zsock_set_immediate (self->sock, 1);
    zsock_set_maxmsgsize (self->sock, (int) self->limits.max_bytes);
    zsock_set_sndtimeo (self->sock, 0);
    zsock_set_rcvtimeo (self->sock, 0);
    //  An endpoint list, or one that names a server key, goes through gl_curve (which drops the
    //  key when curve is NULL); a single plain endpoint is connected as it always was.
    char err[256] = "";
    int rc = curve || strchr (endpoint, '#') || strchr (endpoint, ',')
                 ? gl_curve_connect (curve, self->sock, endpoint, err, sizeof err)
                 : zsock_connect (self->sock, "%s", endpoint);
    if (rc != 0) {
        gl_warn ("req: cannot connect to %s%s%s", endpoint, *err ? ": " : "", err);
        gl_req_destroy (&self);
        return NULL;
    }
    return self;
}

void
gl_req_destroy (gl_req_t **self_p)
{
    assert (self_p);
    gl_req_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    zhashx_destroy (&self->calls);
    if (self->auth) {
        sodium_memzero (self->auth, strlen (self->auth));
        free (self->auth);
    }
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

int
gl_req_set_auth (gl_req_t *self, const char *token)
{
    assert (self);
    token = token ? token : "";
    size_t len = strlen (token);
    if (len > GL_REQ_AUTH_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) token[i] < 0x21 || (unsigned char) token[i] > 0x7e || token[i] == ',')
            return -1;
    char *copy = strdup (token);
    if (!copy)
        return -1;
    sodium_memzero (self->auth, strlen (self->auth));
    free (self->auth);
    self->auth = copy;
    return 0;
}

uint64_t
gl_req_discarded (gl_req_t *self)
{
    assert (self);
    return self->discarded;
}

const char *
gl_req_endpoint (gl_req_t *self)
{
    assert (self);
    return self->endpoint;
}

void
gl_reply_clear (gl_reply_t *reply)
{
    if (!reply)
        return;
    json_decref (reply->body);
    free (reply->error_code);
    free (reply->error_message);
    free (reply->error_field);
    memset (reply, 0, sizeof *reply);
}

static char *
s_strdup_or_die (const char *s)
{
    char *copy = strdup (s);
    assert (copy);
    return copy;
}

//  A reply made up here rather than received: status, error and an empty body.
static int
s_local_error (gl_reply_t *reply, int status, const char *code, const char *field,
               const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    json_decref (reply->body);
    free (reply->error_code);
    free (reply->error_message);
    free (reply->error_field);
    reply->status = status;
    reply->local = true;
    reply->body = json_object ();
    assert (reply->body);
    reply->error_code = s_strdup_or_die (code);
    reply->error_message = s_strdup_or_die (message);
    reply->error_field = s_strdup_or_die (field ? field : "");
    return -1;
}

//  A string member of obj, at most max bytes, or NULL.
static const char *
s_str (const json_t *obj, const char *name, size_t max)
{
    const json_t *v = json_object_get (obj, name);
    if (!json_is_string (v) || json_string_length (v) > max)
        return NULL;
    return json_string_value (v);
}

//  Check a reply carrying our id against the wire format and move it into reply. -1 with the
//  rule that failed in why.
static int
s_take_reply (json_t *root, gl_reply_t *reply, char *why, size_t whylen)
{
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value) {
        if (strcmp (key, "v") && strcmp (key, "id") && strcmp (key, "status")
            && strcmp (key, "body") && strcmp (key, "error")) {
            snprintf (why, whylen, "unknown key in reply");
            return -1;
        }
    }
    json_t *v = json_object_get (root, "v");
    json_t *status = json_object_get (root, "status");
    json_t *body = json_object_get (root, "body");
    json_t *error = json_object_get (root, "error");
    if (!json_is_integer (v) || json_integer_value (v) != GL_REQ_VERSION) {
        snprintf (why, whylen, "reply v is not %d", GL_REQ_VERSION);
        return -1;
    }
    if (!json_is_integer (status) || json_integer_value (status) < 100
        || json_integer_value (status) > 599) {
        snprintf (why, whylen, "reply status is not an integer in 100..599");
        return -1;
    }
    if (!json_is_object (body)) {
        snprintf (why, whylen, "reply body is not a map");
        return -1;
    }
    if (!json_is_null (error) && !json_is_object (error)) {
        snprintf (why, whylen, "reply error is neither nil nor a map");
        return -1;
    }
    const char *code = NULL, *message = NULL, *field = NULL;
    if (json_is_object (error)) {
        code = s_str (error, "code", GL_REQ_CODE_MAX);
        message = s_str (error, "message", GL_REQ_MESSAGE_MAX);
        field = s_str (error, "field", GL_REQ_FIELD_MAX);
        if (!code || !*code || !message || !field || json_object_size (error) != 3) {
            snprintf (why, whylen, "reply error is not {code, message, field}");
            return -1;
        }
    }
    reply->status = (int) json_integer_value (status);
    reply->body = json_incref (body);
    if (code) {
        reply->error_code = s_strdup_or_die (code);
        reply->error_message = s_strdup_or_die (message);
        reply->error_field = s_strdup_or_die (field);
    }
    return 0;
}

//  Read one message off the socket. 1 with *root (the decoded map, or NULL when the frame could
//  not be read), -1 when nothing could be read.
static int
s_read_frame (gl_req_t *self, json_t **root)
{
    *root = NULL;
    void *handle = zsock_resolve (self->sock);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&msg);
        return -1;
    }
    //  One frame per reply; anything longer is not ours to read. Drain it.
    bool multipart = zmq_msg_more (&msg);
    while (zmq_msg_more (&msg)) {
        zmq_msg_close (&msg);
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) < 0)
            break;
    }
    if (!multipart) {
        char err[256];
        *root = gl_mp_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &self->limits, err,
                              sizeof err);
        if (!*root)
            gl_debug ("req: unreadable reply discarded: %s", err);
    }
    zmq_msg_close (&msg);
    return 1;
}

//  The reply's id, when root is a map with a string id of the right length; else NULL.
static const char *
s_reply_id (const json_t *root)
{
    return json_is_object (root) ? s_str (root, "id", GL_ID_LEN) : NULL;
}

//  Check root (a reply with reply->id) and move it into reply; a reply that breaks the wire
//  format becomes 502 bad_reply. 0, or -1 for the latter.
static int
s_accept (gl_req_t *self, json_t *root, gl_reply_t *reply)
{
    char why[128];
    int rc = s_take_reply (root, reply, why, sizeof why);
    if (rc != 0) {
        gl_warn ("req: malformed reply to %s from %s: %s", reply->id, self->endpoint, why);
        s_local_error (reply, 502, "bad_reply", "", "%s", why);
    }
    return rc;
}

//  True when call is sent and still waiting for its answer: a reply with its id is taken. (Any
//  other reply with its id is not the server's answer to it: one answer per call, and none to a
//  request not sent yet.)
static bool
s_awaited (const s_call_t *call)
{
    return !call->frame && !call->arrived && !call->send_errno;
}

//  Read one message off the socket. Returns 1 and the reply when it answers our call, 0 when it
//  was discarded (stale or unreadable) or kept for an outstanding asynchronous call, -1 when
//  nothing could be read.
static int
s_recv_one (gl_req_t *self, gl_reply_t *reply, int *bad)
{
    json_t *root;
    if (s_read_frame (self, &root) < 0)
        return -1;
    const char *id = s_reply_id (root);
    if (id && strcmp (id, reply->id) == 0) {
        *bad = s_accept (self, root, reply) != 0;
        json_decref (root);
        return 1;
    }
    s_call_t *call = id ? zhashx_lookup (self->calls, id) : NULL;
    if (call && s_awaited (call)) {
        call->arrived = root;       //  gl_req_recv hands it over
        self->kept++;
        return 0;
    }
    self->discarded++;
    json_decref (root);
    return 0;
}

//  Wait until the socket has one of events or the deadline passes. 1 when ready, 0 when the
//  deadline passed, -1 on a socket error other than an interrupted wait.
static int
s_wait (gl_req_t *self, short events, int64_t deadline)
{
    while (true) {
        int64_t left = deadline - gl_mono_ms ();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, events, 0 };
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
        if (left == 0)
            return 0;
    }
}

//  Encode the request map. *out malloc'd. 0 or -1.
static int
s_encode_request (gl_req_t *self, const char *id, const char *op, const char *key,
                  const json_t *body, int ttl, char **out, size_t *outlen)
{
    json_t *req = json_object ();
    assert (req);
    json_object_set_new (req, "v", json_integer (GL_REQ_VERSION));
    json_object_set_new (req, "id", json_string (id));
    json_object_set_new (req, "op", json_string (op));
    json_object_set_new (req, "key", json_string (key));
    json_object_set_new (req, "ttl", json_integer (ttl));
    json_object_set_new (req, "auth", json_string (self->auth));
    json_object_set_new (req, "body", body ? json_deep_copy (body) : json_object ());
    //  Seven members, or an allocation failed.
    int rc = json_object_size (req) == 7 ? gl_mp_encode (req, out, outlen) : -1;
    json_decref (req);
    return rc;
}

static void s_flush (gl_req_t *self);

//  Clear reply, give it a fresh id, cap *timeout_ms at GL_REQ_TTL_MAX, check the arguments and
//  encode the request. 0 with *frame (malloc'd), or -1 with reply holding 400 bad_request.
static int
s_prepare (gl_req_t *self, const char *op, const char *idem_key, const json_t *body,
           int *timeout_ms_p, gl_reply_t *reply, char **frame, size_t *frame_len)
{
    if (*timeout_ms_p > GL_REQ_TTL_MAX)
        *timeout_ms_p = GL_REQ_TTL_MAX;
    int timeout_ms = *timeout_ms_p;
    gl_reply_clear (reply);
    gl_id_new (reply->id);
    const char *key = idem_key ? idem_key : "";
    //  Checked here so that a bad name or key (which may come from an HTTP caller) is reported
    //  as such, not as a timeout.
    if (!gl_req_op_valid (op))
        return s_local_error (reply, 400, "bad_request", "op", "op is not a valid name");
    if (!gl_req_key_valid (key))
        return s_local_error (reply, 400, "bad_request", "key",
                              "key must be 0..%d printable ASCII characters", GL_REQ_KEY_MAX);
    if (body && !json_is_object (body))
        return s_local_error (reply, 400, "bad_request", "body", "body must be a map");
    if (s_encode_request (self, reply->id, op, key, body, timeout_ms, frame, frame_len) != 0)
        return s_local_error (reply, 400, "bad_request", "body", "body cannot be encoded");
    if (*frame_len > self->limits.max_bytes) {
        free (*frame);
        *frame = NULL;
        return s_local_error (reply, 400, "bad_request", "body",
                              "request is larger than %zu bytes", self->limits.max_bytes);
    }
    return 0;
}

int
gl_req_call (gl_req_t *self, const char *op, const char *idem_key, const json_t *body,
             int timeout_ms, gl_reply_t *reply)
{
    assert (self && op && reply && timeout_ms > 0);
    char *frame = NULL;
    size_t frame_len = 0;
    if (s_prepare (self, op, idem_key, body, &timeout_ms, reply, &frame, &frame_len) != 0)
        return -1;

    int64_t deadline = gl_mono_ms () + timeout_ms;
    //  With ZMQ_IMMEDIATE the socket is writable only once a server is connected, so waiting
    //  for POLLOUT is waiting for a server; if none turns up in time the request was never sent.
    int sent = -1;
    int ready = s_wait (self, ZMQ_POLLOUT, deadline);
    while (ready == 1) {
        //  Asynchronous requests kept for want of a server go first: they were made first.
        if (self->unsent_head)
            s_flush (self);
        sent = zmq_send (zsock_resolve (self->sock), frame, frame_len, ZMQ_DONTWAIT);
        if (sent >= 0 || errno != EAGAIN)
            break;
        ready = s_wait (self, ZMQ_POLLOUT, deadline);
    }
    int send_errno = errno;
    free (frame);
    if (ready == 0)
        return s_local_error (reply, 504, "timeout", "",
                              "no server connected within %d ms; request not sent", timeout_ms);
    if (sent < 0)
        return s_local_error (reply, 503, "unavailable", "", "cannot send: %s",
                              zmq_strerror (send_errno));

    while (true) {
        ready = s_wait (self, ZMQ_POLLIN, deadline);
        if (ready == 0)
            return s_local_error (reply, 504, "timeout", "", "no reply within %d ms", timeout_ms);
        if (ready < 0)
            return s_local_error (reply, 503, "unavailable", "", "cannot receive: %s",
                                  zmq_strerror (errno));
        //  Read everything waiting: stale replies first, ours possibly among them.
        int rc;
        int bad = 0;
        while ((rc = s_recv_one (self, reply, &bad)) == 0)
            ;
        if (rc == 1)
            return bad ? -1 : 0;
    }
}

//  --------------------------------------------------------------------------------------------
//  Asynchronous calls

static void
s_unsent_unlink (gl_req_t *self, s_call_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        self->unsent_head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        self->unsent_tail = call->prev;
    call->prev = call->next = NULL;
    free (call->frame);
    call->frame = NULL;
}

static void
s_unsent_append (gl_req_t *self, s_call_t *call)
{
    call->next = NULL;
    call->prev = self->unsent_tail;
    if (self->unsent_tail)
        self->unsent_tail->next = call;
    else
        self->unsent_head = call;
    self->unsent_tail = call;
}

//  Send kept requests, oldest first, while the socket takes them (with ZMQ_IMMEDIATE: while a
//  server is connected and its queue has room). A refusal other than "not now" fails that call.
static void
s_flush (gl_req_t *self)
{
    void *handle = zsock_resolve (self->sock);
    while (self->unsent_head) {
        s_call_t *call = self->unsent_head;
        if (zmq_send (handle, call->frame, call->frame_len, ZMQ_DONTWAIT) >= 0) {
            s_unsent_unlink (self, call);
            continue;
        }
        if (errno == EAGAIN || errno == EINTR)
            return;
        call->send_errno = errno;
        s_unsent_unlink (self, call);
        self->kept++;
    }
}

//  Forget every call whose timeout has passed (its caller should have, and will find it gone).
static void
s_make_room (gl_req_t *self)
{
    int64_t now = gl_mono_ms ();
    zlistx_t *expired = zlistx_new ();
    assert (expired);
    for (s_call_t *call = zhashx_first (self->calls); call; call = zhashx_next (self->calls))
        if (call->deadline <= now)
            zlistx_add_end (expired, call->id);
    //  Deleted after the walk: the table must not change under zhashx_next.
    for (char *id = zlistx_first (expired); id; id = zlistx_next (expired))
        gl_req_forget (self, id);
    zlistx_destroy (&expired);
}

int
gl_req_send (gl_req_t *self, const char *op, const char *idem_key, const json_t *body,
             int timeout_ms, gl_reply_t *reply)
{
    assert (self && op && reply && timeout_ms > 0);
    char *frame = NULL;
    size_t frame_len = 0;
    if (s_prepare (self, op, idem_key, body, &timeout_ms, reply, &frame, &frame_len) != 0)
        return -1;
    if (zhashx_size (self->calls) >= GL_REQ_OUTSTANDING_MAX)
        s_make_room (self);
    if (zhashx_size (self->calls) >= GL_REQ_OUTSTANDING_MAX) {
        free (frame);
        return s_local_error (reply, 503, "busy", "", "%d calls are outstanding already",
                              GL_REQ_OUTSTANDING_MAX);
    }
    s_call_t *call = calloc (1, sizeof *call);
    if (!call) {
        free (frame);
        return s_local_error (reply, 503, "unavailable", "", "out of memory");
    }
    memcpy (call->id, reply->id, sizeof call->id);
    call->deadline = gl_mono_ms () + timeout_ms;
    //  Behind kept requests, never before them: they are sent in the order they were made.
    if (!self->unsent_head) {
        if (zmq_send (zsock_resolve (self->sock), frame, frame_len, ZMQ_DONTWAIT) >= 0)
            free (frame);
        else if (errno == EAGAIN || errno == EINTR)
            call->frame = frame;
        else {
            int send_errno = errno;
            free (frame);
            free (call);
            return s_local_error (reply, 503, "unavailable", "", "cannot send: %s",
                                  zmq_strerror (send_errno));
        }
    }
    else
        call->frame = frame;
    call->frame_len = frame_len;
    if (zhashx_insert (self->calls, call->id, call) != 0) {
        //  A fresh 128-bit id is never a duplicate; only out of memory lands here.
        void *item = call;
        s_call_free (&item);
        return s_local_error (reply, 503, "unavailable", "", "out of memory");
    }
    if (call->frame)
        s_unsent_append (self, call);
    return 0;
}

//  Hand over a kept answer (one gl_req_call read, or a refused send). 1, or 0 when none.
static int
s_take_kept (gl_req_t *self, gl_reply_t *reply)
{
    for (s_call_t *call = zhashx_first (self->calls); call; call = zhashx_next (self->calls)) {
        if (!call->arrived && !call->send_errno)
            continue;
        memcpy (reply->id, call->id, sizeof reply->id);
        if (call->arrived)
            s_accept (self, call->arrived, reply);
        else
            s_local_error (reply, 503, "unavailable", "", "cannot send: %s",
                           zmq_strerror (call->send_errno));
        self->kept--;
        zhashx_delete (self->calls, reply->id);
        return 1;
    }
    self->kept = 0;             //  not reached while the count is right
    return 0;
}

int
gl_req_recv (gl_req_t *self, gl_reply_t *reply)
{
    assert (self && reply);
    gl_reply_clear (reply);
    int idle = 0;               //  rounds in a row that sent nothing although POLLOUT said so
    while (true) {
        if (self->unsent_head) {
            s_call_t *head = self->unsent_head;
            s_flush (self);
            idle = self->unsent_head == head ? idle + 1 : 0;
        }
        if (self->kept > 0 && s_take_kept (self, reply))
            return 1;
        json_t *root;
        if (s_read_frame (self, &root) == 1) {
            const char *id = s_reply_id (root);
            s_call_t *call = id ? zhashx_lookup (self->calls, id) : NULL;
            if (!call || !s_awaited (call)) {
                self->discarded++;
                json_decref (root);
                continue;
            }
            memcpy (reply->id, call->id, sizeof reply->id);
            zhashx_delete (self->calls, reply->id);
            s_accept (self, root, reply);
            json_decref (root);
            return 1;
        }
        //  Nothing to read. Reading ZMQ_EVENTS re-arms the fd, but may itself take the edge of
        //  a message that came in or of a server that connected meanwhile: go round again for
        //  either, so that no edge is lost (a socket that says POLLOUT and still refuses gets
        //  one more try, then waits for the next edge).
        int events = zsock_events (self->sock);
        if ((events & ZMQ_POLLIN) || self->kept > 0)
            continue;
        if (self->unsent_head && (events & ZMQ_POLLOUT) && idle < 2)
            continue;
        return 0;
    }
}

void
gl_req_forget (gl_req_t *self, const char *id)
{
    assert (self && id);
    s_call_t *call = zhashx_lookup (self->calls, id);
    if (!call)
        return;
    if (call->frame)
        s_unsent_unlink (self, call);
    if (call->arrived || call->send_errno)
        self->kept--;
    zhashx_delete (self->calls, id);
}

int
gl_req_fd (gl_req_t *self)
{
    assert (self);
    return zsock_fd (self->sock);
}

bool
gl_req_ready (gl_req_t *self)
{
    assert (self);
    int events = zsock_events (self->sock);
    return (events & ZMQ_POLLIN) || self->kept > 0
           || (self->unsent_head && (events & ZMQ_POLLOUT));
}

size_t
gl_req_outstanding (gl_req_t *self)
{
    assert (self);
    return zhashx_size (self->calls);
}
