"""`FusedAdamW`: Keras' AdamW, with one fused op per variable on TensorFlow.

It must train exactly as `keras.optimizers.AdamW` does (same formula,
weight-decay exclusions, schedule, clipping, layer-wise decay) on every
backend; on TensorFlow its graph must hold the fused kernel; and a config
saved on TensorFlow must load on every backend.
"""

import json

import keras
import numpy as np
import pytest

import keras_electra
from conftest import backend, tiny_backbone
from keras_electra.models.electra_optimizer import FusedAdamW
from keras_electra.models.electra_optimizer import electra_adamw
from keras_electra.training.optimizers import LayerwiseDecayMixin

SHAPES = {"kernel": (6, 4), "bias": (4,), "embeddings": (10, 6)}
STEPS = 3


def make_variables(dtype="float32"):
    rng = np.random.default_rng(0)
    return [
        keras.Variable(rng.standard_normal(shape), dtype=dtype, name=name)
        for name, shape in SHAPES.items()
    ]


def gradients(step, dtype="float32"):
    rng = np.random.default_rng(step + 1)
    return [
        keras.ops.convert_to_tensor(rng.standard_normal(shape), dtype=dtype)
        for shape in SHAPES.values()
    ]


def configured(adamw, **overrides):
    """`adamw` as ELECTRA configures it, with a schedule and clipping."""
    options = dict(
        learning_rate=keras_electra.WarmupLinearDecay(
            1e-2, total_steps=10, warmup_steps=1
        ),
        weight_decay=0.1,
        epsilon=1e-6,
        global_clipnorm=1.0,
    )
    return adamw(**{**options, **overrides})


def trained(optimizer, dtype="float32", exclude_by="name"):
    """The variables after `STEPS` updates, the bias not weight-decayed.

    `exclude_by="identity"` for Keras' AdamW, which on TensorFlow matches
    name patterns against "bias:0" and decays the bias regardless.
    """
    variables = make_variables(dtype)
    if exclude_by == "name":
        optimizer.exclude_from_weight_decay(var_names=["^bias$"])
    else:
        optimizer.exclude_from_weight_decay(var_list=[variables[1]])
    for step in range(STEPS):
        optimizer.apply(gradients(step, dtype), variables)
    return [
        keras.ops.convert_to_numpy(keras.ops.cast(v, "float32"))
        for v in variables
    ]


@pytest.mark.parametrize(
    "dtype, overrides",
    [("float32", {}), ("float32", {"amsgrad": True}), ("float16", {})],
    ids=["float32", "amsgrad", "float16"],
)
def test_trains_as_keras_adamw(dtype, overrides):
    fused = trained(configured(FusedAdamW, **overrides), dtype)
    expected = trained(
        configured(keras.optimizers.AdamW, **overrides), dtype, "identity"
    )
    initial = [
        keras.ops.convert_to_numpy(keras.ops.cast(v, "float32"))
        for v in make_variables(dtype)
    ]
    for name, value, reference, start in zip(
        SHAPES, fused, expected, initial
    ):
        # Both moved (the first step's learning rate is 0: 2 real steps).
        assert np.abs(reference - start).max() > 1e-3, name
        # float16: up to an ulp apart where the backend's AdamW is fused
        # (PyTorch) and a subclass of it takes Keras' generic path.
        atol = 1e-7 if dtype == "float32" else 1e-3
        np.testing.assert_allclose(
            value, reference, rtol=1e-6, atol=atol, err_msg=name
        )


@pytest.mark.skipif(
    backend() != "tensorflow", reason="the fused kernel is TensorFlow's"
)
def test_tensorflow_update_is_one_fused_op_per_variable():
    import tensorflow as tf

    optimizer = configured(FusedAdamW)
    variables = make_variables()
    optimizer.exclude_from_weight_decay(var_names=["^bias$"])
    optimizer.build(variables)
    grads = gradients(0)
    graph = (
        tf.function(lambda: optimizer.apply(grads, variables))
        .get_concrete_function()
        .graph
    )
    op_types = [op.type for op in graph.get_operations()]
    assert op_types.count("ResourceApplyAdam") == len(variables)
    # The step's `beta ** step` once per step, not once per variable.
    assert op_types.count("Pow") == 2
    # Under XLA (`jit_compile=True`), too.
    reference = configured(keras.optimizers.AdamW)
    expected = make_variables()
    actual = make_variables()
    optimizer = configured(FusedAdamW)
    reference.exclude_from_weight_decay(var_list=[expected[1]])
    optimizer.exclude_from_weight_decay(var_list=[actual[1]])
    optimizer.build(actual)
    compiled = tf.function(
        lambda grads: optimizer.apply(grads, actual), jit_compile=True
    )
    for step in range(STEPS):
        reference.apply(gradients(step), expected)
        compiled(gradients(step))
    for name, value, ref in zip(SHAPES, actual, expected):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(value),
            keras.ops.convert_to_numpy(ref),
            rtol=1e-6,
            atol=1e-7,
            err_msg=name,
        )


def test_electra_adamw_skips_norms_and_biases_on_every_backend():
    optimizer = electra_adamw(0.1, weight_decay=0.5)
    names = ("kernel", "bias", "gamma", "beta", "embeddings")
    variables = [keras.Variable(np.ones(3), name=name) for name in names]
    # Zero gradients: the Adam part is 0, only the weight decay moves.
    optimizer.apply([keras.ops.zeros(3)] * len(names), variables)
    decayed = {
        name: float(keras.ops.convert_to_numpy(v)[0])
        for name, v in zip(names, variables)
    }
    assert decayed == pytest.approx(
        {"kernel": 0.95, "bias": 1, "gamma": 1, "beta": 1, "embeddings": 0.95}
    )


def test_electra_adamw_is_fused_on_tensorflow_only():
    optimizer = electra_adamw(1e-3)
    if backend() == "tensorflow":
        assert type(optimizer) is FusedAdamW
    else:
        # JAX and PyTorch keep Keras' own (on PyTorch: multi-tensor) AdamW.
        assert type(optimizer) is type(keras.optimizers.AdamW())
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.999)
    assert optimizer.epsilon == 1e-6


def test_config_saved_on_tensorflow_loads_on_every_backend():
    # What a model compiled on TensorFlow saves for its optimizer.
    optimizer = configured(FusedAdamW)
    saved = json.loads(json.dumps(keras.optimizers.serialize(optimizer)))
    assert saved["registered_name"] == "keras_electra>FusedAdamW"
    restored = keras.optimizers.deserialize(saved)
    if backend() == "tensorflow":
        assert type(restored) is FusedAdamW
    else:
        assert type(restored) is type(keras.optimizers.AdamW())
    config = optimizer.get_config()
    assert restored.get_config() == config
    assert isinstance(restored._learning_rate, keras_electra.WarmupLinearDecay)
    keras_adamw = keras.optimizers.AdamW.from_config(config)
    expected = trained(keras_adamw, exclude_by="identity")
    for name, value, reference in zip(SHAPES, trained(restored), expected):
        np.testing.assert_allclose(
            value, reference, rtol=1e-6, atol=1e-7, err_msg=name
        )


def test_layerwise_decay_config_saved_on_tensorflow_loads_on_every_backend():
    model = keras_electra.ElectraDiscriminator(tiny_backbone())
    optimizer = keras_electra.layerwise_decay(FusedAdamW(1e-3), model, 0.8)
    saved = json.loads(json.dumps(keras.optimizers.serialize(optimizer)))
    restored = keras.optimizers.deserialize(saved)
    expected_base = (
        FusedAdamW if backend() == "tensorflow"
        else type(keras.optimizers.AdamW())
    )
    assert type(restored).__bases__ == (LayerwiseDecayMixin, expected_base)
    assert restored.lr_multipliers == optimizer.lr_multipliers
