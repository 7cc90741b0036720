"""The torch engine's settings are checked at the border: each bad value gets a ModelError
naming the option, before any training (it used to surface as a TypeError, a
ZeroDivisionError or torch's own assertion from deep in the loop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lmerpy as lp
from lmerpy.engines.torch_control import TorchControl, check_control, check_split
from tests.engines.test_torch import _nonlinear

WHOLE = "must be a whole number of at least"
BAD = [
    *[("epochs", v, f"epochs {WHOLE} 1") for v in (0, -1, 2.5, True, "5", None)],
    *[("batch_size", v, f"batch_size {WHOLE} 1") for v in (0, 1.5, False, "100")],
    *[("patience", v, f"patience {WHOLE} 0") for v in (-1, 0.5, None)],
    *[("quadrature", v, f"quadrature {WHOLE} 1 or None") for v in (0, 2.0)],
    *[("seed", v, f"seed {WHOLE} 0 or None") for v in (-1, 1.5, "a", True)],
    *[("threads", v, f"threads {WHOLE} 1 or None") for v in (0, 1.5)],
    *[("lr", v, "lr must be a positive number") for v in (0, -1e-3, float("nan"),
                                                          float("inf"), "a", True, None)],
    *[("weight_decay", v, "weight_decay must be a number of at least 0")
      for v in (-1, float("nan"), "0")],
    *[("validation", v, r"validation must be a share of the rows in \[0, 1\)")
      for v in (1, 1.5, -0.1, float("nan"), "0.1", None)],
    *[(name, v, f"{name} must be True or False") for name in
      ("verbose", "refine", "resume", "cuda_graphs") for v in ("yes", 2, None)],
    ("batching", "rows", "batching must be one of 'sorted', 'random', 'group'"),
    ("backfit", "x", "backfit must be True, False or 'auto'"),
    ("device", 0, "device must be 'auto', 'cpu', 'cuda' or a torch.device"),
    ("checkpoint_dir", 3, "checkpoint_dir must be a folder's path or None"),
    *[("batch_growth", v, f"batch_growth {WHOLE} 2 or None or 'auto'")
      for v in (0, 1, 2.5, True, "10", "Auto", -3)],
    *[("lr_decay", v, "lr_decay must be a number between 0 and 1")
      for v in (0, 1, 1.5, -0.1, True, "0.1", float("nan"))],
    *[("phase_patience", v, f"phase_patience {WHOLE} 1 or None")
      for v in (0, -2, 2.5, True, "30")],
]


@pytest.mark.parametrize("option, bad, message", BAD)
def test_each_bad_setting_is_named(option, bad, message):
    with pytest.raises(lp.ModelError, match=message):
        check_control(TorchControl(**{option: bad}))


@pytest.mark.parametrize("option, good", [
    ("epochs", np.int64(3)), ("batch_size", np.int32(50)), ("seed", np.uint8(7)),
    ("lr", np.float32(0.01)), ("validation", 0), ("patience", 0), ("verbose", 0),
    ("verbose", np.bool_(True)), ("device", torch.device("cpu")),
    ("checkpoint_dir", Path("ckpt")), ("batch_growth", None), ("batch_growth", "auto"),
    ("batch_growth", np.int64(4)), ("phase_patience", None),
])
def test_numpy_numbers_paths_and_devices_are_accepted(option, good):
    check_control(TorchControl(**{option: good}))


@pytest.mark.parametrize("option, value", [("lr_decay", 0.1), ("phase_patience", 5)])
def test_second_phase_options_need_early_stopping(option, value):
    with pytest.raises(lp.ModelError, match=f"{option} needs early stopping"):
        check_control(TorchControl(patience=0, **{option: value}))


def test_the_split_must_leave_training_rows():
    assert check_split(TorchControl(validation=0.1), 300) == 30
    assert check_split(TorchControl(validation=0), 300) == 0
    with pytest.raises(lp.ModelError, match="validation=0.999 leaves no training rows of "
                                            "the 300"):
        check_split(TorchControl(validation=0.999), 300)


def test_settings_come_back_as_plain_python_values():
    control = check_control(TorchControl(epochs=np.int64(3), lr=np.float32(0.5), verbose=0,
                                         seed=np.uint8(7), checkpoint_dir=Path("ck"),
                                         device=torch.device("cpu")))
    assert (control.epochs, control.lr, control.verbose, control.seed, control.checkpoint_dir,
            control.device) == (3, 0.5, False, 7, "ck", "cpu")
    assert [type(v) for v in (control.epochs, control.lr, control.verbose, control.seed)] == \
        [int, float, bool, int]


def test_lmer_checks_settings_before_training(tmp_path):
    data = _nonlinear(300, 5, 0)
    formula = "y ~ nn(x1 + x2, hidden=(4,)) + (1 | g)"
    with pytest.raises(lp.ModelError, match="epochs must be a whole number"):
        lp.lmer(formula, data, epochs=2.5, verbose=False)
    with pytest.raises(lp.ModelError, match="leaves no training rows"):
        lp.lmer(formula, data, validation=0.999, epochs=1, verbose=False)
    with pytest.raises(lp.ModelError, match="quadrature must be a whole number"):
        lp.glmer("I(y > 0) ~ nn(x1 + x2, hidden=(4,)) + (1 | g)", data, quadrature=0,
                 epochs=1, verbose=False)
    if not torch.cuda.is_available():
        with pytest.raises(lp.ModelError, match="torch sees no CUDA GPU here"):
            lp.lmer(formula, data, device="cuda", epochs=1, verbose=False)
    m = lp.lmer(formula, data, epochs=np.int64(2), batch_size=np.int64(64), verbose=0, seed=0)
    assert m.torch_info["epochs"] == 2
    # numpy-typed settings still save (the file's JSON holds them) and load
    m.save(tmp_path / "m.lmerpy")
    loaded = lp.load(tmp_path / "m.lmerpy")
    assert loaded.torch_info["control"]["batch_size"] == 64 and loaded.sigma == m.sigma
