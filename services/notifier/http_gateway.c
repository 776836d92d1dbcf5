/*  http_gateway — a templated HTTP gateway, for SMS providers with a REST API and for voice
    calls, and the HTTP request every HTTP channel (Kannel, webhooks) goes through.

    The URL and body are templates (templates.c) over {to, text, id, notification_id, attempt,
    priority, template, lang}: GL_NOTIFIER_SMS_HTTP_URL=https://gw.example/send?to={{to|url}}, or
    a JSON body {"to":"{{to|json}}","text":"{{text|json}}"}. 2xx is taken; 408, 429 and 5xx are
    retried; other 4xx are permanent; a timeout after the request went out leaves it in doubt.
*/
#include "notifier.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
} s_sink_t;

static size_t
s_on_data (char *p, size_t size, size_t n, void *arg)
{
    s_sink_t *sink = arg;
    size_t bytes = size * n;
    if (sink->buf && sink->len + 1 < sink->cap) {
        size_t take = sink->cap - 1 - sink->len;
        if (take > bytes)
            take = bytes;
        memcpy (sink->buf + sink->len, p, take);
        sink->len += take;
        sink->buf[sink->len] = 0;
    }
    return bytes;       //  the rest is read and dropped
}

send_rc_t
http_classify (long status, int curl_rc, double sent_bytes, send_res_t *res)
{
    if (curl_rc != CURLE_OK) {
        if (curl_rc == CURLE_COULDNT_CONNECT || curl_rc == CURLE_COULDNT_RESOLVE_HOST
            || curl_rc == CURLE_COULDNT_RESOLVE_PROXY) {
            snprintf (res->reason, sizeof res->reason, "connect_failed");
            return SEND_RETRY;
        }
        if (sent_bytes <= 0) {
            snprintf (res->reason, sizeof res->reason, curl_rc == CURLE_OPERATION_TIMEDOUT
                      ? "connect_timeout" : "send_failed");
            return SEND_RETRY;
        }
        snprintf (res->reason, sizeof res->reason, curl_rc == CURLE_OPERATION_TIMEDOUT
                  ? "timeout" : "connection_lost");
        return SEND_DOUBT;
    }
    if (status >= 200 && status < 300)
        return SEND_OK;
    snprintf (res->reason, sizeof res->reason, "gateway_%ld", status);
    if (status == 408 || status == 429 || status >= 500 || status < 200)
        return SEND_RETRY;
    return SEND_PERMANENT;
}

send_rc_t
http_request (const char *method, const char *url, const char *body,
              const char *const *headers, int timeout_ms, long *status, char *answer,
              size_t answerlen, send_res_t *res)
{
    assert (method && url && res);
    *status = 0;
    if (answer && answerlen)
        answer[0] = 0;
    CURL *curl = curl_easy_init ();
    if (!curl) {
        snprintf (res->reason, sizeof res->reason, "no_memory");
        return SEND_RETRY;
    }
    struct curl_slist *hl = NULL;
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append (hl, headers[i]);
    hl = curl_slist_append (hl, "Expect:");
    s_sink_t sink = { answer, 0, answer ? answerlen : 0 };
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "greenline-notifier");
    if (strcmp (method, "GET") != 0) {
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) (body ? strlen (body) : 0));
    }
    CURLcode rc = curl_easy_perform (curl);
    long sent = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_getinfo (curl, CURLINFO_REQUEST_SIZE, &sent);
    curl_slist_free_all (hl);
    curl_easy_cleanup (curl);
    return http_classify (*status, (int) rc, (double) sent, res);
}

void
http_gw_cfg_clear (http_gw_cfg_t *cfg)
{
    free (cfg->method);
    tpl_destroy (&cfg->url);
    tpl_destroy (&cfg->body);
    free (cfg->content_type);
    free (cfg->header);
    memset (cfg, 0, sizeof *cfg);
}

send_rc_t
http_gateway_send (const http_gw_cfg_t *cfg, const char *text, const send_req_t *req,
                   send_res_t *res)
{
    assert (cfg && text && req && res);
    if (!cfg->url) {
        snprintf (res->reason, sizeof res->reason, "gateway_not_configured");
        return SEND_PERMANENT;
    }
    json_t *vars = json_pack ("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "to", req->to, "text",
                              text, "id", req->delivery, "notification_id", req->nid, "attempt",
                              req->attempt, "priority", req->priority, "template",
                              req->template_code, "lang", req->msg->lang);
    if (!vars) {
        snprintf (res->reason, sizeof res->reason, "no_memory");
        return SEND_RETRY;
    }
    char reason[64];
    char *url = tpl_render (cfg->url, vars, TPL_ESC_NONE, reason, sizeof reason, NULL, 0);
    char *body = url && cfg->body
                 ? tpl_render (cfg->body, vars, TPL_ESC_NONE, reason, sizeof reason, NULL, 0)
                 : NULL;
    json_decref (vars);
    send_rc_t rc;
    if (!url || (cfg->body && !body)) {
        snprintf (res->reason, sizeof res->reason, "gateway_template_%.40s", reason);
        rc = SEND_PERMANENT;
    }
    else {
        char ctype[160];
        snprintf (ctype, sizeof ctype, "Content-Type: %s",
                  cfg->content_type ? cfg->content_type : "application/json");
        const char *headers[] = { ctype, cfg->header, NULL };
        long status;
        char answer[512];
        rc = http_request (cfg->method ? cfg->method : "POST", url, body, headers,
                           cfg->timeout_ms, &status, answer, sizeof answer, res);
    }
    free (url);
    free (body);
    return rc;
}
