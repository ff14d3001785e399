"""SQuAD 1.1 / 2.0: loading, windows over long contexts, answer spans, and
the official metric.
"""

import collections
import importlib.util
import json
import re
import string

import numpy as np

from keras_electra.data.sources import _decode
from keras_electra.data.sources import _hf_load_dataset

# --------------------------------------------------------------------------
# SQuAD.


def _squad_example(qa, context, title):
    answers = qa.get("answers") or []
    if qa.get("is_impossible"):
        answers = []
    return {
        "id": str(qa["id"]),
        "title": title,
        "question": qa["question"],
        "context": context,
        "answers": {
            "text": [answer["text"] for answer in answers],
            "answer_start": [int(answer["answer_start"]) for answer in answers],
        },
    }


def load_squad(version="1.1", split="train", path=None):
    """SQuAD 1.1 or 2.0 questions, one dict per question.

    With `path`, reads an official SQuAD JSON file (`train-v1.1.json`,
    `dev-v2.0.json`, ...). Without it, uses Hugging Face `datasets`
    (`rajpurkar/squad`, `rajpurkar/squad_v2`) if installed, else
    `tensorflow_datasets` (`squad/v1.1`, `squad/v2.0`).

    Each example fits `keras_electra.data.squad`: pass `context`, `question` and
    `answers["answer_start"][0]`, `answers["text"][0]` to `squad_windows`
    for training, and `{id: answers["text"]}` as `squad_metric`'s
    references (an empty list: unanswerable, SQuAD 2.0).

    Args:
        version: `"1.1"` or `"2.0"`.
        split: `"train"` or `"dev"` (also `"validation"`).
        path: str or `None`. An official SQuAD JSON file.

    Returns:
        list of `{"id", "title", "question", "context", "answers":
        {"text": list of str, "answer_start": list of int}}`.

    Example:
    ```python
    import json
    import os
    import tempfile
    from keras_electra.data import load_squad

    path = os.path.join(tempfile.mkdtemp(), "dev-v2.0.json")
    paragraph = {"context": "It is in Paris.", "qas": [
        {"id": "q1", "question": "Where is it?", "is_impossible": False,
         "answers": [{"text": "Paris", "answer_start": 9}]},
        {"id": "q2", "question": "Who?", "is_impossible": True,
         "answers": [], "plausible_answers": [
             {"text": "It", "answer_start": 0}]},
    ]}
    with open(path, "w") as f:
        json.dump({"version": "v2.0", "data": [
            {"title": "Paris", "paragraphs": [paragraph]}]}, f)
    examples = load_squad("2.0", "dev", path=path)
    [e["answers"]["text"] for e in examples]  # [['Paris'], []]
    ```
    """
    version = str(version).lstrip("v")
    if version not in ("1.1", "2.0"):
        raise ValueError(
            f"SQuAD `version` must be '1.1' or '2.0', got {version!r}."
        )
    split = {"dev": "validation", "val": "validation"}.get(split, split)
    if split not in ("train", "validation"):
        raise ValueError(
            "SQuAD `split` must be 'train' or 'dev' ('validation'), got "
            f"{split!r}."
        )
    if path is not None:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
        if not isinstance(content, dict) or "data" not in content:
            raise ValueError(
                f"{path} is not a SQuAD file (no top-level 'data' list)."
            )
        examples = []
        for article in content["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    examples.append(
                        _squad_example(
                            qa, paragraph["context"], article.get("title", "")
                        )
                    )
        return examples
    load_dataset = _hf_load_dataset()
    if load_dataset is not None:
        name = "rajpurkar/squad" if version == "1.1" else "rajpurkar/squad_v2"
        data = load_dataset(name, split=split)
        return [
            {
                "id": e["id"],
                "title": e["title"],
                "question": e["question"],
                "context": e["context"],
                "answers": {
                    "text": list(e["answers"]["text"]),
                    "answer_start": [
                        int(s) for s in e["answers"]["answer_start"]
                    ],
                },
            }
            for e in data
        ]
    if importlib.util.find_spec("tensorflow_datasets") is not None:
        import tensorflow_datasets as tfds

        data = tfds.as_numpy(tfds.load(f"squad/v{version}", split=split))
        return [
            {
                "id": _decode(e["id"]),
                "title": _decode(e["title"]),
                "question": _decode(e["question"]),
                "context": _decode(e["context"]),
                "answers": {
                    "text": [_decode(t) for t in e["answers"]["text"]],
                    "answer_start": [
                        int(s) for s in e["answers"]["answer_start"]
                    ],
                },
            }
            for e in data
        ]
    raise ImportError(
        f"load_squad({version!r}, {split!r}) needs the data: pass `path` (an "
        "official SQuAD JSON file), or install Hugging Face `datasets` "
        "(pip install datasets) or `tensorflow-datasets`."
    )


# Words as the WordPiece pre-tokenizer sees them: runs of letters and digits,
# or single punctuation marks. Each keeps its character span in the context.
_WORD = re.compile(r"\w+|[^\w\s]")


def squad_windows(
    tokenizer,
    question,
    context,
    sequence_length=384,
    doc_stride=128,
    max_question_length=64,
    answer_start=None,
    answer_text=None,
):
    """Pack a question and a long context into overlapping windows.

    Each window is `[CLS] question [SEP] context piece [SEP]`, padded to
    `sequence_length`; consecutive windows start `doc_stride` context tokens
    apart, as in the original BERT and ELECTRA SQuAD code.

    Args:
        tokenizer: an `ElectraTokenizer`.
        question: str.
        context: str.
        sequence_length: int. Window length in tokens.
        doc_stride: int. Context tokens between window starts.
        max_question_length: int. Questions are cut to this many tokens.
        answer_start: int or `None`. Character offset of the answer in
            `context` (training data); `None` for no answer.
        answer_text: str or `None`. The answer.

    Returns:
        A list of windows, dicts with `token_ids`, `segment_ids`,
        `padding_mask` (int arrays), `offsets` (per token, the `(start, end)`
        characters of its context word, or `None` outside the context),
        `start_position` and `end_position` (the answer's tokens, 0 = `[CLS]`
        when the window does not hold it).

    Example:
    ```python
    import keras_electra
    from keras_electra.data.squad import squad_windows

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "where",
                  "is", "it", "?", "in", "paris", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    [window] = squad_windows(
        tokenizer, "Where is it?", "It is in Paris.", sequence_length=16,
        answer_start=9, answer_text="Paris",
    )
    window["start_position"], window["end_position"]  # (9, 9)
    ```
    """
    question_ids = _piece_ids(tokenizer, question)[:max_question_length]
    words = [(m.start(), m.end()) for m in _WORD.finditer(context)]
    context_ids, context_offsets = [], []
    for start, end in words:
        pieces = _piece_ids(tokenizer, context[start:end])
        context_ids += pieces
        context_offsets += [(start, end)] * len(pieces)
    room = sequence_length - len(question_ids) - 3
    if room < 1:
        raise ValueError(
            f"`sequence_length={sequence_length}` leaves no room for the "
            f"context after a question of {len(question_ids)} tokens."
        )
    if doc_stride < 1:
        raise ValueError(f"`doc_stride` must be >= 1, got {doc_stride}.")
    answer_tokens = None
    if answer_start is not None and answer_text:
        answer_end = answer_start + len(answer_text)
        inside = [
            i
            for i, (start, end) in enumerate(context_offsets)
            if start < answer_end and end > answer_start
        ]
        if inside:
            answer_tokens = (inside[0], inside[-1])
    windows = []
    for first in range(0, max(1, len(context_ids)), doc_stride):
        ids = context_ids[first : first + room]
        token_ids = (
            [tokenizer.cls_token_id]
            + question_ids
            + [tokenizer.sep_token_id]
            + ids
            + [tokenizer.sep_token_id]
        )
        shift = len(question_ids) + 2 - first
        start_position = end_position = 0
        if answer_tokens and first <= answer_tokens[0] and (
            answer_tokens[1] < first + len(ids)
        ):
            start_position = answer_tokens[0] + shift
            end_position = answer_tokens[1] + shift
        padding = sequence_length - len(token_ids)
        segment_ids = [0] * (len(question_ids) + 2) + [1] * (len(ids) + 1)
        windows.append(
            {
                "token_ids": np.array(
                    token_ids + [tokenizer.pad_token_id] * padding, "int32"
                ),
                "segment_ids": np.array(segment_ids + [0] * padding, "int32"),
                "padding_mask": np.array(
                    [1] * len(token_ids) + [0] * padding, "int32"
                ),
                "offsets": [None] * (len(question_ids) + 2)
                + context_offsets[first : first + len(ids)]
                + [None] * (padding + 1),
                "start_position": start_position,
                "end_position": end_position,
            }
        )
        if first + room >= len(context_ids):
            break
    return windows


def answer_from_span(context, window, start, end):
    """The context text covered by tokens `start..end` of `window`."""
    offsets = window["offsets"]
    if offsets[start] is None or offsets[end] is None:
        return ""
    return context[offsets[start][0] : offsets[end][1]]


def squad_answer(
    context,
    windows,
    start_logits,
    end_logits,
    n_best_size=20,
    max_answer_length=30,
    no_answer_threshold=None,
):
    """The answer text for one question, over all its context windows.

    Args:
        context: str. The context the windows were cut from.
        windows: the list `squad_windows` returned for this question.
        start_logits, end_logits: arrays `(num_windows, sequence_length)`,
            the model's outputs for those windows.
        n_best_size, max_answer_length: as in `best_spans`.
        no_answer_threshold: float or `None`. SQuAD 2.0: answer `""` when the
            best `[CLS]` score over the windows beats the best span's by more
            than this. `None` (SQuAD 1.1) always answers.

    Returns:
        The answer text, `""` for no answer.
    """
    if len(windows) != len(start_logits) or len(windows) != len(end_logits):
        raise ValueError(
            f"Got {len(windows)} windows but logits for {len(start_logits)} "
            f"and {len(end_logits)}."
        )
    best, best_score = "", -np.inf
    no_answer_score = -np.inf
    for window, starts, ends in zip(windows, start_logits, end_logits):
        context_mask = np.array([o is not None for o in window["offsets"]])
        no_answer_score = max(no_answer_score, starts[0] + ends[0])
        for start, end, score in best_spans(
            starts, ends, context_mask, n_best_size, max_answer_length
        ):
            if score > best_score:
                best = answer_from_span(context, window, start, end)
                best_score = score
    if (
        no_answer_threshold is not None
        and no_answer_score - best_score > no_answer_threshold
    ):
        return ""
    return best


def _piece_ids(tokenizer, text):
    return np.asarray(tokenizer(text)).tolist()


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
    from keras_electra.data.squad import best_spans

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
    from keras_electra.data.squad import squad_metric

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
