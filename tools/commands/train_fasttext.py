"""`curate train quality` / `curate train langid`: a thin CLI over the fastText training code."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()

_WHERE_HELP = (
    "Keep only input rows where COLUMN is one of the values: COLUMN=VALUE[,VALUE...]; repeatable."
)


def _settings(**kwargs):
    from curate_filters._fasttext import TrainSettings

    return TrainSettings(**{k: v for k, v in kwargs.items() if v is not None})


def _fail(error: Exception) -> None:
    from curate.exits import fail

    raise fail(str(error)) from None


def _sizes(report) -> str:
    return f"{report.model_bytes / 1e6:.2f} MB"


def quality(
    output: Annotated[
        str, typer.Option("-o", "--output", help="Model file; .ftz implies --quantize.")
    ],
    positive: Annotated[
        list[str] | None,
        typer.Option(
            help="High-quality text: Parquet/JSONL(.gz) file, folder or quoted glob; repeatable."
        ),
    ] = None,
    negative: Annotated[
        list[str] | None,
        typer.Option(help="Low-quality text, same forms as --positive; repeatable."),
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option(
            help="Instead of --positive/--negative: labelled text (Parquet/JSONL with the text "
            "and --label-column); binary labels, or grades with --min-grade. With --teacher: "
            "added to the teacher's documents.",
            rich_help_panel="From labels or a teacher",
        ),
    ] = None,
    label_column: Annotated[
        str, typer.Option(help="Column of --labels.", rich_help_panel="From labels or a teacher")
    ] = "label",
    min_grade: Annotated[
        float | None,
        typer.Option(
            help="Graded labels: grade >= this is a keep (FineWeb-Edu: 3).",
            rich_help_panel="From labels or a teacher",
        ),
    ] = None,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="Distil: an output folder whose --teacher-column scores label its documents.",
            rich_help_panel="From labels or a teacher",
        ),
    ] = None,
    teacher_column: Annotated[
        str | None,
        typer.Option(
            help="The teacher's score column, e.g. learned_prob (higher = keep).",
            rich_help_panel="From labels or a teacher",
        ),
    ] = None,
    teacher_keep: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=0.99,
            help="Share of the teacher's best-scored rows labelled keep.",
            rich_help_panel="From labels or a teacher",
        ),
    ] = 0.5,
    text_column: Annotated[str, typer.Option(help="Text column of the inputs.")] = "text",
    positive_where: Annotated[list[str] | None, typer.Option(help=_WHERE_HELP)] = None,
    negative_where: Annotated[list[str] | None, typer.Option(help=_WHERE_HELP)] = None,
    label: Annotated[str, typer.Option(help="Positive label name.")] = "hq",
    negative_label: Annotated[str, typer.Option(help="Negative label name.")] = "lq",
    holdout: Annotated[float, typer.Option(help="Fraction of each class held out.")] = 0.1,
    max_per_class: Annotated[
        int | None, typer.Option(help="Cap on rows per class (after balancing).")
    ] = None,
    lowercase: Annotated[
        bool, typer.Option(help="Lowercase text (recorded in <model>.json).")
    ] = True,
    max_chars: Annotated[int, typer.Option(help="Characters read per document; 0 = all.")] = 10_000,
    epoch: Annotated[int, typer.Option()] = 10,
    dim: Annotated[int, typer.Option()] = 32,
    lr: Annotated[float, typer.Option()] = 0.1,
    word_ngrams: Annotated[int, typer.Option()] = 2,
    min_count: Annotated[int, typer.Option()] = 1,
    bucket: Annotated[int, typer.Option(help="Hash buckets for word n-grams.")] = 200_000,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[
        int, typer.Option(help="Training threads; only 1 gives the same model for the same seed.")
    ] = 1,
    quantize: Annotated[bool, typer.Option(help="Write a quantized (small) model.")] = False,
    cutoff: Annotated[int, typer.Option(help="Rows kept when quantizing (size).")] = 20_000,
) -> None:
    """Train a fastText quality classifier: from positive/negative text, from labelled text, or
    distilled from a teacher's scores; held-out metrics and a sidecar JSON."""
    from curate_filters._fasttext import FastTextError
    from curate_filters.learned import CombinerError
    from curate_filters.quality import train_quality
    from curate_tools.report import OutputError

    settings = _settings(
        epoch=epoch, dim=dim, lr=lr, word_ngrams=word_ngrams, min_count=min_count,
        bucket=bucket, seed=seed, threads=threads, quantize=quantize, cutoff=cutoff,
    )  # fmt: skip
    pairs = bool(positive or negative)
    if pairs == bool(labels or teacher) or (pairs and not (positive and negative)):
        _fail(
            ValueError(
                "give --positive and --negative, or --labels, or --teacher with "
                "--teacher-column (with --labels too: labelled documents join the teacher's)"
            )
        )
    agreement = None
    try:
        if positive:
            report = train_quality(
                positive, negative, output, text_column=text_column,
                positive_where=positive_where, negative_where=negative_where, label=label,
                negative_label=negative_label, holdout=holdout, max_per_class=max_per_class,
                lowercase=lowercase, max_chars=max_chars or None, settings=settings,
            )  # fmt: skip
        else:
            from curate_filters._quality_labelled import from_labels, from_teacher, read_labelled

            common = dict(
                output=output, label=label, negative_label=negative_label, holdout=holdout,
                lowercase=lowercase, max_chars=max_chars or None, settings=settings,
            )  # fmt: skip
            if not teacher:
                report = from_labels(labels, text_column, label_column, min_grade, **common)
            else:
                if not teacher_column:
                    raise FastTextError("--teacher needs --teacher-column (e.g. learned_prob)")
                extra = (
                    read_labelled(labels, text_column, label_column, min_grade) if labels else None
                )
                report, agreement = from_teacher(
                    teacher, teacher_column, teacher_keep, extra, **common
                )
    except (FastTextError, OutputError, CombinerError) as e:
        _fail(e)
    table = Table(title=escape(f"quality model {report.output}"))
    table.add_column("")
    table.add_column("value", justify="right")
    for name, n in report.n_train.items():
        table.add_row(f"train rows {name}", f"{n:,}")
    for name, n in report.n_holdout.items():
        table.add_row(f"held-out rows {name}", f"{n:,}")
    for name in ("precision", "recall", "f1", "roc_auc"):
        if name in report.metrics:
            table.add_row(f"held-out {name}", f"{report.metrics[name]:.4f}")
    if agreement is not None:
        held = "held-out, vs teacher"
        table.add_row(f"{held}: ROC-AUC", f"{agreement.auc_vs_teacher:.4f}")
        table.add_row(f"{held}: Spearman", f"{agreement.spearman:.4f}")
        table.add_row(f"{held}: same decision", f"{agreement.decision_agreement:.4f}")
        table.add_row("student docs/s (one process)", f"{agreement.student_docs_per_s:,.0f}")
        if agreement.teacher_docs_per_s:
            table.add_row(
                f"teacher docs/s ({'+'.join(agreement.teacher_steps)}, stats.json)",
                f"{agreement.teacher_docs_per_s:,.0f}",
            )
    table.add_row("model size", _sizes(report))
    table.add_row("training time", f"{report.train_seconds:.1f} s")
    console.print(table)
    console.print(escape(f"settings and metrics: {report.sidecar}"))


def langid(
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="Labelled text: Parquet/JSONL(.gz) file, folder or quoted glob; repeatable.",
        ),
    ],
    output: Annotated[
        str, typer.Option("-o", "--output", help="Model file; .ftz implies --quantize.")
    ],
    label_column: Annotated[str, typer.Option(help="Column holding the language code.")] = "lang",
    text_column: Annotated[str, typer.Option(help="Text column of the inputs.")] = "text",
    where: Annotated[list[str] | None, typer.Option(help=_WHERE_HELP)] = None,
    label_map: Annotated[
        list[str] | None,
        typer.Option(help="Rename label values, e.g. wikipedia_en=en,wikipedia_fr=fr; repeatable."),
    ] = None,
    holdout: Annotated[float, typer.Option(help="Fraction of each language held out.")] = 0.1,
    max_per_class: Annotated[int | None, typer.Option(help="Cap on rows per language.")] = None,
    lowercase: Annotated[
        bool, typer.Option(help="Lowercase text (recorded in <model>.json).")
    ] = False,
    max_chars: Annotated[int, typer.Option(help="Characters read per document; 0 = all.")] = 2_000,
    epoch: Annotated[int, typer.Option()] = 10,
    dim: Annotated[int, typer.Option()] = 16,
    lr: Annotated[float, typer.Option()] = 0.1,
    minn: Annotated[int, typer.Option(help="Shortest character n-gram.")] = 2,
    maxn: Annotated[int, typer.Option(help="Longest character n-gram.")] = 4,
    word_ngrams: Annotated[int, typer.Option()] = 1,
    min_count: Annotated[int, typer.Option()] = 1,
    bucket: Annotated[int, typer.Option(help="Hash buckets for character n-grams.")] = 200_000,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[
        int, typer.Option(help="Training threads; only 1 gives the same model for the same seed.")
    ] = 1,
    quantize: Annotated[bool, typer.Option(help="Write a quantized (small) model.")] = False,
    cutoff: Annotated[int, typer.Option(help="Rows kept when quantizing (size).")] = 20_000,
) -> None:
    """Train a fastText language-id model and print held-out accuracy per language."""
    from curate_filters._fasttext import FastTextError
    from curate_filters.langid import train_langid

    settings = _settings(
        epoch=epoch, dim=dim, lr=lr, minn=minn, maxn=maxn, word_ngrams=word_ngrams,
        min_count=min_count, bucket=bucket, seed=seed, threads=threads, quantize=quantize,
        cutoff=cutoff,
    )  # fmt: skip
    try:
        report = train_langid(
            input, output, label_column=label_column, text_column=text_column, where=where,
            label_map=label_map,
            holdout=holdout, max_per_class=max_per_class, lowercase=lowercase,
            max_chars=max_chars or None, settings=settings,
        )  # fmt: skip
    except FastTextError as e:
        _fail(e)
    table = Table(title=escape(f"language-id model {report.output}"))
    for name in ("language", "train rows", "held-out rows", "held-out accuracy"):
        table.add_column(name, justify="left" if name == "language" else "right")
    for lang, n in report.n_train.items():
        acc = report.per_language.get(lang)
        table.add_row(
            escape(lang),
            f"{n:,}",
            f"{report.n_holdout.get(lang, 0):,}",
            "" if acc is None else f"{acc:.3f}",
        )
    console.print(table)
    console.print(
        f"held-out accuracy {report.accuracy:.4f} | model size {_sizes(report)} | "
        f"training time {report.train_seconds:.1f} s\nsettings and metrics: "
        f"{escape(str(report.sidecar))}"
    )


def register(app: typer.Typer) -> None:
    """Add `quality` and `langid` to the `train` sub-app."""
    app.command("quality")(quality)
    app.command("langid")(langid)
