"""What a `fit` call costs after its last step: an autotuned `tf.data`
pipeline against the untuned one the library reads.

With TensorFlow 2.21, deleting an iterator over an autotuned pipeline waits
out the autotuning thread's current pause, which doubles as the pipeline
runs (up to a minute). `fit`, `evaluate` and `predict` delete theirs when
they end, on every Keras backend that reads `tf.data`. The library's models
read every pipeline untuned (`keras_electra.utils.checks.untuned`) unless
its options say whether to autotune; this script times short `fit` calls of
a pre-trainer on the same batches both ways, alternating, on the Keras
backend that `KERAS_BACKEND` names:

    KERAS_BACKEND=tensorflow python benchmarks/fit_call_tail.py
    KERAS_BACKEND=jax python benchmarks/fit_call_tail.py --calls 8

The tail is the time from the end of a call's last step to the call's
return. It prints a markdown table and writes the details as JSON to
`--output`.
"""

import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_electra.training.runs import backend_version  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("autotuned", "untuned (the library's default)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Time short pre-training fit() calls over an autotuned and an "
            "untuned tf.data pipeline, alternating, on the current Keras "
            "backend (KERAS_BACKEND)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="electra_small",
                        help="Built-in preset, randomly initialised.")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3,
                        help="Steps of each fit() call.")
    parser.add_argument("--calls", type=int, default=5,
                        help="fit() calls per variant.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output",
        default=os.path.join(HERE, "results", "fit_call_tail.json"),
        help="Where to write the JSON results.",
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.calls < 1:
        parser.error("--steps and --calls must be at least 1.")
    return args


class CallClock(keras.callbacks.Callback):
    """When a `fit` call began and when its last step ended."""

    def on_train_begin(self, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last_step_ended = time.perf_counter()


def random_batches(args):
    """Random token ids, `[CLS] ... [SEP]`, as a repeated `tf.data`
    pipeline with default options."""
    rng = np.random.default_rng(args.seed)
    token_ids = rng.integers(
        104, args.vocab_size,
        size=(2 * args.batch_size, args.sequence_length), dtype="int32",
    )
    token_ids[:, 0], token_ids[:, -1] = 101, 102
    rows = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids),
    }
    return (
        tf.data.Dataset.from_tensor_slices(rows)
        .batch(args.batch_size, drop_remainder=True)
        .repeat()
    )


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        args.preset, vocab_size=args.vocab_size, seed=args.seed
    )
    pretrainer.compile()
    batches = random_batches(args)
    autotuned = tf.data.Options()
    autotuned.autotune.enabled = True
    datasets = dict(zip(VARIANTS, (batches.with_options(autotuned), batches)))
    pretrainer.fit(batches, steps_per_epoch=1, verbose=0)  # Compiles.

    calls = {name: [] for name in VARIANTS}
    for _ in range(args.calls):
        for name, dataset in datasets.items():
            clock = CallClock()
            pretrainer.fit(
                dataset, steps_per_epoch=args.steps, verbose=0,
                callbacks=[clock],
            )
            returned = time.perf_counter()
            calls[name].append({
                "step_seconds": round(
                    (clock.last_step_ended - clock.began) / args.steps, 4
                ),
                "tail_seconds": round(returned - clock.last_step_ended, 4),
            })

    summary = {}
    for name, rows in calls.items():
        tails = np.array([row["tail_seconds"] for row in rows])
        summary[name] = {
            "median_step_seconds": float(
                np.median([row["step_seconds"] for row in rows])
            ),
            "median_tail_seconds": float(np.median(tails)),
            "max_tail_seconds": float(tails.max()),
            "calls_with_tail_over_half_a_second": int((tails > 0.5).sum()),
            "seconds_in_tails": round(float(tails.sum()), 3),
        }
    backend = keras.config.backend()
    write_json(args.output, {
        "benchmark": "fit_call_tail",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "backend": backend,
        "arguments": vars(args),
        "summary": summary,
        "calls": calls,
        "versions": {
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            backend: backend_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    })
    print(
        f"`fit` calls of {args.steps} step(s), {args.preset}, "
        f"{args.batch_size} x {args.sequence_length}, {backend}, "
        f"{args.calls} call(s) per pipeline, alternating:\n\n"
        "| pipeline | step (s) | tail after the last step: median (s) "
        "| max (s) | calls with a tail > 0.5 s | seconds in tails |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for name, row in summary.items():
        print(
            f"| {name} | {row['median_step_seconds']:.2f} | "
            f"{row['median_tail_seconds']:.2f} | "
            f"{row['max_tail_seconds']:.2f} | "
            f"{row['calls_with_tail_over_half_a_second']} of {args.calls} | "
            f"{row['seconds_in_tails']:.1f} |"
        )
    print(f"\nWrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
