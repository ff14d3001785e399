"""The data path streams its corpus: on a corpus ten times larger,
vocabulary training, shard writing and reading the shards back need no
more memory (benchmarks/corpus_memory.py measures the peak RSS of every
phase on corpora of hundreds of MB).

The limit is on the Python heap (`tracemalloc`), where the corpus would be
held if it were: TensorFlow's reader and pre-tokenizer keep their own
buffers, the same whatever the corpus size. Backend-free (the data path
runs on TensorFlow whatever the Keras backend): TensorFlow only.
"""

import random
import tracemalloc

import pytest

import keras_electra
from conftest import backend
from keras_electra import pretraining

pytestmark = pytest.mark.skipif(
    backend() != "tensorflow",
    reason="the data path runs on TensorFlow whatever the Keras backend",
)

WORDS = "the a cat dog sat ran on mat house big small red blue green".split()
VOCABULARY = pretraining.SPECIAL_TOKENS + WORDS + ["."]
SMALL_LINES = 4_000  # 240 kB; the large corpus has ten times as many.


def write_corpus(path, lines):
    """`lines` sentences of eight words, a document every ten lines."""
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as file:
        for line in range(lines):
            words = [rng.choice(WORDS) for _ in range(8)]
            file.write(" ".join(words) + ".\n")
            if line % 10 == 9:
                file.write("\n")
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


def within_limit(small_peak, large_peak):
    """The memory limit of the large corpus: 1.5 times the small one's
    peak, plus 1 MiB (holding the large corpus would take 2.4 MB of text
    and several times that as Python objects)."""
    return large_peak < 1.5 * small_peak + 2**20


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpora")
    return {
        "small": write_corpus(folder / "small.txt", SMALL_LINES),
        "large": write_corpus(folder / "large.txt", 10 * SMALL_LINES),
    }


def test_vocabulary_training_on_a_ten_times_larger_corpus(corpora):
    peaks = {}
    for name, path in corpora.items():
        peaks[name], vocabulary = python_peak(
            lambda: pretraining.train_vocabulary([path], 60, verbose=0)
        )
        assert vocabulary[:5] == pretraining.SPECIAL_TOKENS
    assert within_limit(peaks["small"], peaks["large"]), peaks


def test_shard_writing_and_reading_on_a_ten_times_larger_corpus(
    corpora, tmp_path
):
    tokenizer = keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)

    def write_and_read(name):
        shards = pretraining.write_pretraining_shards(
            [corpora[name]], tokenizer, tmp_path / name,
            max_sequence_length=32, num_shards=2, num_workers=1, verbose=0,
        )
        dataset = pretraining.pretraining_dataset(
            shards, batch_size=16, shuffle_buffer=256, repeat=False,
            drop_remainder=False,
        )
        return sum(
            int(batch["padding_mask"].numpy().sum()) for batch in dataset
        )

    peaks, tokens = {}, {}
    for name in corpora:
        peaks[name], tokens[name] = python_peak(lambda: write_and_read(name))
    # Ten times the text, about ten times the tokens. The text came back:
    # 9 tokens a line, less the tail of the sentence each full example cuts
    # to fit (as ELECTRA's data script does), plus [CLS] and [SEP]s.
    assert 9 * tokens["small"] < tokens["large"] < 11 * tokens["small"]
    assert 0.9 * 9 * SMALL_LINES < tokens["small"] < 9 * SMALL_LINES * 1.2
    assert within_limit(peaks["small"], peaks["large"]), peaks
