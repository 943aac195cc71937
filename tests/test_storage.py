from __future__ import annotations

from pathlib import Path

import pytest

from framecast.errors import ConfigError
from framecast.storage import LocalStorage, new_output_key, open_storage


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "render.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)
    return path


def test_put_copies_the_file_under_its_key_and_returns_its_size(tmp_path: Path, source: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    key = new_output_key("job-1", 2)

    size = storage.put(key, source, "video/mp4")

    assert size == source.stat().st_size
    stored = storage.local_path(key)
    assert stored is not None and stored.read_bytes() == source.read_bytes()
    assert source.exists()
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temp file left behind


def test_put_replaces_an_existing_file_whole(tmp_path: Path, source: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    storage.put("k/video.mp4", source, "video/mp4")
    source.write_bytes(b"short")

    assert storage.put("k/video.mp4", source, "video/mp4") == 5
    assert storage.local_path("k/video.mp4").read_bytes() == b"short"  # type: ignore[union-attr]


def test_output_keys_are_unguessable_and_name_the_request_and_attempt() -> None:
    first, second = new_output_key("abc", 1), new_output_key("abc", 1)

    assert first != second
    token, name = first.split("/")
    assert name == "abc-a1.mp4"
    assert len(token) >= 22


def test_url_is_the_files_route_under_the_base_url(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    assert (
        storage.url("tok/job-a1.mp4", "https://example.com:8443/")
        == "https://example.com:8443/files/tok/job-a1.mp4"
    )


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "", "a\\b", "./a"])
def test_keys_that_could_escape_the_root_are_refused(tmp_path: Path, source: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "files")

    with pytest.raises(ValueError):
        storage.put(key, source, "video/mp4")
    assert storage.local_path(key) is None


def test_a_symlink_out_of_the_root_is_not_served(tmp_path: Path) -> None:
    root = tmp_path / "files"
    storage = LocalStorage(root)
    (tmp_path / "secret").write_text("x")
    (root / "link").symlink_to(tmp_path / "secret")

    assert storage.local_path("link") is None


def test_delete_removes_the_file_and_its_private_folder_but_never_the_root(
    tmp_path: Path, source: Path
) -> None:
    storage = LocalStorage(tmp_path / "files")
    key = new_output_key("job", 1)
    storage.put(key, source, "video/mp4")

    storage.delete(key)
    storage.delete(key)  # deleting twice is fine

    assert storage.local_path(key) is None
    assert list((tmp_path / "files").iterdir()) == []
    assert (tmp_path / "files").is_dir()


def test_open_storage_reads_file_urls_and_refuses_unknown_schemes(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path / 'out'}")

    assert isinstance(storage, LocalStorage) and storage.root == (tmp_path / "out").resolve()
    assert storage.redirect_url("any/key.mp4") is None  # local files are served, not redirected to
    with pytest.raises(ConfigError, match="unknown scheme"):
        open_storage("ftp://host/x")
