"""How the CLI ends: exit codes, one escaped sentence per problem, 130/143 when interrupted."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from types import FrameType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import typer

OK = 0
EXPECTATION_FAILED = 1  # `curate check` only
PROBLEM = 2
INTERRUPTED_LINE = "interrupted: rerun the same command to resume"

_state = {"debug": False, "signal": 0, "installed": False}
_stderr = Console(stderr=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl+C so every `finally:` runs and executors close."""


def set_debug(on: bool) -> None:
    """`--debug`: print the traceback behind an error as well as its sentence."""
    _state["debug"] = on


def debug() -> bool:
    return bool(_state["debug"])


def print_error(message: str) -> None:
    """One sentence on stderr; user text in it (paths, ids) is never read as rich markup."""
    if _state["debug"] and sys.exc_info()[0] is not None:
        traceback.print_exc(file=sys.stderr)
    _stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = PROBLEM) -> typer.Exit:
    """Print the sentence; return the Exit to raise (`raise fail(...) from None`)."""
    import typer

    print_error(message)
    return typer.Exit(code)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _state["signal"] = signum
    raise Terminated()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _state["signal"] = signum
    raise KeyboardInterrupt()


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise in the main thread (the CLI calls this first)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigterm)
        _state["installed"] = True


def restore_signal_handlers() -> None:
    """After `ray.init`, which replaces SIGTERM's handler with a bare `sys.exit`: put the CLI's
    back (a no-op when curate is used as a library and never installed them)."""
    if _state["installed"]:
        install_signal_handlers()


def interrupted_code() -> int | None:
    """128 + the signal that interrupted the command (130 SIGINT, 143 SIGTERM), or None."""
    return 128 + _state["signal"] if _state["signal"] else None


def print_interrupted() -> None:
    print(INTERRUPTED_LINE, file=sys.stderr, flush=True)
