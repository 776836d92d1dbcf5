/*  libFuzzer target: the knowledge base's word splitter and line diff (services/intake/kbtext.c)
    never crash, leak or hang on any bytes; every word is 1..KBTEXT_WORD_MAX bytes of valid
    UTF-8 without separators; the diff's lines rebuild both texts (' ' and '-' give the old
    lines, ' ' and '+' the new ones). The input is split at its first NUL byte into old and new.
    kbtext.c is compiled in (fuzz targets link glshared only). */
#include "../../services/intake/kbtext.c"
#include "gl/gl_msgpack.h"
#include <stdint.h>

static int
s_word (void *arg, const char *word)
{
    size_t len = strlen (word);
    if (len < 1 || len > KBTEXT_WORD_MAX || !gl_utf8_valid (word, len, true))
        abort ();
    for (size_t i = 0; i < len; i++)
        if (word[i] == ' ' || word[i] == '\n' || word[i] == ',')
            abort ();
    return 0;
}

typedef struct {
    char *old_text, *new_text;
    size_t old_len, new_len;
} s_rebuild_t;

static void
s_line (void *arg, char op, const char *line, size_t len)
{
    s_rebuild_t *r = arg;
    if (op != ' ' && op != '-' && op != '+')
        abort ();
    if (op != '+') {
        memcpy (r->old_text + r->old_len, line, len);
        r->old_len += len;
        r->old_text[r->old_len++] = '\n';
    }
    if (op != '-') {
        memcpy (r->new_text + r->new_len, line, len);
        r->new_len += len;
        r->new_text[r->new_len++] = '\n';
    }
}

//  text as kbtext_diff sees its lines: split at "\n", one "\r" dropped from each line's end,
//  no empty last line after a final "\n", every line ended by "\n". -1 when the text has more
//  than KBTEXT_LINES_MAX lines (the diff joins the rest into the last one).
static long
s_normal (const char *text, char *out)
{
    size_t n = 0, len = strlen (text), lines = 0;
    if (!len)
        return 0;
    const char *start = text;
    while (true) {
        const char *nl = strchr (start, '\n');
        size_t l = nl ? (size_t) (nl - start) : strlen (start);
        if (!nl && l == 0 && start > text)
            break;                      //  the text ended with a line end
        if (++lines > KBTEXT_LINES_MAX)
            return -1;
        size_t keep = l && start[l - 1] == '\r' ? l - 1 : l;
        memcpy (out + n, start, keep);
        n += keep;
        out[n++] = '\n';
        if (!nl)
            break;
        start = nl + 1;
    }
    return (long) n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    kbtext_words ((const char *) data, size, s_word, NULL);
    char *text = malloc (size + 2);
    if (!text)
        return 0;
    memcpy (text, data, size);
    text[size] = 0;
    text[size + 1] = 0;
    const char *old_text = text;
    const char *new_text = text + strlen (text) + (strlen (text) < size ? 1 : 0);
    s_rebuild_t r = { malloc (2 * size + 4), malloc (2 * size + 4), 0, 0 };
    char *want = malloc (2 * size + 4);
    if (r.old_text && r.new_text && want && kbtext_diff (old_text, new_text, s_line, &r) == 0) {
        //  The diff takes at most KBTEXT_LINES_MAX lines per text, joining the rest into the
        //  last, so only inputs within that are rebuilt exactly.
        long n = s_normal (old_text, want);
        if (n >= 0 && (r.old_len != (size_t) n || memcmp (r.old_text, want, (size_t) n) != 0))
            abort ();
        n = s_normal (new_text, want);
        if (n >= 0 && (r.new_len != (size_t) n || memcmp (r.new_text, want, (size_t) n) != 0))
            abort ();
    }
    free (want);
    free (r.old_text);
    free (r.new_text);
    free (text);
    return 0;
}
