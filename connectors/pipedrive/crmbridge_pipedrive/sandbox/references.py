"""The ids a write names must exist: users, organizations, persons, deals, pipelines and stages.

Pipedrive refuses a write that points at a record it does not hold (404, naming what was not
found) and keeps a deal's pipeline in step with its stage: a deal moved to a stage moves to that
stage's pipeline, and a deal given only a pipeline lands in that pipeline's first stage. A stage
that belongs to another pipeline than the one named is a bad request (400).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmbridge_pipedrive.sandbox.state import PipedriveState

# The body key, the table it points into ("users" for the account's users) and the record's name.
LINKS = {"owner_id": ("users", "User"), "org_id": ("organizations", "Organization"),
         "organization_id": ("organizations", "Organization"), "person_id": ("persons", "Person"),
         "deal_id": ("deals", "Deal"), "pipeline_id": ("pipelines", "Pipeline"), "stage_id": ("stages", "Stage")}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


def _exists(state: PipedriveState, table: str, record_id: Any) -> bool:
    if table == "users":
        return record_id in state.users
    row = state.tables[table].rows.get(record_id)
    return row is not None and not row.get("is_deleted")


def check(state: PipedriveState, body: Mapping[str, Any]) -> None:
    """Raise ``Refused`` (404) for the first id in ``body`` that names nothing (null unlinks: fine)."""
    for key, (table, name) in LINKS.items():
        value = body.get(key)
        if value is not None and not _exists(state, table, value):
            raise Refused(404, f"{name} with id {value} not found")
    for participant in body.get("participants") or ():
        person = participant.get("person_id") if isinstance(participant, Mapping) else None
        if person is not None and not _exists(state, "persons", person):
            raise Refused(404, f"Person with id {person} not found")


def place_deal(state: PipedriveState, body: dict[str, Any], current: Mapping[str, Any] | None) -> None:
    """Fill in the pipeline of a stage, or the first stage of a pipeline; refuse a stage of another pipeline."""
    stages = state.tables["stages"].rows
    stage_id, pipeline_id = body.get("stage_id"), body.get("pipeline_id")
    if stage_id is not None:
        owner = stages[stage_id]["pipeline_id"]
        if pipeline_id is not None and pipeline_id != owner:
            raise Refused(400, f"Stage with id {stage_id} does not belong to pipeline with id {pipeline_id}")
        body["pipeline_id"] = owner
    elif pipeline_id is not None and (current is None or current.get("pipeline_id") != pipeline_id):
        first = sorted((s.get("order_nr") or 0, s["id"]) for s in stages.values()
                       if s.get("pipeline_id") == pipeline_id and not s.get("is_deleted"))
        if not first:
            raise Refused(400, f"Pipeline with id {pipeline_id} has no stages")
        body["stage_id"] = first[0][1]


def check_references(state: PipedriveState, kind: str, body: dict[str, Any],
                     current: Mapping[str, Any] | None = None) -> None:
    """Every id of a v2 write to ``kind`` checked (and a deal's pipeline and stage put in step)."""
    check(state, body)
    if kind == "deals":
        place_deal(state, body, current)
