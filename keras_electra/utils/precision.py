"""Whether bfloat16 compute pays on this device.

`mixed_bfloat16` pays only where the hardware multiplies in bfloat16 (a GPU,
or a CPU with AVX-512 BF16 or AMX). On a CPU with AVX2 alone, PyTorch's
bfloat16 matrix products fall back to a generic loop, 50-300 times slower
than float32 ones (benchmarks/RESULTS.md, "bfloat16 without bfloat16
instructions"): a model built in bfloat16 there trains and predicts far
slower, with nothing else to show why. Every `ElectraBackbone` built with a
bfloat16 compute dtype therefore checks, once per process, and warns.

- `BFLOAT16_SLOWDOWN_LIMIT`: the slowdown above which it warns.
- `bfloat16_slowdown(size)`: measure the slowdown.
- `check_bfloat16_speed(dtype_policy)`: measure once per process (where the
  policy computes in bfloat16) and warn.
"""

import math
import time
import warnings

import keras

# bfloat16 products this many times slower than float32 ones make
# `mixed_bfloat16` a loss (PyTorch's generic loop: 50 times and more);
# converted to float32 (XLA on the same CPU), they stay below it.
BFLOAT16_SLOWDOWN_LIMIT = 3.0

# The slowdown measured in this process (its backend and device are fixed).
_measured = None


def bfloat16_slowdown(size=256):
    """How many times longer a `size` x `size` bfloat16 matrix product takes
    than a float32 one on the backend's default device (best of 3 each).

    PyTorch on a CPU without bfloat16 instructions (AVX-512 BF16, AMX)
    falls back to a generic loop, 50-300 times slower than float32 (more
    for larger products) on a 2-core AMD EPYC with AVX2 only; JAX and
    TensorFlow are 1.0-1.6 times slower there. See benchmarks/RESULTS.md.

    Example:
    ```python
    from keras_electra.utils.precision import bfloat16_slowdown

    bfloat16_slowdown()  # about 50 for PyTorch on a CPU with AVX2 only
    ```
    """
    seconds = {}
    for dtype in ("float32", "bfloat16"):
        x = keras.ops.ones((size, size), dtype=dtype)
        keras.ops.convert_to_numpy(keras.ops.matmul(x, x))  # warmup
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            keras.ops.convert_to_numpy(keras.ops.matmul(x, x))
            best = min(best, time.perf_counter() - start)
        seconds[dtype] = best
    return seconds["bfloat16"] / seconds["float32"]


def check_bfloat16_speed(dtype_policy):
    """Where `dtype_policy` computes in bfloat16, the backend's bfloat16
    slowdown (`bfloat16_slowdown()`, measured once per process), with a
    `RuntimeWarning` when it is above `BFLOAT16_SLOWDOWN_LIMIT`; `None` for
    any other compute dtype (nothing is measured).

    The warning comes with the measurement, so once per process.

    Example:
    ```python
    import keras

    from keras_electra.utils.precision import check_bfloat16_speed

    check_bfloat16_speed(keras.DTypePolicy("float32"))  # None
    check_bfloat16_speed(keras.DTypePolicy("mixed_bfloat16"))  # e.g. 0.5
    ```
    """
    policy = keras.dtype_policies.get(dtype_policy)
    if policy.compute_dtype != "bfloat16":
        return None
    global _measured
    if _measured is not None:
        return _measured
    slowdown = _measured = bfloat16_slowdown()
    if slowdown > BFLOAT16_SLOWDOWN_LIMIT:
        warnings.warn(
            f"bfloat16 matrix products take {slowdown:.0f} times as long as "
            f"float32 ones here ({keras.config.backend()}): this device has "
            "no bfloat16 instructions that the backend uses, so a model "
            "computing in bfloat16 (mixed_bfloat16) will train and predict "
            "slower, not faster. Use float32.",
            RuntimeWarning,
            stacklevel=2,
        )
    return slowdown
