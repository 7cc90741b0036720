"""lmerpy: lme4's mixed-model formulas and results in Python, extended to neural networks."""

from __future__ import annotations

from . import datasets, plot
from .allfit import AllFit, allFit
from .api import glmer, glmer_nb, lmer
from .design import ModelDesign, design
from .engines.exact import (
    ConvergenceWarning,
    LmerControl,
    RankDeficiencyWarning,
    ScaleWarning,
    SingularFitWarning,
)
from .engines.family import (
    Family,
    Gamma,
    binomial,
    gaussian,
    inverse_gaussian,
    negative_binomial,
    poisson,
)
from .engines.glmm import GlmerControl, SeparationWarning
from .engines.profile import ProfileWarning
from .engines.torch_control import TorchControl
from .engines.torch_engine import TrainingWarning
from .errors import DataError, FormulaError, LmerpyError, ModelError
from .formula import Formula, parse
from .io import ModelFileError, load
from .lmlist import lmList
from .pbmodcomp import PBModComp, PBmodcomp
from .results.anova import anova, contest
from .results.emmeans import emmeans, emtrends
from .results.glmer import GlmerResult
from .results.joint_tests import joint_tests
from .results.ls_means import ls_means
from .results.model import LmerResult
from .results.performance import check_collinearity, check_overdispersion, model_performance
from .results.tidy import augment, glance, tidy
from .results.variance_parts import icc, r2_nakagawa
from .results.wald_anova import wald_anova as Anova
from .updates import drop1, influence, ranova, step, update

__version__ = "0.1.0"

__all__ = ["DataError", "Formula", "FormulaError", "LmerpyError", "ModelError", "datasets",
           "parse", "design", "ModelDesign", "lmer", "anova", "LmerResult", "LmerControl",
           "ConvergenceWarning", "SingularFitWarning", "RankDeficiencyWarning", "TorchControl",
           "TrainingWarning", "__version__", "glmer", "GlmerResult", "GlmerControl", "Family",
           "binomial", "poisson", "SeparationWarning", "load", "ModelFileError", "plot",
           "ProfileWarning", "update", "drop1", "ranova", "step", "contest", "ls_means",
           "lmList", "influence", "glmer_nb", "negative_binomial", "emmeans",
           "emtrends", "r2_nakagawa", "icc", "Anova", "joint_tests",
           "check_overdispersion", "model_performance", "Gamma", "inverse_gaussian",
           "gaussian", "allFit", "AllFit", "ScaleWarning", "tidy", "glance", "augment",
           "check_collinearity", "PBmodcomp", "PBModComp"]
