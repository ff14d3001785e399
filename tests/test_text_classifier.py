"""Tokenizer, preprocessor and the text classifier."""

import keras
import keras_hub
import numpy as np
import pytest

import keras_electra
from conftest import count_train_steps, numpy_tree, tiny_backbone

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "good", "bad", "movie", "."]
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def tiny_preprocessor(sequence_length=12):
    tokenizer = keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)
    return keras_electra.ElectraTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def tiny_classifier(num_classes=2, **kwargs):
    backbone = tiny_backbone(vocab_size=len(VOCABULARY))
    return keras_electra.ElectraTextClassifier(
        backbone, num_classes, preprocessor=tiny_preprocessor(), **kwargs
    )


def test_pair_packing_with_round_robin_truncation():
    preprocessor = tiny_preprocessor(sequence_length=8)
    # A tuple is a sentence pair (a positional tuple would be read as x, y).
    x = numpy_tree(preprocessor(x=("the cat sat .", "a dog ran .")))
    ids = [VOCABULARY.index(w) for w in ("the", "cat", "sat", "a", "dog")]
    the, cat, sat, a, dog = ids
    cls, sep = 2, 3
    # 5 free places shared turn by turn: 3 from the first, 2 from the second.
    assert x["token_ids"].tolist() == [cls, the, cat, sat, sep, a, dog, sep]
    assert x["segment_ids"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]


def test_single_sentences_pad_and_mask():
    preprocessor = tiny_preprocessor(sequence_length=8)
    x = numpy_tree(preprocessor(["The cat sat.", "a dog"]))
    assert x["token_ids"].shape == (2, 8)
    assert x["padding_mask"][1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert x["token_ids"][1].tolist()[:4] == [2, 6, 8, 3]
    assert not x["segment_ids"].any()


def test_preprocessor_inside_tf_data():
    import tensorflow as tf

    preprocessor = tiny_preprocessor()
    ds = tf.data.Dataset.from_tensor_slices(
        (["the cat", "a dog ran"], ["good movie", "bad"])
    ).map(lambda first, second: preprocessor(x=(first, second)))
    batch = next(iter(ds.batch(2)))
    assert tuple(batch["token_ids"].shape) == (2, 12)


def test_fit_on_strings_and_predict():
    classifier = tiny_classifier()
    sentences = ["good movie", "bad movie", "the good cat", "the bad dog"] * 4
    labels = np.array([1, 0, 1, 0] * 4)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = classifier.fit(
        sentences, labels, batch_size=8, epochs=6, verbose=0
    ).history
    assert history["loss"][-1] < history["loss"][0]
    probabilities = classifier.predict(["good movie", "bad movie"], verbose=0)
    assert probabilities.shape == (2, 2)


def test_fit_traces_the_train_step_once():
    # As the pretrainer's (test_pretrainer.py): TensorFlow would trace the
    # step twice if the optimizer were built inside the first trace.
    classifier = tiny_classifier()
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    runs = count_train_steps(classifier)
    classifier.fit(["good movie", "bad"], np.array([1, 0]), batch_size=2,
                   verbose=0)
    assert classifier.optimizer.built
    assert len(runs) == 1


def test_sentence_pairs():
    classifier = tiny_classifier(num_classes=3)
    pairs = (["the cat", "a dog"], ["sat .", "ran ."])
    classifier.fit(pairs, np.array([0, 2]), batch_size=2, verbose=0)
    assert classifier.predict(pairs, verbose=0).shape == (2, 3)


def test_regression_with_one_output():
    classifier = tiny_classifier(num_classes=1)
    assert isinstance(classifier.loss, keras.losses.MeanSquaredError)
    classifier.fit(
        ["good", "bad"], np.array([4.5, 0.5]), batch_size=2, verbose=0
    )
    assert classifier.predict(["good"], verbose=0).shape == (1, 1)


def test_original_head_uses_the_pooler():
    hf = tiny_classifier(head="hf")
    original = tiny_classifier(head="original")
    assert "classifier_dense" in [layer.name for layer in hf.layers]
    assert "classifier_dense" not in [layer.name for layer in original.layers]
    assert original.predict(["a cat"], verbose=0).shape == (1, 2)


def test_mean_pooling_averages_the_real_tokens_only():
    classifier = keras_electra.ElectraTextClassifier(
        tiny_backbone(vocab_size=len(VOCABULARY)), 2, pooling="mean",
        dropout=0.0,
    )
    x = numpy_tree(tiny_preprocessor()(x=["the good movie"]))
    logits = classifier.predict(x, verbose=0)
    # The head on the masked mean of the backbone's token vectors.
    sequence = keras.ops.convert_to_numpy(
        classifier.backbone(x)["sequence_output"]
    )
    real = x["padding_mask"][0].astype(bool)
    mean = sequence[0][real].mean(axis=0, keepdims=True)
    expected = classifier.output_dense(classifier.classifier_dense(mean))
    np.testing.assert_allclose(
        logits, keras.ops.convert_to_numpy(expected), atol=1e-5
    )
    # Padding does not change the result.
    longer = numpy_tree(
        tiny_preprocessor(sequence_length=20)(x=["the good movie"])
    )
    classifier_20 = keras_electra.ElectraTextClassifier(
        classifier.backbone, 2, pooling="mean", dropout=0.0
    )
    classifier_20.set_weights(classifier.get_weights())
    np.testing.assert_allclose(
        classifier_20.predict(longer, verbose=0), logits, atol=1e-5
    )
    with pytest.raises(ValueError, match="pooling"):
        tiny_classifier(head="original", pooling="mean")
    with pytest.raises(ValueError, match="pooling"):
        tiny_classifier(pooling="max")


def test_bad_num_classes_and_head():
    with pytest.raises(ValueError, match="num_classes"):
        tiny_classifier(num_classes=0)
    with pytest.raises(ValueError, match="head"):
        tiny_classifier(head="linear")


def test_preset_roundtrip_with_preprocessor(tmp_path):
    classifier = tiny_classifier(num_classes=3, head="original")
    classifier.save_to_preset(str(tmp_path))
    restored = keras_electra.ElectraTextClassifier.from_preset(str(tmp_path))
    assert (restored.num_classes, restored.head) == (3, "original")
    assert restored.preprocessor.sequence_length == 12
    sentences = ["the good movie", "a bad dog"]
    np.testing.assert_array_equal(
        restored.predict(sentences, verbose=0),
        classifier.predict(sentences, verbose=0),
    )
    # keras-hub's generic entry point finds our class.
    generic = keras_hub.models.TextClassifier.from_preset(str(tmp_path))
    assert isinstance(generic, keras_electra.ElectraTextClassifier)


@pytest.mark.parametrize("library", [keras_electra, keras_hub.models])
def test_classifier_from_a_pretrainer_preset(tmp_path, library):
    # A tokenizer saved by either library is read back as ours.
    tokenizer = library.ElectraTokenizer(
        VOCABULARY + [f"w{i}" for i in range(160 - len(VOCABULARY))]
    )
    pretrainer = keras_electra.ElectraPretrainer(
        tiny_backbone(), generator_size=0.5, tokenizer=tokenizer
    )
    pretrainer.save_to_preset(str(tmp_path))
    classifier = keras_electra.ElectraTextClassifier.from_preset(
        str(tmp_path), num_classes=2, sequence_length=16
    )
    assert classifier.preprocessor.sequence_length == 16
    assert isinstance(
        classifier.preprocessor.tokenizer, keras_electra.ElectraTokenizer
    )
    batch = classifier.preprocessor(["the cat"])
    np.testing.assert_array_equal(
        numpy_tree(classifier.backbone(batch)["sequence_output"]),
        numpy_tree(pretrainer.backbone(batch)["sequence_output"]),
    )


def test_tokenizer_matches_hugging_face_bert_tokenizer(tmp_path):
    """Same vocabulary, same ids as HF's BertTokenizerFast (uncased)."""
    transformers = pytest.importorskip("transformers")
    pieces = ["the", "cafe", "naive", "run", "##ning", "##s", "un", "##known",
              "play", "##ed", "over", "river", "!", "?", ",", ".", "'", "-",
              "(", ")", "1", "##9", "2020", "electra", "##tra", "elec",
              "over", "##lap", "资", "料"]
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocabulary += list(dict.fromkeys(pieces))
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    theirs = transformers.BertTokenizerFast.from_pretrained(
        str(tmp_path), do_lower_case=True
    )
    ours = keras_electra.ElectraTokenizer.from_preset(str(tmp_path))
    rng = np.random.default_rng(0)
    words = ["The", "Café", "naïve", "running", "runs", "unknown", "played",
             "OVER", "river!", "(elec-tra)", "2020,", "1999?", "zebra",
             "don't", "资料", "overlap.", "Ünknown", "plays", "RUNNING..."]
    sentences = [
        " ".join(rng.choice(words, size=rng.integers(1, 9)))
        for _ in range(300)
    ]
    for sentence in sentences:
        expected = theirs(sentence, add_special_tokens=False)["input_ids"]
        got = keras.ops.convert_to_numpy(ours(sentence)).tolist()
        assert got == expected, sentence
    # Pairs, packed: [CLS] A [SEP] B [SEP] with segment ids.
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        ours, sequence_length=64
    )
    for first, second in zip(sentences[:50], sentences[50:100]):
        expected = theirs(
            first, second, padding="max_length", max_length=64
        )
        x = numpy_tree(preprocessor(x=(first, second)))
        assert x["token_ids"].tolist() == expected["input_ids"]
        assert x["segment_ids"].tolist() == expected["token_type_ids"]
        assert x["padding_mask"].astype(int).tolist() == (
            expected["attention_mask"]
        )
