"""Loads each model-using step in a throwaway forked process: a crash is a sentence, not a segfault.

A truncated or corrupt model can kill the process that loads it (fastText segfaults on a cut
`.ftz`) or make it loop, eating memory. The runner calls `check_setup` before any executor
starts: each step that names a model file is built, set up and given a tiny batch in a child
process; a child that raises, dies by a signal, runs past its time or its memory becomes one
StepError naming the step and the file. Steps that passed are remembered in a small JSON cache
(keyed on the plugin, its params and every model's sha256) so a rerun pays nothing.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.filter import Filter
from curate.models import model_fields
from curate.process import BoundStep, StepError

TIMEOUT_ENV = "CURATE_PROBE_TIMEOUT"
MEMORY_ENV = "CURATE_PROBE_MEMORY_GIB"
DEFAULT_TIMEOUT_S = 120.0
# The child may grow by this much plus a few times the model's size before it is called a
# runaway (a cut .ftz makes fastText allocate 7 GB for a 550 KB model).
DEFAULT_MEMORY_GIB = 1.0
MEMORY_PER_MODEL_BYTE = 4
SAMPLE_TEXTS = [
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.",
    "",
    "Ünïcödé, emoji 🙂, 日本語のテキスト and Ελληνικά in one line.",
    "line one\nline two\n\nline four",
]
_CACHE_VERSION = 1
_CACHE_SIZE = 512


@dataclass(frozen=True)
class ProbeResult:
    """What the child reported: ok, error (a message), signal (its name), timeout or memory."""

    status: str
    detail: str = ""
    stage: str = "setup"


def check_setup(
    steps: list[BoundStep],
    text_column: str,
    models: dict[str, dict[str, dict[str, str]]],
    *,
    timeout: float | None = None,
    use_cache: bool = True,
) -> float:
    """Raise StepError for the first model-using step whose setup fails; return the seconds spent.

    `models` is the runner's {step id: {field: {path, sha256}}}. Steps that reserve GPUs are
    left to their workers (the driver may have no GPU).
    """
    t0 = time.perf_counter()
    todo = [s for s in steps if models.get(s.sid) and not _wants_gpu(s)]
    if not todo:
        return 0.0
    cache = _read_cache() if use_cache else {}
    passed: list[str] = []
    for step in todo:
        key = probe_key(step, text_column, models[step.sid])
        if key in cache:
            continue
        local = _with_local_models(step, models[step.sid])
        result = probe(local, text_column, _model_bytes(local), timeout)
        if result.status != "ok":
            raise StepError(describe(step, models[step.sid], result))
        passed.append(key)
    if use_cache and passed:
        _write_cache(cache, passed)
    return time.perf_counter() - t0


def probe(
    step: BoundStep, text_column: str, model_bytes: int = 0, timeout: float | None = None
) -> ProbeResult:
    """Build, set up and score a tiny batch with one step in a child process."""
    timeout = timeout if timeout is not None else float(os.environ.get(TIMEOUT_ENV, 0) or 0)
    timeout = timeout or DEFAULT_TIMEOUT_S
    ctx = multiprocessing.get_context(_start_method())
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, step, text_column))
    child.start()
    send.close()
    floor = float(os.environ.get(MEMORY_ENV, 0) or DEFAULT_MEMORY_GIB) * 2**30
    limit = _rss(os.getpid()) + floor + MEMORY_PER_MODEL_BYTE * model_bytes
    messages: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    try:
        while child.is_alive() or receive.poll():
            if receive.poll(0.05):
                try:
                    messages.append(receive.recv())
                except EOFError:
                    child.join(5)
                    break
                if messages[-1][0] in ("ok", "error"):
                    break
            if time.monotonic() > deadline:
                return ProbeResult("timeout", f"{timeout:g}s", _stage(messages))
            if _rss(child.pid) > limit:
                return ProbeResult("memory", f"{limit / 2**30:.1f} GiB", _stage(messages))
        child.join(10)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receive.close()
    if messages and messages[-1][0] == "ok":
        return ProbeResult("ok", stage="score")
    if messages and messages[-1][0] == "error":
        return ProbeResult("error", messages[-1][1], "setup")
    code = child.exitcode or 0
    if code < 0:
        return ProbeResult("signal", _signal_name(-code), _stage(messages))
    return ProbeResult("error", f"the loading process exited with status {code}", _stage(messages))


def describe(step: BoundStep, fields: dict[str, dict[str, str]], result: ProbeResult) -> str:
    """The one sentence for a failed probe: the step, the file(s) and what to do."""
    files = ", ".join(info["path"] for info in fields.values())
    doing = "loading" if result.stage == "setup" else "scoring a test batch with"
    kind = f"a model {step.config.use} can load"
    if result.status == "error":
        return f"step '{step.sid}' cannot load its model {files}: {result.detail}"
    if result.status == "signal":
        return (
            f"step '{step.sid}' crashed ({result.detail}) {doing} {files}: the file is "
            f"truncated, corrupt or not {kind}; retrain or re-copy it"
        )
    if result.status == "memory":
        return (
            f"step '{step.sid}' used more than {result.detail} {doing} {files}: the file is "
            f"truncated, corrupt or not {kind} (set {MEMORY_ENV} to allow a big model more)"
        )
    return (
        f"step '{step.sid}' did not finish {doing} {files} within {result.detail}: the file may "
        f"be truncated or corrupt (set {TIMEOUT_ENV} to allow a slow model longer)"
    )


def probe_key(step: BoundStep, text_column: str, fields: dict[str, dict[str, str]]) -> str:
    """What decides whether a probe that passed still holds: plugin, code, params, model bytes."""
    source = sys.modules.get(step.cls.__module__)
    source_file = getattr(source, "__file__", None) or ""
    ident = {
        "use": step.config.use,
        "class": f"{step.cls.__module__}.{step.cls.__qualname__}",
        "code_mtime": os.path.getmtime(source_file) if os.path.isfile(source_file) else None,
        "params": step.params.model_dump(mode="json"),
        "models": {name: info["sha256"] for name, info in sorted(fields.items())},
        "text_column": text_column,
        "python": sys.executable,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def cache_path() -> Path:
    """`$XDG_CACHE_HOME/curate/probe.json` (default `~/.cache/curate/probe.json`)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "curate" / "probe.json"


# ----------------------------------------------------------------------------- the child
def _child(conn: Any, step: BoundStep, text_column: str) -> None:
    faulthandler.disable()  # the parent reports the crash; no stack dump on the user's screen
    try:
        instance = step.build(text_column)
        instance.setup()
    except BaseException as exc:  # the message is the report; the process ends either way
        conn.send(("error", str(exc) or type(exc).__name__))
        return
    conn.send(("loaded", ""))
    if isinstance(instance, Filter):
        try:
            instance.score(pa.table({text_column: pa.array(SAMPLE_TEXTS, pa.string())}))
        except Exception:
            # The made-up batch may lack columns a step reads: only a crash counts here; the
            # run itself reports a step's errors on real rows, naming the unit.
            pass
    conn.send(("ok", ""))


def _stage(messages: list[tuple[str, str]]) -> str:
    return "score" if any(kind == "loaded" for kind, _ in messages) else "setup"


def _start_method() -> str:
    """fork on Linux (cheap, inherits the loaded plugin); spawn once Ray's threads are running."""
    ray = sys.modules.get("ray")
    ray_running = ray is not None and getattr(ray, "is_initialized", lambda: False)()
    if sys.platform.startswith("linux") and not ray_running:
        return "fork"
    return "spawn"


def _wants_gpu(step: BoundStep) -> bool:
    override = step.config.resources or {}
    return float(override.get("gpus", step.cls.resources.gpus)) > 0


def _with_local_models(step: BoundStep, fields: dict[str, dict[str, str]]) -> BoundStep:
    """The step with models on object stores copied to this machine, as workers get them."""
    remote = {name: info for name, info in fields.items() if "://" in info["path"]}
    if not remote:
        return step
    from curate.models import materialise, pack

    params = step.params.model_copy()
    for name, info in remote.items():
        name_on_disk = os.path.basename(info["path"].rstrip("/"))
        setattr(params, name, materialise(pack(info["path"]), info["sha256"], name_on_disk))
    return dataclasses.replace(step, params=params)


def _model_bytes(step: BoundStep) -> int:
    total = 0
    for path in model_fields(step.params).values():
        if os.path.isfile(path):
            total += os.path.getsize(path)
        elif os.path.isdir(path):
            total += sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return total


def _rss(pid: int | None) -> int:
    """Resident bytes of a process (Linux /proc; 0 elsewhere, which disables the memory guard)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _read_cache() -> dict[str, float]:
    """Keys of probes that passed; a missing or unreadable cache is simply empty."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
        if data.get("version") == _CACHE_VERSION and isinstance(data.get("ok"), dict):
            return {str(k): float(v) for k, v in data["ok"].items()}
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    return {}


def _write_cache(cache: dict[str, float], passed: list[str]) -> None:
    """Add the keys that passed, keep the newest entries, replace the file atomically."""
    now = time.time()
    merged = {**_read_cache(), **cache, **{k: now for k in passed}}
    newest = dict(sorted(merged.items(), key=lambda kv: kv[1])[-_CACHE_SIZE:])
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probe-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": _CACHE_VERSION, "ok": newest}, f)
        os.replace(tmp, path)
    except OSError:
        pass  # an optimisation only: a read-only home just means probing again next time
