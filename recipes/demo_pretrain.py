"""A short ELECTRA pre-training run on a handful of bundled sentences.

Builds a word-level vocabulary from `recipes/data/demo_sentences.txt`,
tokenises the sentences with `keras_hub.models.ElectraTokenizer`, packs pairs
of consecutive sentences as `[CLS] A [SEP] B [SEP]`, pre-trains the
`electra_tiny` preset for a few hundred steps and prints the losses as they
fall. It then saves the pretrainer as a preset, reloads the discriminator
from it and checks that the reloaded model gives the same outputs.

The Keras backend comes from the `KERAS_BACKEND` environment variable:

    KERAS_BACKEND=jax python recipes/demo_pretrain.py

The script exits with a non-zero status if the loss of the last logging
interval is not clearly below that of the first (`--min-loss-drop`), or if
the reloaded discriminator disagrees with the trained one, so a broken
training step fails loudly.
This is a smoke test on a toy corpus, not a useful model.
"""

import argparse
import collections
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_electra  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "data", "demo_sentences.txt")
# [PAD] must be id 0: it is the id padding is filled with.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Pre-train the tiny ELECTRA preset on a few dozen bundled "
            "sentences and print the losses. The Keras backend is chosen with "
            "the KERAS_BACKEND environment variable (tensorflow, jax or "
            "torch), not with a flag."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=240,
        help="Total number of training steps (batches). Must be a multiple "
        "of --log-every.",
    )
    parser.add_argument(
        "--log-every",
        type=int,
        default=20,
        help="Print one table row every this many steps; each row averages "
        "the metrics over those steps.",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="Sentence pairs per training step.",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=32,
        help="Every example is truncated or padded to this many tokens, "
        "[CLS] and [SEP] included (at most 128, the tiny preset's "
        "max_sequence_length).",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=2e-3,
        help="Peak AdamW learning rate (after a linear warmup over the first "
        "10%% of the steps, then cosine decay to zero). Much higher than for "
        "real pre-training, so the toy model moves within a few hundred "
        "steps.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed for weight initialisation, data order and the "
        "pretrainer's masking and sampling.",
    )
    parser.add_argument(
        "--min-loss-drop",
        type=float,
        default=0.1,
        help="Fail (exit status 1) unless the mean total loss of the last "
        "--log-every steps is at least this fraction below that of the "
        "first; 0 only asks that it be lower.",
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help="Text file with one sentence per line (blank lines and lines "
        "starting with '#' are skipped).",
    )
    parser.add_argument(
        "--output-dir",
        default=os.path.join("out", "demo_preset"),
        help="Where to save the trained pretrainer as a preset directory "
        "(replaced if it exists). Relative paths are relative to the "
        "current directory.",
    )
    args = parser.parse_args(argv)
    for name in ("steps", "log_every", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.steps % args.log_every:
        parser.error("--steps must be a multiple of --log-every.")
    if not 0 <= args.min_loss_drop < 1:
        parser.error("--min-loss-drop must be in [0, 1).")
    if not 8 <= args.sequence_length <= 128:
        parser.error("--sequence-length must be between 8 and 128.")
    return args


def read_sentences(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    sentences = [line for line in lines if line and not line.startswith("#")]
    if len(sentences) < 2:
        sys.exit(f"{path} needs at least two sentences.")
    return sentences


def build_vocabulary(sentences):
    """Special tokens, then every lowercased word and punctuation mark.

    The split (runs of letters and digits, or single punctuation marks)
    matches the WordPiece tokenizer's own pre-tokenisation for plain ASCII
    text, so every word of the corpus is a single token.
    """
    counts = collections.Counter()
    for sentence in sentences:
        counts.update(re.findall(r"[a-z0-9]+|[^a-z0-9\s]", sentence.lower()))
    words = sorted(counts, key=lambda word: (-counts[word], word))
    return SPECIAL_TOKENS + words


def pack_pairs(tokenizer, sentences, sequence_length):
    """`[CLS] A [SEP] B [SEP]` for every pair of consecutive sentences."""
    cls_id = tokenizer.token_to_id("[CLS]")
    sep_id = tokenizer.token_to_id("[SEP]")
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenized = tokenizer(sentences)
    token_ids, segment_ids = [], []
    for first, second in zip(tokenized[:-1], tokenized[1:]):
        first, second = list(first), list(second)
        # Truncate the longer sentence until the pair fits.
        while len(first) + len(second) > sequence_length - 3:
            (first if len(first) >= len(second) else second).pop()
        ids = [cls_id] + first + [sep_id] + second + [sep_id]
        segments = [0] * (len(first) + 2) + [1] * (len(second) + 1)
        padding = sequence_length - len(ids)
        token_ids.append(ids + [pad_id] * padding)
        segment_ids.append(segments + [0] * padding)
    token_ids = np.array(token_ids, dtype="int32")
    return {
        "token_ids": token_ids,
        "segment_ids": np.array(segment_ids, dtype="int32"),
        "padding_mask": (token_ids != pad_id).astype("int32"),
    }


def repeat_shuffled(examples, num_rows, rng):
    """Concatenated shuffled copies of `examples`, cut to `num_rows` rows."""
    num_examples = len(examples["token_ids"])
    copies = -(-num_rows // num_examples)
    order = np.concatenate(
        [rng.permutation(num_examples) for _ in range(copies)]
    )[:num_rows]
    return {key: value[order] for key, value in examples.items()}


class LossTable(keras.callbacks.Callback):
    """Prints one row per epoch; an epoch here is `--log-every` steps."""

    COLUMNS = (
        ("loss", "total"),
        ("generator_loss", "gen"),
        ("discriminator_loss", "disc"),
        ("discriminator_accuracy", "disc acc"),
        ("generator_accuracy", "gen acc"),
        ("replaced_fraction", "replaced"),
    )

    def __init__(self, steps_per_epoch):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.rows = []

    def on_train_begin(self, logs=None):
        header = f"{'step':>6}" + "".join(
            f"{title:>10}" for _, title in self.COLUMNS
        )
        print(header)
        print("-" * len(header))

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        self.rows.append(logs)
        step = (epoch + 1) * self.steps_per_epoch
        print(
            f"{step:>6}"
            + "".join(f"{logs[key]:>10.4f}" for key, _ in self.COLUMNS),
            flush=True,
        )


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    sentences = read_sentences(args.data)
    vocabulary = build_vocabulary(sentences)
    tokenizer = keras_hub.models.ElectraTokenizer(
        vocabulary=vocabulary, lowercase=True
    )
    examples = pack_pairs(tokenizer, sentences, args.sequence_length)
    unknown_id = tokenizer.token_to_id("[UNK]")
    num_unknown = int(np.sum(examples["token_ids"] == unknown_id))
    data = repeat_shuffled(examples, args.steps * args.batch_size, rng)

    print(
        f"backend: {keras.backend.backend()} | sentences: {len(sentences)} | "
        f"pairs: {len(examples['token_ids'])} | vocabulary: "
        f"{len(vocabulary)} tokens ({num_unknown} [UNK] in the data) | "
        f"sequence length: {args.sequence_length} | batch size: "
        f"{args.batch_size} | steps: {args.steps}"
    )

    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny",
        vocab_size=len(vocabulary),
        tokenizer=tokenizer,
        seed=args.seed,
    )
    warmup_steps = max(1, args.steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, args.steps - warmup_steps),
        alpha=0.0,
        warmup_target=args.learning_rate,
        warmup_steps=warmup_steps,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=0.01,
        epsilon=1e-6,
        global_clipnorm=1.0,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    pretrainer.compile(optimizer=optimizer)

    table = LossTable(args.log_every)
    start = time.perf_counter()
    pretrainer.fit(
        data,
        batch_size=args.batch_size,
        epochs=args.steps // args.log_every,
        steps_per_epoch=args.log_every,
        shuffle=False,
        callbacks=[table],
        verbose=0,
    )
    train_seconds = time.perf_counter() - start

    first, last = table.rows[0]["loss"], table.rows[-1]["loss"]
    print(
        f"\ntotal loss: {first:.4f} (first {args.log_every} steps) -> "
        f"{last:.4f} (last {args.log_every} steps); training took "
        f"{train_seconds:.1f} s"
    )

    output_dir = os.path.abspath(args.output_dir)
    pretrainer.save_to_preset(output_dir)
    print(f"saved the pretrainer preset to {output_dir}")
    discriminator = keras_electra.ElectraDiscriminator.from_preset(output_dir)
    batch = {key: value[: args.batch_size] for key, value in examples.items()}
    expected = keras.ops.convert_to_numpy(pretrainer.discriminator(batch))
    reloaded = keras.ops.convert_to_numpy(discriminator(batch))
    difference = float(np.max(np.abs(expected - reloaded)))
    print(
        "reloaded it with keras_electra.ElectraDiscriminator.from_preset: "
        f"{discriminator.count_params():,} parameters, largest difference "
        f"from the trained discriminator's logits {difference:.2e}"
    )

    failures = []
    if not last < first * (1 - args.min_loss_drop):
        failures.append(
            f"the total loss did not fall by {args.min_loss_drop:.0%} "
            f"({first:.4f} -> {last:.4f})"
        )
    if not np.isfinite(last):
        failures.append(f"the final loss is not finite ({last})")
    if difference > 1e-4:
        failures.append(
            "the reloaded discriminator disagrees with the trained one "
            f"(largest logit difference {difference:.2e})"
        )
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
