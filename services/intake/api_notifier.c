/*  api_notifier — notifier's endpoints, answered by the notifier service over the bus
    (forward.h; docs/api/notifier.md): a notification's delivery status, the dead letters, and
    replaying one. Admins and supervisors only; notifier checks the roles again.
*/
#include "forward.h"

#define S_MANAGE  (GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN)

static const forward_route_t s_routes[] = {
    { "GET", "/api/v1/notifications/dead", S_MANAGE, "notifier", "notifier.dead_list", 0 },
    { "GET", "/api/v1/notifications/{id}", S_MANAGE, "notifier", "notifier.status", 0 },
    { "POST", "/api/v1/notifications/dead/{id}/replay", S_MANAGE, "notifier",
      "notifier.dead_replay", FORWARD_AUDIT },
};

void
api_notifier_routes (intake_t *intake)
{
    forward_routes (intake, s_routes, sizeof s_routes / sizeof s_routes[0]);
}
