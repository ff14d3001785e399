"""ELECTRA's Transformer layer: keras-hub's, on the backend's fused attention.

keras-hub's `TransformerEncoder` attends through Keras' `MultiHeadAttention`,
which computes the scores with explicit einsums and a softmax whenever its
dropout rate is above zero, even in `predict`, where dropout is off. ELECTRA
has attention dropout 0.1, so every ELECTRA model paid for that. The layer
here is keras-hub's with another attention, which calls the fused kernel
(`keras.ops.dot_product_attention`: XLA's or cuDNN's; on PyTorch, SDPA
directly, without the copies Keras makes of its inputs) whenever dropout
is inactive, and on a PyTorch GPU in training too, where SDPA applies the
dropout itself. On PyTorch it also projects queries, keys and
values with one matrix product (the three kernels side by side), adds every
bias inside the matrix product (`addmm`), where Keras' `EinsumDense` and
`Dense` run an einsum per projection and a separate addition, and draws its
dropout on the CPU from 16 random bits per element, where torch draws a
Bernoulli variable. In inference with autograd off (Keras' `predict`), it
runs its sub-layers without Keras' per-call machinery and writes the
residual sums and GELU in place: the same result, bitwise. Its variables,
their names and their order are keras-hub's, so presets, keras-hub
checkpoints and `transformers` conversion are unchanged.
"""

import keras
import keras_hub
import ml_dtypes
from keras import ops

from keras_electra.utils.keras_compat import clone_initializer
from keras_electra.utils.keras_compat import gelu_approximate
from keras_electra.utils.keras_compat import get_keras_mask
from keras_electra.utils.keras_compat import merge_padding_and_attention_mask

# The projections `MultiHeadAttention` builds for a `(batch, length,
# hidden)` query with the default attention axes.
_INPUT_PROJECTION = "abc,cde->abde"
_OUTPUT_PROJECTION = "abcd,cde->abe"


def dense_with_bias(inputs, kernel, bias):
    """`inputs @ kernel + bias` over the last axis, in one kernel where the
    backend has one (PyTorch: `addmm`); XLA and TensorFlow's grappler fuse
    the addition themselves."""
    if keras.config.backend() == "torch":
        import torch

        inputs, kernel, bias = (
            ops.convert_to_tensor(x) for x in (inputs, kernel, bias)
        )
        return torch.nn.functional.linear(inputs, kernel.T, bias)
    return ops.add(ops.matmul(inputs, kernel), bias)


def torch_autograd_off():
    """Whether this is PyTorch with autograd off (as in Keras' `predict`),
    where tensors may be overwritten in place."""
    if keras.config.backend() != "torch":
        return False
    import torch

    return not torch.is_grad_enabled()


def activate(activation, inputs):
    """`activation(inputs)`; with PyTorch's autograd off, GELU overwrites
    `inputs`: no new tensor of the feed-forward size in every layer, which
    the C allocator may serve with fresh pages (page faults) and which
    pushes the layer's data out of the cache.

    Example:
    ```python
    import keras
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import activate

    activate(keras.activations.gelu, np.zeros((2, 3), "float32")).shape
    ```
    """
    # A tuple, not a dict: an activation need not be hashable.
    gelus = (keras.activations.gelu, gelu_approximate)
    if activation in gelus and torch_autograd_off():
        import torch

        exact = activation is keras.activations.gelu
        return torch.ops.aten.gelu_(
            ops.convert_to_tensor(inputs),
            approximate="none" if exact else "tanh",
        )
    return activation(inputs)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraDense(keras.layers.Dense):
    """`keras.layers.Dense` whose bias is added inside the matrix product.

    Same variables and arguments as `Dense`; quantized or LoRA layers, and
    layers without a bias, take `Dense`'s own path.

    Example:
    ```python
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import ElectraDense

    layer = ElectraDense(4, activation="relu")
    layer(np.ones((2, 3, 8), "float32")).shape  # (2, 3, 4)
    ```
    """

    def call(self, inputs, training=None):
        if (
            not self.use_bias
            or self.quantization_mode is not None
            or self.lora_enabled
        ):
            return super().call(inputs, training=training)
        outputs = dense_with_bias(inputs, self.kernel, self.bias)
        if self.activation is not None:
            outputs = activate(self.activation, outputs)
        return outputs


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraSelfAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` on the fused kernel when it can be.

    The fused kernel computes the same softmax attention as Keras' explicit
    path (to float rounding) without materialising the scores where the
    backend has a kernel for it. It runs when no dropout is applied
    (inference, or a rate of 0), and in training on PyTorch, whose kernel
    drops attention weights itself. Elsewhere (training with dropout on
    TensorFlow and JAX, or when the scores are asked for), Keras' own path.

    On PyTorch, self-attention (the same tensor as query, key and value, no
    Keras masks, no scores asked for) projects with one matrix product over
    the three kernels side by side and one for the output, biases included
    (`dense_with_bias`: `addmm`); anything else takes `MultiHeadAttention`'s
    path.

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

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        if not self._projects_at_once(
            query, value, key, (query_mask, value_mask, key_mask),
            return_attention_scores or use_causal_mask,
        ):
            return super().call(
                query,
                value,
                key=key,
                query_mask=query_mask,
                value_mask=value_mask,
                key_mask=key_mask,
                attention_mask=attention_mask,
                return_attention_scores=return_attention_scores,
                training=training,
                use_causal_mask=use_causal_mask,
            )
        attention_mask = self._compute_attention_mask(
            query, value, attention_mask=attention_mask
        )
        query, key, value = self._project_query_key_value(query)
        outputs, _ = self._compute_attention(
            query, key, value, attention_mask, training
        )
        return self._project_output(outputs)

    def _projects_at_once(self, query, value, key, masks, special):
        """Whether `call` may take the one-product projections."""
        projections = (self._query_dense, self._key_dense, self._value_dense)
        # On TensorFlow and JAX the one product measured slower in training
        # (the strided query, key and value slices feed Keras' einsums).
        return (
            keras.config.backend() == "torch"
            and query is value
            and (key is None or key is value)
            and not special
            and all(mask is None for mask in masks)
            and get_keras_mask(query) is None
            and not self._use_gate
            and self._use_bias
            and self._key_dim == self._value_dim
            and all(
                layer.equation == _INPUT_PROJECTION
                and layer.quantization_mode is None
                for layer in projections
            )
            and self._output_dense.equation == _OUTPUT_PROJECTION
            and self._output_dense.quantization_mode is None
        )

    def _project_query_key_value(self, inputs):
        """`(batch, length, hidden)` -> query, key and value `(batch,
        length, heads, key_dim)`, from one matrix product (PyTorch only, in
        torch's own operations: a Keras op costs tens of microseconds on
        PyTorch, which `predict` on short inputs felt)."""
        import torch

        projections = (self._query_dense, self._key_dense, self._value_dense)
        hidden = inputs.shape[-1]
        kernel = torch.cat(
            [ops.convert_to_tensor(p.kernel).reshape(hidden, -1)
             for p in projections],
            dim=1,
        )
        bias = torch.cat(
            [ops.convert_to_tensor(p.bias).reshape(-1) for p in projections]
        )
        outputs = dense_with_bias(inputs, kernel, bias).unflatten(
            -1, (3, self._num_heads, self._key_dim)
        )
        # Unbound, not sliced: the gradients of slices are summed into
        # zeros of the whole product's size.
        return outputs.unbind(2)

    def _project_output(self, attended):
        """`(batch, length, heads, value_dim)` -> `(batch, length, hidden)`
        (PyTorch only, as `_project_query_key_value`)."""
        kernel = ops.convert_to_tensor(self._output_dense.kernel)
        return dense_with_bias(
            attended.flatten(-2),
            kernel.reshape(-1, kernel.shape[-1]),
            self._output_dense.bias,
        )

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
            dropout > 0 and keras.config.backend() == "tensorflow"
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
            return _attention_with_dropout(
                query, key, value, attention_mask, dropout,
                self._inverse_sqrt_key_dim, self._dropout_layer,
            ), None
        outputs = fused_attention(
            query, key, value, attention_mask, self._inverse_sqrt_key_dim
        )
        return outputs, None


def fused_attention(query, key, value, mask, scale):
    """Softmax attention on the backend's fused kernel (inputs `(B, T, N,
    H)`, a boolean `mask` `(B, 1, T, S)` or None): `keras.ops.
    dot_product_attention`, except on PyTorch, where SDPA gets the
    transposed inputs as they are. Keras copies them into contiguous
    tensors first, which made the kernel 10.6 ms instead of 5.7 at
    `electra_small` sizes (32 x 128 tokens, 4 heads, CPU).

    Example:
    ```python
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import (
        fused_attention,
    )

    x = np.random.default_rng(0).normal(size=(2, 5, 2, 4)).astype("float32")
    mask = np.ones((2, 1, 1, 5), bool)
    fused_attention(x, x, x, mask, scale=0.5).shape  # (2, 5, 2, 4)
    ```
    """
    if keras.config.backend() != "torch":
        return ops.dot_product_attention(
            query, key, value, mask=mask, scale=scale
        )
    return _torch_sdpa(query, key, value, mask, scale)


def _torch_sdpa(query, key, value, mask, scale, dropout_rate=0.0):
    """PyTorch's SDPA over `(B, T, N, H)` inputs, with an additive mask."""
    import torch

    query, key, value = (
        ops.convert_to_tensor(x).transpose(1, 2) for x in (query, key, value)
    )
    if mask is not None:
        mask = _additive_mask(mask, query.dtype)
    outputs = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=mask, dropout_p=dropout_rate, scale=scale
    )
    return outputs.transpose(1, 2)


def _additive_mask(mask, dtype):
    """A boolean mask as 0 or a large negative number: a row with every key
    masked stays finite, as in Keras' softmax."""
    return ops.cast(ops.where(mask, 0.0, -0.5 * _largest(dtype)), dtype)


def _attention_with_dropout(query, key, value, mask, rate, scale, layer):
    """Softmax attention with dropout on its weights (inputs `(B, T, N, H)`,
    a boolean `mask` `(B, 1, T, S)` or None).

    `keras.ops.dot_product_attention` has no dropout argument. On a GPU,
    PyTorch's SDPA drops the weights inside its kernels; elsewhere the
    arithmetic is written out, with `dropout` on the weights (SDPA's CPU
    fallback draws torch's slow per-element Bernoulli variables, and JAX's
    Bernoulli draws a 32-bit uniform per element).
    """
    if keras.config.backend() == "torch" and query.device.type != "cpu":
        return _torch_sdpa(query, key, value, mask, scale, dropout_rate=rate)
    scores = ops.einsum("btnh,bsnh->bnts", query * scale, key)
    if mask is not None:
        scores = scores + _additive_mask(mask, query.dtype)
    weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
    weights = ops.cast(dropout(weights, rate, layer), value.dtype)
    return ops.einsum("bnts,bsnh->btnh", weights, value)


def _largest(dtype):
    return float(ml_dtypes.finfo(keras.backend.standardize_dtype(dtype)).max)


def dropout(inputs, rate, layer):
    """Inverted dropout of `inputs` for the `keras.layers.Dropout` `layer`,
    from 16 random bits per element where that is faster than Keras'
    dropout: PyTorch on the CPU (`torch_cpu_dropout`; unseeded layers, which
    Keras too draws from torch's global generator) and JAX (`jax_dropout`,
    from the layer's seed generator, for an even last axis). Elsewhere,
    Keras' own.

    Example:
    ```python
    import keras
    import numpy as np

    from keras_electra.models import electra_transformer_encoder

    layer = keras.layers.Dropout(0.1)
    electra_transformer_encoder.dropout(np.ones((2, 4), "float32"), 0.1, layer)
    ```
    """
    inputs = ops.convert_to_tensor(inputs)
    backend = keras.config.backend()
    if backend == "torch" and layer.seed is None:
        if inputs.device.type == "cpu":
            return torch_cpu_dropout(inputs, rate)
    elif backend == "jax" and inputs.shape[-1] % 2 == 0:
        return jax_dropout(inputs, rate, layer.seed_generator.next())
    return keras.random.dropout(inputs, rate, seed=layer.seed_generator)


# torch's CPU dropout draws one Bernoulli variable per element; here 16 bits
# of a 64-bit draw decide an element, which is 3x faster on these CPUs. The
# drop probability is the rate rounded to a multiple of 2**-16 (0.1 drops
# 6,554 / 65,536 = 0.100006), and the kept values are scaled by the inverse
# of that exact keep probability, so the layer stays unbiased.
_DROPOUT_BITS = 16


def torch_cpu_dropout(inputs, rate):
    """Inverted dropout of a CPU `torch.Tensor`, from torch's global
    generator (as Keras' unseeded dropout on PyTorch).

    Args:
        inputs: a `torch.Tensor` on the CPU.
        rate: float in [0, 1): the drop probability, rounded to a multiple
            of `2**-16`.

    Returns:
        A tensor like `inputs`: each element zeroed with that probability,
        the others divided by the keep probability.

    Example:
    ```python
    import torch

    from keras_electra.models.electra_transformer_encoder import (
        torch_cpu_dropout,
    )

    dropped = torch_cpu_dropout(torch.ones(1000), 0.1)
    (dropped == 0).float().mean()  # about 0.1
    ```
    """
    import torch

    levels = 2**_DROPOUT_BITS
    threshold = round(rate * levels)
    if threshold == 0:
        return inputs
    count = inputs.numel()
    words_per_draw = 64 // _DROPOUT_BITS
    draws = torch.randint(
        -(2**63), 2**63 - 1, (-(-count // words_per_draw),), dtype=torch.int64
    )
    # Signed 16-bit words: a word drops its element when, read unsigned,
    # it is below the threshold.
    bits = draws.view(torch.int16)[:count].view(inputs.shape)
    keep = bits >= threshold - levels // 2
    scale = levels / (levels - threshold)
    if inputs.dtype in (torch.float32, torch.float64):
        # One product with a scaled mask, forward and backward: 30% faster
        # than masking and scaling in turn (the mask costs 4 bytes, not 1).
        return inputs * keep.to(inputs.dtype).mul_(scale)
    # A 16-bit mask would round the scale (bfloat16: 1.109 for 1.111).
    return inputs * keep * scale


def jax_dropout(inputs, rate, key):
    """Inverted dropout of a JAX array, 16 bits of threefry per element.

    Each 32-bit draw decides two elements, one in each half of the last
    axis (which must be even), so that XLA fuses the split with the rest:
    half the draws of `jax.random.bernoulli`. The drop probability is the
    rate rounded to a multiple of `2**-16`, as in `torch_cpu_dropout`.

    Args:
        inputs: a JAX array whose last axis is even.
        rate: float in [0, 1).
        key: a JAX PRNG key (`SeedGenerator.next()`).

    Returns:
        An array like `inputs`.

    Example:
    ```python
    import jax
    import jax.numpy as jnp

    from keras_electra.models.electra_transformer_encoder import jax_dropout

    dropped = jax_dropout(jnp.ones((10, 100)), 0.1, jax.random.PRNGKey(0))
    ```
    """
    import jax
    import jax.numpy as jnp

    levels = 2**_DROPOUT_BITS
    threshold = round(rate * levels)
    if threshold == 0:
        return inputs
    half = inputs.shape[:-1] + (inputs.shape[-1] // 2,)
    draws = jax.random.bits(key, half, jnp.uint32)
    words = jnp.concatenate([draws & (levels - 1), draws >> 16], axis=-1)
    scale = jnp.asarray(levels / (levels - threshold), inputs.dtype)
    return jnp.where(words >= threshold, inputs * scale, 0)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` on 16 random bits per element (`dropout`).

    Where `dropout` has a faster path (PyTorch's CPU, JAX), the drop
    probability is the rate rounded to a multiple of `2**-16`; a
    `noise_shape`, and everything else, is Keras' own dropout.

    Example:
    ```python
    import numpy as np

    from keras_electra.models.electra_transformer_encoder import (
        ElectraDropout,
    )

    layer = ElectraDropout(0.1)
    layer(np.ones((2, 3), "float32"), training=True).shape  # (2, 3)
    ```
    """

    def call(self, inputs, training=False):
        if training and self.rate > 0 and self.noise_shape is None:
            return dropout(inputs, self.rate, self)
        return super().call(inputs, training=training)


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
            return ElectraDense(
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
        self._self_attention_dropout = ElectraDropout(
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
        self._feedforward_dropout = ElectraDropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="feedforward_dropout",
        )
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        if (
            training
            or return_attention_scores
            or self.normalize_first
            or not torch_autograd_off()
        ):
            return super().call(
                inputs,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
            )
        # keras-hub's post-norm forward in inference (dropout is off), with
        # the sub-layers' `call` run directly (each Keras `__call__` cost
        # about 70 us on PyTorch) and the residual sums written into the
        # sub-layers' fresh outputs: bitwise the same result.
        mask = merge_padding_and_attention_mask(
            inputs, padding_mask, attention_mask
        )
        attended = self._self_attention_layer.call(
            inputs, inputs, attention_mask=mask
        )
        x = self._self_attention_layer_norm.call(attended.add_(inputs))
        outputs = self._feedforward_output_dense.call(
            self._feedforward_intermediate_dense.call(x)
        )
        return self._feedforward_layer_norm.call(outputs.add_(x))
