"""save()/load(): round trips (and a loaded model saved again) give identical predictions
and summaries; the format is safe to open from an untrusted source (no pickled objects),
versioned, and fails clearly."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lmerpy as lp


def _nn_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.uniform(-1, 1, (n, 3)), columns=["x1", "x2", "x3"])
    df["g"] = rng.integers(0, 12, n).astype(str)
    df["h"] = rng.integers(0, 5, n).astype(str)
    df["f"] = pd.Categorical(rng.choice(["lo", "hi"], n), categories=["lo", "hi"])
    eta = np.sin(3 * df.x1) + df.x2 + rng.normal(size=12)[df.g.astype(int)]
    df["y"] = eta + rng.normal(scale=0.3, size=n)
    df["b"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    df["n"] = rng.negative_binomial(2.0, 2.0 / (2.0 + np.exp(eta)))
    return df


def _new_rows(df):
    new = df.head(40).copy()
    new.loc[new.index[:5], "g"] = "unseen"
    return new


CASES = {
    "lmer REML": lambda: lp.lmer("Reaction ~ Days + (Days | Subject)",
                                 lp.datasets.load("sleepstudy")),
    "lmer ML weights": lambda: lp.lmer("Reaction ~ Days + (1 | Subject)",
                                       lp.datasets.load("sleepstudy").assign(
                                           w=np.resize([1.0, 2.0], 180)), REML=False,
                                       weights="w"),
    "glmer AGQ": lambda: lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                  lp.datasets.load("cbpp"), nAGQ=9),
    "torch gaussian": lambda: lp.lmer("y ~ f + nn(x1 + x2 + x3, hidden=(8,)) + (1 | g)",
                                      _nn_data(), seed=1, epochs=4, verbose=False,
                                      device="cpu"),
    "torch crossed, backfitted": lambda: lp.lmer(
        "y ~ nn(x1 + x2 + x3, hidden=(8,)) + (1 | g) + (1 | h)", _nn_data(), seed=1,
        epochs=4, verbose=False, device="cpu"),
    "torch weights, backfitted": lambda: lp.lmer(
        "y ~ nn(x1 + x2 + x3, hidden=(8,)) + (1 | g)", _nn_data(), seed=1, epochs=4,
        verbose=False, device="cpu", weights=np.resize([1.0, 0.5, 3.0], 400)),
    "torch negative binomial": lambda: lp.glmer_nb(
        "n ~ nn(x1 + x2, hidden=(8,)) + (1 | g)", _nn_data(), seed=1, epochs=3,
        verbose=False, batch_size=200, device="cpu"),
    "torch binomial": lambda: lp.glmer("b ~ nn(x1 + x2, hidden=(8,)) + (1 | g)", _nn_data(),
                                       seed=1, epochs=3, verbose=False, batch_size=200,
                                       device="cpu"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_predicts_identically(name, tmp_path):
    m = CASES[name]()
    path = tmp_path / "model.lmerpy"
    m.save(path)
    loaded = lp.load(path)
    assert type(loaded) is type(m)
    assert str(loaded.summary()) == str(m.summary())
    np.testing.assert_allclose(loaded.fitted(), m.fitted(), rtol=1e-12, atol=1e-12)
    data = m._data
    new = _new_rows(data.loc[m.design.index]) if "g" in data.columns else data
    kw = {"allow_new_levels": True} if "g" in data.columns else {}
    np.testing.assert_allclose(loaded.predict(new, **kw), m.predict(new, **kw), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_array_equal(loaded.theta, m.theta)
    if "backfitted" in name:
        assert "Backfitting at θ̂" in str(loaded.summary())
        pd.testing.assert_frame_equal(loaded.torch_info["backfit"]["history"],
                                      m.torch_info["backfit"]["history"])
    # a loaded model saves again (its networks in the same place as a fitted one's)
    loaded.save(tmp_path / "again.lmerpy")
    again = lp.load(tmp_path / "again.lmerpy")
    assert str(again.summary()) == str(m.summary())
    np.testing.assert_allclose(again.predict(new, **kw), m.predict(new, **kw), rtol=1e-12,
                               atol=1e-12)


def test_custom_modules_need_their_code_at_load(tmp_path):
    df = _nn_data()
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    m = lp.lmer("y ~ nn(x1 + x2, module='mine') + (1 | g)", df, modules={"mine": net},
                seed=0, epochs=2, verbose=False, device="cpu")
    m.save(tmp_path / "m.lmerpy")
    with pytest.raises(lp.ModelError, match="module='mine'"):
        lp.load(tmp_path / "m.lmerpy")
    fresh = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    loaded = lp.load(tmp_path / "m.lmerpy", modules={"mine": fresh})
    np.testing.assert_allclose(loaded.predict(df), m.predict(df), rtol=1e-12)
    wrong = torch.nn.Linear(2, 1)
    with pytest.raises(lp.ModelFileError, match="do not fit"):
        lp.load(tmp_path / "m.lmerpy", modules={"mine": wrong})


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/lmerpy-pwned",))


def test_untrusted_files_are_refused_without_running_code(tmp_path):
    import os

    marker = "/tmp/lmerpy-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    evil = tmp_path / "evil.lmerpy"
    with open(evil, "wb") as fh:
        pickle.dump({"meta": "{}", "x": _Payload()}, fh)
    with pytest.raises(lp.ModelFileError, match="not an lmerpy model file"):
        lp.load(evil)
    torch.save({"meta": "{}", "x": _Payload()}, tmp_path / "evil2.lmerpy")
    with pytest.raises(lp.ModelFileError):
        lp.load(tmp_path / "evil2.lmerpy")
    assert not os.path.exists(marker)


def test_foreign_damaged_and_newer_files(tmp_path):
    with pytest.raises(lp.ModelFileError, match="no such file"):
        lp.load(tmp_path / "missing.lmerpy")
    torch.save({"weights": torch.ones(3)}, tmp_path / "foreign.pt")
    with pytest.raises(lp.ModelFileError, match="damaged or not an lmerpy model"):
        lp.load(tmp_path / "foreign.pt")
    m = CASES["lmer REML"]()
    m.save(tmp_path / "ok.lmerpy")
    archive = torch.load(tmp_path / "ok.lmerpy", weights_only=True)
    meta = json.loads(archive["meta"])
    meta["version"] = 99
    archive["meta"] = json.dumps(meta)
    torch.save(archive, tmp_path / "newer.lmerpy")
    with pytest.raises(lp.ModelFileError, match="format 99"):
        lp.load(tmp_path / "newer.lmerpy")
    data = (tmp_path / "ok.lmerpy").read_bytes()
    (tmp_path / "cut.lmerpy").write_bytes(data[: len(data) // 2])
    with pytest.raises(lp.ModelFileError):
        lp.load(tmp_path / "cut.lmerpy")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096))
def test_load_of_random_bytes_fails_cleanly(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "x.lmerpy"
    path.write_bytes(blob)
    with pytest.raises(lp.ModelFileError):
        lp.load(path)


@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "m.lmerpy"
    CASES["glmer AGQ"]().save(path)
    return path.read_bytes()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1,
                max_size=8))
def test_load_of_a_corrupted_model_file_never_escapes_as_a_raw_error(tmp_path_factory,
                                                                     saved_bytes, flips):
    blob = bytearray(saved_bytes)
    for pos, value in flips:
        blob[pos % len(blob)] = value
    path = tmp_path_factory.mktemp("flip") / "m.lmerpy"
    path.write_bytes(bytes(blob))
    try:
        lp.load(path)
    except lp.LmerpyError:
        pass


def test_backfitting_saved_by_earlier_versions_still_reads():
    """Files written before L-BFGS backfitting hold Adam passes (epochs, best_epoch); the
    summary describes either kind."""
    from lmerpy.results.summary import _backfit_line

    old = _backfit_line({"epochs": 7, "best_epoch": 3, "best_val_mse": 1.2345678})
    assert old == "Backfitting at θ̂: 7 passes, best pass 3 (validation MSE 1.2346)"
    new = _backfit_line({"method": "L-BFGS", "iterations": 24, "best_iteration": 9,
                         "evaluations": 30, "best_val_mse": 1.0279})
    assert new == ("Backfitting at θ̂: 24 L-BFGS iterations (30 evaluations), best after 9 "
                   "(validation MSE 1.0279)")
    kept = _backfit_line({"method": "L-BFGS", "iterations": 15, "best_iteration": 0,
                          "evaluations": 18, "best_val_mse": 0.5})
    assert "the trained network kept" in kept
