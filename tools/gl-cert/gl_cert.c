/*  gl-cert — make CurveZMQ certificates for the bus (libshared/include/gl/gl_curve.h).

        gl-cert DIR NAME...     for each NAME, a new key pair:
                                  DIR/public/NAME.cert          the public key (give it out)
                                  DIR/secret/NAME.cert_secret   both keys (mode 0600; only
                                                                NAME's process reads it)
        gl-cert --show FILE     print the public key of a certificate file

    NAME is what endpoints call the server ("tcp://scheduler:7112#scheduler"): 1..32 of
    a-z 0-9 _ . -. Existing files are never overwritten: rotating a key means a new NAME or
    moving the old files away first (docs/operations.md ("Deploying Greenline"), "Rotate bus keys").
    Exit status 0, 1 on any error (reason on stderr), 2 on a usage error.
*/
#include "gl/gl_curve.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int
s_usage (void)
{
    fprintf (stderr, "usage: gl-cert DIR NAME...   (writes DIR/public/NAME.cert and "
                     "DIR/secret/NAME.cert_secret)\n"
                     "       gl-cert --show FILE   (prints the public key)\n");
    return 2;
}

static int
s_name_valid (const char *s)
{
    size_t n = strlen (s);
    if (n == 0 || n > GL_CURVE_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower ((unsigned char) s[i]) && !isdigit ((unsigned char) s[i]) && s[i] != '_'
            && s[i] != '.' && s[i] != '-')
            return 0;
    return 1;
}

static int
s_mkdir (const char *path, mode_t mode)
{
    if (mkdir (path, mode) == 0 || errno == EEXIST)
        return 0;
    fprintf (stderr, "gl-cert: cannot create %s: %s\n", path, strerror (errno));
    return -1;
}

static int
s_make (const char *dir, const char *name)
{
    char pub[1024], sec[1024];
    snprintf (pub, sizeof pub, "%s/public/%s.cert", dir, name);
    snprintf (sec, sizeof sec, "%s/secret/%s.cert_secret", dir, name);
    if (access (pub, F_OK) == 0 || access (sec, F_OK) == 0) {
        fprintf (stderr, "gl-cert: %s or %s exists already; not overwritten\n", pub, sec);
        return -1;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "gl-cert: cannot make a key pair (libzmq without CURVE?)\n");
        return -1;
    }
    char when[32];
    time_t now = time (NULL);
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "created", "%s", when);
    int rc = zcert_save_secret (cert, sec) == 0 && zcert_save_public (cert, pub) == 0 ? 0 : -1;
    if (rc == 0 && chmod (sec, 0600) != 0)
        rc = -1;
    if (rc == 0)
        printf ("%s %s\n", name, zcert_public_txt (cert));
    else
        fprintf (stderr, "gl-cert: cannot write %s or %s\n", pub, sec);
    zcert_destroy (&cert);
    return rc;
}

static int
s_show (const char *path)
{
    char key[GL_CURVE_KEY_LEN + 1], err[1200];
    if (gl_curve_cert_public (path, key, err, sizeof err) != 0) {
        fprintf (stderr, "gl-cert: %s\n", err);
        return 1;
    }
    printf ("%s\n", key);
    return 0;
}

int
main (int argc, char *argv[])
{
    if (argc == 3 && strcmp (argv[1], "--show") == 0)
        return s_show (argv[2]);
    if (argc < 3 || argv[1][0] == '-')
        return s_usage ();
    for (int i = 2; i < argc; i++)
        if (!s_name_valid (argv[i])) {
            fprintf (stderr, "gl-cert: '%s' is not a valid name (1..%d of a-z 0-9 _ . -)\n",
                     argv[i], GL_CURVE_NAME_MAX);
            return 2;
        }
    const char *dir = argv[1];
    char sub[1024];
    if (s_mkdir (dir, 0755) != 0)
        return 1;
    snprintf (sub, sizeof sub, "%s/public", dir);
    if (s_mkdir (sub, 0755) != 0)
        return 1;
    snprintf (sub, sizeof sub, "%s/secret", dir);
    if (s_mkdir (sub, 0700) != 0)
        return 1;
    for (int i = 2; i < argc; i++)
        if (s_make (dir, argv[i]) != 0)
            return 1;
    return 0;
}
