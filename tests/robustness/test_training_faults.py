"""Training survives faults: a non-finite loss keeps the best epoch, a run killed by SIGKILL
resumes from its checkpoint to the uninterrupted run's result, GPU out-of-memory halves the
batch, and checkpoints from elsewhere are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import lmerpy as lp
from lmerpy.engines.checkpoint import checkpoint_path

ROOT = Path(__file__).resolve().parents[2]


def _data(n: int = 400, q: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, q, n)
    x1, x2 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    y = np.sin(2 * x1) + x2 + rng.normal(size=q)[g] + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g.astype(str)})


FORMULA = "y ~ nn(x1 + x2, hidden=(16, 8)) + (1 | g)"
# bit-for-bit reproducibility is promised on the CPU
TRAIN = dict(seed=7, epochs=40, patience=0, batch_size=50, verbose=False, device="cpu")

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd
    import lmerpy as lp
    df = pd.read_csv(sys.argv[1])
    df["g"] = df["g"].astype(str)
    lp.lmer({formula!r}, df, checkpoint_dir=sys.argv[2], **{train!r})
""")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    df = _data()
    csv = tmp_path / "data.csv"
    df.to_csv(csv, index=False)
    df = pd.read_csv(csv)
    df["g"] = df["g"].astype(str)
    reference = lp.lmer(FORMULA, df, **TRAIN)

    ckpt = tmp_path / "ckpt"
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(formula=FORMULA, train=TRAIN))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, str(script), str(csv), str(ckpt)], env=env)
    target = int(np.random.default_rng().integers(3, 20))  # a random epoch
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if checkpoint_path(ckpt).exists():
            state = torch.load(checkpoint_path(ckpt), weights_only=True)
            if state["epoch"] >= target:
                proc.send_signal(signal.SIGKILL)
                killed_at = state["epoch"]
                break
        time.sleep(0.01)
    proc.wait()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, \
        "the run finished before it could be killed"
    resumed = lp.lmer(FORMULA, df, checkpoint_dir=str(ckpt), resume=True, **TRAIN)
    # the checkpoint was complete (atomic rename), and the resumed run is the same run
    assert resumed.torch_info["epochs"] == reference.torch_info["epochs"] == TRAIN["epochs"]
    np.testing.assert_array_equal(resumed.history.val_nll, reference.history.val_nll)
    np.testing.assert_array_equal(resumed.theta, reference.theta)
    np.testing.assert_array_equal(resumed.fitted(), reference.fitted())


def test_checkpoint_of_another_model_or_a_foreign_file_is_refused(tmp_path):
    df = _data(200)
    lp.lmer(FORMULA, df, checkpoint_dir=str(tmp_path), **{**TRAIN, "epochs": 2})
    with pytest.raises(lp.ModelError, match="belongs to another model"):
        lp.lmer(FORMULA, df.assign(y=df.y + 1), checkpoint_dir=str(tmp_path), resume=True,
                **{**TRAIN, "epochs": 2})
    state = torch.load(checkpoint_path(tmp_path), weights_only=True)
    torch.save({**state, "format": 1}, checkpoint_path(tmp_path))
    with pytest.raises(lp.ModelError, match="written by an older lmerpy .*format 1, this "
                                            "one reads 2"):
        lp.lmer(FORMULA, df, checkpoint_dir=str(tmp_path), resume=True,
                **{**TRAIN, "epochs": 2})
    checkpoint_path(tmp_path).write_bytes(os.urandom(256))
    with pytest.raises(lp.ModelError, match="not a readable lmerpy checkpoint"):
        lp.lmer(FORMULA, df, checkpoint_dir=str(tmp_path), resume=True,
                **{**TRAIN, "epochs": 2})
    with pytest.raises(lp.ModelError, match="resume=True needs checkpoint_dir"):
        lp.lmer(FORMULA, df, resume=True, **{**TRAIN, "epochs": 2})


class _Poisoned(nn.Module):
    """A network whose weights turn NaN after a number of calls (a diverging run)."""

    def __init__(self, after: int):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.calls = 0
        self.after = after

    def forward(self, x):
        self.calls += 1
        if self.calls == self.after:
            with torch.no_grad():
                self.lin.weight.fill_(float("nan"))
        return self.lin(x)


def test_non_finite_loss_keeps_the_best_epoch():
    df = _data(300)
    net = _Poisoned(after=40)
    with pytest.warns(lp.TrainingWarning, match="non-finite loss in epoch"):
        m = lp.lmer("y ~ nn(x1 + x2, module='net') + (1 | g)", df, modules={"net": net},
                    **{**TRAIN, "epochs": 30})
    assert "non-finite" in m.torch_info["stop_reason"]
    assert np.isfinite(m.fitted()).all() and np.isfinite(m.theta).all()
    assert m.torch_info["best_epoch"] >= 1


class _OutOfMemory(nn.Module):
    """Raises CUDA's out-of-memory error for batches larger than ``limit`` rows."""

    def __init__(self, limit: int):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.limit = limit

    def forward(self, x):
        if self.training and x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.lin(x)


def test_out_of_memory_halves_the_batch_and_warns():
    df = _data(300)
    with pytest.warns(lp.TrainingWarning, match="retrying the epoch with batch_size=25"):
        m = lp.lmer("y ~ nn(x1 + x2, module='net') + (1 | g)", df,
                    modules={"net": _OutOfMemory(limit=30)}, **{**TRAIN, "epochs": 3})
    assert m.torch_info["epochs"] == 3 and np.isfinite(m.fitted()).all()


def test_run_in_its_second_phase_resumes_to_the_same_result(tmp_path):
    """A checkpoint taken in the second phase (batches × 10, lr_decay) carries the larger
    batches, the lower rate and the epoch the phase began at, while validation keeps its
    first batches: continuing it gives the uninterrupted run, not a third phase."""
    df = _data(600, 12, 3)
    train = dict(TRAIN, patience=3, epochs=300, lr=5e-3, lr_decay=0.1, batch_growth=10)
    reference = lp.lmer(FORMULA, df, **train)
    lr = reference.history.lr.to_numpy()
    decayed = int(np.argmax(lr < 5e-3))  # epochs before the first at the lower rate
    assert 0 < decayed < len(lr) < 300
    # 540 training rows: batches of 50, then of 500
    assert set(reference.history.batch_size[decayed:]) == {500}
    ckpt = str(tmp_path / "ckpt")
    lp.lmer(FORMULA, df, checkpoint_dir=ckpt, **dict(train, epochs=decayed + 1))
    resumed = lp.lmer(FORMULA, df, checkpoint_dir=ckpt, resume=True, **train)
    np.testing.assert_array_equal(resumed.history.lr, reference.history.lr)
    np.testing.assert_array_equal(resumed.history.batch_size, reference.history.batch_size)
    np.testing.assert_array_equal(resumed.history.val_nll, reference.history.val_nll)
    np.testing.assert_array_equal(resumed.theta, reference.theta)
    assert resumed.torch_info["stop_reason"] == reference.torch_info["stop_reason"]
