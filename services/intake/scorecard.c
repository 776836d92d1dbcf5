/*  scorecard — see scorecard.h. */
#include "scorecard.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char scorecard_default[]
    = "# The standard call review (see config/scorecard.conf)\n"
      "scorecard standard\n"
      "  greeting          5\n"
      "  identification   10\n"
      "  accuracy         25\n"
      "  empathy          15\n"
      "  correct_referral 20\n"
      "  data_protection  15  critical\n"
      "  closing          10\n";

static bool
s_code_valid (const char *s)
{
    size_t n = strlen (s);
    if (n < 1 || n > SCORECARD_CODE_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

//  Split line into at most max words separated by spaces or tabs (line is modified). Returns
//  the count, or max + 1 when there are more.
static size_t
s_words (char *line, char **words, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r (line, " \t", &save); w; w = strtok_r (NULL, " \t", &save)) {
        if (n == max)
            return max + 1;
        words[n++] = w;
    }
    return n;
}

static int
s_fail (char *err, size_t errlen, const char *origin, int line, const char *reason)
{
    snprintf (err, errlen, "%s:%d: %s", origin, line, reason);
    return -1;
}

//  The last scorecard must hold a criterion.
static int
s_close (scorecard_set_t *out, char *err, size_t errlen, const char *origin, int line)
{
    if (out->count && out->cards[out->count - 1].count == 0)
        return s_fail (err, errlen, origin, line, "the scorecard above has no criterion");
    return 0;
}

int
scorecard_parse (const char *text, size_t len, const char *origin, scorecard_set_t *out,
                 char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    if (len > SCORECARD_FILE_MAX)
        return s_fail (err, errlen, origin, 0, "the file is larger than 64 KiB");
    size_t pos = 0;
    int number = 0;
    int last_card_line = 0;
    while (pos < len) {
        number++;
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        size_t n = end - pos;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n > SCORECARD_LINE_MAX)
            return s_fail (err, errlen, origin, number, "the line is longer than 256 bytes");
        char line[SCORECARD_LINE_MAX + 1];
        memcpy (line, text + pos, n);
        line[n] = 0;
        pos = end + 1;
        if (memchr (line, 0, n))
            return s_fail (err, errlen, origin, number, "the line holds a NUL byte");
        char *hash = strchr (line, '#');
        if (hash)
            *hash = 0;
        char *words[4];
        size_t count = s_words (line, words, 3);
        if (count == 0)
            continue;
        if (strcmp (words[0], "scorecard") == 0) {
            if (count != 2)
                return s_fail (err, errlen, origin, number, "expected: scorecard CODE");
            if (!s_code_valid (words[1]))
                return s_fail (err, errlen, origin, number,
                               "a scorecard code is [a-z][a-z0-9_]*, at most 32 characters");
            if (s_close (out, err, errlen, origin, number) != 0)
                return -1;
            if (scorecard_find (out, words[1]))
                return s_fail (err, errlen, origin, number, "this scorecard is defined twice");
            if (out->count == SCORECARD_CARDS_MAX)
                return s_fail (err, errlen, origin, number, "more than 8 scorecards");
            scorecard_t *card = &out->cards[out->count++];
            snprintf (card->code, sizeof card->code, "%s", words[1]);
            last_card_line = number;
            continue;
        }
        if (out->count == 0)
            return s_fail (err, errlen, origin, number,
                           "a criterion before any \"scorecard CODE\" line");
        if (count < 2 || count > 3)
            return s_fail (err, errlen, origin, number, "expected: CRITERION MAX [critical]");
        if (!s_code_valid (words[0]))
            return s_fail (err, errlen, origin, number,
                           "a criterion code is [a-z][a-z0-9_]*, at most 32 characters");
        const char *m = words[1];
        bool digits = *m && strlen (m) <= 3;
        for (const char *p = m; digits && *p; p++)
            digits = *p >= '0' && *p <= '9';
        int max = digits ? atoi (m) : 0;
        if (max < 1 || max > SCORECARD_POINTS_MAX)
            return s_fail (err, errlen, origin, number, "MAX must be a whole number 1..100");
        if (count == 3 && strcmp (words[2], "critical") != 0)
            return s_fail (err, errlen, origin, number,
                           "the third column may only be \"critical\"");
        scorecard_t *card = &out->cards[out->count - 1];
        for (size_t i = 0; i < card->count; i++)
            if (strcmp (card->criteria[i].code, words[0]) == 0)
                return s_fail (err, errlen, origin, number,
                               "this criterion is in the scorecard twice");
        if (card->count == SCORECARD_CRITERIA_MAX)
            return s_fail (err, errlen, origin, number, "more than 20 criteria in a scorecard");
        scorecard_criterion_t *c = &card->criteria[card->count++];
        snprintf (c->code, sizeof c->code, "%s", words[0]);
        c->max = max;
        c->critical = count == 3;
        card->max += max;
    }
    if (s_close (out, err, errlen, origin, last_card_line) != 0)
        return -1;
    if (out->count == 0)
        return s_fail (err, errlen, origin, number, "no scorecard defined");
    return 0;
}

int
scorecard_load (const char *path, scorecard_set_t *out, char *err, size_t errlen)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        snprintf (err, errlen, "%s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    char *buf = malloc (SCORECARD_FILE_MAX + 1);
    size_t len = buf ? fread (buf, 1, SCORECARD_FILE_MAX + 1, f) : 0;
    bool failed = ferror (f) != 0;
    fclose (f);
    if (!buf || failed) {
        free (buf);
        snprintf (err, errlen, "%s: cannot read", path);
        return -1;
    }
    int rc = scorecard_parse (buf, len, path, out, err, errlen);
    free (buf);
    return rc;
}

const scorecard_t *
scorecard_find (const scorecard_set_t *set, const char *code)
{
    for (size_t i = 0; code && i < set->count; i++)
        if (strcmp (set->cards[i].code, code) == 0)
            return &set->cards[i];
    return NULL;
}
