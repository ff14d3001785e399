"""Per-token classification (NER, chunking) with ELECTRA."""

import keras
import keras_hub
import numpy as np

from keras_electra.utils import preset_loading
from keras_electra.models.electra_backbone import ElectraBackbone
from keras_electra.models.electra_backbone import electra_kernel_initializer
from keras_electra.models.electra_text_inputs import CheckedInputs
from keras_electra.models.electra_optimizer import electra_adamw


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTokenClassifier(
    CheckedInputs, preset_loading.SavesAtomically, keras_hub.models.Task
):
    """An ELECTRA encoder with dropout and a dense layer on every token.

    The head has the shape of Hugging Face's
    `ElectraForTokenClassification`. Train it on word-level labels with
    `align_word_labels`, which labels each word's first piece and gives the
    other pieces (and `[CLS]`, `[SEP]`, padding) zero weight.

    Like `ElectraTextClassifier`, `fit`, `evaluate` and `predict` take
    NumPy arrays, `tf.data`, Python generators and `keras.utils.PyDataset`s,
    and check token ids, sequence lengths and labels (in `[0, num_classes)`,
    or the compiled loss' `ignore_class`) before they reach the device
    (generators and `PyDataset`s each batch on the host as it is drawn),
    with a `ValueError` (see `CheckedInputs`).

    Args:
        backbone: `ElectraBackbone`.
        num_classes: int >= 2.
        dropout: float. Dropout before the output layer.

    Example:
    ```python
    import keras_electra

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna",
                  "lives", "in", "ber", "##lin"]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    x, y, sample_weight = keras_electra.align_word_labels(
        tokenizer, [["Anna", "lives", "in", "Berlin"]], [[1, 0, 0, 2]],
        sequence_length=8,
    )
    y.tolist()  # [[0, 1, 0, 0, 2, 0, 0, 0]]: "##lin" is not labelled
    classifier = keras_electra.ElectraTokenClassifier(
        keras_electra.ElectraBackbone.from_preset(
            "electra_tiny", vocab_size=len(vocabulary)
        ),
        num_classes=3,
    )
    classifier.fit(x, y, sample_weight=sample_weight, verbose=0)
    classifier.predict(x, verbose=0).shape  # (1, 8, 3)
    ```
    """

    backbone_cls = ElectraBackbone
    sparse_label_rank = 2  # One class index per token.

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"`num_classes` must be an integer >= 2, got {num_classes!r}."
            )
        # === Layers ===
        self.backbone = backbone
        backbone.pooled_dense.trainable = False  # Unused here.
        self.classifier_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=electra_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

        # === Functional Model ===
        inputs = backbone.input
        x = self.classifier_dropout(backbone(inputs)["sequence_output"])
        super().__init__(inputs=inputs, outputs=self.output_dense(x), **kwargs)

    def compile(
        self, optimizer="auto", loss="auto", *, weighted_metrics="auto", **kwargs
    ):
        """Defaults: AdamW(1e-4, epsilon 1e-6, weight decay 0.01 off LayerNorm
        and bias), cross-entropy and accuracy weighted by `sample_weight`."""
        if optimizer == "auto":
            optimizer = electra_adamw(learning_rate=1e-4)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a preset; pass `num_classes` unless the preset holds a
        saved token classifier."""
        return preset_loading.load_task(cls, preset, load_weights, kwargs)


def align_word_labels(tokenizer, sentences, labels, sequence_length):
    """Pack pre-split sentences and move word labels onto word pieces.

    Each word's first piece carries the word's label; its other pieces,
    `[CLS]`, `[SEP]` and padding get label 0 and sample weight 0, so the loss
    and the weighted metrics ignore them. Sentences longer than
    `sequence_length - 2` pieces are cut at a word boundary.

    Args:
        tokenizer: an `ElectraTokenizer`.
        sentences: list of sentences, each a list of words.
        labels: list of per-word integer label lists, same shapes.
        sequence_length: int. Length of the packed sequences.

    Returns:
        `(x, y, sample_weight)`: `x` the model's input dict, `y` and
        `sample_weight` arrays of shape `(len(sentences), sequence_length)`.
    """
    if len(sentences) != len(labels):
        raise ValueError(
            f"Got {len(sentences)} sentences but {len(labels)} label lists."
        )
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    pad_id = tokenizer.pad_token_id
    count = len(sentences)
    token_ids = np.full((count, sequence_length), pad_id, "int32")
    y = np.zeros((count, sequence_length), "int32")
    sample_weight = np.zeros((count, sequence_length), "float32")
    for row, (words, word_labels) in enumerate(zip(sentences, labels)):
        if len(words) != len(word_labels):
            raise ValueError(
                f"Sentence {row} has {len(words)} words but "
                f"{len(word_labels)} labels."
            )
        ids, position = [cls_id], 1
        for word, label in zip(words, word_labels):
            pieces = np.asarray(tokenizer(word)).tolist() or [
                tokenizer.token_to_id(tokenizer.oov_token)
            ]
            if position + len(pieces) > sequence_length - 1:
                break
            y[row, position] = label
            sample_weight[row, position] = 1.0
            ids += pieces
            position += len(pieces)
        ids.append(sep_id)
        token_ids[row, : len(ids)] = ids
    x = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": (token_ids != pad_id).astype("int32"),
    }
    return x, y, sample_weight
