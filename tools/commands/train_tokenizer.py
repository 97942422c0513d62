"""`curate train tokenizer`: a byte-level BPE tokenizer (Hugging Face `tokenizers` JSON)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def train_tokenizer(
    inputs: list[str],
    output: str,
    vocab_size: int,
    text_column: str = "text",
    max_docs: int = 0,
    min_frequency: int = 2,
) -> dict[str, int]:
    """Train byte-level BPE on the text of Parquet/JSONL inputs; write it atomically to `output`.

    Byte-level BPE (GPT-2 style) never meets an unknown character, so the counts of the
    `tokens` step are defined for any text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from curate import io
    from curate_filters._fasttext import read_text

    table = read_text(inputs, text_column)
    if max_docs:
        table = table.slice(0, max_docs)
    texts = table.column(text_column)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def batches(size: int = 1000):
        for lo in range(0, len(texts), size):
            yield texts.slice(lo, size).to_pylist()

    tokenizer.train_from_iterator(batches(), trainer=trainer, length=len(texts))
    io.write_text_atomic(output, tokenizer.to_str())
    return {"documents": len(texts), "vocab_size": tokenizer.get_vocab_size()}


def tokenizer(
    input: Annotated[
        list[str],
        typer.Option("--input", help="Training text: Parquet/JSONL file, folder or glob."),
    ],
    output: Annotated[str, typer.Option("-o", "--output", help="Tokenizer JSON to write.")],
    vocab_size: Annotated[int, typer.Option(min=256, help="Vocabulary size.")] = 32_000,
    text_column: Annotated[str, typer.Option(help="Text column of the inputs.")] = "text",
    max_docs: Annotated[int, typer.Option(min=0, help="Documents read at most; 0 = all.")] = 0,
    min_frequency: Annotated[int, typer.Option(min=1, help="Skip rarer merges.")] = 2,
) -> None:
    """Train a byte-level BPE tokenizer for the `tokens` step (no downloads)."""
    started = time.perf_counter()
    try:
        info = train_tokenizer(input, output, vocab_size, text_column, max_docs, min_frequency)
    except ImportError:
        console.print("[red]error:[/red] needs tokenizers: pip install 'curate[tokens]'")
        raise typer.Exit(2) from None
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    size = Path(output).stat().st_size / 1e6 if Path(output).exists() else 0.0
    console.print(
        f"tokenizer {output}: vocabulary {info['vocab_size']:,} from {info['documents']:,} "
        f"documents, {size:.2f} MB, {time.perf_counter() - started:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add `tokenizer` to the `train` sub-app."""
    app.command("tokenizer")(tokenizer)
