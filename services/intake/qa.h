/*  qa — quality reviews: a supervisor draws a random sample of an agent's contacts, scores one
    on a configured scorecard (scorecard.h) with a comment, and the agent reads the feedback and
    acknowledges it; scores by criterion per agent and period (docs/api/qa.md; events in
    docs/events.md).

    State held by the actor (intake->qa): the scorecards. Records are docstore documents:
      intake:{intake}:qa:sample:<id>            hash {doc, v}  a sample
      intake:{intake}:qa:review:<id>            hash {doc, v}  a review
      intake:{intake}:qa:reviews                zset  review ids by time
      intake:{intake}:qa:reviews:agent:<id>     zset  an agent's review ids by time

    Settings: GL_INTAKE_QA_SCORECARDS (a scorecard file; default the built-in standard card).
*/
#ifndef INTAKE_QA_H
#define INTAKE_QA_H
#include "http.h"
#include "scorecard.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _qa_t qa_t;

#define QA_PREFIX           "intake:{intake}:qa:"
#define QA_SAMPLE_MAX       50          //  contacts in one sample
#define QA_SCAN_MAX         20000       //  contacts looked at to draw one sample
#define QA_COMMENT_MAX      4000        //  characters of a comment
#define QA_STATS_MAX        1000        //  reviews summed for one figure

//  Load the scorecards (GL_INTAKE_QA_SCORECARDS, else the built-in ones). NULL with the reason
//  in err (a file's error names file:line).
qa_t *qa_new (intake_t *intake, char *err, size_t errlen);

//  Free. NULLs *self_p.
void qa_destroy (qa_t **self_p);

//  The scorecards (borrowed; live as long as intake->qa).
const scorecard_set_t *qa_scorecards (intake_t *intake);

//  The scorecard as the API shows it (a new object).
json_t *qa_scorecard_json (const scorecard_t *card);

//  Draw a sample: up to size contacts of agent_id created in [from, to), chosen at random
//  among at most QA_SCAN_MAX of them. *ids gets a new array of contact ids (newest first),
//  *population the number they were drawn from. 0, or -1 when Redis failed.
int qa_draw (intake_t *intake, const char *agent_id, int64_t from, int64_t to, size_t size,
             json_t **ids, int64_t *population);

#endif
