"""Daily visits to stores: overdispersed counts, stores as random intercepts, and a
non-linear effect of temperature — lme4's glmer.nb, then a network with the negative
binomial's θ trained alongside, and performance's checks."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def simulate(seed: int = 3) -> pd.DataFrame:
    """60 stores × 50 days; log μ = 2 + 0.2·[weekend] + bump(temperature) + store,
    store sd 0.4, negative binomial with size θ = 4 (variance μ + μ²/4)."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame([(f"st{s:02d}", day) for s in range(60) for day in range(50)],
                     columns=["store", "day"])
    d["weekend"] = (d.day % 7 >= 5).astype(int)
    d["temp"] = rng.uniform(-5, 35, len(d)).round(1)
    bump = 0.6 * np.exp(-((d.temp - 20) / 7) ** 2)  # visits peak on mild days
    mu = np.exp(2 + 0.2 * d.weekend + bump + rng.normal(0, 0.4, 60)[d.store.str[2:]
                                                                     .astype(int)])
    d["visits"] = rng.negative_binomial(4.0, 4.0 / (4.0 + mu))
    # for the linear models: centred and in tens of degrees, so that lme4's check of the
    # Hessian does not ask to "Rescale variables?" (the fits are the same models)
    d["temp10"] = (d.temp - 15) / 10
    return d


def main() -> None:
    visits = simulate()
    poisson = lp.glmer("visits ~ weekend + temp10 + (1 | store)", visits, family="poisson")
    print(lp.check_overdispersion(poisson))            # the Poisson is far too narrow
    nb = lp.glmer_nb("visits ~ weekend + temp10 + (1 | store)", visits)
    print(nb.summary())
    print(lp.r2_nakagawa(nb))
    # temperature's effect is a bump, not a line: a network learns it, and θ with it
    net = lp.glmer_nb("visits ~ weekend + nn(temp, hidden=(16, 8), dropout=0.0) "
                      "+ (1 | store)", visits, seed=0, verbose=False,
                      epochs=5 if QUICK else 100, batch_size=250)
    print(f"θ: linear {nb.family.theta:.2f} | network {net.family.theta:.2f} (as trained "
          f"{net.history['glmer.nb.theta'].iloc[-1]:.2f}; truth 4)")
    print("log-likelihood: linear temperature", round(float(nb.logLik()), 1),
          "| network", round(float(net.logLik()), 1))
    new = pd.DataFrame({"store": "st00", "weekend": 0, "temp": [0.0, 20.0, 30.0]})
    print(net.predict(new, type="response").round(1).tolist())   # expected visits


if __name__ == "__main__":
    main()
