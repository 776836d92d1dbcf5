/*  gl_config — see gl_config.h. */
#include "gl/gl_config.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GL_CONFIG_MAX_ENTRIES 1024
#define GL_CONFIG_MAX_LINE 4096

typedef struct {
    char *key;
    char *value;
} s_entry_t;

struct _gl_config_t {
    s_entry_t entries[GL_CONFIG_MAX_ENTRIES];
    size_t count;
    char error[512];
};

gl_config_t *
gl_config_new (void)
{
    return calloc (1, sizeof (gl_config_t));
}

gl_config_t *
gl_config_new_from_env (char *err, size_t errlen)
{
    gl_config_t *self = gl_config_new ();
    if (!self)
        return NULL;
    const char *path = getenv ("GL_CONFIG");
    if (path && *path && gl_config_load_file (self, path, err, errlen) != 0)
        gl_config_destroy (&self);
    return self;
}

void
gl_config_destroy (gl_config_t **self_p)
{
    assert (self_p);
    gl_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->entries[i].key);
        free (self->entries[i].value);
    }
    free (self);
    *self_p = NULL;
}

void
gl_config_set (gl_config_t *self, const char *key, const char *value)
{
    assert (self && key && value);
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->entries[i].key, key) == 0) {
            char *copy = strdup (value);
            assert (copy);
            free (self->entries[i].value);
            self->entries[i].value = copy;
            return;
        }
    assert (self->count < GL_CONFIG_MAX_ENTRIES);
    self->entries[self->count].key = strdup (key);
    self->entries[self->count].value = strdup (value);
    assert (self->entries[self->count].key && self->entries[self->count].value);
    self->count++;
}

static char *
s_trim (char *s)
{
    while (isspace ((unsigned char) *s))
        s++;
    size_t n = strlen (s);
    while (n > 0 && isspace ((unsigned char) s[n - 1]))
        s[--n] = 0;
    return s;
}

int
gl_config_load_file (gl_config_t *self, const char *path, char *err, size_t errlen)
{
    assert (self && path);
    FILE *f = fopen (path, "r");
    if (!f) {
        snprintf (err, errlen, "%s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    char line[GL_CONFIG_MAX_LINE];
    int lineno = 0;
    int rc = 0;
    while (fgets (line, sizeof line, f)) {
        lineno++;
        if (!strchr (line, '\n') && !feof (f)) {
            snprintf (err, errlen, "%s:%d: line longer than %d bytes", path, lineno,
                      GL_CONFIG_MAX_LINE - 2);
            rc = -1;
            break;
        }
        char *s = s_trim (line);
        if (*s == 0 || *s == '#')
            continue;
        char *eq = strchr (s, '=');
        if (!eq) {
            snprintf (err, errlen, "%s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = s_trim (s);
        char *value = s_trim (eq + 1);
        bool ok = *key != 0;
        for (char *k = key; *k; k++)
            if (!(isupper ((unsigned char) *k) || isdigit ((unsigned char) *k) || *k == '_'))
                ok = false;
        if (!ok) {
            snprintf (err, errlen, "%s:%d: bad key '%.64s' (use A-Z, 0-9 and _)", path, lineno, key);
            rc = -1;
            break;
        }
        if (self->count >= GL_CONFIG_MAX_ENTRIES) {
            snprintf (err, errlen, "%s:%d: more than %d settings", path, lineno,
                      GL_CONFIG_MAX_ENTRIES);
            rc = -1;
            break;
        }
        gl_config_set (self, key, value);
    }
    fclose (f);
    return rc;
}

const char *
gl_config_str (gl_config_t *self, const char *key, const char *def)
{
    assert (self && key);
    const char *env = getenv (key);
    if (env)
        return env;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->entries[i].key, key) == 0)
            return self->entries[i].value;
    return def;
}

static void
s_record (gl_config_t *self, const char *key, const char *value, const char *why)
{
    if (self->error[0] == 0)
        snprintf (self->error, sizeof self->error, "%s='%.64s': %s", key, value, why);
}

int64_t
gl_config_int (gl_config_t *self, const char *key, int64_t def, int64_t min, int64_t max)
{
    const char *v = gl_config_str (self, key, NULL);
    if (!v)
        return def;
    char *end = NULL;
    errno = 0;
    long long n = strtoll (v, &end, 10);
    if (errno || end == v || *end != 0) {
        s_record (self, key, v, "not an integer");
        return def;
    }
    if (n < min || n > max) {
        char why[96];
        snprintf (why, sizeof why, "out of range [%lld, %lld]", (long long) min, (long long) max);
        s_record (self, key, v, why);
        return def;
    }
    return (int64_t) n;
}

bool
gl_config_bool (gl_config_t *self, const char *key, bool def)
{
    const char *v = gl_config_str (self, key, NULL);
    if (!v)
        return def;
    static const char *yes[] = { "1", "true", "yes", "on" };
    static const char *no[] = { "0", "false", "no", "off" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp (v, yes[i]) == 0)
            return true;
        if (strcasecmp (v, no[i]) == 0)
            return false;
    }
    s_record (self, key, v, "not a boolean (1/0, true/false, yes/no, on/off)");
    return def;
}

const char *
gl_config_error (gl_config_t *self)
{
    return self->error[0] ? self->error : NULL;
}
