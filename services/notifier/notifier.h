/*  notifier — everything that leaves Greenline: SMS, e-mail, signed webhooks, console alerts and
    voice calls, from notification.requested events (docs/events.md).

    Where is what:
      main.c          the process: gl_service, notifier_new, run
      notifier.c      settings (config/notifier.conf), the parts, subscriber and timers
      templates.c     message templates per type and language; the template language; SMS
                      segment counting (GSM-7 / UCS-2); E.164
      payload.c       the notification.requested payload check; channel names
      timing.c        quiet hours, backoff with jitter, the rate limits' token bucket
      signing.c       HMAC-SHA256 signatures: webhooks, the dlr-url
      recipients.c    who: intake.delivery_details, intake.user_contact, referral.partner_contact,
                      configured endpoints
      delivery.c      the work queue: claim, attempt records, the in-doubt rule, backoff, quiet
                      hours, rate limits, circuit breakers, dead letters, events
      smtp.c          e-mail (libcurl SMTP, STARTTLS, auth)
      mime.c          the e-mail message (headers, multipart text and HTML); address check
      sms_kannel.c    SMS through Kannel's sendsms, with a signed dlr-url
      http_gateway.c  a templated HTTP gateway (SMS providers with a REST API, voice)
      webhook.c       signed webhooks (HMAC-SHA256 over timestamp and body)
      console.c       console alerts (notification.console, staged in the outbox)
      dlr.c           Kannel's delivery reports: an HTTP listener on its own thread
      requests.c      bus requests: status, dead letters, replay (intake forwards the admin API)

    Everything but dlr.c's listener runs on gl_service's loop thread.
*/
#ifndef NOTIFIER_H
#define NOTIFIER_H

#include "gl/gl_service.h"
#include "gl/gl_wq.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOTIFIER_QUEUE      "notifier"              //  the gl_wq work queue
#define NOTIFIER_PREFIX     "notifier:{notifier}:"  //  every key notifier owns
#define NOTIFIER_LANG_MAX   8
#define NOTIFIER_REASON_MAX 64

typedef enum {
    CH_SMS = 0,
    CH_EMAIL,
    CH_WEBHOOK,
    CH_CONSOLE,
    CH_VOICE,
    CH__COUNT
} channel_t;

//  "sms", "email" ... ; channel_parse returns -1 for an unknown name.
const char *channel_name (channel_t ch);
int channel_parse (const char *name);

//  --------------------------------------------------------------------------------------------
//  templates.c

//  One compiled template string: literal text and {{variable}} / {{variable|filter}} slots.
//  Variables are 1..32 of [a-z0-9_], optional when written {{?name}} (nothing when the param is
//  missing or nil; otherwise a missing one fails the render); filters: time (unix ms -> "YYYY-MM-DD HH:MM UTC"), date
//  (-> "YYYY-MM-DD"), url (percent-encoded), json (JSON string escapes, no quotes).
typedef struct _tpl_t tpl_t;

//  Parse src (len bytes, UTF-8). NULL with the reason (and its line, from 1) in err.
tpl_t *tpl_parse (const char *src, size_t len, char *err, size_t errlen);
void tpl_destroy (tpl_t **self_p);

#define TPL_ESC_NONE 0
#define TPL_ESC_HTML 1

//  Render with vars (an object of string/integer/boolean values; borrowed). A new string
//  (caller frees), or NULL with a reason code in reason: "missing_variable" or "bad_variable"
//  (the variable's name is in detail, when given), "too_long".
char *tpl_render (const tpl_t *self, const json_t *vars, int escape, char *reason,
                  size_t reasonlen, char *detail, size_t detaillen);

//  The set of message templates: <code>.<lang>.txt files (see docs/operations.md).
typedef struct _templates_t templates_t;

templates_t *templates_new (void);
void templates_destroy (templates_t **self_p);

//  Parse one template file's text for code and lang and add it (replacing one with the same
//  code and lang). 0, or -1 with "line N: reason" in err.
int templates_add (templates_t *self, const char *code, const char *lang, const char *buf,
                   size_t len, char *err, size_t errlen);

//  Load every <code>.<lang>.txt file of dir. 0, or -1 with "path:line: reason" in err.
int templates_load_dir (templates_t *self, const char *dir, char *err, size_t errlen);

//  True when code has a template in lang.
bool templates_has (templates_t *self, const char *code, const char *lang);

//  Number of templates loaded.
size_t templates_count (templates_t *self);

//  A rendered message. Strings are owned (rendered_clear frees them).
typedef struct {
    char lang[NOTIFIER_LANG_MAX];   //  the language used
    bool rtl;                       //  written right to left (ar, fa, ur, he, ps)
    char *subject;                  //  e-mail subject, console title
    char *text;                     //  SMS, console body, webhook body
    char *email;                    //  e-mail plain text
    char *html;                     //  e-mail HTML (escaped, dir="rtl" when rtl)
    char *voice;                    //  what the voice call says
} rendered_t;

//  Render code in the first of langs[0..nlangs) that has it, else in fallback. 0, or -1 with a
//  reason code: "unknown_template", "missing_variable", "bad_variable", "too_long", "no_memory".
int templates_render (templates_t *self, const char *code, const char *const *langs,
                      int nlangs, const char *fallback, const json_t *params, rendered_t *out,
                      char *reason, size_t reasonlen);
void rendered_clear (rendered_t *r);

//  SMS length: encoding GSM-7 (with its extension table) or UCS-2, the units counted (septets
//  or UTF-16 code units) and the segments it takes (160/153 or 70/67 per segment).
typedef struct {
    bool ucs2;
    size_t units;
    int segments;
} sms_length_t;

//  0, or -1 when text is not valid UTF-8.
int sms_length (const char *text, sms_length_t *out);

//  True when s is an E.164 number: '+', then 8..15 digits, the first not 0.
bool phone_e164 (const char *s);

//  --------------------------------------------------------------------------------------------
//  Channels: one send, given everything. Results below.

typedef enum {
    SEND_OK = 0,        //  the gateway took it
    SEND_RETRY,         //  it did not go; try again later
    SEND_PERMANENT,     //  it cannot go as it is; dead-letter
    SEND_DOUBT          //  it may have gone (a timeout after the request was out): in doubt
} send_rc_t;

typedef struct {
    const char *delivery;       //  "<notification id>:<channel>"
    const char *nid;
    const char *template_code;
    const char *priority;       //  "emergency" or "routine"
    const char *corr;
    int attempt;
    const char *to;             //  phone, e-mail address or URL (personal data: never logged)
    const char *secret;         //  webhook secret
    const rendered_t *msg;
    const json_t *params;       //  the request's params (ids, codes, times)
    const json_t *recipient;    //  the request's recipient map
} send_req_t;

typedef struct {
    char reason[NOTIFIER_REASON_MAX];   //  code, e.g. "gateway_500", "timeout"
    char gateway_id[64];                //  the gateway's id for it, when it gave one
} send_res_t;

//  smtp.c
typedef struct {
    char *url;              //  smtp://host:port or smtps://
    char *from;             //  envelope and header sender
    int tls;                //  0 none, 1 try STARTTLS, 2 STARTTLS required
    char *user, *password;  //  AUTH, when set
    char *ca_file;          //  CA bundle for TLS (NULL: the system's)
    bool insecure;          //  do not verify the server's certificate (tests only)
    int timeout_ms;
} smtp_cfg_t;
send_rc_t smtp_send (const smtp_cfg_t *cfg, const send_req_t *req, send_res_t *res);

//  mime.c: the MIME message (headers and multipart/alternative body) for req, dated now_ms. A
//  new string or NULL.
char *smtp_message (const smtp_cfg_t *cfg, const send_req_t *req, int64_t now_ms);

//  True when a is one plain address: one '@', no spaces, controls, angle brackets, quotes or
//  commas, at most 254 bytes.
bool email_address_valid (const char *a);

//  sms_kannel.c
typedef struct {
    char *url;              //  http://host:13013/cgi-bin/sendsms
    char *user, *password;
    char *from;
    char *smsc;             //  smsc-id to route to (NULL: Kannel decides)
    char *dlr_url;          //  base of the dlr-url (http://host:port), NULL: no reports asked
    char *dlr_secret;       //  signs the dlr-url's id
    int timeout_ms;
} kannel_cfg_t;
send_rc_t kannel_send (const kannel_cfg_t *cfg, const send_req_t *req, send_res_t *res);

//  The signature put in a dlr-url for delivery and attempt: 32 hex characters in out (33).
void dlr_sign (const char *secret, const char *delivery, int attempt, char out[33]);

//  http_gateway.c
typedef struct {
    char *method;           //  GET or POST
    tpl_t *url;             //  rendered with {to, text, id, attempt, priority, template}
    tpl_t *body;            //  NULL: no body
    char *content_type;
    char *header;           //  one extra header ("Authorization: Bearer ..."), NULL: none
    int timeout_ms;
} http_gw_cfg_t;
send_rc_t http_gateway_send (const http_gw_cfg_t *cfg, const char *text, const send_req_t *req,
                             send_res_t *res);
void http_gw_cfg_clear (http_gw_cfg_t *cfg);

//  webhook.c
typedef struct {
    int timeout_ms;
} webhook_cfg_t;
send_rc_t webhook_send (const webhook_cfg_t *cfg, const send_req_t *req, int64_t now_ms,
                        send_res_t *res);

//  The signature header value for timestamp ts (unix seconds) and body: "v1=<64 hex>" in out
//  (at least 68 bytes).
void webhook_sign (const char *secret, int64_t ts, const char *body, size_t len, char *out,
                   size_t outlen);

//  The JSON body sent (a new string).
char *webhook_body (const send_req_t *req, int64_t now_ms);

//  console.c: the notification.console event for req (a new event, or NULL).
gl_event_t *console_event (const send_req_t *req);

//  Shared by the HTTP channels: the class of an HTTP status and curl result; sent_bytes is how
//  much of the request went out (0: it cannot have arrived).
send_rc_t http_classify (long status, int curl_rc, double sent_bytes, send_res_t *res);

//  One HTTP request with libcurl: method, url, optional body and headers (NULL-terminated),
//  bounded by timeout_ms; the status in *status and at most 4 KiB of the answer in answer
//  (NUL-terminated, may be NULL). Returns the classification.
send_rc_t http_request (const char *method, const char *url, const char *body,
                        const char *const *headers, int timeout_ms, long *status, char *answer,
                        size_t answerlen, send_res_t *res);

//  --------------------------------------------------------------------------------------------
//  recipients.c

typedef struct {
    char *phone;
    char *email;
    char *url;
    char *secret;
    char lang[NOTIFIER_LANG_MAX];
} contact_t;

typedef struct _notifier_t notifier_t;

//  Find how to reach recipient on channel. 0 with *out filled (rendered with contact_clear),
//  or SEND_RETRY / SEND_PERMANENT with a reason code ("recipient_unavailable",
//  "recipient_unknown", "recipient_disabled", "no_phone", "phone_not_e164", "no_email",
//  "no_webhook", "bad_recipient", "channel_not_for_recipient").
int recipients_resolve (notifier_t *self, const json_t *recipient, channel_t ch, contact_t *out,
                        char *reason, size_t reasonlen);
void contact_clear (contact_t *c);

//  --------------------------------------------------------------------------------------------
//  dlr.c: Kannel delivery reports.

typedef struct _dlr_t dlr_t;

//  Listen on host:port (port 0: a free one) on a thread of its own, with a Redis connection of
//  its own made from config. NULL with the reason in err.
dlr_t *dlr_new (gl_config_t *config, const char *host, int port, const char *secret, char *err,
                size_t errlen);
void dlr_destroy (dlr_t **self_p);
int dlr_port (dlr_t *self);

//  One parsed callback: /dlr?d=<delivery>&a=<attempt>&s=<status>&sig=<signature>[&t=...].
typedef struct {
    char delivery[GL_ID_LEN + 16];
    int attempt;
    int status;             //  Kannel's: 1 delivered, 2 failed, 4 buffered, 8 smsc ack, 16 smsc nack
} dlr_report_t;

//  Parse and check a callback's query string (outside data). 0, or -1 with a reason.
int dlr_parse (const char *query, const char *secret, dlr_report_t *out, char *reason,
               size_t reasonlen);

//  --------------------------------------------------------------------------------------------
//  The service object (notifier.c), delivery (delivery.c), requests (requests.c).

typedef struct {
    int max_attempts;               //  routine
    int max_attempts_emergency;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    int64_t doubt_wait_ms;          //  how long a routine SMS in doubt waits for a report
    int64_t in_flight_ms;           //  the longest a send can take (timeouts + margin)
    int quiet_from_min, quiet_to_min;   //  minutes after local midnight; equal: no quiet hours
    int utc_offset_min;
    int rate[CH__COUNT];            //  sends per second per replica (0: unlimited)
    int breaker_failures;
    int64_t breaker_open_ms;
    char default_lang[NOTIFIER_LANG_MAX];
    bool sms_kannel;                //  SMS through Kannel, else the HTTP gateway
    smtp_cfg_t smtp;
    kannel_cfg_t kannel;
    http_gw_cfg_t sms_http;
    http_gw_cfg_t voice_http;
    webhook_cfg_t webhook;
    const char *test_hold_file;     //  tests: after a send, create this file and wait to be killed
} notifier_cfg_t;

struct _notifier_t {
    gl_service_t *svc;
    gl_redis_t *redis;              //  the service's (loop thread)
    gl_wq_t *wq;
    templates_t *templates;
    dlr_t *dlr;
    notifier_cfg_t cfg;
    struct _delivery_t *delivery;   //  breakers, rate buckets, held items
    char consumer[GL_WQ_NAME_MAX];
};

notifier_t *notifier_new (gl_service_t *svc, char *err, size_t errlen);
void notifier_destroy (notifier_t **self_p);

//  Parse "HH:MM-HH:MM" into minutes. 0, or -1.
int notifier_parse_quiet (const char *s, int *from_min, int *to_min);

//  True when business time now_ms falls in quiet hours; *until_ms then gets their end.
bool notifier_quiet (const notifier_cfg_t *cfg, int64_t now_ms, int64_t *until_ms);

//  Backoff before attempt (attempt >= 1 just failed): base * 2^(attempt-1), capped, with jitter
//  (a uniformly drawn half of it added to the other half).
int64_t notifier_backoff (const notifier_cfg_t *cfg, int attempt, uint32_t rnd);

//  A token bucket: rate sends per second, bursts of up to rate.
typedef struct {
    double tokens;
    int64_t last_us;
} rate_bucket_t;

//  Take a token at now_us (monotonic µs). True when the send may go; rate <= 0: no limit.
bool rate_take (rate_bucket_t *b, int rate, int64_t now_us);

//  delivery.c
int delivery_init (notifier_t *self);
void delivery_destroy (notifier_t *self);
//  The subscriber's handler for notification.requested.
int delivery_on_event (void *arg, const gl_event_t *ev, gl_tx_t *tx);
//  Timer: claim and work items; move due deferred items back; announce delivery reports.
int delivery_tick (gl_service_t *svc, void *arg);

//  Validate a notification.requested payload. 0, or -1 with the field at fault in field.
int delivery_validate (const json_t *data, char *field, size_t fieldlen);

//  requests.c
int requests_init (notifier_t *self);

#endif
