"""The pipeline config: pydantic models, YAML/TOML loading and dotted `--set` overrides."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """A config problem a user can fix; the message names the file and field."""


# A step id names folders (`_sidecar/<id>/`) and columns: never a path.
STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class _Strict(BaseModel):
    # strict: `batch_size: true` or `workers: "2"` are mistakes, not values to coerce.
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=True)


class InputConfig(_Strict):
    path: str | list[str] = Field(
        description="A folder, a glob, a file or a list of them; "
        "local paths or pyarrow.fs URIs (s3://, gs://)."
    )
    format: Literal["auto", "parquet", "jsonl", "csv", "tsv"] = Field(
        "auto",
        description="auto: from the extension (.parquet, .jsonl(.gz), .json, .csv(.gz), "
        ".tsv(.gz)); CSV and TSV need a header row and are read as text columns.",
    )
    text_column: str = Field("text", description="Column holding the document text.")
    id_column: str | None = Field(
        None,
        description="Column holding a unique document id; when unset, an id "
        "'<relative path>#<row>' is derived into the column `curate_id`.",
    )
    require_unique_ids: bool = Field(
        False,
        description="Refuse null or repeated ids in id_column (within a work unit) instead of "
        "counting them in stats.json.",
    )
    batch_size: int = Field(2048, gt=0, description="Rows per record batch streamed through steps.")
    unit_rows: int = Field(
        200_000,
        gt=0,
        description="Most rows per work unit: a shard with more is split into "
        "ranges of row groups so one huge shard still parallelises.",
    )


class OutputConfig(_Strict):
    path: str = Field(description="Output folder (local path or pyarrow.fs URI).")
    compression: str = Field("zstd", description="Parquet compression codec, or none.")
    keep_intermediate: bool = Field(
        False, description="Keep the segment files between global steps."
    )
    format: Literal["parquet", "jsonl", "jsonl.gz"] = Field(
        "parquet",
        description="Format of the kept rows in data/ (the ledger is always Parquet). Reusing "
        "stored scores and `curate calibrate` need Parquet, whose metadata names the scores.",
    )
    ledger_columns: Literal["all", "minimal"] | list[str] = Field(
        "all",
        description="Input columns kept with each rejected row besides id, text, reason and "
        "scores: all (default), minimal (none), or a list of column names.",
    )

    record_changes: bool = Field(
        False, description="Mappers also write the spans they removed: column <step id>_removed."
    )
    row_group_rows: int = Field(
        65_536,
        gt=0,
        description="Most rows per Parquet row group in data/, rejected/ and the sidecars (a "
        "group also closes at 128 MB). A unit with no row to write writes no file.",
    )

    @field_validator("compression")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        allowed = parquet_codecs()
        if value.lower() not in allowed:
            raise ValueError(f"unknown compression '{value}' (use one of {', '.join(allowed)})")
        return value.lower()


def parquet_codecs() -> list[str]:
    """The Parquet codecs this pyarrow build can write, and none."""
    import pyarrow as pa

    return ["none"] + [
        c for c in ("snappy", "gzip", "brotli", "lz4", "zstd") if pa.Codec.is_available(c)
    ]


class RayConfig(_Strict):
    address: str = Field(
        "local", description="local = a fresh embedded Ray; auto or ray://host:port for a cluster."
    )
    workers: int | None = Field(None, gt=0, description="Actors processing units; default: CPUs.")
    gpu_workers: int | None = Field(
        None,
        gt=0,
        description="Actors in each GPU step's own pool; default: the cluster's GPUs / the step's.",
    )


class StorageConfig(_Strict):
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (http://host:port); default: AWS_ENDPOINT_URL or "
        "AWS. Credentials come from the standard AWS_* variables, never from the config.",
    )
    s3_region: str | None = Field(None, description="S3 region; default: AWS_DEFAULT_REGION.")
    retries: int = Field(
        5,
        ge=1,
        description="Attempts per storage read and per work unit when the store answers with a "
        "transient error (503 SlowDown, a timeout, a reset connection); other errors fail at once.",
    )


class StepConfig(_Strict):
    use: str = Field(description="Plugin name (see `curate filters list`) or 'module:Class'.")
    id: str | None = Field(
        None,
        description="Unique step id: prefixes score columns, names the "
        "drop reason. Default: the plugin name.",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["filter", "annotate"] = Field(
        "filter", description="annotate: write the scores, drop nothing."
    )
    resources: dict[str, float] | None = Field(
        None,
        description="Override the plugin's declared resources per worker, e.g. {gpus: 1} for a "
        "small LM on a GPU (it then runs on a pool of GPU actors of its own): keys cpus, gpus, "
        "batch_size (the most rows its score() sees at once).",
    )

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        if value is not None and not STEP_ID.fullmatch(value):
            raise ValueError(
                f"step id {value!r} must be letters, digits, '_' or '-' (it names files and "
                "score columns)"
            )
        return value

    @field_validator("resources")
    @classmethod
    def _known_resources(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        unknown = set(value or {}) - {"cpus", "gpus", "batch_size"}
        if unknown:
            raise ValueError(
                f"unknown resource {', '.join(sorted(unknown))} (use cpus, gpus, batch_size)"
            )
        size = (value or {}).get("batch_size")
        if size is not None and (size < 1 or size != int(size)):
            raise ValueError(f"batch_size must be a whole number of rows, at least 1 (got {size})")
        return value

    @property
    def step_id(self) -> str:
        return self.id or self.use.rsplit(":", 1)[-1].lower()


RESERVED_REASONS = {"null_text", "empty_text", "invalid_utf8"}


class PipelineConfig(_Strict):
    input: InputConfig
    output: OutputConfig
    ray: RayConfig = Field(default_factory=RayConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    executor: Literal["auto", "ray", "local"] = Field(
        "auto",
        description="auto: in process for small plans (up to 50,000 rows, no GPU step, no "
        "--workers or cluster address), Ray otherwise; ray; or local (in process).",
    )
    steps: list[StepConfig] = Field(default_factory=list)

    @field_validator("steps")
    @classmethod
    def _unique_ids(cls, steps: list[StepConfig]) -> list[StepConfig]:
        seen: set[str] = set()
        for i, step in enumerate(steps):
            sid = step.step_id
            if sid in seen:
                raise ValueError(
                    f"step {i} has id '{sid}' which another step already uses; "
                    "give it a unique `id`"
                )
            if not STEP_ID.fullmatch(sid):
                raise ValueError(
                    f"step {i} ('{step.use}') has no usable id; give it an `id` of letters, "
                    "digits, '_' or '-'"
                )
            if sid in RESERVED_REASONS:
                raise ValueError(f"step {i}: id '{sid}' is reserved for input checks")
            seen.add(sid)
        return steps

    def fingerprint(self) -> str:
        """Hash of what decides the output (not how it is executed): guards resume."""
        ident = self.model_dump(
            mode="json", exclude={"ray": True, "executor": True, "storage": True}
        )
        ident["output"].pop("keep_intermediate", None)
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming its dotted path (`steps.2.params.min_prob`)."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + list(e["loc"]))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(
            f"{loc}: {msg}"
            + (
                f" (got {e['input']!r})"
                if e["type"] != "missing" and e["type"] != "extra_forbidden"
                else ""
            )
        )
    return "\n".join(lines)


def read_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or TOML file into a dict."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8"
        ) from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _step_index(steps: list[Any], key: str, path: str) -> int:
    if key.lstrip("-").isdigit():
        idx = int(key)
        if not -len(steps) <= idx < len(steps):
            raise ConfigError(f"--set {path}: there is no step {idx} ({len(steps)} steps)")
        return idx % len(steps)
    for i, step in enumerate(steps):
        if (
            isinstance(step, dict)
            and (step.get("id") or str(step.get("use", "")).rsplit(":", 1)[-1].lower()) == key
        ):
            return i
    raise ConfigError(f"--set {path}: no step has id '{key}'")


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.path=value` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected dotted.path=value")
    path, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"--set {assignment}: the value is not valid YAML ({problem})") from exc
    keys = path.strip().split(".")
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            idx = _step_index(node, key, path) if keys[0] == "steps" else int(key)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise ConfigError(f"--set {path}: '{'.'.join(keys[:depth])}' is not a mapping")


def load(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Read, override and validate a pipeline config (plugin params are checked by the runner)."""
    data = read_file(path) if path is not None else dict(base or {})
    for assignment in overrides or []:
        apply_override(data, assignment)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}invalid config:\n{format_validation_error(exc)}") from exc


def dump_yaml(
    config: PipelineConfig,
    resolved_params: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The config as YAML, with each step's params filled with their defaults when known."""
    data = config.model_dump(mode="json")
    for step in data["steps"]:
        sid = step["id"] or StepConfig.model_validate(step).step_id
        step["id"] = sid
        if resolved_params and sid in resolved_params:
            step["params"] = resolved_params[sid]
    if extra:
        data.update(extra)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
