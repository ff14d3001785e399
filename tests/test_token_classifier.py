"""Token classification and word-label alignment."""

import numpy as np
import pytest

import keras_electra
from conftest import numpy_tree, tiny_backbone

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna", "lives",
              "in", "ber", "##lin", "paris", "works"]


def tokenizer():
    return keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)


def test_first_piece_carries_the_word_label():
    x, y, weight = keras_electra.align_word_labels(
        tokenizer(),
        [["Anna", "lives", "in", "Berlin"], ["Paris", "works"]],
        [[1, 0, 0, 2], [2, 0]],
        sequence_length=9,
    )
    ids = [VOCABULARY.index(t) for t in
           ("[CLS]", "anna", "lives", "in", "ber", "##lin", "[SEP]")]
    assert x["token_ids"][0].tolist() == ids + [0, 0]
    assert y[0].tolist() == [0, 1, 0, 0, 2, 0, 0, 0, 0]
    assert weight[0].tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 0]
    assert weight[1].tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert x["padding_mask"][1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0]


def test_long_sentences_are_cut_at_a_word_boundary():
    x, y, weight = keras_electra.align_word_labels(
        tokenizer(), [["Anna", "lives", "in", "Berlin"]], [[1, 0, 0, 2]],
        sequence_length=5,
    )
    # Room for 3 pieces: "berlin" (2 pieces) does not fit and is dropped.
    assert x["token_ids"][0].tolist() == [2, 5, 6, 7, 3]
    assert weight[0].sum() == 3


def test_mismatched_words_and_labels():
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        keras_electra.align_word_labels(
            tokenizer(), [["Anna", "lives"]], [[1]], sequence_length=8
        )


def test_fit_predict_and_preset_roundtrip(tmp_path):
    x, y, weight = keras_electra.align_word_labels(
        tokenizer(),
        [["Anna", "lives", "in", "Berlin"], ["Paris", "works"]] * 4,
        [[1, 0, 0, 2], [2, 0]] * 4,
        sequence_length=8,
    )
    classifier = keras_electra.ElectraTokenClassifier(
        tiny_backbone(vocab_size=len(VOCABULARY)), num_classes=3
    )
    history = classifier.fit(
        x, y, sample_weight=weight, batch_size=4, epochs=5, verbose=0
    ).history
    assert history["loss"][-1] < history["loss"][0]
    assert classifier.predict(x, verbose=0).shape == (8, 8, 3)
    classifier.save_to_preset(str(tmp_path))
    restored = keras_electra.ElectraTokenClassifier.from_preset(str(tmp_path))
    assert restored.num_classes == 3
    np.testing.assert_array_equal(
        numpy_tree(restored(x)), numpy_tree(classifier(x))
    )


def test_needs_two_classes():
    with pytest.raises(ValueError, match="num_classes"):
        keras_electra.ElectraTokenClassifier(tiny_backbone(), num_classes=1)
