/*  gl_testrep — a gl_rep served on a thread of its own, for tests and benches that play another
    service on the bus (a stand-in referral, a service that holds its answers): the thread
    dispatches requests as they come until gl_testrep_stop. The handlers run on that thread. */
#ifndef GL_TESTREP_H
#define GL_TESTREP_H
#include "gl/gl_rep.h"

typedef struct _gl_testrep_t gl_testrep_t;

//  Serve rep (borrowed: it must outlive the server) on a new thread. NULL if it cannot start.
gl_testrep_t *gl_testrep_start (gl_rep_t *rep);

//  Stop serving (within ~50 ms, or when a handler that is running returns), join, free.
void gl_testrep_stop (gl_testrep_t **self_p);

#endif
