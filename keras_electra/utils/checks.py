"""The one input checker, shared by every model, pre-training and the data
tools.

Out-of-range token ids gather garbage silently on some backends (JAX
clamps), over-long sequences read past the position table, and labels
outside `[0, num_classes)` give a wrong loss, so inputs are checked before
they reach the device, whatever their kind (`InputChecker`):

- NumPy arrays (or dicts of them): the whole arrays at once, on the host.
- `tf.data` pipelines: graph assertions, as each batch is read; a static
  sequence length that is too long fails at once, when the pipeline is
  built (TensorFlow would otherwise fail tracing the gradient, "Paddings
  must be non-negative").
- Python generators and `keras.utils.PyDataset`s: each batch on the host as
  it is drawn (`checked_batches`).

Every message starts with `INPUT_ERROR` and reads the same on every path:
`input_errors` turns a failed graph assertion, whatever the backend wraps
it in, back into a `ValueError` with the host check's text.

The inputs then reach Keras through `tf.data` pipelines that are not
autotuned (`untuned_inputs`): with TensorFlow 2.21, an autotuned pipeline
could hold up the end of a `fit`, `evaluate` or `predict` call for
seconds.
"""

import contextlib
import importlib.util
import sys
import types

import keras
import numpy as np

from keras_electra.utils import keras_compat

INPUT_ERROR = "Bad ELECTRA input:"


def check_sequence_length(length, max_sequence_length):
    """Raise a `ValueError` if sequences of `length` tokens do not fit the
    position table."""
    if length > max_sequence_length:
        raise ValueError(
            f"{INPUT_ERROR} sequences of length {length} "
            f"{_too_long(max_sequence_length)}."
        )


def check_token_ids(token_ids, vocab_size, max_sequence_length):
    """Raise a `ValueError` if `token_ids` (an array) cannot be embedded."""
    ids = _to_numpy(token_ids)
    if ids.ndim:
        check_sequence_length(ids.shape[-1], max_sequence_length)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"{_ids_out_of_range(vocab_size)} {ids.min()} to {ids.max()}."
        )


def tf_check_token_ids(tf, token_ids, vocab_size, max_sequence_length):
    """`token_ids` (a graph tensor) after asserting what `check_token_ids`
    checks; a static length that is too long raises at once."""
    if token_ids.shape.rank and token_ids.shape[-1] is not None:
        check_sequence_length(token_ids.shape[-1], max_sequence_length)
    length = tf.shape(token_ids)[-1]
    low, high = tf.reduce_min(token_ids), tf.reduce_max(token_ids)
    in_range = tf.logical_or(
        tf.equal(tf.size(token_ids), 0),
        tf.logical_and(low >= 0, high < tf.cast(vocab_size, token_ids.dtype)),
    )
    # Printed as "[text] [value] [text]", which `input_errors` joins back
    # into the host check's message.
    checks = [
        tf.debugging.Assert(
            length <= max_sequence_length,
            [
                f"{INPUT_ERROR} sequences of length",
                length,
                _too_long(max_sequence_length),
            ],
        ),
        tf.debugging.Assert(
            in_range, [_ids_out_of_range(vocab_size), low, "to", high]
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(token_ids)


def check_labels(labels, num_classes, ignore_class=None, sparse_rank=1):
    """Raise a `ValueError` if sparse labels are not class indices in
    `[0, num_classes)` (or `ignore_class`); other labels (one-hot,
    regression targets, strings) are left alone."""
    try:
        labels = _to_numpy(labels)
    except Exception:
        return  # Not an array: left to Keras.
    if not _is_sparse_labels(labels, sparse_rank):
        return
    valid = (labels >= 0) & (labels < num_classes) & (labels % 1 == 0)
    if ignore_class is not None:
        valid |= labels == ignore_class
    if not valid.all():
        bad = labels[~valid].flat[0]
        raise ValueError(f"{_labels_out_of_range(num_classes)} {bad}.")


def tf_check_labels(tf, labels, num_classes, ignore_class=None, sparse_rank=1):
    """`labels` (a graph tensor) after asserting what `check_labels`
    checks."""
    if not _is_sparse_labels(labels, sparse_rank):
        return labels
    valid = tf.logical_and(
        labels >= 0, labels < tf.cast(num_classes, labels.dtype)
    )
    if labels.dtype.is_floating:
        valid = tf.logical_and(valid, tf.equal(labels, tf.floor(labels)))
    if ignore_class is not None:
        ignored = tf.equal(labels, tf.cast(ignore_class, labels.dtype))
        valid = tf.logical_or(valid, ignored)
    bad = tf.boolean_mask(labels, tf.logical_not(valid))
    # The first bad label, or a placeholder (never printed) when none is.
    first = tf.concat([tf.reshape(bad, [-1]), tf.zeros([1], labels.dtype)], 0)
    check = tf.debugging.Assert(
        tf.reduce_all(valid), [_labels_out_of_range(num_classes), first[0]]
    )
    with tf.control_dependencies([check]):
        return tf.identity(labels)


class InputChecker:
    """What a model can take: token ids in `[0, vocab_size)`, at most
    `max_sequence_length` tokens, and (for a classifier) sparse labels in
    `[0, num_classes)`.

    `check_batch` checks one batch, on the host or in a `tf.data` graph;
    `checked` checks data of any kind `keras.Model.fit` takes (for a
    generator or a `PyDataset`, each batch on the host as it is drawn).

    Args:
        vocab_size: int.
        max_sequence_length: int.
        num_classes: int or `None` (labels are not class indices).
        ignore_class: int or `None`. A label the loss skips, also allowed.
        label_rank: int. Rank of a batch of sparse labels: 1 for one label
            per sequence, 2 for one per token.

    Example:
    ```python
    import numpy as np
    from keras_electra.utils.checks import InputChecker

    checker = InputChecker(vocab_size=100, max_sequence_length=8)
    checker.check_batch({"token_ids": np.array([[2, 7, 3]])})  # passes
    try:
        checker.check_batch({"token_ids": np.array([[2, 700, 3]])})
    except ValueError as error:
        message = str(error)  # "Bad ELECTRA input: token ids must be in ..."
    ```
    """

    def __init__(
        self,
        vocab_size,
        max_sequence_length,
        num_classes=None,
        ignore_class=None,
        label_rank=1,
    ):
        self.vocab_size = vocab_size
        self.max_sequence_length = max_sequence_length
        self.num_classes = num_classes
        self.ignore_class = ignore_class
        self.label_rank = label_rank

    def check_batch(self, x, y=None, sample_weight=None):
        """`(x, y, sample_weight)`, packed as Keras packs a batch, once
        checked.

        Host values (NumPy, lists, eager tensors of any backend) are checked
        at once; graph tensors (inside `tf.data.Dataset.map`) get assertions
        that fail when the batch is read, and a static length that is too
        long fails at once. Only `x["token_ids"]` and sparse labels `y` are
        checked.

        Raises:
            ValueError: if a check fails (at once, not for assertions).
        """
        if isinstance(x, dict) and "token_ids" in x:
            limits = (self.vocab_size, self.max_sequence_length)
            tf = _graph_tensorflow(x["token_ids"])
            if tf is None:
                check_token_ids(x["token_ids"], *limits)
            else:
                token_ids = tf_check_token_ids(tf, x["token_ids"], *limits)
                x = {**x, "token_ids": token_ids}
        if self.num_classes is not None and y is not None:
            limits = (self.num_classes, self.ignore_class, self.label_rank)
            tf = _graph_tensorflow(y)
            if tf is None:
                check_labels(y, *limits)
            else:
                y = tf_check_labels(tf, y, *limits)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def checked(self, x, y=None):
        """`(x, y)` as `keras.Model.fit` takes them, checked: arrays at
        once, a `tf.data.Dataset` as each batch is read, a generator or a
        `keras.utils.PyDataset` each batch on the host as it is drawn."""
        if is_tf_dataset(x):
            return x.map(self.check_batch), y
        if is_batch_stream(x):
            return checked_batches(x, self.check_batch), y
        if x is not None:
            self.check_batch(x, y)
        return x, y

    def checked_validation(self, data):
        """`validation_data` (a dataset, a stream, or a tuple
        `(x, y[, sample_weight])`) as `checked` leaves it."""
        if data is None:
            return None
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = self.checked(x, y)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


def is_tf_dataset(data):
    # Only a tf.data pipeline can be a Dataset, and then TF is loaded.
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def is_batch_stream(data):
    """Whether `data` is a Python generator or a `keras.utils.PyDataset`,
    the batch streams `keras.Model.fit` takes (and keras-hub tasks do
    not)."""
    return isinstance(data, (types.GeneratorType, keras.utils.PyDataset))


def fit_arguments(x, kwargs):
    """`kwargs` of `keras.Model.fit(x, ...)`, with `shuffle` off by default
    where `x` is a `tf.data.Dataset`, a generator or a `PyDataset`: those
    shuffle in their own pipeline, and Keras' default `shuffle=True` only
    warns that it is ignored. An explicit `shuffle` is kept."""
    if is_tf_dataset(x) or is_batch_stream(x):
        return {"shuffle": False, **kwargs}
    return kwargs


# `keras.Model.evaluate`'s and `predict`'s arguments after `x` (and `y`), in
# their order.
_POSITIONAL_ARGUMENTS = {
    "evaluate": (
        "batch_size", "verbose", "sample_weight", "steps", "callbacks",
        "return_dict",
    ),
    "predict": ("batch_size", "verbose", "steps", "callbacks"),
}


def by_name(method, args, kwargs):
    """`kwargs` of `keras.Model`'s `method` ("evaluate" or "predict") with
    its positional `args` after `x` (and `y`) added by name."""
    return {**dict(zip(_POSITIONAL_ARGUMENTS[method], args)), **kwargs}


def untuned(dataset):
    """`dataset` with `tf.data`'s autotuning off, unless its options already
    say whether to autotune.

    Deleting an iterator over an autotuned pipeline, as `fit`, `evaluate`
    and `predict` do when they end, waits out the autotuning thread's
    current pause, which doubles as the pipeline runs (up to a minute).
    With TensorFlow 2.21 short `fit` calls of `electra_small` lasted
    seconds past their last step, up to about their own length: most of
    them on the TensorFlow backend, some on JAX and PyTorch
    (benchmarks/RESULTS.md, "The end of every `fit`"). Untuned, `AUTOTUNE`
    parallelism is the core count, prefetch buffers size themselves, and
    the steps ran as fast.

    Example:
    ```python
    import tensorflow as tf
    from keras_electra.utils.checks import untuned

    untuned(tf.data.Dataset.range(4)).options().autotune.enabled  # False
    ```
    """
    import tensorflow as tf

    if dataset.options().autotune.enabled is not None:
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def untuned_inputs(method, x, y, kwargs, rows=False):
    """`(x, y, kwargs)` of `keras.Model`'s `method` (`"fit"`, `"evaluate"`
    or `"predict"`) with every `tf.data` pipeline they are read through
    `untuned`.

    - Datasets (`x`, and `fit`'s `validation_data`): on every backend.
    - With `rows`, arrays and strings that a keras-hub task would batch
      with `tf.data` (in order) on every backend: as `row_batches`.
    - Arrays that Keras reads through a pipeline of its own, on TensorFlow:
      as the same batches (`keras_compat.array_batches`).

    Converted inputs have `batch_size`, `sample_weight` and, for `fit`,
    `shuffle`, `class_weight`, `validation_split` and
    `validation_batch_size` applied and taken out of `kwargs`. Generators,
    `PyDataset`s, and arrays on the other backends (read without
    `tf.data`) pass unchanged.
    """
    kwargs = dict(kwargs)
    batch_size = kwargs.get("batch_size")
    fitting = method == "fit"
    if is_tf_dataset(x):
        x = untuned(x)
    elif rows and x is not None and not is_batch_stream(x):
        shuffle = kwargs.pop("shuffle", True) if fitting else False
        x, y = row_batches(x, y, kwargs, shuffle, split=fitting), None
    elif _read_by_keras_through_tf_data(x, y):
        sample_weight = kwargs.pop("sample_weight", None)
        steps, shuffle, class_weight = kwargs.get("steps"), False, None
        if fitting:
            steps = kwargs.get("steps_per_epoch")
            shuffle = kwargs.pop("shuffle", True)
            class_weight = kwargs.pop("class_weight", None)
            split = kwargs.pop("validation_split", None)
            if split and kwargs.get("validation_data") is None:
                (x, y, sample_weight), kwargs["validation_data"] = (
                    keras_compat.train_validation_split(
                        x, y, sample_weight, split
                    )
                )
        batches = keras_compat.array_batches(
            x, y, sample_weight, kwargs.pop("batch_size", None), steps,
            shuffle, class_weight,
        )
        x, y = untuned(batches), None
    validation = kwargs.get("validation_data")
    if validation is not None:
        validation_x, validation_y, validation_weight = (
            keras.utils.unpack_x_y_sample_weight(validation)
        )
        if is_tf_dataset(validation_x):
            kwargs["validation_data"] = untuned(validation_x)
        elif rows or _read_by_keras_through_tf_data(
            validation_x, validation_y
        ):
            kwargs["validation_data"], _, _ = untuned_inputs(
                "evaluate", validation_x, validation_y,
                {
                    "batch_size": kwargs.pop("validation_batch_size", None)
                    or batch_size,
                    "sample_weight": validation_weight,
                    "steps": kwargs.get("validation_steps"),
                },
                rows=rows,
            )
    return x, y, kwargs


def row_batches(x, y, kwargs, shuffle, split=False):
    """Arrays or strings as an untuned `tf.data.Dataset` of batches, in a
    new order every epoch if `shuffle` (as `keras.Model.fit(shuffle=True)`
    reads them; keras-hub's `Task.fit` batches them in order, and Keras then
    only warns that `shuffle` is ignored).

    Takes `batch_size`, `sample_weight` and, with `split`,
    `validation_split` out of `kwargs` and applies them (the last rows
    become the validation data, as in Keras, put in `kwargs`).
    """
    import tensorflow as tf

    rows = tf.data.Dataset.from_tensor_slices(
        keras.utils.pack_x_y_sample_weight(
            x, y, kwargs.pop("sample_weight", None)
        )
    )
    batch_size = kwargs.pop("batch_size", None) or 32
    count = int(rows.cardinality())
    validation_split = kwargs.pop("validation_split", None) if split else None
    if validation_split and kwargs.get("validation_data") is None:
        training_rows = int(count * (1 - validation_split))
        kwargs["validation_data"] = untuned(
            rows.skip(training_rows).batch(batch_size)
        )
        rows, count = rows.take(training_rows), training_rows
    if shuffle:
        rows = rows.shuffle(count, reshuffle_each_iteration=True)
    return untuned(rows.batch(batch_size))


def _read_by_keras_through_tf_data(x, y):
    """Whether Keras reads `(x, y)`, arrays (not datasets or batch streams),
    through a `tf.data` pipeline of its own: on TensorFlow."""
    return (
        keras.config.backend() == "tensorflow"
        and x is not None
        and keras_compat.are_arrays(x, y)
    )


def checked_batches(data, per_batch):
    """A generator or `keras.utils.PyDataset` like `data` whose batches go
    through `per_batch(x, y, sample_weight)` (which checks them) on the host
    as they are drawn, before they reach the device."""
    if isinstance(data, keras.utils.PyDataset):
        return _CheckedPyDataset(data, per_batch)
    return _checked_generator(data, per_batch)


def _checked_generator(generator, per_batch):
    for batch in generator:
        yield _checked_batch(batch, per_batch)


class _CheckedPyDataset(keras.utils.PyDataset):
    """`dataset`'s batches through `per_batch`; the same workers, length and
    epoch hooks."""

    def __init__(self, dataset, per_batch):
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset = dataset
        self.per_batch = per_batch

    def __getitem__(self, index):
        return _checked_batch(self.dataset[index], self.per_batch)

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _checked_batch(batch, per_batch):
    batch = per_batch(*keras.utils.unpack_x_y_sample_weight(batch))
    if not isinstance(batch, tuple):
        batch = (batch,)  # Keras' generator adapter takes tuples only.
    return keras.tree.map_structure(to_host, batch)


def to_host(value):
    """`value` as NumPy if it is a TensorFlow tensor (what a preprocessor
    gives, which JAX and torch do not take), else unchanged."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, tf.Tensor):
        return value.numpy()
    return value


@contextlib.contextmanager
def input_errors(model, kwargs):
    """Around `model.fit`, `evaluate` or `predict(**kwargs)`: raise a failed
    input check as the `ValueError` the host check gives, and leave the
    model as it was before the failed step.

    A `tf.data` assertion reaches the caller as a TensorFlow error, and a
    check inside a generator as whatever the backend's data adapter wraps
    it in; both carry `INPUT_ERROR`, from where the message is read back.
    On JAX the model keeps its weights (`keras_compat.weights_kept_on_error`).
    """
    try:
        with keras_compat.weights_kept_on_error(model, kwargs):
            yield
    except Exception as error:
        text = str(error)
        if INPUT_ERROR not in text or (
            isinstance(error, ValueError) and text.startswith(INPUT_ERROR)
        ):
            raise
        message = text[text.index(INPUT_ERROR) :].split("\n")[0]
        message = message.replace("] [", " ").rstrip("]").strip()
        if not message.endswith("."):
            message += "."
        raise ValueError(message) from None


def require_tensorflow(name):
    """Raise an `ImportError` saying that `name` needs TensorFlow (the
    tokenizers and `tf.data` pipelines run on TensorFlow whatever the Keras
    backend)."""
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError(
            f"`{name}` needs TensorFlow and tensorflow-text "
            "(`pip install tensorflow tensorflow-text`)."
        )


def _too_long(max_sequence_length):
    return f"exceed the model's `max_sequence_length` ({max_sequence_length})"


def _ids_out_of_range(vocab_size):
    return (
        f"{INPUT_ERROR} token ids must be in [0, {vocab_size}) (vocabulary "
        f"size {vocab_size}); found ids from"
    )


def _labels_out_of_range(num_classes):
    return (
        f"{INPUT_ERROR} labels must be class indices in [0, {num_classes}) "
        f"for `num_classes={num_classes}`; found"
    )


def _is_sparse_labels(labels, sparse_rank):
    """Class indices, not one-hot vectors, regression targets or strings."""
    try:
        kind = np.dtype(getattr(labels.dtype, "as_numpy_dtype", labels.dtype))
        rank = len(labels.shape)
    except (TypeError, ValueError, AttributeError):
        return False  # Unknown dtype or rank.
    if kind.kind not in "iuf":
        return False
    return rank == sparse_rank or (
        rank == sparse_rank + 1 and labels.shape[-1] == 1
    )


def _graph_tensorflow(value):
    """TensorFlow, if `value` is a graph (symbolic) tensor."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, tf.Tensor):
        if tf.is_symbolic_tensor(value):
            return tf
    return None


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, tf.Tensor):
        return value.numpy()
    if isinstance(value, (list, tuple, int, float)):
        return np.asarray(value)
    return np.asarray(keras.ops.convert_to_numpy(value))
