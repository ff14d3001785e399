"""The models' inputs: every kind `keras.Model` takes, checked
(`CheckedInputs`); raw text into packed inputs, for the models' text
methods (`ElectraGenerator.fill_mask`, `ElectraDiscriminator.score_tokens`);
and a preset's tokenizer attached as a task's preprocessor."""

import keras
import numpy as np
from keras_electra.utils import checks
from keras_electra.utils import keras_compat
from keras_electra.utils import preset_loading
from keras_electra.utils.keras_compat import preset_utils

from keras_electra.models.electra_tokenizer import has_tokenizer


class PackedInputsPassThrough:
    """Mixin for keras-hub tasks: packed inputs (a dict such as
    `{"token_ids", ...}`) skip the preprocessor.

    So a task that got a preprocessor from its preset's tokenizer still
    takes the packed inputs it took without one; strings are preprocessed.
    """

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if isinstance(x, dict):
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        return super().preprocess_samples(x, y, sample_weight)


class CheckedInputs:
    """Mixin for keras-hub tasks: `fit`, `evaluate` and `predict` take what
    `keras.Model`'s take, and check every batch before it reaches the
    device.

    Inputs: NumPy arrays (or dicts of them), a `tf.data.Dataset`, a Python
    generator or a `keras.utils.PyDataset` of batches, and raw strings where
    the model has a preprocessor. keras-hub's `Task` refuses generators and
    `PyDataset`s; here they go to `keras.Model` directly, each batch
    through the model's preprocessing.

    Checks (`keras_electra.utils.checks.InputChecker`): token ids in
    `[0, vocab_size)`, at most `max_sequence_length` tokens, and, for
    classifiers, sparse labels in `[0, num_classes)` (or the compiled loss'
    `ignore_class`). When:
    - arrays: the whole arrays at once, before anything runs (strings'
      labels too, and their packed ids as each batch is read);
    - `tf.data`: as each batch is read; a static sequence length that is
      too long at once. On TensorFlow the first batch is read inside the
      first step, which then fails before any gradient is applied;
    - generators and `PyDataset`s: each batch on the host as it is drawn,
      after the preprocessor, before it reaches the device.

    A failed check raises a `ValueError` starting with
    `checks.INPUT_ERROR`, the same text on every path and backend.

    Packed inputs as arrays that preprocessing passes through go straight
    to `keras.Model`: keras-hub's `tf.data` pipeline would only copy them,
    and on 2 cores its threads cost up to a second a `predict` call. The
    `tf.data` pipelines that `fit`, `evaluate` and `predict` read are not
    autotuned (`checks.untuned_inputs`): datasets and strings on every
    backend, arrays on TensorFlow.
    """

    # Rank of a batch of sparse (class index) labels.
    sparse_label_rank = 1

    def input_checker(self):
        """The `InputChecker` for this model's backbone (and labels)."""
        limits = self._label_limits()
        return checks.InputChecker(
            self.backbone.vocab_size,
            self.backbone.max_sequence_length,
            *(limits or (None, None)),
            label_rank=self.sparse_label_rank,
        )

    def _label_limits(self):
        """`(num_classes, ignore_class)`, or `None` if labels are not class
        indices."""
        num_classes = getattr(self, "num_classes", None)
        if num_classes is None or num_classes < 2:
            return None
        return num_classes, getattr(self.loss, "ignore_class", None)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        # Every batch of every input kind passes here, after the
        # preprocessor: in `tf.data` for arrays, strings and datasets, on
        # the host for generators and `PyDataset`s.
        data = super().preprocess_samples(x, y, sample_weight)
        return self.input_checker().check_batch(
            *keras.utils.unpack_x_y_sample_weight(data)
        )

    def fit(self, x=None, y=None, *args, **kwargs):
        validation = kwargs.get("validation_data")
        # Before `input_errors`, which keeps the optimizer's state on JAX
        # only if it exists when entered.
        keras_compat.build_optimizer(self)
        with checks.input_errors(self, kwargs):
            if (
                checks.is_batch_stream(x)
                or checks.is_batch_stream(validation)
                or self._takes_as_is(x)
            ):
                x, y, kwargs["sample_weight"] = self._for_keras(
                    x, y, kwargs.get("sample_weight")
                )
                if validation is not None:
                    validation = self._for_keras(
                        *keras.utils.unpack_x_y_sample_weight(validation)
                    )
                    kwargs["validation_data"] = (
                        keras.utils.pack_x_y_sample_weight(*validation)
                    )
                x, y, kwargs = checks.untuned_inputs("fit", x, y, kwargs)
                return keras.Model.fit(
                    self, x, y, *args, **checks.fit_arguments(x, kwargs)
                )
            self._check_arrays(x, y)
            if validation is not None:
                self._check_arrays(
                    *keras.utils.unpack_x_y_sample_weight(validation)[:2]
                )
            # keras-hub's `Task.fit` makes a dataset of any input, so
            # Keras' own shuffling never applies (it would only warn).
            x, y, kwargs = checks.untuned_inputs(
                "fit", x, y, kwargs, rows=True
            )
            kwargs.pop("shuffle", None)
            return super().fit(x, y, *args, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        kwargs = checks.by_name("evaluate", args, kwargs)
        if kwargs.get("_use_cached_eval_dataset"):
            # `fit`'s validation data, prepared there.
            return super().evaluate(x, y, **kwargs)
        with checks.input_errors(self, kwargs):
            if checks.is_batch_stream(x) or self._takes_as_is(x):
                x, y, kwargs["sample_weight"] = self._for_keras(
                    x, y, kwargs.get("sample_weight")
                )
                x, y, kwargs = checks.untuned_inputs("evaluate", x, y, kwargs)
                return keras.Model.evaluate(self, x, y, **kwargs)
            self._check_arrays(x, y)
            x, y, kwargs = checks.untuned_inputs(
                "evaluate", x, y, kwargs, rows=True
            )
            return super().evaluate(x, y, **kwargs)

    def predict(self, x, *args, **kwargs):
        kwargs = checks.by_name("predict", args, kwargs)
        with checks.input_errors(self, kwargs):
            if checks.is_batch_stream(x) or self._takes_as_is(x):
                x = self._for_keras(x)[0]
                x, _, kwargs = checks.untuned_inputs(
                    "predict", x, None, kwargs
                )
                return keras.Model.predict(self, x, **kwargs)
            self._check_arrays(x, None)
            x, _, kwargs = checks.untuned_inputs(
                "predict", x, None, kwargs, rows=True
            )
            return super().predict(x, **kwargs)

    def _takes_as_is(self, x):
        """Whether `x` is packed inputs as arrays (a dict of NumPy arrays
        or tensors) that preprocessing passes through unchanged."""
        passes_through = isinstance(self, PackedInputsPassThrough) or (
            getattr(self, "preprocessor", None) is None
        )
        return (
            passes_through
            and isinstance(x, dict)
            and all(
                isinstance(value, np.ndarray) or keras.ops.is_tensor(value)
                for value in x.values()
            )
        )

    def _check_arrays(self, x, y):
        # Datasets are checked in `preprocess_samples` as they are read.
        if x is not None and not checks.is_tf_dataset(x):
            self.input_checker().check_batch(x, y)

    def _for_keras(self, x, y=None, sample_weight=None):
        """`(x, y, sample_weight)` preprocessed and checked, for
        `keras.Model`'s `fit` (which skips keras-hub's preprocessing)."""
        if checks.is_batch_stream(x):
            x = checks.checked_batches(x, self.preprocess_samples)
            return x, y, sample_weight
        if checks.is_tf_dataset(x):
            return x.map(self.preprocess_samples), y, sample_weight
        data = self.preprocess_samples(x, y, sample_weight)
        return keras.tree.map_structure(
            checks.to_host, keras.utils.unpack_x_y_sample_weight(data)
        )


def check_texts(texts):
    """`texts` as a list of non-empty strings, or a `ValueError` saying why
    not.

    Args:
        texts: a string or a list (or tuple) of strings.

    Returns:
        list of str.

    Example:
    ```python
    from keras_electra.models.electra_text_inputs import check_texts

    check_texts("a cat")  # ["a cat"]
    check_texts(["a cat", "a dog"])  # ["a cat", "a dog"]
    ```
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not all(
        isinstance(text, str) for text in texts
    ):
        raise ValueError(
            "`texts` must be a string or a list of strings, got "
            f"{_describe(texts)}."
        )
    if not texts:
        raise ValueError("`texts` is an empty list; pass at least one text.")
    for index, text in enumerate(texts):
        if not text.strip():
            raise ValueError(
                f"Text {index} is empty ({text!r}); every text needs at "
                "least one word."
            )
    return list(texts)


def task_tokenizer(task, method):
    """The tokenizer of `task`'s preprocessor, or a `ValueError` naming
    `method`, which needs it."""
    tokenizer = getattr(task.preprocessor, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(
            f"`{method}` needs a tokenizer, and this "
            f"`{type(task).__name__}` has no preprocessor with one. Load it "
            "with `from_preset` from a preset that holds a tokenizer, or "
            "pass `preprocessor=` when building it."
        )
    return tokenizer


def reading_special_tokens(tokenizer):
    """`tokenizer`, or a copy of it that reads special tokens written in the
    text (`"[MASK]"` as the mask id, not as `"[", "mask", "]"`)."""
    if tokenizer.special_tokens_in_strings:
        return tokenizer
    config = tokenizer.get_config()
    config.update(
        vocabulary=tokenizer.get_vocabulary(), special_tokens_in_strings=True
    )
    return type(tokenizer).from_config(config)


def tokenize(tokenizer, texts):
    """Token ids of each text, as lists of Python ints."""
    ids = tokenizer(texts)
    if hasattr(ids, "to_list"):  # A `tf.RaggedTensor`.
        ids = ids.to_list()
    return [[int(i) for i in row] for row in ids]


def pack(tokenizer, token_ids, sequence_length):
    """`[CLS] ids [SEP]` per row, truncated and padded to `sequence_length`.

    Args:
        tokenizer: the tokenizer that gave `token_ids` (for its special ids).
        token_ids: list of lists of ints.
        sequence_length: int >= 3.

    Returns:
        `({"token_ids", "segment_ids", "padding_mask"}, lengths)`: int32
        arrays of shape `(len(token_ids), sequence_length)`, and how many of
        each row's ids were kept.

    Example:
    ```python
    import keras_electra
    from keras_electra.models.electra_text_inputs import pack

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat"]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary)
    x, lengths = pack(tokenizer, [[5, 6, 5, 6], [6]], sequence_length=4)
    x["token_ids"].tolist()  # [[2, 5, 6, 3], [2, 6, 3, 0]]
    lengths  # [2, 1]
    ```
    """
    token_ids_out = np.full(
        (len(token_ids), sequence_length), tokenizer.pad_token_id, "int32"
    )
    padding_mask = np.zeros_like(token_ids_out)
    lengths = []
    for row, ids in enumerate(token_ids):
        ids = ids[: sequence_length - 2]
        packed = [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
        token_ids_out[row, : len(packed)] = packed
        padding_mask[row, : len(packed)] = 1
        lengths.append(len(ids))
    x = {
        "token_ids": token_ids_out,
        "segment_ids": np.zeros_like(token_ids_out),
        "padding_mask": padding_mask,
    }
    return x, lengths


def sequence_length(task):
    """The length `task`'s text methods pack to: its preprocessor's, at most
    the backbone's `max_sequence_length`."""
    longest = task.backbone.max_sequence_length
    length = getattr(task.preprocessor, "sequence_length", None)
    return min(length or longest, longest)


def preprocessor_from_preset(
    preprocessor_cls, preset, kwargs, argument_names, tokenizer_preset=None
):
    """The preprocessor `from_preset(preset, **kwargs)` attaches to a task,
    or `None` if the preset has no tokenizer (or `kwargs` has a
    `preprocessor`).

    Pops the preprocessor's arguments (`argument_names`) from `kwargs`.
    `sequence_length` defaults to the saved preprocessor's, else to 512 or
    the backbone's `max_sequence_length` if shorter. The tokenizer (and
    saved preprocessor settings) come from `tokenizer_preset`, default
    `preset`.
    """
    tokenizer_preset = tokenizer_preset or preset
    if "preprocessor" in kwargs:
        return None
    if preset in preprocessor_cls.backbone_cls.builtin_presets:
        return None
    preset_loading.check_preset(
        preset, preprocessor_cls.backbone_cls.builtin_presets
    )
    if not has_tokenizer(tokenizer_preset):
        return None
    preprocessor_kwargs = {
        name: kwargs.pop(name) for name in argument_names if name in kwargs
    }
    if "sequence_length" not in preprocessor_kwargs and not (
        preset_utils.check_file_exists(
            tokenizer_preset, preset_utils.PREPROCESSOR_CONFIG_FILE
        )
    ):
        longest = kwargs.get(
            "max_sequence_length"
        ) or preset_loading.max_sequence_length(
            preset, preprocessor_cls.backbone_cls.builtin_presets
        )
        preprocessor_kwargs["sequence_length"] = min(512, longest or 512)
    return preprocessor_cls.from_preset(tokenizer_preset, **preprocessor_kwargs)


def _describe(value):
    if isinstance(value, (list, tuple)):
        bad = next(v for v in value if not isinstance(v, str))
        return (
            f"a {type(value).__name__} holding a {type(bad).__name__} "
            f"({bad!r:.60})"
        )
    return f"a {type(value).__name__} ({value!r:.60})"
