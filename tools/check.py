"""Data checks for CI: run a seeded sample (or read an output) and assert expectations on it."""

from __future__ import annotations

import json
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curate import io
from curate.config import ConfigError, format_validation_error
from curate_tools.report import Output, OutputError, score_values

TYPE_ALIASES = {
    "float32": "float",
    "float64": "double",
    "str": "string",
    "utf8": "string",
    "large_utf8": "large_string",
    "boolean": "bool",
    "int": "int64",
}
BASELINE_VALUES = 2000


class CheckError(RuntimeError):
    """The check could not run (exit 2): bad expectations, config, input or output folder."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MinDocuments(_Strict):
    input: int | None = Field(None, ge=0, description="Documents read at least.")
    kept: int | None = Field(None, ge=0, description="Documents kept at least.")


class Drift(_Strict):
    baseline: str = Field(description="Baseline JSON, relative to the expectations file.")
    columns: list[str] = Field(description="Score columns compared with the baseline.")
    method: Literal["ks", "psi"] = Field("ks", description="ks: two-sample Kolmogorov-Smirnov.")
    max_statistic: float = Field(
        0.2, gt=0, description="Largest KS statistic (or PSI) that passes."
    )


class Expectations(_Strict):
    """The expectations file (`--expect`): every section is optional."""

    sample: int | None = Field(1000, gt=0, description="Documents sampled from the input.")
    seed: int = Field(0, description="Sampling seed.")
    schema_: dict[str, str | None] = Field(
        default_factory=dict,
        alias="schema",
        description="Columns the kept data must have, with their Arrow type (null: any type).",
    )
    keep_rate: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Per step (or `total`): [low, high] share kept."
    )
    max_duplicate_rate: dict[str, float] = Field(
        default_factory=dict, description="Per dedup step: the largest share it may drop."
    )
    min_documents: MinDocuments | int | None = Field(
        None, description="Kept documents at least, or {input: N, kept: N}."
    )
    drift: Drift | None = None


@dataclass
class Result:
    """One expectation's outcome."""

    name: str
    kind: str
    passed: bool
    observed: str
    expected: str
    message: str = ""
    statistic: float | None = None


@dataclass
class Report:
    """Every expectation's result, and where the checked output is."""

    status: Literal["pass", "fail", "error"]
    results: list[Result] = field(default_factory=list)
    output: str | None = None
    sample: int | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "error": 2}[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "output": self.output,
            "sample": self.sample,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "expectations": [asdict(r) for r in self.results],
        }


def read_expectations(path: str | Path) -> Expectations:
    """Parse and validate an expectations YAML; errors name the file and field."""
    path = Path(path)
    if not path.exists():
        raise CheckError(f"expectations file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CheckError(f"{path}: cannot parse: {exc}") from exc
    try:
        return Expectations.model_validate(data)
    except ValidationError as exc:
        raise CheckError(f"{path}: invalid expectations:\n{format_validation_error(exc)}") from exc


# ----------------------------------------------------------------------------- sampling and run
def sample_input(config: Any, n: int | None, seed: int, dest: Path) -> tuple[Path, int]:
    """A seeded sample of n input rows (all when n is None or larger), as one Parquet file."""
    shards = io.discover(config.input.path, config.input.format, config.output.path)
    tables: dict[int, pa.Table] = {}
    counts = []
    for shard in shards:
        if shard.num_rows is None:  # JSONL: read it (CI samples are small)
            unit = io.WorkUnit(0, shard, None, 0)
            tables[shard.index] = pa.Table.from_batches(list(io.read_unit(unit, 1 << 16)))
            counts.append(tables[shard.index].num_rows)
        else:
            counts.append(shard.num_rows)
    total = int(sum(counts))
    rng = np.random.default_rng(seed)
    picks = (
        np.arange(total)
        if n is None or n >= total
        else np.sort(rng.choice(total, n, replace=False))
    )
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for i, shard in enumerate(shards):
        local = picks[(picks >= starts[i]) & (picks < starts[i + 1])] - starts[i]
        if not len(local):
            continue
        if shard.index in tables:
            parts.append(tables[shard.index].take(pa.array(local)))
            continue
        group_starts = np.concatenate([[0], np.cumsum(shard.row_group_rows)])
        groups = np.unique(np.searchsorted(group_starts, local, side="right") - 1)
        fs, path = io.filesystem(shard.uri)
        table = pq.ParquetFile(fs.open_input_file(path)).read_row_groups(groups.tolist())
        offsets = np.concatenate([[0], np.cumsum([shard.row_group_rows[g] for g in groups])])
        pos = offsets[np.searchsorted(groups, np.searchsorted(group_starts, local, "right") - 1)]
        pos = pos + local - group_starts[np.searchsorted(group_starts, local, "right") - 1]
        parts.append(table.take(pa.array(pos)))
    if not parts:
        raise CheckError(f"input {config.input.path} holds no rows to sample")
    sample = pa.concat_tables(parts, promote_options="default")
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(sample, dest)
    return dest, sample.num_rows


def run_sample(
    config_path: Path, expect: Expectations, sample: int | None, workdir: Path
) -> tuple[Output, int]:
    """Run the pipeline in process over a seeded sample of its input; returns the output."""
    from curate import config as cfg
    from curate import runner
    from curate.io import InputError
    from curate.plugins import PluginError
    from curate.process import StepError

    try:
        config = cfg.load(config_path)
        n = sample if sample is not None else expect.sample
        data, rows = sample_input(config, n, expect.seed, workdir / "sample" / "sample.parquet")
        config = config.model_copy(deep=True)
        config.input.path = str(data)
        config.input.format = "parquet"
        config.output.path = str(workdir / "out")
        config.executor = "local"
        runner.run(config, overwrite=True, progress="quiet")
    except (ConfigError, InputError, PluginError, StepError, runner.RunError) as exc:
        raise CheckError(str(exc)) from exc
    return Output.open(workdir / "out"), rows


# ----------------------------------------------------------------------------- expectations
def _rate(x: float) -> str:
    return f"{x:.3f}"


def check_schema(out: Output, wanted: dict[str, str | None]) -> list[Result]:
    schema = out.kept_schema()
    types = {f.name: str(f.type) for f in schema}
    # A unit that keeps nothing writes no data file: with none kept at all, there is no schema.
    nothing_kept = not out.stats["total"].get("kept") and not schema.names
    results = []
    for col, typ in wanted.items():
        want = TYPE_ALIASES.get(typ, typ) if typ else None
        got = types.get(col)
        ok = got is not None and (want is None or got == want)
        results.append(
            Result(
                f"schema[{col}]",
                "schema",
                ok,
                got or "missing",
                want or "any type",
                ""
                if ok
                else (
                    f"column '{col}' cannot be checked: no document was kept (data/ holds no file)"
                    if nothing_kept
                    else f"column '{col}' is missing from the kept data"
                    if got is None
                    else f"column '{col}' has type {got}, expected {want}"
                ),
            )
        )
    return results


def check_keep_rates(out: Output, bands: dict[str, tuple[float, float]]) -> list[Result]:
    steps, total = out.stats["steps"], out.stats["total"]
    results = []
    for sid, (lo, hi) in bands.items():
        if sid == "total":
            n, kept = total["documents"], total["kept"]
        elif sid in steps:
            n, kept = steps[sid]["in"], steps[sid]["kept"]
        else:
            results.append(
                Result(
                    f"keep_rate[{sid}]",
                    "keep_rate",
                    False,
                    "no such step",
                    f"[{lo}, {hi}]",
                    f"the run has no step '{sid}' (steps: {', '.join(steps)})",
                )
            )
            continue
        rate = kept / n if n else 0.0
        ok = lo <= rate <= hi
        results.append(
            Result(
                f"keep_rate[{sid}]",
                "keep_rate",
                ok,
                f"{_rate(rate)} ({kept:,}/{n:,})",
                f"[{lo}, {hi}]",
                "" if ok else f"step '{sid}' kept {_rate(rate)} of its input, outside [{lo}, {hi}]",
                rate,
            )
        )
    return results


def check_duplicates(out: Output, ceilings: dict[str, float]) -> list[Result]:
    steps = out.stats["steps"]
    results = []
    for sid, ceiling in ceilings.items():
        if sid not in steps:
            results.append(
                Result(
                    f"max_duplicate_rate[{sid}]",
                    "max_duplicate_rate",
                    False,
                    "no such step",
                    f"<= {ceiling}",
                    f"the run has no step '{sid}'",
                )
            )
            continue
        st = steps[sid]
        rate = st["dropped"] / st["in"] if st["in"] else 0.0
        ok = rate <= ceiling
        results.append(
            Result(
                f"max_duplicate_rate[{sid}]",
                "max_duplicate_rate",
                ok,
                f"{_rate(rate)} ({st['dropped']:,}/{st['in']:,})",
                f"<= {ceiling}",
                "" if ok else f"step '{sid}' removed {_rate(rate)} as duplicates, above {ceiling}",
                rate,
            )
        )
    return results


def check_min_documents(out: Output, minimum: MinDocuments | int) -> list[Result]:
    if isinstance(minimum, int):
        minimum = MinDocuments(kept=minimum)
    total = out.stats["total"]
    results = []
    for what, need, got in (
        ("input", minimum.input, total["documents"]),
        ("kept", minimum.kept, total["kept"]),
    ):
        if need is None:
            continue
        ok = got >= need
        results.append(
            Result(
                f"min_documents[{what}]",
                "min_documents",
                ok,
                f"{got:,}",
                f">= {need:,}",
                "" if ok else f"only {got:,} documents {what}, fewer than {need:,}",
            )
        )
    return results


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def psi(baseline: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index over the baseline's deciles (0.1 small, 0.25 large shift)."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([baseline.min() - 0.5, baseline.max() + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    b = np.histogram(baseline, edges)[0] / len(baseline)
    c = np.histogram(current, edges)[0] / len(current)
    b, c = np.clip(b, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - b) * np.log(c / b)))


def baseline_values(out: Output, columns: list[str]) -> dict[str, Any]:
    """What `--write-baseline` stores: up to BASELINE_VALUES sorted values per column."""
    values = score_values(out, columns)
    stored = {}
    for col in columns:
        v = np.sort(_finite(values[col]))
        if len(v) > BASELINE_VALUES:
            v = v[np.linspace(0, len(v) - 1, BASELINE_VALUES).round().astype(int)]
        stored[col] = {
            "rows": int(np.isfinite(values[col]).sum()),
            "values": [float(f"{x:.7g}") for x in v.tolist()],
        }
    return {"format": "curate-check-baseline/1", "columns": stored}


def check_drift(out: Output, drift: Drift, base_dir: Path) -> list[Result]:
    from scipy.stats import ks_2samp

    path = base_dir / drift.baseline
    if not path.exists():
        raise CheckError(
            f"drift baseline {path} does not exist; create it from a good run with "
            "`curate check CONFIG --expect FILE --write-baseline`"
        )
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))["columns"]
    except (ValueError, KeyError) as exc:
        raise CheckError(f"{path} is not a curate check baseline: {exc}") from exc
    values = score_values(out, drift.columns)
    results = []
    for col in drift.columns:
        name = f"drift[{col}]"
        current = _finite(values[col])
        if col not in stored:
            results.append(
                Result(
                    name,
                    "drift",
                    False,
                    "not in baseline",
                    "",
                    f"{path} has no column '{col}'; rewrite it with --write-baseline",
                )
            )
            continue
        base = np.asarray(stored[col]["values"], np.float64)
        if not len(current) or not len(base):
            results.append(
                Result(
                    name,
                    "drift",
                    False,
                    "no values",
                    "",
                    f"column '{col}' has no values "
                    "in the " + ("output" if not len(current) else "baseline"),
                )
            )
            continue
        if drift.method == "ks":
            test = ks_2samp(base, current, method="asymp")
            stat = float(test.statistic)
            observed = f"KS {stat:.3f} (p={float(test.pvalue):.3g}, n={len(current):,})"
        else:
            stat = psi(base, current)
            observed = f"PSI {stat:.3f} (n={len(current):,})"
        ok = stat <= drift.max_statistic
        results.append(
            Result(
                name,
                "drift",
                ok,
                observed,
                f"<= {drift.max_statistic}",
                ""
                if ok
                else f"'{col}' drifted from the baseline: {drift.method.upper()} "
                f"{stat:.3f} > {drift.max_statistic}",
                stat,
            )
        )
    return results


def evaluate(out: Output, expect: Expectations, base_dir: Path) -> list[Result]:
    """Every expectation in the file, in a fixed order."""
    results = check_schema(out, expect.schema_)
    results += check_keep_rates(out, expect.keep_rate)
    results += check_duplicates(out, expect.max_duplicate_rate)
    if expect.min_documents is not None:
        results += check_min_documents(out, expect.min_documents)
    if expect.drift is not None:
        results += check_drift(out, expect.drift, base_dir)
    return results


def check(
    target: Path,
    expect_path: Path,
    sample: int | None = None,
    workdir: Path | None = None,
    write_baseline: bool = False,
) -> Report:
    """Run (a CONFIG file) or read (an output folder) and evaluate the expectations."""
    started = time.perf_counter()
    report = Report("error")
    try:
        expect = read_expectations(expect_path)
        with tempfile.TemporaryDirectory(prefix="curate-check-") as tmp:
            if target.is_dir():
                out, rows = Output.open(target), None
            else:
                out, rows = run_sample(target, expect, sample, workdir or Path(tmp))
            report.output, report.sample = str(out.root), rows
            if write_baseline:
                if expect.drift is None:
                    raise CheckError(f"{expect_path} has no `drift` section naming the columns")
                dest = expect_path.parent / expect.drift.baseline
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(json.dumps(baseline_values(out, expect.drift.columns)))
            report.results = evaluate(out, expect, expect_path.parent)
        report.status = "pass" if all(r.passed for r in report.results) else "fail"
    except (CheckError, OutputError) as exc:
        report.error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(value: object) -> str:
    """Text XML 1.0 can hold: the control characters it forbids become U+FFFD."""
    return _XML_FORBIDDEN.sub("\ufffd", str(value))


def junit_xml(report: Report, suite: str = "curate check") -> str:
    """JUnit XML: one testcase per expectation; an <error> case when the check could not run."""
    failures = sum(not r.passed for r in report.results)
    errors = 1 if report.status == "error" else 0
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(report.results) + errors),
        failures=str(failures),
        errors=str(errors),
        time=f"{report.seconds:.3f}",
    )
    x = _xml_text
    for r in report.results:
        case = ET.SubElement(ts, "testcase", classname=f"curate.check.{x(r.kind)}", name=x(r.name))
        if not r.passed:
            fail = ET.SubElement(case, "failure", message=x(r.message), type="ExpectationFailed")
            fail.text = x(f"{r.name}: observed {r.observed}, expected {r.expected}")
        out = ET.SubElement(case, "system-out")
        out.text = x(f"observed {r.observed}; expected {r.expected}")
    if errors:
        case = ET.SubElement(ts, "testcase", classname="curate_tools.check", name="run")
        err = ET.SubElement(case, "error", message=x(report.error or ""), type="CheckError")
        err.text = x(report.error or "")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
