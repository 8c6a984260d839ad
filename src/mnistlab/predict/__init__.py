"""Classifying new digit images with a trained run: MNIST-style preprocessing and prediction."""

from mnistlab.predict.classify import (
    Classifier,
    Prediction,
    build_classifier,
    load_classifier,
    predict_files,
    run_classifier,
)
from mnistlab.predict.images import load_digit, mnist_style

__all__ = [
    "Classifier",
    "Prediction",
    "build_classifier",
    "load_classifier",
    "load_digit",
    "mnist_style",
    "predict_files",
    "run_classifier",
]
