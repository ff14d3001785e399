r"""Pre-training data: vocabulary, examples, TFRecord shards, `tf.data` input.

The corpus format is the one of the original ELECTRA data script: plain
UTF-8 text files with one sentence (or line) per line, documents separated
by blank lines, and every file starting a new document. From there:

1. `train_vocabulary` learns a WordPiece vocabulary (special tokens first);
2. `ExampleBuilder` packs consecutive sentences of a document into
   `[CLS] A [SEP] B [SEP]` examples of a fixed length (no next-sentence
   prediction, so `B` simply continues `A`);
3. `write_pretraining_shards` runs the builder over the corpus, one worker
   process per input file, and writes TFRecord shards plus `metadata.json`;
4. `pretraining_dataset` reads the shards back as shuffled batches for
   `ElectraPretrainer.fit`, on any backend.

Example:
```python
import os
import tempfile

import keras_electra
from keras_electra import pretraining_data

folder = tempfile.mkdtemp()
corpus = os.path.join(folder, "corpus.txt")
with open(corpus, "w", encoding="utf-8") as f:
    for i in range(40):
        f.write("The quick brown fox jumps over the lazy dog.\n")
        f.write("A small boat drifted across the quiet lake.\n")
        if i % 4 == 3:
            f.write("\n")  # end of a document

vocabulary = pretraining_data.train_vocabulary([corpus], vocabulary_size=80)
tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
shards = os.path.join(folder, "shards")
pretraining_data.write_pretraining_shards(
    [corpus], tokenizer, shards, max_sequence_length=32, num_shards=2,
    verbose=0,
)
dataset = pretraining_data.pretraining_dataset(shards, batch_size=4)
batch = next(iter(dataset))
batch["token_ids"].shape  # (4, 32)
```
"""

import codecs
import contextlib
import glob
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the tokenizers need TensorFlow too
    tf = None

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FEATURES = ("token_ids", "segment_ids", "padding_mask")
METADATA_FILE = "metadata.json"
SHARD_PATTERN = "pretrain-{index:05d}-of-{count:05d}.tfrecord"
_SHARD_NAME = re.compile(r"pretrain-\d{5}-of-\d{5}\.tfrecord")
# Sentences tokenised per call of the (compiled) tokenizer.
_TOKENIZE_BATCH = 2048
# The shortest sequence that holds `[CLS] a [SEP] b [SEP]`; also the lower
# bound of the random short target lengths, as in ELECTRA.
_MIN_SEQUENCE_LENGTH = 5
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
_END = None  # In a sentence stream: the end of a document.


# === Vocabulary ===


def train_vocabulary(
    text_files,
    vocabulary_size,
    lowercase=True,
    strip_accents=None,
    output_path=None,
    errors="strict",
):
    r"""Learn a WordPiece vocabulary from text files.

    Uses `keras_hub.tokenizers.compute_word_piece_vocabulary` (the
    tensorflow-text learner) on the lines of the files, streamed with
    `tf.data.TextLineDataset`. The words are split and normalised exactly as
    `ElectraTokenizer(vocabulary, lowercase=lowercase,
    strip_accents=strip_accents)` will split them.

    Args:
        text_files: a path, a glob pattern or a list of them.
        vocabulary_size: int. The most tokens to keep, special tokens
            included. The learner may return fewer (it only keeps pieces
            seen often enough), but always every character of the text,
            alone and as a `##` suffix: a size too small for that is an
            error.
        lowercase: bool. Lower-case the text first (uncased models).
        strip_accents: bool. Remove accents; `None` means `lowercase`, as in
            `ElectraTokenizer`.
        output_path: optional path of a `vocab.txt` to write, one token per
            line (written to a temporary file, then renamed into place).
        errors: `"strict"` raises a `ValueError` on a file that is not UTF-8;
            `"skip"` warns and leaves it out.

    Returns:
        The vocabulary, a list of strings: `SPECIAL_TOKENS` at ids 0 to 4,
        then single characters, then longer pieces by frequency.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra import pretraining_data

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("Héllo world.\nHello again, world!\n" * 20)
    vocabulary = pretraining_data.train_vocabulary([path], 40)
    vocabulary[:5]  # ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    ```
    """
    _require_tensorflow("train_vocabulary")
    from keras_hub.tokenizers import compute_word_piece_vocabulary

    files = _resolve_text_files(text_files)
    _check_errors_argument(errors)
    if not isinstance(vocabulary_size, int) or vocabulary_size <= len(
        SPECIAL_TOKENS
    ):
        raise ValueError(
            "`vocabulary_size` must be an integer above the "
            f"{len(SPECIAL_TOKENS)} special tokens {SPECIAL_TOKENS}, got "
            f"{vocabulary_size!r}."
        )
    if strip_accents is None:
        strip_accents = lowercase
    files = [path for path in files if _check_utf8(path, errors)]
    if not files:
        raise ValueError("No readable text file: every file was skipped.")
    lines = tf.data.TextLineDataset(files).filter(
        lambda line: tf.strings.length(tf.strings.strip(line)) > 0
    )
    if not any(True for _ in lines.take(1)):
        raise ValueError(f"The text files {files} hold no text.")
    try:
        vocabulary = compute_word_piece_vocabulary(
            lines.batch(4096),
            vocabulary_size,
            lowercase=lowercase,
            strip_accents=strip_accents,
            reserved_tokens=list(SPECIAL_TOKENS),
        )
    except StopIteration:  # The learner's word count found no word at all.
        raise ValueError(
            f"The text files {files} hold no word to learn from."
        ) from None
    # The learner keeps every character, alone and as a `##` suffix; when
    # they do not all fit, the size cut drops some, and words with them
    # would become `[UNK]`.
    learned = vocabulary[len(SPECIAL_TOKENS) :]
    alone = {token for token in learned if len(token) == 1}
    suffixes = {
        token[2:] for token in learned if len(token) == 3 and token[:2] == "##"
    }
    if alone != suffixes:
        needed = len(SPECIAL_TOKENS) + 2 * len(alone | suffixes)
        raise ValueError(
            f"`vocabulary_size={vocabulary_size}` is too small for the "
            f"alphabet of the text: it needs the {len(SPECIAL_TOKENS)} "
            "special tokens plus every character twice (alone and as a "
            f"'##' suffix): at least {needed} tokens."
        )
    if output_path is not None:
        _write_atomically(
            output_path, "".join(token + "\n" for token in vocabulary)
        )
    return vocabulary


def load_vocabulary(path):
    r"""Read a `vocab.txt` (one token per line) and check its special tokens.

    Any vocabulary with `[PAD] [UNK] [CLS] [SEP] [MASK]` somewhere is
    accepted, e.g. BERT's (`[PAD]` at 0, the others at 100 to 103).

    Args:
        path: path of the vocabulary file.

    Returns:
        The tokens, a list of strings (the id of a token is its index).

    Raises:
        ValueError: some special tokens are missing (the error names them).

    Example:
    ```python
    import os
    import tempfile
    from keras_electra import pretraining_data

    path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    pretraining_data.load_vocabulary(path)[-1]  # 'hello'
    ```
    """
    with open(path, encoding="utf-8") as file:
        vocabulary = [line.rstrip("\n") for line in file]
    missing = [token for token in SPECIAL_TOKENS if token not in vocabulary]
    if missing:
        raise ValueError(
            f"The vocabulary {os.fspath(path)!r} lacks the special tokens "
            f"{missing}; ELECTRA needs all of {SPECIAL_TOKENS}."
        )
    return vocabulary


# === Reading the corpus ===


def read_documents(text_files, errors="strict"):
    r"""Read a corpus as documents, each a list of sentences.

    One sentence (or line) per line; blank lines end a document and every
    file starts a new one. Lines are stripped, and blank ones never become
    sentences. Files are read lazily, one line at a time.

    Every file is checked to be UTF-8 before any of its lines is produced.

    Args:
        text_files: a path, a glob pattern or a list of them. Checked when
            called: a missing file raises `FileNotFoundError` at once.
        errors: `"strict"`: a file that is not valid UTF-8 raises a
            `ValueError` naming the file and the byte offset. `"skip"`: such
            a file is left out with a warning naming it.

    Returns:
        A generator of documents (lists of strings).

    Example:
    ```python
    import os
    import tempfile
    from keras_electra import pretraining_data

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("First sentence.\nSecond one.\n\nAnother document.\n")
    list(pretraining_data.read_documents(path))
    # [['First sentence.', 'Second one.'], ['Another document.']]
    ```
    """
    files = _resolve_text_files(text_files)
    _check_errors_argument(errors)
    return _group_documents(_sentence_stream(files, errors))


def _sentence_stream(files, errors):
    """Sentences of the files, with `_END` after every document."""
    for path in files:
        if not _check_utf8(path, errors):
            continue
        in_document = False
        # utf-8-sig: a byte-order mark is no part of the first sentence.
        with open(path, encoding="utf-8-sig", newline=None) as file:
            for line in file:
                line = line.strip()
                if line:
                    in_document = True
                    yield line
                elif in_document:
                    in_document = False
                    yield _END
        if in_document:
            yield _END


def _group_documents(stream):
    document = []
    for item in stream:
        if item is _END:
            if document:
                yield document
            document = []
        else:
            document.append(item)
    if document:
        yield document


def _check_utf8(path, errors):
    """Whether `path` is valid UTF-8: raises or warns (per `errors`) if not."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    with open(path, "rb") as file:
        while True:
            chunk = file.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                # `error.object` is the decoder's carried-over bytes + chunk.
                carried = len(error.object) - len(chunk)
                position = offset - carried + error.start
                message = (
                    f"{path!r} is not valid UTF-8: {error.reason} at byte "
                    f"offset {position}."
                )
                if errors == "strict":
                    raise ValueError(
                        message + ' Pass errors="skip" to leave such files '
                        "out."
                    ) from None
                warnings.warn(f"Skipping {message}", stacklevel=3)
                return False
            if not chunk:
                return True
            offset += len(chunk)


# === Examples ===


class ExampleBuilder:
    """Pack the sentences of documents into fixed-length ELECTRA examples.

    As in the original ELECTRA data script, consecutive sentences of a
    document are collected until they fill the current target length; then
    they become one example, `[CLS] A [SEP] B [SEP]`, with `A` the first
    sentences (about half the target) and `B` the rest, split at a sentence
    boundary. There is no next-sentence prediction: `B` always continues `A`.

    - The target is `max_sequence_length`, except that, with probability
      `short_sequence_rate`, an example gets a random target, uniform in
      `[5, max_sequence_length]` (sentences are still whole, so such an
      example is at least that long).
    - With probability `single_segment_rate` (and whenever it holds a single
      sentence) an example is one segment, `[CLS] A [SEP]`, as in
      single-sentence classification tasks.
    - The sentences left at the end of a document form a last, shorter,
      example; examples never cross documents.
    - Sentences are collected until the tokens fit exactly (the `[CLS]` and
      `[SEP]`s counted), so only the last sentence of an example is ever cut
      and every sentence keeps at least its first token. A sentence longer
      than a whole sequence becomes one example of its first
      `max_sequence_length - 2` tokens.

    Examples are dicts of `int32` NumPy arrays of shape
    `(max_sequence_length,)`: `token_ids` (padded with `[PAD]`),
    `segment_ids` (0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 on padding) and
    `padding_mask` (1 on real tokens). The sentences are tokenised a few
    thousand at a time by one compiled call of the tokenizer.

    Args:
        tokenizer: a keras-hub WordPiece tokenizer, e.g. `ElectraTokenizer`,
            whose vocabulary has `[PAD]`, `[CLS]` and `[SEP]`.
        max_sequence_length: int, at least 5. Length of every example.
        seed: int. Seed of the builder's random stream; the same seed and
            documents give the same examples.
        single_segment_rate: float in [0, 1].
        short_sequence_rate: float in [0, 1].

    Example:
    ```python
    import keras_electra
    from keras_electra import pretraining_data

    vocabulary = pretraining_data.SPECIAL_TOKENS + ["a", "b", "c", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    builder = pretraining_data.ExampleBuilder(tokenizer, 12, seed=1)
    documents = [["a b c.", "b c.", "c a."], ["a."]]
    for example in builder.build(documents):
        print(example["token_ids"], example["segment_ids"])
    ```
    """

    def __init__(
        self,
        tokenizer,
        max_sequence_length,
        seed=0,
        single_segment_rate=0.1,
        short_sequence_rate=0.05,
    ):
        _require_tensorflow("ExampleBuilder")
        if (
            not isinstance(max_sequence_length, (int, np.integer))
            or max_sequence_length < _MIN_SEQUENCE_LENGTH
        ):
            raise ValueError(
                "`max_sequence_length` must be an integer of at least "
                f"{_MIN_SEQUENCE_LENGTH} (`[CLS] a [SEP] b [SEP]`), got "
                f"{max_sequence_length!r}."
            )
        for name, rate in (
            ("single_segment_rate", single_segment_rate),
            ("short_sequence_rate", short_sequence_rate),
        ):
            if not 0 <= rate <= 1:
                raise ValueError(f"`{name}` must be in [0, 1], got {rate}.")
        _check_seed(seed)
        self.tokenizer = tokenizer
        self.max_sequence_length = int(max_sequence_length)
        self.seed = seed
        self.single_segment_rate = single_segment_rate
        self.short_sequence_rate = short_sequence_rate
        ids = _special_token_ids(tokenizer, ("[PAD]", "[CLS]", "[SEP]"))
        self.pad_token_id, self.cls_token_id, self.sep_token_id = ids
        if getattr(tokenizer, "sequence_length", None):
            # Dense, padded outputs would hide the sentence lengths.
            tokenizer = _copy_tokenizer(tokenizer, sequence_length=None)
        # Compiled, the keras-hub tokenizer runs its TF (tensorflow-text)
        # path and returns a RaggedTensor; called eagerly it would take its
        # pure-Python path, one sentence at a time.
        self._tokenize = tf.function(
            tokenizer.tokenize,
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        self._reset(seed)

    def build(self, documents):
        """Yield the examples of `documents`, lists of sentence strings.

        The builder's random stream continues from one call to the next; a
        new builder with the same seed starts it again.
        """
        return self._build(_document_stream(documents))

    # === Internals ===

    def _reset(self, seed):
        self._rng = np.random.default_rng(seed)
        self._sentences = []
        self._length = 0
        self._start_example()

    def _start_example(self):
        self._sentences = []
        self._length = 0
        self._single = self._rng.random() < self.single_segment_rate
        if self._rng.random() < self.short_sequence_rate:
            self._target = int(
                self._rng.integers(
                    _MIN_SEQUENCE_LENGTH, self.max_sequence_length + 1
                )
            )
        else:
            self._target = self.max_sequence_length
        # Content tokens wanted: the target less `[CLS]` and the `[SEP]`s.
        self._content_target = self._target - (2 if self._single else 3)

    def _build(self, stream):
        """Examples from a stream of sentences and `_END` markers."""
        batch, count = [], 0
        for item in stream:
            batch.append(item)
            if item is not _END:
                count += 1
                if count == _TOKENIZE_BATCH:
                    yield from self._add(batch)
                    batch, count = [], 0
        yield from self._add(batch)
        if self._sentences:
            yield self._emit()

    def _add(self, batch):
        texts = [item for item in batch if item is not _END]
        token_lists = iter(self._tokenize_texts(texts))
        for item in batch:
            if item is _END:
                if self._sentences:
                    yield self._emit()
                continue
            tokens = next(token_lists)
            if not len(tokens):
                continue
            self._sentences.append(tokens)
            self._length += len(tokens)
            if self._length >= self._content_target:
                yield self._emit()

    def _tokenize_texts(self, texts):
        if not texts:
            return []
        ragged = self._tokenize(tf.constant(texts, dtype=tf.string))
        flat = ragged.flat_values.numpy().astype("int32", copy=False)
        splits = ragged.row_splits.numpy()
        return [flat[start:end] for start, end in zip(splits[:-1], splits[1:])]

    def _emit(self):
        sentences = self._sentences
        length = self.max_sequence_length
        if self._single or len(sentences) == 1:
            first = np.concatenate(sentences)[: length - 2]
            second = None
        else:
            # A: whole sentences up to about half the target; B: at least
            # the last sentence. The boundary sentence, the one that takes A
            # past half, goes to A half of the time (as in ELECTRA).
            half = (self._target - 3) // 2
            split, first_length = 1, len(sentences[0])
            while split < len(sentences) - 1:
                size = len(sentences[split])
                if first_length + size < half:
                    split += 1
                    first_length += size
                    continue
                if first_length < half and self._rng.random() < 0.5:
                    split += 1
                break
            # A never reaches the content target (the sentence that did is
            # in B), so B keeps at least one token; the cap is a safeguard.
            first = np.concatenate(sentences[:split])[: length - 4]
            second = np.concatenate(sentences[split:])[
                : length - 3 - len(first)
            ]
        example = self._pack(first, second)
        self._start_example()
        return example

    def _pack(self, first, second):
        length = self.max_sequence_length
        token_ids = np.full(length, self.pad_token_id, dtype="int32")
        segment_ids = np.zeros(length, dtype="int32")
        token_ids[0] = self.cls_token_id
        end = 1 + len(first)
        token_ids[1:end] = first
        token_ids[end] = self.sep_token_id
        end += 1
        if second is not None:
            start = end
            end += len(second)
            token_ids[start:end] = second
            token_ids[end] = self.sep_token_id
            end += 1
            segment_ids[start:end] = 1
        padding_mask = np.zeros(length, dtype="int32")
        padding_mask[:end] = 1
        return {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
        }


def build_examples(documents, tokenizer, max_sequence_length, seed=0):
    """`ExampleBuilder(tokenizer, max_sequence_length, seed).build(documents)`.

    Args:
        documents: iterable of documents, each a list of sentence strings
            (e.g. from `read_documents`).
        tokenizer: a keras-hub WordPiece tokenizer, e.g. `ElectraTokenizer`.
        max_sequence_length: int. Length of every example.
        seed: int. Seed of the random choices.

    Returns:
        An iterator of dicts of `int32` arrays `token_ids`, `segment_ids` and
        `padding_mask`, each of shape `(max_sequence_length,)`.
    """
    return ExampleBuilder(tokenizer, max_sequence_length, seed=seed).build(
        documents
    )


def _document_stream(documents):
    for document in documents:
        if isinstance(document, (str, bytes)):
            raise ValueError(
                "Each document must be a list of sentence strings, got a "
                f"string: {document[:50]!r}."
            )
        for sentence in document:
            sentence = sentence.strip()
            if sentence:
                yield sentence
        yield _END


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
            number of CPUs and of files. 1 works in this process.
        errors: `"strict"` or `"skip"`, for files that are not UTF-8 (see
            `read_documents`).
        verbose: 0 for silence, 1 for a progress bar.

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
    from keras_electra import pretraining_data

    folder = tempfile.mkdtemp()
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("a b c.\nb c a.\n\nc c.\n" * 10)
    vocabulary = pretraining_data.SPECIAL_TOKENS + ["a", "b", "c", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    shards = pretraining_data.write_pretraining_shards(
        corpus, tokenizer, os.path.join(folder, "shards"),
        max_sequence_length=16, num_shards=2, verbose=0,
    )
    len(shards)  # 2
    ```
    """
    _require_tensorflow("write_pretraining_shards")
    files = _resolve_text_files(text_files)
    _check_errors_argument(errors)
    _check_seed(seed)
    if not isinstance(num_shards, (int, np.integer)) or num_shards < 1:
        raise ValueError(
            f"`num_shards` must be a positive integer, got {num_shards!r}."
        )
    if num_workers is None:
        num_workers = min(_cpu_count(), len(files))
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
    writer = _ShardWriter(output_dir, names)
    progress = _Progress(len(files), verbose)
    started = time.perf_counter()
    try:
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
        paths = writer.commit()
        progress.close(writer.num_examples, num_tokens)
    except BaseException:
        writer.abort()
        raise
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
    _write_atomically(metadata_path, json.dumps(metadata, indent=2) + "\n")
    return paths


def _write_in_workers(files, spec, seed, errors, num_workers, writer, progress):
    """Workers write each file's examples to a temporary TFRecord; this
    process copies them, in file order, round-robin into the shards."""
    scratch = tempfile.mkdtemp(prefix=".pretrain-tmp-", dir=writer.directory)
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


class _ShardWriter:
    """Round-robin writer over shards with temporary names until `commit`."""

    def __init__(self, directory, names):
        self.directory = directory
        self.paths = [os.path.join(directory, name) for name in names]
        suffix = f".{os.getpid()}.tmp"
        self.temporary = [
            os.path.join(directory, "." + name + suffix) for name in names
        ]
        self.writers = [tf.io.TFRecordWriter(path) for path in self.temporary]
        self.counts = [0] * len(names)
        self.num_examples = 0

    def write(self, record):
        shard = self.num_examples % len(self.writers)
        self.writers[shard].write(record)
        self.counts[shard] += 1
        self.num_examples += 1

    def _close(self):
        for writer in self.writers:
            writer.close()
        self.writers = []

    def commit(self):
        self._close()
        for temporary, path in zip(self.temporary, self.paths):
            os.replace(temporary, path)
        return list(self.paths)

    def abort(self):
        self._close()
        for path in self.temporary:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


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
    """One line of progress: files, examples, tokens, tokens per second.

    Rewritten in place about every second on a terminal; in a log, a new
    line about every 30 seconds.
    """

    def __init__(self, num_files, verbose):
        self.verbose = verbose
        self.num_files = num_files
        self.files = 0
        self.started = self.printed = time.perf_counter()
        self.interactive = sys.stdout.isatty()

    def example(self, num_examples, num_tokens):
        if self.verbose:
            self._show(num_examples, num_tokens, force=False)

    def file_done(self, num_examples, num_tokens):
        self.files += 1
        if self.verbose:
            self._show(num_examples, num_tokens, force=False)

    def close(self, num_examples, num_tokens):
        if self.verbose:
            self._show(num_examples, num_tokens, force=True)
            if self.interactive:
                print(flush=True)

    def _show(self, num_examples, num_tokens, force):
        now = time.perf_counter()
        if not force and now - self.printed < (1 if self.interactive else 30):
            return
        self.printed = now
        seconds = max(now - self.started, 1e-9)
        line = (
            f"{self.files}/{self.num_files} files, {num_examples:,} "
            f"examples, {num_tokens:,} tokens, "
            f"{num_tokens / seconds:,.0f} tokens/s, {seconds:,.0f} s"
        )
        if self.interactive:
            print("\r" + line, end="", flush=True)
        else:
            print(line, flush=True)


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
    from keras_electra import pretraining_data

    folder = tempfile.mkdtemp()
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("a b c.\nb c a.\nc c.\n\n" * 20)
    vocabulary = pretraining_data.SPECIAL_TOKENS + ["a", "b", "c", "."]
    tokenizer = keras_electra.ElectraTokenizer(vocabulary, lowercase=True)
    pretraining_data.write_pretraining_shards(
        corpus, tokenizer, folder, max_sequence_length=16, verbose=0
    )
    dataset = pretraining_data.pretraining_dataset(folder, batch_size=8)
    batch = next(iter(dataset))
    batch["segment_ids"].shape  # (8, 16)
    ```
    """
    _require_tensorflow("pretraining_dataset")
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


# === Helpers ===


def _resolve_text_files(text_files):
    """A path, glob pattern or list of them -> existing file paths."""
    if isinstance(text_files, (str, os.PathLike)):
        text_files = [text_files]
    files = []
    for entry in text_files:
        entry = os.fspath(entry)
        if os.path.isfile(entry):
            files.append(entry)
        elif _has_wildcards(entry):
            matches = sorted(
                path for path in glob.glob(entry) if os.path.isfile(path)
            )
            if not matches:
                raise ValueError(f"No text file matches {entry!r}.")
            files.extend(matches)
        elif os.path.isdir(entry):
            raise ValueError(
                f"{entry!r} is a folder: pass its files (e.g. a glob pattern "
                "such as 'folder/*.txt')."
            )
        else:
            raise FileNotFoundError(f"Text file not found: {entry!r}.")
    if not files:
        raise ValueError("No text files given.")
    return files


def _has_wildcards(path):
    return any(char in path for char in "*?[")


def _check_errors_argument(errors):
    if errors not in ("strict", "skip"):
        raise ValueError(
            f'`errors` must be "strict" or "skip", got {errors!r}.'
        )


def _check_seed(seed):
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}.")


def _file_seed(seed, index):
    """The seed of the `index`-th input file, whoever processes it."""
    return np.random.SeedSequence([int(seed), index])


def _special_token_ids(tokenizer, tokens):
    vocabulary = list(tokenizer.get_vocabulary())
    missing = [token for token in tokens if token not in vocabulary]
    if missing:
        raise ValueError(
            f"The tokenizer's vocabulary lacks the special tokens {missing}."
        )
    return [vocabulary.index(token) for token in tokens]


def _copy_tokenizer(tokenizer, **overrides):
    config = {
        **tokenizer.get_config(),
        "vocabulary": list(tokenizer.get_vocabulary()),
        **overrides,
    }
    return type(tokenizer).from_config(config)


def _write_atomically(path, text):
    """Write `text` to a temporary file beside `path`, then rename it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


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


def _require_tensorflow(name):
    if tf is None:
        raise ImportError(
            f"`{name}` needs TensorFlow and tensorflow-text "
            "(`pip install tensorflow tensorflow-text`)."
        )
