/*  mime — the e-mail message smtp.c sends: headers (the subject RFC 2047-encoded, a Message-ID
    derived from the notification id, Content-Language) and a multipart/alternative body with
    the UTF-8 plain text and HTML parts in base64; and the check of a recipient address, so that
    nothing from outside can add a header or a recipient.
*/
#include "notifier.h"
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *p;
    size_t len, cap;
} s_str_t;

static int
s_add (s_str_t *s, const char *t, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *p = realloc (s->p, cap);
        if (!p)
            return -1;
        s->p = p;
        s->cap = cap;
    }
    memcpy (s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = 0;
    return 0;
}

static int
s_adds (s_str_t *s, const char *t)
{
    return s_add (s, t, strlen (t));
}

//  Base64 of text, lines of 76 characters.
static int
s_base64 (s_str_t *s, const char *text)
{
    size_t n = strlen (text);
    size_t b64len = sodium_base64_encoded_len (n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc (b64len);
    if (!b64)
        return -1;
    sodium_bin2base64 (b64, b64len, (const unsigned char *) text, n,
                       sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen (b64);
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += 76) {
        rc |= s_add (s, b64 + i, len - i < 76 ? len - i : 76);
        rc |= s_adds (s, "\r\n");
    }
    free (b64);
    return rc;
}

bool
email_address_valid (const char *a)
{
    size_t n = a ? strlen (a) : 0;
    if (n < 3 || n > 254)
        return false;
    const char *at = strchr (a, '@');
    if (!at || at == a || !at[1] || strchr (at + 1, '@'))
        return false;
    for (const char *p = a; *p; p++)
        if ((unsigned char) *p <= 0x20 || *p == 0x7f || strchr ("<>\"(),;:\\[]", *p))
            return false;
    return true;
}

char *
smtp_message (const smtp_cfg_t *cfg, const send_req_t *req, int64_t now_ms)
{
    s_str_t s = { 0 };
    char line[512], date[64];
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *domain = strchr (cfg->from, '@');
    domain = domain ? domain + 1 : "greenline.invalid";
    int rc = 0;
    snprintf (line, sizeof line, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n", cfg->from, req->to,
              date);
    rc |= s_adds (&s, line);
    rc |= s_adds (&s, "Subject: =?UTF-8?B?");
    size_t sublen = strlen (req->msg->subject);
    size_t b64len = sodium_base64_encoded_len (sublen, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc (b64len);
    if (!b64) {
        free (s.p);
        return NULL;
    }
    sodium_bin2base64 (b64, b64len, (const unsigned char *) req->msg->subject, sublen,
                       sodium_base64_VARIANT_ORIGINAL);
    rc |= s_adds (&s, b64);
    free (b64);
    snprintf (line, sizeof line,
              "?=\r\nMessage-ID: <%s.email@%s>\r\nX-Greenline-Id: %s\r\n"
              "MIME-Version: 1.0\r\nContent-Language: %s\r\n"
              "Content-Type: multipart/alternative; boundary=\"gl-%s\"\r\n\r\n",
              req->nid, domain, req->nid, req->msg->lang, req->nid);
    rc |= s_adds (&s, line);
    snprintf (line, sizeof line,
              "--gl-%s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n", req->nid);
    rc |= s_adds (&s, line);
    rc |= s_base64 (&s, req->msg->email);
    snprintf (line, sizeof line,
              "--gl-%s\r\nContent-Type: text/html; charset=UTF-8\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n", req->nid);
    rc |= s_adds (&s, line);
    rc |= s_base64 (&s, req->msg->html);
    snprintf (line, sizeof line, "--gl-%s--\r\n", req->nid);
    rc |= s_adds (&s, line);
    if (rc) {
        free (s.p);
        return NULL;
    }
    return s.p;
}
