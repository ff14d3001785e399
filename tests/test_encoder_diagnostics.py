"""benchmarks/encoder_diagnostics.py on tiny fixtures: a collapsed encoder
reads as collapsed, the probe and the context check report per preset, and
bad paths are refused (no network: the reviews are a local fixture)."""

import json
import os
import random

import numpy as np
import pytest

from conftest import random_sentences

import keras_electra
from keras_electra import pretraining as pretraining_data

from scripts import load_script

encoder_diagnostics = load_script("benchmarks/encoder_diagnostics.py")

WORDS = "the a cat dog sat ran on mat good bad fine awful great dull".split()
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."] + WORDS


def sentences(rng, count):
    return random_sentences(rng, count, WORDS)


@pytest.fixture
def fixtures(tmp_path, monkeypatch):
    rng = random.Random(0)

    def split(count):
        return {"texts": sentences(rng, count),
                "labels": np.arange(count, dtype="int32") % 2}

    reviews = {"train": split(24), "dev": split(8), "test": split(8)}
    monkeypatch.setattr(
        encoder_diagnostics.datasets, "movie_reviews", lambda seed: reviews
    )
    tokenizer = keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)
    backbone = keras_electra.ElectraBackbone(
        vocab_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=16,
        embedding_dim=16, intermediate_dim=32, max_sequence_length=32,
    )
    pretrainer = keras_electra.ElectraPretrainer(
        backbone, generator_size=0.5, tokenizer=tokenizer, seed=0
    )
    pretrainer(pretraining_data_batch(tokenizer, tmp_path))
    preset = tmp_path / "preset"
    pretrainer.save_to_preset(str(preset))
    return tmp_path, str(preset)


def pretraining_data_batch(tokenizer, tmp_path):
    corpus = tmp_path / "corpus.txt"
    rng = random.Random(1)
    corpus.write_text(
        "\n\n".join("\n".join(sentences(rng, 6)) for _ in range(12)) + "\n"
    )
    pretraining_data.write_pretraining_shards(
        [str(corpus)], tokenizer, str(tmp_path / "examples"),
        max_sequence_length=24, seed=0,
    )
    batch = next(iter(pretraining_data.pretraining_dataset(
        str(tmp_path / "examples"), batch_size=4, seed=0
    )))
    return {name: np.asarray(value) for name, value in batch.items()}


def test_a_collapsed_encoder_reads_one_and_a_random_one_does_not():
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(200, 16))
    collapsed = np.tile(rng.normal(size=(1, 16)), (200, 1)) + 1e-6 * spread
    assert encoder_diagnostics.token_cosine(collapsed, seed=0) > 0.999
    assert abs(encoder_diagnostics.token_cosine(spread, seed=0)) < 0.2


def test_shuffling_keeps_each_rows_tokens_and_special_positions():
    token_ids = np.array([[2, 10, 11, 12, 3, 13, 14, 3, 0, 0]])
    padding_mask = token_ids != 0
    shuffled = encoder_diagnostics.shuffle_within_sequences(
        token_ids, padding_mask, special_ids=[0, 2, 3, 4], seed=0
    )
    specials = np.isin(token_ids, [0, 2, 3])
    np.testing.assert_array_equal(shuffled[specials], token_ids[specials])
    assert sorted(shuffled[~specials]) == sorted(token_ids[~specials])
    assert not np.array_equal(shuffled, token_ids)


def test_every_preset_next_to_its_random_copy(fixtures):
    tmp_path, preset = fixtures
    output = tmp_path / "diagnostics.json"
    rows = encoder_diagnostics.main(
        [preset, "--examples", str(tmp_path / "examples"),
         "--sequence-length", "16", "--context-batches", "1",
         "--output", str(output)]
    )
    assert [row["encoder"] for row in rows] == ["random initialisation", preset]
    for row in rows:
        assert -1.0 <= row["token_cosine"] <= 1.0
        assert 0.0 <= row["probe_accuracy"] <= 1.0
    # The context check needs the pretrainer: only the loaded preset has it,
    # with one loss per head.
    assert "context_gain" not in rows[0]
    assert set(rows[1]["context_gain"]) == {"generator_loss", "discriminator_loss"}
    assert all(np.isfinite(v) for v in rows[1]["context_gain"].values())
    assert json.loads(output.read_text())["rows"] == rows
    assert not os.path.exists(str(output) + ".partial")


def test_bad_paths_are_refused(fixtures):
    tmp_path, preset = fixtures
    with pytest.raises(ValueError, match="does not exist"):
        encoder_diagnostics.main([str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="no pre-training shards"):
        encoder_diagnostics.main([preset, "--examples", str(tmp_path)])
