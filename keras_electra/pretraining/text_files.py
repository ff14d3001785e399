"""Reading a corpus in the ELECTRA format: plain UTF-8 text files with one
sentence (or line) per line, documents separated by blank lines, every file
starting a new document.
"""

import codecs
import glob
import os
import warnings

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the tokenizers need TensorFlow too
    tf = None

_END = None  # In a sentence stream: the end of a document.

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
    from keras_electra import pretraining

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("First sentence.\nSecond one.\n\nAnother document.\n")
    list(pretraining.read_documents(path))
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
