"""ELECTRA's generator: a small masked-language model."""

import keras
import keras_hub
import numpy as np

from keras_electra.utils import preset_loading
from keras_electra.models import electra_text_inputs as text_inputs
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models.electra_backbone import gelu_activation
from keras_electra.models.electra_heads import MaskedLMHead
from keras_electra.models.electra_masked_lm_preprocessor import (
    SAVED_ARGUMENTS,
)
from keras_electra.models.electra_masked_lm_preprocessor import (
    ElectraMaskedLMPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraGenerator(
    text_inputs.CheckedInputs,
    text_inputs.PackedInputsPassThrough,
    preset_loading.SavesAtomically,
    keras_hub.models.MaskedLM,
):
    """An `ElectraBackbone` with a masked-LM head, logits at masked positions.

    The head is keras-hub's `MaskedLMHead` (`models/electra_heads.py`, the
    bias inside the product on PyTorch): dense to the embedding width, GELU,
    LayerNorm, then the transposed token embedding (tied weights) plus a
    bias, as in the original. Vocabulary logits are computed only at
    `mask_positions`, never over the whole sequence.

    Takes `{"token_ids", "segment_ids", "padding_mask", "mask_positions"}` and
    returns logits of shape `(batch, num_masked, vocab_size)`. With an
    `ElectraMaskedLMPreprocessor`, `fit` and `evaluate` also take raw strings
    (masked at random) and `fill_mask` fills in `[MASK]`s written in text;
    packed inputs (a dict) skip the preprocessor.

    `fit`, `evaluate` and `predict` take NumPy arrays, `tf.data`, Python
    generators and `keras.utils.PyDataset`s (and strings, with a
    preprocessor), and check token ids, sequence lengths and the labels
    (the masked tokens' ids, in `[0, vocab_size)`) before they reach the
    device (generators and `PyDataset`s each batch on the host as it is
    drawn), with a `ValueError` (see `CheckedInputs`).

    Args:
        backbone: `ElectraBackbone`.
        preprocessor: `ElectraMaskedLMPreprocessor` or `None`.

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
    preprocessor_cls = ElectraMaskedLMPreprocessor
    sparse_label_rank = 2  # The ids of each sequence's masked tokens.

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        backbone.pooled_dense.trainable = False  # Unused here.
        self.preprocessor = preprocessor
        self.masked_lm_head = MaskedLMHead(
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

    def _label_limits(self):
        # The labels are token ids: the head has one logit per id.
        ignore_class = getattr(self.loss, "ignore_class", None)
        return self.backbone.vocab_size, ignore_class

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a built-in name, a keras-hub preset or a directory.

        The preset's tokenizer, if any, becomes an
        `ElectraMaskedLMPreprocessor` (`sequence_length` and the masking
        settings default to the saved preprocessor's; `sequence_length` else
        to 512 or the backbone's `max_sequence_length` if shorter).

        A directory written by `ElectraPretrainer.save_to_preset` (it has a
        `pretrainer.json` and a `generator/` subfolder) gives the trained
        generator of `generator/`, with the tokenizer of the root. Note that
        a built-in name gives a generator of the *discriminator's* size;
        `ElectraPretrainer` derives the generator from `generator_size`.

        Example:
        ```python
        import os
        import tempfile
        import keras_electra

        vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",
                      "cat", "sat"]
        pretrainer = keras_electra.ElectraPretrainer(
            keras_electra.ElectraBackbone(
                vocab_size=len(vocabulary), num_layers=1, num_heads=2,
                hidden_dim=16, embedding_dim=8, intermediate_dim=32,
                max_sequence_length=16,
            ),
            generator_size=0.5,
            tokenizer=keras_electra.ElectraTokenizer(vocabulary),
        )
        preset = os.path.join(tempfile.mkdtemp(), "pretrained")
        pretrainer.save_to_preset(preset)
        generator = keras_electra.ElectraGenerator.from_preset(preset)
        generator.preprocessor.sequence_length  # 16
        ```
        """
        tokenizer_preset = preset
        preset = preset_loading.pretrainer_generator_preset(preset) or preset
        preprocessor = text_inputs.preprocessor_from_preset(
            cls.preprocessor_cls,
            preset,
            kwargs,
            SAVED_ARGUMENTS,
            tokenizer_preset=tokenizer_preset,
        )
        if preprocessor is not None:
            kwargs["preprocessor"] = preprocessor
        return preset_loading.load_task(cls, preset, load_weights, kwargs)

    def fill_mask(self, texts, top_k=5):
        """The most likely tokens for each `[MASK]` written in the texts.

        Each text is tokenised with `"[MASK]"` read as the mask token (not as
        word pieces), packed as `[CLS] text [SEP]` to the preprocessor's
        `sequence_length`, and the generator's softmax at each `[MASK]` is
        ranked over the tokenizer's vocabulary (special tokens included).

        Args:
            texts: a string or a list of strings, each with at least one
                `"[MASK]"` within the first `sequence_length - 2` tokens.
            top_k: int. How many tokens to return per `[MASK]`, from 1 to
                the vocabulary size.

        Returns:
            A list with one entry per text (also for a single string): a
            list with one entry per `[MASK]`, in order, each a list of
            `top_k` `(token, probability)` pairs, most likely first
            (`token` a str, `probability` a float).

        Raises:
            ValueError: if the generator has no preprocessor with a
                tokenizer, `texts` is not a string or a list of strings, a
                text is empty, has no `[MASK]` or one beyond the sequence
                length, or `top_k` is out of range.

        Example:
        ```python
        import keras_electra

        vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",
                      "cat", "sat"]
        generator = keras_electra.ElectraGenerator(
            keras_electra.ElectraBackbone(
                vocab_size=len(vocabulary), num_layers=1, num_heads=1,
                hidden_dim=8, embedding_dim=8, intermediate_dim=16,
                max_sequence_length=16,
            ),
            preprocessor=keras_electra.ElectraMaskedLMPreprocessor(
                keras_electra.ElectraTokenizer(vocabulary), sequence_length=8
            ),
        )
        [[first_mask, second_mask]] = generator.fill_mask(
            "a [MASK] [MASK]", top_k=2
        )
        first_mask  # e.g. [("cat", 0.16), ("a", 0.14)] (untrained)
        ```
        """
        texts = text_inputs.check_texts(texts)
        tokenizer = text_inputs.task_tokenizer(self, "fill_mask")
        vocabulary_size = tokenizer.vocabulary_size()
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, (int, np.integer))
            or not 1 <= top_k <= vocabulary_size
        ):
            raise ValueError(
                f"`top_k` must be an integer from 1 to {vocabulary_size} (the "
                f"vocabulary size), got {top_k!r}."
            )
        length = text_inputs.sequence_length(self)
        token_ids = text_inputs.tokenize(
            text_inputs.reading_special_tokens(tokenizer), texts
        )
        positions = [
            _mask_positions(ids, tokenizer.mask_token_id, length, index, text)
            for index, (text, ids) in enumerate(zip(texts, token_ids))
        ]
        x, _ = text_inputs.pack(tokenizer, token_ids, length)
        # Texts with fewer masks repeat their first one; the extra rows of
        # logits are dropped below.
        width = max(len(row) for row in positions)
        x["mask_positions"] = np.array(
            [row + row[:1] * (width - len(row)) for row in positions], "int32"
        )
        logits = np.asarray(self.predict(x, verbose=0), "float64")
        logits -= logits.max(axis=-1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        # Ids past the tokenizer's vocabulary (a padded embedding table) have
        # no token to name.
        probabilities = probabilities[..., :vocabulary_size]
        results = []
        for row, row_positions in zip(probabilities, positions):
            results.append(
                [
                    [
                        (tokenizer.id_to_token(int(i)), float(mask_row[i]))
                        for i in np.argsort(-mask_row, kind="stable")[:top_k]
                    ]
                    for mask_row in row[: len(row_positions)]
                ]
            )
        return results


def _mask_positions(token_ids, mask_token_id, sequence_length, index, text):
    """Positions of the mask ids in `[CLS] token_ids [SEP]`, or a
    `ValueError` for a text without any within `sequence_length`."""
    if mask_token_id not in token_ids:
        raise ValueError(
            f"Text {index} has no [MASK] to fill: {text!r:.80}. Write "
            '"[MASK]" where `fill_mask` should predict a token.'
        )
    kept = token_ids[: sequence_length - 2]
    if kept.count(mask_token_id) < token_ids.count(mask_token_id):
        raise ValueError(
            f"Text {index} has a [MASK] past its first {sequence_length - 2} "
            f"tokens, which is all a sequence of {sequence_length} holds "
            "with [CLS] and [SEP]; shorten the text."
        )
    return [1 + i for i, token in enumerate(kept) if token == mask_token_id]
