"""Crash-safe pre-training checkpoints: an interrupted run resumes exactly."""

import errno
import json
import os
import shutil

import keras
import numpy as np
import pytest

from conftest import tiny_batch, tiny_pretrainer
from keras_electra.training import checkpoints as checkpointing
from keras_electra.training.checkpoints import PretrainingCheckpoint
from keras_electra.training.checkpoints import latest_checkpoint
from keras_electra.training.checkpoints import restore_checkpoint
from keras_electra.training.checkpoints import save_checkpoint

STEPS = 6
BATCHES = [
    tiny_batch(batch_size=4, length=16, seed=i, num_padded=4)
    for i in range(STEPS)
]


def stream(start=0):
    """The training batches from `start` on (what `dataset.skip` gives)."""
    for position in range(start, STEPS):
        yield (BATCHES[position],)


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


class ClearTorchGradients(keras.callbacks.Callback):
    """Works around gradients that leak from step to step on PyTorch.

    The two towers' encoder variables share their paths
    (`transformer_layer_0/...`), so Keras' torch parameter registry (keyed
    by path) misses one tower's, and `zero_grad()` in the train step leaves
    their `.grad` to accumulate over the steps. A resumed run starts with
    clean gradients, so the test clears them every step in both runs.
    """

    def on_train_batch_begin(self, batch, logs=None):
        if keras.config.backend() == "torch":
            for variable in self.model.trainable_variables:
                variable.value.grad = None


def compiled_pretrainer(**kwargs):
    pretrainer = tiny_pretrainer(seed=0, **kwargs)
    pretrainer.compile()
    return pretrainer


def values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def test_interrupted_run_resumes_exactly(tmp_path):
    # Six steps, one per epoch (so the logs are per step), checkpointing
    # every step and keeping the last four.
    full = compiled_pretrainer()
    full_losses = StepLosses()
    full.fit(
        stream(),
        epochs=STEPS,
        steps_per_epoch=1,
        callbacks=[
            PretrainingCheckpoint(tmp_path, save_every=1, keep=4),
            full_losses,
            ClearTorchGradients(),
        ],
        verbose=0,
        shuffle=False,
    )
    assert sorted(os.listdir(tmp_path)) == [
        f"ckpt-{step:08d}" for step in (3, 4, 5, 6)
    ]
    # A crash right after step 3: the later checkpoints were never written.
    for step in (4, 5, 6):
        shutil.rmtree(tmp_path / f"ckpt-{step:08d}")

    # A new process: a fresh pretrainer, compiled, restored, trained on.
    resumed = compiled_pretrainer()
    path = latest_checkpoint(tmp_path)
    assert path == str(tmp_path / "ckpt-00000003")
    state = restore_checkpoint(resumed, path)
    assert state["step"] == 3
    assert state["data_position"] == 3
    assert state["initial_epoch"] == 3
    assert set(state["logs"]) >= {"loss", "generator_loss"}
    with np.load(os.path.join(path, "model.npz")) as saved:
        index = [id(v) for v in resumed.variables].index(
            id(resumed.seed_generator.state)
        )
        np.testing.assert_array_equal(
            values([resumed.seed_generator.state])[0],
            saved[f"arr_{index:05d}"],
        )
    resumed_losses = StepLosses()
    resumed.fit(
        stream(state["data_position"]),
        initial_epoch=state["initial_epoch"],
        epochs=STEPS,
        steps_per_epoch=1,
        callbacks=[
            PretrainingCheckpoint(tmp_path, save_every=1, keep=2),
            resumed_losses,
            ClearTorchGradients(),
        ],
        verbose=0,
        shuffle=False,
    )

    assert len(resumed_losses.losses) == 3
    np.testing.assert_allclose(
        resumed_losses.losses, full_losses.losses[3:], rtol=1e-5
    )
    for kind, got, expected in (
        ("model", resumed.variables, full.variables),
        ("optimizer", resumed.optimizer.variables, full.optimizer.variables),
    ):
        assert len(got) == len(expected)
        for a, b, variable in zip(values(got), values(expected), expected):
            np.testing.assert_allclose(
                a, b, rtol=1e-5, atol=1e-7, err_msg=f"{kind} {variable.path}"
            )
    # The resumed run carries on the numbering and keeps the last two.
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000005", "ckpt-00000006"]
    with open(tmp_path / "ckpt-00000006" / "checkpoint.json") as f:
        assert json.load(f)["data_position"] == 6


def built_pretrainer(**kwargs):
    pretrainer = compiled_pretrainer(**kwargs)
    pretrainer.optimizer.build(pretrainer.trainable_variables)
    return pretrainer


def test_incomplete_and_corrupt_checkpoints(tmp_path):
    model = built_pretrainer()
    good = save_checkpoint(model, tmp_path, 1)
    newest_good = save_checkpoint(model, tmp_path, 2)
    # Newer, but no completion marker: an interrupted copy.
    unmarked = tmp_path / "ckpt-00000003"
    shutil.copytree(newest_good, unmarked)
    os.remove(unmarked / "checkpoint.json")
    # Newer, but its weights were cut short.
    truncated = tmp_path / "ckpt-00000004"
    shutil.copytree(newest_good, truncated)
    with open(truncated / "model.npz", "r+b") as f:
        f.truncate(100)
    # A temporary directory of a save in progress.
    staging = tmp_path / ".ckpt-00000005.x1y2.tmp"
    shutil.copytree(newest_good, staging)

    assert latest_checkpoint(tmp_path) == newest_good
    with pytest.raises(ValueError, match="checkpoint.json"):
        restore_checkpoint(model, unmarked)
    with pytest.raises(ValueError, match="truncated"):
        restore_checkpoint(model, truncated)

    # Same size, flipped bytes: caught by the checksum.
    with open(os.path.join(newest_good, "model.npz"), "r+b") as f:
        f.seek(-200, os.SEEK_END)
        chunk = f.read(50)
        f.seek(-200, os.SEEK_END)
        f.write(bytes(b ^ 0xFF for b in chunk))
    with pytest.raises(ValueError, match="corrupt"):
        restore_checkpoint(model, newest_good)
    assert latest_checkpoint(tmp_path, verify=True) == good

    # The next writer cleans up what is incomplete.
    checkpointing.remove_incomplete_checkpoints(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000001", "ckpt-00000002"]


def test_keep_deletes_the_oldest_after_saving(tmp_path):
    model = built_pretrainer()
    for step in (5, 10, 15, 20):
        save_checkpoint(model, tmp_path, step, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000015", "ckpt-00000020"]


def test_mismatched_model_is_refused_and_left_alone(tmp_path):
    path = save_checkpoint(built_pretrainer(), tmp_path, 1)
    other = compiled_pretrainer(backbone_overrides={"intermediate_dim": 24})
    before = values(other.variables)
    with pytest.raises(ValueError, match="first mismatch is variable #.*'"):
        restore_checkpoint(other, path)
    for a, b in zip(values(other.variables), before):
        np.testing.assert_array_equal(a, b)
    untied = compiled_pretrainer(embedding_sharing="separate")
    with pytest.raises(ValueError, match="model variables"):
        restore_checkpoint(untied, path)
    with pytest.raises(ValueError, match="compile"):
        restore_checkpoint(tiny_pretrainer(seed=0), path)


def test_non_finite_state_is_not_saved(tmp_path):
    model = built_pretrainer()
    embeddings = model.backbone.token_embedding.embeddings
    embeddings.assign(np.full(embeddings.shape, np.nan, "float32"))
    with pytest.warns(UserWarning, match="not written.*NaN"):
        assert save_checkpoint(model, tmp_path, 1) is None
    with pytest.warns(UserWarning, match="non-finite logs"):
        logs = {"loss": np.inf}
        assert save_checkpoint(model, tmp_path, 2, logs=logs) is None
    assert os.listdir(tmp_path) == []


def test_optimizer_loss_scale_round_trips(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")
    model = built_pretrainer()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.optimizer.dynamic_scale.assign(7.0)
    model.optimizer.iterations.assign(11)
    path = save_checkpoint(model, tmp_path, 11)
    restored = compiled_pretrainer()
    restore_checkpoint(restored, path)
    for a, b in zip(
        values(restored.optimizer.variables), values(model.optimizer.variables)
    ):
        np.testing.assert_array_equal(a, b)
    scale = restored.optimizer.dynamic_scale
    assert float(keras.ops.convert_to_numpy(scale)) == 7.0


def test_bfloat16_variables_round_trip(tmp_path):
    def model():
        inputs = keras.Input((3,))
        outputs = keras.layers.Dense(2, dtype="bfloat16")(inputs)
        return keras.Model(inputs, outputs)

    saved = model()
    path = save_checkpoint(saved, tmp_path, 1)
    restored = model()
    restore_checkpoint(restored, path)
    for a, b in zip(values(restored.variables), values(saved.variables)):
        assert str(a.dtype) == "bfloat16"
        np.testing.assert_array_equal(a.astype("float32"), b.astype("float32"))


def test_disk_full_while_a_checkpoint_is_written(tmp_path, monkeypatch):
    # Steps 2 and 4 are checkpointed; the disk fills up half-way through
    # writing step 4's weights.
    write_arrays = checkpointing._write_arrays

    def fills_up(path, values):
        if "00000004" in path:
            with open(path, "wb") as file:
                file.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return write_arrays(path, values)

    monkeypatch.setattr(checkpointing, "_write_arrays", fills_up)
    pretrainer = compiled_pretrainer()
    with pytest.raises(OSError) as error:
        pretrainer.fit(
            stream(), epochs=4, steps_per_epoch=1, verbose=0,
            callbacks=[PretrainingCheckpoint(tmp_path, save_every=2)],
        )
    previous = os.path.join(tmp_path, "ckpt-00000002")
    assert error.value.errno == errno.ENOSPC
    assert "Checkpoint of step 4 not written" in str(error.value)
    assert "No space left on device" in str(error.value)
    assert f"'{previous}', is intact" in str(error.value)
    # Nothing half-written is left, and the run resumes from step 2.
    assert os.listdir(tmp_path) == ["ckpt-00000002"]
    assert latest_checkpoint(tmp_path, verify=True) == previous
    resumed = compiled_pretrainer()
    state = restore_checkpoint(resumed, previous)
    assert state["step"] == 2
