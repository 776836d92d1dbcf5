/*  gl_curve — see gl_curve.h. */
#include "gl/gl_curve.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_ENDPOINT_MAX 256
#define S_PATH_MAX 1024
#define S_CERT_MAX 65536           //  a certificate file is a few hundred bytes

static zcert_t *s_read_cert (const char *path);
static zcert_t *s_load_cert (const char *path, bool need_secret, char *err, size_t errlen);

struct _gl_curve_t {
    zcert_t *cert;
    char *allow_dir;            //  NULL: client only
    char *servers_dir;          //  NULL: none (keys must be given in endpoints)
};

//  The process's ZAP handler: ZeroMQ asks the one handler of its context, so it is shared by
//  every gl_curve_t with an allow directory, and counted.
static pthread_mutex_t s_auth_lock = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_auth;
static char s_auth_dir[S_PATH_MAX];
static int s_auth_refs;

static int
s_auth_hold (const char *dir, bool verbose, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock (&s_auth_lock);
    if (s_auth && strcmp (s_auth_dir, dir) != 0) {
        snprintf (err, errlen, "a CURVE allow directory (%s) is already in use in this process; "
                  "one per process", s_auth_dir);
        rc = -1;
    }
    else if (!s_auth) {
        s_auth = zactor_new (zauth, NULL);
        if (!s_auth) {
            snprintf (err, errlen, "cannot start the ZAP handler (zauth)");
            rc = -1;
        }
        else {
            if (verbose) {
                zstr_send (s_auth, "VERBOSE");
                zsock_wait (s_auth);
            }
            zstr_sendx (s_auth, "CURVE", dir, NULL);
            zsock_wait (s_auth);
            snprintf (s_auth_dir, sizeof s_auth_dir, "%s", dir);
        }
    }
    if (rc == 0)
        s_auth_refs++;
    pthread_mutex_unlock (&s_auth_lock);
    return rc;
}

static void
s_auth_release (void)
{
    pthread_mutex_lock (&s_auth_lock);
    if (s_auth_refs > 0 && --s_auth_refs == 0) {
        zactor_destroy (&s_auth);
        s_auth_dir[0] = 0;
    }
    pthread_mutex_unlock (&s_auth_lock);
}

bool
gl_curve_key_valid (const char *s)
{
    if (!s || strlen (s) != GL_CURVE_KEY_LEN)
        return false;
    uint8_t key[32];
    return zmq_z85_decode (key, s) != NULL;
}

static bool
s_dir_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool
s_ends_with (const char *s, const char *suffix)
{
    size_t n = strlen (s), m = strlen (suffix);
    return n >= m && strcmp (s + n - m, suffix) == 0;
}

int
gl_curve_check_dir (const char *dir, char *err, size_t errlen)
{
    assert (dir && err);
    if (!s_dir_exists (dir)) {
        snprintf (err, errlen, "%s is not a directory", dir);
        return -1;
    }
    zdir_t *zdir = zdir_new (dir, NULL);
    if (!zdir) {
        snprintf (err, errlen, "cannot read the directory %s", dir);
        return -1;
    }
    //  The same walk as czmq's certificate store (zcertstore.c): every regular file, in
    //  subdirectories too, except names ending in "_secret".
    zfile_t **files = zdir_flatten (zdir);
    zhash_t *seen = zhash_new ();
    int count = 0;
    for (size_t i = 0; files && files[i] && count >= 0; i++) {
        const char *name = zfile_filename (files[i], NULL);
        if (!zfile_is_regular (files[i]))
            continue;
        if (s_ends_with (name, "_secret")) {
            gl_warn ("bus: %s is a secret certificate in the CURVE allow directory: keep secrets "
                     "out of shared folders", name);
            continue;
        }
        //  Like zcert_load (which zauth uses): "<name>_secret" first when it is there.
        char why[64];
        zcert_t *cert = s_load_cert (name, false, why, sizeof why);
        if (!cert) {
            snprintf (err, errlen, "%s is not a public certificate (write them with gl-cert)",
                      name);
            count = -1;
        }
        else if (zhash_lookup (seen, zcert_public_txt (cert))) {
            snprintf (err, errlen, "%s holds the same public key as %s; keep each key once", name,
                      (const char *) zhash_lookup (seen, zcert_public_txt (cert)));
            count = -1;
        }
        else {
            zhash_insert (seen, zcert_public_txt (cert), (void *) name);
            count++;
        }
        zcert_destroy (&cert);
    }
    zhash_destroy (&seen);
    zdir_flatten_free (&files);
    zdir_destroy (&zdir);
    return count;
}

//  Parse one certificate file (ZPL, as zcert_save writes it). NULL when it cannot be read, is
//  too large, is not ZPL or holds no valid public key. czmq's zcert_load does the same but
//  leaks on a malformed file and reads any size.
static zcert_t *
s_read_cert (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    char *text = malloc (S_CERT_MAX + 1);
    size_t len = text ? fread (text, 1, S_CERT_MAX + 1, f) : 0;
    fclose (f);
    if (!text || len == 0 || len > S_CERT_MAX || memchr (text, 0, len)) {
        free (text);
        return NULL;
    }
    text[len] = 0;
    zconfig_t *root = zconfig_str_load (text);
    free (text);
    if (!root)
        return NULL;
    const char *pub = zconfig_get (root, "/curve/public-key", NULL);
    const char *sec = zconfig_get (root, "/curve/secret-key", NULL);
    zcert_t *cert = NULL;
    uint8_t pk[32] = { 0 }, sk[32] = { 0 };
    if (gl_curve_key_valid (pub) && (!sec || gl_curve_key_valid (sec))) {
        zmq_z85_decode (pk, pub);
        if (sec)
            zmq_z85_decode (sk, sec);
        cert = zcert_new_from (pk, sk);
    }
    sodium_memzero (sk, sizeof sk);
    zconfig_destroy (&root);
    return cert;
}

static bool
s_has_secret (zcert_t *cert)
{
    return strspn (zcert_secret_txt (cert), "0") != GL_CURVE_KEY_LEN;
}

//  Load a certificate; like zcert_load, "<path>_secret" is tried first. With need_secret, the
//  secret key must be there.
static zcert_t *
s_load_cert (const char *path, bool need_secret, char *err, size_t errlen)
{
    char secret[S_PATH_MAX];
    zcert_t *cert = NULL;
    if (!s_ends_with (path, "_secret")) {
        snprintf (secret, sizeof secret, "%s_secret", path);
        cert = s_read_cert (secret);
    }
    if (!cert)
        cert = s_read_cert (path);
    if (!cert) {
        snprintf (err, errlen, "%s: not a readable certificate", path);
        return NULL;
    }
    if (need_secret && !s_has_secret (cert)) {
        snprintf (err, errlen, "%s: holds no secret key (give the _secret file)", path);
        zcert_destroy (&cert);
        return NULL;
    }
    return cert;
}

int
gl_curve_cert_public (const char *path, char key[GL_CURVE_KEY_LEN + 1], char *err,
                      size_t errlen)
{
    assert (path && key && err);
    zcert_t *cert = s_read_cert (path);
    if (!cert) {
        snprintf (err, errlen, "%s: not a readable certificate", path);
        return -1;
    }
    memcpy (key, zcert_public_txt (cert), GL_CURVE_KEY_LEN + 1);
    zcert_destroy (&cert);
    return 0;
}

gl_curve_t *
gl_curve_new (const char *cert_path, const char *allow_dir, const char *servers_dir,
              bool verbose, char *err, size_t errlen)
{
    assert (cert_path && err);
    err[0] = 0;
    if (!zsys_has_curve ()) {
        snprintf (err, errlen, "this libzmq was built without CURVE");
        return NULL;
    }
    gl_curve_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->cert = s_load_cert (cert_path, true, err, errlen);
    if (!self->cert) {
        free (self);
        return NULL;
    }
    if (!servers_dir)
        servers_dir = allow_dir;
    if (servers_dir && !s_dir_exists (servers_dir)) {
        snprintf (err, errlen, "%s is not a directory", servers_dir);
        gl_curve_destroy (&self);
        return NULL;
    }
    self->servers_dir = servers_dir ? strdup (servers_dir) : NULL;
    if (allow_dir) {
        int n = gl_curve_check_dir (allow_dir, err, errlen);
        if (n < 0) {
            gl_curve_destroy (&self);
            return NULL;
        }
        if (n == 0)
            gl_warn ("bus: the CURVE allow directory %s is empty: no client can connect",
                     allow_dir);
        if (s_auth_hold (allow_dir, verbose, err, errlen) != 0) {
            gl_curve_destroy (&self);
            return NULL;
        }
        self->allow_dir = strdup (allow_dir);
    }
    return self;
}

int
gl_curve_new_from_config (gl_config_t *config, gl_curve_t **curve_p, char *err, size_t errlen)
{
    assert (config && curve_p && err);
    *curve_p = NULL;
    const char *cert = gl_config_str (config, "GL_BUS_CURVE_CERT", NULL);
    const char *allow = gl_config_str (config, "GL_BUS_CURVE_ALLOW", NULL);
    const char *servers = gl_config_str (config, "GL_BUS_CURVE_SERVERS", NULL);
    bool verbose = gl_config_bool (config, "GL_BUS_CURVE_VERBOSE", false);
    if (!cert || !*cert) {
        if ((allow && *allow) || (servers && *servers)) {
            snprintf (err, errlen, "GL_BUS_CURVE_ALLOW or GL_BUS_CURVE_SERVERS is set but "
                      "GL_BUS_CURVE_CERT is not: set it to turn CURVE on, or unset them");
            return -1;
        }
        return 0;
    }
    if (!allow || !*allow) {
        snprintf (err, errlen, "GL_BUS_CURVE_ALLOW must name the directory of allowed clients' "
                  "certificates when GL_BUS_CURVE_CERT is set");
        return -1;
    }
    char why[512];
    *curve_p = gl_curve_new (cert, allow, servers && *servers ? servers : NULL, verbose, why,
                             sizeof why);
    if (!*curve_p) {
        snprintf (err, errlen, "GL_BUS_CURVE_CERT/GL_BUS_CURVE_ALLOW/GL_BUS_CURVE_SERVERS: %s",
                  why);
        return -1;
    }
    return 0;
}

void
gl_curve_destroy (gl_curve_t **self_p)
{
    assert (self_p);
    gl_curve_t *self = *self_p;
    if (!self)
        return;
    if (self->allow_dir)
        s_auth_release ();
    zcert_destroy (&self->cert);
    free (self->allow_dir);
    free (self->servers_dir);
    free (self);
    *self_p = NULL;
}

const char *
gl_curve_public (gl_curve_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}

int
gl_curve_server (gl_curve_t *self, zsock_t *sock)
{
    assert (self && sock);
    if (!self->allow_dir) {
        gl_error ("bus: a CURVE server needs an allow directory");
        return -1;
    }
    zcert_apply (self->cert, sock);
    zsock_set_zap_domain (sock, GL_CURVE_ZAP_DOMAIN);
    zsock_set_curve_server (sock, 1);
    return 0;
}

static bool
s_name_valid (const char *s)
{
    size_t n = strlen (s);
    if (n == 0 || n > GL_CURVE_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower ((unsigned char) s[i]) && !isdigit ((unsigned char) s[i]) && s[i] != '_'
            && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

int
gl_curve_server_key (gl_curve_t *self, const char *server, char key[GL_CURVE_KEY_LEN + 1],
                     char *err, size_t errlen)
{
    assert (server && key && err);
    if (gl_curve_key_valid (server)) {
        memcpy (key, server, GL_CURVE_KEY_LEN + 1);
        return 0;
    }
    if (!s_name_valid (server)) {
        snprintf (err, errlen, "'#%.40s' is neither a Z85 key nor a certificate name "
                  "([a-z0-9_.-], at most %d)", server, GL_CURVE_NAME_MAX);
        return -1;
    }
    if (!self || !self->servers_dir) {
        snprintf (err, errlen, "server certificate %s: no servers directory", server);
        return -1;
    }
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "%s/%s.cert", self->servers_dir, server);
    char why[S_PATH_MAX + 64];
    zcert_t *cert = s_load_cert (path, false, why, sizeof why);
    if (!cert) {
        snprintf (err, errlen, "server certificate %s: %s", server, why);
        return -1;
    }
    memcpy (key, zcert_public_txt (cert), GL_CURVE_KEY_LEN + 1);
    zcert_destroy (&cert);
    return 0;
}

//  Split one list item into endpoint and server reference ("" when none). -1 when malformed.
static int
s_split (const char *item, size_t len, char *endpoint, char *server, char *err, size_t errlen)
{
    while (len > 0 && isspace ((unsigned char) *item))
        item++, len--;
    while (len > 0 && isspace ((unsigned char) item[len - 1]))
        len--;
    if (len > 0 && *item == '>')
        item++, len--;
    //  The server reference is what follows the last '#': a Z85 key may itself hold '#', so a
    //  key is recognised by its length first.
    size_t cut = len;
    if (len > GL_CURVE_KEY_LEN + 1 && item[len - GL_CURVE_KEY_LEN - 1] == '#') {
        char maybe[GL_CURVE_KEY_LEN + 1];
        memcpy (maybe, item + len - GL_CURVE_KEY_LEN, GL_CURVE_KEY_LEN);
        maybe[GL_CURVE_KEY_LEN] = 0;
        if (gl_curve_key_valid (maybe))
            cut = len - GL_CURVE_KEY_LEN - 1;
    }
    if (cut == len) {
        const char *hash = memchr (item, '#', len);
        if (hash)
            cut = (size_t) (hash - item);
    }
    size_t slen = cut < len ? len - cut - 1 : 0;
    if (cut == 0 || cut >= S_ENDPOINT_MAX || slen > GL_CURVE_KEY_LEN
        || (cut < len && slen == 0) || memchr (item, '@', cut)) {
        snprintf (err, errlen, "malformed endpoint '%.*s'", (int) (len < 200 ? len : 200), item);
        return -1;
    }
    memcpy (endpoint, item, cut);
    endpoint[cut] = 0;
    memcpy (server, item + len - slen, slen);
    server[slen] = 0;
    return 0;
}

//  One endpoint of a list: resolve its server key (with self) and connect (with sock).
static int
s_one (gl_curve_t *self, zsock_t *sock, const char *item, size_t len, bool *warned, char *err,
       size_t errlen)
{
    char endpoint[S_ENDPOINT_MAX], server[GL_CURVE_KEY_LEN + 1];
    if (s_split (item, len, endpoint, server, err, errlen) != 0)
        return -1;
    char key[GL_CURVE_KEY_LEN + 1];
    if (self) {
        if (!*server) {
            snprintf (err, errlen, "endpoint %s names no server key (CURVE is on: append "
                      "#<certificate name> or #<Z85 key>)", endpoint);
            return -1;
        }
        if (gl_curve_server_key (self, server, key, err, errlen) != 0)
            return -1;
    }
    else if (*server && !*warned) {
        gl_warn ("bus: CURVE is off: server keys in endpoints are ignored (%s)", endpoint);
        *warned = true;
    }
    if (sock) {
        //  libzmq takes the socket's options as they are at each connect: the server key set
        //  here belongs to this endpoint only.
        if (self) {
            zcert_apply (self->cert, sock);
            zsock_set_curve_serverkey (sock, key);
        }
        if (zsock_connect (sock, "%s", endpoint) != 0) {
            snprintf (err, errlen, "cannot connect to %s", endpoint);
            return -1;
        }
    }
    return 0;
}

//  Walk the list; connect when sock is given. A check stops at the first fault; a connect goes
//  on with the other endpoints (one unreadable certificate must not cut a subscriber off from
//  every other service) and reports the first fault.
static int
s_walk (gl_curve_t *self, zsock_t *sock, const char *endpoints, char *err, size_t errlen)
{
    bool warned = false;
    int rc = 0;
    const char *p = endpoints;
    while (*p) {
        size_t len = strcspn (p, ",");
        char why[512];
        if (s_one (self, sock, p, len, &warned, why, sizeof why) != 0) {
            if (rc == 0)
                snprintf (err, errlen, "%s", why);
            rc = -1;
            if (!sock)
                return rc;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return rc;
}

int
gl_curve_connect (gl_curve_t *self, zsock_t *sock, const char *endpoints, char *err,
                  size_t errlen)
{
    assert (sock && endpoints && err);
    if (!self && !strchr (endpoints, '#')) {
        //  The plain bus exactly as before gl_curve existed.
        if (zsock_attach (sock, endpoints, false) != 0) {
            snprintf (err, errlen, "cannot connect to some of %s", endpoints);
            return -1;
        }
        return 0;
    }
    return s_walk (self, sock, endpoints, err, errlen);
}

int
gl_curve_check_endpoints (gl_curve_t *self, const char *endpoints, char *err, size_t errlen)
{
    assert (endpoints && err);
    return s_walk (self, NULL, endpoints, err, errlen);
}
