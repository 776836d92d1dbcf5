/*  gl_id — see gl_id.h. libsodium's randombytes is seeded from the kernel and safe across fork. */
#include "gl/gl_id.h"
#include <assert.h>
#include <sodium.h>
#include <string.h>

void
gl_id_new (char out[GL_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    int rc = sodium_init ();
    assert (rc >= 0);
    (void) rc;
    unsigned char raw[GL_ID_LEN / 2];
    randombytes_buf (raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[GL_ID_LEN] = 0;
}

bool
gl_id_valid (const char *s)
{
    if (!s || strlen (s) != GL_ID_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
