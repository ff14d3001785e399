"""Does the data path stream? Peak memory of vocabulary training, shard
writing and pre-training, on generated corpora of growing size.

For each size (`--sizes-gb`, by default 0.25, 1 and 3 GB), a synthetic
corpus is generated once into `--cache-dir` (kept, and found again by the
next run): one sentence per line, a blank line between documents, words
drawn from a fixed list of pseudo-words with a Zipf distribution, plus a
share of one-off random words (`--rare-word-share`: names, numbers, typos;
they make the number of distinct words grow with the corpus, as in real
text). Then each phase runs in its own process, on the current Keras
backend (`KERAS_BACKEND`; the first two run on TensorFlow whatever it is):

1. vocabulary: `train_vocabulary` on the corpus;
2. shards: `write_pretraining_shards` with that vocabulary;
3. pretraining: `ElectraPretrainer.fit` (`electra_tiny`) for `--steps`
   steps on `pretraining_dataset` of those shards.

Each phase's peak RSS is the kernel's (`wait4`: the largest resident size
of the phase's process, or of one of its workers); the tree column adds up
the process and its workers, sampled every 0.1 s. `--trace-python` also
records the peak of the Python heap (`tracemalloc`: exact and free of
allocator noise, but not TensorFlow's own buffers) at the cost of speed.
"import only" is a process that imports TensorFlow and keras_electra and
stops, the floor under every phase. Flat columns across sizes mean the
phase streams.

    KERAS_BACKEND=tensorflow python benchmarks/corpus_memory.py --quick

It prints a markdown table and writes the details as JSON to `--output`.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_electra  # noqa: E402  # isort: skip
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

from keras_electra import pretraining  # noqa: E402
from keras_electra.training.runs import backend_version  # noqa: E402
from keras_electra.utils.file_io import write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PHASES = ("vocabulary", "shards", "pretraining")
BASELINE = "import only"

QUICK = {
    "sizes_gb": [0.001, 0.004],
    "vocabulary_size": 1_000,
    "steps": 2,
    "batch_size": 8,
    "sequence_length": 64,
}
FULL = {
    "sizes_gb": [0.25, 1.0, 3.0],
    "vocabulary_size": 8_000,
    "steps": 5,
    "batch_size": 32,
    "sequence_length": 128,
}
TABLE_HEADER = (
    "| corpus | phase | peak RSS MB | tree peak MB | Python peak MB "
    "| seconds |\n|---|---|---:|---:|---:|---:|"
)
# Documents per generated chunk (about 0.5 MB of text: the granularity of
# a corpus's size).
_CHUNK_DOCUMENTS = 200


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where the help text explains a computed one."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Peak memory and time of vocabulary training, shard writing and "
            "a few pre-training steps on generated corpora of growing size "
            "(KERAS_BACKEND: tensorflow, jax or torch)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--sizes-gb",
        type=float,
        nargs="+",
        default=None,
        help=f"Corpus sizes in GB (1e9 bytes). Default: {FULL['sizes_gb']}, "
        f"or {QUICK['sizes_gb']} with --quick.",
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="Phases to measure (each needs the ones before it).",
    )
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(
            os.path.expanduser("~"), ".cache", "keras_electra",
            "corpus_memory",
        ),
        help="Folder of the generated corpora (kept for the next run) and "
        "of each run's vocabulary and shards (removed at the end).",
    )
    parser.add_argument(
        "--file-mb",
        type=float,
        default=256,
        help="Size of each corpus file in MB (a corpus is split into files, "
        "each starting a new document).",
    )
    parser.add_argument(
        "--rare-word-share",
        type=float,
        default=0.01,
        help="Share of the words that are one-off random strings.",
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
        "--max-distinct-words",
        type=int,
        default=None,
        help="train_vocabulary's max_distinct_words. Default: the "
        "library's; 0 counts every word (unbounded).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Worker processes of write_pretraining_shards (at most one per "
        "corpus file).",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=None,
        help=f"Tokens per example. Default: {FULL['sequence_length']}, or "
        f"{QUICK['sequence_length']} with --quick.",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"Examples per batch. Default: {FULL['batch_size']}, or "
        f"{QUICK['batch_size']} with --quick.",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"Pre-training steps. Default: {FULL['steps']}, or "
        f"{QUICK['steps']} with --quick.",
    )
    parser.add_argument(
        "--trace-python",
        action="store_true",
        help="Also record each phase's peak Python heap (tracemalloc; "
        "slower).",
    )
    parser.add_argument(
        "--delete-corpora",
        action="store_true",
        help="Remove each generated corpus once measured.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"Tiny corpora ({QUICK['sizes_gb']} GB), a small vocabulary and "
        "model input, for the test suite (explicit flags still win).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed.")
    parser.add_argument(
        "--output",
        default=None,
        help="JSON file for the results. Default: "
        "benchmarks/results/corpus_memory_<backend>.json.",
    )
    # Internal: run one phase in this process (see `measure_phase`).
    parser.add_argument("--phase-config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase_config is not None:
        return args
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.sizes_gb) <= 0 or args.file_mb <= 0:
        parser.error("--sizes-gb and --file-mb must be positive.")
    if not 0 <= args.rare_word_share < 1:
        parser.error("--rare-word-share must be in [0, 1).")
    for name in (
        "vocabulary_size", "workers", "sequence_length", "batch_size",
        "steps",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.max_distinct_words is not None and args.max_distinct_words < 0:
        parser.error("--max-distinct-words must be 0 (unbounded) or more.")
    for needed, phase in zip(PHASES, PHASES[1:]):
        if phase in args.phases and needed not in args.phases:
            parser.error(f"--phases {phase} needs {needed} too.")
    if args.output is None:
        args.output = os.path.join(
            HERE, "results", f"corpus_memory_{keras.backend.backend()}.json"
        )
    return args


# === The corpus ===


def word_list(size=30_000, seed=0):
    """`size` distinct pseudo-words of 1 to 4 syllables, most common first
    (the same list for every corpus)."""
    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words, seen = [], set()
    while len(words) < size:
        word = "".join(rng.choice(syllables, size=rng.integers(1, 5)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def generate_corpus(
    folder, num_bytes, file_bytes, rare_word_share, seed, verbose=1
):
    """Write a corpus of about `num_bytes` into `folder` (files of about
    `file_bytes`); returns the file paths. Documents of 4 to 40 sentences of
    5 to 30 words; a chunk of documents at a time, so memory stays flat."""
    rng = np.random.default_rng(seed)
    words = np.array([word.encode() for word in word_list()], dtype=object)
    cumulative = np.cumsum(1 / np.arange(1, len(words) + 1))
    cumulative /= cumulative[-1]
    os.makedirs(folder, exist_ok=True)
    paths, written, file = [], 0, None
    progress = keras.utils.Progbar(
        num_bytes,
        verbose=verbose,
        unit_name="byte",
        interval=1 if sys.stdout.isatty() else 30,
    )
    try:
        while written < num_bytes:
            if file is None or file.tell() >= file_bytes:
                if file is not None:
                    file.close()
                paths.append(os.path.join(folder, f"part-{len(paths):04d}.txt"))
                file = open(paths[-1], "wb")
            chunk = _chunk(rng, words, cumulative, rare_word_share)
            file.write(chunk)
            written += len(chunk)
            progress.update(min(written, num_bytes))
    finally:
        if file is not None:
            file.close()
    return paths


def _chunk(rng, words, cumulative, rare_word_share):
    """`_CHUNK_DOCUMENTS` documents of text, as bytes."""
    sentences = rng.integers(4, 41, size=_CHUNK_DOCUMENTS)
    lengths = rng.integers(5, 31, size=int(sentences.sum()))
    count = int(lengths.sum())
    tokens = words[np.searchsorted(cumulative, rng.random(count))]
    rare = np.flatnonzero(rng.random(count) < rare_word_share)
    if len(rare):
        letters = rng.integers(97, 123, size=(len(rare), 9), dtype=np.uint8)
        tokens[rare] = letters.view("S9").ravel().tolist()
    # What follows each word: a space, or the end of a sentence, or of a
    # sentence and its document (a blank line).
    separators = np.full(count, b" ", dtype=object)
    sentence_ends = np.cumsum(lengths) - 1
    separators[sentence_ends] = b".\n"
    separators[sentence_ends[np.cumsum(sentences) - 1]] = b".\n\n"
    text = np.empty(2 * count, dtype=object)
    text[0::2] = tokens
    text[1::2] = separators
    return b"".join(text.tolist())


def cached_corpus(cache_dir, num_bytes, args):
    """The corpus of `num_bytes` in `cache_dir`, generated if not there yet
    (into a temporary folder renamed into place when complete)."""
    name = (
        f"corpus-{num_bytes}B-rare{args.rare_word_share:g}-"
        f"files{int(args.file_mb * 1e6)}B-seed{args.seed}"
    )
    folder = os.path.join(cache_dir, name)
    if not os.path.isdir(folder):
        os.makedirs(cache_dir, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=".partial-", dir=cache_dir)
        try:
            generate_corpus(
                scratch, num_bytes, int(args.file_mb * 1e6),
                args.rare_word_share, args.seed, verbose=0 if args.quick else 1,
            )
            os.rename(scratch, folder)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return sorted(
        os.path.join(folder, name) for name in os.listdir(folder)
    )


# === Measuring a phase ===


def measure_phase(phase, config):
    """Run `phase` (a name of `PHASES`, or `BASELINE`) in a new process;
    returns its peak RSS (own and of the process tree), wall time and
    what it reported."""
    with tempfile.TemporaryDirectory(prefix="corpus-memory-") as scratch:
        result_path = os.path.join(scratch, "result.json")
        config = {**config, "phase": phase, "result_path": result_path}
        command = [
            sys.executable, os.path.abspath(__file__),
            "--phase-config", json.dumps(config),
        ]
        start = time.perf_counter()
        process = subprocess.Popen(command)
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            tree_peak = max(tree_peak, _tree_rss(process.pid))
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise RuntimeError(
                f"Phase {phase!r} failed (exit status {process.returncode})."
            )
        with open(result_path, encoding="utf-8") as file:
            reported = json.load(file)
    # Linux reports ru_maxrss in KiB.
    peak = usage.ru_maxrss * 1024
    return {
        "phase": phase,
        "peak_rss_mb": round(peak / 1e6, 1),
        "tree_peak_rss_mb": round(max(tree_peak, peak) / 1e6, 1),
        "seconds": round(seconds, 2),
        **reported,
    }


def _tree_rss(pid):
    """Resident bytes of `pid` and its descendants, now (0 if gone)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as file:
                total += int(file.read().split()[1]) * page
            for thread in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{thread}/children") as file:
                    pending.extend(int(child) for child in file.read().split())
        except (OSError, ValueError):
            continue  # Exited meanwhile.
    return total


def run_phase(config):
    """In the phase's own process: run it, write what it found."""
    if config["trace_python"]:
        tracemalloc.start()
    start = time.perf_counter()
    found = PHASE_FUNCTIONS[config["phase"]](config)
    found["phase_seconds"] = round(time.perf_counter() - start, 2)
    if config["trace_python"]:
        found["python_peak_mb"] = round(
            tracemalloc.get_traced_memory()[1] / 1e6, 1
        )
        tracemalloc.stop()
    found["own_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1
    )
    with open(config["result_path"], "w", encoding="utf-8") as file:
        json.dump(found, file)


def _baseline(config):
    return {}


def _vocabulary(config):
    bound = {}  # The library's default.
    if config["max_distinct_words"] is not None:
        bound["max_distinct_words"] = config["max_distinct_words"] or None
    vocabulary = pretraining.train_vocabulary(
        config["files"],
        config["vocabulary_size"],
        output_path=config["vocabulary_path"],
        verbose=config["verbose"],
        **bound,
    )
    return {"vocabulary_size": len(vocabulary)}


def _shards(config):
    tokenizer = keras_electra.ElectraTokenizer(
        pretraining.load_vocabulary(config["vocabulary_path"])
    )
    pretraining.write_pretraining_shards(
        config["files"],
        tokenizer,
        config["shards_dir"],
        max_sequence_length=config["sequence_length"],
        seed=config["seed"],
        num_workers=config["workers"],
        verbose=config["verbose"],
    )
    path = os.path.join(config["shards_dir"], pretraining.METADATA_FILE)
    with open(path, encoding="utf-8") as file:
        metadata = json.load(file)
    return {
        "examples": metadata["num_examples"],
        "tokens": metadata["num_tokens"],
    }


def _pretraining(config):
    vocabulary = pretraining.load_vocabulary(config["vocabulary_path"])
    keras.utils.set_random_seed(config["seed"])
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny",
        vocab_size=len(vocabulary),
        max_sequence_length=config["sequence_length"],
        seed=config["seed"],
    )
    pretrainer.compile()
    dataset = pretraining.pretraining_dataset(
        config["shards_dir"], batch_size=config["batch_size"],
        seed=config["seed"],
    )
    history = pretrainer.fit(
        dataset, steps_per_epoch=config["steps"], epochs=1, verbose=0
    )
    return {"loss": round(float(history.history["loss"][-1]), 4)}


PHASE_FUNCTIONS = {
    BASELINE: _baseline,
    "vocabulary": _vocabulary,
    "shards": _shards,
    "pretraining": _pretraining,
}


def phase_config(files, work_dir, args):
    """What the phases need to run on the corpus `files`; the vocabulary
    and shards go to `work_dir` (created)."""
    os.makedirs(work_dir, exist_ok=True)
    return {
        "files": files,
        "vocabulary_path": os.path.join(work_dir, "vocab.txt"),
        "shards_dir": os.path.join(work_dir, "shards"),
        "vocabulary_size": args.vocabulary_size,
        "max_distinct_words": args.max_distinct_words,
        "workers": args.workers,
        "sequence_length": args.sequence_length,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "seed": args.seed,
        "trace_python": args.trace_python,
        "verbose": 0 if args.quick else 1,
    }


def row(label, measured):
    python = measured.get("python_peak_mb")
    return (
        f"| {label} | {measured['phase']} | {measured['peak_rss_mb']:,.0f} | "
        f"{measured['tree_peak_rss_mb']:,.0f} | "
        f"{'-' if python is None else f'{python:,.1f}'} | "
        f"{measured['seconds']:,.1f} |"
    )


def growth(corpora):
    """Per phase: peak RSS (and Python heap) of the largest corpus minus
    that of the smallest, in MB."""
    first, last = corpora[0]["phases"], corpora[-1]["phases"]
    found = {}
    for small, large in zip(first, last):
        found[small["phase"]] = {
            key: round(large[key] - small[key], 1)
            for key in ("peak_rss_mb", "tree_peak_rss_mb", "python_peak_mb")
            if key in small
        }
    return found


def main(argv=None):
    args = parse_args(argv)
    if args.phase_config is not None:
        return run_phase(json.loads(args.phase_config))
    backend = keras.backend.backend()
    os.makedirs(args.cache_dir, exist_ok=True)
    print(TABLE_HEADER)
    baseline = measure_phase(BASELINE, {"trace_python": args.trace_python})
    print(row("-", baseline))
    corpora = []
    for size in args.sizes_gb:
        files = cached_corpus(args.cache_dir, int(size * 1e9), args)
        megabytes = sum(os.path.getsize(path) for path in files) / 1e6
        label = f"{megabytes:,.0f} MB" if megabytes >= 10 else (
            f"{megabytes:.1f} MB"
        )
        work_dir = tempfile.mkdtemp(prefix="run-", dir=args.cache_dir)
        config = phase_config(files, work_dir, args)
        try:
            phases = []
            for phase in args.phases:
                phases.append(measure_phase(phase, config))
                print(row(label, phases[-1]), flush=True)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
            if args.delete_corpora:
                shutil.rmtree(os.path.dirname(files[0]), ignore_errors=True)
        corpora.append(
            {
                "size_gb": size,
                "megabytes": round(megabytes, 1),
                "files": len(files),
                "phases": phases,
            }
        )
    result = {
        "benchmark": "corpus_memory",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "backend": backend,
        "settings": {
            key: getattr(args, key)
            for key in (
                "rare_word_share", "file_mb", "vocabulary_size",
                "max_distinct_words", "workers", "sequence_length",
                "batch_size", "steps", "seed",
            )
        },
        "baseline": baseline,
        "corpora": corpora,
        "growth_mb": growth(corpora) if len(corpora) > 1 else {},
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
            "memory_gb": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,
                1,
            ),
        },
    }
    write_json(args.output, result)
    if result["growth_mb"]:
        print(
            f"\nGrowth from {corpora[0]['megabytes']:,} to "
            f"{corpora[-1]['megabytes']:,} MB of text (peak RSS, MB): "
            + ", ".join(
                f"{phase} {values['peak_rss_mb']:+,.0f}"
                for phase, values in result["growth_mb"].items()
            )
        )
    print(f"Backend {backend}; details in {args.output}")
    return result


if __name__ == "__main__":
    main()
