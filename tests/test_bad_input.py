"""Bad input fails early with a ValueError that names the problem."""

import keras_hub
import pytest

import keras_electra
from conftest import VOCAB_SIZE, tiny_backbone, tiny_batch, tiny_pretrainer


def test_sequence_longer_than_max_sequence_length():
    pretrainer = tiny_pretrainer()
    with pytest.raises(ValueError, match="max_sequence_length"):
        pretrainer(tiny_batch(length=40))


def test_batch_without_token_ids():
    pretrainer = tiny_pretrainer()
    batch = tiny_batch()
    batch["input_ids"] = batch.pop("token_ids")
    with pytest.raises(ValueError, match="token_ids"):
        pretrainer(batch)


@pytest.mark.parametrize("bad_id", [VOCAB_SIZE, VOCAB_SIZE + 7, -1])
def test_token_ids_outside_the_vocabulary_in_arrays(bad_id):
    pretrainer = tiny_pretrainer()
    pretrainer.compile()
    batch = tiny_batch()
    batch["token_ids"][3, 4] = bad_id
    with pytest.raises(ValueError, match="vocabulary size|below 0"):
        pretrainer.fit(batch, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="vocabulary size|below 0"):
        pretrainer.evaluate(batch, batch_size=4, verbose=0)


def test_token_ids_outside_the_vocabulary_in_tf_data():
    import tensorflow as tf

    pretrainer = tiny_pretrainer()
    pretrainer.compile()
    batch = tiny_batch()
    batch["token_ids"][5, 2] = VOCAB_SIZE + 1
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(4)
    with pytest.raises(ValueError, match="vocabulary size"):
        pretrainer.fit(dataset, verbose=0)


def test_vocabulary_without_special_tokens():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat"]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary)
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        keras_electra.ElectraPretrainer(tiny_backbone(), tokenizer=tokenizer)


def test_special_ids_come_from_the_tokenizer():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]
    vocabulary += [f"w{i}" for i in range(VOCAB_SIZE - len(vocabulary))]
    tokenizer = keras_hub.models.ElectraTokenizer(vocabulary=vocabulary)
    pretrainer = keras_electra.ElectraPretrainer(
        tiny_backbone(), tokenizer=tokenizer
    )
    assert (pretrainer.pad_token_id, pretrainer.cls_token_id) == (0, 2)
    assert (pretrainer.sep_token_id, pretrainer.mask_token_id) == (3, 4)


@pytest.mark.parametrize("mask_rate", [0.0, 1.0, -0.1, 1.5])
def test_mask_rate_outside_zero_one(mask_rate):
    with pytest.raises(ValueError, match="mask_rate"):
        tiny_pretrainer(mask_rate=mask_rate)


@pytest.mark.parametrize("generator_size", [0.0, -0.5])
def test_generator_size_not_positive(generator_size):
    with pytest.raises(ValueError, match="generator_size"):
        tiny_pretrainer(generator_size=generator_size)


def test_special_token_id_outside_the_vocabulary():
    with pytest.raises(ValueError, match="mask_token_id"):
        tiny_pretrainer(mask_token_id=VOCAB_SIZE)


def test_unknown_preset_name():
    with pytest.raises(ValueError, match="electra_tiny"):
        keras_electra.ElectraDiscriminator.from_preset("electra_huge")


def test_not_an_electra_preset(tmp_path):
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=50,
        num_layers=1,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
    )
    bert.save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match="not an ELECTRA"):
        keras_electra.ElectraBackbone.from_preset(str(tmp_path))
