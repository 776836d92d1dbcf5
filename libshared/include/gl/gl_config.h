/*  gl_config — settings from environment variables, an optional KEY=VALUE file, and defaults.

    Precedence: environment > file > the default passed at the call site. Every key a service
    reads is documented in docs/operations.md with its default. A value that does not parse is an
    error recorded on the object (gl_config_error), so main() can refuse to start and name the
    key, or the file and line for a malformed file.

    File format: one KEY=VALUE per line; blank lines and lines starting with '#' are ignored;
    surrounding whitespace is trimmed; no quoting. Keys are [A-Z0-9_]+.
*/
#ifndef GL_CONFIG_H
#define GL_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _gl_config_t gl_config_t;

//  New, empty configuration (environment and defaults only). NULL on allocation failure.
gl_config_t *gl_config_new (void);

//  New configuration loading the file named by GL_CONFIG when that variable is set.
//  Returns NULL and writes the reason (file:line) to err when the file is malformed.
gl_config_t *gl_config_new_from_env (char *err, size_t errlen);

void gl_config_destroy (gl_config_t **self_p);

//  Load KEY=VALUE lines from path. 0 on success; -1 with "path:line: reason" in err.
int gl_config_load_file (gl_config_t *self, const char *path, char *err, size_t errlen);

//  Set a value (as if read from the file). Used by tests and by --set on command lines.
void gl_config_set (gl_config_t *self, const char *key, const char *value);

//  String value or def. The returned string is borrowed from self (or is def).
const char *gl_config_str (gl_config_t *self, const char *key, const char *def);

//  Integer value in [min, max], or def when unset. A malformed or out-of-range value records an
//  error naming the key and returns def.
int64_t gl_config_int (gl_config_t *self, const char *key, int64_t def, int64_t min, int64_t max);

//  Boolean: 1/0, true/false, yes/no, on/off.
bool gl_config_bool (gl_config_t *self, const char *key, bool def);

//  First recorded error, or NULL when every value read so far was valid.
const char *gl_config_error (gl_config_t *self);

#endif
