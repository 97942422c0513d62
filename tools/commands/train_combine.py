"""`curate train combine OUT --labels FILE -o combine.json`: fit the `learned_quality` model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

LEARNED_STEPS = ("learned_quality",)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def feature_columns(out, steps: list[str] | None, exclude: list[str] | None) -> list[str]:  # noqa: ANN001
    """Numeric score columns of OUT (of `steps` when given), minus learned steps' own scores."""
    from curate_tools.report import OutputError

    types = out.column_types()
    learned = {s.sid for s in out.steps if s.use in LEARNED_STEPS}
    for sid in steps or []:
        out.step(sid)
    chosen = []
    for col in out.score_columns(pa.schema(list(types.items()))):
        owner = out.owner(col)
        t = types[col]
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
        if not numeric or owner in learned or col in (exclude or []):
            continue
        if steps and owner not in steps:
            continue
        chosen.append(col)
    if not chosen:
        raise OutputError(f"{out.root} has no numeric score columns to combine")
    return chosen


def register(app: typer.Typer) -> None:
    """Add `combine` to the `train` sub-app."""

    @app.command("combine")
    def combine(
        out: Annotated[
            Path,
            typer.Argument(metavar="OUT", help="Output folder whose stored scores are features."),
        ],
        labels: Annotated[Path, typer.Option(help="Parquet/JSONL file of labelled ids.")],
        output: Annotated[Path, typer.Option("-o", "--output", help="Model file to write.")],
        label_column: Annotated[str, typer.Option(help="Column of --labels holding labels.")] = (
            "label"
        ),
        id_column: Annotated[str, typer.Option(help="Column of --labels holding ids.")] = "id",
        min_grade: Annotated[
            float | None, typer.Option(help="Graded labels: grade >= this is a keep.")
        ] = None,
        kind: Annotated[
            str, typer.Option(help="logistic_regression or gradient_boosting.")
        ] = "logistic_regression",
        c: Annotated[float, typer.Option("--c", help="Logistic regression: inverse L2.")] = 0.5,
        step: Annotated[
            list[str] | None, typer.Option(help="Only these steps' columns (repeatable).")
        ] = None,
        exclude: Annotated[
            list[str] | None, typer.Option(help="Leave out this column (repeatable).")
        ] = None,
        folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
        seed: Annotated[int, typer.Option(help="Folds and boosting subsamples.")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    ) -> None:
        """Fit a combiner of stored scores on labelled ids: cross-validated AUC, a JSON model."""
        from curate_filters._combine_fit import CombineSettings, fit
        from curate_filters._fasttext import sha256_file
        from curate_filters.learned import CombinerError
        from curate_tools import evaluate as ev
        from curate_tools.report import Output, OutputError

        try:
            folder = Output.open(out)
            lab = ev.read_labels(labels, label_column, id_column, min_grade)
            features = feature_columns(folder, step, exclude)
            joined, unmatched = ev.join_scores(folder, lab, features)
            x = np.column_stack(
                [
                    joined.column(f).cast(pa.float64()).to_numpy(zero_copy_only=False)
                    if f in joined.column_names
                    else np.full(joined.num_rows, np.nan)
                    for f in features
                ]
            )
            y = joined.column("__truth__").to_numpy(zero_copy_only=False).astype(bool)
            keep = [j for j in range(x.shape[1]) if np.nanstd(x[:, j]) > 0]
            features = [features[j] for j in keep]
            settings = CombineSettings(kind=kind, c=c, folds=folds, seed=seed)
            meta = {
                "file": str(labels),
                "sha256": sha256_file(labels),
                "label_column": label_column,
                "min_grade": min_grade,
                "unmatched": unmatched,
                "output": str(out),
            }
            report = fit(x[:, keep], y, features, settings, meta)
        except (OutputError, CombinerError) as exc:
            raise _fail(str(exc)) from None
        output.parent.mkdir(parents=True, exist_ok=True)
        report.model.save(str(output))
        cv = report.model.body["cv"]
        if as_json:
            print(json.dumps({"model": str(output), "sha256": report.model.sha256, "cv": cv,
                              "features": features, "single_auc": report.single_auc}))  # fmt: skip
            return
        console = Console()
        best = max(report.single_auc.items(), key=lambda kv: kv[1])
        table = Table(title=f"combiner {output} ({kind})", title_justify="left")
        table.add_column("")
        table.add_column("value", justify="right")
        table.add_row("labelled rows (matched)", f"{len(y):,} ({int(y.sum()):,} keep)")
        if unmatched:
            table.add_row("labels not found in OUT", f"{unmatched:,}")
        table.add_row("features", f"{len(features)}")
        table.add_row(f"cross-validated ROC-AUC ({cv['folds']} folds)", f"{cv['roc_auc_mean']:.4f}")
        table.add_row("  per fold", " ".join(f"{a:.3f}" for a in cv["roc_auc_folds"]))
        table.add_row("cross-validated average precision", f"{cv['average_precision_pooled']:.4f}")
        table.add_row(f"best single column ({best[0]})", f"{best[1]:.4f}")
        table.add_row("sha256", report.model.sha256[:16] + "…")
        console.print(table)
        console.print(
            f"apply it with a step `use: learned_quality, params: {{model: {output}}}` placed "
            "after the steps that write its columns (or run over OUT/data: scores are reused)"
        )
