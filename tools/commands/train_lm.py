"""`curate train lm`: a thin CLI over KenLM n-gram training for the perplexity filter."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from curate.exits import fail

console = Console()


def lm(
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="Training text: Parquet/JSONL(.gz) file, folder or quoted glob; repeatable.",
        ),
    ],
    output: Annotated[
        str,
        typer.Option("-o", "--output", help="Model file: .arpa (text) or anything else (binary)."),
    ],
    order: Annotated[int, typer.Option(min=2, max=6, help="n-gram order.")] = 5,
    text_column: Annotated[str, typer.Option(help="Text column of the inputs.")] = "text",
    where: Annotated[
        list[str] | None,
        typer.Option(help="Keep only rows where COLUMN is one of: COLUMN=VALUE[,VALUE...]."),
    ] = None,
    prune: Annotated[
        str | None,
        typer.Option(
            help="lmplz count thresholds per order, e.g. '0 1 1': n-grams seen at most that "
            "often are dropped (smaller model)."
        ),
    ] = None,
    memory: Annotated[str, typer.Option(help="lmplz/build_binary memory, e.g. 20% or 2G.")] = "20%",
    kenlm_bin: Annotated[
        str | None, typer.Option(help="Folder with lmplz and build_binary.")
    ] = None,
    keep_accents: Annotated[
        bool,
        typer.Option(help="Keep diacritics (then set strip_accents: false on the step)."),
    ] = False,
    structure: Annotated[
        str, typer.Option(help="Binary layout: probing (fastest) or trie (smallest).")
    ] = "probing",
    quantize: Annotated[
        int | None, typer.Option(min=2, max=25, help="trie only: bits per probability/backoff.")
    ] = None,
) -> None:
    """Train a KenLM model with CCNet-style normalisation (the same the perplexity step uses)."""
    from curate_filters.perplexity import (
        KenLMNotFound,
        parse_prune,
        parse_where,
        train_kenlm,
    )

    if structure not in ("probing", "trie"):
        raise typer.BadParameter("must be probing or trie", param_hint="--structure")
    try:
        prune_values = parse_prune(prune, order)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prune") from None
    try:
        where_values = parse_where(where)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--where") from None
    started = time.perf_counter()
    try:
        stats = train_kenlm(
            input,
            output,
            order=order,
            text_column=text_column,
            prune=prune_values,
            memory=memory,
            kenlm_bin=kenlm_bin,
            strip_accents=not keep_accents,
            structure=_structure(structure),
            quantize=quantize,
            where=where_values,
        )
    except (KenLMNotFound, ValueError, RuntimeError, OSError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=escape(f"KenLM model {output}"))
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("documents", f"{stats.documents:,}")
    table.add_row("training lines", f"{stats.lines:,}")
    table.add_row("words", f"{stats.words:,}")
    table.add_row("order", str(order))
    table.add_row("model size", f"{Path(output).stat().st_size / 1e6:.2f} MB")
    table.add_row("time", f"{time.perf_counter() - started:.1f} s")
    console.print(table)
    if keep_accents:
        console.print("accents kept: set `strip_accents: false` on the perplexity step")


def _structure(name: str) -> Literal["probing", "trie"]:
    return "trie" if name == "trie" else "probing"


def register(app: typer.Typer) -> None:
    """Add `lm` to the `train` sub-app."""
    app.command("lm")(lm)
