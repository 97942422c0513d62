"""The config: YAML/TOML, --set overrides by index or id, errors that name the field."""

from __future__ import annotations

import pytest

from curate.config import ConfigError, apply_override, load
from curate.process import bind_steps

YAML = """
input: {path: data/*.parquet}
output: {path: out/v1}
steps:
  - use: "tests.doubles:MinWords"
    id: words
    params: {min_words: 10}
  - use: "tests.doubles:MinWords"
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_and_toml_give_the_same_config(tmp_path):
    toml = """
[input]
path = "data/*.parquet"
[output]
path = "out/v1"
[[steps]]
use = "tests.doubles:MinWords"
id = "words"
params = {min_words = 10}
[[steps]]
use = "tests.doubles:MinWords"
"""
    a = load(write(tmp_path, YAML))
    b = load(write(tmp_path, toml, "p.toml"))
    assert a == b
    assert a.steps[1].step_id == "minwords"


def test_set_addresses_steps_by_id_and_by_index(tmp_path):
    cfg = load(
        write(tmp_path, YAML),
        ["steps.words.params.min_words=80", "steps.1.mode=annotate", "ray.workers=3"],
    )
    assert cfg.steps[0].params["min_words"] == 80
    assert cfg.steps[1].mode == "annotate"
    assert cfg.ray.workers == 3


def test_unknown_key_names_its_path(tmp_path):
    with pytest.raises(ConfigError, match=r"output\.pathh: unknown key"):
        load(write(tmp_path, YAML), ["output.pathh=x"])


def test_unknown_param_names_steps_index_params_field(tmp_path):
    cfg = load(write(tmp_path, YAML), ["steps.words.params.min_wordz=3"])
    with pytest.raises(ConfigError, match=r"steps\.0\.params\.min_wordz: unknown key"):
        bind_steps(cfg)


def test_bad_param_value_names_the_field(tmp_path):
    cfg = load(write(tmp_path, YAML), ["steps.0.params.min_words=lots"])
    with pytest.raises(ConfigError, match=r"steps\.0\.params\.min_words"):
        bind_steps(cfg)


def test_unknown_step_lists_registered_plugins(tmp_path):
    cfg = load(write(tmp_path, YAML), ["steps.0.use=no_such_step"])
    with pytest.raises(ConfigError, match=r"steps\.0\.use: unknown step 'no_such_step'"):
        bind_steps(cfg)


def test_broken_plugin_fails_only_its_pipeline(tmp_path):
    cfg = load(write(tmp_path, YAML), ["steps.0.use=tests.no_such_module:X"])
    with pytest.raises(ConfigError, match="cannot import module 'tests.no_such_module'"):
        bind_steps(cfg)


def test_duplicate_step_ids_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        load(write(tmp_path, YAML), ["steps.1.id=words"])


def test_set_needs_an_assignment():
    with pytest.raises(ConfigError, match="dotted.path=value"):
        apply_override({}, "steps.0")


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="cannot parse"):
        load(write(tmp_path, "input: [unclosed"))


def test_fingerprint_ignores_how_the_run_executes(tmp_path):
    a = load(write(tmp_path, YAML))
    b = load(write(tmp_path, YAML), ["ray.workers=7", "executor=local"])
    c = load(write(tmp_path, YAML), ["steps.words.params.min_words=11"])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_step_resources_override_is_checked(tmp_path):
    from curate.runner import _resource

    cfg_ = load(write(tmp_path, YAML), ["steps.words.resources={gpus: 1}"])
    step = bind_steps(cfg_)[0]
    assert _resource(step, "gpus") == 1.0 and _resource(step, "cpus") == 1.0
    with pytest.raises(ConfigError, match="unknown resource tpus"):
        load(write(tmp_path, YAML), ["steps.words.resources={tpus: 1}"])
