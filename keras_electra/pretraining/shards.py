"""TFRecord shards of pre-training examples: `write_pretraining_shards` runs
the `ExampleBuilder` over the corpus, one worker process per input file, and
writes shards plus `metadata.json`; `pretraining_dataset` reads them back as
shuffled batches for `ElectraPretrainer.fit`, on any backend.
"""

import contextlib
import glob
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
import warnings

import keras
import numpy as np

from keras_electra.pretraining.examples import ExampleBuilder
from keras_electra.pretraining.examples import _check_seed
from keras_electra.pretraining.text_files import _check_errors_argument
from keras_electra.pretraining.text_files import _resolve_text_files
from keras_electra.pretraining.text_files import _sentence_stream
from keras_electra.utils.checks import require_tensorflow
from keras_electra.utils.file_io import atomic_path
from keras_electra.utils.file_io import staging_directory
from keras_electra.utils.file_io import write_json

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the tokenizers need TensorFlow too
    tf = None

FEATURES = ("token_ids", "segment_ids", "padding_mask")
METADATA_FILE = "metadata.json"
SHARD_PATTERN = "pretrain-{index:05d}-of-{count:05d}.tfrecord"
_SHARD_NAME = re.compile(r"pretrain-\d{5}-of-\d{5}\.tfrecord")
# A worker process spends its first 10 s or so importing TensorFlow, in
# which this process packs tens of MiB itself: a smaller corpus is packed
# here (the demo's 17 MB: 6-9 s here, 19 s in two workers; RESULTS.md).
IN_PROCESS_BYTES = 32 * 2**20

# Environment of the worker processes of `write_pretraining_shards`: TF
# only (the tokenizer runs on TF whatever the Keras backend), one thread
# each, and no accelerator (a TF process grabs the GPU memory otherwise).
_WORKER_ENVIRONMENT = {
    "KERAS_BACKEND": "tensorflow",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "JAX_PLATFORMS": "cpu",
}

# === TFRecord shards ===


def write_pretraining_shards(
    text_files,
    tokenizer,
    output_dir,
    max_sequence_length=128,
    num_shards=8,
    seed=0,
    num_workers=None,
    errors="strict",
    verbose=1,
):
    r"""Turn a text corpus into TFRecord shards of pre-training examples.

    The files are read and tokenised in parallel, one worker process per
    file at a time, and streamed: neither the documents nor the examples are
    ever all in memory. Each file gets its own `ExampleBuilder` seeded from
    `seed` and the file's position in `text_files`, and the examples are
    dealt out round-robin over the shards in file order, so the output does
    not depend on `num_workers`. Split a large corpus into several files to
    use several workers.

    Each example is a `tf.train.Example` with the int64 features
    `token_ids`, `segment_ids` and `padding_mask` of length
    `max_sequence_length`. The shards, `pretrain-00000-of-00008.tfrecord`
    and so on, are written under temporary names and renamed into place
    only when complete; `metadata.json` (counts, sequence length,
    vocabulary size, seed, source files and shard names) comes last, so a
    folder with a `metadata.json` is always complete. A run that fails
    leaves no file behind and an earlier dataset in `output_dir` as it was;
    one that succeeds replaces it (shards of other counts are removed).

    Worker processes are started with `spawn`: call this function from
    under `if __name__ == "__main__":` in scripts. Workers run TensorFlow on
    one thread each and see no GPU.

    Args:
        text_files: a path, a glob pattern or a list of them (see
            `read_documents` for the format).
        tokenizer: a keras-hub WordPiece tokenizer, e.g. `ElectraTokenizer`;
            workers rebuild it from its class, config and vocabulary.
        output_dir: folder for the shards, created if needed.
        max_sequence_length: int. Length of every example.
        num_shards: int. Number of shard files.
        seed: int. Seed of the example builders.
        num_workers: int. Worker processes; defaults to the smaller of the
            number of CPUs and of files, but to 1 for a corpus under
            `IN_PROCESS_BYTES` (32 MiB), which this process packs sooner
            than workers start. 1 works in this process.
        errors: `"strict"` or `"skip"`, for files that are not UTF-8 (see
            `read_documents`).
        verbose: 0 for silence, 1 for a progress bar, 2 for one line at
            the end (as `keras.utils.Progbar`).

    Returns:
        The paths of the shards, in order.

    Raises:
        ValueError: the corpus yields no example, or a file is not UTF-8 and
            `errors="strict"`.

    Example:
    ```python
    import os
    import tempfile
    import keras_electra
    from keras_electra import pretraining

    folder = tempfile.mkdtemp()
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("a b c.\nb c a.\n\nc c.\n" * 10)
    vocabulary = pretraining.SPECIAL_TOKENS + ["a", "b", "c", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    shards = pretraining.write_pretraining_shards(
        corpus, tokenizer, os.path.join(folder, "shards"),
        max_sequence_length=16, num_shards=2, verbose=0,
    )
    len(shards)  # 2
    ```
    """
    require_tensorflow("write_pretraining_shards")
    files = _resolve_text_files(text_files)
    _check_errors_argument(errors)
    _check_seed(seed)
    if not isinstance(num_shards, (int, np.integer)) or num_shards < 1:
        raise ValueError(
            f"`num_shards` must be a positive integer, got {num_shards!r}."
        )
    if num_workers is None:
        num_workers = _default_num_workers(files)
    if not isinstance(num_workers, (int, np.integer)) or num_workers < 1:
        raise ValueError(
            f"`num_workers` must be a positive integer, got {num_workers!r}."
        )
    num_workers = min(int(num_workers), len(files))
    # Fails early on a bad length or tokenizer, and is the in-process
    # builder when there is one worker.
    builder = ExampleBuilder(tokenizer, max_sequence_length, seed=seed)
    vocabulary = list(tokenizer.get_vocabulary())

    os.makedirs(output_dir, exist_ok=True)
    metadata_path = os.path.join(output_dir, METADATA_FILE)
    names = [
        SHARD_PATTERN.format(index=index, count=num_shards)
        for index in range(num_shards)
    ]
    progress = _Progress(len(files), verbose)
    started = time.perf_counter()
    with _shard_writer(output_dir, names) as writer:
        if num_workers == 1:
            num_tokens = 0
            for index, path in enumerate(files):
                builder._reset(_file_seed(seed, index))
                stream = _sentence_stream([path], errors)
                for example in builder._build(stream):
                    writer.write(_serialize(example))
                    num_tokens += int(example["padding_mask"].sum())
                    progress.example(writer.num_examples, num_tokens)
                progress.file_done(writer.num_examples, num_tokens)
        else:
            spec = (
                type(tokenizer),
                {**tokenizer.get_config(), "vocabulary": vocabulary},
                int(max_sequence_length),
            )
            num_tokens = _write_in_workers(
                files, spec, seed, errors, num_workers, writer, progress
            )
        if writer.num_examples == 0:
            raise ValueError(
                f"The corpus {files} yields no example: it holds no text."
            )
        # From here until the new metadata is written, the folder is
        # incomplete, and has no metadata to say otherwise. A run that
        # fails earlier leaves an earlier dataset in the folder untouched.
        with contextlib.suppress(FileNotFoundError):
            os.remove(metadata_path)
    progress.close(writer.num_examples, num_tokens)
    _remove_stale_shards(output_dir, names)
    config = tokenizer.get_config()
    metadata = {
        "num_examples": writer.num_examples,
        "num_tokens": num_tokens,
        "max_sequence_length": int(max_sequence_length),
        "vocabulary_size": len(vocabulary),
        "lowercase": config.get("lowercase"),
        "strip_accents": config.get("strip_accents"),
        "seed": seed,
        "num_shards": num_shards,
        "shards": names,
        "examples_per_shard": writer.counts,
        "source_files": [os.path.abspath(path) for path in files],
        "features": list(FEATURES),
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(metadata_path, metadata)
    return [os.path.join(output_dir, name) for name in names]


def _write_in_workers(files, spec, seed, errors, num_workers, writer, progress):
    """Workers write each file's examples to a temporary TFRecord; this
    process copies them, in file order, round-robin into the shards."""
    scratch = staging_directory(writer.directory, ".pretrain-tmp-")
    tasks = [
        (index, path, _file_seed(seed, index), errors, scratch)
        for index, path in enumerate(files)
    ]
    num_tokens = 0
    context = multiprocessing.get_context("spawn")
    try:
        with _environment(_WORKER_ENVIRONMENT):
            pool = context.Pool(
                num_workers, initializer=_set_worker_spec, initargs=(spec,)
            )
        with pool:
            for part, _, tokens, messages in pool.imap(
                _write_file_examples, tasks
            ):
                for message in messages:
                    warnings.warn(message, stacklevel=3)
                records = tf.data.TFRecordDataset(part).batch(1024)
                for batch in records.as_numpy_iterator():
                    for record in batch:
                        writer.write(record)
                    progress.example(writer.num_examples, num_tokens)
                os.remove(part)
                num_tokens += tokens
                progress.file_done(writer.num_examples, num_tokens)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return num_tokens


_worker_spec = None
_worker_builder = None


def _set_worker_spec(spec):
    # Only stores the spec: an initializer that raises makes `Pool` start
    # new workers forever; errors surface from the first task instead.
    global _worker_spec, _worker_builder
    _worker_spec = spec
    _worker_builder = None


def _write_file_examples(task):
    """Worker: one file's examples into a temporary TFRecord file."""
    global _worker_builder
    index, path, file_seed, errors, scratch = task
    if _worker_builder is None:
        with contextlib.suppress(RuntimeError):  # TF already initialised.
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        cls, config, max_sequence_length = _worker_spec
        _worker_builder = ExampleBuilder(
            cls.from_config(config), max_sequence_length
        )
    builder = _worker_builder
    builder._reset(file_seed)
    part = os.path.join(scratch, f"file-{index:06d}.tfrecord")
    count = tokens = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tf.io.TFRecordWriter(part) as file:
            for example in builder._build(_sentence_stream([path], errors)):
                file.write(_serialize(example))
                count += 1
                tokens += int(example["padding_mask"].sum())
    return part, count, tokens, [str(warning.message) for warning in caught]


@contextlib.contextmanager
def _shard_writer(directory, names):
    """A `_ShardWriter` over temporary files that become `directory/names`
    together when the `with` block ends without error (else are removed)."""
    with contextlib.ExitStack() as stack:
        temporary = [
            stack.enter_context(atomic_path(os.path.join(directory, name)))
            for name in names
        ]
        writer = _ShardWriter(directory, temporary)
        try:
            yield writer
        finally:
            # Before the renames (or removals) that the stack runs next.
            writer.close()


class _ShardWriter:
    """Round-robin writer of records over TFRecord files."""

    def __init__(self, directory, paths):
        self.directory = directory
        self.writers = [tf.io.TFRecordWriter(path) for path in paths]
        self.counts = [0] * len(paths)
        self.num_examples = 0

    def write(self, record):
        shard = self.num_examples % len(self.writers)
        self.writers[shard].write(record)
        self.counts[shard] += 1
        self.num_examples += 1

    def close(self):
        for writer in self.writers:
            writer.close()


def _remove_stale_shards(directory, names):
    keep = set(names)
    for name in os.listdir(directory):
        if _SHARD_NAME.fullmatch(name) and name not in keep:
            os.remove(os.path.join(directory, name))


def _serialize(example):
    feature = {
        name: tf.train.Feature(
            int64_list=tf.train.Int64List(value=example[name].tolist())
        )
        for name in FEATURES
    }
    # Map fields (the features) in a fixed order: the same bytes in every
    # process, whatever its hash seed.
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString(deterministic=True)


class _Progress:
    """A `keras.utils.Progbar` of the files done, with the examples, tokens
    and tokens per second so far (`verbose` as the Progbar's)."""

    def __init__(self, num_files, verbose):
        self.files = 0
        self.started = time.perf_counter()
        # Updated at every example: redraw about every second on a
        # terminal, and write a line only every 30 seconds to a log.
        self.bar = keras.utils.Progbar(
            num_files,
            verbose=verbose,
            interval=1 if sys.stdout.isatty() else 30,
            stateful_metrics=("examples", "tokens", "tokens/s"),
            unit_name="file",
        )

    def example(self, num_examples, num_tokens):
        self._update(num_examples, num_tokens, finalize=False)

    def file_done(self, num_examples, num_tokens):
        self.files += 1
        self._update(num_examples, num_tokens, finalize=False)

    def close(self, num_examples, num_tokens):
        self._update(num_examples, num_tokens, finalize=True)

    def _update(self, num_examples, num_tokens, finalize):
        seconds = max(time.perf_counter() - self.started, 1e-9)
        values = [
            ("examples", num_examples),
            ("tokens", num_tokens),
            ("tokens/s", num_tokens / seconds),
        ]
        self.bar.update(self.files, values, finalize=finalize)


# === Reading the shards ===


def pretraining_dataset(
    shards,
    batch_size,
    max_sequence_length=None,
    shuffle_buffer=10_000,
    seed=0,
    repeat=True,
    drop_remainder=True,
):
    r"""Batches of pre-training examples from TFRecord shards.

    The shard files are shuffled, read in parallel (interleaved), the
    examples shuffled in a buffer, batched and parsed, with prefetching. The
    order is deterministic given `seed` (and TensorFlow's global seed, which
    `keras.utils.set_random_seed` sets): a training run resumed after `n`
    steps continues on the same data with `dataset.skip(n)` (which reads,
    and drops, the first `n` batches).

    Works as the input of `ElectraPretrainer.fit` on every backend (Keras
    converts `tf.data` batches for JAX and PyTorch). With `repeat=True` the
    dataset is endless: pass `steps_per_epoch` to `fit`.

    Args:
        shards: a folder written by `write_pretraining_shards` (its
            `metadata.json` lists the shards), a glob pattern, or a list of
            shard paths.
        batch_size: int. Examples per batch.
        max_sequence_length: int. Expected length of the examples; read from
            `metadata.json` (or the first example) when `None`.
        shuffle_buffer: int. Examples in the shuffle buffer; 0 or `None`
            reads the shards in order, without shuffling.
        seed: int. Seed of the shuffling.
        repeat: bool. Repeat the shards forever.
        drop_remainder: bool. Drop a last, smaller batch (only matters
            without `repeat`); keeps the batch dimension static.

    Returns:
        A `tf.data.Dataset` of dicts of `int32` tensors `token_ids`,
        `segment_ids` and `padding_mask`, of shape
        `(batch_size, max_sequence_length)`.

    Raises:
        ValueError: no shard file matches, the shards hold no example, or
            `max_sequence_length` disagrees with the shards.

    Example:
    ```python
    import os
    import tempfile
    import keras_electra
    from keras_electra import pretraining

    folder = tempfile.mkdtemp()
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("a b c.\nb c a.\nc c.\n\n" * 20)
    vocabulary = pretraining.SPECIAL_TOKENS + ["a", "b", "c", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    pretraining.write_pretraining_shards(
        corpus, tokenizer, folder, max_sequence_length=16, verbose=0
    )
    dataset = pretraining.pretraining_dataset(folder, batch_size=8)
    batch = next(iter(dataset))
    batch["segment_ids"].shape  # (8, 16)
    ```
    """
    require_tensorflow("pretraining_dataset")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer, got {batch_size!r}."
        )
    _check_seed(seed)
    files, metadata = _resolve_shards(shards)
    if metadata is not None:
        stored_length = metadata["max_sequence_length"]
    else:
        stored_length = _peek_sequence_length(files)
        if stored_length is None:
            raise ValueError(f"The shards {files} hold no example.")
    if max_sequence_length is None:
        max_sequence_length = stored_length
    elif max_sequence_length != stored_length:
        raise ValueError(
            f"`max_sequence_length={max_sequence_length}` disagrees with the "
            f"shards, whose examples have length {stored_length}."
        )
    spec = {
        name: tf.io.FixedLenFeature([max_sequence_length], tf.int64)
        for name in FEATURES
    }

    def parse(records):
        features = tf.io.parse_example(records, spec)
        return {name: tf.cast(features[name], "int32") for name in FEATURES}

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_buffer:
        # Not reshuffled per iterator: Keras opens more than one iterator on
        # the dataset, and `skip(position)` must find the same batches.
        dataset = dataset.shuffle(
            len(files), seed=seed, reshuffle_each_iteration=False
        )
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle_buffer:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=False
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _resolve_shards(shards):
    """Shard paths and the metadata that describes them (or `None`)."""
    if isinstance(shards, (str, os.PathLike)) and os.path.isdir(shards):
        metadata_path = os.path.join(shards, METADATA_FILE)
        if not os.path.exists(metadata_path):
            raise ValueError(
                f"{os.fspath(shards)!r} has no {METADATA_FILE}: it was not "
                "written by `write_pretraining_shards`, or the writing did "
                "not finish. Pass a glob pattern or a list of shard files "
                "instead."
            )
        with open(metadata_path, encoding="utf-8") as file:
            metadata = json.load(file)
        files = [os.path.join(shards, name) for name in metadata["shards"]]
        missing = [path for path in files if not os.path.isfile(path)]
        if missing:
            raise ValueError(
                f"Shards listed in {metadata_path!r} are missing: {missing}."
            )
        return files, metadata
    entries = (
        [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    )
    files = []
    for entry in entries:
        entry = os.fspath(entry)
        if os.path.isfile(entry):
            files.append(entry)
        else:
            matches = sorted(
                path for path in glob.glob(entry) if os.path.isfile(path)
            )
            if not matches:
                raise ValueError(f"No shard file matches {entry!r}.")
            files.extend(matches)
    if not files:
        raise ValueError("No shard files given.")
    metadata = None
    folder = os.path.dirname(os.path.abspath(files[0]))
    metadata_path = os.path.join(folder, METADATA_FILE)
    if os.path.exists(metadata_path) and all(
        os.path.dirname(os.path.abspath(path)) == folder for path in files
    ):
        with open(metadata_path, encoding="utf-8") as file:
            metadata = json.load(file)
        if not set(map(os.path.basename, files)) <= set(metadata["shards"]):
            metadata = None  # Not the shards it describes.
    return files, metadata


def _peek_sequence_length(files):
    for record in tf.data.TFRecordDataset(files).take(1):
        example = tf.train.Example.FromString(record.numpy())
        return len(example.features.feature["token_ids"].int64_list.value)
    return None


def _default_num_workers(files):
    if sum(os.path.getsize(path) for path in files) < IN_PROCESS_BYTES:
        return 1
    return min(_cpu_count(), len(files))


def _cpu_count():
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@contextlib.contextmanager
def _environment(variables):
    """Set environment variables (inherited by processes started inside)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _file_seed(seed, index):
    """The seed of the `index`-th input file, whoever processes it."""
    return np.random.SeedSequence([int(seed), index])
