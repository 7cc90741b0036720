"""Designs: a Formula evaluated on a DataFrame (y, X, nn inputs, Z_k and Λ_k(θ))."""

from .covariance import CovarianceSpec, Diagonal, RBFKernel, Unstructured
from .model import ModelDesign, NewDataDesign, design
from .nn import NNInput
from .random import RandomTermDesign

__all__ = ["CovarianceSpec", "Diagonal", "ModelDesign", "NNInput", "NewDataDesign",
           "RBFKernel", "RandomTermDesign", "Unstructured", "design"]
