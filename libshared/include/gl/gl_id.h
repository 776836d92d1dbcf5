/*  gl_id — Greenline's opaque ids: 32 lowercase hex characters from 128 random bits.
    Not personal data; events, logs and URLs use them. */
#ifndef GL_ID_H
#define GL_ID_H
#include <stdbool.h>
#include <stddef.h>

#define GL_ID_LEN 32

//  Fill out (GL_ID_LEN + 1 bytes) with a new id.
void gl_id_new (char out[GL_ID_LEN + 1]);

//  True when s is a well-formed id (exactly 32 lowercase hex digits).
bool gl_id_valid (const char *s);

#endif
