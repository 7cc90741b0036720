"""lmerpy.estimators: lmer and glmer as scikit-learn estimators, checked against lme4's
numbers (tests/reference/) and against the same fits made directly."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lmerpy as lp
from lmerpy.estimators import TRAINING_OPTIONS, GlmerClassifier, LmerRegressor
from tests.conftest import read_reference, reference_data

FITS = read_reference("lme4_fits.json")["fits"]
GLMER = read_reference("lme4_glmer.json")["fits"]
SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture
def sleep():
    return lp.datasets.load("sleepstudy")


def test_regressor_is_lme4s_fit(sleep):
    """fit(X, y) stores y as the response and fits lmer's REML: lme4's estimates; predict
    on the training rows is lme4's fitted(); score is R² of those."""
    ref = FITS["sleep_reml"]
    X, y = sleep.drop(columns="Reaction"), sleep.Reaction
    est = LmerRegressor(SLEEP).fit(X, y)
    m = est.model_
    np.testing.assert_allclose(m.fixef().to_numpy(), list(ref["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-4)
    pred = est.predict(X)
    np.testing.assert_allclose(pred[:10], ref["fitted_head"], rtol=1e-6)
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    assert est.score(X, y) == pytest.approx(r2, rel=1e-12)
    assert list(est.feature_names_in_) == list(X.columns) and est.n_features_in_ == 2
    assert is_regressor(est) and not is_classifier(est)
    # the response may also stay in X
    again = LmerRegressor(SLEEP).fit(sleep)
    np.testing.assert_array_equal(again.predict(X), pred)


def test_sample_weight_is_lmers_weights():
    ref = FITS["sleep_weights"]
    data = reference_data("sleep_w")
    est = LmerRegressor(SLEEP).fit(data.drop(columns="Reaction"), data.Reaction,
                                   sample_weight=data.w.to_numpy())
    np.testing.assert_allclose(est.model_.fixef().to_numpy(), list(ref["fixef"].values()),
                               rtol=1e-5)
    assert est.model_.REMLcrit() == pytest.approx(ref["REMLcrit"], rel=1e-6)


def test_contrasts_code_the_factors_as_rs_contrasts_argument():
    """contrasts= reaches lmer: R's sum and Helmert coding (lme4_contrasts.R), its fixef and
    its predictions for new rows; clone keeps it, so a grid search can compare codings."""
    ref = read_reference("lme4_contrasts.json")
    data = pd.DataFrame(ref["data"]).assign(g=lambda d: d.g.astype(str))
    est = LmerRegressor("y ~ A * x + B + (1 | g)",
                        contrasts={"A": "contr.sum", "B": "contr.helmert"})
    est.fit(data.drop(columns="y"), data.y)
    sums = ref["sum_helmert"]
    assert list(est.model_.fixef().index) == sums["fixef_names"]
    np.testing.assert_allclose(est.model_.fixef().to_numpy(), sums["fixef"], rtol=1e-6)
    np.testing.assert_allclose(est.predict(pd.DataFrame(ref["newdata"])), sums["predict"],
                               rtol=1e-6)
    assert clone(est).get_params()["contrasts"] == {"A": "contr.sum", "B": "contr.helmert"}
    treatment = LmerRegressor("y ~ A * x + B + (1 | g)").fit(data.drop(columns="y"), data.y)
    assert treatment.model_.logLik() == pytest.approx(ref["treatment"]["logLik"], abs=1e-6)


def test_cross_validation_by_subject_predicts_new_subjects_by_the_fixed_part(sleep):
    """GroupKFold holds out whole subjects: their random effects are unseen, so each fold's
    predictions are X β̂ of the fold's fit (allow_new_levels); cross_val_score's R² equals
    the same loop written out with lmer."""
    X, y, groups = sleep.drop(columns="Reaction"), sleep.Reaction, sleep.Subject
    cv = GroupKFold(n_splits=3)
    scores = cross_val_score(LmerRegressor(SLEEP), X, y, groups=groups, cv=cv)
    expected = []
    for train, test in cv.split(X, y, groups):
        m = lp.lmer(SLEEP, sleep.iloc[train])
        beta = m.fixef().to_numpy()
        pred = beta[0] + beta[1] * sleep.Days.iloc[test].to_numpy()
        yt = y.iloc[test].to_numpy()
        expected.append(1 - np.sum((yt - pred) ** 2) / np.sum((yt - yt.mean()) ** 2))
    np.testing.assert_allclose(scores, expected, rtol=1e-10)
    with pytest.raises(lp.DataError, match="new level"):
        train, test = next(cv.split(X, y, groups))
        LmerRegressor(SLEEP, allow_new_levels=False).fit(X.iloc[train], y.iloc[train]) \
            .predict(X.iloc[test])


def test_grid_search_tunes_a_torch_option_and_runs_in_a_pipeline():
    """A seeded torch fit is reproducible, so GridSearchCV's refit on all rows is the fit
    made directly with the best option; in a Pipeline a transformer's pandas output feeds
    the formula's columns."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(rng.uniform(-1, 1, (n, 2)), columns=["x1", "x2"])
    X["g"] = rng.integers(0, 8, n).astype(str)
    b = rng.normal(size=8)
    y = np.sin(2 * X.x1) + X.x2 ** 2 + b[X.g.astype(int)] + 0.3 * rng.normal(size=n)
    formula = "y ~ nn(x1 + x2, hidden=(8,)) + (1 | g)"
    base = LmerRegressor(formula, seed=0, epochs=6, patience=0, batch_size=50,
                         refine=False, backfit=False)
    search = GridSearchCV(base, {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.best_params_["lr"] in (1e-3, 1e-2)
    direct = lp.lmer(formula, X.assign(y=y), seed=0, epochs=6, patience=0, batch_size=50,
                     refine=False, backfit=False, verbose=False, lr=search.best_params_["lr"])
    np.testing.assert_array_equal(search.best_estimator_.predict(X),
                                  direct.predict(X, allow_new_levels=True).to_numpy())
    scale = ColumnTransformer([("s", StandardScaler(), ["x1", "x2"])],
                              remainder="passthrough", verbose_feature_names_out=False)
    pipe = make_pipeline(scale.set_output(transform="pandas"), clone(base)).fit(X, y)
    Xs = X.assign(x1=(X.x1 - X.x1.mean()) / X.x1.std(ddof=0),
                  x2=(X.x2 - X.x2.mean()) / X.x2.std(ddof=0))
    alone = clone(base).fit(Xs, y)
    np.testing.assert_allclose(pipe.predict(X), alone.predict(Xs), rtol=1e-6, atol=1e-6)


def test_classifier_is_glmers_binomial_fit():
    """Any two labels: classes_[1] is modelled as 1; lme4's estimates and fitted
    probabilities for y ~ t + (t | subject); decision_function is the link."""
    ref = GLMER["binary_slope"]
    data = reference_data("sim_binary")
    labels = np.where(data.y == 1, "yes", "no")
    X = data.drop(columns="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = GlmerClassifier("y ~ t + (t | subject)").fit(X, labels)
    assert list(est.classes_) == ["no", "yes"] and is_classifier(est)
    np.testing.assert_allclose(est.model_.fixef().to_numpy(), ref["fixef"], rtol=1e-3)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], ref["fitted"], atol=2e-3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(est.decision_function(X), ref["eta"], atol=1e-2)
    np.testing.assert_array_equal(est.predict(X), np.where(proba[:, 1] > 0.5, "yes", "no"))
    assert est.score(X, labels) == pytest.approx(np.mean(est.predict(X) == labels))
    # a row with a missing value: no class, a NaN probability
    holes = X.head(3).copy()
    holes.loc[holes.index[1], "t"] = np.nan
    assert np.isnan(est.predict_proba(holes)[1]).all()
    with pytest.raises(lp.DataError, match="1 row\\(s\\) of X have missing values"):
        est.predict(holes)


def test_classifier_refuses_other_than_two_classes():
    data = reference_data("sim_binary")
    X = data.drop(columns="y")
    with pytest.raises(lp.DataError, match="two classes; y has 3"):
        GlmerClassifier("y ~ t + (1 | subject)").fit(X, np.arange(len(X)) % 3)
    with pytest.raises(lp.DataError, match="1 missing label"):
        GlmerClassifier("y ~ t + (1 | subject)").fit(X, np.r_[np.nan, data.y.iloc[1:]])


def test_bad_input_gets_clear_errors(sleep):
    X, y = sleep.drop(columns="Reaction"), sleep.Reaction
    with pytest.raises(lp.DataError, match="needs X as a pandas DataFrame.*ndarray"):
        LmerRegressor(SLEEP).fit(X.to_numpy(), y)
    with pytest.raises(lp.DataError, match="one value per row of X \\(180\\)"):
        LmerRegressor(SLEEP).fit(X, y.iloc[:10])
    with pytest.raises(lp.ModelError, match="must be a column name, not 'log\\(Reaction\\)'"):
        LmerRegressor("log(Reaction) ~ Days + (1 | Subject)").fit(X, y)
    with pytest.raises(NotFittedError):
        LmerRegressor(SLEEP).predict(X)
    with pytest.raises(lp.ModelError, match="only apply to engine='torch'"):
        LmerRegressor(SLEEP, lr=0.1).fit(X, y)
    with pytest.raises(TypeError, match="LmerRegressor\\(\\).*unexpected keyword.*'lrr'"):
        LmerRegressor(SLEEP, lrr=0.1)


def test_parameters_are_lmers_training_options():
    """Every TorchControl option but the checkpoint ones and verbose is a parameter with
    TorchControl's default (the signature is built from it); clone copies them."""
    skipped = {"checkpoint_dir", "resume", "verbose"}
    assert set(TRAINING_OPTIONS) == {f.name for f in fields(lp.TorchControl)} - skipped
    params = inspect.signature(LmerRegressor).parameters
    for name in TRAINING_OPTIONS:
        assert params[name].default == getattr(lp.TorchControl(), name)
    est = GlmerClassifier("y ~ t + (1 | subject)", nAGQ=5, epochs=7)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert "REML" not in copy.get_params() and "link" in copy.get_params()


def test_a_given_control_keeps_its_verbose(sleep, capsys):
    """The estimator is quiet unless asked; a control passed in keeps its own setting."""
    X, y = sleep.drop(columns="Reaction"), sleep.Reaction
    LmerRegressor(SLEEP).fit(X, y)
    assert capsys.readouterr().out == ""
    LmerRegressor(SLEEP, control=lp.LmerControl(verbose=1)).fit(X, y)
    assert capsys.readouterr().out.startswith("iteration: 1\n\tf(x) = 1773.680331\n")


def test_classifier_on_one_row_per_animal_is_lme4s_cbpp_fit():
    """cbpp as 0/1 rows, one per animal: the same binomial likelihood as lme4's
    cbind(incidence, size - incidence) ~ period + (1 | herd), so lme4's estimates."""
    ref = GLMER["cbpp_laplace"]
    cbpp = lp.datasets.load("cbpp")
    size, incidence = cbpp["size"].astype(int), cbpp.incidence.astype(int)
    rows = cbpp.loc[cbpp.index.repeat(size), ["period", "herd"]].reset_index(drop=True)
    sick = np.concatenate([np.arange(s) < k for k, s in zip(incidence, size)])
    clf = GlmerClassifier("sick ~ period + (1 | herd)").fit(rows, np.where(sick, "y", "n"))
    np.testing.assert_allclose(clf.model_.fixef().to_numpy(), ref["fixef"], rtol=1e-3)
    np.testing.assert_allclose(clf.model_.theta, ref["theta"], rtol=1e-3)
    # with sum coding of period, lme4's glmer(..., contrasts = list(period = "contr.sum"))
    coded = read_reference("lme4_contrasts.json")["cbpp_sum"]
    clf = GlmerClassifier("sick ~ period + (1 | herd)", contrasts={"period": "contr.sum"})
    clf.fit(rows, np.where(sick, "y", "n"))
    assert list(clf.model_.fixef().index) == coded["fixef_names"]
    np.testing.assert_allclose(clf.model_.fixef().to_numpy(), coded["fixef"], rtol=2e-3,
                               atol=1e-3)


def test_count_regressor_is_glmer_and_glmer_nb():
    """GlmerRegressor: Poisson by glmer (lme4's poisson_crossed fit), the negative binomial
    by glmer_nb (lme4's θ); predict gives the means, score is D² (closed form from the
    family's deviance residuals)."""
    from lmerpy.estimators import GlmerRegressor

    ref = GLMER["poisson_crossed"]
    data = reference_data("sim_poisson")
    X, y = data.drop(columns="count"), data["count"]
    est = GlmerRegressor("count ~ x + (1 | site) + (1 | year)").fit(X, y)
    np.testing.assert_allclose(est.model_.fixef().to_numpy(), ref["fixef"], rtol=1e-3)
    mu = est.predict(X)
    np.testing.assert_allclose(mu, ref["fitted"], rtol=2e-3)
    dev = lambda m: 2 * np.sum(np.where(y > 0, y * np.log(y / m), 0) - (y - m))  # noqa: E731
    assert est.score(X, y) == pytest.approx(1 - dev(mu) / dev(np.full(len(y), y.mean())),
                                            rel=1e-10)
    nb = read_reference("lme4_glmer_nb.json")
    counts = pd.DataFrame(nb["data"]).assign(g=lambda d: d.g.astype(str))
    est = GlmerRegressor("y ~ x + (1 | g)", family="negative.binomial").fit(
        counts.drop(columns="y"), counts.y)
    assert est.model_.family.theta == pytest.approx(nb["fits"]["slope"]["nb_theta"], rel=1e-4)
    with pytest.raises(lp.ModelError, match="fits counts or positive values"):
        GlmerRegressor("y ~ x + (1 | g)", family="binomial").fit(counts.drop(columns="y"),
                                                                 counts.y)


def test_positive_regressor_is_a_gamma_glmer():
    """GlmerRegressor(family="Gamma"): glmmTMB's fit (tests/reference/glmmtmb_dispersion.R);
    score is D² from the Gamma deviance, in closed form."""
    from lmerpy.estimators import GlmerRegressor

    ref = read_reference("glmmtmb_dispersion.json")["fits"]["gamma_log"]
    data = reference_data("sim_gamma")
    X, y = data.drop(columns="rt"), data["rt"].to_numpy()
    est = GlmerRegressor("rt ~ cond + x + (1 | subject) + (1 | item)", family="gamma",
                         link="log").fit(X, y)
    np.testing.assert_allclose(est.model_.fixef().to_numpy(), ref["fixef"], rtol=1e-4)
    mu = est.predict(X)
    np.testing.assert_allclose(mu, ref["fitted"], rtol=1e-4)
    dev = lambda m: 2 * np.sum((y - m) / m - np.log(y / m))  # noqa: E731
    assert est.score(X, y) == pytest.approx(1 - dev(mu) / dev(np.full(len(y), y.mean())),
                                            rel=1e-10)


def test_count_regressor_trains_a_negative_binomial_network():
    """GlmerRegressor(family="negative.binomial") passes the training options to glmer_nb:
    with nn() the torch engine trains log θ too; without, they are refused as for lmer."""
    from lmerpy.estimators import GlmerRegressor

    nb = read_reference("lme4_glmer_nb.json")
    counts = pd.DataFrame(nb["data"]).assign(g=lambda d: d.g.astype(str))
    X, y = counts.drop(columns="y"), counts.y
    with pytest.raises(lp.ModelError, match="epochs only apply to engine='torch'"):
        GlmerRegressor("y ~ x + (1 | g)", family="negative.binomial", epochs=5).fit(X, y)
    est = GlmerRegressor("y ~ nn(x, hidden=(4,)) + (1 | g)", family="negative.binomial",
                         epochs=5, seed=0, verbose=False, device="cpu").fit(X, y)
    model = est.model_
    assert model.torch_info is not None and model.family.family == "negative.binomial"
    assert "glmer.nb.theta" in model.history.columns
    np.testing.assert_allclose(est.predict(X), model.predict(type="response"), rtol=1e-12)
