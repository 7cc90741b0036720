"""allFit(): every optimiser reaches the optimum lme4's optimisers reach
(tests/reference/lme4_allfit.R), and the summary holds lme4's quantities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.engines.optimizers import OPTIMIZERS

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "lme4_allfit.json").read_text())
MODELS = [k for k in REF if k != "lme4_version"]


def _data(name: str) -> pd.DataFrame:
    if name.startswith("sim_"):
        return pd.read_csv(REF_DIR / f"{name}.csv.gz")
    return lp.datasets.load(name)


def _fit(spec: dict):
    d = _data(spec["data"])
    if "family" in spec:
        return lp.glmer(spec["formula"], d, family=spec["family"])
    return lp.lmer(spec["formula"], d, REML=spec["REML"])


@pytest.fixture(scope="module", params=MODELS)
def refitted(request):
    spec = REF[request.param]
    with pytest.warns() if spec["data"] == "Dyestuff2" else _nothing():
        m = _fit(spec)
    return spec, m, lp.allFit(m)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _messages(value) -> list[str]:
    """A JSON string or list of strings (R's auto_unbox makes one string a string)."""
    return [value] if isinstance(value, str) else list(value or [])


def test_every_optimizer_reaches_lme4s_optimum(refitted):
    spec, m, af = refitted
    s = af.summary()
    assert list(s.which_OK.index) == list(OPTIMIZERS) and s.which_OK.all()
    glmm = "family" in spec
    for name in OPTIMIZERS:
        for ref_name, ref in spec["optimizers"].items():
            # lme4's Laplace log-likelihood sits up to ~5e-4 below lmerpy's at the same
            # estimates (the Cholesky factor of the last PIRLS step: docs/migration.md)
            assert s.llik[name] == pytest.approx(ref["llik"], abs=1e-3 if glmm else 2e-6), \
                (name, ref_name)
            np.testing.assert_allclose(s.theta.loc[name], ref["theta"],
                                       rtol=1e-2 if glmm else 1e-3,
                                       atol=1e-3 if glmm else 1e-4, err_msg=name)
            np.testing.assert_allclose(s.fixef.loc[name], ref["fixef"],
                                       rtol=2e-3 if glmm else 1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(s.sdcor.loc[name], ref["sdcor"],
                                       rtol=1e-2 if glmm else 1e-3, atol=1e-4, err_msg=name)
    assert list(s.fixef.columns) == _messages(spec["fixef_names"])


def test_optimizers_agree_as_closely_as_lme4s(refitted):
    """The spread of −log L across lmerpy's optimisers is of the order of lme4's own
    (max differences 1e-7 to 1e-6 there)."""
    spec, _, af = refitted
    nll = -af.summary().llik
    assert float(nll.max() - nll.min()) < max(10 * spec["max_nll_difference"], 1e-6)


def test_messages_are_lme4s(refitted):
    spec, _, af = refitted
    s = af.summary()
    want = {tuple(_messages(r["messages"])) for r in spec["optimizers"].values()}
    assert len(want) == 1
    for name in OPTIMIZERS:
        assert tuple(s.msgs[name]) in want, name


def test_print_gives_lme4s_lines(refitted):
    spec, m, af = refitted
    text = str(af).splitlines()
    assert text[:2] == ["original model:", spec["formula"]]
    assert text[3] == f"optimizers ({len(OPTIMIZERS)}): {', '.join(OPTIMIZERS)}"
    assert text[4] == "differences in negative log-likelihoods:"
    nll = -af.summary().llik.to_numpy()
    spread = float(text[5].split("max=")[1].split(";")[0])
    assert spread == pytest.approx(nll.max() - nll.min(), rel=1e-2, abs=1e-15)
    assert "$fixef" in str(af.summary()) and "$sdcor" in str(af.summary())


def test_sdcor_names_are_lme4s_tnames():
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"))
    s = lp.allFit(m, optimizers=["bobyqa"]).summary()
    assert list(s.sdcor.columns) == ["sd_(Intercept)|Subject", "sd_Days|Subject",
                                     "cor_Days.(Intercept)|Subject", "sigma"]
    assert list(s.theta.columns) == ["Subject.(Intercept)", "Subject.Days.(Intercept)",
                                     "Subject.Days"]


def test_a_subset_keeps_the_model_settings():
    d = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", d, REML=False,
                control=lp.LmerControl(ftol_abs=1e-10))
    af = lp.allFit(m, optimizers=["Powell", "Nelder_Mead"])
    assert list(af.fits) == ["Powell", "Nelder_Mead"]
    for f in af.fits.values():
        assert not f.REML
        assert f.fit.optinfo["control"].ftol_abs == 1e-10
    assert float(af.fits["Powell"].logLik()) == pytest.approx(float(m.logLik()), abs=1e-6)


def test_a_failing_refit_is_kept_as_its_error():
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"))
    m._data = m._data.assign(Days=np.nan)  # every row of the refit's data is incomplete
    af = lp.allFit(m, optimizers=["bobyqa", "sbplx"])
    assert all(isinstance(f, lp.LmerpyError) for f in af.fits.values())
    assert not af.summary().which_OK.any()
    assert "2 optimizer(s) failed: bobyqa, sbplx" in str(af)


def test_bad_arguments_are_refused():
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", lp.datasets.load("sleepstudy"))
    with pytest.raises(lp.ModelError, match="unknown optimizer 'nlminbwrap'"):
        lp.allFit(m, optimizers=["bobyqa", "nlminbwrap"])
    with pytest.raises(lp.ModelError, match="at least one optimizer"):
        lp.allFit(m, optimizers=[])
    with pytest.raises(lp.ModelError, match="takes a fitted model"):
        lp.allFit("Reaction ~ Days")


def test_torch_fits_are_refused():
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", lp.datasets.load("sleepstudy"),
                engine="torch", epochs=2, verbose=False, seed=0)
    with pytest.raises(lp.ModelError, match="trained by Adam"):
        lp.allFit(m)
