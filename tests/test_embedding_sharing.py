"""`ElectraPretrainer(embedding_sharing=...)`: tied, GDES and separate."""

import json
import os
import warnings

import keras
import keras_hub
import numpy as np
import pytest

import keras_electra
from conftest import VOCAB_SIZE, tiny_backbone, tiny_batch, tiny_pretrainer
from keras_electra.conversion.transformers_export import export_to_transformers
from keras_electra.models.electra_backbone import GradientDisentangledEmbedding
from keras_electra.models.electra_backbone import fold_embeddings
from keras_electra.training.checkpoints import restore_checkpoint
from keras_electra.training.checkpoints import save_checkpoint


def array(variable):
    return np.array(keras.ops.convert_to_numpy(variable), dtype="float32")


def gdes_pretrainer(**kwargs):
    return tiny_pretrainer(
        embedding_sharing="gdes",
        backbone_overrides={"dropout": 0.0},
        **kwargs,
    )


def shared_and_delta(pretrainer):
    embedding = pretrainer.backbone.token_embedding
    return embedding.shared_embedding.embeddings, embedding.delta


def randomise_delta(pretrainer, seed=0):
    delta = shared_and_delta(pretrainer)[1]
    rng = np.random.default_rng(seed)
    delta.assign(0.05 * rng.standard_normal(delta.shape).astype("float32"))


def one_sgd_step(pretrainer, batch):
    # Plain SGD: only gradients move weights (no decay, no momentum).
    pretrainer.compile(optimizer=keras.optimizers.SGD(1.0))
    pretrainer.fit(batch, batch_size=len(batch["token_ids"]), verbose=0)


def discriminator_logits(discriminator, batch):
    return keras.ops.convert_to_numpy(
        discriminator(
            {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        )
    )


def test_gdes_wiring():
    pretrainer = gdes_pretrainer()
    generator_backbone = pretrainer.generator.backbone
    embedding = pretrainer.backbone.token_embedding
    assert isinstance(embedding, GradientDisentangledEmbedding)
    # The generator's head projects with `shared`, not `shared + delta`.
    assert embedding.shared_embedding is generator_backbone.token_embedding
    assert (
        pretrainer.generator.masked_lm_head.token_embedding
        is generator_backbone.token_embedding
    )
    # Positions, segments and the LayerNorm stay tied.
    for name in ("position_embedding", "segment_embedding"):
        assert getattr(pretrainer.backbone, name) is getattr(
            generator_backbone, name
        )
    # `delta` is the discriminator's only token variable, zero at first.
    assert [w.path for w in embedding.weights] == ["token_embedding/delta"]
    assert not array(embedding.delta).any()
    assert tuple(embedding.delta.shape) == (
        VOCAB_SIZE,
        pretrainer.backbone.embedding_dim,
    )


def test_gdes_starts_from_the_backbone_weights():
    backbone = tiny_backbone()
    batch = tiny_batch()
    inputs = {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    expected = keras.ops.convert_to_numpy(backbone(inputs)["sequence_output"])
    pretrainer = keras_electra.ElectraPretrainer(
        backbone, embedding_sharing="gdes", generator_size=0.5
    )
    got = pretrainer.backbone(inputs)["sequence_output"]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), expected, atol=1e-6
    )
    np.testing.assert_array_equal(
        array(shared_and_delta(pretrainer)[0]),
        array(backbone.token_embedding.embeddings),
    )


def test_discriminator_loss_leaves_shared_alone():
    keras.utils.set_random_seed(0)
    pretrainer = gdes_pretrainer(generator_weight=0.0)
    randomise_delta(pretrainer)
    shared, delta = shared_and_delta(pretrainer)
    shared_before, delta_before = array(shared), array(delta)
    one_sgd_step(pretrainer, tiny_batch())
    np.testing.assert_array_equal(array(shared), shared_before)
    assert np.abs(array(delta) - delta_before).max() > 0


def test_generator_loss_leaves_delta_alone():
    keras.utils.set_random_seed(0)
    pretrainer = gdes_pretrainer(discriminator_weight=0.0)
    randomise_delta(pretrainer)
    shared, delta = shared_and_delta(pretrainer)
    shared_before, delta_before = array(shared), array(delta)
    one_sgd_step(pretrainer, tiny_batch())
    np.testing.assert_array_equal(array(delta), delta_before)
    assert np.abs(array(shared) - shared_before).max() > 0


def test_discriminator_equals_a_plain_one_on_the_folded_table():
    pretrainer = gdes_pretrainer()
    randomise_delta(pretrainer)
    shared, delta = shared_and_delta(pretrainer)
    folded = fold_embeddings(pretrainer.backbone)
    assert type(folded.token_embedding) is keras.layers.ReversibleEmbedding
    np.testing.assert_allclose(
        array(folded.token_embedding.embeddings),
        array(shared) + array(delta),
        rtol=0,
        atol=0,
    )
    plain = keras_electra.ElectraDiscriminator(folded, compile=False)
    plain.replaced_token_head.set_weights(
        pretrainer.discriminator.replaced_token_head.get_weights()
    )
    batch = tiny_batch()
    np.testing.assert_allclose(
        discriminator_logits(plain, batch),
        discriminator_logits(pretrainer.discriminator, batch),
        atol=1e-5,
    )
    # A plain backbone is its own folded form.
    assert fold_embeddings(plain.backbone) is plain.backbone


def test_gdes_preset_round_trip(tmp_path):
    pretrainer = gdes_pretrainer()
    randomise_delta(pretrainer)
    one_sgd_step(pretrainer, tiny_batch())
    shared, delta = shared_and_delta(pretrainer)
    preset = str(tmp_path / "preset")
    pretrainer.save_to_preset(preset)
    with open(os.path.join(preset, "pretrainer.json")) as f:
        saved = json.load(f)
    assert saved["embedding_sharing"] == "gdes"
    assert "tie_embeddings" not in saved

    # Every loader sees an ordinary backbone with the folded table.
    batch = tiny_batch()
    discriminator = keras_electra.ElectraDiscriminator.from_preset(preset)
    np.testing.assert_allclose(
        array(discriminator.backbone.token_embedding.embeddings),
        array(shared) + array(delta),
        atol=0,
    )
    expected = discriminator_logits(pretrainer.discriminator, batch)
    np.testing.assert_allclose(
        discriminator_logits(discriminator, batch), expected, atol=1e-5
    )
    keras_electra.ElectraTextClassifier.from_preset(preset, num_classes=2)
    hub_backbone = keras_hub.models.ElectraBackbone.from_preset(preset)
    np.testing.assert_array_equal(
        array(hub_backbone.token_embedding.embeddings),
        array(discriminator.backbone.token_embedding.embeddings),
    )
    exported = str(tmp_path / "transformers")
    export_to_transformers(pretrainer.discriminator, exported)
    from_transformers = keras_electra.ElectraDiscriminator.from_preset(exported)
    np.testing.assert_allclose(
        discriminator_logits(from_transformers, batch), expected, atol=1e-5
    )

    # The pretrainer comes back with `shared` and `delta`.
    restored = keras_electra.ElectraPretrainer.from_preset(preset)
    assert restored.embedding_sharing == "gdes"
    restored_shared, restored_delta = shared_and_delta(restored)
    np.testing.assert_array_equal(array(restored_shared), array(shared))
    # delta = folded - shared, exact to float32 rounding.
    np.testing.assert_allclose(
        array(restored_delta), array(delta), rtol=0, atol=1e-7
    )
    np.testing.assert_allclose(
        discriminator_logits(restored.discriminator, batch), expected, atol=1e-5
    )


def test_gdes_towers_saved_on_their_own_hold_the_folded_table(tmp_path):
    pretrainer = gdes_pretrainer()
    randomise_delta(pretrainer)
    shared, delta = shared_and_delta(pretrainer)
    pretrainer.backbone.save_to_preset(str(tmp_path / "backbone"))
    backbone = keras_electra.ElectraBackbone.from_preset(
        str(tmp_path / "backbone")
    )
    np.testing.assert_array_equal(
        array(backbone.token_embedding.embeddings),
        array(shared) + array(delta),
    )
    pretrainer.discriminator.save_to_preset(str(tmp_path / "discriminator"))
    discriminator = keras_electra.ElectraDiscriminator.from_preset(
        str(tmp_path / "discriminator")
    )
    batch = tiny_batch()
    np.testing.assert_allclose(
        discriminator_logits(discriminator, batch),
        discriminator_logits(pretrainer.discriminator, batch),
        atol=1e-5,
    )


@pytest.mark.parametrize("objective", ["replace_mlm", "all_tokens_mlm"])
def test_gdes_with_the_encoder_mlm_head(tmp_path, objective):
    pretrainer = gdes_pretrainer(objective=objective)
    randomise_delta(pretrainer)
    batch = tiny_batch()
    expected = keras.ops.convert_to_numpy(
        pretrainer.masked_lm(
            {**batch, "mask_positions": np.ones((8, 2), "int32")}
        )
    )
    # The encoder's own MLM head projects with `shared + delta`.
    assert (
        pretrainer.masked_lm.masked_lm_head.token_embedding
        is pretrainer.backbone.token_embedding
    )
    preset = str(tmp_path / objective)
    pretrainer.save_to_preset(preset)
    restored = keras_electra.ElectraPretrainer.from_preset(preset)
    got = restored.masked_lm(
        {**batch, "mask_positions": np.ones((8, 2), "int32")}
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), expected, atol=1e-4
    )


def test_checkpoint_keeps_shared_and_delta(tmp_path):
    pretrainer = gdes_pretrainer()
    randomise_delta(pretrainer)
    pretrainer.compile()
    pretrainer.fit(tiny_batch(), batch_size=8, verbose=0)
    path = save_checkpoint(pretrainer, str(tmp_path), step=1)
    fresh = gdes_pretrainer(seed=5)
    fresh.compile()
    restore_checkpoint(fresh, path)
    pairs = zip(shared_and_delta(pretrainer), shared_and_delta(fresh))
    for ours, theirs in pairs:
        np.testing.assert_array_equal(array(theirs), array(ours))
    assert array(shared_and_delta(fresh)[1]).any()
    for ours, theirs in zip(pretrainer.variables, fresh.variables):
        np.testing.assert_array_equal(array(theirs), array(ours))


def test_gdes_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        pretrainer = gdes_pretrainer()
        embedding = pretrainer.backbone.token_embedding
        assert embedding.delta.dtype == "float32"
        pretrainer.compile()
        history = pretrainer.fit(tiny_batch(), batch_size=8, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert np.isfinite(history.history["loss"]).all()


def test_embedding_sharing_values_and_alias():
    with pytest.raises(ValueError, match="tied, gdes, separate"):
        tiny_pretrainer(embedding_sharing="shared")
    with pytest.warns(DeprecationWarning, match="tie_embeddings"):
        separate = tiny_pretrainer(tie_embeddings=False)
    assert separate.embedding_sharing == "separate"
    with pytest.warns(DeprecationWarning):
        assert tiny_pretrainer(tie_embeddings=True).embedding_sharing == "tied"
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="disagree"):
            tiny_pretrainer(tie_embeddings=True, embedding_sharing="gdes")
    config = separate.get_config()
    assert config["embedding_sharing"] == "separate"
    assert "tie_embeddings" not in config
    assert tiny_pretrainer().embedding_sharing == "tied"
    # Configs saved with `tie_embeddings` load without a warning.
    config = {k: v for k, v in config.items() if k != "embedding_sharing"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        old = keras_electra.ElectraPretrainer.from_config(
            {**config, "tie_embeddings": False}
        )
    assert old.embedding_sharing == "separate"


def test_mlm_ignores_embedding_sharing():
    backbone = tiny_backbone()
    pretrainer = keras_electra.ElectraPretrainer(
        backbone, objective="mlm", embedding_sharing="gdes"
    )
    assert pretrainer.backbone is backbone
    assert pretrainer.generator is None
