/*  smtp — e-mail over SMTP with libcurl: STARTTLS (none, try, required), AUTH when a user is
    set, a multipart/alternative message (UTF-8 plain text and HTML, base64), the subject
    RFC 2047-encoded, the HTML laid out right to left for Arabic.

    The Message-ID is derived from the notification id, so a receiving system can tell a
    repeated e-mail (an emergency re-sent after a crash) from a new one.
    Outcome: 250 after the data is taken; a 4xx answer or no connection is retried; a 5xx answer
    is permanent; a connection lost after the whole message went out leaves it in doubt.
*/
#include "notifier.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *p;
    size_t left;
    bool all_read;      //  curl has taken the whole message
} s_reader_t;

static size_t
s_read (char *buf, size_t size, size_t n, void *arg)
{
    s_reader_t *r = arg;
    size_t take = size * n < r->left ? size * n : r->left;
    memcpy (buf, r->p, take);
    r->p += take;
    r->left -= take;
    if (take == 0)
        r->all_read = true;
    return take;
}

send_rc_t
smtp_send (const smtp_cfg_t *cfg, const send_req_t *req, send_res_t *res)
{
    assert (cfg && req && res);
    if (!cfg->url || !cfg->from) {
        snprintf (res->reason, sizeof res->reason, "smtp_not_configured");
        return SEND_PERMANENT;
    }
    if (!email_address_valid (req->to)) {
        snprintf (res->reason, sizeof res->reason, "email_invalid");
        return SEND_PERMANENT;
    }
    char *msg = smtp_message (cfg, req, gl_now_ms ());
    CURL *curl = msg ? curl_easy_init () : NULL;
    if (!curl) {
        free (msg);
        snprintf (res->reason, sizeof res->reason, "no_memory");
        return SEND_RETRY;
    }
    char from[300], to[300];
    snprintf (from, sizeof from, "<%s>", cfg->from);
    snprintf (to, sizeof to, "<%s>", req->to);
    struct curl_slist *rcpt = curl_slist_append (NULL, to);
    s_reader_t reader = { msg, strlen (msg), false };
    curl_easy_setopt (curl, CURLOPT_URL, cfg->url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) cfg->timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) cfg->timeout_ms);
    curl_easy_setopt (curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt (curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt (curl, CURLOPT_READFUNCTION, s_read);
    curl_easy_setopt (curl, CURLOPT_READDATA, &reader);
    curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt (curl, CURLOPT_USE_SSL,
                      cfg->tls == 2 ? (long) CURLUSESSL_ALL
                      : cfg->tls == 1 ? (long) CURLUSESSL_TRY : (long) CURLUSESSL_NONE);
    if (cfg->ca_file)
        curl_easy_setopt (curl, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->insecure) {
        curl_easy_setopt (curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt (curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (cfg->user) {
        curl_easy_setopt (curl, CURLOPT_USERNAME, cfg->user);
        curl_easy_setopt (curl, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    }
    CURLcode rc = curl_easy_perform (curl);
    long code = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all (rcpt);
    curl_easy_cleanup (curl);
    sodium_memzero (msg, strlen (msg));
    free (msg);
    if (rc == CURLE_OK) {
        snprintf (res->gateway_id, sizeof res->gateway_id, "%.40s.email", req->nid);
        return SEND_OK;
    }
    if (code >= 500 && code < 600) {
        snprintf (res->reason, sizeof res->reason, "smtp_%ld", code);
        return SEND_PERMANENT;
    }
    if (code >= 400 && code < 500) {
        snprintf (res->reason, sizeof res->reason, "smtp_%ld", code);
        return SEND_RETRY;
    }
    if (rc == CURLE_LOGIN_DENIED) {
        snprintf (res->reason, sizeof res->reason, "smtp_auth_failed");
        return SEND_RETRY;
    }
    if (rc == CURLE_USE_SSL_FAILED) {
        snprintf (res->reason, sizeof res->reason, "smtp_starttls_unavailable");
        return SEND_RETRY;
    }
    if (reader.all_read) {
        //  The message went out and the final answer never came: it may have been taken.
        snprintf (res->reason, sizeof res->reason,
                  rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection_lost");
        return SEND_DOUBT;
    }
    snprintf (res->reason, sizeof res->reason,
              rc == CURLE_COULDNT_CONNECT ? "connect_failed" : "smtp_failed");
    return SEND_RETRY;
}
