"""ELECTRA's WordPiece tokenizer (keras-hub's, bound to our backbone)."""

import keras
import keras_hub
from keras_electra.utils import preset_loading
from keras_electra.utils.keras_compat import preset_utils

from keras_electra.models.electra_backbone import ElectraBackbone

HF_VOCABULARY_FILE = "vocab.txt"
HF_TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# transformers' own (fast) tokenizer file, same name as keras-hub's config.
HF_FAST_TOKENIZER_FILE = "tokenizer.json"


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTokenizer(keras_hub.models.ElectraTokenizer):
    """BERT-style WordPiece tokenizer with `[CLS] [SEP] [PAD] [MASK]`.

    keras-hub's `ElectraTokenizer`, paired with `keras_electra`'s backbone so
    that presets saved by either library load. Works on Python strings and
    inside `tf.data`.

    Args:
        vocabulary: list of strings or a path to a `vocab.txt`.
        lowercase: bool. Lower-case (uncased models).
        strip_accents: bool. Remove accents; defaults to `lowercase`.

    Example:
    ```python
    import keras_electra

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "qu",
                  "##ick", "fox"]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    tokenizer("The quick fox")  # [5, 6, 7, 8]
    ```
    """

    backbone_cls = ElectraBackbone

    def __init__(
        self, vocabulary, lowercase=False, strip_accents=None, **kwargs
    ):
        # Uncased BERT/ELECTRA vocabularies are accent-free, so accents go
        # with case unless told otherwise (as in BERT and Hugging Face).
        if strip_accents is None:
            strip_accents = lowercase
        super().__init__(
            vocabulary=vocabulary,
            lowercase=lowercase,
            strip_accents=strip_accents,
            **kwargs,
        )

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Load the tokenizer of a preset directory or handle.

        Accepts presets saved by keras_electra or keras-hub, and Hugging Face
        checkpoints: a `vocab.txt` (casing from `tokenizer_config.json`), or
        a WordPiece `tokenizer.json` as `transformers` 5 writes it.
        """
        if not has_tokenizer(preset):
            raise ValueError(
                f"Preset '{preset}' has no tokenizer (no Keras "
                f"{preset_utils.TOKENIZER_CONFIG_FILE}, no {HF_VOCABULARY_FILE}"
                f" and no WordPiece {HF_FAST_TOKENIZER_FILE})."
            )
        if _is_transformers(preset):
            return cls(**_transformers_tokenizer_config(preset), **kwargs)
        loader = preset_utils.get_preset_loader(preset)
        saved = loader.load_tokenizer(cls, **kwargs)
        if isinstance(saved, cls):
            return saved
        return cls.from_config(
            {**saved.get_config(), "vocabulary": saved.get_vocabulary()}
        )


def has_tokenizer(preset):
    """Whether the preset directory or handle holds a tokenizer we can read."""
    exists = preset_utils.check_file_exists
    if _is_transformers(preset):
        return exists(preset, HF_VOCABULARY_FILE) or (
            exists(preset, HF_FAST_TOKENIZER_FILE)
            and preset_utils.load_json(preset, HF_FAST_TOKENIZER_FILE)
            .get("model", {})
            .get("type")
            == "WordPiece"
        )
    return exists(preset, preset_utils.TOKENIZER_CONFIG_FILE)


def _is_transformers(preset):
    """A `transformers` checkpoint, or a folder with tokenizer files only."""
    if preset_loading.is_transformers_preset(preset):
        return True
    return not preset_utils.check_file_exists(
        preset, preset_utils.CONFIG_FILE
    )


def _transformers_tokenizer_config(preset):
    """Vocabulary and casing of a `transformers` BERT-style tokenizer."""
    exists = preset_utils.check_file_exists
    if exists(preset, HF_VOCABULARY_FILE):
        path = preset_utils.get_file(preset, HF_VOCABULARY_FILE)
        with open(path, encoding="utf-8") as file:
            vocabulary = [line.rstrip("\n") for line in file]
        lowercase, strip_accents = True, None  # transformers' defaults
        if exists(preset, HF_TOKENIZER_CONFIG_FILE):
            config = preset_utils.load_json(preset, HF_TOKENIZER_CONFIG_FILE)
            lowercase = config.get("do_lower_case", True)
            strip_accents = config.get("strip_accents")
    else:
        fast = preset_utils.load_json(preset, HF_FAST_TOKENIZER_FILE)
        ids = fast["model"]["vocab"]
        vocabulary = sorted(ids, key=ids.get)
        normalizer = fast.get("normalizer") or {}
        lowercase = normalizer.get("lowercase", False)
        strip_accents = normalizer.get("strip_accents")
    return {
        "vocabulary": vocabulary,
        "lowercase": lowercase,
        "strip_accents": strip_accents,
    }
