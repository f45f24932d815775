"""Run and logged-model artifacts in the "artifacts" Django storage (a local folder by default,
S3-compatible when configured).

Storage keys mirror MLflow's proxied artifact URIs: a run's artifact URI is
`mlflow-artifacts:/<experiment id>/<run uuid>/artifacts`, a logged model's
`mlflow-artifacts:/<experiment id>/models/<model id>/artifacts`, and the key of a file is the
part after `mlflow-artifacts:/` plus its relative path. So the first segment of every key names
the experiment whose permissions govern it.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from django.core.files.base import File
from django.core.files.storage import Storage, storages

URI_SCHEME = "mlflow-artifacts:/"


class UnsafeArtifactPath(ValueError):
    """A path with `..`, an absolute path, a backslash or a control character."""


@dataclass(frozen=True)
class ArtifactEntry:
    path: str  # relative to the root it was listed under
    is_dir: bool
    file_size: int | None = None


def storage() -> Storage:
    return storages["artifacts"]


def run_artifact_uri(experiment_id: int, run_uuid: str) -> str:
    return f"{URI_SCHEME}{experiment_id}/{run_uuid}/artifacts"


def experiment_artifact_location(experiment_id: int) -> str:
    return f"{URI_SCHEME}{experiment_id}"


def logged_model_artifact_uri(experiment_id: int, model_id: str) -> str:
    return f"{URI_SCHEME}{experiment_id}/models/{model_id}/artifacts"


def root_key(artifact_uri: str) -> str:
    """The storage key prefix of an artifact URI this server issued ('' when it is foreign)."""
    if not artifact_uri.startswith(URI_SCHEME):
        return ""
    return artifact_uri[len(URI_SCHEME) :].strip("/")


def clean_relative_path(path: str | None) -> str:
    """A normalised relative path ('' for the root), or UnsafeArtifactPath."""
    path = (path or "").strip()
    if not path or path in (".", "/"):
        return ""
    if path.startswith("/") or "\\" in path or any(ord(ch) < 32 for ch in path):
        raise UnsafeArtifactPath(f"Invalid artifact path: {path!r}")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise UnsafeArtifactPath(f"Invalid artifact path: {path!r}. Paths may not contain '..'.")
    return "/".join(parts)


def experiment_id_of_key(key: str) -> int | None:
    """The experiment that owns a storage key (its first segment), if it names one."""
    first = key.split("/", 1)[0]
    return int(first) if first.isdigit() else None


def join(root: str, relative: str) -> str:
    return posixpath.join(root, relative) if relative else root


def list_entries(root: str, relative: str = "") -> list[ArtifactEntry]:
    """Files and folders directly under `root/relative`, folders first, by name."""
    key = join(root, clean_relative_path(relative))
    store = storage()
    try:
        dirs, files = store.listdir(key)
    except (FileNotFoundError, NotADirectoryError):
        return []
    prefix = clean_relative_path(relative)
    entries = [ArtifactEntry(path=join(prefix, name), is_dir=True) for name in sorted(dirs)]
    entries += [
        ArtifactEntry(path=join(prefix, name), is_dir=False, file_size=store.size(posixpath.join(key, name)))
        for name in sorted(files)
    ]
    return entries


def walk_files(root: str, relative: str = "") -> Iterator[ArtifactEntry]:
    """Every file below `root/relative`, depth first."""
    for entry in list_entries(root, relative):
        if entry.is_dir:
            yield from walk_files(root, entry.path)
        else:
            yield entry


def exists(root: str, relative: str) -> bool:
    return storage().exists(join(root, clean_relative_path(relative)))


def open_file(root: str, relative: str) -> IO[bytes]:
    return storage().open(join(root, clean_relative_path(relative)), "rb")


def size(root: str, relative: str) -> int:
    return storage().size(join(root, clean_relative_path(relative)))


def save_stream(key: str, chunks: Iterable[bytes]) -> int:
    """Write `chunks` to `key`, replacing what was there; returns the byte count. The bytes
    go to a temporary key first, so a broken or refused upload never leaves a truncated
    artifact (nor a stray temporary file)."""
    store = storage()
    upload = _StreamedFile(chunks, name=posixpath.basename(key))
    tmp_key = f"{key}.upload-{id(upload):x}"
    try:
        written_key = store.save(tmp_key, upload)
    except BaseException:
        if store.exists(tmp_key):
            store.delete(tmp_key)
        raise
    try:
        if store.exists(key):
            store.delete(key)
        _rename(store, written_key, key)
    finally:
        if store.exists(written_key) and written_key != key:
            store.delete(written_key)
    return upload.total


def delete_tree(root: str) -> None:
    store = storage()
    for entry in list(walk_files(root)):
        store.delete(join(root, entry.path))


def _rename(store: Storage, source: str, target: str) -> None:
    path_of = getattr(store, "path", None)
    if path_of is not None:
        import os

        try:
            os.replace(path_of(source), path_of(target))
            return
        except NotImplementedError:
            pass
    with store.open(source, "rb") as handle:
        store.save(target, handle)
    store.delete(source)


class _StreamedFile(File):
    """An upload as a Django File over an iterator of chunks. Local storage writes the chunks
    as they come (no re-buffering: this is the artifact upload's hot loop); backends that read()
    get short reads of at most one chunk."""

    def __init__(self, chunks: Iterable[bytes], name: str):
        super().__init__(None, name=name)
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self.total = 0

    def _next_chunk(self) -> bytes | None:
        chunk = next(self._chunks, None)
        if chunk is not None:
            self.total += len(chunk)
        return chunk

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if self._pending:
            yield bytes(self._pending)
            self._pending = memoryview(b"")
        while (chunk := self._next_chunk()) is not None:
            if chunk:
                yield chunk

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(self.chunks())
        while not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return b""
            self._pending = memoryview(chunk)
        data, self._pending = self._pending[:size], self._pending[size:]
        return bytes(data)

    def seek(self, *args) -> None:
        raise io.UnsupportedOperation("An upload stream cannot seek.")

    def __bool__(self) -> bool:
        return True
