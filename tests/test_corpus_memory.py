"""Vocabulary training streams its corpus: a corpus ten times larger needs
no more memory (benchmarks/corpus_memory.py measures peak RSS of every
phase on larger corpora).

The limit is on the Python heap (`tracemalloc`), where the corpus would be
held if it were: TensorFlow's reader and pre-tokenizer keep their own
buffers, the same whatever the corpus size. Backend-free (the data path
runs on TensorFlow whatever the Keras backend): TensorFlow only.
"""

import random
import tracemalloc

import pytest

from conftest import backend
from keras_electra.pretraining.vocabulary import train_vocabulary

pytestmark = pytest.mark.skipif(
    backend() != "tensorflow",
    reason="the data path runs on TensorFlow whatever the Keras backend",
)

WORDS = "the a cat dog sat ran on mat house big small red blue green".split()


def write_corpus(path, lines):
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as file:
        for _ in range(lines):
            words = [rng.choice(WORDS) for _ in range(8)]
            file.write(" ".join(words) + ".\n")
    return str(path)


def python_peak(function):
    """Peak Python heap while `function()` runs, in bytes, and its value."""
    tracemalloc.start()
    try:
        value = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, value


def test_a_ten_times_larger_corpus_needs_no_more_memory(tmp_path):
    small = write_corpus(tmp_path / "small.txt", 4_000)
    large = write_corpus(tmp_path / "large.txt", 40_000)  # 2.4 MB
    peak_small, _ = python_peak(lambda: train_vocabulary([small], 60, verbose=0))
    peak_large, vocabulary = python_peak(
        lambda: train_vocabulary([large], 60, verbose=0)
    )
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert peak_large < 1.5 * peak_small + 2**20
