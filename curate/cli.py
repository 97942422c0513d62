"""The `curate` command line: a thin Typer layer over config, plugins and the runner."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
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


def _fail(message: str, code: int = 2) -> typer.Exit:
    from curate.exits import fail

    return fail(message, code)


def _version(value: bool) -> None:
    if value:
        from curate import __version__

        print(f"curate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback behind an error too.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    from curate.exits import set_debug

    set_debug(debug)


def _user_errors() -> tuple[type[BaseException], ...]:
    from curate.config import ConfigError
    from curate.io import InputError
    from curate.ownership import OwnershipError
    from curate.plugins import PluginError
    from curate.process import StepError
    from curate.retry import RetriesExhausted
    from curate.runner import RunError

    return (
        ConfigError,
        InputError,
        OwnershipError,
        PluginError,
        StepError,
        RunError,
        RetriesExhausted,
    )


PROGRESS_MODES = ("auto", "live", "plain")

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config field: dotted.path=value (steps by index or id)."
    ),
]


def _load(config_path: Path, overrides: list[str] | None, patches: list[Path] | None = None):
    from curate import config as cfg
    from curate_tools.patch import load as load_patched

    try:
        return load_patched(config_path, patches or [], overrides or [])
    except cfg.ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML or TOML config.")],
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="Input path, glob or URI (repeatable); overrides input.path."
        ),
    ] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Output folder.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Ray actors.")] = None,
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
    if progress not in PROGRESS_MODES:
        raise _fail(f"--progress {progress}: choose one of {', '.join(PROGRESS_MODES)}")
    overrides = list(set_ or [])
    if input:
        overrides.append(f"input.path={json.dumps(input if len(input) > 1 else input[0])}")
    if output:
        overrides.append(f"output.path={json.dumps(output)}")
    if workers is not None:
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
    total = result.stats["total"]
    out = escape(result.output)
    if result.already_complete:
        console.print(
            f"already complete: {out} (kept {total['kept']:,} of {total['documents']:,} "
            "documents); nothing to do. To run again from scratch: --overwrite"
        )
    else:
        console.print(stats.funnel_table(result.stats, title=f"curate funnel: {out}"))
        note = (
            f" ({result.skipped_units} units resumed from a previous run)"
            if result.skipped_units
            else ""
        )
        console.print(
            f"kept {total['kept']:,} of {total['documents']:,} documents in "
            f"{total.get('wall_seconds', 0):.1f}s{note}, of which "
            f"{total.get('startup_seconds', 0):.1f}s starting up ("
            + ("Ray start and " if total.get("executor") == "ray" else "in process: ")
            + (
                f"model loading); kept rows in {out}/data, rejected with reasons in {out}/rejected"
                if total["kept"]
                else f"model loading); nothing was kept (data/ holds no file): every document is "
                f"in {out}/rejected with its reason"
            )
        )
    console.print(f"next: curate inspect {out} --html report.html   (what was removed and why)")


@filters_app.command("list")
def filters_list() -> None:
    """Every registered plugin, found without importing any."""
    from curate import plugins

    table = Table("name", "what it does", "package")
    for name, ep in plugins.available().items():
        table.add_row(
            escape(name), escape(plugins.summary(ep.value)), escape(ep.dist.name) if ep.dist else ""
        )
    console.print(table)


@filters_app.command("show")
def filters_show(name: str) -> None:
    """A plugin's params: names, types, defaults and help."""
    from curate import plugins

    try:
        cls = plugins.load(name)
    except plugins.PluginError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[bold]{escape(name)}[/]: {escape(plugins.first_paragraph(cls.__doc__))}")
    table = Table("param", "type", "default", "help")
    for row in plugins.describe(cls):
        table.add_row(*(escape(str(row[k])) for k in ("name", "type", "default", "help")))
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


# Families that add subcommands, registered after `run` so that it comes first in --help; a
# missing or broken one must not take the CLI down.
for _module, _target in (
    ("curate_tools.commands.train_fasttext", train_app),
    ("curate_tools.commands.train_lm", train_app),
    ("curate_tools.commands.train_tokenizer", train_app),
    ("curate_tools.commands.dedup", dedup_app),
    ("curate_tools.commands.inspect", app),
    ("curate_tools.commands.plan", app),
    ("curate_tools.commands.calibrate", app),
    ("curate_tools.commands.check", app),
    ("curate_tools.commands.select", app),
    ("curate_tools.commands.evaluate", app),
    ("curate_tools.commands.train_combine", train_app),
):
    try:
        importlib.import_module(_module).register(_target)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise


def main() -> None:
    """The `curate` script: exit 0 done, 1 an expectation failed (check), 2 a problem named in
    one sentence, 130/143 interrupted by SIGINT/SIGTERM."""
    from curate import exits

    exits.install_signal_handlers()
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: Typer's own message, exit 2
        _show_usage_error(exc)
        code = exits.PROBLEM
    except typer.Abort:  # end of input at a prompt
        code = exits.PROBLEM
    except KeyboardInterrupt:  # arrived outside the command (Typer turns the rest into 130)
        code = 130
    except (*_user_errors(), OSError) as exc:  # a command let one through: still a sentence
        exits.print_error(str(exc))
        code = exits.PROBLEM
    except Exception as exc:  # a bug: say so in one line, the traceback only with --debug
        # A worker's error carries its remote traceback in its text: name the cause alone.
        cause = getattr(exc, "cause", None)
        cause = cause if isinstance(cause, BaseException) else exc
        lines = str(cause).strip().splitlines() or [""]
        hint = "" if exits.debug() else " (rerun with --debug for the traceback)"
        exits.print_error(f"internal error: {type(cause).__name__}: {lines[0]}{hint}")
        code = exits.PROBLEM
    if exits.interrupted_code() is not None:
        exits.print_interrupted()
        code = exits.interrupted_code()
    sys.exit(code if isinstance(code, int) else 0)


def _show_usage_error(exc: typer.TyperException) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except (ImportError, AttributeError):
        exc.show()


if __name__ == "__main__":
    main()
