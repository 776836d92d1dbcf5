/*  partners — the signed acknowledgement link of a partner without an account.

    The token is "<referral id>.<partner code>.<expires, unix ms>.<mac>", where mac is the
    HMAC-SHA-256 of everything before it under the configured signing key, in lowercase hex. It
    carries no personal data; whoever holds it may acknowledge that one referral for that
    partner until it expires, and nothing else. The check is in constant time.
*/
#include "referral.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TOKEN_MAX 200

static void
s_mac (const rf_config_t *cfg, const char *msg, size_t len, char hex[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init (&st, (const unsigned char *) cfg->signing_key,
                                 strlen (cfg->signing_key));
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) msg, len);
    crypto_auth_hmacsha256_final (&st, mac);
    sodium_bin2hex (hex, 65, mac, sizeof mac);
}

int
rf_partner_token (const rf_config_t *cfg, const char *referral_id, const char *partner,
                  int64_t expires, char *out, size_t outlen)
{
    char msg[S_TOKEN_MAX];
    int n = snprintf (msg, sizeof msg, "%s.%s.%lld", referral_id, partner, (long long) expires);
    if (n < 0 || (size_t) n >= sizeof msg)
        return -1;
    char hex[65];
    s_mac (cfg, msg, (size_t) n, hex);
    int m = snprintf (out, outlen, "%s.%s", msg, hex);
    return m < 0 || (size_t) m >= outlen ? -1 : 0;
}

int
rf_partner_token_check (const rf_config_t *cfg, const char *token, int64_t now,
                        char referral_id[GL_ID_LEN + 1], char partner[RF_CODE_MAX + 1])
{
    size_t len = token ? strnlen (token, S_TOKEN_MAX + 1) : 0;
    if (len == 0 || len > S_TOKEN_MAX || strlen (cfg->signing_key) < 32)
        return -1;
    const char *last = strrchr (token, '.');
    if (!last || strlen (last + 1) != 64)
        return -1;
    char hex[65];
    s_mac (cfg, token, (size_t) (last - token), hex);
    if (sodium_memcmp (hex, last + 1, 64) != 0)
        return -1;
    //  Signed by us: the fields are ours, still read them carefully.
    char buf[S_TOKEN_MAX + 1];
    memcpy (buf, token, (size_t) (last - token));
    buf[last - token] = 0;
    char *d1 = strchr (buf, '.');
    char *d2 = d1 ? strchr (d1 + 1, '.') : NULL;
    if (!d1 || !d2)
        return -1;
    *d1 = *d2 = 0;
    if (!gl_id_valid (buf) || !rf_code_valid (d1 + 1))
        return -1;
    char *end;
    long long expires = strtoll (d2 + 1, &end, 10);
    if (*end || end == d2 + 1)
        return -1;
    strcpy (referral_id, buf);
    strcpy (partner, d1 + 1);
    return expires < now ? -2 : 0;
}
