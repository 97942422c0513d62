"""`curate check CONFIG|OUT --expect FILE`: data expectations for CI, exit 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add `check` to the main app."""

    @app.command("check")
    def check_command(
        target: Annotated[
            Path,
            typer.Argument(
                metavar="CONFIG|OUT",
                help="A pipeline config (run on a sample, in process) or a finished output.",
            ),
        ],
        expect: Annotated[Path, typer.Option(help="Expectations YAML.")],
        sample: Annotated[
            int | None, typer.Option(min=1, help="Documents sampled (default: the file's).")
        ] = None,
        junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the report as JSON (not a table).")
        ] = False,
        json_path: Annotated[
            Path | None, typer.Option("--json-file", help="Also write the JSON report here.")
        ] = None,
        workdir: Annotated[
            Path | None, typer.Option(help="Keep the sample's output here (default: temporary).")
        ] = None,
        write_baseline: Annotated[
            bool, typer.Option(help="Store this run's score values as the drift baseline.")
        ] = False,
    ) -> None:
        """Assert schema, keep rates, duplicates, drift and counts: exit 0 pass, 1 fail, 2 error."""
        from curate_tools.check import check, junit_xml

        report = check(target, expect, sample, workdir, write_baseline)
        console = Console()
        if report.error:
            Console(stderr=True).print(
                f"[bold red]error:[/] {escape(report.error)}", highlight=False, soft_wrap=True
            )
        if as_json:
            print(json.dumps(report.to_json(), indent=2))
        elif report.results:
            where = f"{report.sample:,}-document sample" if report.sample else report.output
            table = Table(title=f"curate check: {where}", title_justify="left")
            for col in ("expectation", "observed", "expected", "result"):
                table.add_column(col)
            for r in report.results:
                table.add_row(
                    escape(r.name),
                    escape(r.observed),
                    escape(r.expected),
                    "[green]pass[/]" if r.passed else f"[bold red]FAIL[/] {escape(r.message)}",
                )
            console.print(table)
            failed = sum(not r.passed for r in report.results)
            console.print(
                f"{len(report.results) - failed} passed, {failed} failed in {report.seconds:.1f}s"
            )
        if junit is not None:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(junit_xml(report), encoding="utf-8")
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
        raise typer.Exit(report.exit_code)
