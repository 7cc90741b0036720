"""scikit-learn estimators around ``lmer`` and ``glmer``: a formula model that cross-validates,
grid-searches and sits in a Pipeline like any regressor or classifier.

``X`` is a DataFrame holding the formula's columns (grouping factors, coordinates, nn
inputs); ``y``, when given, becomes the formula's response. Predictions add the random
effects of the levels seen in training, and 0 for levels that were not (lme4's
``allow.new.levels = TRUE``), which is what a held-out fold of new groups needs. The fitted
lmerpy model is ``model_``: its ``summary()``, ``ranef()`` and ``VarCorr()`` are there.
Needs scikit-learn (``pip install 'lmerpy[sklearn]'``).
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import numpy as np
import pandas as pd

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError as err:  # pragma: no cover - the test environment has scikit-learn
    raise ImportError("lmerpy.estimators needs scikit-learn: pip install 'lmerpy[sklearn]'") \
        from err

from .api import glmer, glmer_nb, lmer
from .engines.family import make_family
from .engines.torch_control import TorchControl
from .errors import DataError, ModelError
from .formula import parse
from .formula.nodes import Name

# The training options an estimator takes as its own parameters (so that GridSearchCV can
# tune them): TorchControl's, less the checkpoint ones (every fold would write the same
# files) and verbose (an estimator's own default is quiet: cross-validation fits many).
# Each defaults to TorchControl's value and is passed to lmer()/glmer() only when set to
# another, so that a formula the exact engine fits never sees a torch option.
_SKIPPED = {"checkpoint_dir", "resume", "verbose"}
TRAINING_OPTIONS = tuple(f.name for f in fields(TorchControl) if f.name not in _SKIPPED)
_DEFAULTS = TorchControl()


def _init_with(*own: tuple[str, object]):
    """An ``__init__`` taking ``formula``, the estimator's ``own`` (name, default) pairs and
    the shared ones, then every training option (each keyword-only, defaulting to
    TorchControl's), and storing each unchanged as an attribute, as scikit-learn requires.
    scikit-learn's get_params and clone read the parameters from ``__init__``'s signature,
    so the signature is built from TRAINING_OPTIONS: the list cannot drift from lmer's."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    shared = (("engine", "auto"), ("control", None), ("modules", None), ("contrasts", None),
              ("allow_new_levels", True), ("re_form", None), ("verbose", False))
    signature = inspect.Signature([
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("formula", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=""),
        *(inspect.Parameter(name, keyword, default=default) for name, default in own + shared),
        *(inspect.Parameter(name, keyword, default=getattr(_DEFAULTS, name))
          for name in TRAINING_OPTIONS)])

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{type(self).__name__}(): {err}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


class _MixedModel(BaseEstimator):
    """What the estimators share: the data frame from X and y, the training options, the
    fitted model and new-level prediction."""

    def _training(self) -> dict:
        """The options set away from TorchControl's defaults; verbose too unless a control
        given says otherwise (the estimator is quiet by default, TorchControl is not)."""
        options = {name: getattr(self, name) for name in TRAINING_OPTIONS
                   if getattr(self, name) != getattr(_DEFAULTS, name)}
        if self.control is None or self.verbose:
            options["verbose"] = self.verbose
        return options

    def _frame(self, X, y=None) -> pd.DataFrame:
        """X as a DataFrame, with y as the formula's response when given."""
        if not isinstance(X, pd.DataFrame):
            raise DataError(f"{type(self).__name__} needs X as a pandas DataFrame holding the "
                            f"formula's columns, not {type(X).__name__} (in a Pipeline, "
                            f"set_output(transform='pandas') keeps column names)")
        if y is None:
            return X
        response = self._response()
        values = np.asarray(y)
        if values.ndim != 1 or len(values) != len(X):
            raise DataError(f"y must be one value per row of X ({len(X)}), not shape "
                            f"{values.shape}")
        return X.assign(**{response: values})

    def _response(self) -> str:
        """The formula's response column (y is stored under it)."""
        response = parse(self.formula).response
        if not isinstance(response, Name):
            raise ModelError(f"fit(X, y) stores y under the formula's response, which must be "
                             f"a column name, not {str(response)!r}; put the response's "
                             f"column in X and call fit(X)")
        return response.id

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) "
                                 f"first")

    def _fit_with(self, fitter, X: pd.DataFrame, data: pd.DataFrame, **arguments):
        """Fit by ``lmer``, ``glmer`` or ``glmer_nb`` (with the shared arguments) and keep
        the model."""
        shared = dict(engine=self.engine, modules=self.modules, contrasts=self.contrasts,
                      **self._training())
        self.model_ = fitter(self.formula, data, control=self.control, data_name="X",
                             **arguments, **shared)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def _predict(self, X, **kind) -> np.ndarray:
        """Predictions of the fitted model (``type="response"``: a GLMM's means), new
        levels contributing 0."""
        self._check_fitted()
        return self.model_.predict(self._frame(X), re_form=self.re_form,
                                   allow_new_levels=self.allow_new_levels, **kind).to_numpy()


class LmerRegressor(RegressorMixin, _MixedModel):
    """``lmer(formula, data)`` as a scikit-learn regressor.

    ``fit(X, y, sample_weight=None)`` fits by ``lmer`` (REML by default, exact for formulas
    without nn() terms, the LMMNN torch engine with them); ``predict(X)`` gives the fitted
    model's predictions, the random effects of seen levels included; ``score`` is R².
    The training options (``lr``, ``batch_size``, ``epochs``, ``seed``, ...) are the
    estimator's parameters; ``control``, ``modules`` and ``contrasts`` (R's coding of the
    fixed effects' factors, e.g. ``{"A": "contr.sum"}``) are passed on as to ``lmer``.
    """

    __init__ = _init_with(("REML", True))

    def fit(self, X, y=None, sample_weight=None) -> LmerRegressor:
        return self._fit_with(lmer, X, self._frame(X, y), REML=self.REML,
                              weights=sample_weight)

    def predict(self, X) -> np.ndarray:
        return self._predict(X)


class GlmerClassifier(ClassifierMixin, _MixedModel):
    """``glmer(formula, data, family="binomial")`` as a scikit-learn binary classifier.

    ``y`` holds two classes (any labels; ``classes_[1]`` is the one modelled as 1);
    ``predict_proba(X)`` gives both classes' probabilities, ``decision_function(X)`` the
    linear predictor, ``predict(X)`` the likelier class. ``link`` is logit, probit or
    cloglog; ``nAGQ`` as in ``glmer``; with nn() terms the torch engine trains (training
    options as for ``LmerRegressor``).
    """

    __init__ = _init_with(("link", "logit"), ("nAGQ", 1))

    def fit(self, X, y=None) -> GlmerClassifier:
        if y is None:
            raise DataError("GlmerClassifier.fit needs y, the class of each row of X")
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise DataError(f"y must be one label per row of X, not shape {labels.shape}")
        if pd.isna(labels).any():
            raise DataError(f"y has {int(pd.isna(labels).sum())} missing label(s); drop "
                            f"those rows first")
        classes = np.unique(labels)
        if len(classes) != 2:
            raise DataError(f"GlmerClassifier fits two classes; y has {len(classes)}: "
                            f"{', '.join(map(str, classes[:5]))}")
        self.classes_ = classes
        return self._fit_with(glmer, X, self._frame(X, (labels == classes[1]).astype(float)),
                              family="binomial", link=self.link, nAGQ=self.nAGQ)

    def decision_function(self, X) -> np.ndarray:
        """The linear predictor η (lme4's ``predict(type = "link")``)."""
        return self._predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """P(classes_[0]) and P(classes_[1]) by row; NaN for rows with missing values."""
        p = self._predict(X, type="response")
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        p = self.predict_proba(X)[:, 1]
        missing = np.flatnonzero(np.isnan(p))
        if len(missing):
            raise DataError(f"{len(missing)} row(s) of X have missing values the model needs "
                            f"(first at position {missing[0]}): no class can be predicted; "
                            f"predict_proba gives NaN for them")
        return self.classes_[(p > 0.5).astype(int)]


class GlmerRegressor(RegressorMixin, _MixedModel):
    """A GLMM regressor for counts or positive values: ``family="poisson"`` (``glmer``),
    ``"negative.binomial"`` (``glmer_nb``, θ estimated), ``"Gamma"`` or
    ``"inverse.gaussian"`` (their dispersion estimated; ``link=`` as R's). ``predict(X)``
    gives the means (lme4's ``predict(type = "response")``); ``score`` is D², the share of
    the family's deviance the model explains (as scikit-learn's PoissonRegressor and
    GammaRegressor score), with the fitted θ for the negative binomial."""

    __init__ = _init_with(("family", "poisson"), ("nAGQ", 1), ("link", None))

    def fit(self, X, y=None, sample_weight=None) -> GlmerRegressor:
        data = self._frame(X, y)
        if self.family == "negative.binomial":
            return self._fit_with(glmer_nb, X, data, nAGQ=self.nAGQ, weights=sample_weight)
        family = make_family(self.family, self.link)  # R's names, or "gamma"
        if family.family not in ("poisson", "Gamma", "inverse.gaussian"):
            raise ModelError(f"GlmerRegressor fits counts or positive values: family "
                             f"'poisson', 'negative.binomial', 'Gamma' or "
                             f"'inverse.gaussian', not {self.family!r}")
        return self._fit_with(glmer, X, data, family=family, nAGQ=self.nAGQ,
                              weights=sample_weight)

    def predict(self, X) -> np.ndarray:
        return self._predict(X, type="response")

    def score(self, X, y, sample_weight=None) -> float:
        y = np.asarray(y, dtype=np.float64)
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, float)
        family = self.model_.family
        deviance = family.dev_resids(y, self.predict(X), w).sum()
        null = family.dev_resids(y, np.full_like(y, np.average(y, weights=w)), w).sum()
        return float(1.0 - deviance / null)


__all__ = ["GlmerClassifier", "GlmerRegressor", "LmerRegressor", "TRAINING_OPTIONS"]
