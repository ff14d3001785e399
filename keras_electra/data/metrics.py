"""Evaluation metrics: accuracy, F1, Matthews correlation, Pearson and
Spearman correlation.
"""

import math

import numpy as np

from keras_electra.data.glue import GLUE_TASKS

# --------------------------------------------------------------------------
# Metrics.

_CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
_REGRESSION_METRICS = ("pearson", "spearman")


def _pearson(x, y):
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator == 0:
        return 0.0  # undefined for constant input; reported as 0
    return float(np.clip(np.dot(x, y) / denominator, -1.0, 1.0))


def _ranks(x):
    """1-based ranks, ties getting their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def _mcc(labels, predictions):
    classes, encoded = np.unique(
        np.concatenate([labels, predictions]), return_inverse=True
    )
    encoded = encoded.reshape(-1)
    n = len(labels)
    confusion = np.zeros((len(classes), len(classes)), dtype="float64")
    np.add.at(confusion, (encoded[:n], encoded[n:]), 1)
    true_counts, predicted_counts = confusion.sum(1), confusion.sum(0)
    correct, total = np.trace(confusion), confusion.sum()
    numerator = correct * total - np.dot(true_counts, predicted_counts)
    denominator = math.sqrt(
        (total**2 - np.dot(predicted_counts, predicted_counts))
        * (total**2 - np.dot(true_counts, true_counts))
    )
    return float(numerator / denominator) if denominator else 0.0


def classification_metrics(metrics, labels, predictions):
    """Accuracy, F1, Matthews correlation, Pearson and Spearman correlation.

    Args:
        metrics: a metric name (`"accuracy"`, `"f1"`, `"mcc"`, `"pearson"`,
            `"spearman"`), a list of them, or a GLUE task name (its
            `GLUE_TASKS[task]["metrics"]`).
        labels: array `(n,)` of class ids (float targets for the
            correlations).
        predictions: array `(n,)` of predicted class ids or scores, or
            `(n, num_classes)` logits / probabilities (arg-maxed for the
            classification metrics).

    Returns:
        dict metric name -> float. `f1` is binary, for class 1. `mcc` is the
        multi-class Matthews correlation; it and the correlations are 0.0
        when undefined (e.g. constant predictions).

    Example:
    ```python
    from keras_electra.data import classification_metrics

    classification_metrics("mrpc", [1, 0, 1, 1], [1, 0, 0, 1])
    # {'accuracy': 0.75, 'f1': 0.8}
    classification_metrics(["pearson", "spearman"], [1.0, 2.0, 3.0],
                           [1.1, 1.9, 3.5])
    ```
    """
    if isinstance(metrics, str):
        key = metrics.lower().replace("-", "")
        metrics = GLUE_TASKS[key]["metrics"] if key in GLUE_TASKS else [metrics]
    metrics = list(metrics)
    valid = _CLASSIFICATION_METRICS + _REGRESSION_METRICS
    unknown = [name for name in metrics if name not in valid]
    if unknown:
        raise ValueError(
            f"Unknown metric(s) {unknown}; valid metrics: {list(valid)} or a "
            f"GLUE task ({sorted(GLUE_TASKS)})."
        )
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.ndim != 1:
        raise ValueError(f"`labels` must be 1-D, got shape {labels.shape}.")
    if len(labels) == 0:
        raise ValueError("`labels` is empty.")
    if predictions.ndim not in (1, 2) or len(predictions) != len(labels):
        raise ValueError(
            f"`predictions` must have shape ({len(labels)},) or "
            f"({len(labels)}, num_classes); got {predictions.shape}."
        )
    for name, array in (("labels", labels), ("predictions", predictions)):
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"`{name}` has NaN or infinite values.")
    results = {}
    for name in metrics:
        if name in _CLASSIFICATION_METRICS:
            predicted = predictions
            if predicted.ndim == 2:
                predicted = (
                    predicted[:, 0]
                    if predicted.shape[1] == 1
                    else predicted.argmax(axis=-1)
                )
            if name == "accuracy":
                results[name] = float(np.mean(predicted == labels))
            elif name == "f1":
                true_positives = np.sum((predicted == 1) & (labels == 1))
                wrong = np.sum((predicted == 1) != (labels == 1))
                denominator = 2 * true_positives + wrong
                results[name] = (
                    float(2 * true_positives / denominator)
                    if denominator
                    else 0.0
                )
            else:
                results[name] = _mcc(labels, predicted)
        else:
            if predictions.ndim == 2 and predictions.shape[1] != 1:
                raise ValueError(
                    f"`{name}` needs one score per example; got predictions "
                    f"of shape {predictions.shape}."
                )
            x = labels.astype("float64")
            y = predictions.reshape(-1).astype("float64")
            if name == "spearman":
                x, y = _ranks(x), _ranks(y)
            results[name] = _pearson(x, y)
    return results
