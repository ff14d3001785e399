"""ELECTRA's generator: a small masked-language model."""

import keras
import keras_hub

from keras_electra.utils import preset_loading
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models.electra_backbone import gelu_activation


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraGenerator(
    preset_loading.SavesAtomically, keras_hub.models.MaskedLM
):
    """An `ElectraBackbone` with a masked-LM head, logits at masked positions.

    The head is keras-hub's `MaskedLMHead`: dense to the embedding width,
    GELU, LayerNorm, then the transposed token embedding (tied weights) plus a
    bias, as in the original. Vocabulary logits are computed only at
    `mask_positions`, never over the whole sequence.

    Takes `{"token_ids", "segment_ids", "padding_mask", "mask_positions"}` and
    returns logits of shape `(batch, num_masked, vocab_size)`.

    Args:
        backbone: `ElectraBackbone`.
        preprocessor: optional keras-hub preprocessor.

    Example:
    ```python
    import numpy as np
    import keras_electra

    generator = keras_electra.ElectraGenerator.from_preset(
        "electra_tiny", vocab_size=500
    )
    logits = generator.predict({
        "token_ids": np.ones((2, 16), "int32"),
        "segment_ids": np.zeros((2, 16), "int32"),
        "padding_mask": np.ones((2, 16), "int32"),
        "mask_positions": np.array([[1, 2], [3, 4]], "int32"),
    })
    logits.shape  # (2, 2, 500)
    ```
    """

    backbone_cls = ElectraBackbone

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = keras_hub.layers.MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation=gelu_activation(backbone.approximate_gelu),
            layer_norm_epsilon=1e-12,
            kernel_initializer=electra_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )

        # === Functional Model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(
                shape=(None,), dtype="int32", name="mask_positions"
            ),
        }
        backbone_outputs = backbone(
            {k: v for k, v in inputs.items() if k != "mask_positions"}
        )
        logits = self.masked_lm_head(
            backbone_outputs["sequence_output"],
            mask_positions=inputs["mask_positions"],
        )
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a built-in name, a keras-hub preset or a directory.

        Note that a built-in name gives a generator of the *discriminator's*
        size; `ElectraPretrainer` derives the generator from `generator_size`.
        """
        return preset_loading.load_task(cls, preset, load_weights, kwargs)
