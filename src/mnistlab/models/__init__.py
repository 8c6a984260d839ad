"""Models: specs, Keras-faithful layers and initialisers, the MLP and its Keras-style summary."""

from mnistlab.models.build import build_model
from mnistlab.models.cnn import CNNNet, build_cnn
from mnistlab.models.initializers import initialize
from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout, activation_function
from mnistlab.models.mlp import MLPNet, build_mlp
from mnistlab.models.spec import (
    ActivationSpec,
    CNNSpec,
    HiddenLayer,
    InitializerSpec,
    MLPSpec,
    ModelSpec,
    RegularizerSpec,
)
from mnistlab.models.summary import summary

__all__ = [
    "Activation",
    "ActivationSpec",
    "BatchNorm",
    "CNNNet",
    "CNNSpec",
    "Dense",
    "Dropout",
    "HiddenLayer",
    "InitializerSpec",
    "MLPNet",
    "MLPSpec",
    "ModelSpec",
    "RegularizerSpec",
    "activation_function",
    "build_cnn",
    "build_mlp",
    "build_model",
    "initialize",
    "summary",
]
