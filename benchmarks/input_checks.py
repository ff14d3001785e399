"""What the input checks cost: token ids in range and sequence length, as
every model's `fit`, `evaluate` and `predict` run them
(`keras_electra.utils.checks.InputChecker`), on each kind of input.

For `--examples` examples of `--sequence-length` token ids (random ids of a
30,522-token vocabulary, all valid), in batches of `--batch-size`:

- arrays: `InputChecker.checked` on the whole NumPy dict at once (what
  `fit(x=arrays)` does before the first step);
- tf.data: reading every batch of a `tf.data.Dataset` of those arrays,
  with and without the check mapped over it (what `fit(dataset)` adds);
- generator: drawing every batch from a Python generator, with and without
  the per-batch host check (also what a `keras.utils.PyDataset` gets).

Each is timed `--repeats` times, the fastest kept; the table gives the
checks' time per batch and per million tokens, and that per-batch time as a
share of one step of the demo's model (`--step-ms`, measured by
`benchmarks/pretrain_step.py --demo`). Backend-free: the checks run on the
host or in `tf.data`, whatever `KERAS_BACKEND` is.

    python benchmarks/input_checks.py

It prints a markdown table and writes the details as JSON to `--output`.
"""

import argparse
import datetime
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_electra.utils.checks import InputChecker  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_SIZE = 30_522
TABLE_HEADER = (
    "| input | unchecked s | checked s | check ms per batch "
    "| check ms per M tokens | share of a demo step |\n"
    "|---|---:|---:|---:|---:|---:|"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--step-ms",
        type=float,
        default=107.0,
        help="One pre-training step of the demo's model on this machine "
        "(TensorFlow; benchmarks/pretrain_step.py --demo), in ms.",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(HERE, "results", "input_checks.json"),
        help="JSON file for the results.",
    )
    args = parser.parse_args(argv)
    for name in ("examples", "sequence_length", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.step_ms <= 0:
        parser.error("--step-ms must be positive.")
    return args


def fastest(function, repeats):
    """The shortest of `repeats` wall times of `function()`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def batches(x, batch_size):
    for start in range(0, len(x["token_ids"]), batch_size):
        yield {
            name: value[start : start + batch_size] for name, value in x.items()
        }


def drain(iterable):
    for _ in iterable:
        pass


def measure(x, checker, batch_size, repeats):
    """`{input kind: (unchecked seconds, checked seconds)}`."""
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
    return {
        # Arrays: the check is the only work (`fit` then slices them).
        "arrays": (0.0, fastest(lambda: checker.checked(x), repeats)),
        "tf.data": (
            fastest(lambda: drain(dataset), repeats),
            fastest(lambda: drain(checker.checked(dataset)[0]), repeats),
        ),
        "generator": (
            fastest(lambda: drain(batches(x, batch_size)), repeats),
            fastest(
                lambda: drain(checker.checked(batches(x, batch_size))[0]),
                repeats,
            ),
        ),
    }


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (args.examples, args.sequence_length)
    x = {
        "token_ids": rng.integers(0, VOCAB_SIZE, shape, dtype=np.int32),
        "segment_ids": np.zeros(shape, np.int32),
        "padding_mask": np.ones(shape, np.int32),
    }
    checker = InputChecker(VOCAB_SIZE, args.sequence_length)
    num_batches = -(-args.examples // args.batch_size)
    millions = args.examples * args.sequence_length / 1e6
    rows = []
    print(TABLE_HEADER)
    for kind, (unchecked, checked) in measure(
        x, checker, args.batch_size, args.repeats
    ).items():
        cost = max(checked - unchecked, 0.0)
        per_batch_ms = 1e3 * cost / num_batches
        rows.append(
            {
                "input": kind,
                "unchecked_seconds": unchecked,
                "checked_seconds": checked,
                "check_ms_per_batch": round(per_batch_ms, 4),
                "check_ms_per_million_tokens": round(1e3 * cost / millions, 2),
                "share_of_demo_step": round(per_batch_ms / args.step_ms, 5),
            }
        )
        print(
            f"| {kind} | {unchecked:.2f} | {checked:.2f} | "
            f"{per_batch_ms:.3f} | {rows[-1]['check_ms_per_million_tokens']:.1f}"
            f" | {per_batch_ms / args.step_ms:.2%} |"
        )
    result = {
        "benchmark": "input_checks",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "settings": {
            key: getattr(args, key)
            for key in (
                "examples", "sequence_length", "batch_size", "repeats",
                "step_ms",
            )
        },
        "rows": rows,
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "keras_electra": keras_electra.__version__,
        },
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
    write_json(args.output, result)
    print(
        f"{args.examples:,} examples of {args.sequence_length} tokens in "
        f"batches of {args.batch_size}; details in {args.output}"
    )
    return result


if __name__ == "__main__":
    main()
