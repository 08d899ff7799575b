"""conv3t.files: atomic replacement and umask-respecting permissions for every file the project writes."""

import os
import stat

import pytest

from conv3t.files import atomic_open, atomic_write, write_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_the_umask_mode(tmp_path, umask_022):
    path = atomic_write(tmp_path / "sub" / "a.bin", b"xyz")
    assert path.read_bytes() == b"xyz"
    assert _mode(path) == 0o644  # 0o666 & ~0o022; mkstemp would give 0o600


def test_umask_077_gives_private_files(tmp_path):
    old = os.umask(0o077)
    try:
        path = atomic_write(tmp_path / "b.txt", "hé\n")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert path.read_text(encoding="utf-8") == "hé\n"


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as handle:
        handle.write("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_write_json_round_trip(tmp_path, umask_022):
    import json

    path = write_json({"a": [1, 2]}, tmp_path / "x.json")
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert path.read_text().endswith("\n")
    assert _mode(path) == 0o644


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):  # type: ignore[arg-type]
        pass
