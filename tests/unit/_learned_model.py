"""A tiny combiner for the plugin contract: two feature columns, a model fitted on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curate.testing import CONTRACT_TEXTS


def contract_model(folder: Path) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Params of a saved two-feature model and one value per contract text for each feature."""
    pytest.importorskip("sklearn")
    from curate_filters._combine_fit import CombineSettings, fit_once

    rng = np.random.default_rng(0)
    y = rng.random(60) < 0.5
    x = np.column_stack([y + rng.normal(0, 0.5, 60), rng.integers(0, 40, 60)]).astype(float)
    path = folder / "combine.json"
    fit_once(x, y, ["a_score", "b_count"], CombineSettings()).save(str(path))
    n = len(CONTRACT_TEXTS)
    columns = {"a_score": [float(v) for v in np.linspace(-1, 2, n)],
               "b_count": [int(v) for v in range(n)]}  # fmt: skip
    columns["a_score"][2] = None  # a row an earlier step did not score
    return {"model": str(path), "min_prob": 0.5}, columns
