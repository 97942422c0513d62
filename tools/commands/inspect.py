"""`curate inspect OUT`: the funnel, rejected samples, score histograms and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

BAR = 30


def _fail(message: str) -> typer.Exit:
    from curate.exits import fail

    return fail(message)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _histogram_table(h) -> Table:  # noqa: ANN001 - a curate_tools.report.Histogram
    title = f"{h.column}  ({h.rows:,} rows" + (
        f", {h.missing:,} dropped by an earlier step (never scored)" if h.missing else ""
    )
    if h.thresholds:
        title += "; keep " + " and ".join(
            f"{'>=' if d == 'min' else '<='} {v:g}" for d, v in h.thresholds
        )
    table = Table(title=title + ")", title_justify="left", show_edge=False, box=None)
    table.add_column("bin", justify="right")
    table.add_column("count", justify="right")
    table.add_column("")
    top = max(int(h.counts.max()), 1) if len(h.counts) else 1
    marked: dict[int, list[float]] = {}
    for _, value in h.thresholds:
        inside = [i for i in range(len(h.counts)) if h.edges[i] <= value < h.edges[i + 1]]
        at = inside[0] if inside else (0 if value < h.edges[0] else len(h.counts) - 1)
        marked.setdefault(at, []).append(value)
    for i, count in enumerate(h.counts.tolist()):
        bar = Text("█" * round(BAR * count / top), style="cyan")
        for value in marked.get(i, []):
            bar.append(f" ◀ threshold {value:g}", style="bold red")
        table.add_row(f"[{h.edges[i]:.4g}, {h.edges[i + 1]:.4g})", f"{count:,}", bar)
    return table


def register(app: typer.Typer) -> None:
    """Add `inspect` to the main app."""

    @app.command("inspect")
    def inspect_command(
        out: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder of a curate run.")],
        reason: Annotated[
            str | None, typer.Option(help="Show rejected documents of this step (or input check).")
        ] = None,
        sample: Annotated[int, typer.Option(min=1, help="How many documents to show.")] = 10,
        seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
        scores: Annotated[
            bool, typer.Option("--scores", help="A histogram per numeric score column.")
        ] = False,
        step: Annotated[
            str | None, typer.Option(help="With --scores: only this step's columns.")
        ] = None,
        html: Annotated[
            Path | None, typer.Option(help="Write a self-contained HTML report to this file.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
        width: Annotated[int, typer.Option(min=20, help="Characters of text shown.")] = 240,
    ) -> None:
        """What a run kept and removed, and why: funnel, samples, score histograms, HTML."""
        from curate.stats import funnel_table
        from curate_tools import report

        console = Console()
        try:
            output = report.Output.open(out)
            if html is not None:
                page = report.render_html(output, seed=seed)
                html.parent.mkdir(parents=True, exist_ok=True)
                html.write_text(page, encoding="utf-8")
                if not as_json:
                    console.print(
                        f"wrote {escape(str(html))} ({len(page) / 1024:,.0f} KiB, "
                        "no network needed)"
                    )
            if reason is not None:
                rows = report.rejected_sample(output, reason, sample, seed)
                if as_json:
                    print(json.dumps({"step": reason, "documents": rows}, ensure_ascii=False))
                    return
                table = Table(
                    title=f"{len(rows)} documents rejected by {escape(reason)}",
                    title_justify="left",
                )
                cols = list(rows[0]) if rows else ["id", "text"]
                for col in cols:
                    table.add_column(
                        col.removeprefix(f"{reason}_"),
                        overflow="fold",
                        ratio=4 if col == "text" else None,
                    )
                for row in rows:
                    table.add_row(
                        *[
                            escape(report.shorten(row[c], width) if c == "text" else _fmt(row[c]))
                            for c in cols
                        ]
                    )
                console.print(table)
                return
            if scores:
                hists = report.histograms(output, step)
                if as_json:
                    print(json.dumps([h.to_json() for h in hists]))
                    return
                if not hists:
                    console.print(
                        "no numeric score columns" + (f" for step {escape(step)}" if step else "")
                    )
                for h in hists:
                    console.print(_histogram_table(h))
                    console.print()
                return
            if html is not None:
                return
            funnel = output.funnel()
            if as_json:
                print(json.dumps(funnel))
                return
            console.print(funnel_table(funnel, title=f"curate funnel: {escape(str(output.root))}"))
            selection = output.root / "select.json"
            if selection.exists():  # an output of `curate select`: what it chose
                from curate_tools.commands.select import print_report

                print_report(json.loads(selection.read_text()), console)
        except report.OutputError as exc:
            raise _fail(str(exc)) from None
