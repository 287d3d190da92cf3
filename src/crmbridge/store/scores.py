"""What a full re-score reads and writes in bulk: the people of one canonical id range with their
activities and stored fingerprints, and the scores that changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from crmbridge.model import Activity, Person

# Canonical people per chunk: a chunk's records (ten activities a person or more) are decoded at once,
# so this bounds the memory of a re-score whatever the store holds.
CHUNK_PEOPLE = 2_000


@dataclass
class ScoringChunk:
    """The canonical people of one chunk, as a re-score reads them."""

    people: list[tuple[int, list[Person]]] = field(default_factory=list)  # live members, by id then source
    activities: dict[tuple[str, str], list[Activity]] = field(default_factory=dict)  # live, by person record
    fingerprints: dict[int, str] = field(default_factory=dict)  # of the stored scores


# The score table's columns with their PostgreSQL types: a chunk's changed scores go in as one INSERT
# over arrays, several times faster there than an executemany of the same rows.
SCORE_COLUMNS = (("person_id", "bigint"), ("email", "text"), ("total", "float8"), ("fit", "float8"),
                 ("engagement", "float8"), ("stage", "text"), ("proposed", "text"), ("disqualified", "text"),
                 ("hand_raise", "boolean"), ("company_id", "bigint"), ("fingerprint", "text"),
                 ("as_of_ms", "bigint"), ("scored_ms", "bigint"), ("data", "text"))
UPSERT_SCORE_ARRAYS = (
    f"INSERT INTO scores ({', '.join(name for name, _ in SCORE_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(%({name})s AS {kind}[])' for name, kind in SCORE_COLUMNS)}) "
    f"ON CONFLICT (person_id) DO UPDATE SET "
    f"{', '.join(f'{name} = excluded.{name}' for name, _ in SCORE_COLUMNS if name != 'person_id')}")
