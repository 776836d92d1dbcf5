/*  scorecard — QA scorecards: what a supervisor scores a contact on, read from a small text
    file (config/scorecard.conf; format in docs/api/qa.md, "Scorecards"). No dependency on the
    rest of intake, so the parser can be fuzzed alone (tests/fuzz/fuzz_scorecard.c).

        # comment
        scorecard standard
          greeting          5
          data_protection  15   critical

    A "scorecard CODE" line starts a scorecard; each following "CRITERION MAX [critical]" line
    adds a criterion scored 0..MAX; a critical criterion scored 0 fails the review whatever the
    total. Codes are [a-z][a-z0-9_]*, at most SCORECARD_CODE_MAX characters.
*/
#ifndef INTAKE_SCORECARD_H
#define INTAKE_SCORECARD_H
#include <stdbool.h>
#include <stddef.h>

#define SCORECARD_CODE_MAX      32
#define SCORECARD_CARDS_MAX     8
#define SCORECARD_CRITERIA_MAX  20
#define SCORECARD_POINTS_MAX    100     //  the highest MAX of one criterion
#define SCORECARD_LINE_MAX      256     //  bytes of one line
#define SCORECARD_FILE_MAX      65536   //  bytes of the whole file

typedef struct {
    char code[SCORECARD_CODE_MAX + 1];
    int max;
    bool critical;
} scorecard_criterion_t;

typedef struct {
    char code[SCORECARD_CODE_MAX + 1];
    size_t count;
    scorecard_criterion_t criteria[SCORECARD_CRITERIA_MAX];
    int max;                            //  the sum of the criteria's MAX
} scorecard_t;

typedef struct {
    size_t count;
    scorecard_t cards[SCORECARD_CARDS_MAX];
} scorecard_set_t;

//  The built-in scorecards (the same text as config/scorecard.conf).
extern const char scorecard_default[];

//  Parse text[0..len) into out. 0, or -1 with "origin:line: reason" in err (no input quoted).
int scorecard_parse (const char *text, size_t len, const char *origin, scorecard_set_t *out,
                     char *err, size_t errlen);

//  Read and parse the file at path. 0, or -1 with the reason (naming path:line) in err.
int scorecard_load (const char *path, scorecard_set_t *out, char *err, size_t errlen);

//  The scorecard with this code, or NULL.
const scorecard_t *scorecard_find (const scorecard_set_t *set, const char *code);

#endif
