"""Response-time SLA: business calendars, policies, clocks on hand-offs, the reminder ladder and reports."""
