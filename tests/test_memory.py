"""`keep_freed_memory()` (`keras_electra.utils.memory`): after it, a large
buffer that a computation frees is reused by the next one instead of being
mapped afresh and faulted in, page by page; where the process does not run
on glibc it changes nothing; on JAX it must come before the first
computation, and says so.

It changes the whole process, so the computations run in subprocesses on
the suite's backend, one calling it first and one not (which shows that
the probe does fault without it).
"""

import os
import platform
import subprocess
import sys

import keras
import pytest

from conftest import backend
from keras_electra.utils import memory

# A 128 MB result, taken and freed on each of 8 calls, computed as each backend
# runs a training step (XLA through JAX; PyTorch eagerly). Prints the page
# faults of each call.
PROBE = """
import resource
import sys

import keras

from keras_electra.utils.memory import keep_freed_memory

if sys.argv[1] == "keep":
    assert keep_freed_memory()
a, b = keras.ops.ones((2048, 64)), keras.ops.ones((64, 16384))


def probe(a, b):
    return keras.ops.tanh(keras.ops.matmul(a, b))


if keras.backend.backend() == "jax":
    import jax

    probe = jax.jit(probe)
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    result = probe(a, b)
    keras.ops.convert_to_numpy(result[0, 0])
    del result
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
RESULT_PAGES = 2048 * 16384 * 4 // 4096

needs_glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the settings are glibc's"
)


def page_faults_per_call(mode):
    # glibc's defaults, whatever this shell set (MALLOC_MMAP_MAX_ and the
    # like, or GLIBC_TUNABLES, would hide the faults).
    environment = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("MALLOC_", "GLIBC_TUNABLES"))
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env=environment, capture_output=True, text=True, check=True,
    )
    return [int(line) for line in result.stdout.split()]


@pytest.mark.skipif(
    backend() == "tensorflow",
    reason="TensorFlow's allocator keeps the buffers it frees by itself: "
    "its probe faults no pages after the first call either way",
)
@needs_glibc
def test_a_freed_buffer_is_reused_instead_of_faulted_in_again():
    without = page_faults_per_call("default")
    assert min(without[1:]) > RESULT_PAGES / 2, without
    # glibc may take a few calls to coalesce the freed blocks into one that
    # fits (PyTorch's aligned allocations); then none faults.
    kept = page_faults_per_call("keep")
    assert max(kept[-3:]) < RESULT_PAGES / 20, kept


def test_nothing_changes_where_the_process_does_not_run_on_glibc(
    monkeypatch,
):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert memory.keep_freed_memory() is False
    if backend() == "jax":
        import jax

        assert jax.config.read("jax_cpu_enable_async_dispatch")


@pytest.mark.skipif(
    backend() != "jax", reason="only JAX dispatches asynchronously on a CPU"
)
@needs_glibc
def test_on_jax_it_refuses_after_the_first_computation():
    keras.ops.convert_to_numpy(keras.ops.ones(2))  # the suite's: long begun
    with pytest.raises(RuntimeError, match="before the first JAX"):
        memory.keep_freed_memory()
