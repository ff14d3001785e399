"""Throughput of the whole ELECTRA pre-training step, in tokens per second.

Times `ElectraPretrainer.fit` on random token ids: masking, the generator,
sampling, the discriminator, the backward pass and the optimizer update, all
inside the compiled train step. The first `--warmup-steps` steps (tracing and
compilation) are excluded; the clock runs from the end of the last warmup
step to the end of the last timed step, with the device synchronised at both
points. Tokens per second counts every position of every sequence
(`batch_size * sequence_length` per step; the random data has no padding).

The Keras backend comes from the `KERAS_BACKEND` environment variable:

    KERAS_BACKEND=jax python benchmarks/pretrain_step.py --quick
    KERAS_BACKEND=tensorflow python benchmarks/pretrain_step.py --demo \
        --jit-compile auto     # the step `make demo` runs
    KERAS_BACKEND=torch python benchmarks/pretrain_step.py --steps 3 \
        --jit-compile auto --profile-ops 25   # where PyTorch's step goes

It prints a markdown table row and writes the details as JSON to `--output`.
"""

import argparse
import datetime
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra.training.runs import DEMO_PRESET  # noqa: E402
from keras_electra.training.runs import DEMO_PRETRAINING  # noqa: E402
from keras_electra.training.runs import StepClock  # noqa: E402
from keras_electra.training.runs import backend_version  # noqa: E402
from keras_electra.training.runs import jit_compile_option  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

QUICK = {"preset": "electra_tiny", "batch_size": 8}
TABLE_HEADER = (
    "| backend | preset | vocab | seq len | batch | jit | step (ms) "
    "| tokens/s |\n|---|---|---:|---:|---:|---|---:|---:|"
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where the help text explains a computed one."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Measure tokens/second of the ELECTRA pre-training step (fit on "
            "random token ids) on the current Keras backend, chosen with the "
            "KERAS_BACKEND environment variable (tensorflow, jax or torch)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="Built-in preset to benchmark (randomly initialised): "
        f"{', '.join(keras_electra.presets)}. Default: electra_small, or "
        f"{QUICK['preset']} with --quick.",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=30522,
        help="Vocabulary size (the BERT-uncased size by default).",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=128,
        help="Tokens per sequence.",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"Sequences per step. Default: 32, or {QUICK['batch_size']} "
        "with --quick.",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="Timed steps, run after the warmup steps.",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=3,
        help="Untimed steps run first (compilation happens here).",
    )
    parser.add_argument(
        "--jit-compile",
        choices=("true", "false", "auto"),
        default="true",
        help="Passed to compile(): XLA on TensorFlow, jax.jit on JAX, "
        "torch.compile on PyTorch. 'auto' is Keras' default (no XLA on a "
        "CPU-only TensorFlow, eager PyTorch).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"A small run: preset {QUICK['preset']} and batch size "
        f"{QUICK['batch_size']} (explicit flags still win). On a 2-core CPU "
        "it takes about 20-30 s with TensorFlow or JAX; with torch.compile "
        "the compilation alone takes about a minute.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="The demo's model and pre-training settings (recipes/demo.py: "
        f"preset {DEMO_PRESET}, its vocabulary size, sequence length, batch "
        "size and sampling temperature) instead of a preset; replaces "
        "--preset, --vocab-size, --sequence-length and --batch-size.",
    )
    parser.add_argument(
        "--profile-ops",
        type=int,
        default=0,
        metavar="N",
        help="PyTorch only: profile the timed steps with torch.profiler and "
        "print the N operators (by input shapes) with the most time of "
        "their own per step; the step time then includes the profiler's "
        "overhead. (JAX's and TensorFlow's profilers write traces instead: "
        "jax.profiler, tf.profiler.)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed for weights and data."
    )
    parser.add_argument(
        "--output",
        default=None,
        help="JSON file for the results. Default: "
        "benchmarks/results/pretrain_step_<backend>.json (the folder is "
        "created if needed).",
    )
    args = parser.parse_args(argv)
    if args.demo and (args.quick or args.preset):
        parser.error("--demo replaces --preset and --quick; pass only one.")
    if args.demo:
        args.preset = "demo"
        args.vocab_size = DEMO_PRETRAINING["vocabulary_size"]
        args.sequence_length = DEMO_PRETRAINING["max_sequence_length"]
        args.batch_size = DEMO_PRETRAINING["batch_size"]
    defaults = QUICK if args.quick else {
        "preset": "electra_small",
        "batch_size": 32,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.preset not in keras_electra.presets and not args.demo:
        parser.error(
            f"--preset must be one of {', '.join(keras_electra.presets)}."
        )
    for name in ("batch_size", "steps", "warmup_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.profile_ops < 0:
        parser.error("--profile-ops must be at least 0.")
    if args.profile_ops and keras.backend.backend() != "torch":
        parser.error(
            "--profile-ops needs KERAS_BACKEND=torch (torch.profiler); got "
            f"{keras.backend.backend()}."
        )
    if args.vocab_size <= 103:
        parser.error(
            "--vocab-size must be above 103 ([MASK] is id 103 in the "
            "default BERT-uncased special ids)."
        )
    if args.output is None:
        args.output = os.path.join(
            HERE, "results", f"pretrain_step_{keras.backend.backend()}.json"
        )
    args.jit_compile = jit_compile_option(args.jit_compile)
    return args


def random_batch_data(num_rows, sequence_length, vocab_size, seed):
    """`[CLS] random ids [SEP]`, avoiding the special ids 0 and 100-103."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(
        104, vocab_size, size=(num_rows, sequence_length), dtype="int32"
    )
    token_ids[:, 0] = 101
    token_ids[:, -1] = 102
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids),
    }


def build_pretrainer(args):
    """A randomly initialised pretrainer: `--preset`, or the demo's."""
    if not args.demo:
        return keras_electra.ElectraPretrainer.from_preset(
            args.preset, vocab_size=args.vocab_size, seed=args.seed
        )
    return keras_electra.ElectraPretrainer.from_preset(
        DEMO_PRESET,
        vocab_size=args.vocab_size,
        max_sequence_length=args.sequence_length,
        temperature=DEMO_PRETRAINING["temperature"],
        seed=args.seed,
    )


def main(argv=None):
    args = parse_args(argv)
    backend = keras.backend.backend()
    keras.utils.set_random_seed(args.seed)

    pretrainer = build_pretrainer(args)
    if args.sequence_length > pretrainer.backbone.max_sequence_length:
        sys.exit(
            f"--sequence-length {args.sequence_length} is longer than the "
            f"preset's max_sequence_length "
            f"({pretrainer.backbone.max_sequence_length})."
        )
    pretrainer.compile(jit_compile=args.jit_compile)

    total_steps = args.warmup_steps + args.steps
    data = random_batch_data(
        total_steps * args.batch_size,
        args.sequence_length,
        args.vocab_size,
        args.seed,
    )
    clock = StepClock(batches=(args.warmup_steps - 1, total_steps - 1))
    callbacks = [clock]
    if args.profile_ops:
        callbacks.append(TorchOpProfile(args.warmup_steps))
    pretrainer.fit(
        data,
        batch_size=args.batch_size,
        epochs=1,
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )

    seconds = clock.times[-1] - clock.times[0]
    step_ms = 1000 * seconds / args.steps
    tokens_per_second = (
        args.steps * args.batch_size * args.sequence_length / seconds
    )
    warmup_seconds = clock.times[0] - clock.train_begin
    result = {
        "benchmark": "pretrain_step",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "backend": backend,
        "jit_compile": args.jit_compile,
        "effective_jit_compile": pretrainer.jit_compile,
        "preset": args.preset,
        "vocab_size": args.vocab_size,
        "sequence_length": args.sequence_length,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup_steps,
        "timed_steps": args.steps,
        "parameters": pretrainer.count_params(),
        "warmup_seconds": round(warmup_seconds, 3),
        "timed_seconds": round(seconds, 4),
        "step_ms": round(step_ms, 2),
        "tokens_per_second": round(tokens_per_second, 1),
        "loss_after_warmup": clock.losses[0],
        "loss_at_end": clock.losses[-1],
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "keras_hub": keras_hub.__version__,
            "keras_electra": keras_electra.__version__,
            backend: backend_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
    if args.profile_ops:
        result["profile"] = callbacks[-1].top_ops(args.steps, args.profile_ops)
    write_json(args.output, result)

    print(TABLE_HEADER)
    print(
        f"| {backend} | {args.preset} | {args.vocab_size} | "
        f"{args.sequence_length} | {args.batch_size} | "
        f"{pretrainer.jit_compile} | {step_ms:.1f} | {tokens_per_second:,.0f} |"
    )
    print(
        f"\n{args.steps} timed steps in {seconds:.2f} s after "
        f"{args.warmup_steps} warmup steps ({warmup_seconds:.1f} s, "
        f"compilation included); {result['parameters']:,} parameters. "
        f"Wrote {args.output}"
    )
    if args.profile_ops:
        print(
            "\nOperators with the most time of their own, per timed step "
            "(torch.profiler; the step above includes its overhead):\n\n"
            "| operator | input shapes | calls | ms |\n|---|---|---:|---:|"
        )
        for row in result["profile"]:
            print(
                f"| {row['operator']} | {row['input_shapes']} | "
                f"{row['calls_per_step']:g} | {row['self_ms_per_step']:.1f} |"
            )
    return 0


class TorchOpProfile(keras.callbacks.Callback):
    """`torch.profiler` over the steps after the first `warmup_steps`."""

    def __init__(self, warmup_steps):
        super().__init__()
        import torch

        self.warmup_steps = warmup_steps
        self.profile = torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            record_shapes=True,
        )

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warmup_steps - 1:
            self.profile.start()

    def on_train_end(self, logs=None):
        self.profile.stop()

    def top_ops(self, steps, count):
        """The `count` operators (by input shapes) with the most self time,
        per step: `{"operator", "input_shapes", "calls_per_step",
        "self_ms_per_step"}`."""
        rows = [
            {
                "operator": event.key,
                "input_shapes": str(event.input_shapes),
                "calls_per_step": round(event.count / steps, 2),
                "self_ms_per_step": round(
                    event.self_cpu_time_total / 1000 / steps, 3
                ),
            }
            for event in self.profile.key_averages(group_by_input_shape=True)
        ]
        rows.sort(key=lambda row: -row["self_ms_per_step"])
        return rows[:count]


if __name__ == "__main__":
    sys.exit(main())
