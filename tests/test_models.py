"""Backbone, generator and discriminator: shapes, keras-hub compatibility."""

import keras
import keras_hub
import numpy as np
import pytest

import keras_electra
from conftest import TINY, VOCAB_SIZE, count_calls, numpy_tree, tiny_backbone
from conftest import tiny_batch


def test_backbone_output_shapes():
    backbone = tiny_backbone()
    outputs = backbone(tiny_batch(batch_size=3, length=20))
    assert tuple(outputs["sequence_output"].shape) == (3, 20, 16)
    assert tuple(outputs["pooled_output"].shape) == (3, 16)


def test_generator_logits_only_at_mask_positions():
    generator = keras_electra.ElectraGenerator(tiny_backbone())
    batch = tiny_batch(batch_size=3, length=20)
    batch["mask_positions"] = np.array([[1, 2, 3, 4]] * 3, "int32")
    logits = generator(batch)
    assert tuple(logits.shape) == (3, 4, VOCAB_SIZE)
    # The output layer is tied to the token embedding: no separate kernel.
    head_weights = [w.path for w in generator.masked_lm_head.weights]
    assert not any("output_kernel" in path for path in head_weights)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_masked_lm_head_equals_keras_hub_forward_and_backward(
    policy, monkeypatch
):
    from keras_electra.models import electra_heads

    products = count_calls(monkeypatch, electra_heads, "dense_with_bias")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, size=(4, 6)).astype("int32")
    positions = rng.integers(0, 6, size=(4, 2)).astype("int32")
    labels = rng.integers(0, 50, size=(4, 2)).astype("int32")

    def masked_lm(head_class):
        token_ids = keras.Input((6,), dtype="int32")
        mask_positions = keras.Input((2,), dtype="int32")
        embedding = keras.layers.ReversibleEmbedding(50, 8, dtype=policy)
        head = head_class(
            token_embedding=embedding, intermediate_activation="gelu",
            dtype=policy,
        )
        logits = head(embedding(token_ids), mask_positions=mask_positions)
        model = keras.Model([token_ids, mask_positions], logits)
        model.compile(
            optimizer=keras.optimizers.SGD(1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    ours = masked_lm(electra_heads.MaskedLMHead)
    theirs = masked_lm(keras_hub.layers.MaskedLMHead)
    # A bias that is not zero.
    theirs.set_weights([w + 0.1 for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    products.clear()
    logits = ours.predict_on_batch([ids, positions])
    # On PyTorch in float32 the bias goes inside the product; elsewhere
    # the head is keras-hub's.
    fused = keras.config.backend() == "torch" and policy == "float32"
    assert len(products) == (1 if fused else 0)
    expected = theirs.predict_on_batch([ids, positions])
    assert logits.dtype == expected.dtype
    tolerance = 1e-5 if policy == "float32" else 2e-2
    np.testing.assert_allclose(logits, expected, atol=tolerance,
                               rtol=tolerance)
    # One SGD step of learning rate 1: the weights move by the gradients.
    products.clear()
    ours.train_on_batch([ids, positions], labels)
    theirs.train_on_batch([ids, positions], labels)
    assert bool(products) == fused
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=tolerance, rtol=tolerance)


def test_discriminator_one_logit_per_token():
    discriminator = keras_electra.ElectraDiscriminator(tiny_backbone())
    logits = discriminator(tiny_batch(batch_size=3, length=20))
    assert tuple(logits.shape) == (3, 20)


def test_hidden_states_equal_keras_hub_backbone():
    ours = tiny_backbone()
    hub_config = {k: v for k, v in TINY.items()}
    theirs = keras_hub.models.ElectraBackbone(**hub_config)
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    theirs.set_weights(ours.get_weights())
    batch = tiny_batch()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(batch)["sequence_output"]),
        keras.ops.convert_to_numpy(theirs(batch)["sequence_output"]),
        atol=1e-6,
    )


def test_exact_gelu_is_a_different_function():
    approximate = tiny_backbone(dropout=0.0)
    exact = tiny_backbone(dropout=0.0, approximate_gelu=False)
    # Large weights push activations where the two GELUs differ visibly.
    exact.set_weights([w * 30 for w in approximate.get_weights()])
    approximate.set_weights(exact.get_weights())
    batch = tiny_batch()
    a = keras.ops.convert_to_numpy(approximate(batch)["sequence_output"])
    b = keras.ops.convert_to_numpy(exact(batch)["sequence_output"])
    assert np.abs(a - b).max() > 1e-4
    restored = keras_electra.ElectraBackbone.from_config(exact.get_config())
    assert restored.approximate_gelu is False
    restored.set_weights(exact.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(batch)["sequence_output"]), b
    )


def test_keras_hub_preset_loads_into_our_backbone(tmp_path):
    theirs = keras_hub.models.ElectraBackbone(**TINY)
    theirs.save_to_preset(str(tmp_path))
    ours = keras_electra.ElectraBackbone.from_preset(str(tmp_path))
    assert isinstance(ours, keras_electra.ElectraBackbone)
    batch = tiny_batch()
    # Equal to float rounding: ours attends through the fused kernel.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(batch)["sequence_output"]),
        keras.ops.convert_to_numpy(theirs(batch)["sequence_output"]),
        atol=1e-6,
    )


def test_backbone_on_an_embedding_block_it_does_not_own():
    owner = tiny_backbone()
    borrower = keras_electra.ElectraBackbone(
        **{**TINY, "hidden_dim": 8, "num_heads": 1, "intermediate_dim": 32},
        embedding_owner=owner,
    )
    assert borrower.token_embedding is owner.token_embedding
    assert borrower.embeddings_layer_norm is owner.embeddings_layer_norm
    # Same width as the embeddings: no projection of its own.
    assert not hasattr(borrower, "embeddings_projection")
    with pytest.raises(ValueError, match="embedding_dim"):
        keras_electra.ElectraBackbone(
            **{**TINY, "embedding_dim": 4}, embedding_owner=owner
        )


def test_generator_config_follows_the_paper():
    small = keras_electra.presets["electra_small"]
    config = keras_electra.ElectraBackbone.generator_config(
        small["backbone"], small["pretrainer"]["generator_size"]
    )
    assert (config["hidden_dim"], config["num_heads"]) == (64, 1)
    assert (config["intermediate_dim"], config["num_layers"]) == (256, 12)
    base = keras_electra.presets["electra_base"]
    config = keras_electra.ElectraBackbone.generator_config(
        base["backbone"], base["pretrainer"]["generator_size"]
    )
    assert (config["hidden_dim"], config["num_heads"]) == (256, 4)
    assert config["intermediate_dim"] == 1024
    with pytest.raises(ValueError, match="generator_size"):
        keras_electra.ElectraBackbone.generator_config(small["backbone"], 0)


def test_builtin_preset_with_overrides():
    backbone = keras_electra.ElectraBackbone.from_preset(
        "electra_tiny", vocab_size=500, max_sequence_length=64
    )
    assert (backbone.vocab_size, backbone.max_sequence_length) == (500, 64)
    assert backbone.hidden_dim == 32


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ValueError, match="electra_small"):
        keras_electra.ElectraBackbone.from_preset("electra_smol")
    with pytest.raises(ValueError, match="electra_base"):
        keras_electra.ElectraPretrainer.from_preset("no_such_preset")


def test_preset_directory_that_is_not_a_preset(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        keras_electra.ElectraDiscriminator.from_preset(str(tmp_path))


def test_discriminator_task_roundtrip(tmp_path):
    discriminator = keras_electra.ElectraDiscriminator(tiny_backbone())
    discriminator.save_to_preset(str(tmp_path))
    restored = keras_electra.ElectraDiscriminator.from_preset(str(tmp_path))
    batch = tiny_batch()
    np.testing.assert_array_equal(
        numpy_tree(discriminator(batch)), numpy_tree(restored(batch))
    )
