"""SQuAD answer decoding and the official exact-match / F1 metric."""

import collections
import re
import string

import numpy as np


def best_spans(
    start_logits,
    end_logits,
    context_mask,
    n_best_size=20,
    max_answer_length=30,
    no_answer_threshold=None,
):
    """The `n_best_size` best answer spans of one window, best first.

    Args:
        start_logits, end_logits: arrays of shape `(sequence_length,)`.
        context_mask: boolean array, `True` on context tokens (answers may
            only start and end there).
        n_best_size: int. Start and end candidates considered, and spans
            returned.
        max_answer_length: int. Longest answer in tokens.
        no_answer_threshold: float or `None`. SQuAD 2.0: when the `[CLS]`
            ("no answer") score `start_logits[0] + end_logits[0]` beats the
            best span's score by more than this, return `[]`.

    Returns:
        A list of `(start, end, score)` token spans, `end` inclusive.

    Example:
    ```python
    import numpy as np
    from keras_electra.squad import best_spans

    start = np.array([0.0, 1.0, 5.0, 0.0])
    end = np.array([0.0, 0.0, 1.0, 4.0])
    best_spans(start, end, np.array([False, True, True, True]))[0]
    # (2, 3, 9.0)
    ```
    """
    start_logits = np.asarray(start_logits, "float64")
    end_logits = np.asarray(end_logits, "float64")
    context_mask = np.asarray(context_mask, bool)
    if not start_logits.shape == end_logits.shape == context_mask.shape:
        raise ValueError(
            "start_logits, end_logits and context_mask must have the same "
            f"shape, got {start_logits.shape}, {end_logits.shape} and "
            f"{context_mask.shape}."
        )
    candidates = np.flatnonzero(context_mask)
    starts = candidates[np.argsort(-start_logits[candidates])][:n_best_size]
    ends = candidates[np.argsort(-end_logits[candidates])][:n_best_size]
    spans = [
        (int(s), int(e), float(start_logits[s] + end_logits[e]))
        for s in starts
        for e in ends
        if s <= e < s + max_answer_length
    ]
    spans.sort(key=lambda span: -span[2])
    spans = spans[:n_best_size]
    if no_answer_threshold is not None:
        no_answer_score = start_logits[0] + end_logits[0]
        best = spans[0][2] if spans else -np.inf
        if no_answer_score - best > no_answer_threshold:
            return []
    return spans


def normalize_answer(text):
    """Lower-case; drop punctuation, English articles and extra spaces."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction, truth):
    predicted = normalize_answer(prediction).split()
    true = normalize_answer(truth).split()
    if not predicted or not true:
        # SQuAD 2.0: an empty answer is right only against an empty answer.
        return float(predicted == true)
    common = collections.Counter(predicted) & collections.Counter(true)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(true)
    return 2 * precision * recall / (precision + recall)


def squad_metric(predictions, references):
    """The official SQuAD 1.1 / 2.0 exact match and F1, in percent.

    Each prediction is scored against its best-matching reference answer.

    Args:
        predictions: dict question id -> predicted answer text (`""` for no
            answer).
        references: dict question id -> list of acceptable answer texts (an
            empty list: unanswerable, SQuAD 2.0).

    Returns:
        `{"exact_match": float, "f1": float}`.

    Example:
    ```python
    from keras_electra.squad import squad_metric

    squad_metric({"q1": "the Eiffel Tower"}, {"q1": ["Eiffel Tower"]})
    # {'exact_match': 100.0, 'f1': 100.0}
    ```
    """
    missing = sorted(set(references) - set(predictions))
    if missing:
        raise ValueError(
            f"No prediction for {len(missing)} question(s), e.g. {missing[:3]}."
        )
    if not references:
        raise ValueError("`references` is empty.")
    exact = f1 = 0.0
    for question_id, answers in references.items():
        answers = answers or [""]
        prediction = predictions[question_id]
        exact += max(
            float(normalize_answer(prediction) == normalize_answer(answer))
            for answer in answers
        )
        f1 += max(_f1(prediction, answer) for answer in answers)
    count = len(references)
    return {"exact_match": 100.0 * exact / count, "f1": 100.0 * f1 / count}
