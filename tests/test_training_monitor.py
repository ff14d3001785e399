"""Stopping on non-finite losses, and the pre-training curves."""

import os
import sys

import keras
import numpy as np
import pytest

from conftest import tiny_batch, tiny_pretrainer
from keras_electra.training import checkpoints as checkpointing
from keras_electra.training.checkpoints import PretrainingCheckpoint
from keras_electra.training.checkpoints import restore_checkpoint
from keras_electra.training.callbacks import COLUMNS
from keras_electra.training.callbacks import NonFiniteLossError
from keras_electra.training.callbacks import StopOnNonFiniteLoss
from keras_electra.training.callbacks import TrainingCurves
from keras_electra.training.callbacks import plot_curves
from keras_electra.training.callbacks import read_curves

BATCHES = [
    tiny_batch(batch_size=4, length=16, seed=i, num_padded=4) for i in range(6)
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def stream(start=0):
    for position in range(start, len(BATCHES)):
        yield (BATCHES[position],)


class StepLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


class PoisonAfterStep(keras.callbacks.Callback):
    """Sets the shared embeddings to NaN after training step `step`."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            embeddings = self.model.backbone.token_embedding.embeddings
            embeddings.assign(np.full(embeddings.shape, np.nan, "float32"))


@pytest.fixture(scope="module")
def shared():
    """One compiled pretrainer (compiling is the slow part) and its start."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    pretrainer = tiny_pretrainer(seed=0)
    pretrainer.compile()
    pretrainer.optimizer.build(pretrainer.trainable_variables)
    variables = pretrainer.variables + pretrainer.optimizer.variables
    start = [np.array(keras.ops.convert_to_numpy(v)) for v in variables]
    return pretrainer, variables, start


@pytest.fixture
def pretrainer(shared):
    """The shared pretrainer, reset to its initial state."""
    model, variables, start = shared
    for variable, value in zip(variables, start):
        variable.assign(value)
    object.__setattr__(model, checkpointing._PROGRESS_ATTR, None)
    if keras.config.backend() == "torch":
        # On PyTorch, `zero_grad()` misses one tower's encoder gradients
        # (their variable paths collide with the other tower's), so they
        # would carry over from the previous test: clear them.
        for variable in model.trainable_variables:
            variable.value.grad = None
    return model


def assert_finite_checkpoints(directory):
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        assert checkpointing.is_complete_checkpoint(path, verify=True), name
        for file in ("model.npz", "optimizer.npz"):
            with np.load(os.path.join(path, file)) as arrays:
                for key in arrays.files:
                    value = arrays[key]
                    if value.dtype.kind == "f":
                        assert np.isfinite(value).all(), (name, file, key)


def fit_until_nan(model, tmp_path, poison_first):
    """Checkpoints every step; NaN weights after step 2, NaN loss at 3."""
    poison = PoisonAfterStep(2)
    checkpoint = PretrainingCheckpoint(tmp_path / "ckpt", save_every=1)
    stop = StopOnNonFiniteLoss(checkpoint_directory=tmp_path / "ckpt")
    if poison_first:
        callbacks = [poison, checkpoint, stop]
    else:
        callbacks = [checkpoint, poison, stop]
    with pytest.warns(UserWarning, match="not written"):
        with pytest.raises(NonFiniteLossError) as info:
            model.fit(
                stream(),
                epochs=1,
                steps_per_epoch=5,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,
            )
    return info.value


def test_stop_on_non_finite_loss_keeps_only_good_checkpoints(
    pretrainer, tmp_path
):
    # The weights turn NaN after step 2, so its checkpoint is refused.
    error = fit_until_nan(pretrainer, tmp_path, poison_first=True)
    assert isinstance(error, FloatingPointError)
    assert error.step == 3
    message = str(error)
    assert "step 3" in message
    assert "loss=nan" in message
    assert "ckpt-00000001" in message
    assert "learning rate" in message and "restore_checkpoint" in message
    assert os.listdir(tmp_path / "ckpt") == ["ckpt-00000001"]
    assert_finite_checkpoints(tmp_path / "ckpt")


def test_stop_on_non_finite_loss_mixed_bfloat16(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = tiny_pretrainer(seed=0)
    model.compile()
    error = fit_until_nan(model, tmp_path, poison_first=False)
    assert error.step == 3 and "step 3" in str(error)
    assert sorted(os.listdir(tmp_path / "ckpt")) == [
        "ckpt-00000001",
        "ckpt-00000002",
    ]
    assert_finite_checkpoints(tmp_path / "ckpt")


def test_training_curves_and_resume(pretrainer, tmp_path):
    curves_dir = tmp_path / "curves"
    logs = StepLogs()
    pretrainer.fit(
        stream(),
        epochs=2,
        steps_per_epoch=2,
        callbacks=[
            PretrainingCheckpoint(tmp_path / "ckpt", save_every=2),
            TrainingCurves(curves_dir, every=1),
            logs,
        ],
        verbose=0,
        shuffle=False,
    )
    csv_path = curves_dir / "curves.csv"
    with open(csv_path) as f:
        assert f.readline().strip() == ",".join(COLUMNS)
    rows = read_curves(csv_path)
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert [row["epoch"] for row in rows] == [0, 0, 1, 1]
    # Per step, not Keras' running mean over the epoch.
    losses = [entry["loss"] for entry in logs.logs]
    per_step = [losses[0], 2 * losses[1] - losses[0]]
    per_step += [losses[2], 2 * losses[3] - losses[2]]
    np.testing.assert_allclose([r["loss"] for r in rows], per_step, rtol=1e-4)
    for row in rows:
        assert row["learning_rate"] == pytest.approx(5e-4)
        for column in COLUMNS[3:-1]:
            assert np.isfinite(row[column]), column
        for column in ("generator_accuracy", "discriminator_recall"):
            assert 0 <= row[column] <= 1
    png = curves_dir / "pretraining_curves.png"
    with open(png, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert sorted(os.listdir(curves_dir)) == [
        "curves.csv",
        "pretraining_curves.png",
    ]

    # Resume from step 2: the rows of steps 3 and 4 are dropped.
    state = restore_checkpoint(pretrainer, tmp_path / "ckpt" / "ckpt-00000002")
    pretrainer.fit(
        stream(state["data_position"]),
        initial_epoch=state["initial_epoch"],
        epochs=2,
        steps_per_epoch=1,
        callbacks=[TrainingCurves(curves_dir, every=1)],
        verbose=0,
        shuffle=False,
    )
    resumed = read_curves(csv_path)
    assert [row["step"] for row in resumed] == [1, 2, 3]
    assert resumed[:2] == rows[:2]

    # Re-plotting a CSV.
    plot_curves(csv_path, tmp_path / "again.png")
    with open(tmp_path / "again.png", "rb") as f:
        assert f.read(8) == PNG_MAGIC


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        TrainingCurves(tmp_path)
    TrainingCurves(tmp_path, plot=False)  # The CSV alone needs nothing.
