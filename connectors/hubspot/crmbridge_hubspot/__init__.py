"""HubSpot connector for crmbridge: the client on hubspot-api-client, webhooks, and a HubSpot sandbox."""
