/*  gl_testrep — see gl_testrep.h. */
#include "gl_testrep.h"
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct _gl_testrep_t {
    gl_rep_t *rep;
    atomic_bool stop;
    pthread_t thread;
};

static void *
s_serve (void *arg)
{
    gl_testrep_t *self = arg;
    zpoller_t *poller = zpoller_new (gl_rep_sock (self->rep), NULL);
    while (!atomic_load (&self->stop)) {
        void *which = zpoller_wait (poller, gl_rep_pending (self->rep) ? 0 : 50);
        if (which || gl_rep_pending (self->rep))
            gl_rep_dispatch (self->rep);
    }
    zpoller_destroy (&poller);
    return NULL;
}

gl_testrep_t *
gl_testrep_start (gl_rep_t *rep)
{
    gl_testrep_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->rep = rep;
    atomic_init (&self->stop, false);
    if (pthread_create (&self->thread, NULL, s_serve, self) != 0) {
        free (self);
        return NULL;
    }
    return self;
}

void
gl_testrep_stop (gl_testrep_t **self_p)
{
    gl_testrep_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stop, true);
    pthread_join (self->thread, NULL);
    free (self);
    *self_p = NULL;
}
