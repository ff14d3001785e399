"""ELECTRA's Transformer layer: keras-hub's, on the fused attention kernel.

Its equality with keras-hub's whole backbone (same weights, same outputs) is
in test_models.py::test_hidden_states_equal_keras_hub_backbone.
"""

import keras
import keras_hub
import numpy as np
import pytest

from keras_electra.models import electra_transformer_encoder
from keras_electra.models.electra_transformer_encoder import ElectraSelfAttention
from keras_electra.models.electra_transformer_encoder import TransformerEncoder


def hidden_states(batch=2, length=6, width=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, width)).astype("float32")


def padding_mask():
    return np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32")


def count_fused_calls(monkeypatch):
    calls = []
    fused = keras.ops.dot_product_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    monkeypatch.setattr(electra_transformer_encoder.ops, "dot_product_attention",
                        counted)
    return calls


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
    calls = count_fused_calls(monkeypatch)
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
    reason="Only PyTorch's fused kernel applies dropout itself; elsewhere "
    "training takes Keras' path.",
)
def test_training_on_torch_drops_inside_the_fused_kernel(monkeypatch):
    import torch

    calls = []
    kernel = torch.nn.functional.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(kwargs["dropout_p"])
        return kernel(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        counted)
    attention = ElectraSelfAttention(num_heads=2, key_dim=4, dropout=0.1)
    x = hidden_states()
    attention(x, x, training=True)
    assert calls == [0.1]


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
