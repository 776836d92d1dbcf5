/*  gl_curve — CurveZMQ on the bus: every ZeroMQ connection between services encrypted, and only
    clients whose public key is allowed let in. Switched on by configuration; without it the bus
    is plain TCP, as before.

    Certificates are czmq's zcert files (written by tools/gl-cert): "<name>.cert" holds the public
    key, "<name>.cert_secret" both keys. Each process has one certificate, used both as the
    server identity of its PUB and ROUTER sockets and as its client identity when it connects to
    other services. A server lets in only clients whose public certificate lies in its allow
    directory (czmq's zauth, a ZAP handler; the directory is read again whenever it changes, so
    keys are added and removed without a restart). A client must know each server's public key:
    an endpoint says which, after a '#':
        tcp://scheduler:7112#scheduler      the public certificate "scheduler.cert" in the
                                            servers directory
        tcp://10.0.0.7:7101#<40 Z85 chars>  the key itself
    Endpoint lists stay comma-separated ("tcp://intake:7101#intake,tcp://referral:7121#referral").

    Settings (gl_curve_new_from_config):
      GL_BUS_CURVE_CERT     this process's secret certificate file; set: CURVE is on
      GL_BUS_CURVE_ALLOW    directory of the public certificates of allowed clients (required
                            when GL_BUS_CURVE_CERT is set)
      GL_BUS_CURVE_SERVERS  directory of the servers' public certificates named in endpoints
                            (default: GL_BUS_CURVE_ALLOW)
      GL_BUS_CURVE_VERBOSE  1: zauth logs each allowed or denied connection (default 0)

    The ZAP handler is one per process (ZeroMQ has one per context): every gl_curve_t with an
    allow directory in a process must name the same directory. gl_curve_t is used from one
    thread at a time; the ZAP handler runs in its own thread.
*/
#ifndef GL_CURVE_H
#define GL_CURVE_H
#include "gl/gl_config.h"
#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#define GL_CURVE_KEY_LEN    40      //  a CURVE key in Z85 text
#define GL_CURVE_NAME_MAX   32      //  a server certificate's name in an endpoint
#define GL_CURVE_ZAP_DOMAIN "greenline"

typedef struct _gl_curve_t gl_curve_t;

//  Load this process's certificate from cert_path (a secret certificate: "<name>.cert_secret",
//  or "<name>.cert" with "<name>.cert_secret" beside it). allow_dir: the directory of allowed
//  clients' public certificates, NULL for a process that is only a client; it must exist, and it
//  is checked (every certificate readable, no key twice). servers_dir: where named server
//  certificates are (NULL: allow_dir). verbose: zauth logs each connection. NULL with the reason
//  in err (file names, never key material).
gl_curve_t *gl_curve_new (const char *cert_path, const char *allow_dir, const char *servers_dir,
                          bool verbose, char *err, size_t errlen);

//  From the settings above. 0 with *curve_p NULL when GL_BUS_CURVE_CERT is not set (CURVE off);
//  0 with *curve_p set; -1 with the reason in err, naming the setting at fault.
int gl_curve_new_from_config (gl_config_t *config, gl_curve_t **curve_p, char *err,
                              size_t errlen);

//  Free; the ZAP handler stops when the last gl_curve_t with an allow directory goes. Sockets
//  already made keep their keys.
void gl_curve_destroy (gl_curve_t **self_p);

//  This process's public key, Z85 (borrowed).
const char *gl_curve_public (gl_curve_t *self);

//  Make sock a CURVE server with this certificate. Call before binding. -1 when self has no
//  allow directory (a server that lets nobody in is a configuration mistake).
int gl_curve_server (gl_curve_t *self, zsock_t *sock);

//  Connect sock to every endpoint of a comma-separated list ("endpoint#server" as above; a
//  leading '>' is allowed). With self, each connection is a CURVE client of that server's key,
//  and an endpoint without '#server' is an error. With self NULL the connections are plain and
//  a '#server' suffix is dropped with a warning; a list without any '#' is handed to
//  zsock_attach unchanged. 0, or -1 with err naming the first endpoint at fault (the others are
//  connected all the same).
int gl_curve_connect (gl_curve_t *self, zsock_t *sock, const char *endpoints, char *err,
                      size_t errlen);

//  Check a list as gl_curve_connect would, without connecting: every endpoint well formed and,
//  with self, every server key found. 0 or -1 with err.
int gl_curve_check_endpoints (gl_curve_t *self, const char *endpoints, char *err, size_t errlen);

//  The Z85 public key a server reference stands for: a 40-character Z85 key as is, or the name
//  ([a-z0-9_.-], 1..32) of "<name>.cert" in the servers directory. 0, or -1 with err.
int gl_curve_server_key (gl_curve_t *self, const char *server, char key[GL_CURVE_KEY_LEN + 1],
                         char *err, size_t errlen);

//  The public key held in a certificate file (public or secret), read the way services read
//  it. 0, or -1 with err naming the file.
int gl_curve_cert_public (const char *path, char key[GL_CURVE_KEY_LEN + 1], char *err,
                          size_t errlen);

//  True when s is 40 characters of Z85 that decode to a key.
bool gl_curve_key_valid (const char *s);

//  Check a directory of public certificates: each regular file not ending in "_secret" (in
//  subdirectories too, as zauth reads them) must be a certificate, and no public key may appear
//  twice (czmq's certificate store asserts on a duplicate). Returns the number of
//  certificates, or -1 with err naming the file at fault.
int gl_curve_check_dir (const char *dir, char *err, size_t errlen);

#endif
