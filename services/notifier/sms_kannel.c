/*  sms_kannel — SMS through Kannel's sendsms HTTP interface (smsbox), with delivery reports.

    GET <url>?username&password&from&to&text&charset=UTF-8&coding=0|2&dlr-mask=31&dlr-url=...
    coding 0 (GSM-7, Kannel converts from UTF-8) when every character is in the GSM alphabet,
    else 2 (UCS-2). Kannel answers 202 "0: Accepted for delivery" or "3: Queued for later
    delivery"; 4xx is a request it refuses (permanent), 5xx or no answer is retried.

    The dlr-url names the delivery and the attempt, signed (dlr_sign), so that dlr.c takes
    reports for our own messages only: <dlr base>/dlr?d=<delivery>&a=<attempt>&sig=<sig>&s=%d
    (Kannel fills %d with the report type: 1 delivered, 2 failed, 4 buffered, 8 accepted by the
    SMSC, 16 rejected by the SMSC).
*/
#include "notifier.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Append "&name=<escaped value>" to the URL being built.
static int
s_param (CURL *curl, char *url, size_t size, const char *name, const char *value)
{
    char *e = curl_easy_escape (curl, value, 0);
    if (!e)
        return -1;
    size_t len = strlen (url);
    int n = snprintf (url + len, size - len, "%s%s=%s", strchr (url, '?') ? "&" : "?", name, e);
    curl_free (e);
    return n < 0 || (size_t) n >= size - len ? -1 : 0;
}

send_rc_t
kannel_send (const kannel_cfg_t *cfg, const send_req_t *req, send_res_t *res)
{
    assert (cfg && req && res);
    if (!cfg->url) {
        snprintf (res->reason, sizeof res->reason, "gateway_not_configured");
        return SEND_PERMANENT;
    }
    sms_length_t len;
    if (sms_length (req->msg->text, &len) != 0) {
        snprintf (res->reason, sizeof res->reason, "text_invalid");
        return SEND_PERMANENT;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        snprintf (res->reason, sizeof res->reason, "no_memory");
        return SEND_RETRY;
    }
    size_t size = 4096 + strlen (req->msg->text) * 3;
    char *url = malloc (size);
    char dlr[1024] = "";
    if (cfg->dlr_url) {
        char sig[33];
        dlr_sign (cfg->dlr_secret, req->delivery, req->attempt, sig);
        char *d = curl_easy_escape (curl, req->delivery, 0);
        snprintf (dlr, sizeof dlr, "%s/dlr?d=%s&a=%d&sig=%s&s=%%d", cfg->dlr_url, d ? d : "",
                  req->attempt, sig);
        curl_free (d);
    }
    int bad = !url;
    if (url) {
        snprintf (url, size, "%s", cfg->url);
        char coding[2] = { len.ucs2 ? '2' : '0', 0 };
        bad |= s_param (curl, url, size, "username", cfg->user ? cfg->user : "");
        bad |= s_param (curl, url, size, "password", cfg->password ? cfg->password : "");
        bad |= s_param (curl, url, size, "from", cfg->from ? cfg->from : "Greenline");
        bad |= s_param (curl, url, size, "to", req->to);
        bad |= s_param (curl, url, size, "text", req->msg->text);
        bad |= s_param (curl, url, size, "charset", "UTF-8");
        bad |= s_param (curl, url, size, "coding", coding);
        if (cfg->smsc)
            bad |= s_param (curl, url, size, "smsc", cfg->smsc);
        if (*dlr) {
            bad |= s_param (curl, url, size, "dlr-mask", "31");
            bad |= s_param (curl, url, size, "dlr-url", dlr);
        }
    }
    curl_easy_cleanup (curl);
    if (bad) {
        free (url);
        snprintf (res->reason, sizeof res->reason, "no_memory");
        return SEND_RETRY;
    }
    long status;
    char answer[256];
    send_rc_t rc = http_request ("GET", url, NULL, NULL, cfg->timeout_ms, &status, answer,
                                 sizeof answer, res);
    //  The URL holds the phone number and the credentials: wiped, never logged.
    sodium_memzero (url, size);
    free (url);
    if (rc == SEND_OK && !(strncmp (answer, "0:", 2) == 0 || strncmp (answer, "3:", 2) == 0)) {
        snprintf (res->reason, sizeof res->reason, "gateway_unexpected_answer");
        return SEND_DOUBT;
    }
    if (rc == SEND_OK)
        snprintf (res->gateway_id, sizeof res->gateway_id, "%s", req->delivery);
    return rc;
}
