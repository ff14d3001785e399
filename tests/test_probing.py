"""keras_electra.pretraining.probing: frozen-encoder features and the linear probe read
what is there, and refuse inputs they cannot score."""

import numpy as np
import pytest

import keras_electra
from keras_electra.pretraining.probing import encoder_features
from keras_electra.pretraining.probing import linear_probe

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad"]
TEXTS = ["a good", "bad", "a bad bad good a", "good"]


@pytest.fixture(scope="module")
def encoder():
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        keras_electra.ElectraTokenizer(VOCABULARY), sequence_length=8
    )
    backbone = keras_electra.ElectraBackbone(
        vocab_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=8,
        embedding_dim=8, intermediate_dim=16, max_sequence_length=8,
    )
    return backbone, preprocessor


def test_features_are_the_unpadded_token_vectors_and_their_means(encoder):
    backbone, preprocessor = encoder
    tokens, means = encoder_features(backbone, preprocessor, TEXTS, batch_size=3)
    lengths = [2 + len(text.split()) for text in TEXTS]  # [CLS] ... [SEP]
    assert tokens.shape == (sum(lengths), 8)
    assert means.shape == (len(TEXTS), 8)
    ends = np.cumsum(lengths)
    for mean, end, length in zip(means, ends, lengths):
        np.testing.assert_allclose(
            mean, tokens[end - length:end].mean(0), rtol=1e-5, atol=1e-6
        )
    # Batching does not change a text's vectors.
    _, one_by_one = encoder_features(backbone, preprocessor, TEXTS, batch_size=1)
    np.testing.assert_allclose(one_by_one, means, rtol=1e-5, atol=1e-6)


def test_features_refuse_nothing_to_encode(encoder):
    backbone, preprocessor = encoder
    with pytest.raises(ValueError, match="empty"):
        encoder_features(backbone, preprocessor, [])
    with pytest.raises(ValueError, match="batch_size"):
        encoder_features(backbone, preprocessor, TEXTS, batch_size=0)


def blobs(rng, count, num_classes, width=6, separation=4.0):
    labels = np.arange(count) % num_classes
    centers = rng.normal(size=(num_classes, width)) * separation
    return centers[labels] + rng.normal(size=(count, width)), labels


def test_probe_finds_a_linear_signal_and_nothing_in_noise():
    rng = np.random.default_rng(0)
    features, labels = blobs(rng, 300, num_classes=3)
    accuracy = linear_probe(
        features[:200], labels[:200], {"held_out": (features[200:], labels[200:])},
        epochs=20, batch_size=20,
    )
    assert accuracy["held_out"] > 0.95
    noise = rng.normal(size=(300, 6))
    random_labels = rng.integers(0, 2, 300)
    chance = linear_probe(
        noise[:200], random_labels[:200],
        {"held_out": (noise[200:], random_labels[200:])},
        epochs=20, batch_size=20,
    )
    assert 0.3 < chance["held_out"] < 0.7


def test_probe_is_deterministic_from_its_seed():
    rng = np.random.default_rng(1)
    features, labels = blobs(rng, 120, num_classes=2, separation=0.3)
    sets = {"train": (features, labels)}
    first = linear_probe(features, labels, sets, epochs=5, seed=3)
    assert linear_probe(features, labels, sets, epochs=5, seed=3) == first


@pytest.mark.parametrize(
    "train, eval_sets, message",
    [
        ((np.zeros((4, 2)), [0, 1, 0]), None, "one per row"),
        ((np.zeros(4), [0, 1, 0, 1]), None, "2D array"),
        ((np.zeros((0, 2)), []), None, "non-empty"),
        ((np.zeros((4, 2)), [0, 1, -1, 1]), None, "class ids"),
        ((np.zeros((4, 2)), [0.0, 1.0, 0.5, 1.0]), None, "class ids"),
        ((np.zeros((4, 2)), [0, 1, 0, 1]), {}, "eval_sets"),
        (
            (np.zeros((4, 2)), [0, 1, 0, 1]),
            {"test": (np.zeros((2, 3)), [0, 1])},
            "'test' features have 3 columns",
        ),
        (
            (np.zeros((4, 2)), [0, 1, 0, 1]),
            {"test": (np.zeros((2, 2)), [0])},
            "test labels",
        ),
    ],
)
def test_probe_refuses_inputs_it_cannot_score(train, eval_sets, message):
    if eval_sets is None:
        eval_sets = {"train": train}
    with pytest.raises(ValueError, match=message):
        linear_probe(*train, eval_sets, epochs=1)
