"""`curate calibrate OUT --step S --keep F`: thresholds for keep rates, as a config patch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from curate.exits import fail


def register(app: typer.Typer) -> None:
    """Add `calibrate` to the main app."""

    @app.command("calibrate")
    def calibrate_command(
        out: Annotated[
            Path, typer.Argument(metavar="OUT", help="Output of a run with the step annotated.")
        ],
        step: Annotated[str, typer.Option(help="Id of the step to calibrate.")],
        keep: Annotated[
            float | None, typer.Option(min=0.0, max=1.0, help="Share of rows to keep.")
        ] = None,
        percentile: Annotated[
            float | None,
            typer.Option(min=0.0, max=100.0, help="Put the threshold at this score percentile."),
        ] = None,
        by: Annotated[
            str | None,
            typer.Option(help="A column of OUT/data (e.g. lang_lang, source): one threshold each."),
        ] = None,
        patch: Annotated[
            Path | None,
            typer.Option(help="Where to write the patch (default: calibrated-<step>.yaml)."),
        ] = None,
        output: Annotated[
            str | None,
            typer.Option(help="output.path the patch sets (default: OUT-<step>-calibrated)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    ) -> None:
        """Thresholds that keep the requested share of rows, computed from stored scores."""
        from curate_tools import calibrate as cal
        from curate_tools.report import Output, OutputError

        console = Console()
        try:
            folder = Output.open(out)
            result = cal.calibrate(folder, step, keep=keep, percentile=percentile, by=by)
        except OutputError as exc:
            raise fail(str(exc)) from None
        patch_path = patch or Path(f"calibrated-{step}.yaml")
        content = cal.patch_for(folder, result, output)
        patch_path.parent.mkdir(parents=True, exist_ok=True)
        patch_path.write_text(cal.dump_patch(content, result, folder), encoding="utf-8")
        if as_json:
            print(json.dumps({**result.to_json(), "patch": str(patch_path)}))
            return
        sign = ">=" if result.direction == "min" else "<="
        table = Table(
            title=escape(f"{step}: keep {result.score} {sign} threshold ({result.target})"),
            title_justify="left",
        )
        for col in ([by] if by else []) + ["rows", result.param, "kept", "keep rate"]:
            table.add_column(col, justify="left" if col == by else "right")
        for g in result.groups:
            table.add_row(
                *([escape(str(g.group))] if by else []),
                f"{g.rows:,}",
                "-" if g.threshold is None else f"{g.threshold:.6g}",
                f"{g.kept:,}",
                f"{g.keep_rate:.3f}",
            )
        console.print(table)
        if result.note:
            console.print(f"note: {escape(result.note)}")
        console.print(
            f"wrote {escape(str(patch_path))}; apply it with: curate run CONFIG --patch "
            f"{escape(str(patch_path))} "
            "(stored scores are reused, no model is loaded)"
        )
