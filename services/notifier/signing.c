/*  signing — the HMAC-SHA256 signatures notifier puts on what leaves it: webhook requests
    (webhook.c) and the dlr-url of an SMS (sms_kannel.c, checked again by dlr.c).
*/
#include "notifier.h"
#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void
dlr_sign (const char *secret, const char *delivery, int attempt, char out[33])
{
    char msg[128];
    int n = snprintf (msg, sizeof msg, "%s|%d", delivery, attempt);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init (&st, (const unsigned char *) (secret ? secret : ""),
                                 secret ? strlen (secret) : 0);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) msg, (size_t) n);
    crypto_auth_hmacsha256_final (&st, mac);
    sodium_bin2hex (out, 33, mac, 16);
}

void
webhook_sign (const char *secret, int64_t ts, const char *body, size_t len, char *out,
              size_t outlen)
{
    assert (out && outlen >= 68);
    char head[32];
    int n = snprintf (head, sizeof head, "%" PRId64 ".", ts);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init (&st, (const unsigned char *) (secret ? secret : ""),
                                 secret ? strlen (secret) : 0);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) head, (size_t) n);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) body, len);
    crypto_auth_hmacsha256_final (&st, mac);
    memcpy (out, "v1=", 3);
    sodium_bin2hex (out + 3, outlen - 3, mac, sizeof mac);
}
