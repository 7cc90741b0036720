"""Saving and loading fitted models: ``m.save(path)`` and ``lp.load(path)``.

The file is one ``torch.save`` archive holding only plain values and tensors — JSON metadata
(format name and version, formula, engine, family, settings, training facts), the training
rows of the columns the formula uses, and the estimates (θ, β, network weights). Loading
uses ``torch.load(weights_only=True)``, which refuses pickled objects, so a file from an
untrusted source cannot run code. The model is rebuilt by evaluating the formula on the
stored rows (the same encodings, levels and standardisation) and solving at the stored
estimates, without re-optimising; predictions are then those of the saved model.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import LmerpyError

FORMAT = "lmerpy-model"
VERSION = 1


class ModelFileError(LmerpyError, ValueError):
    """A file that is not a readable lmerpy model (corrupt, foreign, or a newer format), or
    a path a model cannot be written to."""


def _columns(m) -> dict:
    """The training rows of every column the model reads, as tensors or string lists."""
    data = m._data
    if data is None:
        raise ModelFileError("this model was fitted without its data frame; it cannot be "
                             "saved")
    names = [c for c in m.formula.variables() if c in data.columns]
    if m.weights_name is not None:
        names.append("(weights)")
    rows = data.loc[m.design.index]
    out = {}
    for c in names:
        s = rows[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[c] = {"kind": "categorical", "categories": [str(v) for v in s.cat.categories],
                      "codes": torch.as_tensor(s.cat.codes.to_numpy(np.int64).copy()),
                      "ordered": bool(s.cat.ordered),
                      "numeric_categories": bool(pd.api.types.is_numeric_dtype(
                          s.cat.categories.dtype))}
        elif pd.api.types.is_bool_dtype(s):
            out[c] = {"kind": "bool", "values": torch.as_tensor(s.to_numpy(bool).copy())}
        elif pd.api.types.is_integer_dtype(s):
            out[c] = {"kind": "int", "values": torch.as_tensor(s.to_numpy(np.int64).copy())}
        elif pd.api.types.is_numeric_dtype(s):
            out[c] = {"kind": "float", "values": torch.as_tensor(s.to_numpy(np.float64).copy())}
        else:
            out[c] = {"kind": "text", "values": [str(v) for v in s]}
    return out


def _frame(columns: dict) -> pd.DataFrame:
    data = {}
    for c, spec in columns.items():
        kind = spec["kind"]
        if kind == "categorical":
            cats = spec["categories"]
            if spec.get("numeric_categories"):
                cats = pd.to_numeric(pd.Series(cats)).tolist()
            data[c] = pd.Categorical.from_codes(spec["codes"].numpy(), categories=cats,
                                                ordered=spec["ordered"])
        elif kind == "text":
            data[c] = pd.Series(spec["values"], dtype=object)
        else:
            data[c] = spec["values"].numpy()
    return pd.DataFrame(data)


def save(m, path: str | os.PathLike) -> Path:
    """Write a fitted model (exact or torch, lmer or glmer) to ``path``."""
    from . import __version__

    fit = m.fit
    info = m.torch_info
    meta = {
        "format": FORMAT, "version": VERSION, "lmerpy": __version__,
        "formula": str(m.formula), "as_written": m.formula.as_written,
        "data_name": m.data_name, "weights_name": m.weights_name,
        "REML": bool(fit.REML), "kind": "glmer" if m.family is not None else "lmer",
        "family": None if m.family is None else [m.family.family, m.family.link.name,
                                                 m.family.theta],
        "nAGQ": int(getattr(fit, "nAGQ", 1)),
        "optinfo": {k: fit.optinfo.get(k) for k in ("optimizer", "code", "evals")},
        "messages": list(fit.optinfo.get("messages", [])),
        "warnings": list(fit.optinfo.get("warnings", [])),
        "engine": "exact" if info is None else "torch",
        "contrasts": dict(m.design.fixed_encoder.contrasts),
    }
    tensors = {"theta": torch.as_tensor(fit.theta),
               "beta": torch.as_tensor(fit.solution.beta)}
    if getattr(fit, "vcov_beta", None) is not None:
        tensors["vcov_beta"] = torch.as_tensor(fit.vcov_beta)
    if getattr(fit, "phi", 1.0) != 1.0:
        tensors["phi"] = torch.as_tensor(float(fit.phi), dtype=torch.float64)
    if info is not None:
        control = {k: v for k, v in info.get("control", {}).items()}
        meta["torch"] = {
            "control": control, "settings": info.get("settings", control),
            "refined": info["refined"], "quadrature": info["quadrature"],
            "theta_from": info.get("theta_from"),
            "epochs": info["epochs"], "best_epoch": info["best_epoch"],
            "best_val_nll": float(info["best_val_nll"]), "stop_reason": info["stop_reason"],
            "device": info["device"], "networks": info["networks"],
            "trained_theta": [float(v) for v in info["trained_theta"]],
            "history": info["history"].to_dict(orient="list"),
            "backfit": None if not info.get("backfit") else {
                **{k: v for k, v in info["backfit"].items() if k != "history"},
                "history": info["backfit"]["history"].to_dict(orient="list")},
        }
        tensors["networks"] = [{k: v.detach().cpu() for k, v in net.state_dict().items()}
                               for net in info["modules"].networks]
        tensors["b"] = torch.as_tensor(fit.b)
    archive = {"meta": json.dumps(meta), "data": _columns(m), "estimates": tensors}
    path = Path(path)
    if not path.parent.is_dir():
        raise ModelFileError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ModelFileError(f"cannot write {path}: it is a folder")
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(archive, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def load(path: str | os.PathLike, modules: dict | None = None):
    """Read a model written by ``save``; ``modules`` supplies custom nn(..., module=) networks
    (their weights come from the file, their code from you)."""
    try:
        archive = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as err:
        raise ModelFileError(f"{path} is not an lmerpy model file ({type(err).__name__})") \
            from None
    try:
        meta = json.loads(archive["meta"])
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{path} is not an lmerpy model file")
        if meta.get("version") != VERSION:
            raise ModelFileError(f"{path} uses model format {meta.get('version')}; this "
                                 f"lmerpy reads format {VERSION}")
        return _rebuild(meta, archive["data"], archive["estimates"], modules)
    except LmerpyError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise ModelFileError(f"{path} is damaged or not an lmerpy model file "
                             f"({type(err).__name__}: {err})") from None


def _rebuild(meta: dict, columns: dict, est: dict, modules: dict | None):
    from .design import design as make_design
    from .engines.exact import fit_lmer
    from .engines.glmm import GlmerControl, fit_glmer
    from .results.glmer import GlmerResult
    from .results.model import LmerResult

    data = _frame(columns)
    extra = ["(weights)"] if "(weights)" in data.columns else None
    from .formula import parse

    formula = parse(meta["formula"])
    try:  # keep the user's spelling (summary's Formula line) when it means the same
        written = parse(meta.get("as_written", ""))
        formula = written if written == formula else formula
    except LmerpyError:
        pass
    d = make_design(formula, data, extra_columns=extra, contrasts=meta.get("contrasts"))
    w = data["(weights)"].to_numpy(np.float64) if extra else None
    theta = est["theta"].numpy().astype(np.float64)
    beta = est["beta"].numpy().astype(np.float64)
    family = _family(meta["family"]) if meta["family"] else None
    offset = d.offset if d.offset is not None else np.zeros(d.n)
    info = None
    if meta["engine"] == "torch":
        info, nn_out = _networks(meta, d, est, modules)
        base = replace(d, offset=offset + nn_out)
    else:
        base = d
    if family is None:
        fit = fit_lmer(base, REML=meta["REML"], weights=w, fixed_theta=theta)
        if info is not None:
            from .engines.exact import ExactFit
            fit = ExactFit(d, False, fit.X, fit.fixef_names, fit.dropped, d.y,
                           offset + nn_out, w, fit.theta, fit.solution, fit.sigma, fit.b,
                           fit.pls, fit.optinfo)
    else:
        fit = fit_glmer(base, family, nAGQ=meta["nAGQ"], weights=w,
                        control=GlmerControl(check_separation=False),
                        fixed=(theta, beta, float(est["phi"]) if "phi" in est else 1.0))
        if "vcov_beta" in est:
            fit.vcov_beta = est["vcov_beta"].numpy().astype(np.float64)
        if info is not None:
            fit.b = est["b"].numpy().astype(np.float64)
            fit.eta = fit.offset + fit.X @ fit.solution.beta + d.Z @ fit.b
            fit.mu = family.link.inverse(fit.eta)
    fit.optinfo.update(meta["optinfo"])
    fit.optinfo["messages"] = list(meta["messages"])
    fit.optinfo["warnings"] = list(meta["warnings"])
    if info is not None:
        fit.optinfo["torch"] = info
    cls = GlmerResult if family is not None else LmerResult
    return cls(fit, meta["data_name"], meta["weights_name"], data)


def _networks(meta: dict, d, est: dict, modules: dict | None):
    """The trained networks rebuilt from their options (or ``modules``) and saved weights."""
    from .engines.networks import build_network
    from .engines.torch_engine import FixedPart, nn_predictor

    has_intercept = "(Intercept)" in d.X_names
    nets = []
    for inp, state in zip(d.nn, est["networks"]):
        net = build_network(inp.term, inp.X.shape[1], modules, bias=not has_intercept)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ModelFileError(f"the saved weights do not fit {inp.term}: {err}") from None
        nets.append(net.eval())
    predict = nn_predictor(nets, torch.device("cpu"))
    nn_out = predict([inp.X for inp in d.nn]) if d.nn else np.zeros(d.n)
    t = meta["torch"]
    info = {**{k: t[k] for k in ("refined", "quadrature", "epochs", "best_epoch",
                                 "best_val_nll", "stop_reason", "device", "networks")},
            "trained_theta": np.asarray(t["trained_theta"]), "engine": "torch",
            "theta_from": t.get("theta_from"),
            "history": pd.DataFrame(t["history"]),
            "backfit": None if not t.get("backfit") else {
                **t["backfit"], "history": pd.DataFrame(t["backfit"]["history"])},
            "nn_predict": predict if d.nn else None,
            "modules": FixedPart(0, np.zeros(0), nets, torch.float64),
            "control": t["control"], "settings": t.get("settings", t["control"])}
    return info, nn_out



def _family(spec: list):
    """[name, link] or [name, link, theta] (a negative binomial's θ)."""
    from .engines.family import make_family, negative_binomial

    if spec[0] == "negative.binomial":
        return negative_binomial(spec[2], spec[1])
    return make_family(spec[0], spec[1])


__all__ = ["ModelFileError", "load", "save"]
