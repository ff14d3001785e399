"""Fine-tune and evaluate ELECTRA on SQuAD 1.1 or 2.0 (exact match and F1).

Contexts are cut into overlapping windows (`--max-sequence-length`,
`--doc-stride`), the question answerer learns start and end positions
(`[CLS]` for "no answer"), and answers are decoded over all windows of a
question with the n-best search and maximum answer length of the original
code; SQuAD 2.0 answers "" when the best `[CLS]` score beats the best span by
more than `--no-answer-threshold`. Scores use the official EM/F1.

Data: `--train-file`/`--dev-file` in the official SQuAD JSON format, or the
public copies through Hugging Face `datasets` / tensorflow-datasets.
Defaults are the paper's: learning rate by size (small 3e-4, base 1e-4, large
5e-5), layer-wise decay, 10% warmup, 2 epochs, batch 32.

    python recipes/squad.py --preset runs/small/preset --version 2.0 \\
        --train-file train-v2.0.json --dev-file dev-v2.0.json --output squad
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# keras_electra before Keras, which loads TensorFlow on its backend: it
# loads it with the setting above applied (utils/tensorflow_start.py).
import keras_electra  # noqa: E402  # isort: skip

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra import data as datasets  # noqa: E402
from keras_electra.data import squad  # noqa: E402
from keras_electra.training.finetuning import size_of  # noqa: E402
from keras_electra.training.optimizers import FINETUNING_HYPERPARAMETERS  # noqa: E402
from keras_electra.training.runs import jit_compile_option  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402
from keras_electra.utils.memory import keep_freed_memory  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--preset", required=True, help="Preset (folder or name) to fine-tune."
    )
    parser.add_argument(
        "--version",
        choices=["1.1", "2.0"],
        default="1.1",
        help="SQuAD 1.1 (always answers) or 2.0 (may answer nothing).",
    )
    parser.add_argument(
        "--train-file",
        default=None,
        help="SQuAD JSON file. Default: the public set (network needed).",
    )
    parser.add_argument(
        "--dev-file",
        default=None,
        help="SQuAD JSON file. Default: the public set (network needed).",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=None,
        help="Use only the first N questions of each split (smoke runs).",
    )
    parser.add_argument(
        "--max-sequence-length",
        type=int,
        default=384,
        help="Tokens per window (question + context piece).",
    )
    parser.add_argument(
        "--doc-stride",
        type=int,
        default=128,
        help="Context tokens between the starts of consecutive windows.",
    )
    parser.add_argument(
        "--max-question-length",
        type=int,
        default=64,
        help="Questions are cut to this many tokens.",
    )
    parser.add_argument(
        "--max-answer-length",
        type=int,
        default=30,
        help="Longest answer span, in tokens.",
    )
    parser.add_argument(
        "--n-best-size",
        type=int,
        default=20,
        help="Start and end candidates searched per window.",
    )
    parser.add_argument(
        "--no-answer-threshold",
        type=float,
        default=0.0,
        help="SQuAD 2.0 only: margin of the [CLS] score over the best span "
        "above which the answer is empty.",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Default: the paper's for the model size.",
    )
    parser.add_argument(
        "--layer-decay",
        type=float,
        default=None,
        help="Default: the paper's for the model size.",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=FINETUNING_HYPERPARAMETERS["epochs"]["squad"],
        help="Passes over the training windows.",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=FINETUNING_HYPERPARAMETERS["batch_size"],
        help="Windows per step.",
    )
    parser.add_argument(
        "--jit-compile",
        choices=["auto", "true", "false"],
        default="auto",
        help="Passed to compile(): XLA / jax.jit / torch.compile ('auto' is "
        "Keras' default).",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of weights and shuffling."
    )
    parser.add_argument("--output", default=None, help="Folder for scores.json.")
    parser.add_argument(
        "--verbose", type=int, default=1, help="Keras fit() verbosity."
    )
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def load_split(args, split, path):
    questions = datasets.load_squad(args.version, split, path=path)
    return questions[: args.max_examples] if args.max_examples else questions


def windows_of(args, tokenizer, questions, with_answers):
    """All windows, and for each question the range of its windows."""
    windows, ranges = [], []
    for question in questions:
        answers = question["answers"]
        answer = {}
        if with_answers and answers["text"]:
            answer = {
                "answer_start": answers["answer_start"][0],
                "answer_text": answers["text"][0],
            }
        found = squad.squad_windows(
            tokenizer,
            question["question"],
            question["context"],
            sequence_length=args.max_sequence_length,
            doc_stride=args.doc_stride,
            max_question_length=args.max_question_length,
            **answer,
        )
        ranges.append((len(windows), len(windows) + len(found)))
        windows.extend(found)
    return windows, ranges


def stack(windows, keys):
    return {key: np.stack([w[key] for w in windows]) for key in keys}


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    train_questions = load_split(args, "train", args.train_file)
    dev_questions = load_split(args, "dev", args.dev_file)
    tokenizer = keras_electra.ElectraTokenizer.from_preset(args.preset)
    train_windows, _ = windows_of(args, tokenizer, train_questions, True)
    dev_windows, dev_ranges = windows_of(args, tokenizer, dev_questions, False)
    features = ("token_ids", "segment_ids", "padding_mask")
    x_train = stack(train_windows, features)
    y_train = {
        "start_positions": np.array([w["start_position"] for w in train_windows]),
        "end_positions": np.array([w["end_position"] for w in train_windows]),
    }

    answerer = keras_electra.ElectraQuestionAnswerer.from_preset(args.preset)
    size = size_of(answerer.backbone)
    hyperparameters = FINETUNING_HYPERPARAMETERS
    learning_rate = args.learning_rate or hyperparameters["learning_rate"][size]
    layer_decay = args.layer_decay or hyperparameters["layer_decay"][size]
    steps_per_epoch = -(-len(train_windows) // args.batch_size)
    answerer.compile(
        optimizer=keras_electra.electra_finetuning_optimizer(
            answerer,
            learning_rate=learning_rate,
            total_steps=args.epochs * steps_per_epoch,
            layer_decay=layer_decay,
        ),
        jit_compile=jit_compile_option(args.jit_compile),
    )
    print(
        f"SQuAD {args.version}: {len(train_questions):,} training questions "
        f"({len(train_windows):,} windows), {len(dev_questions):,} dev "
        f"questions; learning rate {learning_rate:g}, layer decay "
        f"{layer_decay:g}, {args.epochs} epochs.",
        flush=True,
    )
    start = time.time()
    answerer.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=args.verbose,
    )
    logits = answerer.predict(
        stack(dev_windows, features), batch_size=128, verbose=0
    )
    threshold = args.no_answer_threshold if args.version == "2.0" else None
    predictions = {}
    for question, (first, last) in zip(dev_questions, dev_ranges):
        predictions[question["id"]] = squad.squad_answer(
            question["context"],
            dev_windows[first:last],
            logits["start_logits"][first:last],
            logits["end_logits"][first:last],
            n_best_size=args.n_best_size,
            max_answer_length=args.max_answer_length,
            no_answer_threshold=threshold,
        )
    references = {q["id"]: q["answers"]["text"] for q in dev_questions}
    scores = squad.squad_metric(predictions, references)
    print(
        f"dev exact match {scores['exact_match']:.2f}, F1 {scores['f1']:.2f}",
        flush=True,
    )
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        result = {
            "preset": args.preset,
            "version": args.version,
            "backend": keras.config.backend(),
            "seconds": round(time.time() - start, 1),
            "dev": scores,
        }
        write_json(os.path.join(args.output, "scores.json"), result)
        write_json(os.path.join(args.output, "predictions.json"), predictions)
    return scores


if __name__ == "__main__":
    # The process is the recipe's: its training steps reuse what they free
    # (keras_electra.utils.memory; before any model is built).
    keep_freed_memory()
    main()
    sys.exit(0)
