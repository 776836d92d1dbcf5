/*  libFuzzer target: gl_curve's parsers of configuration text never crash, leak or hang: an
    endpoint list (GL_BUS_PUB_ENDPOINTS, GL_ENDPOINT_<NAME>, with "#server" references) checked
    with CURVE off and on, a server reference, and a certificate file. A list accepted with CURVE
    on is accepted with CURVE off too; a reference that resolves gives a valid Z85 key; a
    certificate that reads gives a valid public key.
    The input: its first byte picks the part, the rest is the text. */
#include "gl/gl_curve.h"
#include "gl/gl_log.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gl_curve_t *s_curve;         //  a client with a servers folder holding "server.cert"
static char s_dir[64];

static void
s_cleanup (void)
{
    const char *files[] = { "server.cert", "server.cert_secret", "input.cert" };
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", s_dir, files[i]);
        unlink (path);
    }
    rmdir (s_dir);
    gl_curve_destroy (&s_curve);
}

static void
s_init (void)
{
    gl_log_init ("fuzz_curve", GL_LOG_ERROR, false);
    zsys_set_logstream (NULL);
    snprintf (s_dir, sizeof s_dir, "/tmp/fuzz-curve-%d", (int) getpid ());
    mkdir (s_dir, 0700);
    char path[128];
    zcert_t *cert = zcert_new ();
    snprintf (path, sizeof path, "%s/server.cert", s_dir);
    if (!cert || zcert_save (cert, path) != 0)
        abort ();
    zcert_destroy (&cert);
    char err[256];
    snprintf (path, sizeof path, "%s/server.cert_secret", s_dir);
    s_curve = gl_curve_new (path, NULL, s_dir, false, err, sizeof err);
    if (!s_curve)
        abort ();
    atexit (s_cleanup);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_curve)
        s_init ();
    if (size < 1 || size > 4096)
        return 0;
    char *text = malloc (size);
    if (!text)
        abort ();
    memcpy (text, data + 1, size - 1);
    text[size - 1] = 0;
    char err[512];
    switch (data[0] % 3) {
        case 0: {
            int on = gl_curve_check_endpoints (s_curve, text, err, sizeof err);
            int off = gl_curve_check_endpoints (NULL, text, err, sizeof err);
            if (on == 0 && off != 0)
                abort ();
            break;
        }
        case 1: {
            char key[GL_CURVE_KEY_LEN + 1];
            if (gl_curve_server_key (s_curve, text, key, err, sizeof err) == 0
                && !gl_curve_key_valid (key))
                abort ();
            break;
        }
        default: {
            char path[128];
            snprintf (path, sizeof path, "%s/input.cert", s_dir);
            FILE *f = fopen (path, "wb");
            if (!f)
                abort ();
            fwrite (data + 1, 1, size - 1, f);
            fclose (f);
            char key[GL_CURVE_KEY_LEN + 1];
            if (gl_curve_cert_public (path, key, err, sizeof err) == 0 && !gl_curve_key_valid (key))
                abort ();
            break;
        }
    }
    free (text);
    return 0;
}
