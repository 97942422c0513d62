"""The `curate` command line: a thin Typer layer over config, plugins and the runner."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Score, filter and deduplicate pretraining corpora with small models.",
)
filters_app = typer.Typer(no_args_is_help=True, help="List and describe the registered steps.")
config_app = typer.Typer(no_args_is_help=True, help="Show the resolved, validated config.")
train_app = typer.Typer(no_args_is_help=True, help="Train the small models the steps use.")
dedup_app = typer.Typer(no_args_is_help=True, help="Inspect deduplication results.")
app.add_typer(filters_app, name="filters")
app.add_typer(config_app, name="config")
app.add_typer(train_app, name="train")
app.add_typer(dedup_app, name="dedup")

console = Console()
err = Console(stderr=True)

# Families that add subcommands: a missing or broken one must not take the CLI down.
for _module, _target in (
    ("curate.commands.train_fasttext", train_app),
    ("curate.commands.train_lm", train_app),
    ("curate.commands.dedup", dedup_app),
    ("curate.commands.inspect", app),
    ("curate.commands.plan", app),
    ("curate.commands.calibrate", app),
    ("curate.commands.check", app),
    ("curate.commands.evaluate", app),
    ("curate.commands.train_combine", train_app),
):
    try:
        importlib.import_module(_module).register(_target)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from curate.config import ConfigError
    from curate.io import InputError
    from curate.plugins import PluginError
    from curate.process import StepError
    from curate.runner import RunError

    return (ConfigError, InputError, PluginError, StepError, RunError)


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config field: dotted.path=value (steps by index or id)."
    ),
]


def _load(config_path: Path, overrides: list[str] | None, patches: list[Path] | None = None):
    from curate import config as cfg
    from curate.patch import load as load_patched

    try:
        return load_patched(config_path, patches or [], overrides or [])
    except cfg.ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML or TOML config.")],
    input: Annotated[
        list[str] | None,
        typer.Option(help="Input path, glob or URI (repeatable); overrides input.path."),
    ] = None,
    output: Annotated[str | None, typer.Option(help="Output folder.")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray actors.")] = None,
    executor: Annotated[
        str | None,
        typer.Option(help="ray (default) or local (in process)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="local (embedded, default), auto, or ray://host:port."),
    ] = None,
    set_: SetOption = None,
    patch: Annotated[
        list[Path] | None,
        typer.Option(help="Config patch file, e.g. from curate calibrate (repeatable)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an output of another config.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no table.")] = False,
    progress: Annotated[str, typer.Option(help="auto, live or plain.")] = "auto",
) -> None:
    """Run a pipeline: stream the input through the steps, write kept, rejected and stats."""
    overrides = list(set_ or [])
    if input:
        overrides.append(f"input.path={json.dumps(input if len(input) > 1 else input[0])}")
    if output:
        overrides.append(f"output.path={json.dumps(output)}")
    if workers:
        overrides.append(f"ray.workers={workers}")
    if executor:
        overrides.append(f"executor={executor}")
    if ray_address:
        overrides.append(f"ray.address={json.dumps(ray_address)}")
    config = _load(config_path, overrides, patch)
    from curate import runner, stats

    try:
        result = runner.run(
            config, overwrite=overwrite, progress="quiet" if quiet else progress, console=err
        )
    except _user_errors() as exc:
        raise _fail(str(exc)) from None
    if quiet:
        return
    console.print(stats.funnel_table(result.stats, title=f"curate funnel: {result.output}"))
    total = result.stats["total"]
    note = (
        f" ({result.skipped_units} units resumed from a previous run)"
        if result.skipped_units
        else ""
    )
    console.print(
        f"kept {total['kept']:,} of {total['documents']:,} documents in "
        f"{total.get('wall_seconds', 0):.1f}s{note}; kept rows in "
        f"{result.output}/data, rejected with reasons in {result.output}/rejected"
    )


@filters_app.command("list")
def filters_list() -> None:
    """Every registered plugin, found without importing any."""
    from curate import plugins

    table = Table("name", "implementation", "package")
    for name, ep in plugins.available().items():
        table.add_row(name, ep.value, ep.dist.name if ep.dist else "")
    console.print(table)


@filters_app.command("show")
def filters_show(name: str) -> None:
    """A plugin's params: names, types, defaults and help."""
    from curate import plugins

    try:
        cls = plugins.load(name)
    except plugins.PluginError as exc:
        raise _fail(str(exc)) from None
    doc = (cls.__doc__ or "").strip().splitlines()
    console.print(f"[bold]{name}[/]: {doc[0] if doc else ''}")
    table = Table("param", "type", "default", "help")
    for row in plugins.describe(cls):
        table.add_row(row["name"], row["type"], row["default"], row["help"])
    console.print(table)


@config_app.command("show")
def config_show(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG")], set_: SetOption = None
) -> None:
    """Print the resolved config, step params filled with their defaults."""
    from curate.config import ConfigError, dump_yaml
    from curate.process import bind_steps

    config = _load(config_path, set_)
    try:
        steps = bind_steps(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    print(dump_yaml(config, {s.sid: s.params.model_dump(mode="json") for s in steps}), end="")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
