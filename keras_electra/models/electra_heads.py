"""ELECTRA's heads: the generator's masked-LM head and the discriminator's
replaced-token-detection head."""

import keras
import keras_hub
from keras import ops

from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models.electra_backbone import gelu_activation
from keras_electra.models.electra_transformer_encoder import dense_with_bias


@keras.saving.register_keras_serializable(package="keras_electra")
class MaskedLMHead(keras_hub.layers.MaskedLMHead):
    """keras-hub's `MaskedLMHead`, the vocabulary bias added in the product.

    The generator's head: dense to the embedding width, activation,
    LayerNorm, then the transposed token embedding plus a bias, at the
    masked positions only. keras-hub adds the bias to the vocabulary logits
    (at `electra_small`, 32 x 19 x 30,522 of them) in a pass of its own;
    here, on PyTorch with a tied float32 table, the bias goes inside the
    matrix product (`addmm`), a pass less forward and backward. Everything
    else, and every other backend, dtype or table, is keras-hub's `call`.
    Same arguments and variables as `keras_hub.layers.MaskedLMHead`, and
    its class name too: Keras files the weights of the layers in a list
    (the generator's `layers`) under their class names.

    Example:
    ```python
    import keras
    import numpy as np

    from keras_electra.models.electra_heads import MaskedLMHead

    embedding = keras.layers.ReversibleEmbedding(50, 8)
    head = MaskedLMHead(token_embedding=embedding)
    hidden = embedding(np.zeros((2, 6), "int32"))
    head(hidden, mask_positions=np.array([[1, 4], [0, 2]])).shape  # (2, 2, 50)
    ```
    """

    def call(self, inputs, mask_positions):
        if not self._adds_bias_in_product(inputs):
            return super().call(inputs, mask_positions)
        outputs = ops.take_along_axis(
            inputs, ops.expand_dims(mask_positions, axis=-1), axis=1
        )
        outputs = self._intermediate_dense(outputs)
        outputs = self._intermediate_layer_norm(outputs)
        table = self.token_embedding.embeddings
        outputs = dense_with_bias(outputs, ops.transpose(table), self._bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _adds_bias_in_product(self, inputs):
        embedding = self.token_embedding
        return (
            keras.config.backend() == "torch"
            and isinstance(embedding, keras.layers.ReversibleEmbedding)
            and embedding.tie_weights
            and embedding.reverse_dtype is None
            and embedding.logit_soft_cap is None
            and embedding.quantization_mode is None
            # keras-hub casts the product to the compute dtype before it
            # adds the float32 bias; the fused product matches it only
            # where no cast happens.
            and self.compute_dtype == "float32"
            and keras.backend.standardize_dtype(inputs.dtype) == "float32"
            and keras.backend.standardize_dtype(embedding.embeddings.dtype)
            == "float32"
        )


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraReplacedTokenHead(keras.layers.Layer):
    """Dense(hidden, GELU) -> Dense(1): one "was this token replaced" logit.

    Args:
        hidden_dim: int. Width of the hidden dense layer.
        approximate_gelu: bool. Tanh-approximate GELU (original) or exact.

    Example:
    ```python
    import numpy as np
    import keras_electra

    head = keras_electra.ElectraReplacedTokenHead(hidden_dim=32)
    head(np.zeros((2, 8, 32))).shape  # (2, 8)
    ```
    """

    def __init__(self, hidden_dim, approximate_gelu=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.approximate_gelu = approximate_gelu
        self.dense = keras.layers.Dense(
            hidden_dim,
            activation=gelu_activation(approximate_gelu),
            kernel_initializer=electra_kernel_initializer(),
            dtype=self.dtype_policy,
            name="dense",
        )
        self.prediction = keras.layers.Dense(
            1,
            kernel_initializer=electra_kernel_initializer(),
            dtype=self.dtype_policy,
            name="prediction",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.prediction.build(tuple(input_shape[:-1]) + (self.hidden_dim,))

    def call(self, sequence_output):
        logits = self.prediction(self.dense(sequence_output))
        return keras.ops.squeeze(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "approximate_gelu": self.approximate_gelu,
            }
        )
        return config
