"""The WordPiece vocabulary of a pre-training corpus: `train_vocabulary`,
`load_vocabulary`, and `SPECIAL_TOKENS`, the table of ELECTRA's special
tokens.
"""

import os

from keras_electra.pretraining.text_files import _check_errors_argument
from keras_electra.pretraining.text_files import _check_utf8
from keras_electra.pretraining.text_files import _resolve_text_files
from keras_electra.utils.checks import require_tensorflow
from keras_electra.utils.file_io import write_text_atomically

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the tokenizers need TensorFlow too
    tf = None

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

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
    from keras_electra import pretraining

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("Héllo world.\nHello again, world!\n" * 20)
    vocabulary = pretraining.train_vocabulary([path], 40)
    vocabulary[:5]  # ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    ```
    """
    require_tensorflow("train_vocabulary")
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
        write_text_atomically(
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
