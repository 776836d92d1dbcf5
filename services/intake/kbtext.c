/*  kbtext — see kbtext.h. No allocation in kbtext_words; kbtext_diff allocates its line tables
    and the LCS table, bounded by KBTEXT_LINES_MAX and KBTEXT_DIFF_CELLS. */
#include "kbtext.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------------------------
//  Words

//  Decode one UTF-8 character at s[0..len). Returns its length (1..4) with *cp, or 0 for a
//  byte that does not start a valid character (overlong forms and surrogates are invalid).
static size_t
s_utf8 (const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0)
        n = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        n = 3, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static bool
s_separator (uint32_t cp)
{
    if (cp < 0x80)
        return !((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'));
    return cp <= 0xBF || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x206F)
           || (cp >= 0x3000 && cp <= 0x303F) || cp == 0x060C || cp == 0x061B || cp == 0x061F
           || (cp >= 0x066A && cp <= 0x066D) || cp == 0x06D4 || cp == 0xFEFF
           || (cp >= 0x2E00 && cp <= 0x2E7F);
}

//  Marks dropped inside a word: Arabic vowels and signs, the tatweel.
static bool
s_dropped (uint32_t cp)
{
    return (cp >= 0x0610 && cp <= 0x061A) || (cp >= 0x064B && cp <= 0x065F) || cp == 0x0670
           || (cp >= 0x06D6 && cp <= 0x06ED) || cp == 0x0640 || (cp >= 0x0300 && cp <= 0x036F);
}

//  Latin-1 letters U+00C0..U+00FF folded to ASCII ("" for the two symbols, never reached).
static const char *const s_latin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
};

static size_t
s_encode (uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

//  The normal form of one character (NUL-terminated in out, at most 4 bytes + NUL).
static void
s_fold (uint32_t cp, char out[8])
{
    if (cp >= 'A' && cp <= 'Z')
        cp += 'a' - 'A';
    else if (cp >= 0xC0 && cp <= 0xFF) {
        strcpy (out, s_latin1[cp - 0xC0]);
        return;
    }
    else if (cp == 0x152 || cp == 0x153) {
        strcpy (out, "oe");
        return;
    }
    else if (cp == 0x178)
        cp = 'y';
    else if (cp == 0x0622 || cp == 0x0623 || cp == 0x0625 || cp == 0x0671)
        cp = 0x0627;
    else if (cp == 0x0629)
        cp = 0x0647;
    else if (cp == 0x0649)
        cp = 0x064A;
    else if (cp >= 0x0660 && cp <= 0x0669)
        cp = '0' + (cp - 0x0660);
    else if (cp >= 0x06F0 && cp <= 0x06F9)
        cp = '0' + (cp - 0x06F0);
    out[s_encode (cp, out)] = 0;
}

typedef struct {
    char word[KBTEXT_WORD_MAX + 1];
    size_t len;                         //  bytes
    size_t chars;
    bool full;                          //  cut at KBTEXT_WORD_MAX
    kbtext_word_fn *fn;
    void *arg;
    size_t count;
    bool stopped;
} s_words_t;

static void
s_emit (s_words_t *w, const char *word)
{
    if (w->stopped)
        return;
    w->count++;
    if (w->fn (w->arg, word) != 0)
        w->stopped = true;
}

static void
s_flush (s_words_t *w)
{
    w->word[w->len] = 0;
    if (w->chars >= 2)
        s_emit (w, w->word);
    //  ال + at least two letters: the word without the article too.
    if (w->chars >= 4 && w->len > 4 && memcmp (w->word, "\xD8\xA7\xD9\x84", 4) == 0)
        s_emit (w, w->word + 4);
    w->len = w->chars = 0;
    w->full = false;
}

size_t
kbtext_words (const char *text, size_t len, kbtext_word_fn *fn, void *arg)
{
    s_words_t w = { .fn = fn, .arg = arg };
    const unsigned char *s = (const unsigned char *) text;
    size_t i = 0;
    while (i < len && !w.stopped) {
        uint32_t cp = 0;
        size_t n = s_utf8 (s + i, len - i, &cp);
        if (n == 0 || s_separator (cp)) {
            if (w.len)
                s_flush (&w);
            i += n ? n : 1;
            continue;
        }
        i += n;
        if (s_dropped (cp))
            continue;
        char folded[8];
        s_fold (cp, folded);
        size_t flen = strlen (folded);
        if (w.full || w.len + flen > KBTEXT_WORD_MAX) {
            w.full = true;
            continue;
        }
        memcpy (w.word + w.len, folded, flen);
        w.len += flen;
        w.chars++;
    }
    if (w.len && !w.stopped)
        s_flush (&w);
    return w.count;
}

//  --------------------------------------------------------------------------------------------
//  Diff

typedef struct {
    const char *p;
    size_t len;
} s_line_t;

//  Split text into lines (without "\n" or "\r\n"). *n gets the count; NULL when out of memory.
//  Lines beyond KBTEXT_LINES_MAX are joined into the last one.
static s_line_t *
s_lines (const char *text, size_t *n)
{
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == '\n';
    if (count > KBTEXT_LINES_MAX)
        count = KBTEXT_LINES_MAX;
    s_line_t *lines = calloc (count, sizeof *lines);
    if (!lines)
        return NULL;
    size_t k = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        bool end = *p == 0;
        if (end || (*p == '\n' && k + 1 < count)) {
            size_t len = (size_t) (p - start);
            if (len && start[len - 1] == '\r')
                len--;
            lines[k].p = start;
            lines[k++].len = len;
            start = p + 1;
        }
        if (end)
            break;
    }
    //  A text ending in a line end has no empty last line.
    if (k > 1 && lines[k - 1].len == 0 && *text && text[strlen (text) - 1] == '\n')
        k--;
    if (k == 1 && !*text)
        k = 0;
    *n = k;
    return lines;
}

static bool
s_same (const s_line_t *a, const s_line_t *b)
{
    return a->len == b->len && memcmp (a->p, b->p, a->len) == 0;
}

int
kbtext_diff (const char *old_text, const char *new_text, kbtext_line_fn *fn, void *arg)
{
    size_t na = 0, nb = 0;
    s_line_t *a = s_lines (old_text, &na);
    s_line_t *b = s_lines (new_text, &nb);
    if (!a || !b) {
        free (a);
        free (b);
        return -1;
    }
    size_t pre = 0;
    while (pre < na && pre < nb && s_same (&a[pre], &b[pre]))
        pre++;
    size_t post = 0;
    while (post < na - pre && post < nb - pre && s_same (&a[na - 1 - post], &b[nb - 1 - post]))
        post++;
    size_t ma = na - pre - post, mb = nb - pre - post;
    uint16_t *lcs = NULL;
    //  lcs[i * (mb + 1) + j]: the LCS length of the middle's a[i..] and b[j..]; at most 65535
    //  lines in a middle small enough for the table.
    bool table = ma && mb && (ma + 1) * (mb + 1) <= KBTEXT_DIFF_CELLS && ma < 65535 && mb < 65535;
    if (table) {
        lcs = calloc ((ma + 1) * (mb + 1), sizeof *lcs);
        if (!lcs) {
            free (a);
            free (b);
            return -1;
        }
        for (size_t i = ma; i-- > 0;)
            for (size_t j = mb; j-- > 0;) {
                size_t at = i * (mb + 1) + j;
                if (s_same (&a[pre + i], &b[pre + j]))
                    lcs[at] = (uint16_t) (lcs[at + mb + 2] + 1);
                else {
                    uint16_t down = lcs[at + mb + 1], right = lcs[at + 1];
                    lcs[at] = down > right ? down : right;
                }
            }
    }
    for (size_t i = 0; i < pre; i++)
        fn (arg, ' ', a[i].p, a[i].len);
    size_t i = 0, j = 0;
    if (lcs) {
        while (i < ma && j < mb) {
            size_t at = i * (mb + 1) + j;
            if (s_same (&a[pre + i], &b[pre + j])) {
                fn (arg, ' ', a[pre + i].p, a[pre + i].len);
                i++, j++;
            }
            else if (lcs[at + mb + 1] >= lcs[at + 1]) {
                fn (arg, '-', a[pre + i].p, a[pre + i].len);
                i++;
            }
            else {
                fn (arg, '+', b[pre + j].p, b[pre + j].len);
                j++;
            }
        }
    }
    for (; i < ma; i++)
        fn (arg, '-', a[pre + i].p, a[pre + i].len);
    for (; j < mb; j++)
        fn (arg, '+', b[pre + j].p, b[pre + j].len);
    for (size_t k = na - post; k < na; k++)
        fn (arg, ' ', a[k].p, a[k].len);
    free (lcs);
    free (a);
    free (b);
    return 0;
}
