"""`kill -9` a pre-training run, run it again: it resumes exactly.

`recipes/pretrain.py` runs in subprocesses on the suite's backend
(`KERAS_BACKEND`), once uninterrupted; the same command is then killed with
SIGKILL and started again, until it ends. The killed run must resume from
the newest complete checkpoint, never read a half-written file, and end with
the same per-step losses, the same final checkpoint and the same preset
weights as the uninterrupted run; no temporary file is left behind.

- Once, after its step-6 checkpoint, once it has trained on past it (every
  backend: resuming the training state exactly is backend code).
- Twelve times, at moments drawn across the whole run: counting the
  vocabulary, writing it, writing the example shards, mid-step, mid-way
  through a checkpoint and through the final preset save.
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


def wait_for_end(process):
    """Wait for a run to end (killed if it hangs); its return code."""
    try:
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode


def finish(process, log_path):
    """Wait for a run to end; its log, which must say it succeeded."""
    assert wait_for_end(process) == 0, read(log_path)
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


def assert_same_as_uninterrupted(reference, output):
    """`output`'s run ended as the uninterrupted `reference`: the same
    per-step curves, checkpoints and preset weights."""
    checkpoints = os.path.join(output, "checkpoints")
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

    assert_same_as_uninterrupted(reference, output)

    # Nothing temporary or half-written is left behind.
    assert leftovers(output) == []
    assert leftovers(reference) == []


# === Killed at random moments ===

# Imported first in every recipe run (through PYTHONPATH): SIGKILL the run
# at the `count`-th `event` (a Python audit event: a file opened, a rename)
# whose paths match `pattern`, `delay` seconds after it.
KILL_HOOK = """
import os, re, signal, sys, threading

event, pattern, count, delay = os.environ["KILL_AT"].split("|")
pattern, left, delay = re.compile(pattern), [int(count)], float(delay)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def hook(name, args):
    if name != event:
        return
    paths = " ".join(a for a in args[:2] if isinstance(a, str))
    if pattern.search(paths):
        left[0] -= 1
        if left[0] == 0:
            threading.Timer(delay, die).start() if delay else die()


sys.addaudithook(hook)
"""


def kill_plan(rng):
    """`(phase, event, pattern, count, delay)` of each kill, in run order."""
    mid_step = lambda: rng.uniform(0.0, 0.3)  # noqa: E731
    return [
        ("vocabulary", "open", r"corpus\.txt", 1, 0.0),  # counting words
        ("vocabulary", "os.rename", r"\.vocab\.txt\.", 1, 0.0),
        ("shards", "os.rename", r"\.tfrecord\.", rng.randint(1, 4), 0.0),
        ("shards", "os.rename", r"\.tfrecord\.", rng.randint(1, 4), 0.0),
        ("shards", "os.rename", r"\.metadata\.json\.", 1, 0.0),
        ("step", "open", r"curves\.csv", rng.randint(1, 3), mid_step()),
        ("checkpoint", "open", r"\.optimizer\.npz\.", 1, 0.0),
        ("step", "open", r"curves\.csv", rng.randint(2, 4), mid_step()),
        # Complete in its staging folder, not yet renamed into place.
        ("checkpoint", "os.rename", r"\.tmp \S*/ckpt-\d+$", 1, 0.0),
        ("checkpoint", "open", r"\.checkpoint\.json\.", 1, 0.0),
        ("preset", "open", r"\.electra-preset-", rng.randint(1, 2), 0.0),
        ("preset", "os.rename", r"\.tmp \S*/preset$", 1, 0.0),
    ]


def visible_state_is_whole(output, vocabulary):
    """What a killed run leaves under its own names is complete."""
    path = os.path.join(output, "vocab.txt")
    if os.path.exists(path):
        assert read(path) == vocabulary
    if os.path.exists(os.path.join(output, "examples", "metadata.json")):
        shards = glob.glob(os.path.join(output, "examples", "*.tfrecord"))
        assert len(shards) == 8, shards
    checkpoints = os.path.join(output, "checkpoints")
    for name in os.listdir(checkpoints) if os.path.isdir(checkpoints) else ():
        if not name.startswith("."):
            assert checkpointing.is_complete_checkpoint(
                os.path.join(checkpoints, name), verify=True
            ), name


@pytest.mark.skipif(
    backend() != "torch",
    reason="the kill points are file writes, the same code on every "
    "backend (resuming each backend's training state exactly is "
    "test_kill_9_and_resume_equals_the_uninterrupted_run's, on all three); "
    "PyTorch starts fastest",
)
def test_killed_at_twelve_random_moments_ends_as_the_uninterrupted_run(
    corpus, tmp_path
):
    cwd = str(tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILL_HOOK)
    python_path = os.pathsep.join([str(hooks), environment("")["PYTHONPATH"]])
    reference = str(tmp_path / "uninterrupted")
    reference_run = start(corpus, reference, cwd)
    output = str(tmp_path / "killed")
    plan = kill_plan(random.Random(0))
    try:
        for phase, *kill_at in plan:
            process, log_path = start(
                corpus, output, cwd, PYTHONPATH=python_path,
                KILL_AT="|".join(str(part) for part in kill_at),
            )
            assert wait_for_end(process) == -signal.SIGKILL, (
                f"not killed {phase} ({kill_at}):\n{read(log_path)}"
            )
            if phase == "vocabulary":
                continue
            if not os.path.exists(os.path.join(reference, "preset")):
                finish(*reference_run)
            visible_state_is_whole(
                output, read(os.path.join(reference, "vocab.txt"))
            )
    finally:
        if reference_run[0].poll() is None:
            finish(*reference_run)
    finish(*start(corpus, output, cwd))
    assert_same_as_uninterrupted(reference, output)
    assert leftovers(output) == []
