"""Extractive question answering (SQuAD) with ELECTRA."""

import keras
import keras_hub

from keras_electra.utils import preset_loading
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models.electra_text_inputs import CheckedInputs
from keras_electra.models.electra_optimizer import electra_adamw


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraQuestionAnswerer(
    CheckedInputs, preset_loading.SavesAtomically, keras_hub.models.Task
):
    """An ELECTRA encoder with start and end logits for every token.

    Input: `[CLS] question [SEP] context [SEP]` packed as
    `{"token_ids", "segment_ids", "padding_mask"}`. Output:
    `{"start_logits", "end_logits"}`, each `(batch, sequence_length)`; padding
    positions get a large negative logit. The head is one dense layer with
    two outputs, as Hugging Face's `ElectraForQuestionAnswering` (`[CLS]`
    stands for "no answer" in SQuAD 2.0). Targets are `{"start_positions",
    "end_positions"}` token indices.

    `fit`, `evaluate` and `predict` take NumPy arrays, `tf.data`, Python
    generators and `keras.utils.PyDataset`s, and check token ids and
    sequence lengths before they reach the device (generators and
    `PyDataset`s each batch on the host as it is drawn), with a
    `ValueError` (see `CheckedInputs`).

    Args:
        backbone: `ElectraBackbone`.

    Example:
    ```python
    import numpy as np
    import keras_electra

    answerer = keras_electra.ElectraQuestionAnswerer(
        keras_electra.ElectraBackbone.from_preset(
            "electra_tiny", vocab_size=200
        )
    )
    x = {
        "token_ids": np.full((2, 16), 7),
        "segment_ids": np.zeros((2, 16), "int32"),
        "padding_mask": np.ones((2, 16), "int32"),
    }
    y = {"start_positions": np.array([3, 0]), "end_positions": np.array([5, 0])}
    answerer.fit(x, y, verbose=0)
    answerer.predict(x, verbose=0)["start_logits"].shape  # (2, 16)
    ```
    """

    backbone_cls = ElectraBackbone

    def __init__(self, backbone, **kwargs):
        # === Layers ===
        self.backbone = backbone
        backbone.pooled_dense.trainable = False  # Unused here.
        self.span_dense = keras.layers.Dense(
            2,
            kernel_initializer=electra_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="span_logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        logits = self.span_dense(backbone(inputs)["sequence_output"])
        logits = keras.ops.cast(logits, "float32")
        # Padding can never be part of an answer.
        padding = keras.ops.cast(
            keras.ops.equal(inputs["padding_mask"], 0), "float32"
        )
        logits = logits - 1e9 * keras.ops.expand_dims(padding, -1)
        outputs = {
            "start_logits": logits[..., 0],
            "end_logits": logits[..., 1],
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """Defaults: AdamW(1e-4, epsilon 1e-6, weight decay 0.01 off LayerNorm
        and bias) and cross-entropy over positions for start and end."""
        if optimizer == "auto":
            optimizer = electra_adamw(learning_rate=1e-4)
        if loss == "auto":
            loss = {
                name: keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                )
                for name in ("start_logits", "end_logits")
            }
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # Targets are named after positions, outputs after logits.
        if isinstance(y, dict) and "start_positions" in y:
            y = {
                "start_logits": y["start_positions"],
                "end_logits": y["end_positions"],
            }
        return super().compute_loss(x, y, y_pred, sample_weight, training)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a preset (a fresh head unless the preset holds a saved
        question answerer)."""
        return preset_loading.load_task(cls, preset, load_weights, kwargs)
