"""Packs sentences and sentence pairs for `ElectraTextClassifier`."""

import keras
import keras_hub
from keras_electra.utils.keras_compat import preset_utils

from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_tokenizer import ElectraTokenizer


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTextClassifierPreprocessor(
    keras_hub.models.TextClassifierPreprocessor
):
    """Tokenise and pack `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`.

    Produces `{"token_ids", "segment_ids", "padding_mask"}` padded to
    `sequence_length`, truncating pairs round robin. Labels and sample
    weights pass through. Works on Python strings and inside `tf.data`.

    Args:
        tokenizer: `ElectraTokenizer`.
        sequence_length: int. Length of the packed sequences.
        truncate: `"round_robin"` or `"waterfall"`.

    Example:
    ```python
    import keras_electra

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat"]
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor(
        keras_electra.ElectraTokenizer(vocabulary), sequence_length=8
    )
    x = preprocessor(x=("a cat", "a"))  # a tuple is a sentence pair
    x["token_ids"]  # [2, 5, 6, 3, 5, 3, 0, 0]
    x["segment_ids"]  # [0, 0, 0, 0, 1, 1, 0, 0]
    ```
    """

    backbone_cls = ElectraBackbone
    tokenizer_cls = ElectraTokenizer

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """The preset's tokenizer, packed to `sequence_length` (default the
        saved preprocessor's, else 512)."""
        if preset_utils.check_file_exists(
            preset, preset_utils.PREPROCESSOR_CONFIG_FILE
        ):
            saved = preset_utils.load_json(
                preset, preset_utils.PREPROCESSOR_CONFIG_FILE
            )["config"]
            for key in ("sequence_length", "truncate"):
                if key in saved:
                    kwargs.setdefault(key, saved[key])
        return cls(tokenizer=ElectraTokenizer.from_preset(preset), **kwargs)
