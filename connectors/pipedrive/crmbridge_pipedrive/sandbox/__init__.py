"""A Pipedrive-compatible sandbox: the seeded world as the seller's Pipedrive account, rate-limited like it.

How to change the account while it runs (what tests and demos do):
- the real endpoints: ``PATCH``/``DELETE /api/v2/{persons,organizations,deals,activities}/{id}``,
  ``PATCH /api/v2/deals/{id} {"is_archived": true}`` to archive a deal, and
  ``PUT /v1/{persons,organizations,deals}/{id}/merge {"merge_with_id": W}`` (``id`` is merged into ``W``);
- in bulk, without a token or limits: ``POST /pipedrive/_sandbox/touch {"kind": "persons", "count": 100}``
  (or ``"ids": [...]``) marks records as just changed; ``GET /pipedrive/_sandbox/overlap`` says which
  persons and organizations are world people and companies the marketing CRM also holds;
- in process: ``PipedriveSandbox.state`` (``update``, ``delete``, ``merge``, ``archive_deal``, ``touch``,
  ``overlap``, ``counts``).

Deleted records keep answering for 30 days with ``is_deleted: true`` (in ``updated_since`` listings,
deals with ``status=deleted``); one merged away also carries ``merged_to_id``, as Pipedrive's webhooks do.
"""

from crmbridge_pipedrive.sandbox.app import PipedriveSandbox

__all__ = ["PipedriveSandbox"]
