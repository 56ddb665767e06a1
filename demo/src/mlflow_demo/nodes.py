"""A tiny classification project: synthetic data, a logistic regression, its accuracy."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression


def make_data(data: dict) -> dict:
    rng = np.random.default_rng(data["seed"])
    x = rng.normal(size=(data["n_samples"], data["n_features"]))
    y = (x @ np.arange(1, data["n_features"] + 1) + rng.normal(scale=data["noise"], size=len(x)) > 0).astype(int)
    split = int(len(x) * (1 - data["test_share"]))
    return {"x_train": x[:split], "y_train": y[:split], "x_test": x[split:], "y_test": y[split:]}


def train(dataset: dict, model: dict) -> LogisticRegression:
    return LogisticRegression(C=model["C"], max_iter=model["max_iter"]).fit(dataset["x_train"], dataset["y_train"])


def evaluate(classifier: LogisticRegression, dataset: dict) -> dict:
    accuracy = float(classifier.score(dataset["x_test"], dataset["y_test"]))
    return {"accuracy": accuracy, "n_test": float(len(dataset["y_test"]))}
