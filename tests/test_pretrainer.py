"""The ELECTRA pre-training step: masking, sampling, labels, losses, fit."""

import keras
import numpy as np
import pytest

import keras_electra
from conftest import CLS, MASK, PAD, SEP, VOCAB_SIZE
from conftest import numpy_tree, repetitive_corpus, tiny_batch, tiny_pretrainer
from conftest import count_train_steps, without_torch_codegen

SPECIALS = [PAD, CLS, SEP, MASK]


def draw_masks(pretrainer, batch, draws):
    """Run the masking (and the rest of the step) `draws` times."""
    return [numpy_tree(pretrainer(batch, training=True)) for _ in range(draws)]


def test_outputs_have_static_shapes():
    pretrainer = tiny_pretrainer()
    outputs = pretrainer(tiny_batch(batch_size=4, length=24))
    num_masked = int((0.15 + 0.005) * 24)
    assert tuple(outputs["mask_positions"].shape) == (4, num_masked)
    assert tuple(outputs["generator_logits"].shape) == (
        4,
        num_masked,
        VOCAB_SIZE,
    )
    assert tuple(outputs["discriminator_logits"].shape) == (4, 24)
    assert tuple(outputs["corrupted_token_ids"].shape) == (4, 24)


def test_masking_statistics():
    pretrainer = tiny_pretrainer(seed=3)
    batch = tiny_batch(batch_size=8, length=32, num_padded=10)
    token_ids, padding_mask = batch["token_ids"], batch["padding_mask"]
    cap = int((0.15 + 0.005) * 32)
    shown_as_mask = kept = total = 0
    for out in draw_masks(pretrainer, batch, draws=40):
        weights = out["mask_weights"].astype(bool)
        for row in range(8):
            positions = out["mask_positions"][row][weights[row]]
            # Count: mask_rate of the real tokens, at most the cap.
            expected = min(cap, round(0.15 * padding_mask[row].sum()))
            assert len(positions) == expected
            assert len(set(positions.tolist())) == len(positions)
            # Never a special token, never padding.
            assert not np.isin(token_ids[row, positions], SPECIALS).any()
            assert padding_mask[row, positions].all()
            masked_ids = out["masked_token_ids"][row]
            shown_as_mask += (masked_ids[positions] == MASK).sum()
            kept += (masked_ids[positions] == token_ids[row, positions]).sum()
            total += len(positions)
            # Everything not picked is left alone.
            unpicked = np.setdiff1d(np.arange(32), positions)
            np.testing.assert_array_equal(
                masked_ids[unpicked], token_ids[row, unpicked]
            )
    assert total > 1000
    assert abs(shown_as_mask / total - 0.85) < 0.04
    assert abs(kept / total - 0.15) < 0.04


def test_bert_style_80_10_10_option():
    pretrainer = tiny_pretrainer(
        seed=4, mask_token_rate=0.8, random_token_rate=0.1
    )
    batch = tiny_batch(batch_size=8, length=32)
    shown_as_mask = changed_to_other = total = 0
    for out in draw_masks(pretrainer, batch, draws=40):
        for row in range(8):
            positions = out["mask_positions"][row][
                out["mask_weights"][row].astype(bool)
            ]
            shown = out["masked_token_ids"][row, positions]
            original = batch["token_ids"][row, positions]
            shown_as_mask += (shown == MASK).sum()
            changed_to_other += ((shown != MASK) & (shown != original)).sum()
            total += len(positions)
    assert abs(shown_as_mask / total - 0.8) < 0.04
    # Random tokens occasionally equal the original, hence slightly < 10%.
    assert abs(changed_to_other / total - 0.1) < 0.03


def test_labels_mark_only_tokens_that_changed():
    pretrainer = tiny_pretrainer(seed=5)
    out = numpy_tree(pretrainer(tiny_batch(), training=True))
    original = tiny_batch()["token_ids"]
    np.testing.assert_array_equal(
        out["replaced"], (out["corrupted_token_ids"] != original).astype(int)
    )
    # The samples land at the masked positions and nowhere else.
    for row in range(len(original)):
        weights = out["mask_weights"][row].astype(bool)
        positions = out["mask_positions"][row][weights]
        np.testing.assert_array_equal(
            out["corrupted_token_ids"][row, positions],
            out["sampled_token_ids"][row][weights],
        )


def test_a_correct_sample_counts_as_original():
    pretrainer = tiny_pretrainer(seed=6)
    batch = tiny_batch()
    word = 150
    batch["token_ids"] = np.where(
        np.isin(batch["token_ids"], SPECIALS), batch["token_ids"], word
    ).astype("int32")
    # Make the generator certain of `word`: it always samples the original.
    bias = pretrainer.generator.masked_lm_head._bias
    bias.assign(keras.ops.convert_to_tensor(np.eye(VOCAB_SIZE)[word] * 1e4))
    out = numpy_tree(pretrainer(batch, training=True))
    assert out["mask_weights"].sum() > 0
    assert (out["sampled_token_ids"] == word).all()
    assert out["replaced"].sum() == 0


def test_temperature_sharpens_sampling():
    hot = tiny_pretrainer(seed=7, temperature=100.0)
    cold = tiny_pretrainer(seed=7, temperature=0.01)
    cold.set_weights(hot.get_weights())
    bias = np.zeros(VOCAB_SIZE)
    bias[150] = 5.0
    for model in (hot, cold):
        model.generator.masked_lm_head._bias.assign(bias)
    batch = tiny_batch()

    def share_of_150(model):
        out = numpy_tree(model(batch, training=False))
        picked = out["sampled_token_ids"][out["mask_weights"].astype(bool)]
        return (picked == 150).mean()

    assert share_of_150(cold) == 1.0
    assert share_of_150(hot) < 0.2


def test_embeddings_are_one_variable_moved_by_both_losses():
    batch = tiny_batch(batch_size=8)
    for generator_weight, discriminator_weight in ((1.0, 0.0), (0.0, 1.0)):
        keras.utils.set_random_seed(0)
        pretrainer = tiny_pretrainer(
            generator_weight=generator_weight,
            discriminator_weight=discriminator_weight,
            backbone_overrides={"dropout": 0.0},
        )
        shared = pretrainer.discriminator.backbone.token_embedding.embeddings
        assert (
            pretrainer.generator.backbone.token_embedding.embeddings is shared
        )
        generator_layer = pretrainer.generator.backbone.transformer_layers[0]
        before = keras.ops.convert_to_numpy(shared).copy()
        generator_before = [
            keras.ops.convert_to_numpy(w).copy()
            for w in generator_layer.weights
        ]
        pretrainer.compile(optimizer=keras.optimizers.SGD(1.0))
        pretrainer.fit(batch, batch_size=8, epochs=1, verbose=0)
        after = keras.ops.convert_to_numpy(shared)
        assert np.abs(after - before).max() > 0, (
            f"weights {generator_weight}/{discriminator_weight}"
        )
        generator_moved = any(
            np.abs(keras.ops.convert_to_numpy(w) - b).max() > 0
            for w, b in zip(generator_layer.weights, generator_before)
        )
        # The discriminator's loss reaches the generator only through the
        # shared embeddings: samples carry no gradient.
        assert generator_moved == (generator_weight > 0)


def test_untied_embeddings_are_separate():
    pretrainer = tiny_pretrainer(embedding_sharing="separate")
    assert (
        pretrainer.generator.backbone.token_embedding
        is not pretrainer.discriminator.backbone.token_embedding
    )
    assert pretrainer(tiny_batch())["discriminator_logits"].shape[1] == 24


def test_uniform_generator_replaces_at_random():
    pretrainer = tiny_pretrainer(seed=8, uniform_generator=True)
    out = numpy_tree(pretrainer(tiny_batch(), training=True))
    picked = out["sampled_token_ids"][out["mask_weights"].astype(bool)]
    assert len(np.unique(picked)) > len(picked) // 2
    # Nothing to learn for the generator: its loss is log(vocab size).
    pretrainer.compile()
    logs = pretrainer.evaluate(tiny_batch(), verbose=0, return_dict=True)
    assert logs["generator_loss"] == pytest.approx(np.log(VOCAB_SIZE), 1e-3)


@pytest.mark.parametrize("embedding_sharing", ["tied", "gdes"])
def test_uniform_generator_trains_only_the_discriminator(
    embedding_sharing, recwarn
):
    pretrainer = tiny_pretrainer(
        seed=8, uniform_generator=True, embedding_sharing=embedding_sharing
    )
    generator_only = [
        v for v in pretrainer.generator.variables
        if all(v is not w for w in pretrainer.discriminator.variables)
    ]
    assert generator_only
    trainable = pretrainer.trainable_variables
    assert not any(v is w for v in generator_only for w in trainable)
    before = [keras.ops.convert_to_numpy(v).copy() for v in generator_only]
    table = pretrainer.discriminator.backbone.token_embedding
    pretrainer.compile(optimizer=keras_electra.electra_adamw(1e-2))
    pretrainer.fit(tiny_batch(), batch_size=8, epochs=2, verbose=0)
    # Untouched (no weight decay either), and no warning about variables
    # without a gradient (TensorFlow's, for the generator's).
    for variable, value in zip(generator_only, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable),
                                      value)
    assert not [w for w in recwarn if "Gradients do not exist" in str(w.message)]
    # The discriminator's table (its own, or GDES' delta) did train.
    assert any(
        np.abs(keras.ops.convert_to_numpy(v)).max() > 0
        for v in table.trainable_variables
        if "delta" in v.path or embedding_sharing == "tied"
    )


def test_loss_goes_down_with_fit(monkeypatch):
    without_torch_codegen(monkeypatch)
    pretrainer = tiny_pretrainer(seed=9, generator_size=1.0)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    history = pretrainer.fit(
        repetitive_corpus(64), batch_size=16, epochs=8, verbose=0
    ).history
    assert set(history) >= {
        "loss",
        "generator_loss",
        "generator_accuracy",
        "discriminator_loss",
        "discriminator_accuracy",
        "discriminator_precision",
        "discriminator_recall",
        "replaced_fraction",
    }
    assert history["generator_loss"][-1] < 0.8 * history["generator_loss"][0]
    assert history["loss"][-1] < history["loss"][0]


def test_discriminator_learns_to_spot_replacements():
    # Rows count up (t, t+1, t+2, ...): a token replaced at random breaks
    # the count, which only the context shows. The discriminator must learn
    # it from its own loss, well past always answering "original".
    rng = np.random.default_rng(0)
    batch_size, length = 16, 24
    starts = rng.integers(MASK + 1, VOCAB_SIZE - length, size=(48 * batch_size, 1))
    token_ids = (starts + np.arange(length)).astype("int32")
    token_ids[:, 0], token_ids[:, -1] = CLS, SEP
    pretrainer = tiny_pretrainer(
        seed=3, uniform_generator=True,
        backbone_overrides=dict(
            num_layers=2, hidden_dim=32, embedding_dim=32, intermediate_dim=64
        ),
    )
    pretrainer.compile(optimizer=keras_electra.electra_adamw(1e-3))
    history = pretrainer.fit(
        {"token_ids": token_ids}, batch_size=batch_size, epochs=4, verbose=0
    ).history
    replaced = history["replaced_fraction"][-1]
    always_original = -(
        replaced * np.log(replaced) + (1 - replaced) * np.log(1 - replaced)
    )
    assert history["discriminator_loss"][-1] < 0.6 * always_original
    assert history["discriminator_recall"][-1] > 0.5
    assert history["discriminator_precision"][-1] > 0.8


def test_fit_without_jit_compile():
    pretrainer = tiny_pretrainer(seed=10)
    pretrainer.compile(jit_compile=False)
    embeddings = pretrainer.backbone.token_embedding.embeddings
    before = keras.ops.convert_to_numpy(embeddings).copy()
    history = pretrainer.fit(tiny_batch(), batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert np.abs(keras.ops.convert_to_numpy(embeddings) - before).max() > 0


@pytest.mark.parametrize("with_tokenizer", [False, True])
def test_fit_traces_the_train_step_once(with_tokenizer):
    # Keras on TensorFlow builds the optimizer inside the first trace, and
    # TensorFlow then traces the step a second time; `fit` builds it first.
    # A tokenizer works outside the step: it is never built, and no reason
    # to wait.
    tokenizer = None
    if with_tokenizer:
        words = [f"word{i}" for i in range(VOCAB_SIZE - 5)]
        tokenizer = keras_electra.ElectraTokenizer(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
        )
    pretrainer = tiny_pretrainer(tokenizer=tokenizer)
    pretrainer.compile()
    runs = count_train_steps(pretrainer)
    pretrainer.fit(tiny_batch(), batch_size=8, verbose=0)
    assert pretrainer.optimizer.built
    assert len(runs) == 1


def test_evaluate_reports_the_same_metrics():
    pretrainer = tiny_pretrainer()
    pretrainer.compile()
    logs = pretrainer.evaluate(tiny_batch(), verbose=0, return_dict=True)
    assert {"loss", "generator_accuracy", "discriminator_recall"} <= set(logs)
    expected = logs["generator_loss"] + 50.0 * logs["discriminator_loss"]
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    pretrainer = tiny_pretrainer()
    pretrainer.compile()
    if policy == "mixed_float16":
        assert isinstance(
            pretrainer.optimizer, keras.optimizers.LossScaleOptimizer
        )
    assert pretrainer.backbone.compute_dtype == policy.split("_")[1]
    history = pretrainer.fit(
        tiny_batch(), batch_size=4, epochs=2, verbose=0
    ).history
    assert np.isfinite(history["loss"]).all()
    assert pretrainer.backbone.token_embedding.embeddings.dtype == "float32"


def test_gradient_accumulation():
    pretrainer = tiny_pretrainer()
    pretrainer.compile(
        optimizer=keras.optimizers.Adam(1e-3, gradient_accumulation_steps=2)
    )
    embeddings = pretrainer.backbone.token_embedding.embeddings
    before = keras.ops.convert_to_numpy(embeddings).copy()
    pretrainer.fit(tiny_batch(), batch_size=8, epochs=1, verbose=0)
    # One step accumulated, nothing applied yet.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(embeddings), before)
    pretrainer.fit(tiny_batch(), batch_size=8, epochs=1, verbose=0)
    assert np.abs(keras.ops.convert_to_numpy(embeddings) - before).max() > 0


def test_same_seed_gives_the_same_first_step():
    def first_step_loss(seed):
        keras.utils.set_random_seed(42)
        pretrainer = tiny_pretrainer(seed=seed)
        outputs = pretrainer(tiny_batch(), training=True)
        loss = pretrainer.compute_loss(y_pred=outputs)
        return float(keras.ops.convert_to_numpy(loss))

    assert first_step_loss(11) == first_step_loss(11)
    assert first_step_loss(11) != first_step_loss(12)


def test_preset_roundtrip_reproduces_outputs(tmp_path):
    import keras_hub

    pretrainer = tiny_pretrainer(seed=13, mask_rate=0.2)
    pretrainer.save_to_preset(str(tmp_path / "preset"))
    batch = tiny_batch(seed=1)
    generator_batch = {**batch, "mask_positions": np.array([[1, 3]] * 8)}

    def same(a, b):
        np.testing.assert_array_equal(numpy_tree(a), numpy_tree(b))

    restored = keras_electra.ElectraPretrainer.from_preset(
        str(tmp_path / "preset")
    )
    assert restored.mask_rate == 0.2
    assert (
        restored.generator.backbone.token_embedding
        is restored.discriminator.backbone.token_embedding
    )
    same(restored.discriminator(batch), pretrainer.discriminator(batch))
    same(
        restored.generator(generator_batch),
        pretrainer.generator(generator_batch),
    )
    discriminator = keras_electra.ElectraDiscriminator.from_preset(
        str(tmp_path / "preset")
    )
    same(discriminator(batch), pretrainer.discriminator(batch))
    generator = keras_electra.ElectraGenerator.from_preset(
        str(tmp_path / "preset" / "generator")
    )
    same(generator(generator_batch), pretrainer.generator(generator_batch))
    hub_backbone = keras_hub.models.ElectraBackbone.from_preset(
        str(tmp_path / "preset")
    )
    same(
        hub_backbone(batch)["sequence_output"],
        pretrainer.backbone(batch)["sequence_output"],
    )
    # Continuing pre-training from the saved pair works.
    restored.compile()
    restored.fit(batch, batch_size=8, verbose=0)


def test_saving_over_an_existing_preset_replaces_it(tmp_path):
    first = tiny_pretrainer(mask_rate=0.2)
    first.save_to_preset(str(tmp_path / "p"))
    second = tiny_pretrainer(mask_rate=0.3)
    second.save_to_preset(str(tmp_path / "p"))
    restored = keras_electra.ElectraPretrainer.from_preset(str(tmp_path / "p"))
    assert restored.mask_rate == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_builtin_preset_sizes():
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=200, mask_rate=0.3
    )
    assert pretrainer.mask_rate == 0.3
    assert pretrainer.generator.backbone.hidden_dim == 16
    assert pretrainer.backbone.hidden_dim == 32
    large = keras_electra.presets["electra_large"]["pretrainer"]
    assert large["mask_rate"] == 0.25


def test_keras_saving_roundtrip(tmp_path):
    pretrainer = tiny_pretrainer(seed=14)
    pretrainer(tiny_batch())
    pretrainer.save(str(tmp_path / "pretrainer.keras"))
    restored = keras.saving.load_model(str(tmp_path / "pretrainer.keras"))
    batch = tiny_batch()
    np.testing.assert_array_equal(
        numpy_tree(restored.discriminator(batch)),
        numpy_tree(pretrainer.discriminator(batch)),
    )
