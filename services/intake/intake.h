/*  intake — the service actor: Greenline's front door (ARCHITECTURE.md, "Services").

    One actor (a CZMQ zactor, its own thread) owns everything the service has: its configuration,
    its Redis connection, its publisher (source "intake-N"), its request server (ROUTER), its
    health endpoint (a thread of its own, gl_health) and the HTTP server of the API and console.
    It runs one libevent loop; ZeroMQ sockets join that loop through their ZMQ_FD, and a timer
    renews the publisher's lease, sends heartbeats and refreshes readiness.

    main.c (the pattern every service copies):

        zactor_t *server = zactor_new (intake_actor, config);
        int sig = intake_wait (server, &stop_signals);      //  SIGINT/SIGTERM, or 0 on failure
        zactor_destroy (&server);                           //  clean stop: service.stopping

    Every concern file (api_system.c, later api_calls.c ...) registers its routes with one
    function declared below and called from s_routes() in intake.c; route registration only
    registers, so `gl-intake --routes` can print the table without starting anything.
*/
#ifndef INTAKE_H
#define INTAKE_H
#include "http.h"
#include "gl/gl_config.h"
#include "gl/gl_health.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_rep.h"
#include <czmq.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#define INTAKE_SERVICE "intake"

//  The actor's state. Handlers get it as their first argument and may use the fields of the
//  first block, from the actor's thread only (which is where handlers run); the second block
//  belongs to the loop.
struct _intake_t {
    gl_config_t *config;            //  borrowed from main; read keys through it
    gl_redis_t *redis;              //  the actor's one Redis connection
    gl_pub_t *pub;                  //  gl_pub_send (intake->pub, ev, 0) appends then publishes
    gl_rep_t *rep;                  //  gl_rep_on (intake->rep, "intake.<op>", fn, intake)
    http_t *http;                   //  the route table (http_route)
    http_auth_fn *authenticate;     //  the authentication hook; default: nobody (401)
    struct _auth_t *auth;           //  accounts, sessions, API clients (auth.h)
    struct _contacts_t *contacts;   //  contacts, taxonomy, the outbox (contacts.h)
    struct _calls_t *calls;         //  the live call queue and agent states (calls.h)
    struct _callers_t *callers;     //  case extract, verification, change requests (callers.h)
    struct _complaints_t *complaints; //  complaints: settings, deadline sweep (complaints.h)
    struct _kb_t *kb;               //  the knowledge base: expiry sweep (kb.h)
    struct _qa_t *qa;               //  QA scorecards (qa.h)
    struct _alerts_t *alerts;       //  notifier's console alerts (alerts.h)
    struct _forward_t *forward;     //  routes answered by other services (forward.h)
    struct _board_t *board;         //  the live board's streams (board.h)
    struct _gl_outbox_t *outbox;    //  intake:{intake}:outbox: records and their events (gl_outbox.h)
    struct _aredis_t *aredis;       //  the asynchronous Redis connection for hot writes, or NULL
    struct _gl_busmetrics_t *busmetrics;    //  the bus figures for /metrics (gl_busmetrics.h)
    struct _gl_curve_t *curve;      //  CurveZMQ on the bus, or NULL (GL_BUS_CURVE_CERT unset)
    const char *version;            //  this build's version string
    int64_t started_ms;             //  gl_mono_ms () at start
    char *console_dir;              //  static files, resolved; NULL when missing (404s)
    bool ready;                     //  what /ready says, refreshed every second
    char not_ready[128];            //  why not, when not

    gl_health_t *health;
    zsock_t *pipe;
    struct event_base *base;
    struct event *on_pipe;
    struct event *on_rep;
    struct event *on_tick;
    int64_t ready_checked_ms;
    bool failed;
};

//  The actor (zactor_new (intake_actor, config)). config is borrowed and must outlive the
//  actor; the actor fills in intake's own defaults (GL_REDIS_RECONNECT_MS) where unset. When it
//  cannot start, or must stop (its source name was taken over), it logs why, sends "STOPPED"
//  on the pipe and waits for $TERM.
void intake_actor (zsock_t *pipe, void *config);

//  Wait until one of signals arrives (they must be blocked in every thread: block them before
//  zactor_new) or the actor stops by itself. Returns the signal number, 0 when the actor
//  stopped, -1 on a system error.
int intake_wait (zactor_t *actor, const sigset_t *signals);

//  Print the route table (http_print_routes) without starting anything. 0 or -1.
int intake_print_routes (FILE *out);

//  The OpenAPI document: the ```json block of docs/api.md, embedded at build time
//  (openapi_embed.cmake). NUL-terminated; len excludes the NUL.
extern const char intake_openapi_json[];
extern const size_t intake_openapi_json_len;

//  The OpenAPI document: the first ```json block of docs/api.md with every later block (one per
//  concern) merged into it. A new reference, or NULL if the embedded text is invalid.
json_t *intake_openapi_doc (void);

//  Route registration, one function per concern file.
void api_system_routes (intake_t *intake);
void api_complaints_routes (intake_t *intake);
void api_referral_routes (intake_t *intake);
void api_reporting_routes (intake_t *intake);
void api_kb_routes (intake_t *intake);
void api_qa_routes (intake_t *intake);
void api_scheduler_routes (intake_t *intake);
void api_notifier_routes (intake_t *intake);
void api_retention_routes (intake_t *intake);
void api_board_routes (intake_t *intake);

//  Intake part two (complaints.h, kb.h, qa.h): new (NULL with the reason in err) and destroy.
struct _complaints_t *complaints_new (intake_t *intake, char *err, size_t errlen);
void complaints_destroy (struct _complaints_t **self_p);
struct _kb_t *kb_new (intake_t *intake, char *err, size_t errlen);
void kb_destroy (struct _kb_t **self_p);
struct _qa_t *qa_new (intake_t *intake, char *err, size_t errlen);
void qa_destroy (struct _qa_t **self_p);

#endif
