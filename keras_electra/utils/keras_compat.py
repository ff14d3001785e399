"""The Keras and keras-hub internals keras_electra uses, in one place.

Each is here because no public API does the job yet; the comment beside it
names the public alternative it waits for. Nothing else in the package
imports `keras.src` or `keras_hub.src`.
"""

import contextlib

import keras

# keras-hub's preset files and loaders (`load_json`, `check_file_exists`,
# `get_preset_loader`, `check_config_class`, the file-name constants): the
# machinery behind `from_preset` / `save_to_preset`. Waits for a public
# `keras_hub.utils` preset API (keras-hub exports only `upload_preset`).
from keras_hub.src.utils import preset_utils  # noqa: F401

# The tanh GELU that ELECTRA's released checkpoints use, as keras-hub names
# it for serialisation. Waits for `keras.activations.gelu(approximate=True)`
# to serialise under its own name.
from keras_hub.src.utils.keras_utils import gelu_approximate  # noqa: F401

# A copy of an initializer per sub-layer, so that a seeded one does not give
# two kernels the same values: what keras-hub's `TransformerEncoder.build`
# uses, for `models/electra_transformer_encoder.py`, which builds that layer
# with our attention. Waits for a public `keras.initializers` clone.
from keras_hub.src.utils.keras_utils import clone_initializer  # noqa: F401

# keras-hub's merge of a padding mask `(batch, length)` with an attention
# mask `(batch, length, length)`, as its `TransformerEncoder.call` does it:
# our encoder's inference path (`models/electra_transformer_encoder.py`)
# must mask exactly as keras-hub's. Waits for a public keras-hub export.
from keras_hub.src.layers.modeling import transformer_layer_utils

merge_padding_and_attention_mask = (
    transformer_layer_utils.merge_padding_and_attention_mask
)

# The Keras mask a tensor carries (None if none): `ElectraSelfAttention`
# takes `MultiHeadAttention`'s own path for masked inputs, which reads
# them. Waits for a public `keras.backend` accessor of the mask.
from keras.src.backend import get_keras_mask  # noqa: F401

# keras-hub's base class of tokenizers and preprocessors: they run in the
# input pipeline, never in a train step, and `build_optimizer` need not wait
# for them to be built. Waits for a public keras-hub export.
from keras_hub.src.layers.preprocessing.preprocessing_layer import (
    PreprocessingLayer,
)


# Keras' PyTorch backend swaps SGD, Adam, ... for fused subclasses of
# `TorchParallelOptimizer` that update all variables at once, with one
# learning rate, and skip the per-variable `update_step`; `layerwise_decay`
# has to recognise them to give each variable its own rate. Waits for a
# public per-variable learning-rate hook on `keras.optimizers.Optimizer`.
# Imported when called: they import torch.


def torch_parallel_optimizer_class():
    """The base class of Keras' fused PyTorch optimizers.

    Example:
    ```python
    import keras
    from keras_electra.utils import keras_compat

    if keras.config.backend() == "torch":
        fused = keras_compat.torch_parallel_optimizer_class()
        isinstance(keras.optimizers.Adam(), fused)  # True
    ```
    """
    from keras.src.backend.torch.optimizers import torch_parallel_optimizer

    return torch_parallel_optimizer.TorchParallelOptimizer


def torch_stateless_fused_optimizer_classes():
    """The fused PyTorch optimizers whose fused step keeps no state of the
    optimizer as a whole (so it may run once per group of variables).

    Example:
    ```python
    import keras
    from keras_electra.utils import keras_compat

    if keras.config.backend() == "torch":
        stateless = keras_compat.torch_stateless_fused_optimizer_classes()
        type(keras.optimizers.Adam()) in stateless  # True
        type(keras.optimizers.Nadam()) in stateless  # False
    ```
    """
    from keras.src.backend.torch.optimizers import torch_adadelta
    from keras.src.backend.torch.optimizers import torch_adagrad
    from keras.src.backend.torch.optimizers import torch_adam
    from keras.src.backend.torch.optimizers import torch_adamax
    from keras.src.backend.torch.optimizers import torch_adamw
    from keras.src.backend.torch.optimizers import torch_lion
    from keras.src.backend.torch.optimizers import torch_rmsprop
    from keras.src.backend.torch.optimizers import torch_sgd

    return (
        torch_adadelta.Adadelta,
        torch_adagrad.Adagrad,
        torch_adam.Adam,
        torch_adamax.Adamax,
        torch_adamw.AdamW,
        torch_lion.Lion,
        torch_rmsprop.RMSprop,
        torch_sgd.SGD,
    )


def is_backend_specific_class(cls):
    """Whether `cls` is one of Keras' backend-specific classes, as the
    `torch_adam.Adam` that `keras.optimizers.Adam(...)` is on PyTorch.

    Reads Keras' source layout (`keras.src.backend.*`): waits for a public
    way to get the backend-neutral class of an optimizer.

    Example:
    ```python
    import keras
    from keras_electra.utils import keras_compat

    keras_compat.is_backend_specific_class(keras.optimizers.Adam)  # False
    ```
    """
    return cls.__module__.startswith("keras.src.backend.")


# keras-hub's WordPiece pre-tokenizer (normalise, then split on whitespace,
# punctuation and CJK): the exact split that `compute_word_piece_vocabulary`
# learns from and `WordPieceTokenizer` applies. `train_vocabulary` counts
# words itself, at bounded memory, so it needs the split without the
# learner. Waits for a public `keras_hub.tokenizers` pre-tokenizer. Imported
# when called: it needs TensorFlow.


def word_piece_pretokenize():
    """keras-hub's `pretokenize(text, lowercase, strip_accents, split,
    split_on_cjk)`: a batch of strings to a ragged batch of words.

    Example:
    ```python
    import tensorflow as tf
    from keras_electra.utils import keras_compat

    pretokenize = keras_compat.word_piece_pretokenize()
    words = pretokenize(tf.constant(["Héllo, world!"]), True, True, True, True)
    words.to_list()  # [[b'hello', b',', b'world', b'!']]
    ```
    """
    from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize

    return pretokenize


# Keras on TensorFlow, without a distribution strategy, leaves the
# optimizer's variables to the first trace of the train step
# (`_maybe_symbolic_build` returns early there; JAX's trainer builds them
# first). TensorFlow then traces the step twice, once to create them and
# once without: electra_small's first pre-training step took 46-52 s instead
# of 27-28 on a 2-core CPU. Waits for Keras to build the optimizer before
# tracing on TensorFlow too.


def build_optimizer(model):
    """Build `model`'s optimizer for its trainable variables now, before
    `fit` traces the train step, where Keras would build it during the trace.

    Does nothing where the optimizer is built or missing, where a layer of
    the step is not built yet (its variables would be missed; keras-hub's
    tokenizers and preprocessors run in the input pipeline, not in the
    step), or where the model has a TensorFlow distribution strategy (Keras
    builds it in the strategy's scope itself).

    Example:
    ```python
    import keras
    from keras_electra.utils import keras_compat

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    keras_compat.build_optimizer(model)
    model.optimizer.built  # True
    ```
    """
    optimizer = getattr(model, "optimizer", None)
    if (
        optimizer is None
        or optimizer.built
        or getattr(model, "_distribute_strategy", None) is not None
    ):
        return
    if not all(
        layer.built or isinstance(layer, PreprocessingLayer)
        for layer in model._flatten_layers()
    ):
        return
    optimizer.build(model.trainable_variables)


# Keras reads arrays through a `tf.data` pipeline of its own on
# TensorFlow (`ArrayDataAdapter`), shuffled every epoch as `shuffle` says;
# `checks.untuned_inputs` builds the same pipeline, to switch its
# autotuning off. Waits for Keras to take `tf.data.Options` for it.


def array_batches(x, y, sample_weight, batch_size, steps, shuffle,
                  class_weight=None):
    """The `tf.data.Dataset` of batches that Keras' `fit` (or `evaluate`,
    `predict`) reads arrays through on TensorFlow, with the same arguments.

    Example:
    ```python
    import numpy as np
    from keras_electra.utils import keras_compat

    batches = keras_compat.array_batches(
        np.arange(6), None, None, batch_size=4, steps=None, shuffle=False
    )
    [len(batch) for batch in batches]  # [4, 2]
    ```
    """
    import tensorflow as tf
    from keras.src.trainers.data_adapters import array_data_adapter

    adapter = array_data_adapter.ArrayDataAdapter(
        x, y, sample_weight, batch_size=batch_size, steps=steps,
        shuffle=shuffle, class_weight=class_weight,
    )
    # Keras takes the number of batches from the adapter. Handed this
    # dataset without it, `evaluate` on TensorFlow returned 2/3 of the loss
    # of 2 batches, as if averaged over a third, empty one.
    return adapter.get_tf_dataset().apply(
        tf.data.experimental.assert_cardinality(adapter.num_batches)
    )


def are_arrays(*data):
    """Whether Keras reads `data` (e.g. `(x, y)`) as arrays
    (`array_batches`), not as another kind of input."""
    from keras.src.trainers.data_adapters import array_data_adapter

    return array_data_adapter.can_convert_arrays(data)


def train_validation_split(x, y, sample_weight, validation_split):
    """`((x, y, sample_weight), validation_data)`: the last
    `validation_split` of the rows held out, as Keras' `fit` does."""
    from keras.src.trainers.data_adapters import array_slicing

    return array_slicing.train_validation_split(
        (x, y, sample_weight), validation_split=validation_split
    )


# Keras' JAX trainer detaches every variable from its value while `fit`,
# `evaluate` and `predict` run (`_purge_model_variables`) and reattaches
# them when the loop ends, or (`fit` only) from the last completed step in a
# `finally`. An error before a step completes, such as a batch that fails its
# input check, leaves the model without weights ("'NoneType' object is not
# callable" on its next use). Waits for Keras to reattach on every error.


@contextlib.contextmanager
def weights_kept_on_error(model, kwargs):
    """Around `model.fit`, `evaluate` or `predict(**kwargs)`: on JAX, the
    model keeps its weights if the call fails.

    Adds a callback to `kwargs["callbacks"]` that holds the variables'
    values (references: JAX arrays are immutable) until the first step
    completes; after that, Keras' own state of the last step is reattached.
    Elsewhere nothing changes.

    Example:
    ```python
    import keras
    import numpy as np
    from keras_electra.utils import keras_compat

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    kwargs = {"verbose": 0}
    with keras_compat.weights_kept_on_error(model, kwargs):
        model.predict(np.ones((2, 2)), **kwargs)
    ```
    """
    callbacks = kwargs.get("callbacks")
    if keras.config.backend() != "jax" or not (
        callbacks is None or isinstance(callbacks, (list, tuple))
    ):
        yield
        return
    keeper = _FirstStepValues(model)
    kwargs["callbacks"] = [*(callbacks or ()), keeper]
    try:
        yield
    except BaseException:
        keeper.reattach()
        raise


class _FirstStepValues(keras.callbacks.Callback):
    def __init__(self, model):
        super().__init__()
        self.owner = model
        variables = {}
        optimizer = getattr(model, "optimizer", None)
        for variable in (
            *model.variables,
            *(optimizer.variables if optimizer is not None else ()),
            *model.metrics_variables,
        ):
            variables[id(variable)] = variable
        self.variables = list(variables.values())
        self.values = [variable._value for variable in self.variables]

    def _step_completed(self, batch, logs=None):
        self.values = None  # From now on Keras keeps the state.

    on_train_batch_end = _step_completed
    on_test_batch_end = _step_completed
    on_predict_batch_end = _step_completed

    def reattach(self):
        self.owner.jax_state_sync()  # The last completed step's state.
        self.owner._jax_state = None
        for variable, value in zip(self.variables, self.values or ()):
            if variable._value is None:
                variable._value = value
