"""A training run's settings and plumbing, shared by the recipes and the
benchmarks.

- `PRETRAINING_LEARNING_RATES`, `SIZES`: the paper's pre-training learning
  rate per built-in size (Table 6).
- `DEMO_PRESET`, `DEMO_PRETRAINING`, `DEMO_FINETUNING`: the demo's model (a
  built-in preset) and its other settings, as plain data.
- `jit_compile_option(choice)`: a `--jit-compile` choice as `compile()`
  takes it.
- `encoder_dimensions(num_layers, hidden_dim)`: an encoder's sizes scaled
  from its width, as the demo scales its model.
- `resume_or_start(model, checkpoint_dir)`: restore the newest complete
  checkpoint, or start from step 0.
- `StepClock`, `measure_step_costs(model, dataset, callbacks)`,
  `steps_in_budget(minutes, costs, steps_per_epoch)`, `StopAtDeadline`:
  the time budget.
- `readable_file(path)`, `foreign_output(path, own_files)`: the recipes'
  checks of their files and output folders, before any work.
- `backend_version()`: the version of the Keras backend's framework, for
  result files.
- `use_mixed_bfloat16()`: the `mixed_bfloat16` policy, checked at once
  for a device where bfloat16 products are far slower than float32 ones.
"""

import argparse
import dataclasses
import importlib
import math
import os
import time

import keras
import numpy as np

from keras_electra.training import checkpoints
from keras_electra.utils import checks
from keras_electra.utils import file_io
from keras_electra.utils import precision

# Built-in sizes of `recipes/pretrain.py` (tiny is ours, trained like small).
SIZES = ("tiny", "small", "base", "large")
# Peak pre-training learning rate per size (Table 6 of the paper).
PRETRAINING_LEARNING_RATES = {
    "tiny": 5e-4,
    "small": 5e-4,
    "base": 2e-4,
    "large": 2e-4,
}
JIT_COMPILE = {"auto": "auto", "true": True, "false": False}

# The demo's model: 2 layers x 128 (ELECTRA-Small is 12 x 256), with the
# generator at 1/4 width as in the paper. Small and short (64 tokens) so that
# 2 CPU cores run about 8,600 steps in the demo's 17 minutes. See
# benchmarks/RESULTS.md, "The demo in detail".
DEMO_PRESET = "electra_demo"
DEMO_PRETRAINING = {
    "vocabulary_size": 8000,
    "max_sequence_length": 64,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "in_domain_copies": 10,
    # The paper samples at 1; a model this small never learns to spot those
    # samples within the budget, and learns at once at 3 (benchmarks/RESULTS.md,
    # "Why pre-training does not pay off at demo scale").
    "temperature": 3.0,
    "jit_compile": "auto",
}
# Identical for both of the demo's classifiers. Mean pooling: short
# pre-training never trains [CLS] (benchmarks/RESULTS.md, "What the demo shows"); no
# layer-wise decay, which would only slow the randomly initialised baseline
# down.
DEMO_FINETUNING = {
    "max_sequence_length": 64,
    "learning_rate": 3e-4,
    "layer_decay": 1.0,
    "pooling": "mean",
    "epochs": 3,
}


def jit_compile_option(choice):
    """The `jit_compile` argument of `compile()` for a `--jit-compile` choice.

    Args:
        choice: `"auto"`, `"true"` or `"false"`.

    Returns:
        `"auto"`, `True` or `False`.

    Example:
    ```python
    from keras_electra.training.runs import jit_compile_option

    jit_compile_option("true")  # True
    ```
    """
    if choice not in JIT_COMPILE:
        raise ValueError(
            f"`choice` must be one of {sorted(JIT_COMPILE)}; got {choice!r}."
        )
    return JIT_COMPILE[choice]


def encoder_dimensions(num_layers, hidden_dim):
    """Encoder sizes scaled from the width: heads of 64 units (at least
    one), embeddings as wide as the hidden size, feed-forward 4x.

    Args:
        num_layers: int. Transformer layers.
        hidden_dim: int. Hidden size.

    Returns:
        A dict of `ElectraBackbone` arguments: `num_layers`, `hidden_dim`,
        `num_heads`, `embedding_dim` and `intermediate_dim`.

    Example:
    ```python
    from keras_electra.training.runs import encoder_dimensions

    encoder_dimensions(2, 128)["num_heads"]  # 2
    ```
    """
    for name, value in (("num_layers", num_layers), ("hidden_dim", hidden_dim)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive integer; got {value!r}."
            )
    return {
        "num_layers": num_layers,
        "hidden_dim": hidden_dim,
        "num_heads": max(1, hidden_dim // 64),
        "embedding_dim": hidden_dim,
        "intermediate_dim": 4 * hidden_dim,
    }


def resume_or_start(model, checkpoint_dir):
    """Restore the newest complete checkpoint in `checkpoint_dir`, if any.

    `model` must be built and compiled the way the checkpoint's run built it
    (see `restore_checkpoint`). Without a checkpoint nothing changes and the
    run starts at step 0.

    Args:
        model: the compiled `keras.Model` to restore into.
        checkpoint_dir: str. The folder `PretrainingCheckpoint` writes; it
            need not exist.

    Returns:
        A dict: `checkpoint` (the restored checkpoint's path, or `None`),
        `step`, `initial_epoch` and `data_position` (batches of the data
        already consumed), for `fit(dataset.skip(data_position),
        initial_epoch=initial_epoch, ...)`.

    Example:
    ```python
    import tempfile

    import keras_electra
    from keras_electra.training.runs import resume_or_start

    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=200
    )
    pretrainer.compile()
    resume_or_start(pretrainer, tempfile.mkdtemp())["step"]  # 0: a new run
    ```
    """
    latest = checkpoints.latest_checkpoint(checkpoint_dir)
    if latest is None:
        return {
            "checkpoint": None,
            "step": 0,
            "initial_epoch": 0,
            "data_position": 0,
        }
    state = checkpoints.restore_checkpoint(model, latest)
    return {
        "checkpoint": latest,
        "step": state["step"],
        "initial_epoch": state["initial_epoch"],
        "data_position": state["data_position"],
    }


class StepClock(keras.callbacks.Callback):
    """Wall time at the end of train batches, the device synchronised first.

    Reading the loss waits for the step to finish (JAX and TensorFlow
    dispatch ahead of the host). `times` and `losses` get one entry per
    timed batch; `train_begin` is the time `fit` started.

    Args:
        batches: the batch indices (within an epoch, as Keras numbers them)
            to time; `None` times every batch.

    Example:
    ```python
    import keras
    import numpy as np

    from keras_electra.training.runs import StepClock

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    clock = StepClock()
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0,
              callbacks=[clock])
    len(clock.times)  # 4
    ```
    """

    def __init__(self, batches=None):
        super().__init__()
        self.batches = None if batches is None else set(batches)
        self.times = []
        self.losses = []
        self.train_begin = None

    def on_train_begin(self, logs=None):
        self.train_begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.batches is not None and batch not in self.batches:
            return
        self.losses.append(float(keras.ops.convert_to_numpy(logs["loss"])))
        self.times.append(time.perf_counter())


class StopAtDeadline(keras.callbacks.Callback):
    """Stops `fit` at the first train batch that ends past a deadline.

    `steps_in_budget` plans a run from steps timed before it; on a shared
    machine the steps may then run slower (the demo's ran up to 30% slower
    than timed), and the run would overshoot its budget. This stops it on
    time instead: the learning rate is then cut short of its decay's end,
    which costs less than the overshoot would. `stopped_at_step` is the
    number of steps this `fit` ran when it stopped, or `None` if it ended
    as planned.

    Args:
        deadline: float. The deadline, a `time.time()` value.

    Example:
    ```python
    import time

    import keras
    import numpy as np

    from keras_electra.training.runs import StopAtDeadline

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    stop = StopAtDeadline(time.time())  # Already past: stops at once.
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, epochs=3,
              verbose=0, callbacks=[stop])
    stop.stopped_at_step  # 1
    ```
    """

    def __init__(self, deadline):
        super().__init__()
        self.deadline = float(deadline)
        self.stopped_at_step = None
        self._steps = 0

    def on_train_begin(self, logs=None):
        self.stopped_at_step = None
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.stopped_at_step = self._steps


@dataclasses.dataclass(frozen=True)
class StepCosts:
    """What `fit` costs, in seconds, callbacks included.

    Attributes:
        startup: compiling, before the first step.
        step: one training step with the callbacks' per-step work.
        epoch_end: the callbacks' once-an-epoch work (a checkpoint, a plot,
            a TensorBoard summary).
    """

    startup: float
    step: float
    epoch_end: float

    def per_step(self, steps_per_epoch):
        """A step's share of the run, with its part of the epoch's end."""
        return self.step + self.epoch_end / steps_per_epoch


def measure_step_costs(model, dataset, callbacks=(), steps_per_epoch=6):
    """Time `fit(dataset, callbacks=callbacks)` over three short epochs.

    A budget timed on bare steps overshoots by what the callbacks add
    (15% in the demo: a CSV row a step, a checkpoint and a plot an epoch), so
    this times `fit` with the run's own callbacks. The first epoch compiles;
    the second's end and the third epoch give the epoch's-end and the step
    costs. Train a throw-away copy of the model, and give callbacks that
    write elsewhere and do their once-an-epoch work every `steps_per_epoch`
    steps (e.g. `PretrainingCheckpoint(tmp, save_every=steps_per_epoch)`).

    Args:
        model: a compiled `keras.Model`.
        dataset: its training data, with at least `3 * steps_per_epoch`
            batches (a repeating `tf.data.Dataset`, for example).
        callbacks: the callbacks of the real run.
        steps_per_epoch: int, at least 2. Steps of each timed epoch.

    Returns:
        `StepCosts`.

    Example:
    ```python
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_electra.training.runs import measure_step_costs

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    data = tf.data.Dataset.from_tensors((np.ones((2, 2)), np.ones((2, 1))))
    costs = measure_step_costs(model, data.repeat(), steps_per_epoch=3)
    costs.step > 0  # True
    ```
    """
    if steps_per_epoch < 2:
        raise ValueError(
            f"`steps_per_epoch` must be at least 2; got {steps_per_epoch}."
        )
    clock = StepClock()
    fit_kwargs = dict(
        epochs=3,
        steps_per_epoch=steps_per_epoch,
        callbacks=[*callbacks, clock],
        verbose=0,
    )
    model.fit(dataset, **checks.fit_arguments(dataset, fit_kwargs))
    # From the second epoch's last step on: its end, then the third's steps.
    intervals = np.diff(clock.times[2 * steps_per_epoch - 1 :])
    step = float(np.median(intervals[1:]))
    return StepCosts(
        startup=max(0.0, clock.times[0] - clock.train_begin - step),
        step=step,
        epoch_end=max(0.0, float(intervals.sum()) - len(intervals) * step),
    )


def steps_in_budget(
    minutes, costs, steps_per_epoch, elapsed_seconds=0.0, minimum=1
):
    """How many steps fill `minutes`, in epochs of at most `steps_per_epoch`.

    The epochs are as many as it takes, and shortened alike to end on the
    budget: whole epochs of `steps_per_epoch` steps alone would leave up to
    one epoch of it unused (7% of the demo's).

    Args:
        minutes: float. The budget.
        costs: `StepCosts` of the run (`measure_step_costs`).
        steps_per_epoch: int. The most steps an epoch may have (e.g. the
            checkpoint interval).
        elapsed_seconds: float. Time of the budget already spent (timing
            the steps, for example).
        minimum: int. At least this many steps, however short the budget
            (a budget shorter than one epoch gets one shorter epoch).

    Returns:
        `(steps, steps_per_epoch)`: the run's steps, a whole number of its
        epochs of `steps_per_epoch` steps.

    Example:
    ```python
    from keras_electra.training.runs import StepCosts, steps_in_budget

    costs = StepCosts(startup=10.0, step=0.25, epoch_end=5.0)
    steps_in_budget(5, costs, steps_per_epoch=100)  # (960, 96)
    ```
    """
    if minutes <= 0 or costs.step <= 0:
        raise ValueError(
            f"`minutes` and the step's cost must be positive; got {minutes} "
            f"and {costs.step}."
        )
    seconds = minutes * 60 - elapsed_seconds - costs.startup
    full_epoch = costs.per_step(steps_per_epoch) * steps_per_epoch
    epochs = max(1, math.ceil(seconds / full_epoch))
    per_epoch = int((seconds / epochs - costs.epoch_end) / costs.step)
    if epochs * per_epoch < minimum:
        epochs = math.ceil(minimum / steps_per_epoch)
        per_epoch = math.ceil(minimum / epochs)
    return epochs * per_epoch, per_epoch


def readable_file(path):
    """`path` if it is a file this process can read; for `argparse`
    (`type=readable_file`), which then names the flag.

    Example:
    ```python
    import argparse
    from keras_electra.training.runs import readable_file

    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=readable_file)
    try:
        parser.parse_args(["--corpus", "no/such.txt"])
    except SystemExit:  # "argument --corpus: 'no/such.txt' is not a file"
        pass
    ```
    """
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"'{path}' is not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(
            f"'{path}' cannot be read (permission denied)"
        )
    return path


def foreign_output(path, own_files):
    """Why `path` cannot be a run's output folder, or `None` if it can.

    A run writes into a folder that is new, empty, or an earlier run's
    (it holds one of `own_files`); anything else is someone else's, which a
    run must not write into.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.training.runs import foreign_output

    folder = tempfile.mkdtemp()
    foreign_output(folder, ["run.json"])  # None: empty
    open(os.path.join(folder, "notes.txt"), "w").close()
    foreign_output(folder, ["run.json"])  # "... holds other files ..."
    ```
    """
    if not os.path.exists(path):
        return None
    if not os.path.isdir(path):
        return f"'{path}' exists and is not a folder"
    # A killed run may have left only its temporaries.
    names = [n for n in os.listdir(path) if not file_io.is_temporary(n)]
    if not names or any(name in own_files for name in names):
        return None
    return (
        f"'{path}' holds other files and no {' or '.join(own_files)} of an "
        "earlier run: give a new or empty folder"
    )


def backend_version():
    """The version of the framework under the Keras backend (TensorFlow, JAX
    or PyTorch).

    Example:
    ```python
    from keras_electra.training.runs import backend_version

    backend_version()  # e.g. '2.19.0' on TensorFlow
    ```
    """
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    return importlib.import_module(module[keras.config.backend()]).__version__


def use_mixed_bfloat16():
    """Set Keras' global dtype policy to `mixed_bfloat16` (bfloat16
    compute, float32 weights) and check at once whether bfloat16 pays on
    this device (`keras_electra.utils.precision.check_bfloat16_speed`,
    which warns where bfloat16 products are more than
    `BFLOAT16_SLOWDOWN_LIMIT` times slower than float32 ones, so that
    training would slow down, not speed up). Returns the measured slowdown.

    Example:
    ```python
    import keras

    from keras_electra.training.runs import use_mixed_bfloat16

    use_mixed_bfloat16()
    keras.config.dtype_policy().name  # 'mixed_bfloat16'
    keras.config.set_dtype_policy("float32")
    ```
    """
    keras.config.set_dtype_policy("mixed_bfloat16")
    return precision.check_bfloat16_speed(keras.config.dtype_policy())
