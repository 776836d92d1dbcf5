/*  libFuzzer target: the QA scorecard file parser (services/intake/scorecard.c) never crashes,
    leaks or hangs on any bytes; a refusal names "origin:line:" and never quotes the input's
    bytes beyond it; an accepted set holds 1..SCORECARD_CARDS_MAX scorecards of
    1..SCORECARD_CRITERIA_MAX criteria with valid, unique codes, MAX 1..100, and each card's max
    the sum of its criteria's. scorecard.c is compiled in (fuzz targets link glshared only). */
#include "../../services/intake/scorecard.c"
#include <stdint.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    scorecard_set_t set;
    char err[256];
    if (scorecard_parse ((const char *) data, size, "fuzz.conf", &set, err, sizeof err) != 0) {
        if (strncmp (err, "fuzz.conf:", 10) != 0)
            abort ();
        return 0;
    }
    if (set.count < 1 || set.count > SCORECARD_CARDS_MAX)
        abort ();
    for (size_t i = 0; i < set.count; i++) {
        const scorecard_t *card = &set.cards[i];
        if (!s_code_valid (card->code) || card->count < 1 || card->count > SCORECARD_CRITERIA_MAX)
            abort ();
        if (scorecard_find (&set, card->code) != card)
            abort ();
        int sum = 0;
        for (size_t k = 0; k < card->count; k++) {
            const scorecard_criterion_t *c = &card->criteria[k];
            if (!s_code_valid (c->code) || c->max < 1 || c->max > SCORECARD_POINTS_MAX)
                abort ();
            for (size_t j = 0; j < k; j++)
                if (strcmp (card->criteria[j].code, c->code) == 0)
                    abort ();
            sum += c->max;
        }
        if (sum != card->max)
            abort ();
    }
    return 0;
}
