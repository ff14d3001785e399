"""Pre-training objectives: ELECTRA, BERT-style MLM and the ablations."""

import json
import os

import keras
import numpy as np
import pytest

import keras_electra
from conftest import CLS, MASK, PAD, SEP, VOCAB_SIZE
from conftest import numpy_tree, repetitive_corpus, tiny_batch, tiny_pretrainer

OBJECTIVES = ["electra", "electra_15", "mlm", "replace_mlm", "all_tokens_mlm"]
SPECIALS = [PAD, CLS, SEP, MASK]


def is_masked(outputs):
    """(batch, length) bool: the positions picked by the masking."""
    positions, weights = outputs["mask_positions"], outputs["mask_weights"]
    masked = np.zeros(outputs["masked_token_ids"].shape, bool)
    for row in range(len(positions)):
        masked[row, positions[row][weights[row] > 0]] = True
    return masked


def logged_losses(pretrainer, outputs):
    """Total loss and every tracked metric for one batch of `outputs`."""
    pretrainer.reset_metrics()
    y_pred = keras.tree.map_structure(keras.ops.convert_to_tensor, outputs)
    loss = pretrainer.compute_loss(y_pred=y_pred)
    logs = {m.name: float(m.result()) for m in pretrainer.metrics}
    logs["loss"] = float(keras.ops.convert_to_numpy(loss))
    return logs


GENERATOR_METRICS = {
    "generator_loss",
    "generator_accuracy",
    "replaced_fraction",
}
RTD_METRICS = {
    "discriminator_loss",
    "discriminator_accuracy",
    "discriminator_precision",
    "discriminator_recall",
}
MLM_METRICS = {"mlm_loss", "mlm_accuracy"}
EXPECTED_METRICS = {
    "electra": GENERATOR_METRICS | RTD_METRICS,
    "electra_15": GENERATOR_METRICS | RTD_METRICS,
    "mlm": MLM_METRICS,
    "replace_mlm": GENERATOR_METRICS | MLM_METRICS,
    "all_tokens_mlm": GENERATOR_METRICS | RTD_METRICS | MLM_METRICS,
}


@pytest.fixture(scope="module")
def pretrainers():
    """`pretrainers(objective)`: one pretrainer per objective for the module.

    Building a model costs more than most checks here (seconds on JAX), so
    the tests share them; none depends on their weights.
    """
    cache = {}

    def get(objective):
        if objective not in cache:
            cache[objective] = tiny_pretrainer(
                seed=1,
                objective=objective,
                backbone_overrides={"dropout": 0.0},
            )
        return cache[objective]

    return get


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_trains(objective, pretrainers):
    pretrainer = pretrainers(objective)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = pretrainer.fit(
        repetitive_corpus(32), batch_size=16, epochs=4, verbose=0
    ).history
    assert set(history) == {"loss"} | EXPECTED_METRICS[objective]
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]
    if "mlm_loss" in history:
        assert history["mlm_loss"][-1] < history["mlm_loss"][0]


def test_bad_objective_lists_the_valid_ones():
    with pytest.raises(ValueError, match="electra, electra_15, mlm"):
        tiny_pretrainer(objective="bert")
    with pytest.raises(ValueError, match="needs a generator"):
        tiny_pretrainer(objective="mlm", uniform_generator=True)


def test_config_keeps_the_objective(pretrainers):
    config = pretrainers("replace_mlm").get_config()
    assert config["objective"] == "replace_mlm"
    restored = keras_electra.ElectraPretrainer.from_config(config)
    assert restored.objective == "replace_mlm"
    assert restored.discriminator is None and restored.generator is not None


def test_mlm_has_no_generator_and_bert_masking(pretrainers):
    pretrainer = pretrainers("mlm")
    assert pretrainer.generator is None and pretrainer.discriminator is None
    assert pretrainer.masked_lm.backbone is pretrainer.backbone
    assert (pretrainer.mask_token_rate, pretrainer.random_token_rate) == (
        0.8,
        0.1,
    )
    # Given rates win over the MLM defaults.
    given = tiny_pretrainer(objective="mlm", mask_token_rate=0.5)
    assert given.random_token_rate == 0.1
    # Every trainable variable is the encoder's or its MLM head's.
    head = pretrainer.masked_lm.masked_lm_head
    own = {id(v) for v in pretrainer.backbone.trainable_variables}
    own |= {id(v) for v in head.trainable_variables}
    assert {id(v) for v in pretrainer.trainable_variables} == own
    paths = [v.path for v in pretrainer.variables if "seed" not in v.path]
    assert not any("generator" in path for path in paths), paths
    out = numpy_tree(pretrainer(tiny_batch(), training=True))
    assert "generator_logits" not in out and "discriminator_logits" not in out
    num_masked = out["mask_positions"].shape[1]
    assert out["mlm_logits"].shape == (8, num_masked, VOCAB_SIZE)


def test_mlm_loss_counts_only_the_masked_positions(pretrainers):
    pretrainer = pretrainers("mlm")
    # Short rows mask fewer tokens than the longest: unused mask slots.
    batch = tiny_batch(num_padded=14)
    out = numpy_tree(pretrainer(batch, training=True))
    weights = out["mask_weights"]
    assert 0 < weights.sum() < weights.size
    logits = out["mlm_logits"].astype("float64")
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_q, out["mlm_targets"][..., None], -1)[..., 0]
    expected = (nll * weights).sum() / weights.sum()
    logs = logged_losses(pretrainer, out)
    assert logs["mlm_loss"] == pytest.approx(expected, rel=1e-4)
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    # Garbage in the unused mask slots changes nothing.
    noisy = dict(out)
    noisy["mlm_logits"] = np.where(
        weights[..., None] > 0, out["mlm_logits"], 1e3 * np.random.randn(
            *out["mlm_logits"].shape
        )
    ).astype("float32")
    assert logged_losses(pretrainer, noisy)["loss"] == logs["loss"]


def test_mlm_loss_ignores_unmasked_tokens_by_construction():
    # Every maskable token is `word` and the head is certain of `word`: the
    # loss is ~0 though [CLS], [SEP], [PAD] (and [MASK] itself, shown at
    # most masked positions) would all be predicted wrong.
    word = 150
    pretrainer = tiny_pretrainer(seed=3, objective="mlm")
    batch = tiny_batch()
    batch["token_ids"] = np.where(
        np.isin(batch["token_ids"], SPECIALS), batch["token_ids"], word
    ).astype("int32")
    bias = pretrainer.masked_lm.masked_lm_head._bias
    bias.assign(np.eye(VOCAB_SIZE)[word] * 1e4)
    logs = logged_losses(
        pretrainer, numpy_tree(pretrainer(batch, training=True))
    )
    assert logs["mlm_loss"] < 1e-3
    assert logs["mlm_accuracy"] == 1.0


def perturb(outputs, where, rng):
    """Random logits and flipped labels for the discriminator at `where`."""
    changed = dict(outputs)
    noise = rng.normal(0, 5, size=where.shape).astype("float32")
    changed["discriminator_logits"] = np.where(
        where, noise, outputs["discriminator_logits"]
    )
    changed["replaced"] = np.where(
        where, 1 - outputs["replaced"], outputs["replaced"]
    )
    return changed


@pytest.mark.parametrize("objective", ["electra_15", "electra"])
def test_electra_15_discriminator_loss_depends_only_on_masked(
    objective, pretrainers
):
    pretrainer = pretrainers(objective)
    batch = tiny_batch()
    out = numpy_tree(pretrainer(batch, training=True))
    masked = is_masked(out)
    real = batch["padding_mask"] > 0
    rng = np.random.default_rng(0)
    base = logged_losses(pretrainer, out)["discriminator_loss"]
    unmasked = logged_losses(pretrainer, perturb(out, real & ~masked, rng))
    at_masked = logged_losses(pretrainer, perturb(out, masked, rng))
    assert at_masked["discriminator_loss"] != pytest.approx(base, rel=1e-3)
    if objective == "electra_15":
        assert unmasked["discriminator_loss"] == pytest.approx(base, rel=1e-6)
        # The mean binary cross-entropy over exactly the masked positions.
        logits = out["discriminator_logits"][masked].astype("float64")
        labels = out["replaced"][masked]
        bce = np.maximum(logits, 0) - logits * labels
        bce += np.log1p(np.exp(-np.abs(logits)))
        assert base == pytest.approx(bce.mean(), rel=1e-4)
    else:
        assert unmasked["discriminator_loss"] != pytest.approx(base, rel=1e-3)


def test_replace_mlm_shows_samples_and_predicts_originals(pretrainers):
    pretrainer = pretrainers("replace_mlm")
    assert pretrainer.generator is not None and pretrainer.discriminator is None
    batch = tiny_batch()
    out = numpy_tree(pretrainer(batch, training=True))
    masked = is_masked(out)
    corrupted = out["corrupted_token_ids"]
    # The generator saw [MASK]s; the encoder sees its samples at every
    # masked position instead, and the original text elsewhere.
    assert (out["masked_token_ids"][masked] == MASK).mean() > 0.5
    np.testing.assert_array_equal(
        corrupted[~masked], batch["token_ids"][~masked]
    )
    weights = out["mask_weights"] > 0
    for row in range(len(corrupted)):
        positions = out["mask_positions"][row][weights[row]]
        np.testing.assert_array_equal(
            corrupted[row, positions],
            out["sampled_token_ids"][row][weights[row]],
        )
        np.testing.assert_array_equal(
            out["mlm_targets"][row][weights[row]],
            batch["token_ids"][row, positions],
        )
    # The MLM's logits are those of the encoder reading the corrupted text
    # (no dropout in these models).
    expected = pretrainer.masked_lm(
        {
            "token_ids": corrupted,
            "segment_ids": batch["segment_ids"],
            "padding_mask": batch["padding_mask"],
            "mask_positions": out["mask_positions"],
        }
    )
    np.testing.assert_allclose(
        out["mlm_logits"], numpy_tree(expected), rtol=1e-5, atol=1e-5
    )


def test_all_tokens_mlm_copy_mechanism_loss(pretrainers):
    pretrainer = pretrainers("all_tokens_mlm")
    batch = tiny_batch()
    out = numpy_tree(pretrainer(batch, training=True))
    padding = batch["padding_mask"].astype("float64")
    assert out["mlm_logits"].shape == (8, 24, VOCAB_SIZE)
    np.testing.assert_array_equal(out["mlm_targets"], batch["token_ids"])
    # The mixture in probability space, in float64.
    logits = out["mlm_logits"].astype("float64")
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    copy = 1 / (1 + np.exp(out["discriminator_logits"].astype("float64")))
    inputs = out["corrupted_token_ids"]
    mixture = (1 - copy)[..., None] * softmax
    mixture += copy[..., None] * np.eye(VOCAB_SIZE)[inputs]
    p_target = np.take_along_axis(mixture, batch["token_ids"][..., None], -1)
    mlm_loss = -(np.log(p_target[..., 0]) * padding).sum() / padding.sum()
    correct = mixture.argmax(-1) == batch["token_ids"]
    logs = logged_losses(pretrainer, out)
    assert logs["mlm_loss"] == pytest.approx(mlm_loss, rel=1e-4)
    assert logs["mlm_accuracy"] == pytest.approx(
        (correct * padding).sum() / padding.sum(), abs=1e-6
    )
    assert logs["loss"] == pytest.approx(
        logs["generator_loss"] + mlm_loss + 50 * logs["discriminator_loss"],
        rel=1e-4,
    )


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_preset_roundtrip(objective, pretrainers, tmp_path):
    pretrainer = pretrainers(objective)
    preset = str(tmp_path / "preset")
    pretrainer.save_to_preset(preset)
    with open(os.path.join(preset, "pretrainer.json")) as f:
        assert json.load(f)["objective"] == objective
    assert os.path.isdir(os.path.join(preset, "generator")) == (
        pretrainer.generator is not None
    )

    restored = keras_electra.ElectraPretrainer.from_preset(preset)
    for key in ("objective", "mask_token_rate", "random_token_rate"):
        assert getattr(restored, key) == getattr(pretrainer, key)
    assert restored.objective == objective
    batch = tiny_batch(seed=1)
    positioned = {**batch, "mask_positions": np.array([[1, 3]] * 8)}

    def same(a, b):
        np.testing.assert_array_equal(numpy_tree(a), numpy_tree(b))

    same(
        restored.backbone(batch)["sequence_output"],
        pretrainer.backbone(batch)["sequence_output"],
    )
    for part, inputs in (
        ("discriminator", batch),
        ("generator", positioned),
        ("masked_lm", positioned),
    ):
        ours, theirs = getattr(restored, part), getattr(pretrainer, part)
        assert (ours is None) == (theirs is None), part
        if ours is not None:
            same(ours(inputs), theirs(inputs))
    if restored.generator is not None:
        assert (
            restored.generator.backbone.token_embedding
            is restored.backbone.token_embedding
        )
    # The encoder fine-tunes from the directory, whatever the objective.
    classifier = keras_electra.ElectraTextClassifier.from_preset(
        preset, num_classes=2
    )
    same(
        classifier.backbone(batch)["sequence_output"],
        pretrainer.backbone(batch)["sequence_output"],
    )
    # And pre-training continues from it.
    loss = restored.compute_loss(y_pred=restored(batch, training=True))
    assert np.isfinite(keras.ops.convert_to_numpy(loss))


def test_switching_objective_keeps_the_encoder(pretrainers, tmp_path):
    mlm = pretrainers("mlm")
    mlm.save_to_preset(str(tmp_path / "mlm"))
    electra = keras_electra.ElectraPretrainer.from_preset(
        str(tmp_path / "mlm"), objective="electra"
    )
    assert electra.objective == "electra" and electra.generator is not None
    batch = tiny_batch()
    np.testing.assert_array_equal(
        numpy_tree(electra.backbone(batch)["sequence_output"]),
        numpy_tree(mlm.backbone(batch)["sequence_output"]),
    )
