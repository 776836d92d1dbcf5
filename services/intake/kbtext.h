/*  kbtext — the knowledge base's text tools: words for full-text search in English, French and
    Arabic (and any other script, unfolded), and a line diff between two versions of an article.

    Words (kbtext_words): runs of letters and digits in UTF-8 text. Each is normalised so that a
    search finds it however it was typed:
      - Latin: lower case, accents folded (É, é, è, ê → e; ç → c; œ → oe; ß → ss);
      - Arabic: short vowels and other marks (U+064B..U+065F, U+0670) and the tatweel (U+0640)
        dropped; أ إ آ ٱ → ا; ة → ه; ى → ي; Arabic-Indic digits → 0-9; and a word starting with
        the article ال (at least two letters after it) is given once more without it;
      - anything else is kept as written (lower case only for ASCII and Latin-1).
    Punctuation, symbols and spaces separate words, as do bytes that are not valid UTF-8. Words
    of one character are skipped; a word is cut at KBTEXT_WORD_MAX bytes (at a character).

    The diff (kbtext_diff) compares line by line: the longest common subsequence of lines
    between what is left after the common start and end, when that middle part is at most
    KBTEXT_DIFF_CELLS lines × lines; beyond it the middle is shown as removed then added.
*/
#ifndef INTAKE_KBTEXT_H
#define INTAKE_KBTEXT_H
#include <stdbool.h>
#include <stddef.h>

#define KBTEXT_WORD_MAX     64              //  bytes of one normalised word
#define KBTEXT_DIFF_CELLS   (2u << 20)      //  LCS table cells (2 bytes each)
#define KBTEXT_LINES_MAX    20000           //  lines of one text taken by the diff

//  Called for each word (NUL-terminated, at most KBTEXT_WORD_MAX bytes). Return 0 to go on,
//  -1 to stop.
typedef int (kbtext_word_fn) (void *arg, const char *word);

//  Split text[0..len) into normalised words. Returns the number of words given to fn.
size_t kbtext_words (const char *text, size_t len, kbtext_word_fn *fn, void *arg);

//  One line of the diff: op ' ' (in both), '-' (only in the old), '+' (only in the new); line
//  without its line end.
typedef void (kbtext_line_fn) (void *arg, char op, const char *line, size_t len);

//  Diff old and new (NUL-terminated), calling fn for every line in order. 0, or -1 when out of
//  memory (nothing called).
int kbtext_diff (const char *old_text, const char *new_text, kbtext_line_fn *fn, void *arg);

#endif
