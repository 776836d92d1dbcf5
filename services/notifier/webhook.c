/*  webhook — signed webhooks for other systems (docs/api/notifier.md, "Webhooks").

    POST <url>, Content-Type application/json, with
        X-Greenline-Id:         <notification id>          (the same on every attempt)
        X-Greenline-Delivery:   <notification id>:webhook  and X-Greenline-Attempt: <n>
        X-Greenline-Timestamp:  <unix seconds when signed>
        X-Greenline-Signature:  v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
    A receiver recomputes the signature over the raw body, rejects a timestamp more than five
    minutes from its clock, and rejects a signature (or an id) it has already seen within that
    window: a captured request cannot be replayed.
*/
#include "notifier.h"
#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *
webhook_body (const send_req_t *req, int64_t now_ms)
{
    json_t *params = req->params ? json_incref ((json_t *) req->params) : json_object ();
    json_t *body = json_pack ("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:o, s:I}",
                              "notification_id", req->nid, "template", req->template_code,
                              "priority", req->priority, "corr", req->corr ? req->corr : "",
                              "attempt", req->attempt, "language", req->msg->lang, "title",
                              req->msg->subject, "body", req->msg->text, "params",
                              params, "sent_at",
                              (json_int_t) now_ms);
    if (!body)
        return NULL;
    char *s = json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (body);
    return s;
}

send_rc_t
webhook_send (const webhook_cfg_t *cfg, const send_req_t *req, int64_t now_ms,
              send_res_t *res)
{
    assert (cfg && req && res);
    if (!req->to || !req->secret || !*req->secret) {
        snprintf (res->reason, sizeof res->reason, "webhook_not_configured");
        return SEND_PERMANENT;
    }
    if (strncmp (req->to, "https://", 8) != 0 && strncmp (req->to, "http://", 7) != 0) {
        snprintf (res->reason, sizeof res->reason, "webhook_url_invalid");
        return SEND_PERMANENT;
    }
    char *body = webhook_body (req, now_ms);
    if (!body) {
        snprintf (res->reason, sizeof res->reason, "no_memory");
        return SEND_RETRY;
    }
    //  The signature's time is the transport's: the real clock, which receivers compare with
    //  theirs (sent_at in the body is business time).
    int64_t ts = (int64_t) time (NULL);
    char sig[80], h_sig[112], h_ts[64], h_id[96], h_del[112], h_att[48];
    webhook_sign (req->secret, ts, body, strlen (body), sig, sizeof sig);
    snprintf (h_sig, sizeof h_sig, "X-Greenline-Signature: %s", sig);
    snprintf (h_ts, sizeof h_ts, "X-Greenline-Timestamp: %" PRId64, ts);
    snprintf (h_id, sizeof h_id, "X-Greenline-Id: %s", req->nid);
    snprintf (h_del, sizeof h_del, "X-Greenline-Delivery: %s", req->delivery);
    snprintf (h_att, sizeof h_att, "X-Greenline-Attempt: %d", req->attempt);
    const char *headers[] = { "Content-Type: application/json", h_sig, h_ts, h_id, h_del, h_att,
                              NULL };
    long status;
    send_rc_t rc = http_request ("POST", req->to, body, headers, cfg->timeout_ms, &status, NULL,
                                 0, res);
    free (body);
    return rc;
}
