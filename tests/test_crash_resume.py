"""`kill -9` a pre-training run mid-way, run it again: it resumes exactly.

`recipes/pretrain.py` runs in subprocesses on the suite's backend
(`KERAS_BACKEND`): once uninterrupted, and once killed with SIGKILL after its
step-6 checkpoint, once it has trained on past it, then started again with
the same command. The second run must resume from the newest checkpoint,
lose at most `--checkpoint-every` steps, and end with the same per-step
losses, the same final checkpoint and the same preset weights as the
uninterrupted run; no temporary or partial file is left behind.
"""

import glob
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import backend
from keras_electra.training import checkpoints as checkpointing
from keras_electra.training import callbacks as training_monitor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "pretrain.py")
WORDS = "the a cat dog sat ran on mat house big small red blue green".split()
STEPS, EVERY = 12, 3
FLAGS = [
    "--size", "tiny", "--num-layers", "1", "--hidden-dim", "16",
    "--num-heads", "2", "--embedding-dim", "8", "--intermediate-dim", "32",
    "--vocabulary-size", "80", "--max-sequence-length", "24",
    "--batch-size", "4", "--steps", str(STEPS),
    "--checkpoint-every", str(EVERY), "--curves-every", "1",
    "--verbose", "0",
]
# Columns of curves.csv that must match (not wall_time).
COMPARED = [c for c in training_monitor.COLUMNS if c != "wall_time"]
TIMEOUT = 300  # seconds per recipe run; a hung run fails instead of blocking


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    documents = [
        "\n".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "."
            for _ in range(6)
        )
        for _ in range(12)
    ]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return str(path)


def command(corpus, output):
    # Without jit, JAX runs every op on its own: much slower than compiling.
    jit = "true" if backend() == "jax" else "false"
    return [sys.executable, RECIPE, "--corpus", corpus, "--output", output,
            *FLAGS, "--jit-compile", jit]


def environment(cache):
    env = dict(os.environ, KERAS_BACKEND=backend(), TF_CPP_MIN_LOG_LEVEL="2")
    # The runs share JAX's compilation cache: the resumed run does not
    # compile again (the same executable: no effect on the numbers).
    env["JAX_COMPILATION_CACHE_DIR"] = cache
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p
    )
    return env


def start(corpus, output, cwd, **variables):
    """Start the recipe in a subprocess, with more environment `variables`;
    returns `(process, log path)`."""
    log_path = output + ".log"
    env = environment(os.path.join(cwd, "jax_cache"))
    env.update(variables)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command(corpus, output), cwd=cwd, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )
    return process, log_path


def read(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def finish(process, log_path):
    """Wait for a run to end; its log, which must say it succeeded."""
    try:
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, read(log_path)
    return read(log_path)


def last_step_written(output):
    """The last complete row of `curves.csv` (a kill may cut a row)."""
    path = os.path.join(output, "curves.csv")
    try:
        lines = read(path).split("\n")[1:-1]  # header; unfinished line
    except FileNotFoundError:
        return 0
    steps = [int(line.split(",")[0]) for line in lines if line]
    return max(steps, default=0)


def kill_past_step_6_checkpoint(process, log_path, output):
    """SIGKILL the run once its step-6 checkpoint is complete and it has
    trained on past it; returns the last step it recorded."""
    step6 = os.path.join(output, "checkpoints", "ckpt-00000006")
    deadline = time.time() + TIMEOUT
    try:
        # Step 7's row is written after step 6's checkpoint is complete.
        while not (os.path.isdir(step6) and last_step_written(output) >= 7):
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(
                    "The run ended or hung before it could be killed "
                    f"(rc {process.returncode}):\n{read(log_path)}"
                )
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, read(log_path)
    return last_step_written(output)


def weights_of_h5(path):
    import h5py

    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(
            lambda name, item: arrays.__setitem__(name, item[()])
            if isinstance(item, h5py.Dataset)
            else None
        )
    return arrays


def preset_weights(preset):
    files = sorted(
        os.path.relpath(path, preset)
        for path in glob.glob(
            os.path.join(preset, "**", "*.h5"), recursive=True
        )
    )
    assert "model.weights.h5" in files
    return {name: weights_of_h5(os.path.join(preset, name)) for name in files}


def npz_arrays(path):
    with np.load(path, allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}


def assert_same_arrays(expected, actual, what):
    assert sorted(expected) == sorted(actual), what
    for key in expected:
        np.testing.assert_allclose(
            np.asarray(actual[key], "float64"),
            np.asarray(expected[key], "float64"),
            rtol=1e-6, atol=1e-7, err_msg=f"{what}: {key}",
        )


def leftovers(output):
    """Temporary or partial files anywhere in the run folder."""
    found = []
    for directory, subdirectories, files in os.walk(output):
        for name in subdirectories + files:
            if name.startswith(".") or name.endswith((".tmp", ".partial")):
                found.append(os.path.join(directory, name))
    return found


def test_kill_9_and_resume_equals_the_uninterrupted_run(corpus, tmp_path):
    cwd = str(tmp_path)
    # The uninterrupted run and the one to kill run side by side.
    reference = str(tmp_path / "uninterrupted")
    reference_run = start(corpus, reference, cwd)
    output = str(tmp_path / "killed")
    try:
        trained = kill_past_step_6_checkpoint(
            *start(corpus, output, cwd), output
        )
    finally:
        finish(*reference_run)
    assert not os.path.exists(os.path.join(output, "preset"))
    checkpoints = os.path.join(output, "checkpoints")
    newest = checkpointing.latest_checkpoint(checkpoints)
    saved = int(os.path.basename(newest).split("-")[1])

    # The same command again: it resumes from the newest checkpoint.
    log = finish(*start(corpus, output, cwd))
    match = re.search(r"Resuming from (\S+) \(step ([\d,]+)\)", log)
    assert match, log
    resumed = int(match.group(2).replace(",", ""))
    assert os.path.basename(match.group(1)) == f"ckpt-{resumed:08d}"
    assert resumed == saved and resumed % EVERY == 0
    assert 6 <= resumed <= trained < STEPS
    assert trained - resumed <= EVERY  # at most one interval lost

    # One row per step, as one run, equal to the uninterrupted run's.
    expected = training_monitor.read_curves(
        os.path.join(reference, "curves.csv")
    )
    actual = training_monitor.read_curves(os.path.join(output, "curves.csv"))
    assert [row["step"] for row in expected] == list(range(1, STEPS + 1))
    assert [row["step"] for row in actual] == list(range(1, STEPS + 1))
    for want, got in zip(expected, actual):
        for column in COMPARED:
            np.testing.assert_allclose(
                got[column], want[column], rtol=1e-6, atol=1e-7,
                err_msg=f"curves.csv, step {want['step']}, {column}",
            )

    # The same final state: last checkpoint (weights, optimizer, seeds) and
    # preset weights.
    names = sorted(os.listdir(checkpoints))
    assert names == sorted(os.listdir(os.path.join(reference, "checkpoints")))
    assert names[-1] == f"ckpt-{STEPS:08d}"
    for name in names:
        assert checkpointing.is_complete_checkpoint(
            os.path.join(checkpoints, name), verify=True
        ), name
    for file in (checkpointing.MODEL_FILE, checkpointing.OPTIMIZER_FILE):
        assert_same_arrays(
            npz_arrays(os.path.join(reference, "checkpoints", names[-1], file)),
            npz_arrays(os.path.join(checkpoints, names[-1], file)),
            f"{names[-1]}/{file}",
        )
    expected_weights = preset_weights(os.path.join(reference, "preset"))
    actual_weights = preset_weights(os.path.join(output, "preset"))
    assert sorted(expected_weights) == sorted(actual_weights)
    for name in expected_weights:
        assert_same_arrays(
            expected_weights[name], actual_weights[name], f"preset/{name}"
        )

    # Nothing temporary or half-written is left behind.
    assert leftovers(output) == []
    assert leftovers(reference) == []
