"""The command line: lmerpy fit prints the summary, writes JSON and predictions, and fails
with clear messages and exit codes on bad files and formulas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.cli import main
from tests.conftest import read_reference, reference_data


@pytest.fixture()
def sleep_csv(tmp_path):
    path = tmp_path / "sleepstudy.csv"
    lp.datasets.load("sleepstudy").to_csv(path, index=False)
    return path


def test_fit_prints_lme4s_summary_and_writes_json(sleep_csv, tmp_path, capsys):
    out = tmp_path / "out.json"
    rc = main(["fit", "Reaction ~ Days + (Days | Subject)", str(sleep_csv), "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    ref = read_reference("lme4_fits.json")["fits"]["sleep_reml"]
    assert "REML criterion at convergence: 1743.6" in text
    assert "Data: sleepstudy" in text
    res = json.loads(out.read_text())
    np.testing.assert_allclose(res["fixef"]["estimate"], list(ref["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(res["fixef"]["std_error"], ref["se"], rtol=1e-4)
    np.testing.assert_allclose(res["theta"], ref["theta"], rtol=1e-4)
    assert res["ngrps"] == {"Subject": 18} and res["engine"] == "exact"


def test_fit_ml_and_predict_to_csv(sleep_csv, tmp_path):
    new = tmp_path / "new.csv"
    lp.datasets.load("sleepstudy").head(5).assign(Subject=[308, 309, 310, 999, 999]) \
        .to_csv(new, index=False)
    pred = tmp_path / "pred.csv"
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", str(sleep_csv), "--ml",
                 "--predict", str(new), "--out", str(pred)]) == 0
    import pandas as pd
    got = pd.read_csv(pred)
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", pd.read_csv(sleep_csv), REML=False)
    expected = m.predict(pd.read_csv(new), allow_new_levels=True)
    np.testing.assert_allclose(got.prediction, expected, rtol=1e-8)


def test_fit_glmer_from_parquet_or_csv(tmp_path, capsys):
    cbpp = lp.datasets.load("cbpp")
    path = tmp_path / "cbpp.csv"
    cbpp.assign(period=cbpp.period.astype(str)).to_csv(path, index=False)
    rc = main(["fit", "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)",
               str(path), "--family", "binomial"])
    assert rc == 0
    assert "Family: binomial  ( logit )" in capsys.readouterr().out


def test_fit_gamma_with_a_link(tmp_path, capsys):
    """--family Gamma --link log: glmmTMB's fit (tests/reference/glmmtmb_dispersion.R)."""
    ref = read_reference("glmmtmb_dispersion.json")["fits"]["gamma_log"]
    path = tmp_path / "rt.csv"
    reference_data("sim_gamma").to_csv(path, index=False)
    out = tmp_path / "pred.csv"
    rc = main(["fit", ref["formula"], str(path), "--family", "Gamma", "--link", "log",
               "--predict", str(path), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Family: Gamma  ( log )" in text
    assert f"Dispersion parameter for Gamma family (sigma^2): {ref['sigma'] ** 2:.3f}" in text
    np.testing.assert_allclose(pd.read_csv(out).prediction, ref["fitted"], rtol=1e-4)


@pytest.mark.parametrize("args,code,message", [
    (["fit", "Reaction ~ Days + (1 | Subject", "{csv}"], 2, "at column"),
    (["fit", "Reaction ~ Dayz + (1 | Subject)", "{csv}"], 2, "did you mean 'Days'"),
    (["fit", "y ~ 1 + (1 | g)", "{missing}"], 3, "no such file"),
    (["fit", "y ~ 1 + (1 | g)", "{garbage}"], 3, "cannot be read as Parquet"),
])
def test_errors_have_exit_codes_and_messages(args, code, message, sleep_csv, tmp_path,
                                             capsys):
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet")
    paths = {"csv": sleep_csv, "missing": tmp_path / "nope.csv", "garbage": garbage}
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_fit_with_satterthwaite_and_negative_binomial(sleep_csv, tmp_path, capsys):
    """--ddf Satterthwaite prints lmerTest's summary; --family negative.binomial fits
    lme4's glmer.nb (both checked against R's output in their own tests)."""
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", str(sleep_csv), "--ddf",
                 "Satterthwaite"]) == 0
    text = capsys.readouterr().out
    want = read_reference("lmertest.json")["fits"]["sleep_reml"]["summary"]
    assert text.splitlines()[:2] == want[:2]
    assert "Days          10.467      1.546  17.000   6.771 3.26e-06 ***" in text
    nb = read_reference("lme4_glmer_nb.json")
    counts = tmp_path / "counts.csv"
    pd.DataFrame(nb["data"]).to_csv(counts, index=False)
    assert main(["fit", "y ~ x + (1 | g)", str(counts), "--family", "negative.binomial"]) == 0
    assert " Family: Negative Binomial(2.6254)  ( log )" in capsys.readouterr().out


def test_fit_with_emmeans_and_anova(tmp_path, capsys):
    """--emmeans prints emmeans' tables (means and contrasts) and --anova car's type II
    table, as the library prints them (checked against R in their own tests)."""
    ref = read_reference("emmeans.json")
    data = tmp_path / "fac.csv"
    pd.DataFrame(ref["data"]).to_csv(data, index=False)
    assert main(["fit", "y ~ A * B + x + (1 | g)", str(data), "--emmeans",
                 "pairwise ~ A | B", "--anova"]) == 0
    text = capsys.readouterr().out
    for line in ref["cases"]["A_by_B"]["lines"] + ref["cases"]["pairs_A_by_B"]["lines"]:
        assert line.rstrip() in text
    car = read_reference("car_anova.json")["fits"]["factors"]["II"]["lines"]
    assert all(line.rstrip() in text for line in car)
    assert main(["fit", "y ~ A + (1 | g)", str(data), "--emmeans", "~ C"]) == 2
    assert "'C' is not a variable of the fixed part" in capsys.readouterr().err


def test_fit_with_an_optimizer_allfit_and_tidy(sleep_csv, tmp_path, capsys):
    """--optimizer picks lmerControl(optimizer=); --allfit prints lme4's allFit lines and
    summary; --tidy writes broom.mixed's table (tests/reference/broom_mixed.R)."""
    tidy_csv = tmp_path / "tidy.csv"
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", str(sleep_csv), "--optimizer",
                 "Nelder_Mead", "--allfit", "--tidy", str(tidy_csv)]) == 0
    out = capsys.readouterr().out
    assert "optimizers (5): bobyqa, Nelder_Mead, sbplx, Powell, lbfgsb" in out
    assert "differences in negative log-likelihoods:" in out and "$sdcor" in out
    ref = read_reference("broom_mixed.json")["sleep"]["tidy_wald"]
    table = pd.read_csv(tidy_csv)
    assert table.term.tolist() == ref["term"]
    # (Nelder–Mead stops within its tolerance of the optimum: the correlation to ~3e-4)
    np.testing.assert_allclose(table.estimate, ref["estimate"], rtol=1e-3)
    with pytest.raises(SystemExit) as err:
        main(["fit", "Reaction ~ Days + (Days | Subject)", str(sleep_csv), "--optimizer",
              "nmkb"])
    assert err.value.code == 2 and "invalid choice: 'nmkb'" in capsys.readouterr().err


def test_fit_with_contrasts(tmp_path, capsys):
    """--contrasts A=contr.sum: R's contrasts= (tests/reference/lme4_contrasts.R)."""
    ref = read_reference("lme4_contrasts.json")
    data = tmp_path / "fac.csv"
    pd.DataFrame(ref["data"]).to_csv(data, index=False)
    out = tmp_path / "m.json"
    assert main(["fit", "y ~ A * x + B + (1 | g)", str(data), "--contrasts", "A=contr.sum",
                 "--contrasts", "B=contr.helmert", "--json", str(out)]) == 0
    fixef = json.loads(out.read_text())["fixef"]
    assert fixef["names"] == ref["sum_helmert"]["fixef_names"]
    np.testing.assert_allclose(fixef["estimate"], ref["sum_helmert"]["fixef"], rtol=1e-6)
    capsys.readouterr()
    assert main(["fit", "y ~ A + (1 | g)", str(data), "--contrasts", "A"]) == 2
    assert "--contrasts takes FACTOR=CODING" in capsys.readouterr().err
