"""ELECTRA's discriminator: backbone + replaced-token-detection head."""

import keras
import keras_hub

from keras_electra.utils import preset_loading
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_heads import ElectraReplacedTokenHead


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraDiscriminator(
    preset_loading.SavesAtomically, keras_hub.models.Task
):
    """An `ElectraBackbone` that scores every token as original or replaced.

    Takes `{"token_ids", "segment_ids", "padding_mask"}` and returns one logit
    per token (positive: "replaced"). After pre-training this is the model to
    fine-tune.

    Args:
        backbone: `ElectraBackbone`.
        preprocessor: optional keras-hub preprocessor.

    Example:
    ```python
    import numpy as np
    import keras_electra

    discriminator = keras_electra.ElectraDiscriminator.from_preset(
        "electra_tiny", vocab_size=500
    )
    logits = discriminator.predict({
        "token_ids": np.ones((2, 16), "int32"),
        "segment_ids": np.zeros((2, 16), "int32"),
        "padding_mask": np.ones((2, 16), "int32"),
    })
    logits.shape  # (2, 16)
    ```
    """

    backbone_cls = ElectraBackbone

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.replaced_token_head = ElectraReplacedTokenHead(
            hidden_dim=backbone.hidden_dim,
            approximate_gelu=backbone.approximate_gelu,
            dtype=backbone.dtype_policy,
            name="replaced_token_head",
        )

        # === Functional Model ===
        inputs = backbone.input
        sequence_output = backbone(inputs)["sequence_output"]
        logits = self.replaced_token_head(sequence_output)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """Defaults: Adam(5e-5), binary cross-entropy on logits."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a built-in name, a keras-hub preset or a directory.

        A directory saved by `ElectraPretrainer.save_to_preset` or
        `ElectraDiscriminator.save_to_preset` restores the head too; a plain
        backbone preset gets a freshly initialised head.
        """
        return preset_loading.load_task(cls, preset, load_weights, kwargs)
