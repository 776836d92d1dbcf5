/*  gl_tx — a list of Redis commands to run inside the subscriber's atomic commit (gl_sub.h).
    Commands are kept as argument vectors in one growing arena, ready to be passed to a Lua
    script as ARGV (argc, arg1 .. argN per command). */
#include "gl/gl_sub.h"
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t off;
    size_t len;
} s_arg_t;

struct _gl_tx_t {
    char *arena;
    size_t used, cap;
    s_arg_t *args;
    size_t nargs, capargs;
    size_t ncmds;
};

//  Internal to libshared (gl_sub.c): the flattened argument list, a snapshot to rewind to, and
//  appending one transaction to another.
size_t gl_tx_flat (gl_tx_t *self, const char ***argv, size_t **lens);
void gl_tx_snapshot (gl_tx_t *self, size_t snap[3]);
void gl_tx_restore (gl_tx_t *self, const size_t snap[3]);
void gl_tx_append (gl_tx_t *self, gl_tx_t *other);

gl_tx_t *
gl_tx_new (void)
{
    return calloc (1, sizeof (gl_tx_t));
}

void
gl_tx_destroy (gl_tx_t **self_p)
{
    assert (self_p);
    gl_tx_t *self = *self_p;
    if (!self)
        return;
    free (self->arena);
    free (self->args);
    free (self);
    *self_p = NULL;
}

void
gl_tx_reset (gl_tx_t *self)
{
    self->used = self->nargs = self->ncmds = 0;
}

size_t
gl_tx_count (gl_tx_t *self)
{
    return self->ncmds;
}

static void
s_push (gl_tx_t *self, const char *bytes, size_t len)
{
    if (self->used + len > self->cap) {
        size_t cap = self->cap ? self->cap : 1024;
        while (cap < self->used + len)
            cap *= 2;
        self->arena = realloc (self->arena, cap);
        assert (self->arena);
        self->cap = cap;
    }
    if (self->nargs == self->capargs) {
        self->capargs = self->capargs ? self->capargs * 2 : 32;
        self->args = realloc (self->args, self->capargs * sizeof (s_arg_t));
        assert (self->args);
    }
    if (len)
        memcpy (self->arena + self->used, bytes, len);
    self->args[self->nargs++] = (s_arg_t) { self->used, len };
    self->used += len;
}

int
gl_tx_cmd (gl_tx_t *self, int argc, const char **argv, const size_t *argvlen)
{
    assert (self && argc > 0 && argv);
    char count[16];
    int n = snprintf (count, sizeof count, "%d", argc);
    s_push (self, count, (size_t) n);
    for (int i = 0; i < argc; i++)
        s_push (self, argv[i], argvlen ? argvlen[i] : strlen (argv[i]));
    self->ncmds++;
    return 0;
}

//  The common formats are parsed here: arguments split on spaces, %s, %b, %d, %i, %u with the
//  l and ll length modifiers, and %%. redisvFormatCommand (hiredis) builds an sds string per
//  argument and then the RESP text, which we would parse back: about ten times slower, and it
//  runs once per applied event. Anything else (flags, widths, %f, %x ...) falls back to it.
#define S_FAST_ARGS 32
#define S_FAST_BYTES 512

typedef struct {
    char bytes[S_FAST_BYTES];
    size_t used;
    const char *argv[S_FAST_ARGS];
    size_t lens[S_FAST_ARGS];
    size_t offs[S_FAST_ARGS];
    int argc;
    bool open;                  //  an argument is being built
} s_fast_t;

static bool
s_fast_cat (s_fast_t *f, const char *p, size_t n)
{
    if (!f->open) {
        if (f->argc == S_FAST_ARGS)
            return false;
        f->offs[f->argc] = f->used;
        f->lens[f->argc++] = 0;
        f->open = true;
    }
    if (f->used + n > sizeof f->bytes)
        return false;
    memcpy (f->bytes + f->used, p, n);
    f->used += n;
    f->lens[f->argc - 1] += n;
    return true;
}

//  1 when fmt was formatted into f, 0 when it needs the general path.
static int
s_fast_format (s_fast_t *f, const char *fmt, va_list ap)
{
    for (const char *c = fmt; *c; c++) {
        if (*c == ' ') {
            f->open = false;
            continue;
        }
        if (*c != '%') {
            if (!s_fast_cat (f, c, 1))
                return 0;
            continue;
        }
        c++;
        int longs = 0;
        while (*c == 'l' && longs < 2)
            longs++, c++;
        char num[32];
        int n = -1;
        switch (*c) {
            case 's': {
                if (longs)
                    return 0;
                const char *str = va_arg (ap, const char *);
                if (!s_fast_cat (f, str, strlen (str)))
                    return 0;
                continue;
            }
            case 'b': {
                if (longs)
                    return 0;
                const char *bytes = va_arg (ap, const char *);
                size_t len = va_arg (ap, size_t);
                if (!s_fast_cat (f, bytes, len))
                    return 0;
                continue;
            }
            case '%':
                if (longs || !s_fast_cat (f, "%", 1))
                    return 0;
                continue;
            case 'd':
            case 'i':
                n = longs == 2 ? snprintf (num, sizeof num, "%lld", va_arg (ap, long long))
                    : longs == 1 ? snprintf (num, sizeof num, "%ld", va_arg (ap, long))
                                 : snprintf (num, sizeof num, "%d", va_arg (ap, int));
                break;
            case 'u':
                n = longs == 2 ? snprintf (num, sizeof num, "%llu", va_arg (ap, unsigned long long))
                    : longs == 1 ? snprintf (num, sizeof num, "%lu", va_arg (ap, unsigned long))
                                 : snprintf (num, sizeof num, "%u", va_arg (ap, unsigned));
                break;
            default:
                return 0;
        }
        if (n < 0 || !s_fast_cat (f, num, (size_t) n))
            return 0;
    }
    return f->argc > 0;
}

//  The general path: parse the RESP array that redisvFormatCommand produced back into arguments.
static int
s_slow_format (gl_tx_t *self, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand (&cmd, fmt, ap);
    if (len <= 0 || !cmd || cmd[0] != '*')
        return -1;
    char *p = cmd + 1;
    int argc = (int) strtol (p, &p, 10);
    p += 2;
    const char **argv = malloc (sizeof (char *) * (size_t) argc);
    size_t *lens = malloc (sizeof (size_t) * (size_t) argc);
    assert (argv && lens);
    for (int i = 0; i < argc; i++) {
        assert (*p == '$');
        lens[i] = strtoul (p + 1, &p, 10);
        p += 2;
        argv[i] = p;
        p += lens[i] + 2;
    }
    int rc = gl_tx_cmd (self, argc, argv, lens);
    free (argv);
    free (lens);
    free (cmd);
    return rc;
}

int
gl_tx_cmdf (gl_tx_t *self, const char *fmt, ...)
{
    va_list ap, again;
    va_start (ap, fmt);
    va_copy (again, ap);
    s_fast_t f;
    f.used = 0, f.argc = 0, f.open = false;
    int rc;
    if (s_fast_format (&f, fmt, ap)) {
        for (int i = 0; i < f.argc; i++)
            f.argv[i] = f.bytes + f.offs[i];
        rc = gl_tx_cmd (self, f.argc, f.argv, f.lens);
    }
    else
        rc = s_slow_format (self, fmt, again);
    va_end (again);
    va_end (ap);
    return rc;
}

size_t
gl_tx_flat (gl_tx_t *self, const char ***argv, size_t **lens)
{
    *argv = malloc (sizeof (char *) * (self->nargs + 1));
    *lens = malloc (sizeof (size_t) * (self->nargs + 1));
    assert (*argv && *lens);
    for (size_t i = 0; i < self->nargs; i++) {
        (*argv)[i] = self->arena + self->args[i].off;
        (*lens)[i] = self->args[i].len;
    }
    return self->nargs;
}

void
gl_tx_snapshot (gl_tx_t *self, size_t snap[3])
{
    snap[0] = self->used, snap[1] = self->nargs, snap[2] = self->ncmds;
}

void
gl_tx_restore (gl_tx_t *self, const size_t snap[3])
{
    self->used = snap[0], self->nargs = snap[1], self->ncmds = snap[2];
}

void
gl_tx_append (gl_tx_t *self, gl_tx_t *other)
{
    for (size_t i = 0; i < other->nargs; i++)
        s_push (self, other->arena + other->args[i].off, other->args[i].len);
    self->ncmds += other->ncmds;
}
