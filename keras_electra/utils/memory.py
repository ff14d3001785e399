"""Keep the memory a training step frees, for the next step.

glibc's malloc hands large freed blocks back to the kernel and maps them
afresh when they are asked for again; every page of a fresh mapping faults
in, zeroed, when it is first written. A training step frees and takes the
same large buffers every time: on JAX, XLA's temporary buffer for the
`electra_small` classifier's train step (batch 32 x 128) is 2 GB, 555,000
page faults a step and a fifth to a quarter of its time on a 2-core CPU
(benchmarks/RESULTS.md, "glibc's fresh pages, from inside the process").

`keep_freed_memory()` changes that from inside a running process:

- glibc (Linux): no block is mapped on its own (`M_MMAP_MAX` 0) and the
  heap is never trimmed (`M_TRIM_THRESHOLD` -1), so a freed block stays
  with the process and the next step reuses it.
- JAX on a CPU: computations run on the calling thread
  (`jax_cpu_enable_async_dispatch` off). XLA's worker threads allocate from
  heaps of their own, which glibc caps at 64 MB and maps anything larger
  separately, whatever the settings above; the calling thread's heap has no
  such cap.

The process then keeps its largest working set until it exits, which is what
a training process wants; a long-lived server whose load varies may not.
"""

import ctypes
import platform

import keras

# From glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def _jax_backend_started():
    # JAX reads the dispatch setting when it creates its CPU client, at its
    # first computation; it has no public way to ask whether that happened.
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def keep_freed_memory():
    """Make this process keep the memory its training steps free.

    Call it once, before any model is built (on JAX, before any JAX
    computation). It changes glibc's malloc for the whole process, on
    every backend, and on JAX turns off the CPU's asynchronous dispatch; see
    the module docstring for why. On the 2-core development machine JAX's
    classifier train step became 22-31% faster, and a step faulted in 0 pages
    instead of 555,000. Unlike the `MALLOC_*` environment variables, it
    leaves each thread its own heap, so `tf.data`'s threads do not contend
    for one.

    Returns:
        True where the settings took effect; False where the process does
        not run on glibc (macOS, Windows, musl), and nothing changed.

    Raises:
        RuntimeError: on JAX, when a JAX computation has already run in this
            process: JAX's CPU client then exists and keeps dispatching
            asynchronously.

    Example:
    ```python
    import keras_electra
    from keras_electra.utils.memory import keep_freed_memory

    keep_freed_memory()  # first, before any model
    classifier = keras_electra.ElectraTextClassifier.from_preset(
        "electra_small", vocab_size=1000, num_classes=2
    )
    ```
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    if keras.backend.backend() == "jax":
        import jax

        if (
            jax.config.read("jax_cpu_enable_async_dispatch")
            and _jax_backend_started()
        ):
            raise RuntimeError(
                "keep_freed_memory() must be called before the first JAX "
                "computation (before any model is built): JAX's CPU client "
                "already exists and dispatches asynchronously."
            )
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    libc = ctypes.CDLL(None)
    return bool(
        libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, -1)
    )
