"""Profile-likelihood intervals (confint's default) against real lme4 runs, and the θ ↔ sd/cor
map they are computed on."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import lmerpy as lp
from lmerpy.design.covariance import Diagonal, Unstructured, semidefinite_cholesky
from tests.conftest import read_reference, reference_data

REF = read_reference("lme4_profile.json")
FITS = REF["fits"]


def _fit(ref: dict, REML: bool | None = None):
    data = reference_data(ref["data"])
    kw = {"weights": data[ref["weights"]]} if ref["weights"] else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dyestuff2 and Pastes are singular, as in lme4
        return lp.lmer(ref["formula"], data, REML=ref["REML"] if REML is None else REML,
                       **kw), data


def _assert_matches(ci: pd.DataFrame, ref: dict, rows: list[str] | None = None) -> None:
    """Each end within 0.1% of the interval's width of lme4's (lme4 reads the ends off a
    spline through its profile; ours are roots of ζ, so they differ by the spline's error)."""
    assert list(ci.columns) == ref["columns"]
    want = pd.DataFrame({"lower": ref["lower"], "upper": ref["upper"]}, index=ref["rows"])
    rows = rows or ref["rows"]
    assert [r for r in ci.index if r in rows] == rows
    got, want = ci.loc[rows].to_numpy(), want.loc[rows].to_numpy()
    width = want[:, 1] - want[:, 0]
    off = np.abs(got - want) / width[:, None]
    assert (off <= 1e-3).all(), dict(zip(rows, off.max(axis=1)))


# lme4 1.1-31 mis-profiles the fixed effects of a weighted fit ("non-monotonic profile for
# Days": an interval 0.25 wide where the Wald one is 6); its variance rows are right
WEIGHTED_BETA = ["(Intercept)", "Days"]


@pytest.mark.parametrize("key", list(FITS))
def test_profile_intervals_match_lme4(key):
    ref = FITS[key]
    m, _ = _fit(ref)
    ci = m.confint()  # profile is the default, as in lme4
    rows = [r for r in ref["confint"]["rows"]
            if not (ref["weights"] and r in WEIGHTED_BETA)]
    _assert_matches(ci, ref["confint"], rows)


def test_reml_and_ml_fits_have_the_same_profile():
    """lme4 profiles REML fits on the ML deviance, so the two fits' intervals agree."""
    reml, _ = _fit(FITS["sleep_reml"])
    ml, _ = _fit(FITS["sleep_reml"], REML=False)
    np.testing.assert_allclose(reml.confint().to_numpy(), ml.confint().to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("extra", ["level90", "beta_only", "theta_only"])
def test_level_and_parameter_subsets_match_lme4(extra):
    ref = REF["sleep_reml_extra"][extra]
    m, _ = _fit(FITS["sleep_reml"])
    parm = {"level90": None, "beta_only": "beta_", "theta_only": "theta_"}[extra]
    ci = m.confint(level=ref["level"], parm=parm)
    assert list(ci.index) == ref["rows"]
    _assert_matches(ci, ref)


def test_parameters_by_name_keep_the_order_asked():
    m, _ = _fit(FITS["sleep_reml"])
    ci = m.confint(parm=["Days", ".sigma"])
    assert list(ci.index) == ["Days", ".sigma"]
    want = REF["sleep_reml_extra"]["beta_only"]
    assert ci.loc["Days"].iloc[0] == pytest.approx(want["lower"][1], rel=1e-4)


def test_weighted_fixed_effect_ends_are_where_the_deviance_rises_by_z_squared():
    """The ends for β of a weighted fit, checked by refitting with β_Days fixed (an offset):
    the ML deviance there must exceed the fit's by z² = 3.8415 (where lme4 fails)."""
    ref = FITS["sleep_weights"]
    m, data = _fit(ref, REML=False)
    ci = m.confint(parm="Days")
    z = norm.ppf(0.975)
    for end in ci.loc["Days"]:
        d = data.assign(fixed=end * data["Days"])
        refit = lp.lmer("Reaction ~ 1 + offset(fixed) + (Days | Subject)", d, REML=False,
                        weights=d["w"])
        assert refit.deviance() - m.deviance() == pytest.approx(z**2, abs=1e-5)
    wald = m.confint(method="Wald", parm="Days").to_numpy().ravel()
    assert ci.to_numpy().ravel() == pytest.approx(wald, rel=0.05)  # and near the Wald ends


def test_a_singular_fit_has_a_zero_lower_end():
    m, _ = _fit(FITS["dyestuff2"])
    assert m.confint(parm=".sig01").iloc[0, 0] == 0.0


def test_profiling_leaves_the_fit_unchanged():
    m, _ = _fit(FITS["sleep_reml"])
    before = m.ranef(condVar=True)["Subject"].attrs["condsd"].copy()
    deviance = m.deviance()
    m.confint()
    np.testing.assert_array_equal(m.ranef(condVar=True)["Subject"].attrs["condsd"], before)
    assert m.deviance() == deviance
    assert m.REML


def test_spatial_terms_are_profiled_too():
    rng = np.random.default_rng(5)
    sites = rng.uniform(-3, 3, size=(40, 2))
    loc = rng.integers(0, 40, 400)
    dist = ((sites[:, None] - sites[None]) ** 2).sum(-1)
    field = np.linalg.cholesky(np.exp(-dist / 2) + 1e-8 * np.eye(40)) @ rng.normal(size=40)
    data = pd.DataFrame({"lat": sites[loc, 0], "lon": sites[loc, 1],
                         "y": 1 + field[loc] + 0.5 * rng.normal(size=400)})
    m = lp.lmer("y ~ 1 + rbf(lat, lon)", data, REML=False)
    ci = m.confint(parm="theta_")
    sd, ell = m.theta[0] * m.sigma, m.theta[1]
    for row, estimate in zip(ci.to_numpy(), [sd, ell, m.sigma]):
        assert row[0] < estimate < row[1]
    assert ci.iloc[1, 0] > 0  # a lengthscale stays positive


def test_torch_fits_default_to_wald_and_refuse_profiles():
    data = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", data, engine="torch", epochs=2,
                verbose=False, seed=0)
    ci = m.confint()
    assert ci.loc[".sig01"].isna().all() and ci.loc["Days"].notna().all()
    with pytest.raises(lp.ModelError, match="profile intervals need an exact fit"):
        m.confint(method="profile")


@pytest.mark.parametrize("cov, theta", [(Unstructured(2), [0.97, 0.015, 0.23]),
                                        (Unstructured(3), [1.0, 0.5, -0.2, 0.8, 0.1, 0.3]),
                                        (Diagonal(2), [0.4, 1.5])])
def test_sd_cor_round_trip(cov, theta):
    values = cov.to_sdcor(np.array(theta), 25.6)
    np.testing.assert_allclose(cov.from_sdcor(values, 25.6), theta, rtol=1e-12, atol=1e-14)


def test_sd_cor_are_what_varcorr_reports():
    m, _ = _fit(FITS["sleep_reml"])
    values = m.design.random[0].cov.to_sdcor(m.theta, m.sigma)
    vc = m.VarCorr()["Subject"]
    np.testing.assert_allclose(values, [vc.sd[0], vc.corr[1, 0], vc.sd[1]], rtol=1e-12)


def test_semidefinite_cholesky_takes_perfect_correlation_and_refuses_indefinite():
    L = semidefinite_cholesky(np.array([[4.0, 2.0], [2.0, 1.0]]))  # correlation 1
    np.testing.assert_allclose(L @ L.T, [[4.0, 2.0], [2.0, 1.0]])
    assert L[1, 1] == 0.0
    assert semidefinite_cholesky(np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9],
                                           [0.9, -0.9, 1.0]])) is None
    assert Unstructured(2).from_sdcor(np.array([1.0, 1.5, 1.0]), 1.0) is None  # |cor| > 1


def test_a_3x3_term_is_profiled_to_the_true_ends():
    """sleepstudy's quadratic random term. lme4's fit fails its convergence check there and its
    spline ends for two correlations are off; the standard deviations, σ and β must agree
    with lme4's, and at the correlation ends a search from 12 random starts must find no
    lower profiled deviance than ours (each end's ζ really is z)."""
    from lmerpy.engines.profile import Profiler, ml_fit

    ref = REF["sleep_quad3"]
    data = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + I(Days**2) + (1 + Days + I(Days**2) | Subject)", data)
    ci = m.confint()
    cors = [".sig02", ".sig03", ".sig05"]
    _assert_matches(ci, ref, [r for r in ref["rows"] if r not in cors])
    want = pd.DataFrame({"lower": ref["lower"], "upper": ref["upper"]}, index=ref["rows"])
    np.testing.assert_allclose(ci.loc[cors], want.loc[cors], atol=0.025)
    profiler = Profiler(ml_fit(m.fit))
    z2 = norm.ppf(0.975) ** 2
    rng = np.random.default_rng(0)
    for name, side in [(".sig03", 1), (".sig05", 0)]:
        t = profiler.targets()[ref["rows"].index(name)]
        end = ci.loc[name].iloc[side]
        assert profiler.zeta(t, end) ** 2 == pytest.approx(z2, abs=1e-5)
        best = np.inf
        for _ in range(12):
            start = profiler.v_hat * rng.uniform(0.5, 1.5, len(profiler.v_hat))
            start[[1, 2, 4]] = 0.5 * rng.uniform(-1, 1, 3)  # always a valid matrix
            best = min(best, profiler._profile_variance(t, end, start)[0])
        assert best - profiler.base >= z2 - 1e-4


def test_a_fit_off_its_optimum_is_reported():
    """Profiles of a fit held away from its optimum find lower deviances: lme4's warning."""
    from lmerpy.engines.exact import fit_lmer
    from lmerpy.results.model import LmerResult

    good, _ = _fit(FITS["sleep_int"], REML=False)
    off = LmerResult(fit_lmer(good.design, REML=False, fixed_theta=1.5 * good.theta))
    with pytest.warns(lp.ProfileWarning, match="profiling found a lower deviance"):
        off.confint(parm=".sig01")


def test_an_end_never_reached_is_nan_with_a_warning(monkeypatch):
    from lmerpy.engines.profile import Profiler

    m, _ = _fit(FITS["sleep_int"])
    real_end = Profiler.end
    monkeypatch.setattr(Profiler, "end", lambda self, t, side, z: np.nan if t.kind == "sigma"
                        and side > 0 else real_end(self, t, side, z))
    with pytest.warns(lp.ProfileWarning, match="parameter .sigma never reached"):
        ci = m.confint(parm="theta_")
    assert np.isnan(ci.loc[".sigma"].iloc[1]) and np.isfinite(ci.loc[".sig01"]).all()


def test_zeta_at_lme4s_own_profile_points():
    """lme4's profile() evaluates ζ exactly at its grid points (the spline comes after):
    ours at the same values agree to 2e-4 where |ζ| ≤ 3 (intervals up to 99.7%), and
    farther out is never larger (a larger |ζ| would be a poorer inner optimum; at two far
    points lme4's is poorer, by 0.005 and 0.0008)."""
    from lmerpy.engines.profile import Profiler

    grid = REF["zeta_grid"]
    m, _ = _fit(FITS["sleep_ml"])
    profiler = Profiler(m.fit)
    names = m._confint_names
    targets = profiler.targets()
    for par in dict.fromkeys(grid["par"]):
        t = targets[names.index(par)]
        rows = [i for i, p in enumerate(grid["par"]) if p == par]
        # outward from the estimate, as lme4 traces it
        rows.sort(key=lambda i: abs(grid["value"][i] - t.estimate))
        for i in rows:
            ours, theirs = profiler.zeta(t, grid["value"][i]), grid["zeta"][i]
            if abs(theirs) <= 3:
                assert ours == pytest.approx(theirs, abs=2e-4), par
            assert abs(ours) <= abs(theirs) + 2e-4, par
            assert np.sign(ours) == np.sign(theirs) or abs(theirs) < 1e-3


def test_profile_traces_zeta_between_the_ends():
    m, _ = _fit(FITS["sleep_reml"])
    p = m.profile(parm=["Days", ".sig02"], points=4)
    assert list(p.columns) == ["parameter", "value", "zeta"]
    assert list(dict.fromkeys(p["parameter"])) == ["Days", ".sig02"]
    for _, part in p.groupby("parameter", sort=False):
        assert len(part) == 9 and np.all(np.diff(part["value"]) > 0)
        assert np.all(np.diff(part["zeta"]) > 0)  # a monotone profile
        np.testing.assert_allclose(part["zeta"].iloc[[0, -1]], [-norm.ppf(0.995),
                                                                norm.ppf(0.995)], atol=1e-6)
    ci99 = m.confint(level=0.99, parm="Days").to_numpy().ravel()
    days = p[p["parameter"] == "Days"]["value"].to_numpy()
    np.testing.assert_allclose(days[[0, -1]], ci99, rtol=1e-8)


def test_alphamax_is_lme4s_spelling_of_the_profiles_range():
    """profile(alphamax=0.05) runs to the ends of the 95% interval: lme4's own confint ends."""
    ref = FITS["sleep_reml"]
    m, _ = _fit(ref)
    p = m.profile(parm=["Days", ".sigma"], points=2, alphamax=0.05)
    ends = p.groupby("parameter", sort=False)["value"].agg(["first", "last"])
    ends.columns = ref["confint"]["columns"]
    _assert_matches(ends, ref["confint"], ["Days", ".sigma"])
    with pytest.raises(lp.ModelError, match="alphamax must be a probability"):
        m.profile(alphamax=1.5)
    with pytest.raises(lp.ModelError, match="give level or alphamax, not both"):
        m.profile(level=0.9, alphamax=0.01)


GLMER = REF["glmer"]


@pytest.mark.parametrize("key", list(GLMER))
def test_glmer_profile_intervals_match_lme4(key):
    """On the criterion each fit minimised: Laplace, or 9-point adaptive quadrature. In
    binary_slope lme4 finds the correlation's profile flat to ±1 and the slope's sd to 0;
    so must we."""
    ref = GLMER[key]
    data = lp.datasets.load("cbpp") if ref["data"] == "cbpp" else reference_data(ref["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = lp.glmer(ref["formula"], data, family=ref["family"], nAGQ=ref["nAGQ"])
    ci = g.confint()  # profile, as lme4's default
    assert ".sigma" not in ci.index
    _assert_matches(ci, ref)


def test_glmer_without_a_likelihood_step_refuses_profiles():
    cbpp = lp.datasets.load("cbpp")
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial", nAGQ=0)
    assert g.confint().loc[".sig01"].isna().all()  # Wald by default there
    with pytest.raises(lp.ModelError, match="this fit used nAGQ=0"):
        g.confint(method="profile")
