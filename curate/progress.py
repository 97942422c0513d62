"""Progress on the driver: a rich live view on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text


class RunProgress:
    """Counts units and documents as summaries arrive; shows docs/s, ETA and drops per step."""

    def __init__(self, console: Console, mode: str = "auto") -> None:
        self.console = console
        self.mode = (
            "quiet"
            if mode == "quiet"
            else ("live" if mode == "live" or (mode == "auto" and console.is_terminal) else "plain")
        )
        self.started = time.perf_counter()
        self.docs = 0
        self.drops: dict[str, int] = {}
        self._progress: Progress | None = None
        self._live: Live | None = None
        self._drops_line = Text("")
        self._task: Any = None
        self._label = ""
        self._last_log = 0.0

    def start_segment(self, label: str, total: int, done: int) -> None:
        self._label = label
        if self.mode == "live":
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("units"),
                    TextColumn("{task.fields[rate]}"),
                    TimeRemainingColumn(),
                    console=self.console,
                )
                # Drops per step get their own line: they outgrow a progress row quickly.
                self._live = Live(
                    Group(self._progress, self._drops_line),
                    console=self.console,
                    refresh_per_second=4,
                )
                self._live.start()
            self._task = self._progress.add_task(label, total=total, completed=done, rate="")
        elif self.mode == "plain":
            print(f"[curate] {label}: {done}/{total} units already done", file=sys.stderr)

    def update(self, summary: dict[str, Any], done: int, total: int) -> None:
        if summary["segment"] == 0:
            self.docs += summary["input"]["rows"]
        for sid, st in summary["steps"].items():
            self.drops[sid] = self.drops.get(sid, 0) + st.get("dropped", 0)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = f"{self.docs / elapsed:,.0f} docs/s"
        drops = " ".join(f"{k} -{v:,}" for k, v in self.drops.items() if v)
        if self.mode == "live" and self._progress is not None:
            self._progress.update(self._task, completed=done, rate=rate)
            self._drops_line.plain = f"dropped so far: {drops}" if drops else ""
        elif self.mode == "plain" and (time.perf_counter() - self._last_log > 2 or done == total):
            self._last_log = time.perf_counter()
            print(
                f"[curate] {self._label}: {done}/{total} units, {rate}, drops {drops or '-'}",
                file=sys.stderr,
            )

    def note(self, text: str) -> None:
        if self.mode == "live":
            self.console.print(text)
        elif self.mode == "plain":
            print(f"[curate] {text}", file=sys.stderr)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._progress = None
