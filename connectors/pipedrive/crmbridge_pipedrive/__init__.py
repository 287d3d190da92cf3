"""Pipedrive connector for crmbridge: API v2 client, v1 through pipedrive-python-lib, and a Pipedrive sandbox."""
