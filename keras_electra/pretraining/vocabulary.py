"""The WordPiece vocabulary of a pre-training corpus: `train_vocabulary`,
`load_vocabulary`, and `SPECIAL_TOKENS`, the table of ELECTRA's special
tokens.
"""

import collections
import os
import sys

import keras

from keras_electra.pretraining.text_files import _check_errors_argument
from keras_electra.pretraining.text_files import _check_utf8
from keras_electra.pretraining.text_files import _resolve_text_files
from keras_electra.utils.checks import require_tensorflow
from keras_electra.utils.file_io import write_text_atomically
from keras_electra.utils.keras_compat import word_piece_pretokenize

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the tokenizers need TensorFlow too
    tf = None

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Lines per batch of the word count (what keras-hub's learner was given).
_LINES_PER_BATCH = 4096

# === Vocabulary ===


def train_vocabulary(
    text_files,
    vocabulary_size,
    lowercase=True,
    strip_accents=None,
    output_path=None,
    errors="strict",
    max_distinct_words=1_000_000,
    verbose=1,
):
    r"""Learn a WordPiece vocabulary from text files.

    Counts the words of the files, streamed line by line with
    `tf.data.TextLineDataset`, then learns the vocabulary that the
    tensorflow-text WordPiece learner learns from the counts, as
    `keras_hub.tokenizers.compute_word_piece_vocabulary` does, computed
    about ten times sooner (see `_learn_word_pieces`). The words are split
    and normalised exactly as `ElectraTokenizer(vocabulary,
    lowercase=lowercase, strip_accents=strip_accents)` will split them.

    Memory is bounded by `max_distinct_words`, not by the size of the
    corpus: up to that many distinct words the counts are exact (and the
    vocabulary is `compute_word_piece_vocabulary`'s); past it, the rarer
    half of the counted words is dropped, as often as needed (the words
    that come back are counted from then on): frequent words keep about
    their counts, and the characters of the dropped words still count, as
    one-letter words, so the alphabet stays the corpus's. The learner itself
    uses at most the 5 million most frequent words.

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
        max_distinct_words: int or `None`. The most distinct words held in
            the count (about 100 bytes each); `None` counts every word
            exactly, with memory that grows with the corpus.
        verbose: 0 for silence, 1 for a progress bar of the files read, 2
            for one line at the end (as `keras.utils.Progbar`).

    Returns:
        The vocabulary, a list of strings: `SPECIAL_TOKENS` at ids 0 to 4,
        then single characters, then longer pieces by frequency.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra import pretraining

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("Héllo world.\nHello again, world!\n" * 20)
    vocabulary = pretraining.train_vocabulary([path], 40, verbose=0)
    vocabulary[:5]  # ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    ```
    """
    require_tensorflow("train_vocabulary")
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
    if max_distinct_words is not None and (
        not isinstance(max_distinct_words, int) or max_distinct_words < 2
    ):
        raise ValueError(
            "`max_distinct_words` must be an integer of at least 2, or "
            f"None, got {max_distinct_words!r}."
        )
    if strip_accents is None:
        strip_accents = lowercase
    files = [path for path in files if _check_utf8(path, errors)]
    if not files:
        raise ValueError("No readable text file: every file was skipped.")
    if not any(True for _ in _nonblank_lines(files).take(1)):
        raise ValueError(f"The text files {files} hold no text.")
    word_counts = _count_words(
        files, lowercase, strip_accents, max_distinct_words, verbose
    )
    if not word_counts:
        raise ValueError(f"The text files {files} hold no word to learn from.")
    vocabulary = _learn_word_pieces(word_counts, vocabulary_size)
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
        write_text_atomically(
            output_path, "".join(token + "\n" for token in vocabulary)
        )
    return vocabulary


def _nonblank_lines(files):
    return tf.data.TextLineDataset(files).filter(
        lambda line: tf.strings.length(tf.strings.strip(line)) > 0
    )


def _count_words(files, lowercase, strip_accents, max_distinct_words, verbose):
    """A `Counter` of the words of `files`, of at most `max_distinct_words`
    words (see `train_vocabulary`), in the order first seen."""
    pretokenize = word_piece_pretokenize()
    counts = collections.Counter()
    dropped_characters = collections.Counter()
    num_words = 0
    bar = keras.utils.Progbar(
        len(files),
        verbose=verbose,
        interval=1 if sys.stdout.isatty() else 30,
        stateful_metrics=("words", "distinct"),
        unit_name="file",
    )
    for done, path in enumerate(files):
        words = _nonblank_lines([path]).batch(_LINES_PER_BATCH).map(
            lambda text: pretokenize(
                text, lowercase, strip_accents, True, True
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        for batch in words:
            batch = batch.flat_values.numpy()
            counts.update(batch)
            num_words += len(batch)
            if (
                max_distinct_words is not None
                and len(counts) > max_distinct_words
            ):
                counts = _drop_rare_words(
                    counts, max_distinct_words // 2, dropped_characters
                )
            bar.update(
                done, [("words", num_words), ("distinct", len(counts))]
            )
        bar.update(done + 1, [("words", num_words), ("distinct", len(counts))])
    # Decoded once, at the end, as keras-hub's learner does (same order).
    words = collections.Counter(
        {word.decode("utf-8"): count for word, count in counts.items()}
    )
    del counts
    words.update(dropped_characters)
    return words


def _drop_rare_words(counts, keep, dropped_characters):
    """The `keep` most frequent words of `counts`; the characters of the
    others are added to `dropped_characters`, weighted by their counts."""
    ranked = counts.most_common()
    for word, count in ranked[keep:]:
        for character in word.decode("utf-8"):
            dropped_characters[character] += count
    return collections.Counter(dict(ranked[:keep]))


# === The WordPiece learner ===

# tensorflow-text's defaults, which keras-hub keeps.
_JOINER = "##"
_REFINEMENTS = 4
_THRESHOLD_BOUNDS = (10, 10**7)
_MAX_INPUT_WORDS = 5 * 10**6
_MAX_WORD_LENGTH = 50
_MAX_CHARACTERS = 1000
_SIZE_SLACK = 0.05


def _learn_word_pieces(word_counts, vocabulary_size):
    """What tensorflow-text's `wordpiece_tokenizer_learner_lib.learn(
    word_counts, vocabulary_size, SPECIAL_TOKENS, joiner="##")[
    :vocabulary_size]` returns (keras-hub's call), an order of magnitude
    sooner.

    That learner binary-searches a count threshold whose vocabulary fits
    the size; for each threshold it refines the pieces four times. A
    refinement counts every substring that starts where the current pieces
    split a word, then takes from each substring the counts of its longer
    extensions: what is left of a substring is the weight of the words in
    which it runs from a split to the end of the word. Counting just those
    suffixes gives the same counts, and then:
    - a whole word's count is its own count, in every refinement;
    - a word's first piece is its longest prefix that is a kept whole word
      or a character (no word starts with the joiner: the pre-tokenizer
      splits `#` off as punctuation), the same in every refinement;
    - only what follows the first piece is split anew, each distinct
      remainder once, longest first, handing its weight on to what follows
      its own first piece.
    The preparation of the counts and the final ordering are the
    learner's own functions.
    """
    from tensorflow_text.tools.wordpiece_vocab import (
        wordpiece_tokenizer_learner_lib as learner,
    )

    word_counts = list(word_counts.items())
    upper, lower = learner.get_search_threshs(
        word_counts, _THRESHOLD_BOUNDS[1], _THRESHOLD_BOUNDS[0]
    )
    words = learner.get_input_words(
        word_counts, SPECIAL_TOKENS, _MAX_WORD_LENGTH
    )
    words = learner.filter_input_words(
        words,
        learner.get_allowed_chars(words, _MAX_CHARACTERS),
        _MAX_INPUT_WORDS,
    )
    characters = learner.extract_char_tokens(words)
    suffix_counts = collections.Counter()
    for word, count in words:
        for start in range(1, len(word)):
            suffix_counts[word[start:]] += count
    while True:
        threshold = (upper + lower) // 2
        kept = _pieces_above(words, suffix_counts, threshold)
        kept = learner.ensure_all_tokens_exist(characters, kept, True, _JOINER)
        vocabulary = learner.generate_final_vocabulary(
            SPECIAL_TOKENS, characters, kept
        )
        size = len(vocabulary)
        fits = 0 <= vocabulary_size - size <= _SIZE_SLACK * vocabulary_size
        if fits or lower >= upper or threshold <= 1:
            return vocabulary[:vocabulary_size]
        if size > vocabulary_size:
            lower = threshold + 1
        else:
            upper = threshold - 1


def _pieces_above(words, suffix_counts, threshold):
    """The learner's pieces for one threshold, `{piece: count}`, after its
    refinements (`_learn_word_pieces`); `suffix_counts` is the first
    refinement's count of each suffix (every start is a split)."""
    whole = {word: count for word, count in words if count >= threshold}
    remainders = collections.Counter()
    for word, count in words:
        end = _longest_prefix_in(word, whole)
        if end < len(word):
            remainders[word[end:]] += count
    suffixes = suffix_counts
    for _ in range(_REFINEMENTS - 1):
        kept = {s for s, count in suffixes.items() if count >= threshold}
        weights = collections.Counter(remainders)
        by_length = collections.defaultdict(list)
        for remainder in weights:
            by_length[len(remainder)].append(remainder)
        for length in range(max(by_length, default=0), 1, -1):
            for remainder in by_length[length]:
                end = _longest_prefix_in(remainder, kept)
                if end == length:
                    continue
                rest = remainder[end:]
                if rest not in weights:
                    by_length[len(rest)].append(rest)
                weights[rest] += weights[remainder]
        suffixes = weights
    pieces = dict(whole)
    pieces.update(
        (_JOINER + suffix, count)
        for suffix, count in suffixes.items()
        if count >= threshold
    )
    return pieces


def _longest_prefix_in(text, pieces):
    """The length of `text`'s longest prefix in `pieces`, or 1 (every
    character is a piece)."""
    for end in range(len(text), 1, -1):
        if text[:end] in pieces:
            return end
    return 1


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
    from keras_electra import pretraining

    path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    pretraining.load_vocabulary(path)[-1]  # 'hello'
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
