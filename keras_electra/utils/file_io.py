"""Files written whole or not at all, and file digests.

Every file and folder keras_electra writes (presets, checkpoints, shards,
curves, prepared corpora, result JSON) goes through these, so that a failure
at any moment (an exception, a full disk, a kill) leaves the previous version
or nothing, never half of one.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid

# What `atomic_path` and `staging_directory` name their temporaries:
# hidden, a uuid4, `.tmp`.
_TEMPORARY = re.compile(r"^\..*[0-9a-f]{32}\.tmp$")


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path`, renamed over `path` on success.

    For writers that take a path rather than a file object (e.g.
    `tf.io.TFRecordWriter`): write the temporary path inside the `with`, and
    close the writer before the block ends. Folders are made. On any
    exception `path` keeps its previous content, or stays absent, and the
    temporary file is removed; a kill leaves `path` as it was too (and the
    temporary `.<name>.<random>.tmp`).

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.utils.file_io import atomic_path

    path = os.path.join(tempfile.mkdtemp(), "data", "a.bin")
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:  # Stands for any path writer.
            file.write(b"all or nothing")
    open(path, "rb").read()  # b'all or nothing'
    ```
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp"
    )
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def atomic_write(path, mode="w", fsync=False, **open_kwargs):
    """Open a temporary file beside `path`; rename it over `path` on success.

    Folders are made. On any exception `path` keeps its previous content, or
    stays absent, and the temporary file is removed; a kill leaves `path` as
    it was too, and a hidden temporary file beside it (see `atomic_path`). The file gets the usual permissions (0o666 less the
    umask). `fsync=True` flushes it to disk before the rename, for files a
    crash must not lose.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.utils.file_io import atomic_write

    path = os.path.join(tempfile.mkdtemp(), "notes", "a.txt")
    with atomic_write(path) as file:
        file.write("all or nothing\\n")
    open(path).read()  # 'all or nothing\\n'
    ```
    """
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as temporary:
        with open(temporary, mode, **open_kwargs) as file:
            yield file
            if fsync:
                file.flush()
                os.fsync(file.fileno())


def write_text_atomically(path, text):
    """Write `text` (UTF-8, `\\n` line ends) to `path` with `atomic_write`."""
    with atomic_write(path, newline="\n") as file:
        file.write(text)


def write_json(path, data):
    """Write `data` as indented JSON to `path` with `atomic_write`.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.utils.file_io import write_json

    write_json(os.path.join(tempfile.mkdtemp(), "scores.json"), {"acc": 0.75})
    ```
    """
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def sha256_of(path):
    """The hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_directory(path):
    """Flush a folder's entries (renames into it) to disk, where the OS can."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def staging_directory(parent, prefix, suffix=".tmp"):
    """A new empty folder `parent/<prefix><random><suffix>` (`prefix` a
    hidden name: `remove_leftovers` recognises it) with the usual
    permissions (not `tempfile.mkdtemp`'s 0o700, which a saved folder would
    keep). Folders are made.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.utils.file_io import replace_directory
    from keras_electra.utils.file_io import staging_directory

    parent = tempfile.mkdtemp()
    staging = staging_directory(parent, ".results-")
    with open(os.path.join(staging, "a.txt"), "w") as file:
        file.write("complete")
    replace_directory(staging, os.path.join(parent, "results"))
    os.listdir(parent)  # ['results']
    ```
    """
    os.makedirs(parent, exist_ok=True)
    while True:
        staging = os.path.join(parent, f"{prefix}{uuid.uuid4().hex}{suffix}")
        try:
            os.mkdir(staging)
            return staging
        except FileExistsError:
            continue


def replace_directory(source, target):
    """Rename the folder `source` to `target`; an old `target` is moved aside
    first and removed only once `source` is in place (put back on failure).

    The aside copy is `.<target name>.old-<random>.tmp`, a name the writers'
    clean-ups of `.*.tmp` leftovers recognise.
    """
    if not os.path.exists(target):
        os.rename(source, target)
        return
    backup = os.path.join(
        os.path.dirname(target),
        f".{os.path.basename(target)}.old-{uuid.uuid4().hex}.tmp",
    )
    os.rename(target, backup)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def is_temporary(name):
    """Whether the file or folder `name` is one of the temporaries named
    by `atomic_path` and `staging_directory` (`.<name>.<random>.tmp`)."""
    return bool(_TEMPORARY.match(name))


def remove_leftovers(directory):
    """Delete the temporaries that killed writers left under `directory`.

    `atomic_path`, `atomic_write` and `staging_directory` name them
    `.<name>.<random>.tmp`; a kill (SIGKILL, power loss) leaves them behind,
    never the file or folder they stood for. Only for a folder no other
    process is writing to. Returns the paths removed.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.utils.file_io import remove_leftovers, staging_directory

    run = tempfile.mkdtemp()
    staging_directory(run, ".preset-")  # As a killed save leaves it.
    len(remove_leftovers(run))  # 1
    ```
    """
    removed = []
    for folder, subfolders, files in os.walk(directory):
        for name in list(subfolders):
            if is_temporary(name):
                subfolders.remove(name)
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
                removed.append(os.path.join(folder, name))
        for name in files:
            if is_temporary(name):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
                removed.append(os.path.join(folder, name))
    return removed
