"""Explanations a seller or marketer can read: why a person or account has its score, as rich or JSON.

Renderers take a result and a ``rich.console.Console``; they never compute anything themselves, so the
same result always renders the same way.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from crmbridge.model import LifecycleStage
from crmbridge.scoring.account import AccountScore
from crmbridge.scoring.cases import PersonaResult
from crmbridge.scoring.result import PersonScore, Reason

_CATEGORY_ORDER = {"company": 0, "person": 1, "negative": 2, "engagement": 3, "qualifying": 4, "committee": 5}


def explain(result: PersonScore | AccountScore) -> dict[str, Any]:
    """The JSON form of an explanation (what ``--format json`` prints)."""
    return result.to_dict()


def render_score(result: PersonScore, console: Console, *, title: str | None = None,
                 notes: tuple[str, ...] = (), final: LifecycleStage | None = None) -> None:
    """A summary line, the rules that fired as a table, and what is missing as a tree.

    ``final`` is the stage after the lifecycle policy, when known; ``notes`` say what held the person
    back (a fit rule, the lifecycle policy), right under the summary.
    """
    console.print(_headline(result, title, final))
    for note in notes:
        console.print(Text(note[:1].upper() + note[1:], style="bold yellow"))
    if result.disqualified:
        console.print(Text(f"Disqualified ({result.disqualified_by}): {result.disqualified}", style="bold red"))
    console.print(reasons_table(result.reasons))
    console.print(_missing_tree(result))


def render_score_json(result: PersonScore | AccountScore, console: Console) -> None:
    console.print_json(data=explain(result))


def render_persona(person: PersonaResult, console: Console, fmt: str = "table", *, title: str | None = None) -> None:
    """A person's explanation with the stage they end with: the model's proposal after the lifecycle policy
    from their current stage, and the rule that held them back if one did. JSON: ``stage`` is that final
    stage, ``proposed`` the model's."""
    if fmt == "json":
        console.print_json(data=person.to_dict())
        return
    render_score(person.score, console, title=title or person.name, notes=person.notes, final=person.final)


def render(result: PersonScore | AccountScore, console: Console, fmt: str = "table") -> None:
    """What ``crmbridge score explain`` prints: ``fmt`` is ``table`` (rich) or ``json``."""
    if fmt == "json":
        render_score_json(result, console)
    elif isinstance(result, AccountScore):
        render_account(result, console)
    else:
        render_score(result, console)


def _headline(result: PersonScore, title: str | None, final: LifecycleStage | None = None) -> Text:
    text = Text()
    text.append(title or result.email or "person", style="bold")
    text.append(f"  score {result.score}", style="bold cyan")
    stage = final or result.stage
    text.append(f"  stage {stage.value.upper()}", style=_stage_style(stage.value))
    if stage is not result.stage:
        text.append(f" (model proposes {result.stage.value.upper()})")
    text.append(f"  (fit {result.fit:.1f}, engagement {result.engagement:.1f}, "
                f"qualifying {result.qualifying:.1f})")
    if result.persona:
        text.append(f"  persona {result.persona}", style="magenta")
    if result.hand_raise:
        text.append("  hand raised", style="bold green")
    text.append(f"  as of {result.as_of:%Y-%m-%d %H:%M} UTC", style="dim")
    return text


def _stage_style(stage: str) -> str:
    return {"sql": "bold green", "mql": "bold yellow"}.get(stage, "bold")


def reasons_table(reasons: tuple[Reason, ...], *, title: str = "Rules that fired") -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("rule")
    table.add_column("why")
    table.add_column("kind")
    table.add_column("points", justify="right")
    table.add_column("undecayed", justify="right")
    table.add_column("decay", justify="right")
    table.add_column("times", justify="right")
    table.add_column("note")
    for r in sorted(reasons, key=lambda r: (_CATEGORY_ORDER.get(r.category, 9), -abs(r.points), r.rule)):
        style = "red" if r.points < 0 else ("dim" if r.points == 0 else "")
        table.add_row(r.rule, r.description, r.category, f"{r.points:+.1f}", f"{r.raw_points:+.1f}",
                      f"x{r.decay:.2f}", str(r.occurrences), _note(r), style=style)
    if not reasons:
        table.add_row("-", "no rule fired", "", "0", "", "", "", "")
    return table


def _note(reason: Reason) -> str:
    notes = []
    if reason.capped:
        notes.append("capped")
    if reason.expired:
        notes.append(f"{reason.expired} too old to count")
    return ", ".join(notes)


def _missing_tree(result: PersonScore) -> Tree:
    tree = Tree(Text("What is missing", style="bold"))
    if not result.missing:
        tree.add(Text("nothing: sales-ready", style="green"))
        return tree
    branches: dict[str, Tree] = {}
    for gap in result.missing:
        key = gap.stage.value
        if key not in branches:
            branches[key] = tree.add(Text(f"for {key.upper()}", style=_stage_style(key)))
        branches[key].add(gap.text)
    return tree


def render_account(result: AccountScore, console: Console, *, title: str | None = None) -> None:
    """Account summary (score, stage, committee coverage, surge) and the contributions behind it."""
    head = Text()
    head.append(title or result.domain or "account", style="bold")
    head.append(f"  score {result.score:.0f}", style="bold cyan")
    head.append(f"  stage {result.stage.value}", style="bold")
    head.append(f"  people {result.people}, engaged {result.engaged_people}, "
                f"in decision roles {result.decision_people}, responding {result.responding_people}, "
                f"SQL {result.sql_people}")
    console.print(head)
    tree = Tree(Text(f"Buying committee {len(result.covered_roles)}/{len(result.committee)} "
                     f"({result.coverage:.0%})", style="bold"))
    for role in result.committee:
        covered = role in result.covered_roles
        tree.add(Text(f"{'✔' if covered else '✘'} {role}", style="green" if covered else "red"))
    console.print(tree)
    style = "bold green" if result.surge.detected else "dim"
    console.print(Text(f"Intent surge: {'yes' if result.surge.detected else 'no'} - {result.surge.reason}",
                       style=style))
    console.print(reasons_table(result.reasons, title="What the account score is made of"))
