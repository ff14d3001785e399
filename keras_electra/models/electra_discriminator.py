"""ELECTRA's discriminator: backbone + replaced-token-detection head."""

import keras
import keras_hub
import numpy as np

from keras_electra.utils import preset_loading
from keras_electra.models import electra_text_inputs as text_inputs
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_heads import ElectraReplacedTokenHead
from keras_electra.models.electra_text_classifier_preprocessor import (
    ElectraTextClassifierPreprocessor,
)

# The arguments of the preprocessor `from_preset` attaches.
PREPROCESSOR_ARGUMENTS = ("sequence_length", "truncate")


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraDiscriminator(
    text_inputs.CheckedInputs,
    text_inputs.PackedInputsPassThrough,
    preset_loading.SavesAtomically,
    keras_hub.models.Task,
):
    """An `ElectraBackbone` that scores every token as original or replaced.

    Takes `{"token_ids", "segment_ids", "padding_mask"}` and returns one logit
    per token (positive: "replaced"). After pre-training this is the model to
    fine-tune. With a preprocessor (`ElectraTextClassifierPreprocessor`, which
    packs text as `[CLS] text [SEP]`), `predict` also takes raw strings and
    `score_tokens` scores each word piece of a text; packed inputs (a dict)
    skip the preprocessor.

    `fit`, `evaluate` and `predict` take NumPy arrays, `tf.data`, Python
    generators and `keras.utils.PyDataset`s (and strings, with a
    preprocessor), and check token ids and sequence lengths before they
    reach the device (generators and `PyDataset`s each batch on the host
    as it is drawn), with a `ValueError` (see `CheckedInputs`).

    Args:
        backbone: `ElectraBackbone`.
        preprocessor: `ElectraTextClassifierPreprocessor` or `None`.

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
    preprocessor_cls = ElectraTextClassifierPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        backbone.pooled_dense.trainable = False  # Unused here.
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
        backbone preset gets a freshly initialised head. The preset's
        tokenizer, if any, becomes an `ElectraTextClassifierPreprocessor`
        (`sequence_length` defaults to the saved preprocessor's, else to 512
        or the backbone's `max_sequence_length` if shorter).
        """
        preprocessor = text_inputs.preprocessor_from_preset(
            cls.preprocessor_cls, preset, kwargs, PREPROCESSOR_ARGUMENTS
        )
        if preprocessor is not None:
            kwargs["preprocessor"] = preprocessor
        return preset_loading.load_task(cls, preset, load_weights, kwargs)

    def score_tokens(self, texts):
        """Each word piece of each text, with its probability of having been
        replaced.

        Each text is tokenised, packed as `[CLS] text [SEP]` and scored; the
        probability is the sigmoid of the discriminator's logit. A text
        longer than the preprocessor's `sequence_length` (at most the
        backbone's `max_sequence_length`) is truncated to its first
        `sequence_length - 2` word pieces, and only those are scored.

        Args:
            texts: a string or a list of strings.

        Returns:
            A list with one entry per text (also for a single string): a
            list of `(token, probability)` pairs, one per word piece in
            order, without `[CLS]`, `[SEP]` or padding (`token` a str,
            `probability` a float in [0, 1]).

        Raises:
            ValueError: if the discriminator has no preprocessor with a
                tokenizer, `texts` is not a string or a list of strings, or a
                text is empty.

        Example:
        ```python
        import keras_electra

        vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",
                      "cat", "sat"]
        discriminator = keras_electra.ElectraDiscriminator(
            keras_electra.ElectraBackbone(
                vocab_size=len(vocabulary), num_layers=1, num_heads=1,
                hidden_dim=8, embedding_dim=8, intermediate_dim=16,
                max_sequence_length=16,
            ),
            preprocessor=keras_electra.ElectraTextClassifierPreprocessor(
                keras_electra.ElectraTokenizer(vocabulary), sequence_length=8
            ),
        )
        [scores] = discriminator.score_tokens("a cat sat")
        [token for token, _ in scores]  # ["a", "cat", "sat"]
        ```
        """
        texts = text_inputs.check_texts(texts)
        tokenizer = text_inputs.task_tokenizer(self, "score_tokens")
        token_ids = text_inputs.tokenize(tokenizer, texts)
        x, lengths = text_inputs.pack(
            tokenizer, token_ids, text_inputs.sequence_length(self)
        )
        logits = np.asarray(self.predict(x, verbose=0), "float64")
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        return [
            [
                (tokenizer.id_to_token(token), float(probability))
                # Position 0 is [CLS].
                for token, probability in zip(ids, row[1 : 1 + length])
            ]
            for ids, row, length in zip(token_ids, probabilities, lengths)
        ]
