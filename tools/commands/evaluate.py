"""`curate eval OUT|CONFIG --labels FILE`: how well each score and step agrees with labels."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def annotate_labelled(config_path: Path, labels: Path, id_column: str, output: str) -> None:
    """Run CONFIG's filters in annotate mode over the labelled documents (global steps left out:
    dedup is not a quality score), so every labelled row gets every score."""
    from curate import config as cfg
    from curate import runner
    from curate.process import bind_steps

    config = cfg.load(
        config_path,
        [
            f"input.path={json.dumps(str(labels))}",
            f"input.id_column={id_column}",
            "input.format=auto",
            f"output.path={json.dumps(output)}",
            "executor=local",
        ],
    )
    global_ids = {s.sid for s in bind_steps(config) if s.is_global}
    steps = [
        s.model_copy(update={"mode": "annotate"})
        for s in config.steps
        if s.step_id not in global_ids
    ]
    config = config.model_copy(update={"steps": steps})
    runner.run(config, progress="quiet")


def _print(ev, console: Console, top: int) -> None:  # noqa: ANN001 - curate_tools.evaluate.Evaluation
    console.print(
        f"{ev.rows:,} labelled documents ({100 * ev.positive_share:.1f}% keep), "
        f"{ev.unmatched:,} labels not in {ev.output}; 95% CIs from {ev.resamples:,} resamples"
    )
    table = Table(title="score columns, best first", title_justify="left")
    for name in ("column", "better", "ROC-AUC", "95% CI", "AP", "P@25%", "P@50%"):
        table.add_column(name, justify="left" if name in ("column", "better") else "right",
                         no_wrap=name == "column")  # fmt: skip
    for c in sorted(ev.columns, key=lambda c: -c.auc)[:top]:
        at = {t["keep_rate"]: t["precision"] for t in c.trade_off}
        better = ("higher" if c.higher_is_better else "lower") + (
            "*" if c.direction_from == "data" else ""
        )
        table.add_row(
            c.column, better, f"{c.auc:.3f}", f"{c.auc_ci[0]:.3f}-{c.auc_ci[1]:.3f}",
            f"{c.average_precision:.3f}", f"{at.get(0.25, float('nan')):.2f}",
            f"{at.get(0.5, float('nan')):.2f}",
        )  # fmt: skip
    console.print(table)
    if any(c.direction_from == "data" for c in ev.columns):
        console.print("* direction read from the labels (the plugin declares none)")
    if ev.steps:
        steps = Table(title="each step's own keep decision", title_justify="left")
        for name in ("step", "kept", "keep rate", "precision", "recall"):
            steps.add_column(name, justify="left" if name == "step" else "right")
        for s in ev.steps:
            steps.add_row(s.step, f"{s.kept:,}/{s.rows:,}", f"{s.kept / s.rows:.3f}",
                          f"{s.precision:.3f}", f"{s.recall:.3f}")  # fmt: skip
        console.print(steps)


def register(app: typer.Typer) -> None:
    """Add `eval` to the main app."""

    @app.command("eval")
    def eval_command(
        target: Annotated[
            Path,
            typer.Argument(
                metavar="OUT|CONFIG",
                help="An output folder holding scores of the labelled ids, or a pipeline config "
                "to run in annotate mode over the labelled documents (--labels needs text).",
            ),
        ],
        labels: Annotated[Path, typer.Option(help="Parquet/JSONL file of labelled ids.")],
        label_column: Annotated[str, typer.Option(help="Column holding labels.")] = "label",
        id_column: Annotated[str, typer.Option(help="Column holding ids.")] = "id",
        min_grade: Annotated[
            float | None, typer.Option(help="Graded labels: grade >= this is a keep.")
        ] = None,
        step: Annotated[str | None, typer.Option(help="Only this step's columns.")] = None,
        resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
        seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
        output: Annotated[
            str | None,
            typer.Option(help="With CONFIG: keep the annotate run here (default: a temp folder)."),
        ] = None,
        html: Annotated[
            Path | None, typer.Option(help="Write the HTML report with ROC curves to this file.")
        ] = None,
        top: Annotated[int, typer.Option(min=1, help="Columns shown in the table.")] = 20,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
    ) -> None:
        """ROC-AUC, average precision and keep-rate trade-offs of each score, with bootstrap CIs."""
        from curate.cli import _user_errors
        from curate.config import ConfigError
        from curate_tools import evaluate as ev
        from curate_tools import report

        with tempfile.TemporaryDirectory(prefix="curate-eval-") as tmp:
            try:
                if target.is_file():
                    folder = output or str(Path(tmp) / "out")
                    annotate_labelled(target, labels, id_column, folder)
                    out = report.Output.open(folder)
                else:
                    out = report.Output.open(target)
                lab = ev.read_labels(labels, label_column, id_column, min_grade)
                result = ev.evaluate(out, lab, step, resamples, seed)
                if html is not None:
                    page = report.render_html(out, seed=seed, sections=[ev.evaluation_html(result)])
                    html.parent.mkdir(parents=True, exist_ok=True)
                    html.write_text(page, encoding="utf-8")
            except report.OutputError as exc:
                raise _fail(str(exc)) from None
            except (ConfigError, *_user_errors()) as exc:
                raise _fail(str(exc)) from None
        if as_json:
            print(json.dumps(result.to_json()))
            return
        console = Console()
        _print(result, console, top)
        if html is not None:
            console.print(f"wrote {html}")
