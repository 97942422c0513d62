"""`curate dedup ...`: inspect what a dedup step removed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add the dedup commands to the `dedup` sub-app."""

    @app.command("audit")
    def audit_command(
        out: Path = typer.Argument(..., help="Output folder of a curate run."),
        step: str = typer.Option("minhash", help="Id of the dedup step to audit."),
        sample: int = typer.Option(200, min=1, help="Removed documents to sample."),
        seed: int = typer.Option(0, help="Sampling seed."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON, not tables."),
    ) -> None:
        """Estimate the precision of a dedup step from the exact Jaccard of sampled pairs."""
        from curate_filters.dedup.audit import AuditError, audit

        try:
            report = audit(out, step, sample, seed)
        except AuditError as err:
            raise typer.BadParameter(str(err)) from err
        if as_json:
            precision = report.precision
            print(
                json.dumps(
                    {
                        "step": report.step,
                        "removed": report.removed,
                        "sampled": report.sampled,
                        "missing_survivor": report.missing_survivor,
                        "threshold": report.threshold,
                        "effective_threshold": report.effective_threshold,
                        "precision": None if precision != precision else precision,
                        "histogram": [[lo, hi, n] for lo, hi, n in report.histogram()],
                    }
                )
            )
            return
        console = Console()
        console.print(
            f"[bold]{report.step}[/]: {report.removed} removed, {report.sampled} sampled, "
            f"{report.missing_survivor} without a findable survivor"
        )
        console.print(
            f"threshold {report.threshold:.3f} (effective LSH threshold "
            f"{report.effective_threshold:.3f}); estimated precision "
            f"[bold]{report.precision:.3f}[/] (share of pairs with exact Jaccard >= threshold)"
        )
        if len(report.jaccard):
            q = np.quantile(report.jaccard, [0.05, 0.25, 0.5, 0.75, 0.95])
            console.print("Jaccard quantiles 5/25/50/75/95%: " + ", ".join(f"{v:.3f}" for v in q))
        table = Table("exact Jaccard", "pairs")
        for lo, hi, count in report.histogram():
            table.add_row(f"[{lo:.1f}, {hi:.1f})", str(count))
        console.print(table)
        if len(report.cluster_sizes):
            sizes, counts = np.unique(report.cluster_sizes, return_counts=True)
            console.print(
                "cluster sizes of sampled rows: "
                + ", ".join(
                    f"{s}: {c}" for s, c in zip(sizes.tolist(), counts.tolist(), strict=True)
                )
            )
