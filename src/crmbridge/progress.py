"""Progress on the terminal for long work: a live line per stream with its record count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class StreamProgress:
    """A ``ProgressSink`` drawing one line per stream: records so far and elapsed time."""

    def __init__(self, progress: Progress, source: str) -> None:
        self.progress = progress
        self.source = source
        self.tasks: dict[str, Any] = {}

    def stream_started(self, stream: str) -> None:
        self.tasks[stream] = self.progress.add_task(f"{self.source}/{stream}", total=None, records=0)

    def advanced(self, stream: str, records: int) -> None:
        task = self.tasks[stream]
        done = self.progress.tasks[task].fields["records"] + records
        self.progress.update(task, advance=records, records=done)

    def stream_finished(self, stream: str) -> None:
        task = self.tasks[stream]
        self.progress.update(task, total=self.progress.tasks[task].completed)


@contextmanager
def stream_progress(console: Console, source: str, enabled: bool = True) -> Iterator[StreamProgress | None]:
    if not enabled:
        yield None
        return
    columns = (SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description:<28}"),
               TextColumn("{task.fields[records]:>9,} records"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield StreamProgress(progress, source)
