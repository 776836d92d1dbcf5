/*  api_reporting — reporting's endpoints, answered by the reporting service over the bus
    (forward.h; docs/api/reporting.md): reports for a day, week, month or range, the live
    wallboard, trends, and the exports (a report as CSV, the statistical export with small cells
    suppressed). Each is checked again by reporting against the caller's roles: an agent sees
    the wallboard and their own figures only.
*/
#include "forward.h"

#define S_MANAGE  (GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN)

static const forward_route_t s_routes[] = {
    { "GET", "/api/v1/reports/{period}", S_MANAGE | GL_ROLE_AGENT, "reporting", "reporting.report", 0 },
    { "GET", "/api/v1/wallboard", S_MANAGE | GL_ROLE_AGENT, "reporting", "reporting.wallboard", 0 },
    { "GET", "/api/v1/trends", S_MANAGE, "reporting", "reporting.trends", 0 },
    { "GET", "/api/v1/exports/report/{period}", S_MANAGE, "reporting", "reporting.export_report",
      FORWARD_AUDIT },
    { "GET", "/api/v1/exports/stats", S_MANAGE | GL_ROLE_PROTECTION, "reporting",
      "reporting.export_stats", FORWARD_AUDIT },
};

void
api_reporting_routes (intake_t *intake)
{
    forward_routes (intake, s_routes, sizeof s_routes / sizeof s_routes[0]);
}
