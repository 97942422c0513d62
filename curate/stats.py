"""Merge what the units wrote (their manifests) into stats.json, and render the funnel table."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table
from rich.text import Text

from curate import io

TOKEN_KEYS = ("tokens_in", "tokens_kept", "tokens_dropped")


def add_tokens(
    step_stats: dict[str, Any], kept: pa.Table, dropped: pa.Table, columns: list[str]
) -> None:
    """Add a batch's token sums to a step's stats, once a token count column is there."""
    column = next((c for c in columns if c in kept.schema.names), None)
    if column is None:
        return
    tokens_kept = pc.sum(kept.column(column)).as_py() or 0
    tokens_dropped = pc.sum(dropped.column(column)).as_py() or 0
    for key, value in zip(
        TOKEN_KEYS, (tokens_kept + tokens_dropped, tokens_kept, tokens_dropped), strict=True
    ):
        step_stats[key] = step_stats.get(key, 0) + value


def merge(
    manifests: list[dict[str, Any]],
    step_order: list[str],
    decide: dict[str, dict[str, Any]],
    wall_seconds: float | None = None,
) -> dict[str, Any]:
    """Per-step in/kept/dropped/seconds summed over units; totals from the final segment."""
    steps: dict[str, dict[str, Any]] = {
        sid: {"in": 0, "kept": 0, "dropped": 0, "seconds": 0.0} for sid in step_order
    }
    checks = {"rows": 0, "null_text": 0, "empty_text": 0, "invalid_utf8": 0}
    kept = rejected = units = 0
    for m in manifests:
        if m["segment"] == 0:
            units += 1
            for k in checks:
                checks[k] += m["input"].get(k, 0)
        rejected += m["rejected"]
        if m["final"]:
            kept += m["kept"]
        for sid, st in m["steps"].items():
            agg = steps.setdefault(sid, {"in": 0, "kept": 0, "dropped": 0, "seconds": 0.0})
            for k, v in st.items():
                if k == "reused_scores":
                    agg[k] = True
                elif k == "rules":
                    into = agg.setdefault("rules", {})
                    for rule, n in v.items():
                        into[rule] = into.get(rule, 0) + n
                elif k == "would_drop":
                    agg[k] = agg.get(k, 0) + v
                elif k.startswith("signature_"):
                    agg[k] = agg.get(k, 0) + v
                    if k == "signature_seconds":
                        agg["seconds"] += v
                else:  # in/kept/dropped/seconds, and a mapper's changed/chars_removed
                    agg[k] = agg.get(k, 0) + v
    for sid, info in decide.items():
        steps.setdefault(sid, {"in": 0, "kept": 0, "dropped": 0, "seconds": 0.0})
        steps[sid]["decide_seconds"] = info.get("seconds", 0.0)
        steps[sid]["seconds"] += info.get("seconds", 0.0)
        for k, v in info.items():
            if k != "seconds":
                steps[sid].setdefault("decide", {})[k] = v
    for st in steps.values():
        st["seconds"] = round(st["seconds"], 3)
        if "rules" in st:  # most frequent first, ties by name: the same text on every run
            st["rules"] = dict(sorted(st["rules"].items(), key=lambda kv: (-kv[1], kv[0])))
    total = {
        "documents": checks["rows"],
        "kept": kept,
        "rejected": rejected,
        "units": units,
        "input_checks": {k: v for k, v in checks.items() if k != "rows"},
        "consistent": kept + rejected == checks["rows"],
    }
    counted = [st for sid in step_order if "tokens_in" in (st := steps.get(sid, {}))]
    if counted:  # tokens are known from the first step that had a count column on
        total["tokens"] = {"in": counted[0]["tokens_in"], "kept": counted[-1]["tokens_kept"]}
    if wall_seconds is not None:
        total["wall_seconds"] = round(wall_seconds, 3)
        total["docs_per_second"] = round(checks["rows"] / wall_seconds, 1) if wall_seconds else 0
    return {"total": total, "steps": steps}


def read_manifests(root: str) -> list[dict[str, Any]]:
    return [
        io.read_json(p)
        for p in io.list_files(io.join(root, "_manifest"), ".json")
        if not p.endswith(("/run.json", "/plan.json"))
    ]


def _human(n: int | None) -> str:
    if n is None:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def funnel_table(stats: dict[str, Any], title: str = "curate funnel") -> Table:
    """Per step: documents in, kept, dropped, % dropped, seconds (and tokens, when counted)."""
    table = Table(title=title, title_justify="left")
    with_tokens = any("tokens_in" in st for st in stats["steps"].values())
    columns = ["step", "in", "kept", "dropped", "% dropped", "seconds"]
    if with_tokens:
        columns += ["tokens in", "tokens kept", "tokens dropped"]
    for col in columns:
        table.add_column(col, justify="left" if col == "step" else "right")
    pad = [""] * 3 if with_tokens else []
    total = stats["total"]
    checks = total["input_checks"]
    bad = sum(checks.values())
    docs = total["documents"]
    table.add_row(
        "input checks",
        f"{docs:,}",
        f"{docs - bad:,}",
        f"{bad:,}",
        f"{100 * bad / docs:.1f}" if docs else "-",
        "",
        *pad,
    )
    by_rule: list[str] = []
    for sid, st in stats["steps"].items():
        would = st.get("would_drop")
        dropped = st["dropped"] if would is None else would
        pct = f"{100 * dropped / st['in']:.1f}" if st["in"] else "-"
        label = sid + (" (annotate)" if would is not None else "")
        if "changed" in st:  # a mapper: how many documents it rewrote, and by how much
            label = f"{label} (rewrote {st['changed']:,}, -{st['chars_removed']:,} chars)"
        tokens = [_human(st.get(k)) for k in TOKEN_KEYS] if with_tokens else []
        table.add_row(
            label,
            f"{st['in']:,}",
            f"{st['kept']:,}",
            f"{st['dropped']:,}" if would is None else f"would drop {would:,}",
            pct if would is None else f"({pct})",
            f"{st['seconds']:.2f}",
            *tokens,
        )
        rules = st.get("rules")
        if rules:
            top = sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{rule} {n:,}" for rule, n in top[:4])
            more = f", +{len(top) - 4} more" if len(top) > 4 else ""
            by_rule.append(f"{sid}: {shown}{more}")
    kept = total["kept"]
    table.add_section()
    tok = total.get("tokens", {})
    tokens_total = [_human(tok.get("in")), _human(tok.get("kept")), ""] if with_tokens else []
    table.add_row(
        "total",
        f"{docs:,}",
        f"{kept:,}",
        f"{total['rejected']:,}",
        f"{100 * (docs - kept) / docs:.1f}" if docs else "-",
        f"{total.get('wall_seconds', 0):.2f}",
        *tokens_total,
    )
    if by_rule:
        table.caption = Text(
            "dropped by rule (the first rule each document fails)\n"
            + "\n".join(f"  {line}" for line in by_rule),
            style="dim",
        )
        table.caption_justify = "left"
    return table
