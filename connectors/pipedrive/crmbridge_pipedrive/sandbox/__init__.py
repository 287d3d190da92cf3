"""A Pipedrive-compatible sandbox: the seeded world as the seller's Pipedrive account, rate-limited like it.

How to change the account while it runs (what tests and demos do):
- the real endpoints: ``PATCH``/``DELETE /api/v2/{persons,organizations,deals,activities}/{id}``,
  ``PATCH /api/v2/deals/{id} {"is_archived": true}`` to archive a deal, and
  ``PUT /v1/{persons,organizations,deals}/{id}/merge {"merge_with_id": W}`` (``id`` is merged into ``W``);
- in bulk, without a token or limits: ``POST /pipedrive/_sandbox/touch {"kind": "persons", "count": 100}``
  (or ``"ids": [...]``) marks records as just changed; ``GET /pipedrive/_sandbox/overlap`` says which
  persons and organizations are world people and companies the marketing CRM also holds;
- in process: ``PipedriveSandbox.state`` (``create``, ``update``, ``delete``, ``merge``, ``archive_deal``,
  ``touch``, ``overlap``, ``counts``), or sellers at work: ``PipedriveSandbox.simulate(activities=n)``.

Every write reaches the webhooks v2 subscriptions (``POST /v1/webhooks``) that match it, delivered as
Pipedrive does (``webhooks.py``).

As in Pipedrive's API v2, deleted persons, organizations and activities leave every list (with or
without ``updated_since``); only deals list deleted records, with ``status=deleted``, for 30 days. A
merge deletes the merged-away record and moves its deals and activities (and an organization's
persons) to the survivor, which bumps their ``update_time``; no answer names the survivor of a merge.
"""

from crmbridge_pipedrive.sandbox.app import PipedriveSandbox

__all__ = ["PipedriveSandbox"]
