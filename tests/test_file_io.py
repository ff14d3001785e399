"""The one writer of keras_electra: whole files or none, folders replaced
whole, and the usual permissions. Backend-free."""

import os
import stat

import pytest

from keras_electra.utils import file_io


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "scores.json"
    file_io.write_json(path, {"accuracy": 0.5})
    old = path.read_text()
    with pytest.raises(RuntimeError, match="disk full"):
        with file_io.atomic_write(path) as file:
            file.write("half a fi")
            raise RuntimeError("disk full")
    assert path.read_text() == old
    assert os.listdir(tmp_path) == ["scores.json"]


def test_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        file_io.write_json(tmp_path / "a.json", {"model": object()})
    with pytest.raises(RuntimeError):
        with file_io.atomic_path(tmp_path / "b.bin") as temporary:
            with open(temporary, "wb") as file:
                file.write(b"part")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_folders_are_made(tmp_path):
    path = tmp_path / "a" / "b" / "c.txt"
    file_io.write_text_atomically(path, "text\n")
    assert path.read_text() == "text\n"
    with file_io.atomic_write(tmp_path / "d" / "e.bin", "wb", fsync=True) as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "d" / "e.bin").read_bytes() == b"\x00\x01"


def test_files_and_folders_get_the_usual_permissions(tmp_path):
    file_io.write_text_atomically(tmp_path / "a.txt", "a")
    with file_io.atomic_path(tmp_path / "b.bin") as temporary:
        with open(temporary, "wb") as file:
            file.write(b"b")
    staging = file_io.staging_directory(tmp_path / "parent", ".s-", ".tmp")
    mask = _umask()
    assert _mode(tmp_path / "a.txt") == 0o666 & ~mask
    assert _mode(tmp_path / "b.bin") == 0o666 & ~mask
    assert _mode(staging) == 0o777 & ~mask
    name = os.path.basename(staging)
    assert name.startswith(".s-") and name.endswith(".tmp")


def test_replace_directory_swaps_a_folder_whole(tmp_path):
    target = tmp_path / "preset"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging = file_io.staging_directory(tmp_path, ".preset-")
    file_io.write_text_atomically(os.path.join(staging, "new.txt"), "new")
    file_io.replace_directory(staging, target)
    assert os.listdir(target) == ["new.txt"]
    assert os.listdir(tmp_path) == ["preset"]  # No backup, no staging left.


def test_replace_directory_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "preset"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging = file_io.staging_directory(tmp_path, ".preset-")
    rename = os.rename

    def failing_rename(source, destination):
        if os.fspath(source) == staging:
            raise OSError("rename failed")
        rename(source, destination)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="rename failed"):
        file_io.replace_directory(staging, target)
    assert (target / "old.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["preset", os.path.basename(staging)]
    )


def test_sha256_of(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello")
    assert file_io.sha256_of(path) == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
