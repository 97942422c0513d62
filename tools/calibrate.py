"""Score once, threshold later: thresholds that give requested keep rates, as a config patch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import Field, ValidationError

from curate.filter import Filter, Params
from curate_tools.report import Output, OutputError, calibration_spec


@dataclass
class GroupResult:
    """The threshold chosen for one group of rows and what it keeps."""

    group: str | None
    rows: int
    threshold: float | None
    kept: int

    @property
    def keep_rate(self) -> float:
        return self.kept / self.rows if self.rows else 0.0


@dataclass
class Calibration:
    """Thresholds for one step, overall or per value of a `by` column."""

    step: str
    use: str
    score: str
    param: str
    direction: str
    by: str | None
    target: str
    groups: list[GroupResult] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)
    note: str | None = None  # e.g. the step filtered: thresholds over its survivors only

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "score": self.score,
            "param": self.param,
            "direction": self.direction,
            "by": self.by,
            "target": self.target,
            "note": self.note,
            "groups": [
                {
                    "group": g.group,
                    "rows": g.rows,
                    "threshold": g.threshold,
                    "kept": g.kept,
                    "keep_rate": round(g.keep_rate, 6),
                }
                for g in self.groups
            ],
        }


def _build(cls: type, params: dict[str, Any], step: str) -> Filter:
    try:
        return cls(cls.Params.model_validate(params))
    except ValidationError as exc:
        raise OutputError(f"step '{step}': the calibrated params are not valid: {exc}") from exc


def _choose(values: np.ndarray, n_rows: int, keep: float, direction: str) -> float | None:
    """The threshold whose kept count is nearest round(keep * n_rows), ties resolved by count."""
    if len(values) == 0:
        return None
    ordered = np.sort(values)[::-1] if direction == "min" else np.sort(values)
    target = round(keep * n_rows)
    if target >= len(ordered):
        return float(ordered[-1])
    if target <= 0:
        return float(np.nextafter(ordered[0], np.inf if direction == "min" else -np.inf))
    at = float(ordered[target - 1])  # keeps at least `target` (more when values tie)
    past = float(np.nextafter(at, np.inf if direction == "min" else -np.inf))  # keeps fewer
    above = int(np.sum(ordered >= at)) if direction == "min" else int(np.sum(ordered <= at))
    below = int(np.sum(ordered >= past)) if direction == "min" else int(np.sum(ordered <= past))
    return at if abs(above - target) <= abs(target - below) else past


def calibrate(
    out: Output,
    step: str,
    keep: float | None = None,
    percentile: float | None = None,
    by: str | None = None,
) -> Calibration:
    """Thresholds for `step` over the kept rows of an (annotate-mode) output.

    `keep` is the share of rows (of each `by` group) to keep; `percentile` instead puts the
    threshold at that percentile of the step's scores. The rows are those in OUT/data, the rows
    a rerun over OUT/data sees; the step's own `keep()` counts what each threshold keeps.
    """
    from curate import plugins

    if (keep is None) == (percentile is None):
        raise OutputError("give exactly one of --keep and --percentile")
    info = out.step(step)
    spec = calibration_spec(info.use)
    if spec is None:
        raise OutputError(
            f"step '{step}' ({info.use}) does not declare a single threshold, so it cannot be "
            "calibrated; supported: fasttext_quality (min_prob), fasttext_langid (min_score), "
            "perplexity (max_perplexity) and any plugin with a `calibration` ClassVar"
        )
    cls = plugins.load(info.use)
    note = None
    if info.mode == "filter":
        dropped = out.stats.get("steps", {}).get(step, {}).get("dropped", 0)
        note = (
            f"step '{step}' filtered in that run: these thresholds are over the rows it kept "
            f"(the {dropped:,} it dropped are in the ledger, not in data/); run it with "
            "`mode: annotate` to calibrate over every row"
        )
    schema = out.kept_schema()
    metrics = [c for c in out.score_columns(schema, step)]
    score_col = f"{step}_{spec['score']}"
    if score_col not in metrics:
        raise OutputError(
            f"{out.root}/data has no column '{score_col}'; run step '{step}' with "
            "`mode: annotate` so its scores are kept for every row"
        )
    if by is not None and by not in schema.names:
        raise OutputError(
            f"--by {by}: {out.root}/data has no such column (columns: {', '.join(schema.names)})"
        )
    table = out.kept(metrics + ([by] if by else []))
    scores = {c[len(step) + 1 :]: table.column(c).combine_chunks() for c in metrics}
    values = table.column(score_col).cast(pa.float64()).to_numpy(zero_copy_only=False)
    unset = [p for p in spec.get("unset", []) if info.params.get(p) is not None]
    base = {**info.params, **dict.fromkeys(unset)}
    direction, param = spec["direction"], spec["param"]
    finite = np.isfinite(values)
    if not finite.any():
        raise OutputError(f"{out.root}/data: column '{score_col}' has no finite values")
    # Rows the step's other conditions (languages, buckets, NaN) drop whatever the threshold.
    loosest = values[finite].min() if direction == "min" else values[finite].max()
    eligible = (
        np.asarray(
            pc.fill_null(_build(cls, {**base, param: float(loosest)}, step).keep(scores), False)
        )
        & finite
    )
    groups_of = (
        np.asarray(table.column(by).cast(pa.string()).fill_null("(null)").to_pylist(), object)
        if by
        else np.full(table.num_rows, None, object)
    )
    target = f"keep {keep:g}" if keep is not None else f"percentile {percentile:g}"
    result = Calibration(
        step, info.use, score_col, param, direction, by, target, unset=unset, note=note
    )
    for group in sorted(set(groups_of.tolist()), key=lambda g: (g is None, str(g))):
        rows = groups_of == group
        cand = values[rows & eligible]
        if keep is not None:
            threshold = _choose(cand, int(rows.sum()), keep, direction)
        else:
            pool = values[rows & finite]
            threshold = float(np.percentile(pool, percentile)) if len(pool) else None
        if threshold is None:
            kept = 0
        else:
            mask = _build(cls, {**base, param: threshold}, step).keep(scores)
            kept = int(np.sum(np.asarray(pc.fill_null(mask, False)) & rows))
        result.groups.append(GroupResult(group, int(rows.sum()), threshold, kept))
    return result


def patch_for(out: Output, cal: Calibration, output_path: str | None = None) -> dict[str, Any]:
    """A config patch (see curate_tools.patch): rerun over OUT/data with the new thresholds."""
    data_dir = str((out.root / "data").resolve())
    target = output_path or f"{out.root.resolve()}-{cal.step}-calibrated"
    overrides = [
        f"input.path={data_dir}",
        "input.format=parquet",
        f"output.path={target}",
    ]
    add_steps = []
    if cal.by is None:
        overrides.append(f"steps.{cal.step}.params.{cal.param}={cal.groups[0].threshold!r}")
        overrides += [f"steps.{cal.step}.params.{p}=null" for p in cal.unset]
        overrides.append(f"steps.{cal.step}.mode=filter")
    else:
        # One threshold per group cannot live in the step's params: the step stays in
        # annotate mode (its stored scores are reused) and a group_threshold step drops.
        overrides.append(f"steps.{cal.step}.mode=annotate")
        add_steps.append(
            {
                "use": "curate_tools.calibrate:GroupThreshold",
                "id": f"{cal.step}_by_{cal.by}",
                "params": {
                    "score": cal.score,
                    "by": cal.by,
                    "direction": cal.direction,
                    "thresholds": {
                        g.group: g.threshold for g in cal.groups if g.threshold is not None
                    },
                },
            }
        )
    patch: dict[str, Any] = {"set": overrides}
    if add_steps:
        patch["add_steps"] = add_steps
    return patch


def dump_patch(patch: dict[str, Any], cal: Calibration, out: Output) -> str:
    """The patch as commented YAML."""
    head = (
        f"# curate calibrate {out.root} --step {cal.step} ({cal.target}"
        + (f", by {cal.by}" if cal.by else "")
        + ")\n# apply: curate run CONFIG --patch THIS_FILE   (scores are reused, not recomputed)\n"
    )
    return head + yaml.safe_dump(patch, sort_keys=False, allow_unicode=True)


class GroupThreshold(Filter):
    """Thresholds a score column another step wrote, with one threshold per value of a column.

    Written by `curate calibrate --by`: reads `score` and `by` from the batch (a step earlier in
    the pipeline, or the input, holds them) and keeps rows on the right side of their group's
    threshold. Rows of groups without a threshold use `default` (none: kept).
    """

    class Params(Params):
        score: str = Field(description="Score column to threshold, e.g. quality_prob.")
        by: str = Field(description="Column whose value picks the threshold, e.g. lang_lang.")
        direction: str = Field(
            "min", pattern="^(min|max)$", description="min: keep >= threshold; max: keep <=."
        )
        thresholds: dict[str, float] = Field(
            default_factory=dict, description="Threshold per group value."
        )
        default: float | None = Field(
            None, description="Threshold for groups not listed; none keeps them."
        )

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        p = self.params
        for col in (p.score, p.by):
            if col not in batch.schema.names:
                raise KeyError(f"group_threshold needs column '{col}', which the batch lacks")
        groups = batch.column(p.by).cast(pa.string()).fill_null("(null)").combine_chunks()
        keys = pa.array(list(p.thresholds), pa.string())
        vals = pa.array(list(p.thresholds.values()), pa.float64())
        idx = pc.index_in(groups, value_set=keys)
        found = vals.take(idx)
        if p.default is not None:
            found = pc.fill_null(found, p.default)
        value = batch.column(p.score).cast(pa.float64()).combine_chunks()
        return {"value": value, "threshold": found.cast(pa.float64())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        compare = pc.greater_equal if self.params.direction == "min" else pc.less_equal
        passed = compare(scores["value"], scores["threshold"])
        # No threshold for the group: kept; no score: dropped.
        no_rule = pc.is_null(scores["threshold"])
        return pc.fill_null(pc.or_(no_rule, pc.fill_null(passed, False)), False)
