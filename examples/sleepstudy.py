"""sleepstudy end to end: fit, lme4's summary, random effects, profile confidence intervals,
a likelihood-ratio test, predictions for a new subject, saving the model and plots."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lmerpy as lp


def main() -> None:
    sleepstudy = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    print(m.summary())
    print(m.VarCorr())
    print(m.ranef(condVar=True)["Subject"].head())
    print(m.confint())  # profile-likelihood intervals, lme4's default
    m0 = lp.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy)
    print(lp.anova(m0, m))
    new = sleepstudy.head(3).assign(Subject=["308", "new", "new"])
    print(m.predict(new, allow_new_levels=True))
    with tempfile.TemporaryDirectory() as tmp:
        m.save(Path(tmp) / "sleep.lmerpy")
        print("reloaded:", lp.load(Path(tmp) / "sleep.lmerpy").fixef().round(3).to_dict())
        try:
            import matplotlib
            matplotlib.use("Agg")
            from lmerpy import plot
            plot.caterpillar(m).savefig(Path(tmp) / "caterpillar.png")
            plot.profile(m).savefig(Path(tmp) / "profile.png")
            print("caterpillar and profile plots written")
        except lp.LmerpyError as err:  # matplotlib not installed
            print(err)


if __name__ == "__main__":
    main()
