"""Sentence and sentence-pair classification (and regression) with ELECTRA."""

import keras
import keras_hub

from keras_electra.utils import preset_loading
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models import electra_text_inputs as text_inputs
from keras_electra.models.electra_text_inputs import CheckedInputs
from keras_electra.models.electra_text_inputs import PackedInputsPassThrough
from keras_electra.models.electra_optimizer import electra_adamw
from keras_electra.models.electra_text_classifier_preprocessor import (
    ElectraTextClassifierPreprocessor,
)

HEADS = ("hf", "original")
POOLINGS = ("cls", "mean")


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTextClassifier(
    CheckedInputs,
    PackedInputsPassThrough,
    preset_loading.SavesAtomically,
    keras_hub.models.TextClassifier,
):
    """An ELECTRA discriminator with a classification head.

    Two heads:
    - `head="hf"` (default): dropout, dense(hidden, exact GELU), dropout,
      dense(num_classes) on the `[CLS]` vector, the shape of Hugging Face's
      `ElectraForSequenceClassification`, so its checkpoints convert.
    - `head="original"`: the original ELECTRA's, the backbone's pooled
      output (dense + tanh on `[CLS]`), dropout, dense(num_classes).

    `pooling="mean"` feeds the `"hf"` head the average of the real tokens'
    vectors instead of `[CLS]`'s. ELECTRA's pre-training never trains the
    `[CLS]` vector (the discriminator only learns that `[CLS]` is never
    replaced), so after short pre-training the `[CLS]` head can sit at the
    majority class for epochs while the mean of the token vectors works at
    once (see benchmarks/RESULTS.md, "What the demo shows"). Mean pooling has no
    `transformers` equivalent, so such a classifier does not export.

    `num_classes=1` makes it a regression model (e.g. STS-B): one output,
    mean squared error.

    `fit`, `evaluate` and `predict` take NumPy arrays, `tf.data`, Python
    generators, `keras.utils.PyDataset`s and (with a preprocessor) raw
    strings; packed inputs (a dict) skip the preprocessor. Every input kind
    is checked before it reaches the device (arrays at once, generators and
    `PyDataset`s each batch on the host as it is drawn): token ids outside
    `[0, vocab_size)`, sequences longer than `max_sequence_length` and
    labels outside `[0, num_classes)` raise a `ValueError` (see
    `CheckedInputs`). `save_to_preset` never leaves a half-written preset.

    Args:
        backbone: `ElectraBackbone`.
        num_classes: int >= 1.
        preprocessor: `ElectraTextClassifierPreprocessor` or `None` (then the
            model takes packed `{"token_ids", "segment_ids",
            "padding_mask"}`).
        head: `"hf"` or `"original"`.
        pooling: `"cls"` (default, as the paper and `transformers`) or
            `"mean"` (masked mean over the tokens; `"hf"` head only).
        dropout: float. Dropout rate of the head.

    Example:
    ```python
    import numpy as np
    import keras_electra

    classifier = keras_electra.ElectraTextClassifier(
        keras_electra.ElectraBackbone.from_preset(
            "electra_tiny", vocab_size=200
        ),
        num_classes=3,
    )
    x = {
        "token_ids": np.full((4, 16), 7),
        "segment_ids": np.zeros((4, 16), "int32"),
        "padding_mask": np.ones((4, 16), "int32"),
    }
    classifier.fit(x, np.array([0, 1, 2, 1]), batch_size=2, verbose=0)
    classifier.predict(x, verbose=0).shape  # (4, 3)
    ```
    """

    backbone_cls = ElectraBackbone
    preprocessor_cls = ElectraTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        head="hf",
        pooling="cls",
        dropout=0.1,
        **kwargs,
    ):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                "`num_classes` must be an integer >= 1 (1 for regression), "
                f"got {num_classes!r}."
            )
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {HEADS}, got {head!r}.")
        if pooling not in POOLINGS:
            raise ValueError(
                f"`pooling` must be one of {POOLINGS}, got {pooling!r}."
            )
        if head == "original" and pooling != "cls":
            raise ValueError(
                "`head='original'` reads the backbone's pooled `[CLS]` "
                "output; use `pooling='cls'` with it."
            )
        if preprocessor is not None:
            check_preprocessor(preprocessor, backbone)
        # === Layers ===
        self.backbone = backbone
        backbone.pooled_dense.trainable = head == "original"
        self.preprocessor = preprocessor
        self.classifier_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
        if head == "hf":
            self.classifier_dense = keras.layers.Dense(
                backbone.hidden_dim,
                activation="gelu",
                kernel_initializer=electra_kernel_initializer(),
                dtype=backbone.dtype_policy,
                name="classifier_dense",
            )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=electra_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        outputs = backbone(inputs)
        if head == "hf":
            if pooling == "mean":
                x = masked_mean(
                    outputs["sequence_output"], inputs["padding_mask"]
                )
            else:
                x = outputs["sequence_output"][:, 0, :]
            x = self.classifier_dropout(x)
            x = self.classifier_dropout(self.classifier_dense(x))
        else:
            x = self.classifier_dropout(outputs["pooled_output"])
        logits = self.output_dense(x)
        # === Config === (before the base class compiles with the defaults)
        self.num_classes = num_classes
        self.head = head
        self.pooling = pooling
        self.dropout = dropout
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Defaults: AdamW(1e-4, epsilon 1e-6, weight decay 0.01 off LayerNorm
        and bias); cross-entropy and accuracy, or for `num_classes=1` mean
        squared error and mean absolute error."""
        if optimizer == "auto":
            optimizer = electra_adamw(learning_rate=1e-4)
        regression = self.num_classes == 1
        if loss == "auto":
            loss = (
                keras.losses.MeanSquaredError()
                if regression
                else keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                )
            )
        if metrics == "auto":
            metrics = [
                keras.metrics.MeanAbsoluteError()
                if regression
                else keras.metrics.SparseCategoricalAccuracy()
            ]
        # keras-hub's TextClassifier.compile only fills its own defaults.
        keras_hub.models.Task.compile(
            self, optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "head": self.head,
                "pooling": self.pooling,
                "dropout": self.dropout,
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a preset; pass `num_classes` unless the preset holds a
        saved classifier. The preset's tokenizer, if any, becomes the
        preprocessor (`sequence_length` defaults to the saved
        preprocessor's, else to 512 or the backbone's `max_sequence_length`
        if shorter)."""
        preprocessor = text_inputs.preprocessor_from_preset(
            cls.preprocessor_cls, preset, kwargs, ("sequence_length", "truncate")
        )
        if preprocessor is not None:
            kwargs["preprocessor"] = preprocessor
        return preset_loading.load_task(cls, preset, load_weights, kwargs)


def check_preprocessor(preprocessor, backbone):
    """Raise a `ValueError` if `preprocessor` makes inputs `backbone` cannot
    take: longer sequences or a larger vocabulary."""
    length = getattr(preprocessor, "sequence_length", None)
    if length is not None and length > backbone.max_sequence_length:
        raise ValueError(
            f"The preprocessor packs sequences of {length} tokens, longer "
            "than the backbone's `max_sequence_length` "
            f"({backbone.max_sequence_length}); pass `sequence_length=` at "
            "most that."
        )
    tokenizer = getattr(preprocessor, "tokenizer", None)
    try:
        vocabulary_size = tokenizer.vocabulary_size()
    except Exception:
        return  # No tokenizer, or no vocabulary yet.
    if vocabulary_size > backbone.vocab_size:
        raise ValueError(
            f"The tokenizer's vocabulary ({vocabulary_size} tokens) is larger "
            f"than the backbone's `vocab_size` ({backbone.vocab_size}): its "
            "ids would not fit the embedding table."
        )


def masked_mean(sequence, padding_mask):
    """Average of the vectors where `padding_mask` is set."""
    weights = keras.ops.cast(
        keras.ops.expand_dims(padding_mask, -1), sequence.dtype
    )
    total = keras.ops.sum(sequence * weights, axis=1)
    return total / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)


