"""Crash-safe pre-training checkpoints that resume a run exactly.

- `PretrainingCheckpoint`: a callback that writes a checkpoint every
  `save_every` training steps and at the end of training, keeping the last
  `keep`.
- `save_checkpoint(model, directory, step, ...)`: write one checkpoint.
- `latest_checkpoint(directory)`: the newest complete checkpoint, or `None`.
- `restore_checkpoint(model, path)`: load one back; returns its state
  (`step`, `data_position`, `initial_epoch`, ...).

A checkpoint is a directory `ckpt-<step:08d>/` of plain files:

- `model.npz`: the values of all of `model.variables` in order: trainable
  and non-trainable weights of both towers *and* the states of the model's
  random seed generators (the masking/sampling stream
  `pretrainer.seed_generator` and the dropout layers'), which
  `model.weights` and `save_weights` leave out;
- `optimizer.npz`: the values of `model.optimizer.variables` in order
  (iteration count, learning rate, Adam moments, gradient accumulators,
  the loss scale of `mixed_float16`, ...);
- `rng.npz` (PyTorch only): the global torch random state, which unseeded
  dropout draws from on that backend;
- `checkpoint.json`: step, data position, epoch, wall time, last logs, the
  name, shape and dtype of every variable, and the size and SHA-256 of every
  file. Written last, it is the completion marker.

Everything is written into a temporary directory next to the target, flushed
to disk, and renamed into place, so a crash never leaves a half-written
`ckpt-*` behind; anything without a valid `checkpoint.json` is ignored and
deleted by the next `PretrainingCheckpoint` that writes to the directory.
No pickle is used anywhere.
"""

import glob
import json
import os
import re
import shutil
import time
import warnings

import keras
import numpy as np

from keras_electra.utils.file_io import atomic_write
from keras_electra.utils.file_io import fsync_directory
from keras_electra.utils.file_io import replace_directory
from keras_electra.utils.file_io import sha256_of
from keras_electra.utils.file_io import staging_directory

FORMAT = "keras_electra.pretraining_checkpoint"
FORMAT_VERSION = 1
STATE_FILE = "checkpoint.json"
MODEL_FILE = "model.npz"
OPTIMIZER_FILE = "optimizer.npz"
RNG_FILE = "rng.npz"
CHECKPOINT_PREFIX = "ckpt-"
_CHECKPOINT_NAME = re.compile(r"^ckpt-(\d{8,})$")
_TEMP_PREFIX = ".ckpt-"
# Attribute of the model holding the progress of the run: the step and data
# position it has reached (set by `restore_checkpoint` and kept up to date by
# the callbacks of this module and of `callbacks`).
_PROGRESS_ATTR = "_keras_electra_progress"


# === Progress of a run, shared by the callbacks ===


def _optimizer_iterations(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def get_progress(model):
    """The step and data position `model`'s training has reached.

    Set by `restore_checkpoint` and advanced by the callbacks of
    `keras_electra` during `fit()`; a model that was never restored starts
    from its optimizer's iteration count.
    """
    progress = getattr(model, _PROGRESS_ATTR, None)
    if progress is None:
        step = _optimizer_iterations(model)
        progress = {"step": step, "data_position": step, "train_seconds": 0.0}
    return dict(progress)


def set_progress(model, **fields):
    """Update the progress record of `model` (see `get_progress`)."""
    progress = getattr(model, _PROGRESS_ATTR, None)
    progress = dict(get_progress(model) if progress is None else progress)
    progress.update(fields)
    # Plain attribute: not tracked by Keras (nor registered by torch).
    object.__setattr__(model, _PROGRESS_ATTR, progress)


class StepCounter(keras.callbacks.Callback):
    """Counts the training steps of `fit()`, across resumed runs.

    `self.step` is the number of training steps (batches) the model has been
    trained for, including those of the run it was restored from. It never
    reads the model's state, so it costs nothing on JAX (where touching
    `self.model` mid-epoch syncs the whole training state back).
    """

    def __init__(self):
        super().__init__()
        self.step = None
        self.epoch = 0
        self.batch_in_epoch = 0
        self._completed_epochs = 0
        self._batch_begin = 0

    def on_train_begin(self, logs=None):
        progress = get_progress(self.model)
        set_progress(self.model, **progress)  # Never read the model again.
        self.step = int(progress["step"])
        self.epoch = self._completed_epochs = 0
        self.batch_in_epoch = 0
        self._progress_at_begin = progress

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.batch_in_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        self._completed_epochs = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_begin = batch
        progress = getattr(self._model, _PROGRESS_ATTR, None)
        if progress and progress.get("pending_rng") is not None:
            # See `restore_checkpoint`: the data pipeline of `fit()` may have
            # drawn from the global generator since it was restored.
            _set_global_rng_state(progress.pop("pending_rng"))

    def on_train_batch_end(self, batch, logs=None):
        # With `steps_per_execution > 1`, one call covers several steps.
        steps = max(1, batch - self._batch_begin + 1)
        self.step += steps
        self.batch_in_epoch += steps
        set_progress(self._model, step=self.step)
        return steps

    def initial_epoch(self):
        """The `initial_epoch` to resume `fit()` from after this step."""
        steps_per_epoch = (self.params or {}).get("steps")
        if steps_per_epoch and self.batch_in_epoch >= steps_per_epoch:
            return self.epoch + 1
        return max(self.epoch, self._completed_epochs)


# === The callback ===


class PretrainingCheckpoint(StepCounter):
    """Save crash-safe checkpoints during pre-training.

    Every `save_every` training steps (at global steps that are multiples of
    `save_every`) and at the end of training, writes
    `directory/ckpt-<step:08d>/` with everything needed to continue the run
    exactly: all model variables (both towers, the random seed states), the
    optimizer's variables, the step, the data position and the last logs
    (see the module docstring for the files). Only the last `keep`
    checkpoints are kept; older ones are deleted once the new one is
    complete.

    A checkpoint is never written with non-finite state: if the logs or any
    model or optimizer variable hold NaN or infinity, the save is skipped
    with a warning, so the directory only ever holds good checkpoints (pair
    with `keras_electra.StopOnNonFiniteLoss` to stop such a run).

    The step counts training batches, including those of the run a model
    was restored from. With gradient accumulation every micro-batch counts
    (as Keras' `optimizer.iterations` does); with `mixed_float16` the steps
    the loss scaler skips count too (`optimizer.iterations` does not count
    them).

    To resume: build and compile the model as before, restore the latest
    checkpoint and call `fit()` on the data that was not consumed yet:
    `restore_checkpoint` returns the `data_position` (batches consumed, for
    `dataset.skip(data_position)` on a repeated `tf.data` stream of batches)
    and the `initial_epoch` to pass to `fit()`. A resumed epoch runs a full
    `steps_per_epoch` again, so for runs that must end at exactly
    `epochs * steps_per_epoch` steps make `save_every` a multiple of
    `steps_per_epoch` (e.g. both the same: an "epoch" is then a checkpoint
    interval), or finish the interrupted epoch with a separate short `fit()`.

    Args:
        directory: str. Where the `ckpt-*` directories go (created).
        save_every: int. Save every this many training steps.
        keep: int or `None`. How many checkpoints to keep (`None`: all).
        data_position_fn: optional callable `step -> position` returning the
            JSON-serializable data position to store (e.g. examples read
            from a custom reader). Defaults to the number of batches
            consumed, counted from the restored checkpoint's position.

    Example:
    ```python
    import tempfile

    import numpy as np
    import keras_electra

    def batches(start):  # A stream of batches, resumable at any position.
        rng = np.random.default_rng(0)
        token_ids = rng.integers(200, 1000, size=(8, 4, 16))
        token_ids[:, :, 0], token_ids[:, :, -1] = 101, 102
        for position in range(start, 8):
            yield ({"token_ids": token_ids[position]},)

    directory = tempfile.mkdtemp()
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=1000, seed=0
    )
    pretrainer.compile()
    checkpoint = keras_electra.PretrainingCheckpoint(directory, save_every=2)
    # A run that stops (crashes) after 4 of its 8 steps.
    pretrainer.fit(batches(0), epochs=2, steps_per_epoch=2,
                   callbacks=[checkpoint], verbose=0)

    # Later, in a new process: the same model, compiled the same way.
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=1000, seed=0
    )
    pretrainer.compile()
    state = keras_electra.restore_checkpoint(
        pretrainer, keras_electra.latest_checkpoint(directory)
    )
    state["step"], state["data_position"], state["initial_epoch"]  # 4, 4, 2
    # With tf.data: `dataset.skip(state["data_position"])`.
    pretrainer.fit(batches(state["data_position"]),
                   initial_epoch=state["initial_epoch"], epochs=4,
                   steps_per_epoch=2, callbacks=[checkpoint], verbose=0)
    ```
    """

    def __init__(self, directory, save_every, keep=3, data_position_fn=None):
        super().__init__()
        if int(save_every) < 1:
            raise ValueError(f"`save_every` must be >= 1, got {save_every}.")
        if keep is not None and int(keep) < 1:
            raise ValueError(f"`keep` must be >= 1 or None, got {keep}.")
        if data_position_fn is not None and not callable(data_position_fn):
            raise ValueError("`data_position_fn` must be callable.")
        self.directory = os.fspath(directory)
        self.save_every = int(save_every)
        self.keep = None if keep is None else int(keep)
        self.data_position_fn = data_position_fn
        self.last_saved_step = None
        self.last_saved_path = None
        self._steps_this_run = 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        progress = self._progress_at_begin
        self._position_at_begin = progress.get("data_position", self.step)
        self._steps_this_run = 0
        self._seconds_at_begin = float(progress.get("train_seconds") or 0.0)
        self._time_at_begin = time.time()
        os.makedirs(self.directory, exist_ok=True)
        remove_incomplete_checkpoints(self.directory)

    def on_train_batch_end(self, batch, logs=None):
        steps = super().on_train_batch_end(batch, logs)
        self._steps_this_run += steps
        progress = {"train_seconds": self._seconds()}
        if self.data_position_fn is None:  # Else only called when saving.
            progress["data_position"] = self._data_position()
        set_progress(self._model, **progress)
        every = self.save_every
        if self.step // every > (self.step - steps) // every:
            self._save(logs)

    def on_train_end(self, logs=None):
        if self._steps_this_run and self.step != self.last_saved_step:
            self._save(logs)

    def _data_position(self):
        if self.data_position_fn is not None:
            return self.data_position_fn(self.step)
        start = self._position_at_begin
        if not isinstance(start, int) or isinstance(start, bool):
            start = self.step - self._steps_this_run
        return start + self._steps_this_run

    def _seconds(self):
        return self._seconds_at_begin + time.time() - self._time_at_begin

    def _save(self, logs):
        path = save_checkpoint(
            self.model,  # On JAX, this syncs the training state back.
            self.directory,
            self.step,
            data_position=self._data_position(),
            logs=logs,
            keep=self.keep,
            initial_epoch=self.initial_epoch(),
            epoch=self.epoch,
            steps_per_epoch=(self.params or {}).get("steps"),
            train_seconds=self._seconds(),
        )
        if path is not None:
            self.last_saved_step = self.step
            self.last_saved_path = path


# === Saving ===


def save_checkpoint(
    model, directory, step, data_position=None, logs=None, keep=None, **state
):
    """Write a checkpoint of `model` as `directory/ckpt-<step:08d>/`.

    See the module docstring for the contents. An existing checkpoint of the
    same step is replaced. Returns the path, or `None` (with a warning) if
    the logs or the state hold non-finite values and nothing was written.

    A failed write (disk full, permission denied) leaves the earlier
    checkpoints as they were and raises an `OSError` with the same `errno`
    that names the step and the checkpoint to resume from.

    Args:
        model: a Keras model (its optimizer's state is saved if compiled).
        directory: str. Parent directory (created).
        step: int. The training step.
        data_position: JSON-serializable. Defaults to `step`.
        logs: optional dict of the last logs; non-numeric values are
            dropped.
        keep: int or `None`. Afterwards, delete all but the newest `keep`
            complete checkpoints.
        **state: more JSON-serializable entries for `checkpoint.json`.
    """
    step = int(step)
    directory = os.fspath(directory)
    logs = _numeric_logs(logs)
    bad_logs = {k: v for k, v in logs.items() if not np.isfinite(v)}
    if bad_logs:
        _warn_not_saved(step, f"non-finite logs {bad_logs}")
        return None
    model_variables = _state_variables(model)
    model_values = _values(model_variables)
    optimizer = getattr(model, "optimizer", None)
    optimizer_variables = []
    if optimizer is not None and optimizer.built:
        optimizer_variables = list(optimizer.variables)
    optimizer_values = _values(optimizer_variables)
    for kind, variables, values in (
        ("model", model_variables, model_values),
        ("optimizer", optimizer_variables, optimizer_values),
    ):
        for variable, value in zip(variables, values):
            if value.dtype.kind == "f" or _is_extension_float(value):
                if not np.isfinite(value.astype("float32")).all():
                    _warn_not_saved(
                        step,
                        f"the {kind} variable '{_name(variable)}' holds "
                        "NaN or infinity",
                    )
                    return None

    os.makedirs(directory, exist_ok=True)
    name = f"{CHECKPOINT_PREFIX}{step:08d}"
    target = os.path.join(directory, name)
    staging = staging_directory(
        directory, f"{_TEMP_PREFIX}{step:08d}."
    )
    try:
        files = {
            MODEL_FILE: _write_arrays(
                os.path.join(staging, MODEL_FILE), model_values
            ),
            OPTIMIZER_FILE: _write_arrays(
                os.path.join(staging, OPTIMIZER_FILE), optimizer_values
            ),
        }
        rng_values = _global_rng_state()
        if rng_values:
            files[RNG_FILE] = _write_arrays(
                os.path.join(staging, RNG_FILE), rng_values
            )
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "step": step,
            "data_position": step if data_position is None else data_position,
            **state,
            "wall_time": time.time(),
            "logs": logs,
            "backend": keras.config.backend(),
            "keras_version": keras.__version__,
            "model_class": type(model).__name__,
            "optimizer_class": (
                type(optimizer).__name__ if optimizer is not None else None
            ),
            "files": files,
            "model_variables": _specs(model_variables, model_values),
            "optimizer_variables": _specs(
                optimizer_variables, optimizer_values
            ),
        }
        # The completion marker: written last, after the weights are on disk.
        state_path = os.path.join(staging, STATE_FILE)
        with atomic_write(state_path, fsync=True) as f:
            json.dump(document, f, indent=1, allow_nan=False)
        fsync_directory(staging)
        replace_directory(staging, target)
        fsync_directory(directory)
    except OSError as error:  # Disk full, permission denied, ...
        previous = latest_checkpoint(directory)
        raise OSError(
            error.errno,
            f"Checkpoint of step {step} not written to '{directory}' "
            f"({error.strerror or error}). "
            + (
                f"The previous checkpoint, '{previous}', is intact: free "
                "space and resume from it."
                if previous
                else "There is no earlier checkpoint."
            ),
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if keep is not None:
        _prune(directory, keep)
    return target


def _warn_not_saved(step, reason):
    warnings.warn(
        f"Checkpoint of step {step} not written: {reason}. The last good "
        "checkpoint is kept.",
        stacklevel=3,
    )


def _numeric_logs(logs):
    numeric = {}
    for key, value in (logs or {}).items():
        try:
            value = np.asarray(keras.ops.convert_to_numpy(value))
        except Exception:
            continue
        if value.size == 1 and value.dtype.kind in "fiub":
            numeric[str(key)] = float(value.reshape(()))
    return numeric


def _state_variables(model):
    variables = list(model.variables)
    if not variables:
        raise ValueError(
            f"{type(model).__name__} has no variables yet: build it (call it "
            "on a batch) before saving or restoring a checkpoint."
        )
    return variables


def _name(variable):
    return getattr(variable, "path", None) or variable.name


def _values(variables):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def _is_extension_float(value):
    # bfloat16, float8, ... (ml_dtypes) are not numpy kind "f".
    return value.dtype.kind == "V" or "float" in value.dtype.name


def _specs(variables, values):
    return [
        {"name": _name(v), "shape": list(x.shape), "dtype": x.dtype.name}
        for v, x in zip(variables, values)
    ]


def _storable(value):
    """`value` as an array numpy can save without pickle."""
    if value.dtype.kind in "biufc":
        return value
    # ml_dtypes (bfloat16, float8_*): store the raw bits.
    return value.view(f"uint{value.dtype.itemsize * 8}")


def _write_arrays(path, values):
    arrays = {f"arr_{i:05d}": _storable(v) for i, v in enumerate(values)}
    with atomic_write(path, "wb", fsync=True) as f:
        np.savez(f, **arrays)
    return {"bytes": os.path.getsize(path), "sha256": sha256_of(path)}


def _global_rng_state():
    """Global random states that the training step draws from.

    On PyTorch, Keras' unseeded dropout uses torch's global generator (the
    other backends draw from the layers' seed generators, saved with the
    model variables).
    """
    if keras.config.backend() != "torch":
        return []
    import torch

    states = [torch.get_rng_state().numpy()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states += [s.numpy() for s in torch.cuda.get_rng_state_all()]
    return states


def _set_global_rng_state(values):
    if keras.config.backend() != "torch" or not values:
        return
    import torch

    torch.set_rng_state(torch.from_numpy(np.array(values[0], "uint8")))
    cuda_states = values[1:]
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(
                [torch.from_numpy(np.array(s, "uint8")) for s in cuda_states]
            )


# === Finding checkpoints ===


def _checkpoint_dirs(directory):
    """`[(step, path)]` of the `ckpt-*` directories, newest first."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        match = _CHECKPOINT_NAME.match(name)
        path = os.path.join(directory, name)
        if match and os.path.isdir(path):
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def _read_state(path, verify):
    """The parsed `checkpoint.json` of `path`; ValueError if invalid."""
    state_path = os.path.join(path, STATE_FILE)
    if not os.path.isfile(state_path):
        raise ValueError(
            f"{path} is not a complete checkpoint: it has no {STATE_FILE} "
            "(the completion marker)."
        )
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"The checkpoint {path} is corrupt: {STATE_FILE} cannot be read "
            f"({error})."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{state_path} is not a keras_electra checkpoint.")
    if state.get("version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"The checkpoint {path} has format version {state['version']}; "
            f"this keras_electra reads up to {FORMAT_VERSION}."
        )
    for name, info in state.get("files", {}).items():
        file_path = os.path.join(path, name)
        if not os.path.isfile(file_path):
            raise ValueError(f"The checkpoint {path} is missing {name}.")
        size = os.path.getsize(file_path)
        if size != info["bytes"]:
            raise ValueError(
                f"The checkpoint file {file_path} is truncated or corrupt: "
                f"{size} bytes instead of {info['bytes']}."
            )
        if verify and sha256_of(file_path) != info["sha256"]:
            raise ValueError(
                f"The checkpoint file {file_path} is corrupt: its SHA-256 "
                "does not match the one recorded when it was written."
            )
    return state


def is_complete_checkpoint(path, verify=False):
    """Whether `path` is a complete, valid checkpoint.

    Args:
        path: str. A `ckpt-*` directory.
        verify: bool. Also check the files' SHA-256 (reads them whole).
    """
    try:
        _read_state(os.fspath(path), verify)
    except (ValueError, KeyError, TypeError, OSError):
        return False
    return True


def latest_checkpoint(directory, verify=False):
    """The newest complete checkpoint in `directory`, or `None`.

    Directories without a valid `checkpoint.json` (or whose files do not
    have the recorded sizes) are skipped, as are temporary directories.

    Args:
        directory: str. A `PretrainingCheckpoint` directory.
        verify: bool. Also check the files' SHA-256 and skip corrupt ones
            (reads every file of the candidates whole).

    Returns:
        The path of the `ckpt-*` directory, or `None`.
    """
    for _, path in _checkpoint_dirs(os.fspath(directory)):
        if is_complete_checkpoint(path, verify=verify):
            return path
    return None


def remove_incomplete_checkpoints(directory):
    """Delete temporary and incomplete checkpoint directories.

    Leftovers of interrupted saves. Do not call while another process
    writes checkpoints to the same directory.
    """
    directory = os.fspath(directory)
    for path in glob.glob(os.path.join(directory, f"{_TEMP_PREFIX}*.tmp")):
        shutil.rmtree(path, ignore_errors=True)
    for _, path in _checkpoint_dirs(directory):
        if not is_complete_checkpoint(path):
            shutil.rmtree(path, ignore_errors=True)


def _prune(directory, keep):
    complete = [
        path
        for _, path in _checkpoint_dirs(directory)
        if is_complete_checkpoint(path)
    ]
    for path in complete[keep:]:
        shutil.rmtree(path, ignore_errors=True)


# === Restoring ===


def restore_checkpoint(model, path, restore_optimizer=True):
    """Load a checkpoint written by `PretrainingCheckpoint` into `model`.

    Restores all model variables (weights and random seed states), builds
    the optimizer if needed (`model.optimizer.build(model.trainable_variables)`)
    and restores its variables, and, on PyTorch, the global torch random
    state. Checks everything before assigning anything: on error, the model
    is left as it was. The model must be built the same way as the one that
    was saved, with the same backend, and compiled with the same optimizer
    configuration (its variables must line up).

    On PyTorch, Keras' dropout draws from torch's global random generator,
    which `fit()`'s data loader also draws from when it starts; so that the
    resumed run sees the same dropout masks, the `keras_electra` callbacks
    (`PretrainingCheckpoint`, `TrainingCurves`, `StopOnNonFiniteLoss`) set
    the restored generator state again at the first training batch: keep
    one of them in the resumed `fit()`.

    Args:
        model: the model to restore into, compiled if `restore_optimizer`.
        path: str. A `ckpt-*` directory (e.g. from `latest_checkpoint`).
        restore_optimizer: bool. Also restore the optimizer's state.

    Returns:
        dict: the checkpoint's state: `step`, `data_position`,
        `initial_epoch` and `epoch` (if saved by the callback), `wall_time`,
        `train_seconds`, `logs`, `path`, ...

    Raises:
        ValueError: if `path` is not a complete checkpoint, a file is corrupt
            or truncated, or the variables (count or shapes) do not match the
            model's; the message names the first mismatched variable.
    """
    if path is None:
        raise ValueError(
            "No checkpoint to restore: `path` is None (did "
            "`latest_checkpoint` find none?)."
        )
    path = os.fspath(path)
    state = _read_state(path, verify=True)
    model_variables = _state_variables(model)
    model_values = _read_arrays(path, MODEL_FILE, state["model_variables"])
    _check_match("model", model_variables, state["model_variables"], path)
    assignments = list(zip(model_variables, model_values))
    if restore_optimizer and state["optimizer_variables"]:
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "The model is not compiled: call `compile()` (with the same "
                "optimizer as the saved run) before `restore_checkpoint`, or "
                "pass `restore_optimizer=False`."
            )
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        optimizer_variables = list(optimizer.variables)
        optimizer_values = _read_arrays(
            path, OPTIMIZER_FILE, state["optimizer_variables"]
        )
        _check_match(
            "optimizer", optimizer_variables, state["optimizer_variables"], path
        )
        assignments += list(zip(optimizer_variables, optimizer_values))
    rng_values = []
    if RNG_FILE in state.get("files", {}):
        rng_values = _read_arrays(path, RNG_FILE, None)

    for variable, value in assignments:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        variable.assign(value.astype(_numpy_dtype(dtype)))
    _set_global_rng_state(rng_values)
    for key in ("files", "model_variables", "optimizer_variables"):
        state.pop(key, None)
    state["path"] = path
    state.setdefault("initial_epoch", 0)
    set_progress(
        model,
        step=int(state["step"]),
        data_position=state["data_position"],
        train_seconds=float(state.get("train_seconds") or 0.0),
        pending_rng=rng_values or None,
    )
    return state


def _read_arrays(path, name, specs):
    file_path = os.path.join(path, name)
    try:
        with np.load(file_path, allow_pickle=False) as arrays:
            keys = sorted(arrays.files, key=lambda k: int(k.split("_")[-1]))
            values = [arrays[key] for key in keys]
    except Exception as error:
        raise ValueError(
            f"The checkpoint file {file_path} is corrupt or truncated "
            f"({type(error).__name__}: {error})."
        ) from None
    if specs is None:
        return values
    if len(values) != len(specs):
        raise ValueError(
            f"The checkpoint file {file_path} holds {len(values)} arrays but "
            f"{STATE_FILE} lists {len(specs)}: the checkpoint is corrupt."
        )
    restored = []
    for value, spec in zip(values, specs):
        if value.dtype.name != spec["dtype"]:
            value = value.view(_numpy_dtype(spec["dtype"]))
        if list(value.shape) != list(spec["shape"]):
            raise ValueError(
                f"The checkpoint file {file_path} does not match {STATE_FILE} "
                f"for '{spec['name']}': the checkpoint is corrupt."
            )
        restored.append(value)
    return restored


def _numpy_dtype(name):
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))


def _check_match(kind, variables, specs, path):
    for index in range(max(len(variables), len(specs))):
        variable = variables[index] if index < len(variables) else None
        spec = specs[index] if index < len(specs) else None
        model_shape = None if variable is None else list(variable.shape)
        if spec is not None and model_shape == list(spec["shape"]):
            continue
        saved = (
            "nothing"
            if spec is None
            else f"'{spec['name']}' with shape {tuple(spec['shape'])}"
        )
        current = (
            "nothing"
            if variable is None
            else f"'{_name(variable)}' with shape {tuple(variable.shape)}"
        )
        raise ValueError(
            f"The checkpoint {path} does not match the {kind}: it holds "
            f"{len(specs)} {kind} variables, the {kind} has "
            f"{len(variables)}; the first mismatch is variable #{index}: "
            f"checkpoint {saved}, {kind} {current}. Build (and compile) the "
            "model exactly as in the saved run."
        )
