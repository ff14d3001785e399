"""Layer-wise learning-rate decay, the warmup schedule, the fine-tuning recipe.

The update tests measure what the optimizer actually does to the variables:
per variable, the change must be the plain optimizer's change times
`decay ** exponent(depth)`.
"""

import json

import keras
import numpy as np
import pytest

import keras_electra
from conftest import backend, tiny_backbone, tiny_batch, without_torch_codegen
from keras_electra.models.electra_optimizer import FusedAdamW

NUM_LAYERS = 2
DECAY = 0.5


def tiny_model(num_layers=NUM_LAYERS, **overrides):
    """With an embeddings_projection (embedding_dim 8 != hidden_dim 16)."""
    backbone = tiny_backbone(num_layers=num_layers, **overrides)
    return keras_electra.ElectraDiscriminator(backbone)


def expected_depth(path):
    first = path.split("/")[0]
    if first in keras_electra.training.optimizers.EMBEDDING_LAYER_NAMES:
        return 0
    if first.startswith("transformer_layer_"):
        return int(first.rsplit("_", 1)[1]) + 1
    return NUM_LAYERS + 2


def values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def random_grads(variables, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        (scale * rng.standard_normal(v.shape)).astype("float32")
        for v in variables
    ]


def apply_once(optimizer, model, grads):
    """Deltas of one `optimizer.apply`; the model's weights are restored."""
    variables = model.trainable_variables
    before = values(variables)
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    after = values(variables)
    for variable, value in zip(variables, before):
        variable.assign(value)
    return [a - b for a, b in zip(after, before)]


# --- Depths and multipliers -------------------------------------------------


def test_layer_depths_follow_original_electra():
    model = tiny_model()
    depths = keras_electra.layer_depths(model)
    assert set(depths) == {v.path for v in model.weights}
    for path, depth in depths.items():
        assert depth == expected_depth(path), path
    assert depths["embeddings_projection/kernel"] == 0
    assert depths["embeddings_layer_norm/gamma"] == 0
    assert depths["transformer_layer_0/feedforward_output_dense/kernel"] == 1
    assert depths["transformer_layer_1/self_attention_layer/query/kernel"] == 2
    assert depths["pooled_dense/kernel"] == NUM_LAYERS + 2  # like the head
    assert depths["replaced_token_head/prediction/kernel"] == NUM_LAYERS + 2
    # A bare backbone gives the same depths for its own variables.
    backbone_depths = keras_electra.layer_depths(model.backbone)
    assert backbone_depths == {
        p: d for p, d in depths.items() if not p.startswith("replaced_")
    }


@pytest.mark.parametrize("contiguous", [False, True])
def test_multipliers(contiguous):
    model = tiny_model()
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.SGD(0.1), model, DECAY, contiguous_exponents=contiguous
    )
    L = NUM_LAYERS
    top = L + 1 if contiguous else L + 2
    # Original: head 1, top layer decay^2, layer 0 decay^3, embeddings ^4.
    # Contiguous: head 1, top layer decay^1, layer 0 decay^2, embeddings ^3.
    by_depth = {0: DECAY**top, 1: DECAY ** (top - 1), 2: DECAY ** (top - 2)}
    by_depth[L + 2] = 1.0
    for variable in model.weights:
        multiplier = optimizer.lr_multiplier(variable)
        assert multiplier == pytest.approx(
            by_depth[expected_depth(variable.path)]
        ), variable.path
    top_layer = "transformer_layer_1/feedforward_output_dense/kernel"
    assert optimizer.lr_multipliers[top_layer] == pytest.approx(
        DECAY if contiguous else DECAY**2
    )


# --- Actual update sizes ----------------------------------------------------


def test_sgd_update_is_minus_lr_times_multiplier_times_gradient():
    model = tiny_model()
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.SGD(0.1), model, DECAY
    )
    grads = random_grads(model.trainable_variables)
    deltas = apply_once(optimizer, model, grads)
    for variable, delta, grad in zip(model.trainable_variables, deltas, grads):
        expected = -0.1 * optimizer.lr_multiplier(variable) * grad
        np.testing.assert_allclose(
            delta, expected, rtol=1e-4, atol=1e-7, err_msg=variable.path
        )
    # All four multipliers really occur.
    assert len({optimizer.lr_multiplier(v) for v in model.weights}) == 4


def test_adam_first_step_is_lr_times_multiplier():
    model = tiny_model()
    lr = 1e-2
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.Adam(lr, epsilon=1e-12), model, DECAY
    )
    grads = random_grads(model.trainable_variables)
    deltas = apply_once(optimizer, model, grads)
    for variable, delta, grad in zip(model.trainable_variables, deltas, grads):
        # First Adam step: -lr * g / (|g| + eps) = -lr * sign(g).
        expected = -lr * optimizer.lr_multiplier(variable) * np.sign(grad)
        np.testing.assert_allclose(
            delta, expected, rtol=1e-3, atol=1e-7, err_msg=variable.path
        )


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        lambda: keras.optimizers.Adam(1e-2),
        lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1),
        lambda: FusedAdamW(1e-2, weight_decay=0.1),
        lambda: keras.optimizers.RMSprop(1e-2),
        lambda: keras.optimizers.Adagrad(1e-2),
        lambda: keras.optimizers.Adamax(1e-2),
        lambda: keras.optimizers.Nadam(1e-2),
        lambda: keras.optimizers.Lion(1e-2, weight_decay=0.1),
        lambda: keras.optimizers.Adadelta(1.0),
        lambda: keras.optimizers.Lamb(1e-2),
        lambda: keras.optimizers.Adafactor(1e-2),
        lambda: keras.optimizers.Muon(1e-2, weight_decay=0.1),
    ],
    ids=lambda make: type(make()).__name__,
)
def test_any_optimizer_update_scales_by_multiplier(make_optimizer):
    model = tiny_model()
    decayed = keras_electra.layerwise_decay(make_optimizer(), model, DECAY)
    grads = random_grads(model.trainable_variables)
    plain_deltas = apply_once(make_optimizer(), model, grads)
    deltas = apply_once(decayed, model, grads)
    changed = 0
    for variable, delta, plain in zip(
        model.trainable_variables, deltas, plain_deltas
    ):
        multiplier = decayed.lr_multiplier(variable)
        scale = np.abs(plain).max()
        np.testing.assert_allclose(
            delta,
            multiplier * plain,
            rtol=1e-3,
            atol=1e-5 * scale + 1e-9,
            err_msg=variable.path,
        )
        changed += scale > 0
    assert changed == len(model.trainable_variables)


def test_weight_decay_scales_with_multiplier_and_skips_norms_and_biases():
    model = tiny_model()
    lr, weight_decay = 0.1, 0.5
    optimizer = keras_electra.electra_finetuning_optimizer(
        model,
        learning_rate=lr,
        total_steps=10,
        layer_decay=DECAY,
        weight_decay=weight_decay,
        warmup_fraction=0.0,  # Full learning rate at step 0.
    )
    variables = model.trainable_variables
    # Zero gradients: AdamW's Adam part is 0, only the weight decay moves.
    deltas = apply_once(
        optimizer, model, [np.zeros(v.shape, "float32") for v in variables]
    )
    decayed = 0
    for variable, delta, value in zip(variables, deltas, values(variables)):
        if variable.name in ("gamma", "beta", "bias"):
            np.testing.assert_array_equal(delta, 0.0, err_msg=variable.path)
            continue
        multiplier = optimizer.lr_multiplier(variable)
        np.testing.assert_allclose(
            delta,
            -lr * multiplier * weight_decay * value,
            rtol=1e-3,
            atol=1e-8,
            err_msg=variable.path,
        )
        decayed += 1
    # 3 embeddings, the projection, 2 x 6 layer kernels, 2 in the head (the
    # discriminator freezes the pooler it does not use).
    assert decayed == 18
    assert "pooled_dense/kernel" not in {v.path for v in variables}


def test_clipping_and_gradient_accumulation():
    model = tiny_model()
    lr = 0.1
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.SGD(
            lr, global_clipnorm=1.0, gradient_accumulation_steps=2
        ),
        model,
        DECAY,
    )
    variables = model.trainable_variables
    g1 = random_grads(variables, seed=1, scale=10.0)
    g2 = random_grads(variables, seed=2, scale=10.0)
    before = values(variables)
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in g1], variables)
    np.testing.assert_array_equal(
        np.concatenate([v.ravel() for v in values(variables)]),
        np.concatenate([v.ravel() for v in before]),
    )  # First micro-batch: accumulate only.
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in g2], variables)
    mean = [(a + b) / 2 for a, b in zip(g1, g2)]
    norm = np.sqrt(sum(np.sum(g**2) for g in mean))
    assert norm > 1.0  # so the clipping acts
    for variable, value, old, grad in zip(
        variables, values(variables), before, mean
    ):
        expected = -lr * optimizer.lr_multiplier(variable) * grad / norm
        np.testing.assert_allclose(
            value - old, expected, rtol=1e-3, atol=1e-7, err_msg=variable.path
        )


def test_loss_scale_optimizer_wraps_the_inner_optimizer():
    model = tiny_model()
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
        model,
        DECAY,
    )
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    variables = model.trainable_variables
    grads = random_grads(variables)
    scaled = [keras.ops.convert_to_tensor(g * optimizer.initial_scale)
              for g in grads]
    before = values(variables)
    if backend() == "jax":
        # Keras' LossScaleOptimizer only runs statelessly on JAX.
        optimizer.build(variables)
        new_values, _ = optimizer.stateless_apply(
            [v.value for v in optimizer.variables],
            scaled,
            [v.value for v in variables],
        )
        for variable, value in zip(variables, new_values):
            variable.assign(value)
    else:
        optimizer.apply(scaled, variables)
    deltas = [a - b for a, b in zip(values(variables), before)]
    inner = optimizer.inner_optimizer
    for variable, delta, grad in zip(model.trainable_variables, deltas, grads):
        expected = -0.1 * inner.lr_multiplier(variable) * grad
        np.testing.assert_allclose(delta, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.skipif(backend() != "torch", reason="PyTorch's fused updates")
def test_torch_fused_optimizers_are_updated_per_group():
    model = tiny_model()
    adam = keras_electra.layerwise_decay("adam", model, DECAY)
    nadam = keras_electra.layerwise_decay("nadam", model, DECAY)
    lamb = keras_electra.layerwise_decay(keras.optimizers.Lamb(), model, DECAY)
    # One fused `_parallel_update_step` per multiplier for Adam; Nadam's
    # fused step also advances optimizer-wide state, so it goes per variable.
    assert type(adam)._torch_update_mode == "grouped"
    assert type(nadam)._torch_update_mode == "per_variable"
    assert type(lamb)._torch_update_mode is None  # not fused at all


def test_misuse_is_reported():
    model = tiny_model()
    with pytest.raises(ValueError, match="decay"):
        keras_electra.layerwise_decay("sgd", model, 1.5)
    with pytest.raises(ValueError, match="backbone"):
        keras_electra.layer_depths(keras.Sequential([keras.layers.Dense(1)]))
    optimizer = keras_electra.layerwise_decay("sgd", model, DECAY)
    with pytest.raises(ValueError, match="already"):
        keras_electra.layerwise_decay(optimizer, model, DECAY)
    used = keras.optimizers.SGD(0.1)
    used.build(model.trainable_variables)
    with pytest.raises(ValueError, match="built"):
        keras_electra.layerwise_decay(used, model, DECAY)
    # Built for a model whose paths it does not know: warn.
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.warns(UserWarning, match="another model"):
        optimizer.build(other.trainable_variables)


# --- model.fit, jit on ------------------------------------------------------


def test_fit_with_jit_follows_multipliers(monkeypatch):
    # Dynamo's capture is what runs through the optimizer's Python hooks.
    without_torch_codegen(monkeypatch)
    # One layer (three distinct multipliers) keeps torch.compile's time down.
    model = tiny_model(num_layers=1, dropout=0.0)
    reference = tiny_model(num_layers=1, dropout=0.0)
    reference.set_weights(model.get_weights())
    batch = tiny_batch(batch_size=8, length=12)
    labels = np.random.default_rng(0).integers(0, 2, (8, 12)).astype("float32")
    loss = keras.losses.BinaryCrossentropy(from_logits=True)

    def adamw():
        return keras.optimizers.AdamW(
            1e-3, weight_decay=0.01, global_clipnorm=1.0
        )

    # Reference step without jit (cheap to compile); the checked one with.
    reference.compile(optimizer=adamw(), loss=loss, jit_compile=False)
    optimizer = keras_electra.layerwise_decay(adamw(), model, DECAY)
    model.compile(optimizer=optimizer, loss=loss, jit_compile=True)
    assert model.jit_compile

    before = values(model.trainable_variables)
    reference.fit(batch, labels, batch_size=8, epochs=1, verbose=0)
    model.fit(batch, labels, batch_size=8, epochs=1, verbose=0)
    for variable, ref_variable, old in zip(
        model.trainable_variables, reference.trainable_variables, before
    ):
        delta = keras.ops.convert_to_numpy(variable) - old
        plain = keras.ops.convert_to_numpy(ref_variable) - old
        np.testing.assert_allclose(
            delta,
            optimizer.lr_multiplier(variable) * plain,
            rtol=1e-2,
            atol=1e-7,  # jit vs. eager rounding; updates are up to 1e-3
            err_msg=variable.path,
        )
    history = model.fit(batch, labels, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert int(optimizer.iterations) == 3


# --- Schedule ---------------------------------------------------------------


def test_warmup_linear_decay_values():
    schedule = keras_electra.WarmupLinearDecay(2e-4, total_steps=100)
    assert schedule.warmup_steps == 10
    expected = {0: 0.0, 5: 1e-4, 10: 2e-4, 55: 1e-4, 91: 2e-5, 100: 0.0}
    expected[250] = 0.0
    for step, value in expected.items():
        got = float(keras.ops.convert_to_numpy(schedule(step)))
        assert got == pytest.approx(value, abs=1e-10), step
    no_warmup = keras_electra.WarmupLinearDecay(1.0, 10, warmup_fraction=0.0)
    assert float(no_warmup(0)) == pytest.approx(1.0)
    assert float(no_warmup(5)) == pytest.approx(0.5)
    steps = keras_electra.WarmupLinearDecay(1.0, 10, warmup_steps=4)
    assert float(steps(2)) == pytest.approx(0.5)
    assert float(steps(7)) == pytest.approx(0.5)
    all_warmup = keras_electra.WarmupLinearDecay(1.0, 10, warmup_fraction=1)
    assert [float(all_warmup(s)) for s in (5, 10, 11)] == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError):
        keras_electra.WarmupLinearDecay(1.0, 10, warmup_steps=11)


def test_schedule_config_round_trip():
    schedule = keras_electra.WarmupLinearDecay(3e-4, 1234, warmup_fraction=0.2)
    config = schedule.get_config()
    assert keras_electra.WarmupLinearDecay.from_config(config).get_config() == (
        config
    )
    serialized = keras.optimizers.schedules.serialize(schedule)
    restored = keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(serialized))
    )
    assert isinstance(restored, keras_electra.WarmupLinearDecay)
    assert restored.get_config() == config
    assert float(restored(300)) == pytest.approx(float(schedule(300)))


# --- Recipe and serialization -----------------------------------------------


def test_finetuning_optimizer_and_hyperparameters():
    hparams = keras_electra.FINETUNING_HYPERPARAMETERS
    assert hparams["learning_rate"] == {
        "small": 3e-4, "base": 1e-4, "large": 5e-5
    }
    assert hparams["layer_decay"] == {"small": 0.8, "base": 0.8, "large": 0.9}
    assert hparams["warmup_fraction"] == 0.1
    assert hparams["adam_epsilon"] == 1e-6
    model = tiny_model()
    optimizer = keras_electra.electra_finetuning_optimizer(
        model, learning_rate=1e-4, total_steps=100
    )
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.epsilon == 1e-6
    assert optimizer.weight_decay == 0.01
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.999)
    assert isinstance(optimizer._learning_rate, keras_electra.WarmupLinearDecay)
    assert optimizer.lr_multipliers["token_embedding/embeddings"] == (
        pytest.approx(0.8**4)
    )
    assert optimizer.lr_multipliers["replaced_token_head/dense/kernel"] == 1.0


def test_optimizer_config_round_trip():
    model = tiny_model()
    optimizer = keras_electra.electra_finetuning_optimizer(
        model, learning_rate=1e-4, total_steps=100, layer_decay=0.9
    )
    config = optimizer.get_config()
    for restored in (
        type(optimizer).from_config(config),
        keras.optimizers.deserialize(
            json.loads(json.dumps(keras.optimizers.serialize(optimizer)))
        ),
    ):
        # Same (backend-specific) class, same multipliers and exclusions.
        assert type(restored) is type(optimizer)
        assert restored.get_config() == config
        assert restored.lr_multipliers == optimizer.lr_multipliers
        for variable in model.weights:
            assert restored._use_weight_decay(variable) == (
                variable.name not in ("gamma", "beta", "bias")
            )
    # The class is saved backend-neutrally (not as e.g. torch's fused Adam;
    # `FusedAdamW` loads as Keras' AdamW on JAX and PyTorch).
    if backend() == "tensorflow":
        assert config["base_optimizer"] == {
            "module": "keras_electra.models.electra_optimizer",
            "class_name": "FusedAdamW",
            "registered_name": "keras_electra>FusedAdamW",
        }
    else:
        assert config["base_optimizer"] == {
            "module": "keras.optimizers",
            "class_name": "AdamW",
            "registered_name": None,
        }
    # A custom optimizer class round-trips through its registered name.
    custom = keras_electra.layerwise_decay(MomentumSGD(0.1), model, DECAY)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(custom))
    assert isinstance(restored, MomentumSGD)
    assert type(restored) is type(custom)
    assert restored.get_config() == custom.get_config()


@keras.saving.register_keras_serializable(package="test_optimization")
class MomentumSGD(keras.optimizers.SGD):
    def __init__(self, learning_rate=0.01, **kwargs):
        kwargs.setdefault("momentum", 0.9)
        super().__init__(learning_rate, **kwargs)


def test_saved_model_restores_the_optimizer(tmp_path):
    backbone = tiny_backbone(num_layers=1)
    pooled = backbone.output["pooled_output"]
    logits = keras.layers.Dense(1, name="head")(pooled)
    model = keras.Model(backbone.input, logits)
    model.backbone = backbone
    optimizer = keras_electra.layerwise_decay(
        keras.optimizers.AdamW(1e-3), model, DECAY
    )
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    for variable in optimizer.variables:
        value = rng.integers(1, 5, variable.shape)
        variable.assign(value.astype(variable.dtype))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path).optimizer
    assert type(loaded) is type(optimizer)
    assert loaded.lr_multipliers == optimizer.lr_multipliers
    for saved, restored in zip(optimizer.variables, loaded.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored),
            keras.ops.convert_to_numpy(saved),
        )
