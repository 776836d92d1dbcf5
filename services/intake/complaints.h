/*  complaints — the complaints and feedback mechanism (CFM): complaints, feedback, suggestions
    and appreciation received through the line, their handling from received to closed with the
    answer given to the person, deadlines per type on the business clock, and sensitive
    complaints (PSEA, fraud, staff misconduct) kept to the designated focal point
    (docs/api/complaints.md; events in docs/events.md).

    State held by the actor (intake->complaints): the settings below. Records are docstore
    documents (docstore.h):
      intake:{intake}:complaint:<id>        hash {doc, v}  the complaint
      intake:{intake}:complaints:time       zset  ids by received time
      intake:{intake}:complaints:due        zset  "<id>:acknowledge" / "<id>:respond" by due
                                                  time, until its complaint.overdue is published
      intake:{intake}:idemkey:complaints:<h> string an Idempotency-Key's "<id> <body hash>"

    Settings (environment / config file):
      GL_INTAKE_CFM_<TYPE>_ACK_H, GL_INTAKE_CFM_<TYPE>_RESPOND_H   hours from receipt to the
          acknowledgement and to the response, TYPE one of COMPLAINT, FEEDBACK, SUGGESTION,
          APPRECIATION, SENSITIVE (a sensitive complaint's deadlines, whatever its type)
      GL_INTAKE_CFM_SENSITIVE_ROLES      role codes that may handle sensitive complaints
                                         (comma-separated; default "protection")
      GL_INTAKE_CFM_FOCAL_PSEA, _FRAUD, _STAFF_MISCONDUCT
                                         the focal point of each kind: role:<code>, unit:<unit>
                                         or user:<id> (default role:protection)
      GL_INTAKE_CFM_CLOSE_UNACKNOWLEDGED policy: may a complaint never acknowledged be closed
                                         (default false)
      GL_INTAKE_CFM_SWEEP_MS             how often passed deadlines are looked for (1000)
*/
#ifndef INTAKE_COMPLAINTS_H
#define INTAKE_COMPLAINTS_H
#include "docstore.h"
#include "http.h"
#include "gl/gl_event.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _complaints_t complaints_t;

#define COMPLAINTS_TEXT_MAX     4000    //  characters of a description, response or answer
#define COMPLAINTS_CODE_MAX     64      //  characters of a category code

//  Read and check the settings. NULL with the reason (naming the key) in err.
complaints_t *complaints_new (intake_t *intake, char *err, size_t errlen);

//  Free. NULLs *self_p.
void complaints_destroy (complaints_t **self_p);

//  The deadlines of a complaint of type (sensitive or not) received at received_ms.
void complaints_deadlines (intake_t *intake, const char *type, bool sensitive,
                           int64_t received_ms, int64_t *ack_due, int64_t *respond_due);

//  True when who may see (and handle) rec: every staff member (agent, supervisor, protection)
//  an ordinary one; a sensitive one only a caller holding one of the sensitive roles who is
//  also the focal point of its kind (holds the role, belongs to the unit, or is the user).
bool complaints_visible (intake_t *intake, const json_t *rec, const http_caller_t *who);

//  The recipient of the sensitive alert for kind ("psea", "fraud", "staff_misconduct"), as the
//  notification contract's map (a new object), and the channels to use (a new array).
json_t *complaints_focal_recipient (intake_t *intake, const char *kind, json_t **channels);

//  Policy: may a complaint never acknowledged be closed.
bool complaints_close_unacknowledged (intake_t *intake);

//  Idempotency-Key lifetime in ms (GL_INTAKE_IDEMPOTENCY_TTL_S, as contacts).
int64_t complaints_idem_ttl_ms (intake_t *intake);

//  A new complaint.* event of type about rec, carrying the fields every complaint event has
//  (docs/events.md): ids, codes and times, never text. NULL when out of memory.
gl_event_t *complaints_event (const json_t *rec, const char *type);

//  Bring rec's entries in the deadline index up to date in tx: "<id>:acknowledge" at
//  acknowledge_due while it waits for its acknowledgement, "<id>:respond" at respond_due while
//  it waits for its response, each until its complaint.overdue was published.
void complaints_due_index (docstore_tx_t *tx, const json_t *rec);

//  Publish complaint.overdue for every deadline passed by now without the step it was for,
//  once per deadline. Returns the number published, or -1 when Redis failed.
int complaints_sweep (intake_t *intake);

#endif
