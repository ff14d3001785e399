"""Watch a pre-training run: stop on non-finite losses, record the curves.

- `StopOnNonFiniteLoss`: stops `fit()` with a `NonFiniteLossError` (a
  `FloatingPointError`) at the first NaN or infinite loss.
- `TrainingCurves`: appends the metrics to `curves.csv` every few steps and
  plots them to `pretraining_curves.png`.
- `plot_curves(csv_path, png_path)`: the plot, for re-plotting a CSV.
"""

import csv
import math
import os
import time

import keras
import numpy as np

from keras_electra.training import checkpoints
from keras_electra.utils.file_io import atomic_write

CURVES_FILE = "curves.csv"
PLOT_FILE = "pretraining_curves.png"
METRIC_COLUMNS = (
    "loss",
    "generator_loss",
    "generator_accuracy",
    "discriminator_loss",
    "discriminator_accuracy",
    "discriminator_precision",
    "discriminator_recall",
    "replaced_fraction",
)
COLUMNS = ("step", "epoch", "wall_time") + METRIC_COLUMNS + ("learning_rate",)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss.

    Attributes:
        step: int. The training step whose loss was not finite.
        logs: dict. The logs of that step.
        checkpoint: str or `None`. The latest (finite) checkpoint, if known.
    """

    def __init__(self, message, step=None, logs=None, checkpoint=None):
        super().__init__(message)
        self.step = step
        self.logs = logs
        self.checkpoint = checkpoint


class StopOnNonFiniteLoss(checkpoints.StepCounter):
    """Stop training at the first NaN or infinite loss.

    After every training batch, checks every logged value whose name
    contains "loss"; if one is NaN or infinite, raises `NonFiniteLossError`
    (a `FloatingPointError`) naming the step and the values, so that the run
    fails loudly instead of training on garbage. `PretrainingCheckpoint`
    never writes non-finite state, so the last checkpoint is a good one to
    resume from (with a lower learning rate, a longer warmup, stronger
    gradient clipping, or `mixed_bfloat16` instead of `mixed_float16`).

    Unlike `keras.callbacks.TerminateOnNaN`, which lets `fit()` return
    normally, the error cannot go unnoticed by a training script.

    Args:
        checkpoint_directory: optional str. The `PretrainingCheckpoint`
            directory, to name the checkpoint to resume from in the error.

    Example:
    ```python
    import keras_electra

    callbacks = [
        keras_electra.PretrainingCheckpoint("checkpoints", save_every=1000),
        keras_electra.StopOnNonFiniteLoss(checkpoint_directory="checkpoints"),
    ]
    # try:
    #     pretrainer.fit(dataset, ..., callbacks=callbacks)
    # except keras_electra.NonFiniteLossError as error:
    #     print(error.step, error.checkpoint)  # then restore and resume
    issubclass(keras_electra.NonFiniteLossError, FloatingPointError)  # True
    ```
    """

    def __init__(self, checkpoint_directory=None):
        super().__init__()
        self.checkpoint_directory = (
            None
            if checkpoint_directory is None
            else os.fspath(checkpoint_directory)
        )

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        bad = {}
        for key, value in (logs or {}).items():
            if "loss" not in str(key):
                continue
            try:
                value = float(np.asarray(keras.ops.convert_to_numpy(value)))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                bad[key] = value
        if bad:
            raise self._error(batch, logs, bad)

    def _error(self, batch, logs, bad):
        checkpoint = None
        if self.checkpoint_directory is not None:
            checkpoint = checkpoints.latest_checkpoint(
                self.checkpoint_directory
            )
        values = ", ".join(f"{key}={value}" for key, value in bad.items())
        others = ", ".join(
            f"{key}={value:.6g}"
            for key, value in checkpoints._numeric_logs(logs).items()
            if key not in bad
        )
        if checkpoint is not None:
            where = f"the latest is {checkpoint}"
        elif self.checkpoint_directory is not None:
            where = f"none was found in {self.checkpoint_directory}"
        else:
            where = "see your PretrainingCheckpoint directory"
        message = (
            f"Non-finite loss at training step {self.step} (epoch "
            f"{self.epoch}, batch {batch}): {values}"
            + (f" (other logs: {others})" if others else "")
            + ". Training was stopped. The last good checkpoint is kept "
            "(PretrainingCheckpoint never writes non-finite state); "
            f"{where}. To resume, restore it with "
            "`keras_electra.restore_checkpoint(model, path)` and continue "
            "with a lower learning rate or a longer warmup, stronger gradient "
            "clipping (`global_clipnorm`), or `mixed_bfloat16` instead of "
            "`mixed_float16`."
        )
        return NonFiniteLossError(
            message,
            step=self.step,
            logs=dict(logs or {}),
            checkpoint=checkpoint,
        )


class TrainingCurves(checkpoints.StepCounter):
    """Record the pre-training metrics to a CSV and plot them.

    Every `every` training steps (and at the last step of each epoch)
    appends a row to `directory/curves.csv` with the columns `step`,
    `epoch`, `wall_time` (Unix time), `loss`, `generator_loss`,
    `generator_accuracy`, `discriminator_loss`, `discriminator_accuracy`,
    `discriminator_precision`, `discriminator_recall`, `replaced_fraction`
    and `learning_rate` (the one used for that step; empty where a value is
    not available). Each row holds the metrics over the steps since the
    previous row, computed from the metrics' state; with `every=1`, exactly
    that step's values (Keras' own logs are running means since the start
    of the epoch).

    At the end of each epoch and of training, plots the CSV to
    `directory/pretraining_curves.png` (see `plot_curves`). Both files are
    replaced atomically, never left half-written by a crash (a crash can at
    most cut the last CSV row, which is then dropped).

    The CSV is append-only and follows resumed runs: restoring a checkpoint
    with `keras_electra.restore_checkpoint` and training on drops the rows
    beyond the restored step, so the file reads as one run.

    Args:
        directory: str. Where the CSV and the plot go (created).
        every: int. Write a row every this many training steps.
        plot: bool. Also write the plot (needs matplotlib).

    Example:
    ```python
    import os
    import tempfile

    import numpy as np
    import keras_electra

    directory = tempfile.mkdtemp()
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=1000
    )
    token_ids = np.random.randint(200, 1000, size=(16, 16))
    token_ids[:, 0], token_ids[:, -1] = 101, 102
    pretrainer.compile()
    curves = keras_electra.TrainingCurves(directory, every=1)
    pretrainer.fit({"token_ids": token_ids}, batch_size=4, epochs=2,
                   callbacks=[curves], verbose=0)
    sorted(os.listdir(directory))  # ['curves.csv', 'pretraining_curves.png']
    keras_electra.plot_curves(  # Re-plot, e.g. from another process.
        os.path.join(directory, "curves.csv"),
        os.path.join(directory, "replotted.png"),
    )
    ```
    """

    def __init__(self, directory, every=1, plot=True):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"`every` must be >= 1, got {every}.")
        if plot:
            _import_matplotlib()  # Fail now rather than after an epoch.
        self.directory = os.fspath(directory)
        self.every = int(every)
        self.plot = bool(plot)
        self.csv_path = os.path.join(self.directory, CURVES_FILE)
        self.png_path = os.path.join(self.directory, PLOT_FILE)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        os.makedirs(self.directory, exist_ok=True)
        rows = []
        if os.path.exists(self.csv_path):
            rows = read_curves(self.csv_path)
        kept = [row for row in rows if row["step"] <= self.step]
        if not rows or len(kept) != len(rows) or not _has_header(self.csv_path):
            _write_csv_atomically(self.csv_path, kept)
        self._previous_state = None

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        # Keras has just reset the metrics: the window starts from zero.
        self._previous_state = None

    def on_train_batch_end(self, batch, logs=None):
        steps = super().on_train_batch_end(batch, logs)
        steps_per_epoch = (self.params or {}).get("steps")
        end_of_epoch = bool(steps_per_epoch) and (
            self.batch_in_epoch >= steps_per_epoch
        )
        crossed = self.step // self.every > (self.step - steps) // self.every
        if crossed or end_of_epoch:
            self._write_row(logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.plot:
            plot_curves(self.csv_path, self.png_path)

    def on_train_end(self, logs=None):
        if self.plot:
            plot_curves(self.csv_path, self.png_path)

    def _write_row(self, logs):
        model = self.model  # On JAX, this syncs the training state back.
        values = dict(checkpoints._numeric_logs(logs))
        state = _metric_state(model)
        values.update(_window_results(model, state, self._previous_state))
        self._previous_state = state
        values["learning_rate"] = _learning_rate(model)
        row = {"step": self.step, "epoch": self.epoch, "wall_time": time.time()}
        row.update({key: values.get(key) for key in METRIC_COLUMNS})
        row["learning_rate"] = values.get("learning_rate")
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([_format(row[c]) for c in COLUMNS])


# === Metrics over a window of steps ===


def _metric_state(model):
    state = {}
    for metric in getattr(model, "metrics", []):
        try:
            state[metric.name] = [
                np.array(keras.ops.convert_to_numpy(v))
                for v in metric.variables
            ]
        except Exception:
            continue
    return state


def _window_results(model, state, previous):
    """Each metric's result over the steps since `previous` was taken.

    The metrics of the pretrainer (means, precision, recall) keep sums, so
    the difference of two states is the state of the steps in between.
    """
    results = {}
    for metric in getattr(model, "metrics", []):
        current = state.get(metric.name)
        if current is None:
            continue
        if previous is not None and metric.name in previous:
            window = [a - b for a, b in zip(current, previous[metric.name])]
        else:
            window = current
        try:
            value = metric.stateless_result(
                [keras.ops.convert_to_tensor(w) for w in window]
            )
            value = np.asarray(keras.ops.convert_to_numpy(value))
            if value.size == 1 and value.dtype.kind in "fiub":
                results[metric.name] = float(value.reshape(()))
        except Exception:
            # Not a single number (e.g. a container of compiled metrics):
            # the logged value is used instead.
            continue
    return results


def _learning_rate(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        learning_rate = optimizer._learning_rate
        if callable(learning_rate):
            # Keras evaluates the schedule before incrementing `iterations`.
            iterations = keras.ops.convert_to_numpy(optimizer.iterations)
            learning_rate = learning_rate(max(int(iterations) - 1, 0))
        return float(keras.ops.convert_to_numpy(learning_rate))
    except Exception:
        return None


# === The CSV ===


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _has_header(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), None) == list(COLUMNS)
    except OSError:
        return False


def read_curves(csv_path):
    """The rows of a `curves.csv` as dicts of floats (NaN where empty).

    `step` and `epoch` are ints; rows that cannot be read (e.g. the last
    line cut by a crash) are skipped.
    """
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for record in csv.DictReader(f):
            try:
                row = {
                    "step": int(record["step"]),
                    "epoch": int(record["epoch"]),
                }
                for column in COLUMNS[2:]:
                    text = record.get(column)
                    row[column] = float(text) if text else float("nan")
            except (TypeError, ValueError, KeyError):
                continue
            rows.append(row)
    return rows


def _write_csv_atomically(path, rows):
    with atomic_write(path, newline="", fsync=True) as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    ""
                    if isinstance(row.get(c), float) and math.isnan(row[c])
                    else _format(row.get(c))
                    for c in COLUMNS
                ]
            )


# === The plot ===


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Plotting the pre-training curves needs matplotlib "
            "(`pip install matplotlib`); pass `plot=False` to TrainingCurves "
            "to write only the CSV."
        ) from error
    return Figure, FigureCanvasAgg


def plot_curves(csv_path, png_path):
    """Plot a `curves.csv` written by `TrainingCurves` as a PNG.

    Four panels against the training step: total loss; generator (MLM)
    accuracy; discriminator accuracy; discriminator precision and recall
    (of the "replaced" class). Uses matplotlib's Agg renderer directly (no
    `pyplot`, no display needed, matplotlib's global backend untouched) and
    replaces `png_path` atomically.

    Args:
        csv_path: str. The CSV.
        png_path: str. The image to write.
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    rows = read_curves(csv_path)
    steps = [row["step"] for row in rows]

    def column(name):
        return [row[name] for row in rows]

    figure = Figure(figsize=(10, 7), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2, sharex=True)
    panels = (
        (axes[0, 0], "Total loss", ("loss",)),
        (
            axes[0, 1],
            "Generator accuracy (masked tokens)",
            ("generator_accuracy",),
        ),
        (axes[1, 0], "Discriminator accuracy", ("discriminator_accuracy",)),
        (
            axes[1, 1],
            "Discriminator precision / recall",
            ("discriminator_precision", "discriminator_recall"),
        ),
    )
    for ax, title, names in panels:
        for name in names:
            ax.plot(steps, column(name), label=name.split("_")[-1], lw=1.2)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend()
    for ax in axes[1]:
        ax.set_xlabel("step")
    figure.suptitle(f"ELECTRA pre-training ({len(rows)} rows)")
    with atomic_write(png_path, "wb", fsync=True) as f:
        figure.savefig(f, format="png", dpi=100)
