"""What TensorFlow's first training step costs with each AdamW.

On TensorFlow the first step of `fit` traces the train step into a graph
and optimises it before running it. Keras' AdamW writes a dozen ops per
variable for its update; `FusedAdamW` (what `electra_adamw` gives on
TensorFlow) writes one fused op per variable and evaluates the step's
scalars once. This script runs the same `fit` with both, each in a fresh
process, alternating, and reports the ops traced, the first step and the
optimizer's update alone (timed by itself); then it times the later steps
of both in one process, their `fit` calls alternating:

    python benchmarks/first_step.py
    python benchmarks/first_step.py --model classifier --rounds 3

`--model pretrainer` sets both optimizers up as
`pretraining_optimizer(total_steps=...)`: learning-rate warmup and decay,
clipping at global norm 1, weight decay 0.01 except on LayerNorm and
biases. `--model classifier` (an `ElectraTextClassifier`, 2 classes) sets
them up as `electra_finetuning_optimizer`: warmup and decay, the same
weight decay, layer-wise learning-rate decay 0.8. Keras' AdamW gets its
exclusions by identity: by name it would decay every variable on
TensorFlow. It prints a markdown table and writes the details as JSON to
`--output`.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra.models.electra_optimizer import FusedAdamW  # noqa: E402
from keras_electra.training import optimizers  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIMIZERS = ("keras.optimizers.AdamW", "FusedAdamW")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Time TensorFlow's first training step with Keras' AdamW "
            "and with FusedAdamW, each in a fresh process, alternating."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", choices=("pretrainer", "classifier"),
                        default="pretrainer")
    parser.add_argument("--preset", default="electra_small",
                        help="Built-in preset, randomly initialised.")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6,
                        help="Steps of each run, the first included.")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Fresh processes per optimizer; fit calls each "
                        "for the later steps.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output",
        help="Where to write the JSON results [results/first_step_MODEL.json "
        "next to this script].",
    )
    parser.add_argument("--child", choices=OPTIMIZERS + ("later-steps",),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 2 or args.rounds < 1:
        parser.error("--steps must be at least 2 and --rounds at least 1.")
    if args.output is None:
        args.output = os.path.join(
            HERE, "results", f"first_step_{args.model}.json"
        )
    return args


def make_optimizer(name, model, total_steps):
    """Pre-training's or fine-tuning's AdamW, fused or Keras' own."""
    classifier = isinstance(model, keras_electra.ElectraTextClassifier)
    if classifier and name == "FusedAdamW":
        return optimizers.electra_finetuning_optimizer(
            model, 1e-4, total_steps
        )
    if name == "FusedAdamW":
        return optimizers.pretraining_optimizer(total_steps=total_steps)
    # Both warm up over the first 10% of the steps.
    schedule = optimizers.WarmupLinearDecay(
        1e-4 if classifier else 5e-4, total_steps, warmup_fraction=0.1
    )
    optimizer = keras.optimizers.AdamW(
        schedule, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
        global_clipnorm=None if classifier else 1.0,
    )
    optimizer.exclude_from_weight_decay(var_list=[
        v for v in model.trainable_variables
        if v.name in ("gamma", "beta", "bias")
    ])
    if classifier:
        return optimizers.layerwise_decay(optimizer, model, decay=0.8)
    return optimizer


def build_model(args):
    if args.model == "pretrainer":
        return keras_electra.ElectraPretrainer.from_preset(
            args.preset, vocab_size=args.vocab_size, seed=args.seed
        )
    backbone = keras_electra.ElectraBackbone.from_preset(
        args.preset, vocab_size=args.vocab_size
    )
    return keras_electra.ElectraTextClassifier(backbone, num_classes=2)


class StepClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_train_batch_begin(self, batch, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self.began)


def compiled_model(args, optimizer_name):
    keras.utils.set_random_seed(args.seed)
    model = build_model(args)
    optimizer = make_optimizer(optimizer_name, model, 1000)
    assert isinstance(optimizer, FusedAdamW) == (
        optimizer_name == "FusedAdamW"
    ), type(optimizer)
    if args.model == "pretrainer":
        model.compile(optimizer=optimizer)
    else:
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    return model


def batches(args):
    """`--steps` batches of random rows, and labels for the classifier
    (the pretrainer makes its own)."""
    rng = np.random.default_rng(args.seed)
    token_ids = rng.integers(
        104, args.vocab_size,
        size=(args.steps * args.batch_size, args.sequence_length),
        dtype="int32",
    )
    token_ids[:, 0], token_ids[:, -1] = 101, 102
    rows = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids),
    }
    if args.model == "pretrainer":
        return rows, None
    return rows, rng.integers(0, 2, len(token_ids))


def timed_fit(model, args):
    rows, labels = batches(args)
    clock = StepClock()
    model.fit(rows, labels, batch_size=args.batch_size, shuffle=False,
              verbose=0, callbacks=[clock])
    return clock.seconds


def run_first_step(args):
    """A new model's first `fit`, in this fresh process."""
    from tensorflow.python.framework import ops

    # Every op TensorFlow creates while tracing, nested functions included
    # (TensorFlow has no public counter).
    traced = [0]
    create_op = ops.Graph._create_op_internal

    def counting_create_op(graph, *inner_args, **kwargs):
        traced[0] += 1
        return create_op(graph, *inner_args, **kwargs)

    ops.Graph._create_op_internal = counting_create_op
    model = compiled_model(args, args.child)
    seconds = timed_fit(model, args)
    ops.Graph._create_op_internal = create_op
    return {
        "optimizer": args.child,
        "ops_traced": traced[0],
        "first_step_seconds": round(seconds[0], 3),
        "variables": len(model.trainable_variables),
        "median_update_ms": round(1000 * update_seconds(model), 2),
    }


def run_later_steps(args):
    """Both optimizers' models in this process, their `fit` calls
    alternating `--rounds` times after a first one each: the steps after
    the first, side by side."""
    models = {name: compiled_model(args, name) for name in OPTIMIZERS}
    for model in models.values():
        timed_fit(model, args)
    seconds = {name: [] for name in OPTIMIZERS}
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds[name] += timed_fit(model, args)
    return {
        name: round(float(np.median(times)), 4)
        for name, times in seconds.items()
    }


def run_child(args):
    """One measurement in this process; its result as JSON on stdout."""
    assert keras.config.backend() == "tensorflow"
    if args.child == "later-steps":
        result = run_later_steps(args)
    else:
        result = run_first_step(args)
    print(json.dumps(result))
    return 0


def update_seconds(model, calls=10):
    """The optimizer's update alone, in a graph of its own: the median of
    `calls` applications of random gradients to the model's variables."""
    import tensorflow as tf

    variables = model.trainable_variables
    grads = [tf.random.normal(v.shape, stddev=1e-3) for v in variables]
    update = tf.function(lambda: model.optimizer.apply(grads, variables))
    update()  # Traces.
    seconds = []
    for _ in range(calls):
        began = time.perf_counter()
        update()
        seconds.append(time.perf_counter() - began)
    return float(np.median(seconds))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    child_argv = [
        "--model", args.model, "--preset", args.preset,
        "--vocab-size", str(args.vocab_size),
        "--sequence-length", str(args.sequence_length),
        "--batch-size", str(args.batch_size), "--steps", str(args.steps),
        "--seed", str(args.seed),
    ]
    def child(name):
        finished = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", name,
             "--rounds", str(args.rounds)] + child_argv,
            check=True, stdout=subprocess.PIPE, text=True,
            # The fused update is TensorFlow's.
            env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        )
        return json.loads(finished.stdout.splitlines()[-1])

    runs = {name: [] for name in OPTIMIZERS}
    for round_index in range(args.rounds):
        for name in OPTIMIZERS:
            print(f"round {round_index + 1}/{args.rounds}: {name}'s first "
                  "step ...", file=sys.stderr, flush=True)
            runs[name].append(child(name))
    print("later steps, both in one process ...", file=sys.stderr, flush=True)
    later_steps = child("later-steps")

    summary = {}
    for name, rows in runs.items():
        summary[name] = {
            "ops_traced": rows[0]["ops_traced"],
            "median_first_step_seconds": float(
                np.median([row["first_step_seconds"] for row in rows])
            ),
            "median_later_step_seconds": later_steps[name],
            "median_update_ms": float(
                np.median([row["median_update_ms"] for row in rows])
            ),
        }
    import tensorflow as tf

    write_json(args.output, {
        "benchmark": "first_step",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "arguments": vars(args),
        "summary": summary,
        "runs": runs,
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    })
    print(
        f"TensorFlow `fit` of the {args.model}, {args.preset}, "
        f"{args.batch_size} x {args.sequence_length}, {args.steps} steps a "
        f"call. First step and update: {args.rounds} fresh process(es) per "
        "optimizer, alternating; later steps: both in one process, "
        f"{args.rounds} alternating call(s) each (medians):\n\n"
        "| optimizer | ops traced | first step (s) | later steps (s) "
        "| update alone (ms) |\n"
        "|---|---:|---:|---:|---:|"
    )
    for name, row in summary.items():
        print(
            f"| {name} | {row['ops_traced']:,} | "
            f"{row['median_first_step_seconds']:.2f} | "
            f"{row['median_later_step_seconds']:.3f} | "
            f"{row['median_update_ms']:.1f} |"
        )
    print(f"\nWrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
