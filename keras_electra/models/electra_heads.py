"""The discriminator's replaced-token-detection head.

(The generator's head is keras-hub's `MaskedLMHead`, used as is.)
"""

import keras

from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models.electra_backbone import gelu_activation


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
