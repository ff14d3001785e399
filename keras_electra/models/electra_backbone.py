"""The ELECTRA encoder, compatible with keras-hub's `ElectraBackbone`."""

import keras
import keras_hub
from keras import ops
from keras.layers import ReversibleEmbedding
from keras_hub.layers import PositionEmbedding
from keras_hub.models import Backbone

# keras-hub registers this function for serialization; reusing it keeps our
# configs identical to keras-hub's.
from keras_electra.models.electra_presets import PRESETS
from keras_electra.models.electra_transformer_encoder import ElectraDropout
from keras_electra.models.electra_transformer_encoder import (
    TransformerEncoder,
)
from keras_electra.utils import precision
from keras_electra.utils import preset_loading
from keras_electra.utils.keras_compat import gelu_approximate

# Layers that make up the embedding block. A backbone that runs on another
# backbone's embedding block (the ELECTRA generator) reuses exactly these.
SHARED_EMBEDDING_LAYER_NAMES = (
    "token_embedding",
    "position_embedding",
    "segment_embedding",
    "embeddings_add",
    "embeddings_layer_norm",
    "embeddings_dropout",
)
# All layers below the Transformer layers (depth 0 of layer-wise decay): the
# embedding block and each backbone's own `embeddings_projection`.
EMBEDDING_LAYER_NAMES = SHARED_EMBEDDING_LAYER_NAMES + (
    "embeddings_projection",
)


# How a backbone with an `embedding_owner` uses the owner's token embedding.
EMBEDDING_SHARING_MODES = ("tied", "gdes")


def electra_kernel_initializer(stddev=0.02):
    return keras.initializers.TruncatedNormal(stddev=stddev)


def gelu_activation(approximate_gelu):
    """The GELU variant: tanh-approximate (original, keras-hub) or exact (HF)."""
    return gelu_approximate if approximate_gelu else "gelu"


class GradientDisentangledEmbedding(keras.layers.Layer):
    """A token embedding on another layer's table, without training that table.

    Gradient-disentangled embedding sharing (GDES; He et al., 2021,
    DeBERTa-v3): the table this layer reads is `stop_gradient(shared) +
    delta`. `shared` is the `embeddings` of another `ReversibleEmbedding`
    (in `ElectraPretrainer`, the generator's), trained only by the model
    that owns it; `delta`, zero at the start, is this layer's only variable
    and takes all the gradient that reaches this layer. `shared + delta`
    (`folded_embeddings()`) is the table an ordinary embedding would hold.

    Called with `reverse=True` it projects to vocabulary logits with the
    transposed table, like a `ReversibleEmbedding` with tied weights, so a
    `keras_hub.layers.MaskedLMHead` can use it. As in `keras.layers.Embedding`
    the table is gathered in the variable dtype and the result cast to the
    compute dtype (`mixed_bfloat16` sums `shared + delta` in float32).

    Args:
        shared_embedding: a `keras.layers.ReversibleEmbedding`. Held by
            reference, not tracked: its variable belongs to its own model, not
            to the model of this layer.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).
    """

    def __init__(self, shared_embedding, **kwargs):
        super().__init__(**kwargs)
        # A closure rather than an attribute: Keras (and torch.nn.Module)
        # would track an attribute layer, making the shared table one of
        # this layer's weights too.
        self._shared_embedding = lambda: shared_embedding
        self.input_dim = shared_embedding.input_dim
        self.output_dim = shared_embedding.output_dim
        # Gather in float32 and cast the result, as `keras.layers.Embedding`.
        self.autocast = False

    @property
    def shared_embedding(self):
        """The `ReversibleEmbedding` whose table is `shared`."""
        return self._shared_embedding()

    def build(self, input_shape=None):
        self.delta = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer="zeros",
            name="delta",
        )
        self.built = True

    def call(self, inputs, reverse=False):
        shared = ops.stop_gradient(self.shared_embedding.embeddings)
        if reverse:
            table = shared + self.delta
            return ops.matmul(inputs, ops.transpose(table))
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        outputs = ops.take(shared, inputs, axis=0) + ops.take(
            self.delta, inputs, axis=0
        )
        return ops.cast(outputs, self.compute_dtype)

    def folded_embeddings(self):
        """`shared + delta`: the table as one ordinary embedding's."""
        return self.shared_embedding.embeddings + self.delta

    def assign_folded(self, table):
        """Set `delta` so that `shared + delta` equals `table`."""
        self.delta.assign(
            ops.convert_to_tensor(table, self.delta.dtype)
            - self.shared_embedding.embeddings
        )


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraBackbone(keras_hub.models.ElectraBackbone):
    """The ELECTRA Transformer encoder.

    Layer names, variables and configuration are those of
    `keras_hub.models.ElectraBackbone`, so keras-hub's ELECTRA presets load
    into this class and presets saved from it load with keras-hub. On top of
    keras-hub it adds the choice of GELU and the ability to run on the
    embedding block of another backbone, which is how the ELECTRA generator
    shares the discriminator's embeddings.

    Args:
        vocab_size: int. Size of the token vocabulary.
        num_layers: int. Number of Transformer layers.
        num_heads: int. Attention heads per layer; must divide `hidden_dim`.
        hidden_dim: int. Width of the Transformer layers.
        embedding_dim: int. Width of the token, position and segment
            embeddings. A dense `embeddings_projection` maps them to
            `hidden_dim` when the two differ.
        intermediate_dim: int. Width of the feed-forward layers.
        dropout: float. Dropout rate throughout the encoder.
        max_sequence_length: int. Longest input the position embedding covers.
        num_segments: int. Number of segment (token type) ids.
        approximate_gelu: bool. `True` for the tanh approximation of GELU (the
            original ELECTRA and keras-hub), `False` for the exact erf form
            (Hugging Face's `"gelu"`).
        embedding_owner: `ElectraBackbone` or `None`. When set, this backbone
            uses the embedding layers (token, position, segment, LayerNorm,
            dropout) of `embedding_owner` instead of creating its own; it still
            owns its `embeddings_projection`. Not part of the config: a
            backbone restored on its own owns its embeddings, and
            `ElectraPretrainer` re-establishes the sharing.
        embedding_sharing: `"tied"` or `"gdes"`, how a backbone with an
            `embedding_owner` uses the owner's token embedding: `"tied"`
            (default) uses it as it is; `"gdes"` reads it through a
            `GradientDisentangledEmbedding` (`stop_gradient(owner's table) +
            delta`, with `delta` this backbone's own variable). The other
            embedding layers are the owner's either way. Not part of the
            config; `fold_embeddings` turns such a backbone into an
            ordinary one.
        dtype: string or `keras.DTypePolicy`. Dtype policy of the model.

    Example:
    ```python
    import numpy as np
    import keras_electra

    backbone = keras_electra.ElectraBackbone(
        vocab_size=1000, num_layers=2, num_heads=2, hidden_dim=32,
        embedding_dim=16, intermediate_dim=64, max_sequence_length=64,
    )
    outputs = backbone({
        "token_ids": np.ones((1, 12), "int32"),
        "segment_ids": np.zeros((1, 12), "int32"),
        "padding_mask": np.ones((1, 12), "int32"),
    })
    outputs["sequence_output"].shape  # (1, 12, 32)
    ```
    """

    # Configurations by name (random initialisation); see `electra_presets`.
    builtin_presets = PRESETS

    def __init__(
        self,
        vocab_size,
        num_layers,
        num_heads,
        hidden_dim,
        embedding_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        approximate_gelu=True,
        embedding_owner=None,
        embedding_sharing="tied",
        dtype=None,
        **kwargs,
    ):
        if embedding_sharing not in EMBEDDING_SHARING_MODES:
            raise ValueError(
                "`embedding_sharing` must be one of "
                f"{', '.join(EMBEDDING_SHARING_MODES)}; got "
                f"{embedding_sharing!r}."
            )
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by "
                f"`num_heads` ({num_heads})."
            )
        # === Layers ===
        if embedding_owner is None:
            self.token_embedding = ReversibleEmbedding(
                input_dim=vocab_size,
                output_dim=embedding_dim,
                embeddings_initializer=electra_kernel_initializer(),
                dtype=dtype,
                name="token_embedding",
            )
            self.position_embedding = PositionEmbedding(
                initializer=electra_kernel_initializer(),
                sequence_length=max_sequence_length,
                dtype=dtype,
                name="position_embedding",
            )
            self.segment_embedding = keras.layers.Embedding(
                input_dim=num_segments,
                output_dim=embedding_dim,
                embeddings_initializer=electra_kernel_initializer(),
                dtype=dtype,
                name="segment_embedding",
            )
            self.embeddings_add = keras.layers.Add(
                dtype=dtype, name="embeddings_add"
            )
            self.embeddings_layer_norm = keras.layers.LayerNormalization(
                axis=-1,
                epsilon=1e-12,
                dtype=dtype,
                name="embeddings_layer_norm",
            )
            self.embeddings_dropout = ElectraDropout(
                dropout, dtype=dtype, name="embeddings_dropout"
            )
        else:
            _check_embedding_owner(
                embedding_owner,
                vocab_size=vocab_size,
                embedding_dim=embedding_dim,
                max_sequence_length=max_sequence_length,
                num_segments=num_segments,
            )
            for name in SHARED_EMBEDDING_LAYER_NAMES:
                setattr(self, name, getattr(embedding_owner, name))
            if embedding_sharing == "gdes":
                self.token_embedding = GradientDisentangledEmbedding(
                    embedding_owner.token_embedding,
                    dtype=dtype,
                    name="token_embedding",
                )
        if hidden_dim != embedding_dim:
            self.embeddings_projection = keras.layers.Dense(
                hidden_dim,
                kernel_initializer=electra_kernel_initializer(),
                dtype=dtype,
                name="embeddings_projection",
            )
        self.transformer_layers = [
            TransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=gelu_activation(approximate_gelu),
                dropout=dropout,
                layer_norm_epsilon=1e-12,
                kernel_initializer=electra_kernel_initializer(),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        # The pooler (as in BERT and the original ELECTRA) serves only the
        # text classifier's `head="original"`: every other task model freezes
        # it (no gradient reaches it, and Keras' optimizers warn of that).
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=electra_kernel_initializer(),
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional Model ===
        token_id_input = keras.Input(
            shape=(None,), dtype="int32", name="token_ids"
        )
        segment_id_input = keras.Input(
            shape=(None,), dtype="int32", name="segment_ids"
        )
        padding_mask_input = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        tokens = self.token_embedding(token_id_input)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_id_input)
        x = self.embeddings_add((tokens, positions, segments))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        if hidden_dim != embedding_dim:
            x = self.embeddings_projection(x)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, padding_mask=padding_mask_input)
        pooled_output = self.pooled_dense(x[:, 0, :])
        # keras-hub's ElectraBackbone.__init__ builds its own layers; we skip
        # it and initialise the functional model directly with ours.
        Backbone.__init__(
            self,
            inputs={
                "token_ids": token_id_input,
                "segment_ids": segment_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs={"sequence_output": x, "pooled_output": pooled_output},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocab_size = vocab_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.embedding_dim = embedding_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.approximate_gelu = approximate_gelu
        self.cls_token_index = 0

        # Warns (once) where bfloat16 compute is far slower than float32.
        precision.check_bfloat16_speed(self.dtype_policy)

    def get_config(self):
        config = super().get_config()
        config["approximate_gelu"] = self.approximate_gelu
        return config

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save as a preset directory (keras-hub's format).

        The backbone of a GDES discriminator saves its token table folded
        (`shared + delta`, see `fold_embeddings`): saved as it is, the
        preset would hold `delta` where the table belongs, and load without
        complaint as a wrong model. Task models save their backbone
        through here too.
        """
        folded = fold_embeddings(self)
        if folded is not self:
            return folded.save_to_preset(preset_dir, max_shard_size)
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build a backbone from a preset.

        Args:
            preset: a built-in name (`cls.presets`, randomly initialised), a
                keras-hub ELECTRA preset name or handle, or a local directory
                saved by keras-hub or keras_electra.
            load_weights: bool. Load the preset's weights, if it has any.
            **kwargs: config overrides, e.g. `vocab_size=8000`.

        Example:
        ```python
        import keras_electra

        backbone = keras_electra.ElectraBackbone.from_preset(
            "electra_tiny", vocab_size=500
        )
        ```
        """
        return preset_loading.load_backbone(cls, preset, load_weights, kwargs)

    @classmethod
    def generator_config(cls, config, generator_size):
        """The config of a generator `generator_size` times this size.

        Hidden width is `round(hidden_dim * generator_size)`, with one head per
        64 units, a feed-forward four times as wide and the same depth, as in
        the original ELECTRA.
        """
        if not generator_size > 0:
            raise ValueError(
                f"`generator_size` must be > 0, got {generator_size}."
            )
        hidden_dim = max(1, round(config["hidden_dim"] * generator_size))
        return {
            **config,
            "name": None,
            "hidden_dim": hidden_dim,
            "num_heads": max(1, hidden_dim // 64),
            "intermediate_dim": 4 * hidden_dim,
        }


def _check_embedding_owner(owner, **expected):
    for name, value in expected.items():
        if getattr(owner, name) != value:
            raise ValueError(
                f"Cannot share embeddings: the embedding owner has "
                f"`{name}={getattr(owner, name)}`, this backbone `{value}`."
            )


def disentangle_embeddings(backbone, owner):
    """`backbone` rebuilt on `owner`'s embeddings with GDES (see above).

    The GDES discriminator of `ElectraPretrainer`: a new `ElectraBackbone`
    with `backbone`'s config and weights that uses `owner`'s embedding
    layers, its token embedding a `GradientDisentangledEmbedding` on
    `owner`'s. `owner`'s embedding layers first take `backbone`'s weights
    and `delta` starts at zero, so the new backbone computes what
    `backbone` did; `fold_embeddings` is the inverse.

    Args:
        backbone: `ElectraBackbone` owning its embeddings.
        owner: `ElectraBackbone` owning its embeddings, with the same
            vocabulary, embedding width, sequence length and segments.
    """
    for name in SHARED_EMBEDDING_LAYER_NAMES:
        layer = getattr(owner, name)
        if layer.weights:
            layer.set_weights(getattr(backbone, name).get_weights())
    config = backbone.get_config()
    config["dtype"] = backbone.dtype_policy
    disentangled = ElectraBackbone(
        **config, embedding_owner=owner, embedding_sharing="gdes"
    )
    for layer in disentangled.layers:
        if layer.name not in SHARED_EMBEDDING_LAYER_NAMES and layer.weights:
            layer.set_weights(backbone.get_layer(layer.name).get_weights())
    return disentangled


def fold_embeddings(backbone):
    """`backbone` as an ordinary backbone that owns all its weights.

    A backbone whose token embedding is a `GradientDisentangledEmbedding`
    (the discriminator of a GDES `ElectraPretrainer`) becomes a new
    `ElectraBackbone` of the same config and weights, its token table
    `shared + delta` folded into one `ReversibleEmbedding`: what presets
    and `transformers` checkpoints hold. Any other backbone is returned as
    it is.

    Example:
    ```python
    import keras_electra
    from keras_electra.models.electra_backbone import fold_embeddings

    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=500, embedding_sharing="gdes"
    )
    backbone = fold_embeddings(pretrainer.backbone)
    backbone.token_embedding.embeddings.shape  # (500, 16)
    ```
    """
    source = getattr(backbone, "token_embedding", None)
    if not isinstance(source, GradientDisentangledEmbedding):
        return backbone
    config = backbone.get_config()
    config["dtype"] = backbone.dtype_policy
    folded = ElectraBackbone(**config)
    for layer in folded.layers:
        if layer.name == "token_embedding":
            layer.embeddings.assign(source.folded_embeddings())
        elif layer.weights:
            layer.set_weights(backbone.get_layer(layer.name).get_weights())
    return folded

