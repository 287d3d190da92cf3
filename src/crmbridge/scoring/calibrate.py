"""Threshold calibration from sales outcomes: conversion by score band and a suggested SQL threshold.

It only suggests. Positives are SQLs sales accepted and deals won; negatives are rejected SQLs and
lost deals. A threshold's precision is the share of positives among people at or above it (how good
the SQLs are); its recall is the share of all positives it lets through (how many good leads arrive).
"""

from __future__ import annotations

import csv
import json
import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from crmbridge.errors import ConfigError
from crmbridge.yamlconf import read_config_file

FEW_SAMPLES = 30


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WON = "won"
    LOST = "lost"

    @property
    def positive(self) -> bool:
        return self in (Outcome.ACCEPTED, Outcome.WON)

    @classmethod
    def parse(cls, text: str) -> Outcome:
        """Read ``accepted``/``sql_accepted``, ``rejected``, ``won``/``deal_won``, ``lost`` in any case."""
        value = text.strip().lower().replace("-", "_").replace(" ", "_")
        for prefix in ("sql_", "deal_", "closed_"):
            value = value.removeprefix(prefix)
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown outcome {text!r} (accepted, rejected, won, lost)") from None


@dataclass(frozen=True, slots=True)
class Sample:
    score: float
    outcome: Outcome
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Band:
    low: float
    high: float
    count: int
    positives: int

    @property
    def conversion(self) -> float | None:
        return self.positives / self.count if self.count else None


@dataclass(frozen=True, slots=True)
class ThresholdStats:
    threshold: float
    selected: int
    true_positives: int
    precision: float | None
    recall: float | None
    f_score: float
    won: int = 0  # of the SQLs this threshold selects, the ones whose deal was won

    @property
    def won_precision(self) -> float | None:
        """Precision against won deals only: the share of the SQLs that became customers."""
        return self.won / self.selected if self.selected else None


@dataclass(frozen=True, slots=True)
class Calibration:
    samples: int
    positives: int
    bands: tuple[Band, ...]
    candidates: tuple[ThresholdStats, ...]
    suggested: ThresholdStats | None
    current: ThresholdStats | None
    objective: str
    advice: str

    @property
    def base_rate(self) -> float | None:
        return self.positives / self.samples if self.samples else None

    def to_dict(self) -> dict[str, Any]:
        def stats(s: ThresholdStats | None) -> dict[str, Any] | None:
            return None if s is None else {
                "threshold": s.threshold, "selected": s.selected, "true_positives": s.true_positives,
                "precision": _round(s.precision), "recall": _round(s.recall), "f_score": _round(s.f_score),
                "won": s.won, "won_precision": _round(s.won_precision)}

        return {
            "samples": self.samples, "positives": self.positives, "base_rate": _round(self.base_rate),
            "bands": [{"low": b.low, "high": b.high, "count": b.count, "positives": b.positives,
                       "conversion": _round(b.conversion)} for b in self.bands],
            "suggested": stats(self.suggested), "current": stats(self.current),
            "candidates": [stats(c) for c in self.candidates], "objective": self.objective,
            "advice": self.advice,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def calibrate(samples: Iterable[Sample], *, band_width: float = 10, step: float = 5,
              current_threshold: float | None = None, min_precision: float | None = None,
              beta: float = 1.0, target_volume: int | None = None) -> Calibration:
    """Conversion per score band, and the threshold (a multiple of ``step``) that best separates outcomes.

    With ``target_volume`` the suggestion is the threshold whose SQLs come closest to that many (among
    those at least ``min_precision`` good, when given): the threshold that would have given the volume
    sales can take. Otherwise, with ``min_precision``, the lowest threshold whose SQLs are at least that
    good (most good leads let through); otherwise the one that maximises the F-beta score (beta > 1
    favours recall).
    """
    if band_width <= 0 or step <= 0 or beta <= 0:
        raise ValueError("band_width, step and beta must be positive")
    data = sorted(samples, key=lambda s: s.score)
    positives = sum(1 for s in data if s.outcome.positive)
    if not data:
        return Calibration(0, 0, (), (), None, None, "", "no outcomes yet: nothing to calibrate")
    candidates = _candidates(data, positives, step, current_threshold, beta)
    current = next((c for c in candidates if c.threshold == current_threshold), None)
    objective = f"precision >= {min_precision:g}, most recall" if min_precision is not None else f"F{beta:g}"
    suggested = _suggest(candidates, positives, min_precision)
    if target_volume is not None:
        objective = f"closest to {target_volume} SQLs" + (f", precision >= {min_precision:g}"
                                                          if min_precision is not None else "")
        suggested = _closest_volume(candidates, positives, target_volume, min_precision)
    return Calibration(len(data), positives, _bands(data, band_width), candidates, suggested, current, objective,
                       _advice(len(data), positives, suggested, current_threshold, min_precision))


def _closest_volume(candidates: tuple[ThresholdStats, ...], positives: int, volume: int,
                    min_precision: float | None) -> ThresholdStats | None:
    good = [c for c in candidates if min_precision is None or (c.precision or 0.0) >= min_precision]
    if not positives or not good:
        return None
    # Ties go to the better precision, then the higher threshold.
    return min(good, key=lambda c: (abs(c.selected - volume), -(c.precision or 0.0), -c.threshold))


def _bands(data: list[Sample], width: float) -> tuple[Band, ...]:
    counts: dict[float, list[int]] = {}
    for s in data:
        low = math.floor(s.score / width) * width
        entry = counts.setdefault(low, [0, 0])
        entry[0] += 1
        entry[1] += s.outcome.positive
    return tuple(Band(low, low + width, n, p) for low, (n, p) in sorted(counts.items()))


def _candidates(data: list[Sample], positives: int, step: float, current: float | None,
                beta: float) -> tuple[ThresholdStats, ...]:
    low = math.floor(data[0].score / step) * step
    high = math.floor(data[-1].score / step) * step
    thresholds = {low + i * step for i in range(round((high - low) / step) + 1)}
    if current is not None:
        thresholds.add(current)
    scores = [s.score for s in data]
    # positives_from[i]: positives among data[i:], so each threshold costs one bisect.
    positives_from = [0] * (len(data) + 1)
    won_from = [0] * (len(data) + 1)
    for i in range(len(data) - 1, -1, -1):
        positives_from[i] = positives_from[i + 1] + data[i].outcome.positive
        won_from[i] = won_from[i + 1] + (data[i].outcome is Outcome.WON)
    out = []
    for t in sorted(thresholds):
        first = bisect_left(scores, t)
        chosen, tp = len(data) - first, positives_from[first]
        precision = tp / chosen if chosen else None
        recall = tp / positives if positives else None
        out.append(ThresholdStats(t, chosen, tp, precision, recall, _f(precision, recall, beta), won_from[first]))
    return tuple(out)


def _f(precision: float | None, recall: float | None, beta: float) -> float:
    if not precision or not recall:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def _suggest(candidates: tuple[ThresholdStats, ...], positives: int,
             min_precision: float | None) -> ThresholdStats | None:
    if not positives:
        return None
    if min_precision is not None:
        good = [c for c in candidates if c.precision is not None and c.precision >= min_precision and c.true_positives]
        return min(good, key=lambda c: c.threshold) if good else None
    # Ties go to the higher threshold: equal quality, fewer leads for sales to chase.
    return max(candidates, key=lambda c: (c.f_score, c.threshold))


def _advice(n: int, positives: int, suggested: ThresholdStats | None, current: float | None,
            min_precision: float | None) -> str:
    caution = f" Only {n} outcomes: treat this as a hint." if n < FEW_SAMPLES else ""
    if not positives:
        return "no accepted SQLs or won deals yet: lower the threshold or raise behavioural points." + caution
    if suggested is None:
        return f"no threshold reaches precision {min_precision:g}; review the model's rules." + caution
    t = f"{suggested.threshold:g}"
    if current is None or suggested.threshold == current:
        verb = f"keep the SQL threshold at {t}" if current is not None else f"set the SQL threshold to {t}"
    elif suggested.threshold > current:
        verb = f"raise the SQL threshold from {current:g} to {t} (fewer, better SQLs)"
    else:
        verb = f"lower the SQL threshold from {current:g} to {t} (more good leads come through)"
    return f"{verb}.{caution}"


def load_outcomes(path: str | Path) -> list[Sample]:
    """Read (score, outcome) samples from a CSV with a header, or a JSON list of objects."""
    path = Path(path)
    text = read_config_file(path)
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _from_json(text, path)
    return _from_csv(text, path)


def _from_csv(text: str, path: Path) -> list[Sample]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [name for name in ("score", "outcome") if name not in header]
    if missing:
        raise ConfigError(f"the header needs columns score and outcome (missing: {', '.join(missing)})",
                          file=path, line=1)
    samples = []
    for row in reader:
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        samples.append(_sample(clean, path, reader.line_num, None))
    return samples


def _from_json(text: str, path: Path) -> list[Sample]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if isinstance(data, dict):
        data = data.get("samples")
    if not isinstance(data, list):
        raise ConfigError("expected a list of {score, outcome} objects (or {\"samples\": [...]})", file=path)
    samples = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConfigError("expected an object with score and outcome", file=path, key=str(i))
        samples.append(_sample(item, path, None, str(i)))
    return samples


def _sample(item: dict[str, Any], path: Path, line: int | None, key: str | None) -> Sample:
    def where(field: str) -> str:
        return f"{key}.{field}" if key is not None else field

    try:
        score = float(item.get("score"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"score must be a number, got {item.get('score')!r}", file=path, line=line,
                          key=where("score")) from None
    if not math.isfinite(score):
        raise ConfigError("score must be a finite number", file=path, line=line, key=where("score"))
    try:
        outcome = Outcome.parse(str(item.get("outcome") or ""))
    except ValueError as exc:
        raise ConfigError(str(exc), file=path, line=line, key=where("outcome")) from None
    ref = item.get("email") or item.get("id") or item.get("ref")
    return Sample(score, outcome, str(ref) if ref else None)
