"""Masks raw text for `ElectraGenerator` (masked-language-model training)."""

import keras
import keras_hub
from keras_electra.utils.keras_compat import preset_utils

from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_tokenizer import ElectraTokenizer

# The arguments a saved preprocessor's config restores in `from_preset`.
SAVED_ARGUMENTS = (
    "sequence_length",
    "truncate",
    "mask_selection_rate",
    "mask_selection_length",
    "mask_token_rate",
    "random_token_rate",
)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraMaskedLMPreprocessor(keras_hub.models.MaskedLMPreprocessor):
    """Tokenise, pack and randomly mask text for masked-LM training.

    Each text (or pair of texts, as a tuple) becomes `[CLS] A [SEP]` (or
    `[CLS] A [SEP] B [SEP]`) padded to `sequence_length`; then up to
    `mask_selection_length` of its non-special tokens are selected with
    probability `mask_selection_rate` each, and a selected token becomes
    `[MASK]` (`mask_token_rate`), a random token (`random_token_rate`) or
    stays. Returns `(x, y, sample_weight)`:

    - `x`: `{"token_ids", "segment_ids", "padding_mask", "mask_positions"}`,
      the input of `ElectraGenerator`;
    - `y`: the original token ids at `mask_positions`;
    - `sample_weight`: 1 for a selected position, 0 for padding of
      `mask_positions`.

    Works on Python strings and inside `tf.data`.

    Args:
        tokenizer: `ElectraTokenizer`.
        sequence_length: int. Length of the packed sequences.
        truncate: `"round_robin"` or `"waterfall"` (for pairs).
        mask_selection_rate: float. Probability that a token is selected.
        mask_selection_length: int. At most this many selected tokens per
            sequence (the length of `mask_positions`).
        mask_token_rate: float. Probability that a selected token becomes
            `[MASK]`.
        random_token_rate: float. Probability that a selected token becomes
            a random token; it stays with the remaining probability.

    Example:
    ```python
    import keras_electra

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat",
                  "sat"]
    preprocessor = keras_electra.ElectraMaskedLMPreprocessor(
        keras_electra.ElectraTokenizer(vocabulary),
        sequence_length=8,
        mask_selection_rate=0.5,
        mask_selection_length=3,
    )
    x, y, sample_weight = preprocessor(["a cat sat", "a cat"])
    x["token_ids"].shape  # (2, 8)
    x["mask_positions"].shape  # (2, 3)
    y.shape  # (2, 3): the original ids at `mask_positions`
    ```
    """

    backbone_cls = ElectraBackbone
    tokenizer_cls = ElectraTokenizer

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """The preset's tokenizer, with the saved preprocessor's settings
        (if it saved one) unless `kwargs` overrides them."""
        if preset_utils.check_file_exists(
            preset, preset_utils.PREPROCESSOR_CONFIG_FILE
        ):
            saved = preset_utils.load_json(
                preset, preset_utils.PREPROCESSOR_CONFIG_FILE
            )["config"]
            for key in SAVED_ARGUMENTS:
                if key in saved:
                    kwargs.setdefault(key, saved[key])
        return cls(tokenizer=ElectraTokenizer.from_preset(preset), **kwargs)
