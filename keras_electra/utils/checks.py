"""Input checks shared by every model, pre-training and the data tools.

Out-of-range token ids gather garbage silently on some backends (JAX clamps)
and over-long sequences read past the position table, so inputs are checked
on the host (NumPy) or inside `tf.data` (graph assertions) before they reach
the device. Every message starts with `INPUT_ERROR`, which lets the models
turn a failed `tf.data` assertion back into a `ValueError`.
"""

import importlib.util

import keras
import numpy as np

INPUT_ERROR = "Bad ELECTRA input:"


def check_token_ids(token_ids, vocab_size, max_sequence_length):
    """Raise a `ValueError` if `token_ids` (an array) cannot be embedded."""
    ids = np.asarray(keras.ops.convert_to_numpy(token_ids))
    if ids.ndim and ids.shape[-1] > max_sequence_length:
        raise ValueError(
            f"{INPUT_ERROR} sequences of length {ids.shape[-1]} are longer "
            f"than the model's `max_sequence_length` ({max_sequence_length})."
        )
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"{INPUT_ERROR} token ids must be in [0, {vocab_size}) "
            f"(vocabulary size {vocab_size}); found ids from {ids.min()} to "
            f"{ids.max()}."
        )


def tf_check_token_ids(tf, token_ids, vocab_size, max_sequence_length):
    """`token_ids` (a graph tensor) after asserting what `check_token_ids`
    checks."""
    checks = [
        tf.debugging.assert_less_equal(
            tf.shape(token_ids)[-1],
            max_sequence_length,
            message=f"{INPUT_ERROR} sequences are longer than the model's "
            f"`max_sequence_length` ({max_sequence_length}).",
        ),
        tf.debugging.assert_non_negative(
            token_ids, message=f"{INPUT_ERROR} token ids below 0."
        ),
        tf.debugging.assert_less(
            token_ids,
            tf.cast(vocab_size, token_ids.dtype),
            message=f"{INPUT_ERROR} token ids >= the vocabulary size "
            f"{vocab_size}.",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(token_ids)


def require_tensorflow(name):
    """Raise an `ImportError` saying that `name` needs TensorFlow (the
    tokenizers and `tf.data` pipelines run on TensorFlow whatever the Keras
    backend)."""
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError(
            f"`{name}` needs TensorFlow and tensorflow-text "
            "(`pip install tensorflow tensorflow-text`)."
        )
