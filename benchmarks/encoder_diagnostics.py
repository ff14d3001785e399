"""What did pre-training put into an encoder? Three checks per preset.

For each preset saved by `recipes/pretrain.py` (or any ELECTRA preset with a
tokenizer), next to the same architecture at random initialisation:

- `token_cosine`: the mean pairwise cosine similarity of the encoder's token
  vectors over dev reviews. Near 1 means collapsed: every token looks alike,
  which is what an ELECTRA discriminator stuck at its base rate does to the
  encoder (benchmarks/RESULTS.md, "What the demo shows").
- `probe_accuracy`: test accuracy of a logistic regression on the frozen,
  mean-pooled token vectors, fitted on the movie-review training split. It
  measures how much sentiment the representation holds before any
  fine-tuning; a pre-trained encoder that does not beat its random copy here
  has nothing to transfer to the task.
- `context_gain` (with `--examples`, presets with a `pretrainer.json`): the
  pretrainer's loss on pre-training batches with each sequence's tokens
  shuffled, minus its loss on the intact batches (per head). Positive means
  the model reads context; near 0 means it predicts from unigram
  statistics alone.

Prints a table and writes JSON (`--output`).

    python benchmarks/encoder_diagnostics.py out/demo/pretraining/preset \\
        --examples out/demo/pretraining/examples
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra import data as datasets  # noqa: E402
from keras_electra import pretraining as pretraining_data  # noqa: E402
from keras_electra.pretraining.probing import encoder_features  # noqa: E402
from keras_electra.pretraining.probing import linear_probe  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

# The pretrainer metrics compared by `context_gain`, one per head.
CONTEXT_LOSSES = ("mlm_loss", "generator_loss", "discriminator_loss")


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("presets", nargs="+", help="Preset folders to check.")
    parser.add_argument(
        "--examples",
        default=None,
        help="Pre-training example shards (recipes/pretrain.py's "
        "examples/ folder) for the context check; skipped without.",
    )
    parser.add_argument(
        "--sequence-length", type=int, default=64, help="Tokens per review."
    )
    parser.add_argument(
        "--cosine-reviews",
        type=int,
        default=64,
        help="Dev reviews whose token vectors the cosine is taken over.",
    )
    parser.add_argument(
        "--context-batches",
        type=int,
        default=8,
        help="Batches of 32 pre-training examples for the context check.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed.")
    parser.add_argument(
        "--output",
        default=os.path.join("benchmarks", "results", "encoder_diagnostics.json"),
        help="JSON file for the results.",
    )
    return parser


def token_cosine(token_vectors, seed, sample=500):
    """Mean cosine similarity between distinct token vectors (a sample)."""
    rng = np.random.default_rng(seed)
    if len(token_vectors) > sample:
        picked = rng.choice(len(token_vectors), sample, replace=False)
        token_vectors = token_vectors[picked]
    unit = token_vectors / np.linalg.norm(token_vectors, axis=1, keepdims=True)
    count = len(unit)
    similarity = unit @ unit.T
    return float((similarity.sum() - np.trace(similarity)) / (count * count - count))


def shuffle_within_sequences(token_ids, padding_mask, special_ids, seed):
    """Each row's real, non-special tokens in a random order (unigram
    statistics kept, context destroyed)."""
    rng = np.random.default_rng(seed)
    shuffled = np.array(token_ids, copy=True)
    movable = np.asarray(padding_mask).astype(bool) & ~np.isin(shuffled, special_ids)
    for row, keep in zip(shuffled, movable):
        values = row[keep]
        rng.shuffle(values)
        row[keep] = values
    return shuffled


def context_gain(preset, examples, num_batches, seed):
    """Per-head loss on shuffled minus intact pre-training batches."""
    dataset = pretraining_data.pretraining_dataset(
        examples, batch_size=32, seed=seed
    )
    batches = [
        {name: np.asarray(value) for name, value in batch.items()}
        for _, batch in zip(range(num_batches), dataset)
    ]
    intact = {
        name: np.concatenate([batch[name] for batch in batches])
        for name in batches[0]
    }

    def losses(pretrainer, inputs):
        pretrainer.compile()
        logs = pretrainer.evaluate(
            inputs, batch_size=32, verbose=0, return_dict=True
        )
        return {name: float(logs[name]) for name in CONTEXT_LOSSES if name in logs}

    # A fresh copy per pass: the same masks and samples for both.
    pretrainer = keras_electra.ElectraPretrainer.from_preset(preset, seed=seed)
    special_ids = [
        pretrainer.pad_token_id, pretrainer.cls_token_id,
        pretrainer.sep_token_id, pretrainer.mask_token_id,
    ]
    intact_losses = losses(pretrainer, intact)
    shuffled = dict(
        intact,
        token_ids=shuffle_within_sequences(
            intact["token_ids"], intact["padding_mask"], special_ids, seed
        ),
    )
    shuffled_losses = losses(
        keras_electra.ElectraPretrainer.from_preset(preset, seed=seed), shuffled
    )
    return {
        name: shuffled_losses[name] - intact_losses[name] for name in intact_losses
    }


def diagnose(backbone, preprocessor, reviews, args):
    tokens, _ = encoder_features(
        backbone, preprocessor, reviews["dev"]["texts"][: args.cosine_reviews]
    )
    features = {
        split: encoder_features(backbone, preprocessor, reviews[split]["texts"])[1]
        for split in ("train", "test")
    }
    return {
        "token_cosine": token_cosine(tokens, args.seed),
        "probe_accuracy": linear_probe(
            features["train"], reviews["train"]["labels"],
            {"test": (features["test"], reviews["test"]["labels"])},
            seed=args.seed,
        )["test"],
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    for preset in args.presets:
        if not os.path.isdir(preset):
            raise ValueError(f"Preset folder {preset!r} does not exist.")
    if args.examples and not os.path.exists(
        os.path.join(args.examples, pretraining_data.METADATA_FILE)
    ):
        raise ValueError(
            f"--examples {args.examples!r} holds no pre-training shards "
            f"({pretraining_data.METADATA_FILE} is missing)."
        )
    reviews = datasets.movie_reviews(seed=0)
    rows = []
    for name, preset, load_weights in [
        ("random initialisation", args.presets[0], False)
    ] + [(preset, preset, True) for preset in args.presets]:
        print(f"Checking {name}...", flush=True)
        keras.utils.set_random_seed(args.seed)
        preprocessor = keras_electra.ElectraTextClassifierPreprocessor.from_preset(
            preset, sequence_length=args.sequence_length
        )
        backbone = keras_electra.ElectraBackbone.from_preset(
            preset, load_weights=load_weights
        )
        row = {"encoder": name, **diagnose(backbone, preprocessor, reviews, args)}
        has_pretrainer = os.path.exists(
            os.path.join(preset, "pretrainer.json")
        )
        if load_weights and args.examples and has_pretrainer:
            row["context_gain"] = context_gain(
                preset, args.examples, args.context_batches, args.seed
            )
        rows.append(row)

    print("| encoder | token cosine | linear probe (test acc.) | context gain |")
    print("|---|---:|---:|---|")
    for row in rows:
        gains = row.get("context_gain", {})
        gain = ", ".join(f"{k} {v:+.2f}" for k, v in gains.items()) or "–"
        print(
            f"| {row['encoder']} | {row['token_cosine']:.2f} "
            f"| {row['probe_accuracy']:.1%} | {gain} |"
        )
    write_json(args.output, {"rows": rows, "arguments": vars(args)})
    print(f"Results written to {args.output}")
    return rows


if __name__ == "__main__":
    main()
