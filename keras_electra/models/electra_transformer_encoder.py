"""ELECTRA's Transformer layer: keras-hub's, on the backend's fused attention.

keras-hub's `TransformerEncoder` attends through Keras' `MultiHeadAttention`,
which computes the scores with explicit einsums and a softmax whenever its
dropout rate is above zero, even in `predict`, where dropout is off. ELECTRA
has attention dropout 0.1, so every ELECTRA model paid for that. The layer
here is keras-hub's with one change: its attention calls
`keras.ops.dot_product_attention` (torch SDPA, XLA's or cuDNN's kernel)
whenever dropout is inactive, and on PyTorch in training too, where SDPA
applies the dropout itself. Its variables, their names and their order are
keras-hub's, so presets, keras-hub checkpoints and `transformers`
conversion are unchanged.
"""

import keras
import keras_hub
from keras import ops

from keras_electra.utils.keras_compat import clone_initializer


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraSelfAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` on the fused kernel when it can be.

    The fused kernel computes the same softmax attention as Keras' explicit
    path (to float rounding) without materialising the scores where the
    backend has a kernel for it. It runs when no dropout is applied
    (inference, or a rate of 0), and in training on PyTorch, whose kernel
    drops attention weights itself. Elsewhere (training with dropout on
    TensorFlow and JAX, or when the scores are asked for), Keras' own path.

    Example:
    ```python
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import (
        ElectraSelfAttention,
    )

    attention = ElectraSelfAttention(num_heads=2, key_dim=4, dropout=0.1)
    x = np.random.default_rng(0).normal(size=(1, 3, 8)).astype("float32")
    attention(x, x).shape  # (1, 3, 8): fused, dropout is off outside fit.
    ```
    """

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        dropout = self._dropout if training else 0.0
        if return_attention_scores or use_causal_mask or (
            dropout > 0 and keras.config.backend() != "torch"
        ):
            return super()._compute_attention(
                query,
                key,
                value,
                attention_mask,
                training,
                return_attention_scores,
                use_causal_mask,
            )
        if attention_mask is not None:
            # (batch, queries, keys) -> (batch, heads, queries, keys).
            attention_mask = ops.cast(
                ops.expand_dims(attention_mask, axis=1), "bool"
            )
        if dropout > 0:
            return _torch_attention_with_dropout(
                query, key, value, attention_mask, dropout,
                self._inverse_sqrt_key_dim,
            ), None
        outputs = ops.dot_product_attention(
            query,
            key,
            value,
            mask=attention_mask,
            scale=self._inverse_sqrt_key_dim,
        )
        return outputs, None


def _torch_attention_with_dropout(query, key, value, mask, rate, scale):
    """PyTorch's SDPA with its own attention dropout (inputs `(B, T, N, H)`).

    `keras.ops.dot_product_attention` has no dropout argument; SDPA does,
    and applies it inside the kernel.
    """
    import torch

    if mask is not None:
        # SDPA's boolean masks say where to attend, as Keras' do; an
        # additive one (what Keras' own torch backend passes) keeps rows
        # with every key masked finite, as Keras' softmax does.
        mask = torch.where(mask, 0.0, torch.finfo(query.dtype).min / 2)
        mask = mask.to(query.dtype)
    outputs = torch.nn.functional.scaled_dot_product_attention(
        query.transpose(1, 2),
        key.transpose(1, 2),
        value.transpose(1, 2),
        attn_mask=mask,
        dropout_p=rate,
        scale=scale,
    )
    return outputs.transpose(1, 2)


@keras.saving.register_keras_serializable(package="keras_electra")
class TransformerEncoder(keras_hub.layers.TransformerEncoder):
    """keras-hub's `TransformerEncoder` with `ElectraSelfAttention`.

    Post-norm (as BERT and ELECTRA), with keras-hub's arguments and
    sub-layers, built in keras-hub's order under keras-hub's names: a
    checkpoint of one loads into the other. The class keeps keras-hub's
    name too: Keras files the weights of the layers in a list (the
    backbone's `transformer_layers`) under their class names.

    Example:
    ```python
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import (
        TransformerEncoder,
    )

    layer = TransformerEncoder(num_heads=2, intermediate_dim=16)
    x = np.zeros((1, 3, 8), "float32")
    layer(x, padding_mask=np.array([[1, 1, 0]])).shape  # (1, 3, 8)
    ```
    """

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        key_dim = int(hidden_dim // self.num_heads)
        if key_dim == 0:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be at least `num_heads` "
                f"({self.num_heads})."
            )
        intermediate_shape = (*inputs_shape[:-1], self.intermediate_dim)

        def dense(units, name, activation=None):
            return keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=name,
            )

        def layer_norm(name):
            return keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon,
                dtype=self.dtype_policy,
                name=name,
            )

        # === Layers === (keras-hub's attributes, names and order)
        self._self_attention_layer = ElectraSelfAttention(
            num_heads=self.num_heads,
            key_dim=key_dim,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="self_attention_layer",
        )
        self._self_attention_layer.build(
            query_shape=inputs_shape, value_shape=inputs_shape
        )
        self._self_attention_layer_norm = layer_norm(
            "self_attention_layer_norm"
        )
        self._self_attention_layer_norm.build(inputs_shape)
        self._self_attention_dropout = keras.layers.Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="self_attention_dropout",
        )
        self._feedforward_layer_norm = layer_norm("feedforward_layer_norm")
        self._feedforward_layer_norm.build(inputs_shape)
        self._feedforward_intermediate_dense = dense(
            self.intermediate_dim,
            "feedforward_intermediate_dense",
            activation=self.activation,
        )
        self._feedforward_intermediate_dense.build(inputs_shape)
        self._feedforward_output_dense = dense(
            hidden_dim, "feedforward_output_dense"
        )
        self._feedforward_output_dense.build(intermediate_shape)
        self._feedforward_dropout = keras.layers.Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="feedforward_dropout",
        )
        self.built = True
