"""Read a finished output folder and report on it: funnel, samples, score histograms, HTML."""

from __future__ import annotations

import html
import io as _io
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from curate import io

INPUT_CHECKS = ("null_text", "empty_text", "invalid_utf8")


class OutputError(ValueError):
    """The folder is not a readable curate output; the message says which file and why."""


@dataclass(frozen=True)
class StepInfo:
    """One step of the run that wrote the folder, as recorded in run.yaml."""

    sid: str
    use: str
    mode: str
    params: dict[str, Any]

    def threshold(self) -> tuple[str, str, float] | None:
        """(score column, direction, value) of a step whose keep is one declared threshold."""
        spec = calibration_spec(self.use)
        if spec is None:
            return None
        value = self.params.get(spec["param"])
        if value is None:
            return None
        return f"{self.sid}_{spec['score']}", spec["direction"], float(value)

    def limits(self) -> dict[str, list[tuple[str, float]]]:
        """Per score column, every (min|max, value) its step applies: the calibrated threshold,
        and the rule limits of steps that declare them (`threshold_lines()`, the heuristics)."""
        found: dict[str, list[tuple[str, float]]] = {}
        one = self.threshold()
        if one:
            found[one[0]] = [(one[1], one[2])]
        try:
            from curate import plugins

            cls = plugins.load(self.use)
            lines = getattr(cls, "threshold_lines", None)
            if lines is not None:
                instance = cls(cls.Params.model_validate(self.params))
                for metric, limits in instance.threshold_lines().items():
                    found.setdefault(f"{self.sid}_{metric}", []).extend(limits)
        except Exception:  # a plugin that no longer loads still has its scores to show
            pass
        return found


def calibration_spec(use: str) -> dict[str, Any] | None:
    """The plugin's `calibration` ClassVar ({score, param, direction}), or None if undeclared."""
    from curate import plugins

    try:
        cls = plugins.load(use)
    except Exception:  # a plugin that no longer loads still has its scores to show
        return None
    spec = getattr(cls, "calibration", None)
    return dict(spec) if isinstance(spec, dict) else None


@dataclass
class Output:
    """A finished curate output folder: stats.json, run.yaml, data/ and rejected/."""

    root: Path
    stats: dict[str, Any]
    run: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path) -> Output:
        """Read stats.json (required) and run.yaml; errors name the file and what is wrong."""
        root = Path(root)
        if not root.is_dir():
            raise OutputError(f"{root} is not a folder; give the output folder of `curate run`")
        stats_path = root / "stats.json"
        if not stats_path.exists():
            raise OutputError(
                f"{stats_path} does not exist: {root} is not a finished curate output "
                "(a run writes stats.json when it completes; rerun it to finish)"
            )
        try:
            stats = io.read_json(str(stats_path))
        except (ValueError, UnicodeDecodeError) as exc:
            raise OutputError(
                f"{stats_path} is not valid JSON ({exc}); rerun the pipeline"
            ) from exc
        if not (
            isinstance(stats, dict)
            and isinstance(stats.get("steps"), dict)
            and isinstance(stats.get("total"), dict)
            and "documents" in stats["total"]
        ):
            raise OutputError(
                f"{stats_path} lacks the 'steps' and 'total' sections curate writes; rerun it"
            )
        run: dict[str, Any] = {}
        run_path = root / "run.yaml"
        if run_path.exists():
            try:
                run = yaml.safe_load(run_path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise OutputError(f"{run_path}: cannot parse: {exc}") from exc
        return cls(root, stats, run)

    # -- steps
    @cached_property
    def steps(self) -> list[StepInfo]:
        """Steps in pipeline order (run.yaml), falling back to stats.json's order."""
        found = []
        for step in self.run.get("steps") or []:
            sid = step.get("id") or str(step.get("use", "")).rsplit(":", 1)[-1].lower()
            found.append(
                StepInfo(
                    sid, step.get("use", ""), step.get("mode", "filter"), step.get("params") or {}
                )
            )
        known = {s.sid for s in found}
        found += [
            StepInfo(sid, "", "filter", {}) for sid in self.stats["steps"] if sid not in known
        ]
        return found

    def step(self, sid: str) -> StepInfo:
        for s in self.steps:
            if s.sid == sid:
                return s
        raise OutputError(
            f"{self.root} has no step '{sid}' (steps: {', '.join(s.sid for s in self.steps)})"
        )

    def funnel(self) -> dict[str, Any]:
        """stats.json with its steps in pipeline order (stats.json itself sorts them by name)."""
        steps = self.stats["steps"]
        order = [s.sid for s in self.steps if s.sid in steps]
        return {**self.stats, "steps": {sid: steps[sid] for sid in order}}

    def owner(self, column: str) -> str | None:
        """The step a score column belongs to: the longest step id it starts with."""
        best = None
        for s in self.steps:
            if column.startswith(s.sid + "_") and (best is None or len(s.sid) > len(best)):
                best = s.sid
        return best

    def score_columns(self, schema: pa.Schema, sid: str | None = None) -> list[str]:
        """Score columns in a schema (of one step when `sid` is given), in schema order."""
        return [
            f.name
            for f in schema
            if (owner := self.owner(f.name)) is not None and (sid is None or owner == sid)
        ]

    # -- tables
    def _files(self, folder: str) -> list[str]:
        found = io.list_files(str(self.root / folder))
        return [p for p in found if p.endswith((".parquet", ".jsonl", ".jsonl.gz"))]

    def _read(self, folder: str, columns: list[str] | None) -> pa.Table:
        tables = []
        for path in self._files(folder):
            try:
                if path.endswith(".parquet"):
                    names = pq.read_schema(path).names
                    cols = None if columns is None else [c for c in columns if c in names]
                    tables.append(pq.read_table(path, columns=cols))
                else:  # output.format: jsonl
                    tables.append(_read_jsonl(path, columns))
            except (pa.ArrowInvalid, OSError) as exc:
                raise OutputError(f"{path} is not a readable output file: {exc}") from exc
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="default")

    def kept(self, columns: list[str] | None = None) -> pa.Table:
        """Kept rows (data/), optionally only some columns."""
        return self._read("data", columns)

    def rejected(self, columns: list[str] | None = None) -> pa.Table:
        """The rejected ledger (rejected/): id, text, reason and the scores known at the drop."""
        return self._read("rejected", columns)

    def kept_schema(self) -> pa.Schema:
        files = self._files("data")
        if not files:
            return pa.schema([])
        if files[0].endswith(".parquet"):
            return pq.read_schema(files[0])
        return _read_jsonl(files[0], None).schema

    def column_types(self) -> dict[str, pa.DataType]:
        """Every column of data/ and rejected/ with its type, read from the Parquet footers."""
        types: dict[str, pa.DataType] = {}
        for path in self._files("data") + self._files("rejected"):
            for f in pq.read_schema(path):
                types.setdefault(f.name, f.type)
        return types

    def text_column(self) -> str:
        return (self.run.get("input") or {}).get("text_column") or "text"

    def id_column(self) -> str:
        return (self.run.get("input") or {}).get("id_column") or io.DERIVED_ID


def _read_jsonl(path: str, columns: list[str] | None) -> pa.Table:
    shard = io.Shard(0, path, Path(path).name, "jsonl", None)
    batches = list(io.read_unit(io.WorkUnit(0, shard, None, 0), 1 << 16, columns))
    return pa.Table.from_batches(batches) if batches else pa.table({})


# ----------------------------------------------------------------------------- samples
def shorten(text: str | None, width: int = 240) -> str:
    """One line: whitespace collapsed, cut at a word boundary near `width` with an ellipsis."""
    if text is None:
        return ""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= width:
        return flat
    cut = flat.rfind(" ", 0, width)
    cut = cut if cut > width * 0.6 else width
    return flat[:cut].rstrip() + " …"


def sample_rows(table: pa.Table, n: int, seed: int) -> pa.Table:
    """Up to `n` rows chosen with a seeded generator, in their original order."""
    if table.num_rows <= n:
        return table
    picks = np.sort(np.random.default_rng(seed).choice(table.num_rows, n, replace=False))
    return table.take(pa.array(picks))


def sample_files(
    files: list[str], columns: list[str], n: int, seed: int, reason: str | None = None
) -> tuple[pa.Table, int]:
    """`n` seeded rows of some Parquet files (only those whose `reason` matches, if given), and
    how many matched. Only the `reason` column is read everywhere; the other columns (the text)
    only from the row groups holding a chosen row, so memory follows the sample, not the ledger.
    The rows are the ones `sample_rows` would pick from the whole filtered table."""
    where: list[tuple[int, int, np.ndarray]] = []  # (file, row group, matching rows in it)
    for f, path in enumerate(files):
        meta = pq.read_metadata(path)
        if reason is None:
            where += [
                (f, g, np.arange(meta.row_group(g).num_rows)) for g in range(meta.num_row_groups)
            ]
            continue
        pf = pq.ParquetFile(path)
        for g in range(meta.num_row_groups):
            col = pf.read_row_group(g, columns=["reason"]).column("reason")
            hits = np.flatnonzero(pc.fill_null(pc.equal(col, reason), False).to_numpy())
            if len(hits):
                where.append((f, g, hits))
    total = sum(len(h) for _, _, h in where)
    picks = np.arange(total)
    if total > n:
        picks = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    starts = np.cumsum([0] + [len(h) for _, _, h in where])
    parts = []
    for i, (f, g, hits) in enumerate(where):
        mine = picks[(picks >= starts[i]) & (picks < starts[i + 1])] - starts[i]
        if len(mine):
            pf = pq.ParquetFile(files[f])
            cols = [c for c in columns if c in pf.schema_arrow.names]
            parts.append(pf.read_row_group(g, columns=cols).take(pa.array(hits[mine])))
    table = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
    return table, total


def rejected_sample(out: Output, sid: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """N rejected documents of a step (or an input check) with that step's scores."""
    return [_clean(r) for r in _rejected_of(out, sid, n, seed)[0].to_pylist()]


def _rejected_of(out: Output, sid: str, n: int, seed: int) -> tuple[pa.Table, int]:
    if sid not in INPUT_CHECKS:
        out.step(sid)
    files = out._files("rejected")
    if not files:
        return pa.table({}), 0
    schema = pa.unify_schemas([pq.read_schema(p) for p in files], promote_options="permissive")
    cols = ["id", "text"] + ([] if sid in INPUT_CHECKS else out.score_columns(schema, sid))
    return sample_files(files, cols, n, seed, reason=sid)


def kept_sample(out: Output, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """N kept documents with every score column (only the sampled rows' text is read)."""
    schema = out.kept_schema()
    cols = [out.id_column(), out.text_column()] + out.score_columns(schema)
    files = out._files("data")
    if files and all(p.endswith(".parquet") for p in files):
        table, _ = sample_files(files, [c for c in cols if c in schema.names], n, seed)
    else:  # output.format: jsonl has no row groups to skip
        table = sample_rows(out.kept([c for c in cols if c in schema.names]), n, seed)
    return [_clean(r) for r in table.to_pylist()]


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values: NaN becomes None."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


# ----------------------------------------------------------------------------- scores
@dataclass
class Histogram:
    """Counts of one numeric score column over every row that has it, and its threshold."""

    column: str
    step: str
    edges: np.ndarray
    counts: np.ndarray
    rows: int
    missing: int
    thresholds: list[tuple[str, float]] = field(default_factory=list)  # (min|max, value)

    @property
    def threshold(self) -> tuple[str, float] | None:
        """The first limit (a calibratable step has exactly one)."""
        return self.thresholds[0] if self.thresholds else None

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "step": self.step,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "rows": self.rows,
            "missing": self.missing,
            "threshold": None
            if self.threshold is None
            else {"direction": self.threshold[0], "value": self.threshold[1]},
            "thresholds": [{"direction": d, "value": v} for d, v in self.thresholds],
        }


def _numeric(field_type: pa.DataType) -> bool:
    return pa.types.is_integer(field_type) or pa.types.is_floating(field_type)


def score_values(out: Output, columns: list[str]) -> dict[str, np.ndarray]:
    """Every row's value of each score column (kept and rejected), NaN where missing."""
    kept = out.kept(columns)
    rejected = out.rejected(columns)
    values = {}
    for col in columns:
        parts = [
            t.column(col).cast(pa.float64()).to_numpy(zero_copy_only=False)
            for t in (kept, rejected)
            if col in t.schema.names
        ]
        values[col] = np.concatenate(parts) if parts else np.array([], np.float64)
    return values


def histograms(out: Output, step: str | None = None, bins: int = 20) -> list[Histogram]:
    """One histogram per numeric score column, with the step's declared threshold marked."""
    schema = out.kept_schema()
    files = io.list_files(str(out.root / "rejected"), ".parquet")
    fields = {f.name: f.type for f in schema}
    for path in files:
        for f in pq.read_schema(path):
            fields.setdefault(f.name, f.type)
    columns = [
        c for c in out.score_columns(pa.schema(list(fields.items())), step) if _numeric(fields[c])
    ]
    values = score_values(out, columns)
    thresholds: dict[str, list[tuple[str, float]]] = {}
    for s in out.steps:
        thresholds.update(s.limits())
    result = []
    for col in columns:
        v = values[col]
        ok = v[np.isfinite(v)]
        if len(ok):
            lo, hi = float(ok.min()), float(ok.max())
            if pa.types.is_integer(fields[col]) and hi - lo < bins:
                edges = np.arange(lo, hi + 2) - 0.5
            else:
                edges = np.histogram_bin_edges(ok, bins=bins, range=(lo, hi if hi > lo else lo + 1))
            counts, edges = np.histogram(ok, bins=edges)
        else:
            edges, counts = np.array([0.0, 1.0]), np.array([0])
        result.append(
            Histogram(
                col,
                out.owner(col) or "",
                edges,
                counts,
                len(ok),
                len(v) - len(ok),
                thresholds.get(col, []),
            )
        )
    return result


def cluster_sizes(out: Output) -> dict[str, dict[int, int]]:
    """Per dedup step: how many duplicate clusters of each size (from the survivors' sizes)."""
    schema = out.kept_schema()
    found = {}
    for name in schema.names:
        sid = out.owner(name)
        if sid and name == f"{sid}_cluster_size":
            sizes = out.kept([name]).column(name).to_numpy(zero_copy_only=False)
            sizes = sizes[~np.isnan(sizes.astype(float))].astype(np.int64)
            keys, counts = np.unique(sizes[sizes > 1], return_counts=True)
            found[sid] = dict(zip(keys.tolist(), counts.tolist(), strict=True))
    return found


# ----------------------------------------------------------------------------- HTML
def _svg(fig: Any) -> str:
    buf = _io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _plt() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError as exc:
        raise OutputError("the HTML report needs matplotlib: pip install 'curate[report]'") from exc
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, smaller
    import matplotlib.pyplot as plt

    return plt


def funnel_svg(funnel: dict[str, Any]) -> str:
    """A horizontal bar chart of documents kept after each step."""
    plt = _plt()
    names = ["input"] + list(funnel["steps"])
    kept = [funnel["total"]["documents"]] + [st["kept"] for st in funnel["steps"].values()]
    dropped = [0] + [st["dropped"] for st in funnel["steps"].values()]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 0.8))
    y = np.arange(len(names))[::-1]
    ax.barh(y, kept, color="#4c78a8", label="kept")
    ax.barh(y, dropped, left=kept, color="#e45756", label="dropped")
    ax.set_yticks(y, names)
    ax.set_xlabel("documents")
    ax.legend(loc="lower right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def histogram_svg(h: Histogram) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 2.2))
    ax.stairs(h.counts, h.edges, fill=True, color="#4c78a8")
    for i, (direction, value) in enumerate(h.thresholds):
        if i and not h.edges[0] <= value <= h.edges[-1]:
            continue  # a rule limit far outside the data (max_doc_words 100,000) squashes bars
        ax.axvline(value, color="#e45756", linestyle="--", linewidth=1.5)
        ax.text(
            value,
            ax.get_ylim()[1] * 0.95,
            f" {direction} {value:g}",
            color="#e45756",
            fontsize=7,
            va="top",
        )
    ax.set_title(h.column, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _bars_svg(data: dict[int, int], xlabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 2.2))
    ax.bar([str(k) for k in data], list(data.values()), color="#72b7b2")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("clusters", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
td.n{text-align:right}td.doc{min-width:28em}td.scores{white-space:pre-line;font-size:85%}.grid{display:flex;flex-wrap:wrap;gap:8px}
.doc{max-width:640px}details{margin:.4em 0}.muted{color:#777}
"""


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{_cell_class(header[i], i in numeric)}">{html.escape(_fmt(v))}</td>'
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell_class(column: str, numeric: bool) -> str:
    if numeric:
        return "n"
    return {"text": "doc", "scores": "scores"}.get(column, "")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _examples(rows: list[dict[str, Any]], id_col: str, text_col: str) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    header = list(rows[0])
    text_keys = {text_col, "text"}
    lead = [k for k in header if k in text_keys or k in (id_col, "id", "reason")]
    scores = [k for k in header if k not in lead]
    scores.sort(key=lambda k: not k.endswith("_rule"))  # why it was dropped comes first
    if len(scores) <= 3:  # a few scores read best as columns
        shown = [[shorten(r[k], 400) if k in text_keys else r[k] for k in header] for r in rows]
        return _table(header, shown)
    # Many scores (heuristic rules) as one "name = value" cell, so the text keeps its width.
    shown = [
        [shorten(r[k], 400) if k in text_keys else r[k] for k in lead]
        + ["\n".join(f"{k} = {_fmt(r[k])}" for k in scores if r[k] is not None)]
        for r in rows
    ]
    return _table([*lead, "scores"], shown)


def _selection_html(path: Path) -> list[str]:
    """The select.json of a `curate select` output: shares per group, budget, KL."""
    if not path.exists():
        return []
    sel = json.loads(path.read_text(encoding="utf-8"))
    rows = [
        [
            g,
            f"{100 * v['target_share']:.2f}",
            f"{100 * v['pool_share']:.2f}",
            f"{100 * v['share']:.2f}",
            v["selected_tokens"],
            v["rows"],
            v["repeated_rows"],
        ]
        for g, v in sel["groups"].items()
    ]
    header = ["group", "target %", "pool %", "selected %", "tokens", "docs", "repeated"]
    parts = [
        "<h2 id='selection'>Selection</h2>",
        f"<p>{html.escape(str(sel['method']))} by {html.escape(str(sel['score']))}: "
        f"{sel['selected_tokens']:,} tokens for a budget of {sel['budget']:,} "
        f"({sel['budget_error_pct']:+.3f}%).</p>",
        _table(header, rows, set(range(1, len(header)))),
    ]
    if sel.get("kl"):
        kl = sel["kl"]["kl_target_to"]
        parts.append(
            f"<p>KL(target || pool) {kl['pool']:.4f}, selection {kl['selection']:.4f}, "
            f"random selection {kl['random_selection']:.4f}</p>"
        )
    return parts


def render_html(
    out: Output, examples: int = 5, seed: int = 0, sections: list[str] | None = None
) -> str:
    """A self-contained HTML page: funnel, histograms with thresholds, examples, dedup clusters.

    `sections` are extra HTML fragments (e.g. `curate eval`'s agreement with labels), appended.
    """
    funnel = out.funnel()
    total = funnel["total"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>curate report: {html.escape(str(out.root))}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>curate report: {html.escape(str(out.root))}</h1>",
        f"<p id='summary'>kept {total['kept']:,} of {total['documents']:,} documents "
        f"({total['rejected']:,} rejected).</p>",
        "<h2 id='funnel'>Funnel</h2>",
    ]
    rows = []
    with_tokens = any("tokens_in" in st for st in funnel["steps"].values())
    token_keys = ("tokens_in", "tokens_kept", "tokens_dropped") if with_tokens else ()
    for sid, st in funnel["steps"].items():
        pct = 100 * st["dropped"] / st["in"] if st["in"] else 0.0
        rows.append(
            [sid, st["in"], st["kept"], st["dropped"], f"{pct:.1f}", st["seconds"]]
            + [st.get(k, "") for k in token_keys]
        )
    header = ["step", "in", "kept", "dropped", "% dropped", "seconds"]
    header += [k.replace("_", " ") for k in token_keys]
    parts.append(_table(header, rows, set(range(1, len(header)))))
    parts.append(f"<div class='chart' id='funnel-chart'>{funnel_svg(funnel)}</div>")
    parts += _selection_html(out.root / "select.json")

    hists = histograms(out)
    by_step: dict[str, list[Histogram]] = {}
    for h in hists:
        by_step.setdefault(h.step, []).append(h)
    id_col, text_col = out.id_column(), out.text_column()
    kept_rows = kept_sample(out, examples, seed)
    parts.append("<h2 id='steps'>Steps</h2>")
    for step in out.steps:
        st = funnel["steps"].get(step.sid, {})
        parts.append(f"<section class='step' id='step-{html.escape(step.sid)}'>")
        parts.append(
            f"<h3>{html.escape(step.sid)} <span class='muted'>({html.escape(step.use)}, "
            f"{html.escape(step.mode)}; "
            + (
                f"would drop {st['would_drop']:,}"
                if "would_drop" in st
                else f"dropped {st.get('dropped', 0):,}"
            )
            + f" of {st.get('in', 0):,})"
            "</span></h3>"
        )
        if step.sid in by_step:
            parts.append(
                "<div class='grid'>"
                + "".join(histogram_svg(h) for h in by_step[step.sid])
                + "</div>"
            )
        sample, matched = _rejected_of(out, step.sid, examples, seed)
        if matched:
            rej = [_clean(r) for r in sample.to_pylist()]
            parts.append(
                f"<details open><summary>rejected examples ({len(rej):,} of {matched:,})</summary>"
            )
            parts.append(_examples(rej, "id", "text") + "</details>")
        keep_cols = [id_col, text_col] + [
            c for r in kept_rows[:1] for c in r if out.owner(c) == step.sid
        ]
        kept_view = [{k: r.get(k) for k in keep_cols} for r in kept_rows]
        parts.append("<details><summary>kept examples</summary>")
        parts.append(_examples(kept_view, id_col, text_col) + "</details></section>")

    clusters = cluster_sizes(out)
    if clusters:
        parts.append("<h2 id='dedup'>Duplicate clusters</h2>")
        for sid, sizes in clusters.items():
            parts.append(f"<h3>{html.escape(sid)}</h3>")
            if sizes:
                parts.append(_bars_svg(sizes, "cluster size (documents)"))
            parts.append(
                _table(["cluster size", "clusters"], [[k, v] for k, v in sizes.items()], {0, 1})
            )
    parts.extend(sections or [])
    parts.append("</body></html>")
    return "\n".join(parts)
