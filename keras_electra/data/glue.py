"""The GLUE benchmark: `GLUE_TASKS` and `load_glue`, from the official TSV
distribution or from Hugging Face `datasets` / `tensorflow_datasets`.
"""

import importlib.util
import os
import warnings

import numpy as np

from keras_electra.data.sources import _decode
from keras_electra.data.sources import _hf_load_dataset
from keras_electra.data.text_classification import _INT
from keras_electra.data.text_classification import _parse_labels

# --------------------------------------------------------------------------
# GLUE.


def _glue(directory, text_columns, label_names, metrics, epochs=3, **tsv):
    return {
        "directory": directory,
        "text_columns": text_columns,
        "num_classes": len(label_names) if label_names else 1,
        "label_names": label_names,
        "metrics": metrics,
        "epochs": epochs,
        "splits": ("train", "validation", "test"),
        "tsv_text_columns": tsv.get("tsv_text_columns", text_columns),
        "tsv_label_column": tsv.get("tsv_label_column", "label"),
        "tsv_id_column": tsv.get("tsv_id_column", "index"),
        "tsv_headerless_columns": tsv.get("tsv_headerless_columns"),
    }


# The nine GLUE tasks. `text_columns` and `label_names` follow Hugging Face
# `datasets` / `tensorflow_datasets` (label i is `label_names[i]`); the
# `tsv_*` entries describe the official GLUE distribution's TSV files;
# `epochs` is the ELECTRA paper's fine-tuning epochs (10 for RTE and STS-B).
GLUE_TASKS = {
    "cola": _glue(
        "CoLA",
        ("sentence",),
        ("unacceptable", "acceptable"),
        ("mcc",),
        # train.tsv / dev.tsv have no header; test.tsv has one.
        tsv_headerless_columns=(
            "source", "label", "original_label", "sentence"
        ),
    ),
    "sst2": _glue(
        "SST-2", ("sentence",), ("negative", "positive"), ("accuracy",)
    ),
    "mrpc": _glue(
        "MRPC",
        ("sentence1", "sentence2"),
        ("not_equivalent", "equivalent"),
        ("accuracy", "f1"),
        tsv_text_columns=("#1 String", "#2 String"),
        tsv_label_column="Quality",
    ),
    "qqp": _glue(
        "QQP",
        ("question1", "question2"),
        ("not_duplicate", "duplicate"),
        ("accuracy", "f1"),
        tsv_label_column="is_duplicate",
        tsv_id_column="id",
    ),
    "stsb": _glue(
        "STS-B",
        ("sentence1", "sentence2"),
        None,
        ("pearson", "spearman"),
        epochs=10,
        tsv_label_column="score",
    ),
    "mnli": _glue(
        "MNLI",
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        ("accuracy",),
        tsv_text_columns=("sentence1", "sentence2"),
        tsv_label_column="gold_label",
    ),
    "qnli": _glue(
        "QNLI",
        ("question", "sentence"),
        ("entailment", "not_entailment"),
        ("accuracy",),
    ),
    "rte": _glue(
        "RTE",
        ("sentence1", "sentence2"),
        ("entailment", "not_entailment"),
        ("accuracy",),
        epochs=10,
    ),
    "wnli": _glue(
        "WNLI",
        ("sentence1", "sentence2"),
        ("not_entailment", "entailment"),
        ("accuracy",),
    ),
}
GLUE_TASKS["mnli"]["splits"] = (
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
)

_SPLIT_ALIASES = {
    "dev": "validation",
    "val": "validation",
    "dev_matched": "validation_matched",
    "dev_mismatched": "validation_mismatched",
}
_GLUE_FILES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "test": "test.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
    "test_matched": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}


def _glue_task(task):
    key = str(task).lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(
            f"Unknown GLUE task {task!r}; valid tasks: {sorted(GLUE_TASKS)}."
        )
    return key, GLUE_TASKS[key]


def _glue_split(key, info, split):
    split = _SPLIT_ALIASES.get(split, split)
    if key == "mnli" and split in ("validation", "test"):
        split += "_matched"
    if split not in info["splits"]:
        raise ValueError(
            f"GLUE {key} has no split {split!r}; its splits: "
            f"{list(info['splits'])} (also 'dev' for the validation split)."
        )
    return split


def _read_glue_tsv(path, info, split):
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = [line.rstrip("\r\n") for line in file]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"{path} is empty.")
    text_columns = info["tsv_text_columns"]
    header = lines[0].split("\t")
    if all(column in header for column in text_columns):
        body = lines[1:]
    elif info["tsv_headerless_columns"] is not None:
        header = list(info["tsv_headerless_columns"])
        body = lines
    else:
        raise ValueError(
            f"{path}: expected columns {list(text_columns)}; the header is "
            f"{header}."
        )
    position = {column: i for i, column in enumerate(header)}
    label_column = info["tsv_label_column"]
    has_labels = label_column in position and not split.startswith("test")
    id_column = info["tsv_id_column"]
    texts, raw_labels, numbers, ids = [], [], [], []
    needed = [position[c] for c in text_columns]
    if has_labels:
        needed.append(position[label_column])
    skipped = 0
    start = 2 if body is not lines else 1
    for number, line in enumerate(body, start=start):
        fields = line.split("\t")
        if len(fields) <= max(needed):
            skipped += 1
            continue
        parts = tuple(fields[position[c]] for c in text_columns)
        texts.append(parts[0] if len(parts) == 1 else parts)
        if has_labels:
            raw_labels.append(fields[position[label_column]])
            numbers.append(number)
        column = position.get(id_column, len(fields))
        row_id = fields[column] if column < len(fields) else ""
        if _INT.fullmatch(row_id):
            ids.append(int(row_id))
        else:
            ids.append(len(ids))
    if skipped:
        warnings.warn(
            f"{path}: skipped {skipped} malformed line(s) with too few fields.",
            stacklevel=3,
        )
    if not texts:
        raise ValueError(f"{path} has no rows.")
    if not has_labels:
        dtype = "float32" if info["label_names"] is None else "int32"
        labels = np.full(len(texts), -1, dtype=dtype)
    elif info["label_names"] is None:
        try:
            labels = np.array([float(v) for v in raw_labels], dtype="float32")
        except ValueError:
            raise ValueError(f"{path}: non-numeric score in {raw_labels[:5]}.")
    else:
        labels, _ = _parse_labels(
            raw_labels, numbers, info["label_names"], path
        )
    return {"texts": texts, "labels": labels, "ids": np.array(ids, "int64")}


def _from_columns(columns, labels, ids):
    texts = list(columns[0]) if len(columns) == 1 else list(zip(*columns))
    return texts, labels, ids


def load_glue(task, split, data_dir=None):
    r"""One split of a GLUE task.

    With `data_dir`, reads the official GLUE distribution
    (`<data_dir>/<CoLA|SST-2|MRPC|QQP|STS-B|MNLI|QNLI|RTE|WNLI>/train.tsv`,
    `dev.tsv`, `test.tsv`; MNLI: `dev_matched.tsv`, `dev_mismatched.tsv`,
    `test_matched.tsv`, `test_mismatched.tsv`). Without it, uses Hugging
    Face `datasets` (`nyu-mll/glue`) if installed, else
    `tensorflow_datasets` (`glue/<task>`); both download the data.

    Args:
        task: one of `GLUE_TASKS` (`"cola"`, `"sst2"`, `"mrpc"`, `"qqp"`,
            `"stsb"`, `"mnli"`, `"qnli"`, `"rte"`, `"wnli"`; `"SST-2"` etc.
            work too).
        split: `"train"`, `"validation"` (or `"dev"`), `"test"`; for MNLI
            `"validation_matched"` (= `"dev"`), `"validation_mismatched"`,
            `"test_matched"` (= `"test"`), `"test_mismatched"`.
        data_dir: str or `None`. The GLUE distribution's root directory.

    Returns:
        `{"texts": list of str, or of (str, str) for sentence-pair tasks,
        "labels": int32 array (float32 scores for STS-B; -1 in test splits,
        which have no labels), "ids": int64 array}`. Label `i` is
        `GLUE_TASKS[task]["label_names"][i]`.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.data import GLUE_TASKS, load_glue

    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, "SST-2"))
    with open(os.path.join(root, "SST-2", "dev.tsv"), "w") as f:
        f.write("sentence\tlabel\na gem .\t1\ndull .\t0\n")
    data = load_glue("sst2", "dev", data_dir=root)
    data["texts"], data["labels"]  # (['a gem .', 'dull .'], [1, 0])
    GLUE_TASKS["sst2"]["metrics"]  # ('accuracy',)
    ```
    """
    key, info = _glue_task(task)
    split = _glue_split(key, info, split)
    if data_dir is not None:
        path = os.path.join(data_dir, info["directory"], _GLUE_FILES[split])
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No {path}: expected the official GLUE layout "
                f"<data_dir>/{info['directory']}/{_GLUE_FILES[split]}."
            )
        return _read_glue_tsv(path, info, split)
    columns = info["text_columns"]
    load_dataset = _hf_load_dataset()
    if load_dataset is not None:
        data = load_dataset("nyu-mll/glue", key, split=split)
        texts, labels, ids = _from_columns(
            [data[c] for c in columns], data["label"], data["idx"]
        )
    elif importlib.util.find_spec("tensorflow_datasets") is not None:
        import tensorflow_datasets as tfds

        examples = list(tfds.as_numpy(tfds.load(f"glue/{key}", split=split)))
        texts, labels, ids = _from_columns(
            [[_decode(e[c]) for e in examples] for c in columns],
            [e["label"] for e in examples],
            [e["idx"] for e in examples],
        )
    else:
        raise ImportError(
            f"load_glue({task!r}, {split!r}) needs the data: pass `data_dir` "
            "(the official GLUE TSV distribution), or install Hugging Face "
            "`datasets` (pip install datasets) or `tensorflow-datasets`."
        )
    dtype = "float32" if info["label_names"] is None else "int32"
    return {
        "texts": texts,
        "labels": np.asarray(labels, dtype=dtype),
        "ids": np.asarray(ids, dtype="int64"),
    }
