"""`curate select SRC -o OUT --budget 2B`: fill a token budget from an annotated output."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def print_report(report: dict, console: Console) -> None:
    """The select.json report as a table: shares per group, budget error, KL."""
    table = Table(title=f"selection: {report['method']} by {report['score'] or 'random'}")
    for col in ("group", "target share", "pool share", "share", "tokens", "docs", "repeated"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for g, info in report["groups"].items():
        table.add_row(
            g + (" (short)" if info["short"] else ""),
            f"{100 * info['target_share']:.2f}%",
            f"{100 * info['pool_share']:.2f}%",
            f"{100 * info['share']:.2f}%",
            f"{info['selected_tokens']:,}",
            f"{info['rows']:,}",
            f"{info['repeated_rows']:,}",
        )
    console.print(table)
    console.print(
        f"selected {report['selected_tokens']:,} tokens for a budget of {report['budget']:,} "
        f"({report['budget_error_pct']:+.3f}%)"
    )
    kl = report.get("kl")
    if kl:
        to = kl["kl_target_to"]
        console.print(
            f"KL(target || ·) on {kl['num_buckets']:,} hashed n-gram buckets: pool {to['pool']:.4f}"
            f", selection {to['selection']:.4f}, random selection {to['random_selection']:.4f}"
        )


def register(app: typer.Typer) -> None:
    """Add `select` to the top-level app."""

    @app.command("select")
    def select_command(
        source: Annotated[str, typer.Argument(help="An annotated output folder of `curate run`.")],
        output: Annotated[str, typer.Option("-o", "--output", help="Folder for the selection.")],
        budget: Annotated[str, typer.Option(help="Tokens to select: 2B, 500M, 10000.")],
        by: Annotated[str | None, typer.Option(help="Group column (e.g. source).")] = None,
        mix: Annotated[
            str | None,
            typer.Option(help="Target token share per group: a YAML file or 'wiki=0.2,web=0.8'."),
        ] = None,
        method: Annotated[
            str, typer.Option(help="gumbel (importance resampling), topk or random.")
        ] = "gumbel",
        score: Annotated[
            str | None, typer.Option(help="Score column; default: the dsir step's log weight.")
        ] = None,
        lowest: Annotated[bool, typer.Option(help="Prefer low scores (e.g. perplexity).")] = False,
        seed: Annotated[int, typer.Option(help="Seed of the Gumbel / random keys.")] = 0,
        max_repeat: Annotated[
            int, typer.Option(min=1, help="Most times a document is used when a group is short.")
        ] = 4,
        tokens: Annotated[
            str | None, typer.Option(help="Token count column; default: the tokens step's.")
        ] = None,
        target: Annotated[
            str | None, typer.Option(help="Target text for the KL report; default: dsir's.")
        ] = None,
        report: Annotated[bool, typer.Option(help="Compute the KL report.")] = True,
        executor: Annotated[str, typer.Option(help="ray or local.")] = "ray",
        workers: Annotated[int | None, typer.Option(help="Ray workers.")] = None,
        ray_address: Annotated[str, typer.Option(help="local, auto or ray://...")] = "local",
        overwrite: Annotated[bool, typer.Option(help="Replace a previous selection.")] = False,
        progress: Annotated[str, typer.Option(help="auto, live or plain.")] = "auto",
        json_out: Annotated[bool, typer.Option("--json", help="Print select.json.")] = False,
    ) -> None:
        """Choose documents to fill a token budget, per group to a mix; the rest -> ledger."""
        import json

        from curate.cli import _fail, _user_errors
        from curate_tools.select_run import Request, read_mix, select
        from curate_tools.selection import SelectError, parse_budget

        console = Console()
        if method not in ("gumbel", "topk", "random"):
            raise _fail(f"--method {method}: choose gumbel, topk or random")
        if executor not in ("ray", "local"):
            raise _fail(f"--executor {executor}: choose ray or local")
        try:
            request = Request(
                source=source,
                output=output,
                budget=parse_budget(budget),
                mix=read_mix(mix) if mix else None,
                by=by,
                method=method,
                score=score,
                lowest=lowest,
                seed=seed,
                max_repeat=max_repeat,
                tokens=tokens,
                target=target,
                report=report,
                executor=executor,
                workers=workers,
                ray_address=ray_address,
            )
            if request.mix is not None and by is None:
                raise SelectError("--mix needs --by COLUMN (the column the mix's groups are in)")
            result, _ = select(request, Console(stderr=True), overwrite, progress)
        except (SelectError, *_user_errors()) as exc:
            raise _fail(str(exc)) from None
        if json_out:
            print(json.dumps(result, indent=2))
        else:
            print_report(result, console)
