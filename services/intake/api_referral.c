/*  api_referral — referral's endpoints, answered by the referral service over the bus
    (forward.h; docs/api/referral.md): the inbox and overdue list, the route preview (where a
    referral would go, before it is requested), a referral's lifecycle and the changes staff
    make to it, the units, the emergency board and its acknowledgements, and the
    partners' signed acknowledgement link (public: the signed token is the authority).
    intake's own POST/GET of a single referral or emergency are in raise.c.
*/
#include "forward.h"

#define S_STAFF_READ  (GL_ROLE_PROTECTION | GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN)
#define S_ACT         (GL_ROLE_PROTECTION | GL_ROLE_SUPERVISOR)

static const forward_route_t s_routes[] = {
    { "GET", "/api/v1/referrals", S_STAFF_READ, "referral", "referral.inbox", 0 },
    { "GET", "/api/v1/referrals/overdue", S_STAFF_READ, "referral", "referral.overdue", 0 },
    //  Where a referral would go, asked while the agent fills the form (a literal segment wins
    //  over raise.c's /api/v1/referrals/{id}).
    { "GET", "/api/v1/referrals/route-preview", GL_ROLE_STAFF, "referral",
      "referral.route_preview", 0 },
    { "GET", "/api/v1/referrals/{id}/lifecycle", S_STAFF_READ | GL_ROLE_AGENT, "referral",
      "referral.lifecycle", FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/ack", S_ACT, "referral", "referral.ack", FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/start", S_ACT, "referral", "referral.start", FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/close", S_ACT, "referral", "referral.close", FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/reject", S_ACT, "referral", "referral.reject", FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/reroute", S_ACT, "referral", "referral.reroute",
      FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/priority", S_ACT, "referral", "referral.priority",
      FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/comments", S_ACT, "referral", "referral.comment",
      FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/pause", S_ACT, "referral", "referral.pause", FORWARD_AUDIT },
    { "POST", "/api/v1/referrals/{id}/resume", S_ACT, "referral", "referral.resume", FORWARD_AUDIT },
    { "GET", "/api/v1/units", GL_ROLE_STAFF, "referral", "referral.units", 0 },
    { "GET", "/api/v1/emergencies", S_STAFF_READ, "referral", "referral.emergency_board", 0 },
    { "POST", "/api/v1/emergencies/{id}/ack", S_ACT, "referral", "referral.emergency_ack",
      FORWARD_AUDIT },
    { "POST", "/api/v1/emergencies/{id}/close", S_ACT, "referral", "referral.emergency_close",
      FORWARD_AUDIT },
    { "POST", "/api/v1/partner-ack", GL_ROLE_PUBLIC, "referral", "referral.partner_ack", 0 },
};

void
api_referral_routes (intake_t *intake)
{
    forward_routes (intake, s_routes, sizeof s_routes / sizeof s_routes[0]);
}
