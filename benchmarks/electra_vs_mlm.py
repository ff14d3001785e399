"""ELECTRA against BERT-style MLM (and the paper's ablations) at equal compute.

The paper's Table 1 / Table 5 question at CPU scale: pre-train the same
encoder on the same corpus (the demo corpus: State of the Union addresses,
the Brown corpus and the movie-review training text, see `recipes/demo.py`)
with each objective for the same number of model FLOPs
(`keras_electra.pretraining.flops`, counted analytically), then fine-tune every
checkpoint along the way on the movie-review sentiment task with identical
settings (the demo's), for several seeds; plus the same classifier from
random weights. Objectives with a generator pay for it: they get fewer
steps than MLM for the same FLOPs.

Every checkpoint is also scored frozen: a linear classifier on its mean
token vector (`keras_electra.pretraining.probing`, as the demo does), the
random encoder too. Pre-training records the discriminator's loss,
precision and recall over equal stretches of each checkpoint interval (10
stretches in all): its curves, and at each checkpoint its state over the
last stretch rather than the interval's average.

Prints a table (fine-tuned and frozen-encoder accuracy, mean +- std over
seeds, and the discriminator at the end, per objective and compute) and the
discriminator's curves, and writes them with every run's scores to
`benchmarks/results/electra_vs_mlm.json` and plots accuracy against
pre-training compute in `benchmarks/results/electra_vs_mlm.png`.
Intermediate presets and logs go to `--work-dir`; a run that is interrupted
starts again where it stopped (finished runs are read from
`runs.jsonl` there).

    KERAS_BACKEND=tensorflow python benchmarks/electra_vs_mlm.py
    python benchmarks/electra_vs_mlm.py --objectives electra,mlm,electra_15,replace_mlm,all_tokens_mlm
    python benchmarks/electra_vs_mlm.py --quick      # smoke run, minutes
    python benchmarks/electra_vs_mlm.py --objectives electra,electra+gdes \
        --temperature 3 --output benchmarks/results/electra_gdes.json  # tied vs GDES

An objective may name its embedding sharing after a `+` (`electra+gdes`,
`replace_mlm+separate`; `ElectraPretrainer(embedding_sharing=...)`); without
one it is the pretrainer's default, `tied`.

The budget is given as `--electra-steps`: the FLOPs of that many ELECTRA
steps of the configured model, batch and sequence length.

`--temperature` is the generator's sampling temperature: 1 (the paper's)
by default; the demo's 2 x 128 encoder learns nothing as a discriminator at
1 within CPU budgets and learns at once at 3, the demo's setting.
"""

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402

from keras_electra import data as datasets  # noqa: E402
from keras_electra import pretraining as pretraining_data  # noqa: E402
from keras_electra.data.in_domain import write_in_domain_corpus  # noqa: E402
from keras_electra.pretraining import flops  # noqa: E402
from keras_electra.pretraining.preparation import prepare_examples  # noqa: E402
from keras_electra.pretraining.preparation import prepare_vocabulary  # noqa: E402
from keras_electra.pretraining.probing import encoder_features  # noqa: E402
from keras_electra.pretraining.probing import linear_probe  # noqa: E402
from keras_electra.training.finetuning import fine_tune_classifier  # noqa: E402
from keras_electra.training.finetuning import subset  # noqa: E402
from keras_electra.training.optimizers import pretraining_optimizer  # noqa: E402
from keras_electra.training.runs import DEMO_FINETUNING  # noqa: E402
from keras_electra.training.runs import DEMO_PRESET  # noqa: E402
from keras_electra.training.runs import DEMO_PRETRAINING  # noqa: E402
from keras_electra.training.runs import encoder_dimensions  # noqa: E402
from keras_electra.training.runs import jit_compile_option  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EMBEDDING_SHARING = keras_electra.pretraining.pretrainer.EMBEDDING_SHARING
# The demo's model (`keras_electra.presets["electra_demo"]`).
DEMO_MODEL = keras_electra.presets[DEMO_PRESET]["backbone"]
# Stretches of pre-training the discriminator's curves are measured over.
CURVE_POINTS = 10
CURVE_METRICS = (
    "discriminator_loss", "discriminator_recall", "discriminator_precision"
)

QUICK = {
    "num_layers": 1,
    "hidden_dim": 64,
    "vocabulary_size": 2000,
    "max_sequence_length": 64,
    "electra_steps": 20,
    "checkpoints": 2,
    "seeds": 1,
    "in_domain_copies": 1,
    "finetuning_epochs": 1,
    "finetuning_examples": 500,
}


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--objectives",
        default="electra,mlm",
        help="Comma-separated ElectraPretrainer objectives to compare, each "
        "optionally with +tied, +gdes or +separate embedding sharing.",
    )
    add("--seeds", type=int, default=3, help="Seeds per objective.")
    add(
        "--electra-steps",
        type=int,
        default=3000,
        help="Compute budget: the FLOPs of this many ELECTRA steps.",
    )
    add(
        "--checkpoints",
        type=int,
        default=3,
        help="Evenly spaced points along the budget that are fine-tuned.",
    )
    add("--num-layers", type=int, default=DEMO_MODEL["num_layers"],
        help="Encoder layers.")
    add("--hidden-dim", type=int, default=DEMO_MODEL["hidden_dim"],
        help="Encoder width (heads of 64, feed-forward 4x, embeddings as wide).")
    add("--generator-size", type=float, default=0.25,
        help="Generator width / encoder width.")
    add("--vocabulary-size", type=int,
        default=DEMO_PRETRAINING["vocabulary_size"],
        help="WordPiece vocabulary trained on the corpus.")
    add("--max-sequence-length", type=int,
        default=DEMO_PRETRAINING["max_sequence_length"],
        help="Pre-training sequence length.")
    add("--batch-size", type=int, default=DEMO_PRETRAINING["batch_size"],
        help="Pre-training batch size.")
    add("--learning-rate", type=float,
        default=DEMO_PRETRAINING["learning_rate"],
        help="Peak pre-training learning rate (every objective).")
    add("--mask-rate", type=float, default=0.15, help="Fraction masked.")
    add("--temperature", type=float, default=1.0,
        help="Softmax temperature of the generator's samples (the demo: "
        f"{DEMO_PRETRAINING['temperature']:g}).")
    add("--corpus", nargs="+", default=None,
        help="Pre-training text files instead of the demo corpus (--quick: "
        "the Brown corpus only).")
    add("--in-domain-copies", type=int,
        default=DEMO_PRETRAINING["in_domain_copies"],
        help="Times the movie-review training text is added to the corpus.")
    add("--finetuning-epochs", type=int,
        default=DEMO_FINETUNING["epochs"],
        help="Epochs of every fine-tuning run.")
    add("--finetuning-examples", type=int, default=None,
        help="Use only this many training reviews (default: all).")
    add("--jit-compile", choices=("auto", "true", "false"), default="auto",
        help="compile(jit_compile=...) for pre-training and fine-tuning.")
    add("--work-dir", default=os.path.join("out", "electra_vs_mlm"),
        help="Vocabulary, examples, presets and finished runs.")
    add("--output", default=None,
        help="JSON result [benchmarks/results/electra_vs_mlm.json, "
        "..._quick.json with --quick]; the PNG goes next to it.")
    add("--quick", action="store_true", help=f"Smoke run: {QUICK}.")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
        if args.work_dir == parser.get_default("work_dir"):
            args.work_dir += "_quick"
    args.objectives = args.objectives.split(",")
    for name in args.objectives:
        objective, sharing = split_objective(name)
        if objective not in keras_electra.pretraining.pretrainer.OBJECTIVES:
            parser.error(f"unknown objective '{objective}'")
        if sharing not in (None,) + EMBEDDING_SHARING:
            parser.error(f"unknown embedding sharing '{sharing}' in '{name}'")
    if args.checkpoints < 1 or args.electra_steps < args.checkpoints:
        parser.error("need 1 <= --checkpoints <= --electra-steps")
    if not args.temperature > 0:
        parser.error("need --temperature > 0")
    if args.output is None:
        name = "electra_vs_mlm_quick" if args.quick else "electra_vs_mlm"
        args.output = os.path.join(HERE, "results", name + ".json")
    return args


def split_objective(name):
    """`"electra+gdes"` -> `("electra", "gdes")`, `"mlm"` -> `("mlm", None)`."""
    objective, _, sharing = name.partition("+")
    return objective, sharing or None


def build_pretrainer(args, objective, seed, tokenizer):
    """The pretrainer recipes/pretrain.py builds for one run: ELECTRA-Small's
    settings with the configured sizes."""
    objective, sharing = split_objective(objective)
    options = {
        "seed": seed,
        "objective": objective,
        "discriminator_weight": 50.0,
        "mask_rate": args.mask_rate,
    }
    if objective in flops.OBJECTIVES_WITH_GENERATOR:
        options["generator_size"] = args.generator_size
        options["temperature"] = args.temperature
    if sharing is not None:
        options["embedding_sharing"] = sharing
    return keras_electra.ElectraPretrainer.from_preset(
        "electra_small",
        vocab_size=tokenizer.vocabulary_size(),
        max_sequence_length=args.max_sequence_length,
        tokenizer=tokenizer,
        **encoder_dimensions(args.num_layers, args.hidden_dim),
        **options,
    )


def step_flops(args, objective, tokenizer):
    """FLOPs of one step, from the configs of the model the recipe builds."""
    keras.utils.set_random_seed(0)
    pretrainer = build_pretrainer(args, objective, 0, tokenizer)
    generator = pretrainer.generator
    # The sharing changes no matrix product: the FLOPs are the objective's.
    return flops.pretraining_step_flops(
        split_objective(objective)[0],
        pretrainer.backbone.get_config(),
        generator.backbone.get_config() if generator is not None else None,
        args.batch_size,
        args.max_sequence_length,
        args.mask_rate,
    )


class SavePresets(keras.callbacks.Callback):
    """Saves the pretrainer as a preset at the end of every "epoch" (one
    checkpoint interval)."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder
        self.presets = []

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.folder, f"checkpoint_{epoch + 1}")
        self.model.save_to_preset(path)
        self.presets.append((path, dict(logs or {})))


class DiscriminatorCurve(keras.callbacks.Callback):
    """The discriminator's loss, precision and recall over `points` equal
    stretches of every epoch (checkpoint interval), from the counts in its
    metrics: an epoch's logs average over the whole interval."""

    def __init__(self, steps_per_epoch, points):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.ends = {
            round(steps_per_epoch * (point + 1) / points) for point in range(points)
        }
        self.points = []

    def counts(self):
        model = self.model  # under JAX, reading it syncs the training state
        variables = (
            model.discriminator_loss_tracker.total,
            model.discriminator_loss_tracker.count,
            model.discriminator_precision.true_positives,
            model.discriminator_precision.false_positives,
            model.discriminator_recall.false_negatives,
        )
        return np.array(
            [np.sum(keras.ops.convert_to_numpy(v)) for v in variables],
            dtype="float64",
        )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.start = self.counts()

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 not in self.ends:
            return
        counts = self.counts()
        total, count, true, false_positive, false_negative = counts - self.start
        self.start = counts
        self.points.append(
            {
                "steps": self.epoch * self.steps_per_epoch + batch + 1,
                "discriminator_loss": total / max(count, 1.0),
                "discriminator_precision": true / max(true + false_positive, 1.0),
                "discriminator_recall": true / max(true + false_negative, 1.0),
            }
        )


def pretrain_run(args, objective, seed, steps, tokenizer, examples_dir):
    """Pre-trains one objective/seed; the preset of every checkpoint and the
    discriminator's curve (empty without one)."""
    keras.utils.set_random_seed(seed)
    pretrainer = build_pretrainer(args, objective, seed, tokenizer)
    pretrainer.compile(
        optimizer=pretraining_optimizer(args.learning_rate, total_steps=steps),
        jit_compile=jit_compile_option(args.jit_compile),
    )
    dataset = pretraining_data.pretraining_dataset(
        examples_dir, batch_size=args.batch_size, seed=seed
    )
    saver = SavePresets(os.path.join(args.work_dir, f"{objective}_seed{seed}"))
    callbacks = [saver, keras_electra.StopOnNonFiniteLoss()]
    interval = steps // args.checkpoints
    curve = None
    if pretrainer.discriminator_loss_tracker is not None:
        curve = DiscriminatorCurve(
            interval, max(1, CURVE_POINTS // args.checkpoints)
        )
        callbacks.append(curve)
    start = time.time()
    pretrainer.fit(
        dataset,
        epochs=args.checkpoints,
        steps_per_epoch=interval,
        callbacks=callbacks,
        verbose=2,
    )
    points = curve.points if curve is not None else []
    return saver.presets, points, time.time() - start


def review_splits(args):
    """The movie-review splits every run is scored on."""
    reviews = datasets.movie_reviews(seed=0)
    splits = {name: reviews[name] for name in ("train", "dev", "test")}
    if args.finetuning_examples:
        splits["train"] = subset(splits["train"], args.finetuning_examples)
    return splits


def finetune_run(args, preset, seed, from_scratch=False):
    """Test and dev accuracy of the demo's fine-tuning recipe."""
    splits = review_splits(args)
    keras.config.set_dtype_policy("float32")
    _, scores = fine_tune_classifier(
        preset,
        splits,
        2,
        functools.partial(datasets.classification_metrics, ["accuracy"]),
        task="movie_reviews",
        from_scratch=from_scratch,
        learning_rate=DEMO_FINETUNING["learning_rate"],
        layer_decay=DEMO_FINETUNING["layer_decay"],
        epochs=args.finetuning_epochs,
        max_sequence_length=DEMO_FINETUNING["max_sequence_length"],
        pooling=DEMO_FINETUNING["pooling"],
        jit_compile=args.jit_compile,
        seed=seed,
        verbose=0,
    )
    return {
        "test_accuracy": scores["test"]["accuracy"],
        "dev_accuracy": scores["dev"]["accuracy"],
        "finetuning_seconds": scores["seconds"],
    }


def frozen_run(args, preset, seed, from_scratch=False):
    """Test and dev accuracy of a linear classifier on the frozen encoder's
    mean token vectors (the demo's `frozen_encoder_accuracy`)."""
    splits = review_splits(args)
    keras.config.set_dtype_policy("float32")
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor.from_preset(
        preset, sequence_length=DEMO_FINETUNING["max_sequence_length"]
    )
    keras.utils.set_random_seed(seed)
    backbone = keras_electra.ElectraBackbone.from_preset(
        preset, load_weights=not from_scratch
    )
    features = {
        name: encoder_features(backbone, preprocessor, split["texts"])[1]
        for name, split in splits.items()
    }
    accuracy = linear_probe(
        features["train"],
        np.asarray(splits["train"]["labels"]),
        {
            name: (features[name], np.asarray(splits[name]["labels"]))
            for name in ("dev", "test")
        },
        seed=seed,
    )
    return {
        "frozen_test_accuracy": accuracy["test"],
        "frozen_dev_accuracy": accuracy["dev"],
    }


def load_finished(path, temperature):
    """The finished runs in `path`, less those whose generator sampled at
    another temperature (1 before it was recorded)."""
    if not os.path.exists(path):
        return []
    with open(path) as file:
        runs = [json.loads(line) for line in file if line.strip()]
    return [
        r for r in runs
        if split_objective(r["objective"])[0] not in flops.OBJECTIVES_WITH_GENERATOR
        or r.get("temperature", 1.0) == temperature
    ]


def record(path, run):
    with open(path, "a") as file:
        file.write(json.dumps(run) + "\n")


def summarise(runs):
    """Means and stds over seeds per (objective, checkpoint)."""
    groups = {}
    for run in runs:
        key = (run["objective"], run["checkpoint"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (objective, checkpoint), members in sorted(
        groups.items(), key=lambda item: (item[0][0] != "none", item[0])
    ):
        row = {
            "objective": objective,
            "checkpoint": checkpoint,
            "steps": members[0]["steps"],
            "pflops": members[0]["pflops"],
            "seeds": len(members),
            "discriminator_accuracy": _mean_of(members, "discriminator_accuracy"),
            "generator_accuracy": _mean_of(members, "generator_accuracy"),
            "mlm_accuracy": _mean_of(members, "mlm_accuracy"),
        }
        for key, name in (
            ("test_accuracy", "test"),
            ("dev_accuracy", "dev"),
            ("frozen_test_accuracy", "frozen_test"),
            ("frozen_dev_accuracy", "frozen_dev"),
        ):
            row[name + "_mean"], row[name + "_std"] = _mean_and_std(
                [m[key] for m in members if key in m]
            )
        row["discriminator_curve"] = _mean_curve(
            [m["discriminator_curve"] for m in members
             if m.get("discriminator_curve")]
        )
        # The discriminator over the last stretch before the checkpoint.
        end = row["discriminator_curve"][-1] if row["discriminator_curve"] else {}
        for name in CURVE_METRICS:
            row[name] = end.get(name)
        rows.append(row)
    return rows


def _mean_and_std(values):
    if not values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), std


def _mean_curve(curves):
    """Point by point over seeds (their points are at the same steps)."""
    return [
        {"steps": points[0]["steps"],
         **{name: statistics.mean(p[name] for p in points)
            for name in CURVE_METRICS}}
        for points in zip(*curves)
    ]


def _mean_of(members, key):
    values = [m["pretraining_logs"][key] for m in members
              if key in m.get("pretraining_logs", {})]
    return statistics.mean(values) if values else None


def markdown_table(rows):
    lines = [
        "| objective | pre-training PFLOPs | steps | seeds | test accuracy "
        "(mean ± std) | dev accuracy | frozen test | frozen dev | disc. acc. "
        "| disc. loss, end | disc. recall, end | disc. precision, end "
        "| gen./MLM acc. |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        masked = row["generator_accuracy"] or row["mlm_accuracy"]
        loss = row["discriminator_loss"]
        lines.append(
            f"| {row['objective']} | {row['pflops']:.3g} | {row['steps']:,} "
            f"| {row['seeds']} | {_spread(row, 'test')} | {_spread(row, 'dev')} "
            f"| {_spread(row, 'frozen_test')} | {_spread(row, 'frozen_dev')} "
            f"| {_percent(row['discriminator_accuracy'])} "
            f"| {'–' if loss is None else f'{loss:.3f}'} "
            f"| {_percent(row['discriminator_recall'])} "
            f"| {_percent(row['discriminator_precision'])} | {_percent(masked)} |"
        )
    return "\n".join(lines)


def curve_table(rows):
    """The discriminator's loss / recall / precision (means over seeds)
    along pre-training, per objective up to its last checkpoint."""
    last = {}
    for row in rows:
        if row["discriminator_curve"]:
            last[row["objective"]] = row
    if not last:
        return ""
    lines = ["| objective | steps | disc. loss | disc. recall | disc. precision |",
             "|---|---:|---:|---:|---:|"]
    for objective, row in last.items():
        for point in row["discriminator_curve"]:
            lines.append(
                f"| {objective} | {point['steps']:,} "
                f"| {point['discriminator_loss']:.3f} "
                f"| {_percent(point['discriminator_recall'])} "
                f"| {_percent(point['discriminator_precision'])} |"
            )
    return "\n".join(lines)


def _spread(row, name):
    mean, std = row[name + "_mean"], row[name + "_std"]
    return "–" if mean is None else f"{mean:.1%} ± {std:.1%}"


def _percent(value):
    return "–" if value is None else f"{value:.1%}"


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    scratch = [r for r in rows if r["objective"] == "none"]
    for objective in dict.fromkeys(r["objective"] for r in rows):
        if objective == "none":
            continue
        points = [r for r in rows if r["objective"] == objective]
        axis.errorbar(
            [r["pflops"] for r in points],
            [100 * r["test_mean"] for r in points],
            yerr=[100 * r["test_std"] for r in points],
            marker="o", capsize=3, label=objective,
        )
    if scratch:
        axis.axhline(
            100 * scratch[0]["test_mean"], color="gray", linestyle="--",
            label="no pre-training",
        )
    axis.set_xlabel("pre-training compute (PFLOPs)")
    axis.set_ylabel("movie-review test accuracy (%)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    finished_path = os.path.join(args.work_dir, "runs.jsonl")
    runs = load_finished(finished_path, args.temperature)
    done = {(r["objective"], r["seed"], r["checkpoint"]) for r in runs}

    print("== Data: the demo corpus and the movie-review training text")
    if args.corpus:
        corpus = list(args.corpus)
    else:
        corpus = datasets.demo_corpus()
        if args.quick:
            corpus = [path for path in corpus if "brown" in path]
    if args.in_domain_copies:
        reviews = datasets.movie_reviews(seed=0)
        in_domain = write_in_domain_corpus(
            reviews, os.path.join(args.work_dir, "in_domain.txt")
        )
        corpus += [in_domain] * args.in_domain_copies
    args.corpus = corpus
    examples_dir = os.path.join(args.work_dir, "examples")
    # As recipes/pretrain.py prepares them (seed 0).
    tokenizer = prepare_vocabulary(
        corpus,
        os.path.join(args.work_dir, "vocab.txt"),
        vocabulary_size=args.vocabulary_size,
    )
    prepare_examples(
        corpus,
        tokenizer,
        examples_dir,
        max_sequence_length=args.max_sequence_length,
    )

    budget = args.electra_steps * step_flops(args, "electra", tokenizer)
    plan = {}
    for objective in args.objectives:
        per_step = step_flops(args, objective, tokenizer)
        # A whole number of checkpoint intervals, as close to the budget as
        # that allows.
        interval = max(1, round(budget / per_step / args.checkpoints))
        plan[objective] = (per_step, interval * args.checkpoints)
        print(
            f"  {objective}: {per_step / 1e9:,.1f} GFLOPs per step, "
            f"{interval * args.checkpoints:,} steps"
        )

    for seed in range(args.seeds):
        if ("none", seed, 0) not in done:
            print(f"== No pre-training, seed {seed}")
            preset = os.path.join(args.work_dir, "architecture")
            keras.utils.set_random_seed(seed)
            build_pretrainer(args, "electra", seed, tokenizer).save_to_preset(
                preset
            )
            run = {"objective": "none", "seed": seed, "checkpoint": 0,
                   "steps": 0, "pflops": 0.0}
            run.update(finetune_run(args, preset, seed, from_scratch=True))
            run.update(frozen_run(args, preset, seed, from_scratch=True))
            record(finished_path, run)
            runs.append(run)
        for objective in args.objectives:
            per_step, steps = plan[objective]
            if all((objective, seed, c + 1) in done for c in range(args.checkpoints)):
                continue
            print(f"== {objective}, seed {seed}: {steps:,} steps")
            presets, curve, seconds = pretrain_run(
                args, objective, seed, steps, tokenizer, examples_dir
            )
            for checkpoint, (preset, logs) in enumerate(presets, start=1):
                checkpoint_steps = checkpoint * steps // args.checkpoints
                run = {
                    "objective": objective, "seed": seed,
                    "checkpoint": checkpoint, "steps": checkpoint_steps,
                    "pflops": checkpoint_steps * per_step / 1e15,
                    "temperature": args.temperature,
                    "pretraining_seconds": seconds * checkpoint / args.checkpoints,
                    "pretraining_logs": {k: float(v) for k, v in logs.items()},
                    "discriminator_curve": [
                        p for p in curve if p["steps"] <= checkpoint_steps
                    ],
                }
                run.update(finetune_run(args, preset, seed))
                run.update(frozen_run(args, preset, seed))
                print(
                    f"  checkpoint {checkpoint} ({checkpoint_steps:,} steps): "
                    f"test accuracy {run['test_accuracy']:.1%}, frozen "
                    f"{run['frozen_test_accuracy']:.1%}",
                    flush=True,
                )
                record(finished_path, run)
                runs.append(run)

    wanted = set(args.objectives) | {"none"}
    runs = [r for r in runs if r["objective"] in wanted and r["seed"] < args.seeds]
    rows = summarise(runs)
    table = markdown_table(rows)
    curves = curve_table(rows)
    result = {
        "benchmark": "electra_vs_mlm",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join(
            ["python", "benchmarks/electra_vs_mlm.py", *(argv or sys.argv[1:])]
        ),
        "backend": keras.config.backend(),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "settings": vars(args),
        "budget_pflops": budget / 1e15,
        "rows": rows,
        "runs": runs,
        "table": table,
        "curve_table": curves,
        "wall_seconds": round(time.time() - started, 1),
    }
    write_json(args.output, result)
    png = os.path.splitext(args.output)[0] + ".png"
    plot(rows, png)
    print(table)
    if curves:
        print("== The discriminator along pre-training (each stretch ending "
              "at the step shown)")
        print(curves)
    print(f"Results: {args.output}; plot: {png}")
    return result


if __name__ == "__main__":
    main()
