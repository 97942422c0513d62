"""`curate select`: plan the cuts, run them as a normal curate output, report what they chose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml
from rich.console import Console

from curate import io
from curate.config import PipelineConfig
from curate_filters._ngrams import feature_counts, kl_divergence
from curate_filters.select import repeats, selection_keys
from curate_tools.report import Output, OutputError
from curate_tools.selection import Columns, GroupPlan, SelectError, plan, selected_task

SELECT_STEP = "curate_filters.select:Select"
TOKENS_USES = ("tokens", "curate_filters.tokens:Tokens")
DSIR_USES = ("dsir", "curate_filters.dsir:DSIR")


@dataclass
class Request:
    """What the user asked `curate select` for."""

    source: str
    output: str
    budget: int
    mix: dict[str, float] | None = None
    by: str | None = None
    method: str = "gumbel"
    score: str | None = None
    lowest: bool = False
    seed: int = 0
    max_repeat: int = 4
    tokens: str | None = None
    target: str | None = None
    report: bool = True
    executor: str = "ray"
    workers: int | None = None
    ray_address: str = "local"


def read_mix(spec: str) -> dict[str, float]:
    """A mix from a YAML file ({group: share}) or inline 'wiki=0.2,web=0.8'; shares sum to 1."""
    if "=" in spec and not Path(spec).exists():
        pairs = [p.partition("=") for p in spec.split(",") if p.strip()]
        raw: Any = {k.strip(): v.strip() for k, _, v in pairs}
    else:
        try:
            raw = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SelectError(f"--mix {spec}: cannot read it ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise SelectError(f"--mix {spec}: expected a mapping of group to share, e.g. wiki: 0.2")
    try:
        mix = {str(k): float(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        raise SelectError(f"--mix {spec}: every share must be a number") from None
    if any(v < 0 for v in mix.values()) or abs(sum(mix.values()) - 1.0) > 1e-6:
        raise SelectError(
            f"--mix {spec}: shares must be >= 0 and sum to 1 (they sum to {sum(mix.values()):g})"
        )
    return mix


def _columns(source: Output, req: Request, schema_names: list[str]) -> Columns:
    """Resolve the token, score, id and group columns, with errors that say what to pass."""
    tokens = req.tokens or next(
        (
            f"{s.sid}_count"
            for s in source.steps
            if s.use in TOKENS_USES and f"{s.sid}_count" in schema_names
        ),
        None,
    )
    if tokens is None:
        raise SelectError(
            f"{source.root} has no token counts: add a `tokens` step to its pipeline or pass "
            "--tokens COLUMN"
        )
    score = req.score
    if score is None and req.method != "random":
        score = next(
            (
                f"{s.sid}_log_weight"
                for s in source.steps
                if s.use in DSIR_USES and f"{s.sid}_log_weight" in schema_names
            ),
            None,
        )
        if score is None:
            raise SelectError(
                f"--method {req.method} needs --score COLUMN ({source.root} has no dsir step)"
            )
    for what, col in (("--tokens", tokens), ("--score", score), ("--by", req.by)):
        if col is not None and col not in schema_names:
            raise SelectError(
                f"{what} {col}: no such column in {source.root}/data "
                f"(columns: {', '.join(schema_names)})"
            )
    return Columns(
        id=source.id_column(),
        tokens=tokens,
        method=req.method,  # type: ignore[arg-type]
        score=score,
        by=req.by,
        seed=req.seed,
        lowest=req.lowest,
    )


def _executor(config: PipelineConfig):
    from curate import runner

    if config.executor == "local":
        return runner.LocalExecutor(config, [], {})
    return runner.RayExecutor(config, [], {}, {})


def _config(req: Request, source: Output, params: dict[str, Any] | None) -> PipelineConfig:
    data = {
        "input": {
            "path": str(source.root / "data"),
            "format": "parquet",
            "text_column": source.text_column(),
            "id_column": source.id_column(),
        },
        "output": {"path": req.output},
        "executor": req.executor,
        "ray": {"address": req.ray_address, "workers": req.workers},
        "steps": [{"use": SELECT_STEP, "id": "select", "params": params}] if params else [],
    }
    return PipelineConfig.model_validate(data)


def select(req: Request, console: Console, overwrite: bool = False, progress: str = "auto"):
    """Plan, run and report a selection; returns the report written to OUT/select.json."""
    from curate import runner

    try:
        source = Output.open(req.source)
    except OutputError as exc:
        raise SelectError(str(exc)) from None
    files = io.list_files(str(source.root / "data"), ".parquet")
    if not files:
        raise SelectError(f"{source.root}/data holds no Parquet files to select from")
    cols = _columns(source, req, pq.read_schema(files[0]).names)
    planning = _config(req, source, None)
    executor = _executor(planning)
    try:
        plans, pool = plan(files, cols, req.budget, req.mix, req.max_repeat, executor.parallel_map)
        features = None
        if req.report:
            rand = Columns(**{**cols.__dict__, "method": "random", "score": None})
            random_plans, _ = plan(
                files, rand, req.budget, req.mix, req.max_repeat, executor.parallel_map
            )
            features = _features(req, files, cols, plans, rand, random_plans, source, executor)
    finally:
        executor.close()
    params = {
        "method": cols.method,
        "score": cols.score,
        "lowest": cols.lowest,
        "id_column": cols.id,
        "tokens": cols.tokens,
        "by": cols.by,
        "seed": cols.seed,
        "cuts": {g: p.cut.model_dump() for g, p in plans.items()},
    }
    result = runner.run(
        _config(req, source, params), overwrite=overwrite, progress=progress, console=console
    )
    report = _report(req, cols, plans, pool, features, result.output)
    io.write_json_atomic(io.join(result.output, "select.json"), report)
    return report, result


def _features_task(item: tuple[str, Columns, dict, Columns, dict, str, int]) -> np.ndarray:
    """Feature counts of one file: (pool, selection, random selection), repeats as weights."""
    path, cols, cuts, rand, random_cuts, text_column, buckets = item
    table = cols.read(path, (text_column,))
    key, tie = selection_keys(table, cols.method, cols.score, cols.id, cols.seed, cols.lowest)
    chosen = repeats(table, cuts, cols.by, key, tie)
    rkey, rtie = selection_keys(table, "random", None, rand.id, rand.seed, False)
    random_chosen = repeats(table, random_cuts, rand.by, rkey, rtie)
    out = np.zeros((3, buckets))
    text = table.column(text_column)
    for lo in range(0, table.num_rows, 4096):
        part = text.slice(lo, 4096)
        rows = slice(lo, lo + 4096)
        out[0] += feature_counts(part, buckets)
        out[1] += feature_counts(part, buckets, chosen[rows])
        out[2] += feature_counts(part, buckets, random_chosen[rows])
    return out


def _target_spec(req: Request, source: Output) -> tuple[str, str, int] | None:
    """(target path, text column, buckets): --target, else the source's dsir step's target."""
    dsir = next((s for s in source.steps if s.use in DSIR_USES), None)
    params = dsir.params if dsir else {}
    path = req.target or params.get("target")
    if not path:
        return None
    return path, params.get("target_text_column", "text"), int(params.get("num_buckets", 10_000))


def _features(
    req: Request, files, cols, plans, rand, random_plans, source: Output, executor
) -> dict[str, Any] | None:
    from curate_filters.dsir import sample_text

    spec = _target_spec(req, source)
    if spec is None:
        return None
    path, text_column, buckets = spec
    cuts = {g: p.cut for g, p in plans.items()}
    random_cuts = {g: p.cut for g, p in random_plans.items()}
    items = [(f, cols, cuts, rand, random_cuts, source.text_column(), buckets) for f in files]
    counts = sum(executor.parallel_map(_features_task, items))
    target = feature_counts(sample_text(path, text_column, 100_000, 0), buckets)
    kl = {
        name: kl_divergence(target, counts[i])
        for i, name in enumerate(("pool", "selection", "random_selection"))
    }
    return {
        "target": path,
        "num_buckets": buckets,
        "kl_target_to": {k: round(v, 5) for k, v in kl.items()},
        "kl_reduction": {
            "selection": round(kl["pool"] - kl["selection"], 5),
            "random_selection": round(kl["pool"] - kl["random_selection"], 5),
        },
        "random_tokens": int(sum(p.planned for p in random_plans.values())),
    }


def _report(
    req: Request,
    cols: Columns,
    plans: dict[str, GroupPlan],
    pool: dict[str, list[int]],
    features: dict[str, Any] | None,
    output: str,
) -> dict[str, Any]:
    """Budget, per-group shares before and after (measured on what was written), KL."""
    files = io.list_files(io.join(output, "data"), ".parquet")
    chosen: dict[str, list[int]] = {}
    for path in files:
        for g, (t, n, rep) in selected_task((path, cols, "select_repeat")).items():
            acc = chosen.setdefault(g, [0, 0, 0])
            acc[0] += t
            acc[1] += n
            acc[2] += rep
    selected = sum(v[0] for v in chosen.values())
    pool_total = sum(t for t, _ in pool.values())
    groups = {}
    for g in sorted(set(pool) | set(plans)):
        gp = plans.get(g)
        got = chosen.get(g, [0, 0, 0])
        groups[g] = {
            "target_share": round(gp.share, 6) if gp else 0.0,
            "pool_tokens": pool.get(g, [0, 0])[0],
            "pool_share": round(pool.get(g, [0, 0])[0] / pool_total, 6),
            "selected_tokens": got[0],
            "share": round(got[0] / selected, 6) if selected else 0.0,
            "rows": got[1],
            "repeated_rows": got[2],
            "short": bool(gp.short) if gp else False,
        }
    return {
        "budget": req.budget,
        "selected_tokens": selected,
        "budget_error_pct": round(100 * (selected - req.budget) / req.budget, 4),
        "method": cols.method,
        "score": cols.score,
        "by": cols.by,
        "seed": cols.seed,
        "max_repeat": req.max_repeat,
        "tokens_column": cols.tokens,
        "groups": groups,
        "kl": features,
    }
