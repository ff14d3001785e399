"""Raw text in, answers out: the masked-LM preprocessor, `fill_mask`,
`score_tokens`, and text-ready models loaded from a pretrainer's preset."""

import keras
import numpy as np
import pytest

import keras_electra
from conftest import numpy_tree, tiny_backbone

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "."]
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
PAD, UNK, CLS, SEP, MASK = range(5)
SENTENCES = ["the cat sat on the mat .", "a dog ran .", "the dog sat ."]
SEQUENCE_LENGTH = 12


def ids(text):
    return [VOCABULARY.index(word) for word in text.split()]


def tiny_tokenizer():
    return keras_electra.ElectraTokenizer(VOCABULARY, lowercase=True)


def tiny_masked_lm_preprocessor(**kwargs):
    kwargs.setdefault("sequence_length", SEQUENCE_LENGTH)
    kwargs.setdefault("mask_selection_length", 4)
    return keras_electra.ElectraMaskedLMPreprocessor(tiny_tokenizer(), **kwargs)


def tiny_generator(**kwargs):
    return keras_electra.ElectraGenerator(
        tiny_backbone(vocab_size=len(VOCABULARY)),
        preprocessor=tiny_masked_lm_preprocessor(**kwargs),
    )


def tiny_discriminator(sequence_length=SEQUENCE_LENGTH):
    return keras_electra.ElectraDiscriminator(
        tiny_backbone(vocab_size=len(VOCABULARY)),
        preprocessor=keras_electra.ElectraTextClassifierPreprocessor(
            tiny_tokenizer(), sequence_length=sequence_length
        ),
    )


def softmax(logits):
    logits = np.asarray(logits, "float64")
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, "float64")))


# === ElectraMaskedLMPreprocessor ===


def test_preprocessor_packs_masks_and_labels_raw_text():
    # Every word selected, every selected word replaced by [MASK].
    preprocessor = tiny_masked_lm_preprocessor(
        mask_selection_rate=1.0, mask_token_rate=1.0, random_token_rate=0.0
    )
    x, y, sample_weight = numpy_tree(preprocessor(["the cat sat .", "a dog"]))
    assert set(x) == {
        "token_ids", "segment_ids", "padding_mask", "mask_positions"
    }
    assert x["token_ids"].shape == (2, SEQUENCE_LENGTH)
    assert x["mask_positions"].shape == y.shape == sample_weight.shape == (2, 4)
    assert x["padding_mask"].sum(axis=1).tolist() == [6, 4]
    # The words sit at positions 1..n, after [CLS].
    assert x["mask_positions"].tolist() == [[1, 2, 3, 4], [1, 2, 0, 0]]
    assert sample_weight.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    for row in range(2):
        selected = x["mask_positions"][row][sample_weight[row] == 1]
        assert (x["token_ids"][row, selected] == MASK).all()
    # Labels are the original ids at the masked positions.
    assert y[0].tolist() == ids("the cat sat .")
    assert y[1, :2].tolist() == ids("a dog")
    assert x["token_ids"][0, [0, 5]].tolist() == [CLS, SEP]


def test_preprocessor_never_masks_special_tokens():
    preprocessor = tiny_masked_lm_preprocessor(mask_selection_rate=1.0)
    x, _, sample_weight = numpy_tree(preprocessor(["the cat"] * 8))
    selected = x["mask_positions"][sample_weight == 1]
    assert set(selected.tolist()) == {1, 2}  # never [CLS] (0) or [SEP] (3)


def test_preprocessor_inside_tf_data():
    import tensorflow as tf

    preprocessor = tiny_masked_lm_preprocessor()
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES).batch(3)
    x, y, sample_weight = next(iter(ds.map(preprocessor)))
    assert tuple(x["token_ids"].shape) == (3, SEQUENCE_LENGTH)
    assert tuple(y.shape) == tuple(sample_weight.shape) == (3, 4)


def test_preprocessor_config_round_trips():
    preprocessor = tiny_masked_lm_preprocessor(mask_selection_rate=0.3)
    restored = keras_electra.ElectraMaskedLMPreprocessor.from_config(
        preprocessor.get_config()
    )
    assert restored.sequence_length == SEQUENCE_LENGTH
    assert restored.mask_selection_rate == 0.3


# === ElectraGenerator on strings ===


def test_generator_fits_on_strings_and_the_loss_falls():
    generator = tiny_generator(mask_selection_rate=1.0)
    generator.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = generator.fit(
        SENTENCES * 4, batch_size=4, epochs=5, verbose=0
    ).history
    assert history["loss"][-1] < history["loss"][0]
    logits = generator.predict(SENTENCES, verbose=0)
    assert logits.shape == (3, 4, len(VOCABULARY))


def test_generator_still_takes_packed_inputs_with_a_preprocessor():
    generator = tiny_generator()
    x = {
        "token_ids": np.array([[CLS, MASK, SEP, PAD]], "int32"),
        "segment_ids": np.zeros((1, 4), "int32"),
        "padding_mask": np.array([[1, 1, 1, 0]], "int32"),
        "mask_positions": np.array([[1]], "int32"),
    }
    assert generator.predict(x, verbose=0).shape == (1, 1, len(VOCABULARY))


# === ElectraGenerator.fill_mask ===


def test_fill_mask_gives_top_k_sorted_tokens_per_mask():
    generator = tiny_generator()
    results = generator.fill_mask(
        ["the [MASK] sat .", "[MASK] dog [MASK] ."], top_k=3
    )
    assert [len(masks) for masks in results] == [1, 2]
    for masks in results:
        for candidates in masks:
            assert len(candidates) == 3
            tokens = [token for token, _ in candidates]
            probabilities = [p for _, p in candidates]
            assert set(tokens) <= set(VOCABULARY)
            assert len(set(tokens)) == 3
            assert probabilities == sorted(probabilities, reverse=True)
            assert all(0 < p <= 1 for p in probabilities)
            assert sum(probabilities) <= 1 + 1e-9
    # A single string is one text; all of the vocabulary sums to 1.
    [[candidates]] = generator.fill_mask("a [MASK]", top_k=len(VOCABULARY))
    assert sum(p for _, p in candidates) == pytest.approx(1.0)


def test_fill_mask_top_token_is_the_argmax_of_the_generator_logits():
    generator = tiny_generator()
    [first, second] = generator.fill_mask(
        ["The [MASK] sat on the [MASK] .", "a [MASK]"], top_k=2
    )
    # By hand: "[MASK]" is the mask id, not "[", "mask", "]".
    token_ids = np.full((2, SEQUENCE_LENGTH), PAD, "int32")
    packed = [
        [CLS, *ids("the"), MASK, *ids("sat on the"), MASK, *ids("."), SEP],
        [CLS, *ids("a"), MASK, SEP],
    ]
    for row, sequence in enumerate(packed):
        token_ids[row, : len(sequence)] = sequence
    logits = generator.predict(
        {
            "token_ids": token_ids,
            "segment_ids": np.zeros_like(token_ids),
            "padding_mask": (token_ids != PAD).astype("int32"),
            "mask_positions": np.array([[2, 6], [2, 2]], "int32"),
        },
        verbose=0,
    )
    probabilities = softmax(logits)
    for row, masks in ((0, first), (1, second)):
        for column, candidates in enumerate(masks):
            best = int(np.argmax(logits[row, column]))
            token, probability = candidates[0]
            assert token == VOCABULARY[best]
            assert probability == pytest.approx(
                probabilities[row, column, best], rel=1e-4
            )
    assert len(second) == 1


# === ElectraDiscriminator.score_tokens ===


def test_score_tokens_is_the_sigmoid_of_the_discriminator_logits():
    discriminator = tiny_discriminator()
    results = discriminator.score_tokens(["the cat sat .", "a dog"])
    assert [[token for token, _ in r] for r in results] == [
        ["the", "cat", "sat", "."],
        ["a", "dog"],
    ]
    x = numpy_tree(discriminator.preprocessor(["the cat sat .", "a dog"]))
    probabilities = sigmoid(discriminator.predict(x, verbose=0))
    for row, scores in enumerate(results):
        expected = probabilities[row, 1 : 1 + len(scores)]  # after [CLS]
        np.testing.assert_allclose(
            [p for _, p in scores], expected, rtol=1e-5
        )


def test_score_tokens_truncates_long_texts_to_the_sequence_length():
    discriminator = tiny_discriminator(sequence_length=5)
    [scores] = discriminator.score_tokens("the cat sat on the mat .")
    # [CLS] + 3 word pieces + [SEP].
    assert [token for token, _ in scores] == ["the", "cat", "sat"]


def test_discriminator_predicts_strings_and_packed_inputs():
    discriminator = tiny_discriminator()
    assert discriminator.predict(SENTENCES, verbose=0).shape == (
        3, SEQUENCE_LENGTH
    )
    x = numpy_tree(discriminator.preprocessor(SENTENCES))
    assert discriminator.predict(x, verbose=0).shape == (3, SEQUENCE_LENGTH)


# === Loading from a pretrainer's preset ===


@pytest.fixture(scope="module")
def pretrainer_preset(tmp_path_factory):
    pretrainer = keras_electra.ElectraPretrainer(
        tiny_backbone(vocab_size=len(VOCABULARY)),
        generator_size=0.5,
        tokenizer=tiny_tokenizer(),
        seed=0,
    )
    preset = str(tmp_path_factory.mktemp("raw_text") / "pretrained")
    pretrainer.save_to_preset(preset)
    return pretrainer, preset


def test_pretrainer_preset_loads_the_trained_generator_for_text(
    pretrainer_preset,
):
    pretrainer, preset = pretrainer_preset
    generator = keras_electra.ElectraGenerator.from_preset(preset)
    # The small generator of generator/, not one of the discriminator's size.
    assert generator.backbone.hidden_dim == (
        pretrainer.generator.backbone.hidden_dim
    )
    assert generator.backbone.hidden_dim < pretrainer.backbone.hidden_dim
    assert isinstance(
        generator.preprocessor, keras_electra.ElectraMaskedLMPreprocessor
    )
    assert generator.preprocessor.tokenizer.get_vocabulary() == VOCABULARY
    # The tiny backbone's max_sequence_length (32) is shorter than 512.
    assert generator.preprocessor.sequence_length == 32
    x = {
        "token_ids": np.array([[CLS, *ids("the"), MASK, SEP]], "int32"),
        "segment_ids": np.zeros((1, 4), "int32"),
        "padding_mask": np.ones((1, 4), "int32"),
        "mask_positions": np.array([[2]], "int32"),
    }
    np.testing.assert_allclose(
        generator.predict(x, verbose=0),
        keras.ops.convert_to_numpy(pretrainer.generator(x)),
        rtol=1e-5,
        atol=1e-6,
    )
    [[candidates]] = generator.fill_mask("the [MASK]", top_k=2)
    assert len(candidates) == 2
    assert generator.predict(SENTENCES, verbose=0).shape[0] == 3


def test_pretrainer_preset_loads_a_discriminator_that_scores_text(
    pretrainer_preset,
):
    pretrainer, preset = pretrainer_preset
    discriminator = keras_electra.ElectraDiscriminator.from_preset(
        preset, sequence_length=8
    )
    assert discriminator.preprocessor.sequence_length == 8
    assert discriminator.preprocessor.tokenizer.get_vocabulary() == VOCABULARY
    [scores] = discriminator.score_tokens("a dog ran")
    assert [token for token, _ in scores] == ["a", "dog", "ran"]
    x = numpy_tree(discriminator.preprocessor(["a dog ran"]))
    expected = sigmoid(keras.ops.convert_to_numpy(pretrainer.discriminator(x)))
    np.testing.assert_allclose(
        [p for _, p in scores], expected[0, 1:4], rtol=1e-5
    )


def test_plain_generator_folder_has_no_tokenizer(pretrainer_preset):
    _, preset = pretrainer_preset
    generator = keras_electra.ElectraGenerator.from_preset(
        f"{preset}/generator"
    )
    assert generator.preprocessor is None


# === Bad input ===


@pytest.mark.parametrize(
    "texts, top_k, message",
    [
        ("the cat sat", 5, "no \\[MASK\\]"),
        (["a [MASK]", "the cat"], 5, "Text 1 has no \\[MASK\\]"),
        ("", 5, "Text 0 is empty"),
        (["a [MASK]", "  "], 5, "Text 1 is empty"),
        ([], 5, "empty list"),
        (3, 5, "string or a list of strings"),
        (["a [MASK]", 3], 5, "string or a list of strings"),
        (b"a [MASK]", 5, "string or a list of strings"),
        ("a [MASK]", 0, "`top_k` must be an integer from 1 to 14"),
        ("a [MASK]", len(VOCABULARY) + 1, "`top_k` must be an integer"),
        ("a [MASK]", 1.5, "`top_k` must be an integer"),
        ("the cat sat on the mat . a dog ran [MASK]", 5, "past its first 10"),
    ],
)
def test_fill_mask_refuses_bad_input(texts, top_k, message):
    generator = tiny_generator()
    with pytest.raises(ValueError, match=message):
        generator.fill_mask(texts, top_k=top_k)


@pytest.mark.parametrize(
    "texts, message",
    [
        ("", "Text 0 is empty"),
        (["a dog", " "], "Text 1 is empty"),
        ([], "empty list"),
        (None, "string or a list of strings"),
        (("a dog", 1), "string or a list of strings"),
    ],
)
def test_score_tokens_refuses_bad_input(texts, message):
    with pytest.raises(ValueError, match=message):
        tiny_discriminator().score_tokens(texts)


def test_text_methods_need_a_tokenizer():
    backbone = tiny_backbone(vocab_size=len(VOCABULARY))
    generator = keras_electra.ElectraGenerator(backbone)
    with pytest.raises(ValueError, match="`fill_mask` needs a tokenizer"):
        generator.fill_mask("a [MASK]")
    discriminator = keras_electra.ElectraDiscriminator(backbone)
    with pytest.raises(ValueError, match="`score_tokens` needs a tokenizer"):
        discriminator.score_tokens("a dog")
