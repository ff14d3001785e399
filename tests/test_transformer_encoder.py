"""ELECTRA's Transformer layer: keras-hub's, on the fused attention kernel.

Its equality with keras-hub's whole backbone (same weights, same outputs) is
in test_models.py::test_hidden_states_equal_keras_hub_backbone.
"""

import contextlib

import keras
import keras_hub
import numpy as np
import pytest

from conftest import count_calls
from keras_electra.models import electra_transformer_encoder
from keras_electra.models.electra_transformer_encoder import ElectraDense
from keras_electra.models.electra_transformer_encoder import ElectraDropout
from keras_electra.models.electra_transformer_encoder import ElectraSelfAttention
from keras_electra.models.electra_transformer_encoder import TransformerEncoder
from keras_electra.models.electra_transformer_encoder import activate
from keras_electra.utils.keras_compat import gelu_approximate


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x)).astype("float32")


def hidden_states(batch=2, length=6, width=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, width)).astype("float32")


def padding_mask():
    return np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32")


def test_layer_matches_keras_hub_under_its_names():
    ours = TransformerEncoder(num_heads=2, intermediate_dim=16, dropout=0.1)
    theirs = keras_hub.layers.TransformerEncoder(
        num_heads=2, intermediate_dim=16, dropout=0.1
    )
    x, mask = hidden_states(), padding_mask()
    ours(x, padding_mask=mask)
    theirs(x, padding_mask=mask)
    assert [w.path.split("/", 1)[1] for w in ours.weights] == [
        w.path.split("/", 1)[1] for w in theirs.weights
    ]
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x, padding_mask=mask)),
        keras.ops.convert_to_numpy(theirs(x, padding_mask=mask)),
        atol=1e-6,
    )


def test_inference_runs_the_fused_kernel(monkeypatch):
    calls = count_calls(
        monkeypatch, electra_transformer_encoder, "fused_attention"
    )
    attention = ElectraSelfAttention(num_heads=2, key_dim=4, dropout=0.1)
    x = hidden_states()
    attention(x, x, training=False)
    assert len(calls) == 1
    # Asked for the scores, it takes Keras' explicit path: it has them.
    _, scores = attention(x, x, return_attention_scores=True)
    assert len(calls) == 1
    assert tuple(scores.shape) == (2, 2, 6, 6)


def test_training_drops_attention_without_bias():
    attention = ElectraSelfAttention(num_heads=2, key_dim=4, dropout=0.5)
    # One sequence 2,000 times: each copy draws its own dropout.
    draws = 2000
    x = np.repeat(hidden_states(batch=1), draws, axis=0)
    mask = np.repeat(padding_mask()[:1, None, :], 6, axis=1)
    mask = np.repeat(mask, draws, axis=0)
    expected = keras.ops.convert_to_numpy(
        attention(x[:1], x[:1], attention_mask=mask[:1], training=False)
    )[0]
    samples = keras.ops.convert_to_numpy(
        attention(x, x, attention_mask=mask, training=True)
    )
    # Dropout is applied: the copies differ from the inference output ...
    assert np.abs(samples[0] - expected).max() > 1e-3
    # ... and it is inverted dropout: the same output on average (within
    # 5 standard errors; dropping without rescaling would miss by half).
    standard_error = samples.std(axis=0) / np.sqrt(draws)
    assert (np.abs(samples.mean(axis=0) - expected) < 5 * standard_error).all()


@pytest.mark.skipif(
    keras.config.backend() != "torch",
    reason="PyTorch's own CPU path: the attention written out with "
    "torch_cpu_dropout (the test above covers every backend's dropout).",
)
def test_training_on_torch_cpu_drops_weights_with_torch_cpu_dropout(
    monkeypatch,
):
    calls = []
    dropout = electra_transformer_encoder.torch_cpu_dropout

    def counted(inputs, rate):
        calls.append((tuple(inputs.shape), rate))
        return dropout(inputs, rate)

    monkeypatch.setattr(electra_transformer_encoder, "torch_cpu_dropout",
                        counted)
    attention = ElectraSelfAttention(num_heads=2, key_dim=4, dropout=0.1)
    x = hidden_states()
    attention(x, x, training=True)
    # (batch, heads, queries, keys): the attention weights.
    assert calls == [((2, 2, 6, 6), 0.1)]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_one_product_projections_equal_multi_head_attention(
    policy, monkeypatch
):
    products = count_calls(
        monkeypatch, electra_transformer_encoder, "dense_with_bias"
    )
    mask = np.repeat(padding_mask()[:, None, :], 6, axis=1)
    ours = ElectraSelfAttention(num_heads=2, key_dim=4, dtype=policy)
    # One tensor as query and value, in the compute dtype (as in the
    # encoder: numpy arrays would be converted, and cast, apart).
    x = keras.ops.cast(hidden_states(), ours.compute_dtype)
    theirs = keras.layers.MultiHeadAttention(
        num_heads=2, key_dim=4, dtype=policy
    )
    ours(x, x)
    theirs(x, x)
    theirs.set_weights(ours.get_weights())
    products.clear()
    outputs = ours(x, x, attention_mask=mask)
    # On PyTorch, query, key and value in one product, the output in
    # another; elsewhere Keras' projections (faster there in training).
    assert len(products) == (2 if keras.config.backend() == "torch" else 0)
    expected = theirs(x, x, attention_mask=mask)
    assert keras.backend.standardize_dtype(outputs.dtype) == (
        keras.backend.standardize_dtype(expected.dtype)
    )
    tolerance = 1e-5 if policy == "float32" else 3e-2
    np.testing.assert_allclose(
        numpy(outputs), numpy(expected), atol=tolerance, rtol=tolerance
    )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dense_with_the_bias_in_the_product_equals_keras_dense(policy):
    x = hidden_states()
    ours = ElectraDense(5, activation="gelu", dtype=policy)
    theirs = keras.layers.Dense(5, activation="gelu", dtype=policy)
    ours(x)
    theirs(x)
    theirs.set_weights(
        [w + 0.1 for w in ours.get_weights()]  # a bias that is not zero
    )
    ours.set_weights(theirs.get_weights())
    tolerance = 1e-6 if policy == "float32" else 2e-2
    np.testing.assert_allclose(
        numpy(ours(x)), numpy(theirs(x)), atol=tolerance, rtol=tolerance
    )


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_drops_at_its_rate_without_bias(rate):
    layer = ElectraDropout(rate)
    x = np.ones((100, 2000), "float32")
    np.testing.assert_array_equal(numpy(layer(x)), x)  # inference
    dropped = numpy(layer(x, training=True))
    count = x.size
    # Within 5 standard errors (PyTorch's CPU path rounds the rate to a
    # multiple of 2**-16, far inside them).
    error = 5 * np.sqrt(rate * (1 - rate) / count)
    assert abs((dropped == 0).mean() - rate) < error
    assert abs(dropped.mean() - 1.0) < error / (1 - rate)
    kept = dropped[dropped != 0]
    np.testing.assert_allclose(kept, kept[0])
    assert kept[0] == pytest.approx(1 / (1 - rate), rel=1e-4)


@pytest.mark.skipif(
    keras.config.backend() != "jax",
    reason="jax_dropout is JAX's path; every backend's dropout is tested "
    "above.",
)
def test_jax_dropout_uses_both_words_of_its_draws_and_each_key_anew():
    import jax

    def dropped(key):
        x = np.ones((300, 1000), "float32")
        return np.asarray(
            electra_transformer_encoder.jax_dropout(x, 0.1, key)
        ) == 0

    rate = 6554 / 65536  # 0.1 rounded to a multiple of 2**-16
    first = dropped(jax.random.PRNGKey(0))
    count = first.size
    assert abs(first.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / count)
    # The two words of one draw decide elements half a row apart.
    both = (first[:, :500] & first[:, 500:]).mean()
    assert abs(both - rate**2) < 5 * np.sqrt(rate**2 / (count / 2))
    # A seed generator's next key (its counter word + 1) drops anew.
    second = dropped(np.array([0, 1], "uint32"))
    assert abs((first & second).mean() - rate**2) < 5 * np.sqrt(
        rate**2 / count
    )
    # A typed key is the raw key it holds.
    np.testing.assert_array_equal(dropped(jax.random.key(0)), first)


@pytest.mark.skipif(
    keras.config.backend() != "torch",
    reason="torch_cpu_dropout is PyTorch's CPU path; every backend's "
    "dropout is tested above.",
)
def test_torch_cpu_dropout_uses_every_word_of_its_draws_independently():
    import torch

    torch.manual_seed(0)
    # A count that is no multiple of the four words per 64-bit draw.
    dropped = torch_dropout(torch.ones(3, 100_001), 0.1)
    assert tuple(dropped.shape) == (3, 100_001)
    is_dropped = (dropped == 0).numpy().reshape(-1)
    rate = 6554 / 65536  # 0.1 rounded to a multiple of 2**-16
    count = is_dropped.size
    assert abs(is_dropped.mean() - rate) < 5 * np.sqrt(
        rate * (1 - rate) / count
    )
    # Neighbours (words of one draw) drop together as often as chance says.
    both = (is_dropped[:-1] & is_dropped[1:]).mean()
    assert abs(both - rate**2) < 5 * np.sqrt(rate**2 / count)
    # Each word position within a draw drops at the rate.
    for word in range(4):
        share = is_dropped[word::4].mean()
        assert abs(share - rate) < 5 * np.sqrt(rate * (1 - rate) * 4 / count)
    assert float(dropped.max()) == pytest.approx(65536 / (65536 - 6554))


@pytest.mark.skipif(
    keras.config.backend() != "torch",
    reason="torch_cpu_dropout is PyTorch's CPU path; every backend's "
    "dropout is tested above.",
)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_torch_cpu_dropout_keeps_dtype_mean_and_gradient(dtype):
    import torch

    torch.manual_seed(0)
    inputs = (torch.rand(200, 1000) + 1).to(getattr(torch, dtype))
    inputs.requires_grad_()
    dropped = torch_dropout(inputs, 0.1)
    assert dropped.dtype == inputs.dtype
    dropped.float().sum().backward()
    kept = (dropped != 0).float()
    scale = 65536 / (65536 - 6554)
    # The gradient is the mask times the inverse keep probability.
    np.testing.assert_allclose(
        inputs.grad.float().numpy(), (kept * scale).numpy(), rtol=1e-2
    )
    # Unbiased: the mean of the output is the mean of the input (5
    # standard errors; bfloat16 rounds each product, not the scale).
    mean_out, mean_in = (x.detach().float().mean() for x in (dropped, inputs))
    ratio = float(mean_out / mean_in)
    assert abs(ratio - 1) < 5 * np.sqrt(0.1 / 0.9 / inputs.numel()) + 1e-4


def torch_dropout(inputs, rate):
    return electra_transformer_encoder.torch_cpu_dropout(inputs, rate)


def autograd_off():
    """PyTorch's `no_grad` (as in Keras' `predict`); elsewhere nothing."""
    if keras.config.backend() != "torch":
        return contextlib.nullcontext()
    import torch

    return torch.no_grad()


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_inference_without_autograd_is_bitwise_keras_hubs_forward(
    policy, monkeypatch
):
    layer = TransformerEncoder(
        num_heads=2, intermediate_dim=16, dropout=0.1, dtype=policy
    )
    x, mask = hidden_states(), padding_mask()
    # A custom mask as well: it is merged with the padding mask.
    custom = np.tril(np.ones((2, 6, 6), "int32"))
    layer(x, padding_mask=mask)
    expected = layer(x, padding_mask=mask, attention_mask=custom)
    forwards = count_calls(
        monkeypatch, keras_hub.layers.TransformerEncoder, "call"
    )
    with autograd_off():
        outputs = layer(x, padding_mask=mask, attention_mask=custom)
    # On PyTorch without autograd the layer runs its own forward (sums in
    # place, sub-layers called directly); elsewhere keras-hub's.
    assert len(forwards) == (0 if keras.config.backend() == "torch" else 1)
    assert keras.backend.standardize_dtype(outputs.dtype) == (
        keras.backend.standardize_dtype(expected.dtype)
    )
    np.testing.assert_array_equal(numpy(outputs), numpy(expected))


def test_training_and_attention_scores_take_keras_hubs_forward(monkeypatch):
    layer = TransformerEncoder(num_heads=2, intermediate_dim=16)
    x = hidden_states()
    layer(x)
    forwards = count_calls(
        monkeypatch, keras_hub.layers.TransformerEncoder, "call"
    )
    with autograd_off():
        layer(x, training=True)
        outputs, scores = layer(x, return_attention_scores=True)
    assert len(forwards) == 2
    assert tuple(scores.shape) == (2, 2, 6, 6)


@pytest.mark.parametrize(
    "activation", [keras.activations.gelu, gelu_approximate, "relu"]
)
def test_activate_equals_the_activation(activation):
    activation = keras.activations.get(activation)
    x = keras.ops.convert_to_tensor(hidden_states())
    expected = numpy(activation(x))
    with autograd_off():
        outputs = activate(activation, keras.ops.convert_to_tensor(x))
    np.testing.assert_array_equal(numpy(outputs), expected)


@pytest.mark.skipif(
    keras.config.backend() != "torch",
    reason="Writing in place is PyTorch's alone: TensorFlow's and JAX's "
    "tensors are immutable (the test above covers their values).",
)
def test_activate_writes_gelu_in_place_only_without_autograd():
    import torch

    x = torch.tensor([-1.0, 0.0, 2.0])
    # Of the same shape: a lone element takes another kernel path, 1 ulp
    # away on an AVX2-only CPU.
    expected = torch.nn.functional.gelu(x.clone())
    with torch.no_grad():
        outputs = activate(keras.activations.gelu, x)
    assert outputs is x
    assert torch.equal(x, expected)
    y = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    outputs = activate(keras.activations.gelu, y)
    assert outputs is not y
    outputs.sum().backward()
    assert y.grad is not None and y[2] == 2.0


def test_a_fully_padded_sequence_stays_finite():
    layer = TransformerEncoder(num_heads=2, intermediate_dim=16)
    x = hidden_states()
    outputs = layer(x, padding_mask=np.zeros((2, 6), "int32"))
    assert np.isfinite(keras.ops.convert_to_numpy(outputs)).all()


def test_the_layer_is_registered_for_keras_files():
    layer = TransformerEncoder(num_heads=2, intermediate_dim=16)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(restored) is TransformerEncoder
    assert restored.get_config() == layer.get_config()
