/*  api_scheduler — scheduler's endpoints, answered by the scheduler service over the bus
    (forward.h; docs/api/scheduler.md): reception centres and free slots, a centre's
    appointments, one appointment, a person's appointments (the case number in the body of a
    POST, never in a URL), moving, cancelling and recording attendance, and outbound campaigns.
    Booking itself (POST /api/v1/appointments) is intake's own route with caller verification
    (api_booking.c, booking.c).
*/
#include "forward.h"

#define S_AGENTS    (GL_ROLE_AGENT | GL_ROLE_SUPERVISOR)
#define S_RECEPTION (GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN | GL_ROLE_API_CLIENT)

static const forward_route_t s_routes[] = {
    { "GET", "/api/v1/centres", GL_ROLE_STAFF, "scheduler", "scheduler.centres", 0 },
    { "GET", "/api/v1/slots", S_RECEPTION, "scheduler", "scheduler.slots", 0 },
    { "GET", "/api/v1/appointments", S_RECEPTION, "scheduler", "scheduler.appointments", 0 },
    { "POST", "/api/v1/appointments/search", S_AGENTS, "scheduler", "scheduler.search",
      FORWARD_AUDIT },
    { "GET", "/api/v1/appointments/{id}", S_RECEPTION, "scheduler", "scheduler.appointment", 0 },
    { "POST", "/api/v1/appointments/{id}/move", S_AGENTS | GL_ROLE_ADMIN, "scheduler",
      "scheduler.move", FORWARD_AUDIT },
    { "POST", "/api/v1/appointments/{id}/cancel", S_AGENTS | GL_ROLE_ADMIN, "scheduler",
      "scheduler.cancel", FORWARD_AUDIT },
    { "POST", "/api/v1/appointments/{id}/attended", S_RECEPTION, "scheduler",
      "scheduler.attended", FORWARD_AUDIT },
    { "POST", "/api/v1/appointments/{id}/no-show", S_RECEPTION, "scheduler", "scheduler.no_show",
      FORWARD_AUDIT },
    { "GET", "/api/v1/campaigns", S_AGENTS, "scheduler", "scheduler.campaigns", 0 },
    { "POST", "/api/v1/campaigns", GL_ROLE_SUPERVISOR, "scheduler", "scheduler.campaign_create",
      FORWARD_CREATED | FORWARD_AUDIT },
    { "GET", "/api/v1/campaigns/{id}", S_AGENTS, "scheduler", "scheduler.campaign", 0 },
    { "POST", "/api/v1/campaigns/{id}/status", GL_ROLE_SUPERVISOR, "scheduler",
      "scheduler.campaign_status", FORWARD_AUDIT },
    { "POST", "/api/v1/campaigns/{id}/targets", GL_ROLE_SUPERVISOR, "scheduler",
      "scheduler.campaign_targets", FORWARD_AUDIT },
    { "POST", "/api/v1/campaigns/{id}/next", S_AGENTS, "scheduler", "scheduler.next",
      FORWARD_AUDIT },
    { "POST", "/api/v1/outbound/{id}/outcome", S_AGENTS, "scheduler", "scheduler.outcome",
      FORWARD_AUDIT },
    { "GET", "/api/v1/campaigns/{id}/progress", GL_ROLE_SUPERVISOR, "scheduler",
      "scheduler.progress", 0 },
    { "GET", "/api/v1/campaigns/{id}/export", GL_ROLE_SUPERVISOR, "scheduler", "scheduler.export",
      FORWARD_AUDIT },
};

void
api_scheduler_routes (intake_t *intake)
{
    forward_routes (intake, s_routes, sizeof s_routes / sizeof s_routes[0]);
}
