"""`curate plan CONFIG`: a dry run that estimates time, disk and memory before running."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from curate.exits import fail


def register(app: typer.Typer) -> None:
    """Add the `plan` command to the top-level app."""

    @app.command("plan")
    def plan_cmd(
        config_path: Annotated[Path, typer.Argument(metavar="CONFIG")],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a config field.")
        ] = None,
        workers: Annotated[int | None, typer.Option(help="Workers to plan for.")] = None,
    ) -> None:
        """Read shard footers and estimate per step the time, disk and memory of a run."""
        from curate import config as cfg
        from curate import io
        from curate.models import model_fields
        from curate.process import bind_steps
        from curate_tools import plan

        console = Console()
        try:
            config = cfg.load(config_path, set_ or [])
            steps = bind_steps(config)
            shards = io.discover(config.input.path, config.input.format, config.output.path)
        except (cfg.ConfigError, io.InputError) as exc:
            raise fail(str(exc)) from None
        footers = [
            plan.read_footer(s.uri, config.input.text_column)
            for s in shards
            if s.format == "parquet"
        ]
        model_bytes = 0
        for step in steps:
            for path in model_fields(step.params).values():
                if os.path.isfile(path):
                    model_bytes += os.path.getsize(path)
        cores = workers or config.ray.workers or os.cpu_count() or 1
        result = plan.estimate(
            footers,
            [(s.sid, s.config.use, s.params.model_dump()) for s in steps],
            cores,
            model_bytes,
            config.input.batch_size,
        )
        table = Table("step", "plugin", "est. seconds", "sidecar disk", "driver memory")
        for s in result.steps:
            table.add_row(
                escape(s.sid),
                escape(s.plugin),
                f"{s.seconds:,.0f}",
                plan.human(s.sidecar_bytes) if s.sidecar_bytes else "",
                plan.human(s.driver_bytes) if s.driver_bytes else "",
            )
        console.print(table)
        console.print(
            f"{result.rows:,} documents in {len(footers)} Parquet shards "
            f"({plan.human(result.input_bytes)}) on {cores} workers: about "
            f"{result.seconds / 60:,.1f} min; disk {plan.human(result.disk_bytes)}; "
            f"{plan.human(result.worker_bytes)} per worker (estimates from benchmark rates)"
        )
        out = config.output.path
        free_disk = None
        if "://" not in out:
            probe = Path(out).resolve()
            while not probe.exists():
                probe = probe.parent
            free_disk = shutil.disk_usage(probe).free
        free_mem = None
        if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
            free_mem = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        for warning in plan.check_fit(result, free_disk, free_mem):
            console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
