"""Progress on the driver, in a user's terms: phases named after the steps, documents, one ETA."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text


def phase_names(global_steps: list[str]) -> list[str]:
    """One name a segment: "filter" alone; else "before minhash", ..., "after minhash"."""
    if not global_steps:
        return ["filter"]
    names = [f"before {global_steps[0]}"]
    for a, b in zip(global_steps, global_steps[1:], strict=False):
        names.append(f"between {a} and {b}")
    return [*names, f"after {global_steps[-1]}"]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RunProgress:
    """Counts documents as unit summaries arrive; shows docs/s, drops per step, and an ETA over
    the whole run (every segment's work weighted by the rows it reads; Ray start excluded)."""

    def __init__(self, console: Console, mode: str = "auto") -> None:
        self.console = console
        self.mode = (
            "quiet"
            if mode == "quiet"
            else ("live" if mode == "live" or (mode == "auto" and console.is_terminal) else "plain")
        )
        self.drops: dict[str, int] = {}
        self._progress: Progress | None = None
        self._live: Live | None = None
        self._drops_line = Text("")
        self._task: Any = None
        self._label = ""
        self._last_log = 0.0
        self._weight_total = 0  # planned rows x segments: what the whole run reads at most
        self._weight_done = 0
        self._weight_start = 0  # done before this run (resumed units)
        self._started: float | None = None
        self._docs = 0
        self._tokens = 0  # counted once a step (e.g. `tokens`) names a token column
        self._docs_total = 0
        self._docs_phase = 0

    # -- one-off lines
    def phase(self, text: str) -> None:
        """A start-up phase the user would otherwise wait through in silence."""
        self.note(text)

    def note(self, text: str) -> None:
        if self.mode == "live":
            self.console.print(escape(text), highlight=False)
        elif self.mode == "plain":
            print(f"[curate] {text}", file=sys.stderr, flush=True)

    # -- the whole run
    def begin(self, planned_rows: int, segments: int, rows_done: int) -> None:
        """The run's size: `planned_rows` read by each of `segments`; `rows_done` resumed."""
        self._weight_total = max(planned_rows * segments, 1)
        self._weight_done = self._weight_start = rows_done
        self._started = time.perf_counter()

    def _eta(self) -> str:
        if self._started is None:
            return ""
        done_here = self._weight_done - self._weight_start
        elapsed = time.perf_counter() - self._started
        if done_here <= 0 or elapsed <= 0:
            return "ETA -"
        left = max(self._weight_total - self._weight_done, 0) / (done_here / elapsed)
        return f"whole run ETA {_clock(left)}"

    def start_segment(self, label: str, docs_total: int, docs_done: int) -> None:
        self._label = label
        self._docs_total = docs_total
        self._docs_phase = docs_done
        if self.mode == "live":
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    TextColumn("{task.completed:,.0f}/{task.total:,.0f} docs"),
                    TextColumn("{task.fields[rate]}"),
                    TextColumn("{task.fields[eta]}"),
                    console=self.console,
                )
                # Drops per step get their own line: they outgrow a progress row quickly.
                self._live = Live(
                    Group(self._progress, self._drops_line),
                    console=self.console,
                    refresh_per_second=4,
                )
                self._live.start()
                self._task = self._progress.add_task(label, total=docs_total, rate="", eta="")
            self._progress.update(
                self._task,
                description=escape(label),
                total=max(docs_total, 1),
                completed=docs_done,
                eta=self._eta(),
            )
        elif self.mode == "plain":
            print(
                f"[curate] {label}: {docs_total:,} documents"
                + (f", {docs_done:,} already done" if docs_done else ""),
                file=sys.stderr,
                flush=True,
            )

    def deciding(self, step: str, files: int) -> None:
        label = (
            f"{step}: finding duplicates"
            if "dedup" in step or step == "minhash"
            else (f"{step}: deciding")
        )
        if self.mode == "live" and self._progress is not None:
            self._progress.update(self._task, description=escape(f"{label} ({files} files)"))
        else:
            self.note(f"{label} over {files} sidecar files")

    def update(self, summary: dict[str, Any], rows_weight: int) -> None:
        rows = summary["input"]["rows"]
        self._docs += rows
        self._docs_phase += rows
        self._weight_done += rows_weight
        for sid, st in summary["steps"].items():
            self.drops[sid] = self.drops.get(sid, 0) + st.get("dropped", 0)
        if summary.get("segment") == 0:
            counted = [st["tokens_in"] for st in summary["steps"].values() if "tokens_in" in st]
            self._tokens += counted[0] if counted else 0
        elapsed = max(time.perf_counter() - (self._started or time.perf_counter()), 1e-9)
        rate = f"{self._docs / elapsed:,.0f} docs/s" + (
            f", {self._tokens:,} tokens" if self._tokens else ""
        )
        drops = " ".join(f"{k} -{v:,}" for k, v in self.drops.items() if v)
        eta = self._eta()
        if self.mode == "live" and self._progress is not None:
            self._progress.update(self._task, completed=self._docs_phase, rate=rate, eta=eta)
            self._drops_line.plain = f"dropped so far: {drops}" if drops else ""
        elif self.mode == "plain":
            last = self._docs_phase >= self._docs_total
            if time.perf_counter() - self._last_log > 2 or last:
                self._last_log = time.perf_counter()
                print(
                    f"[curate] {self._label}: {self._docs_phase:,}/{self._docs_total:,} "
                    f"documents, {rate}, {eta}, drops {drops or '-'}",
                    file=sys.stderr,
                    flush=True,
                )

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._progress = None
