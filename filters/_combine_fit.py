"""Fitting the `learned_quality` combiner on labelled rows of stored scores (scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .learned import FORMAT, KINDS, Combiner, CombinerError, quantile_transform

N_QUANTILES = 101


def _sklearn():
    try:
        import sklearn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CombinerError(
            "`curate train combine` needs scikit-learn: pip install 'curate[learn]'"
        ) from exc
    return sklearn


@dataclass
class CombineSettings:
    """The model and its few knobs; `seed` fixes folds, bootstrap and boosting subsamples."""

    kind: str = "logistic_regression"
    c: float = 0.5  # inverse L2 strength of the logistic regression
    n_estimators: int = 150
    max_depth: int = 2
    learning_rate: float = 0.05
    folds: int = 5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FitReport:
    """Cross-validated agreement of the combiner with the labels, and the fitted model."""

    model: Combiner
    cv_auc: float
    cv_auc_folds: list[float]
    cv_average_precision: float
    oof_prob: np.ndarray = field(repr=False)
    single_auc: dict[str, float] = field(default_factory=dict)


def _prepare(x: np.ndarray) -> tuple[list[float], list[list[float]], np.ndarray]:
    """Median fill values and quantiles per column, and the transformed matrix."""
    fill, quantiles = [], []
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        col = x[:, j]
        finite = col[np.isfinite(col)]
        median = float(np.median(finite)) if len(finite) else 0.0
        col = np.where(np.isfinite(col), col, median)
        q = np.quantile(col, np.linspace(0.0, 1.0, N_QUANTILES))
        fill.append(median)
        quantiles.append([float(v) for v in q])
        out[:, j] = quantile_transform(col, q)
    return fill, quantiles, out


def _estimator(settings: CombineSettings) -> Any:
    _sklearn()
    if settings.kind == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=settings.c, max_iter=5000)
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(
        n_estimators=settings.n_estimators,
        max_depth=settings.max_depth,
        learning_rate=settings.learning_rate,
        subsample=0.8,
        random_state=settings.seed,
    )


def _model_body(est: Any, settings: CombineSettings) -> dict[str, Any]:
    if settings.kind == "logistic_regression":
        return {
            "coef": [float(v) for v in est.coef_[0]],
            "intercept": float(est.intercept_[0]),
        }
    trees = []
    for (reg,) in est.estimators_:
        t = reg.tree_
        trees.append(
            {
                "feature": [int(v) for v in t.feature],
                "threshold": [float(v) for v in t.threshold],
                "left": [int(v) for v in t.children_left],
                "right": [int(v) for v in t.children_right],
                "value": [float(v) for v in t.value[:, 0, 0]],
            }
        )
    # Binary deviance boosting starts from the prior log-odds of the training labels.
    prior = float(est.init_.class_prior_[1])
    init = float(np.log(prior / (1.0 - prior)))
    return {"init": init, "learning_rate": settings.learning_rate, "trees": trees}


def fit_once(
    x: np.ndarray, y: np.ndarray, features: list[str], settings: CombineSettings
) -> Combiner:
    """Fit the transforms and the model on all rows given; no evaluation."""
    fill, quantiles, xt = _prepare(x)
    est = _estimator(settings).fit(xt, y)
    import sklearn

    body = {
        "format": FORMAT,
        "kind": settings.kind,
        "features": list(features),
        "impute": fill,
        "quantiles": quantiles,
        "model": _model_body(est, settings),
        "settings": settings.to_dict(),
        "trained_with": {"scikit-learn": sklearn.__version__},
    }
    return Combiner(body)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    settings: CombineSettings | None = None,
    meta: dict[str, Any] | None = None,
) -> FitReport:
    """Cross-validate (stratified folds; transforms refitted inside each fold), then fit on all.

    `x` holds raw score values (NaN where missing), one column per feature; `y` booleans.
    """
    from curate_tools.evaluate import weighted_auc, weighted_average_precision

    settings = settings or CombineSettings()
    if settings.kind not in KINDS:
        raise CombinerError(f"unknown model kind {settings.kind!r}; choose one of {KINDS}")
    y = np.asarray(y, bool)
    minority = int(min(y.sum(), (~y).sum()))
    if minority < 2:
        raise CombinerError(
            f"the labels need at least 2 rows of each class; found {int(y.sum())} positive and "
            f"{int((~y).sum())} negative"
        )
    _sklearn()
    from sklearn.model_selection import StratifiedKFold

    folds = min(settings.folds, minority)
    oof = np.full(len(y), np.nan)
    aucs = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=settings.seed)
    for train, test in splitter.split(x, y):
        model = fit_once(x[train], y[train], features, settings)
        cols = [x[test, j] for j in range(x.shape[1])]
        oof[test] = model.predict(cols)
        aucs.append(float(weighted_auc(oof[test], y[test], np.ones((1, len(test))))[0]))
    ones = np.ones((1, len(y)))
    final = fit_once(x, y, features, settings)
    cv = {
        "folds": folds,
        "roc_auc_mean": float(np.mean(aucs)),
        "roc_auc_folds": aucs,
        "roc_auc_pooled": float(weighted_auc(oof, y, ones)[0]),
        "average_precision_pooled": float(weighted_average_precision(oof, y, ones)[0]),
    }
    final.body["cv"] = cv
    final.body["labels"] = {"rows": int(len(y)), "positives": int(y.sum()), **(meta or {})}
    single = {}
    for j, name in enumerate(features):
        col = x[:, j]
        ok = np.isfinite(col)
        auc = float(weighted_auc(col[ok], y[ok], np.ones((1, int(ok.sum()))))[0])
        single[name] = max(auc, 1.0 - auc)
    return FitReport(final, cv["roc_auc_mean"], aucs, cv["average_precision_pooled"], oof, single)
