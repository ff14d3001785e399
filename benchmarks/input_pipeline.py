"""Can the input pipeline keep up with pre-training? Tokens per second of
each stage of `keras_electra.pretraining`, next to what `fit` consumes.

Stages, each timed on its own:

1. write: `write_pretraining_shards` from the text corpus, with 1 worker and
   with `--workers` worker processes (the latter's time includes starting
   the processes, which import TensorFlow: seconds each);
2. read: iterating `pretraining_dataset` batches as NumPy arrays (as Keras
   hands them to JAX and PyTorch), after a few warmup batches;
3. consume: `ElectraPretrainer.fit` on batches already in memory (the
   model's own speed, as in `benchmarks/pretrain_step.py`);
4. end to end: `fit` straight on `pretraining_dataset`.

Every rate counts sequence positions (`examples * sequence_length`,
padding included), which is what a training step costs; the JSON also has
the share of real (non-padding) tokens. `read / consume` above 1 means the
input pipeline is not the bottleneck.

The corpus is `--corpus` (text files, one sentence per line, blank lines
between documents), or by default a synthetic corpus generated into a
temporary folder, so that the benchmark runs offline. The vocabulary is
`--vocabulary` (a `vocab.txt`) or trained on the corpus. The Keras backend
comes from the `KERAS_BACKEND` environment variable:

    KERAS_BACKEND=jax python benchmarks/input_pipeline.py --quick

It prints a markdown table and writes the details as JSON to `--output`.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra import pretraining as pretraining_data  # noqa: E402
from keras_electra.training.runs import StepClock  # noqa: E402
from keras_electra.training.runs import backend_version  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

QUICK = {
    "preset": "electra_tiny",
    "steps": 5,
    "warmup_steps": 2,
    "read_batches": 50,
    "synthetic_sentences": 6_000,
    "vocabulary_size": 2_000,
}
FULL = {
    "preset": "electra_small",
    "steps": 20,
    "warmup_steps": 3,
    "read_batches": 300,
    "synthetic_sentences": 60_000,
    "vocabulary_size": 8_000,
}
TABLE_HEADER = (
    "| stage | workers | batches / examples | seconds | tokens/s "
    "| vs consume |\n|---|---:|---:|---:|---:|---:|"
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
            "Measure tokens/second of the pre-training input pipeline "
            "(writing shards, reading batches) against what "
            "ElectraPretrainer.fit consumes, on the current Keras backend "
            "(KERAS_BACKEND: tensorflow, jax or torch)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--corpus",
        nargs="+",
        default=None,
        help="Text files (one sentence per line, blank lines between "
        "documents). Default: a synthetic corpus in a temporary folder.",
    )
    parser.add_argument(
        "--synthetic-sentences",
        type=int,
        default=None,
        help=f"Sentences of the synthetic corpus. Default: "
        f"{FULL['synthetic_sentences']:,}, or "
        f"{QUICK['synthetic_sentences']:,} with --quick.",
    )
    parser.add_argument(
        "--synthetic-files",
        type=int,
        default=8,
        help="Files the synthetic corpus is split into.",
    )
    parser.add_argument(
        "--vocabulary",
        default=None,
        help="A vocab.txt with [PAD] [UNK] [CLS] [SEP] [MASK]. Default: "
        "train one on the corpus (--vocabulary-size).",
    )
    parser.add_argument(
        "--vocabulary-size",
        type=int,
        default=None,
        help=f"Size of the trained vocabulary. Default: "
        f"{FULL['vocabulary_size']:,}, or {QUICK['vocabulary_size']:,} with "
        "--quick.",
    )
    parser.add_argument(
        "--cased",
        action="store_true",
        help="Keep case and accents (default: lower-case, as uncased "
        "ELECTRA).",
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="Built-in preset whose fit is timed (randomly initialised, with "
        f"the vocabulary's size): {', '.join(keras_electra.presets)}. "
        f"Default: {FULL['preset']}, or {QUICK['preset']} with --quick.",
    )
    parser.add_argument(
        "--sequence-length", type=int, default=128, help="Tokens per example."
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="Examples per batch."
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Worker processes for the parallel write. Default: the number "
        "of CPUs, at most one per corpus file.",
    )
    parser.add_argument(
        "--num-shards", type=int, default=8, help="Shard files written."
    )
    parser.add_argument(
        "--read-batches",
        type=int,
        default=None,
        help=f"Batches read in the timed read. Default: "
        f"{FULL['read_batches']}, or {QUICK['read_batches']} with --quick.",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"Timed fit steps. Default: {FULL['steps']}, or "
        f"{QUICK['steps']} with --quick.",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help=f"Untimed fit steps first (compilation). Default: "
        f"{FULL['warmup_steps']}, or {QUICK['warmup_steps']} with --quick.",
    )
    parser.add_argument(
        "--jit-compile",
        choices=("true", "false", "auto"),
        default="true",
        help="Passed to compile(), as in pretrain_step.py.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"A small run: preset {QUICK['preset']}, a "
        f"{QUICK['synthetic_sentences']:,}-sentence synthetic corpus and "
        "fewer steps (explicit flags still win).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed.")
    parser.add_argument(
        "--output",
        default=None,
        help="JSON file for the results. Default: "
        "benchmarks/results/input_pipeline_<backend>.json.",
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.preset not in keras_electra.presets:
        parser.error(
            f"--preset must be one of {', '.join(keras_electra.presets)}."
        )
    for name in (
        "synthetic_sentences", "synthetic_files", "batch_size", "num_shards",
        "read_batches", "steps", "warmup_steps",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1.")
    if args.output is None:
        args.output = os.path.join(
            HERE, "results", f"input_pipeline_{keras.backend.backend()}.json"
        )
    args.jit_compile = {"true": True, "false": False, "auto": "auto"}[
        args.jit_compile
    ]
    return args


def synthetic_corpus(folder, num_sentences, num_files, seed):
    """Sentences of Zipf-distributed pseudo-words, 5 to 30 words long, in
    documents of 4 to 40 sentences."""
    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = sorted(
        {
            "".join(rng.choice(syllables, size=rng.integers(1, 4)))
            for _ in range(4000)
        }
    )
    weights = 1 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    paths = [
        os.path.join(folder, f"synthetic-{i:03d}.txt") for i in range(num_files)
    ]
    files = [open(path, "w", encoding="utf-8") for path in paths]
    try:
        written = 0
        while written < num_sentences:
            file = files[rng.integers(num_files)]
            size = min(int(rng.integers(4, 41)), num_sentences - written)
            for _ in range(size):
                length = rng.integers(5, 31)
                sentence = rng.choice(words, size=length, p=weights)
                file.write(" ".join(sentence).capitalize() + ".\n")
            file.write("\n")
            written += size
    finally:
        for file in files:
            file.close()
    return paths


def time_write(files, tokenizer, folder, args, workers):
    start = time.perf_counter()
    pretraining_data.write_pretraining_shards(
        files,
        tokenizer,
        folder,
        max_sequence_length=args.sequence_length,
        num_shards=args.num_shards,
        seed=args.seed,
        num_workers=workers,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    with open(os.path.join(folder, pretraining_data.METADATA_FILE)) as f:
        metadata = json.load(f)
    positions = metadata["num_examples"] * args.sequence_length
    return {
        "workers": workers,
        "examples": metadata["num_examples"],
        "real_tokens": metadata["num_tokens"],
        "positions": positions,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(positions / seconds, 1),
    }


def time_read(folder, args):
    dataset = pretraining_data.pretraining_dataset(
        folder, batch_size=args.batch_size, seed=args.seed
    )
    iterator = dataset.as_numpy_iterator()
    for _ in range(5):  # Fills the shuffle buffer, starts the readers.
        next(iterator)
    start = time.perf_counter()
    for _ in range(args.read_batches):
        next(iterator)
    seconds = time.perf_counter() - start
    positions = args.read_batches * args.batch_size * args.sequence_length
    return {
        "batches": args.read_batches,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(positions / seconds, 1),
    }


def time_fit(pretrainer, data, args):
    """Timed steps after warmup steps; `data` is arrays or a dataset."""
    total_steps = args.warmup_steps + args.steps
    clock = StepClock(batches=(args.warmup_steps - 1, total_steps - 1))
    if isinstance(data, dict):
        pretrainer.fit(
            data, batch_size=args.batch_size, epochs=1, shuffle=False,
            callbacks=[clock], verbose=0,
        )
    else:
        pretrainer.fit(
            data, steps_per_epoch=total_steps, epochs=1, callbacks=[clock],
            verbose=0,
        )
    seconds = clock.times[-1] - clock.times[0]
    positions = args.steps * args.batch_size * args.sequence_length
    return {
        "steps": args.steps,
        "warmup_seconds": round(clock.times[0] - clock.train_begin, 3),
        "seconds": round(seconds, 3),
        "step_ms": round(1000 * seconds / args.steps, 2),
        "tokens_per_second": round(positions / seconds, 1),
        "loss_at_end": clock.losses[-1],
    }


def main(argv=None):
    args = parse_args(argv)
    backend = keras.backend.backend()
    keras.utils.set_random_seed(args.seed)
    work = tempfile.TemporaryDirectory(prefix="electra-input-pipeline-")
    folder = work.name
    results = {}
    try:
        if args.corpus:
            files = args.corpus
            corpus = {"files": [os.path.abspath(f) for f in files]}
        else:
            files = synthetic_corpus(
                folder, args.synthetic_sentences, args.synthetic_files,
                args.seed,
            )
            corpus = {
                "synthetic_sentences": args.synthetic_sentences,
                "files": len(files),
            }
        corpus["megabytes"] = round(
            sum(os.path.getsize(f) for f in files) / 1e6, 3
        )

        start = time.perf_counter()
        if args.vocabulary:
            vocabulary = pretraining_data.load_vocabulary(args.vocabulary)
        else:
            vocabulary = pretraining_data.train_vocabulary(
                files, args.vocabulary_size, lowercase=not args.cased
            )
        results["vocabulary"] = {
            "size": len(vocabulary),
            "trained": not args.vocabulary,
            "seconds": round(time.perf_counter() - start, 3),
        }
        tokenizer = keras_electra.ElectraTokenizer(
            vocabulary, lowercase=not args.cased
        )

        workers = args.workers or min(os.cpu_count() or 1, len(files))
        writes = [time_write(files, tokenizer, f"{folder}/w1", args, 1)]
        if workers > 1:
            writes.append(
                time_write(files, tokenizer, f"{folder}/w{workers}", args,
                           workers)
            )
        results["write"] = writes
        shards = f"{folder}/w1"
        results["real_token_share"] = round(
            writes[0]["real_tokens"] / writes[0]["positions"], 4
        )
        results["read"] = time_read(shards, args)

        pretrainer = keras_electra.ElectraPretrainer.from_preset(
            args.preset,
            vocab_size=len(vocabulary),
            tokenizer=tokenizer,
            seed=args.seed,
        )
        if args.sequence_length > pretrainer.backbone.max_sequence_length:
            sys.exit(
                f"--sequence-length {args.sequence_length} is longer than "
                f"the preset's max_sequence_length "
                f"({pretrainer.backbone.max_sequence_length})."
            )
        pretrainer.compile(jit_compile=args.jit_compile)
        total_steps = args.warmup_steps + args.steps
        dataset = pretraining_data.pretraining_dataset(
            shards, batch_size=args.batch_size, seed=args.seed
        )
        batches = list(dataset.take(total_steps).as_numpy_iterator())
        in_memory = {
            name: np.concatenate([b[name] for b in batches])
            for name in pretraining_data.FEATURES
        }
        results["consume"] = time_fit(pretrainer, in_memory, args)
        results["end_to_end"] = time_fit(pretrainer, dataset, args)
    finally:
        work.cleanup()

    consumed = results["consume"]["tokens_per_second"]
    results["read_over_consume"] = round(
        results["read"]["tokens_per_second"] / consumed, 2
    )
    result = {
        "benchmark": "input_pipeline",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "backend": backend,
        "jit_compile": args.jit_compile,
        "effective_jit_compile": pretrainer.jit_compile,
        "preset": args.preset,
        "sequence_length": args.sequence_length,
        "batch_size": args.batch_size,
        "num_shards": args.num_shards,
        "corpus": corpus,
        **results,
        "parameters": pretrainer.count_params(),
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
    write_json(args.output, result)

    def row(stage, workers, count, seconds, rate):
        return (
            f"| {stage} | {workers} | {count:,} | {seconds:.2f} | "
            f"{rate:,.0f} | {rate / consumed:.2f} |"
        )

    print(
        f"\n{backend}, {args.preset} (vocabulary {len(vocabulary):,}), "
        f"sequence length {args.sequence_length}, batch {args.batch_size}; "
        f"corpus {corpus['megabytes']} MB; tokens = sequence positions."
    )
    print(TABLE_HEADER)
    for write in results["write"]:
        print(row("write shards", write["workers"], write["examples"],
                  write["seconds"], write["tokens_per_second"]))
    read = results["read"]
    print(row("read dataset", "-", read["batches"], read["seconds"],
              read["tokens_per_second"]))
    for stage, key in (("consume (fit, in memory)", "consume"),
                       ("fit on dataset", "end_to_end")):
        fit = results[key]
        print(row(stage, "-", fit["steps"], fit["seconds"],
                  fit["tokens_per_second"]))
    print(
        f"\nread / consume = {results['read_over_consume']}; real tokens "
        f"{100 * results['real_token_share']:.1f}% of positions; the "
        f"{workers}-worker write includes starting the worker processes. "
        f"Wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
