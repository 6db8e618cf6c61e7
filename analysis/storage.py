"""Where an experiment lives: a local folder, or a URI that ``pyarrow.fs`` opens (``s3://``,
``gs://``, ``abfs://``, ``hdfs://``, ``file://``), the same way Ray Tune writes it.

Writers (a trial's compact model, the sweep's outputs, the teacher for other nodes) go through
:func:`upload` and :func:`write_text`, which take either kind of location; :func:`download`
brings a stored folder back. Readers work on local files: for a URI, :func:`local_copy` brings
the experiment down (not its checkpoints or teacher copy) into a mirror folder under the cache
(``COFI_SWEEP_CACHE``), fetching only what changed since the last call. For a local folder it
is the folder itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pafs

from analysis.layout import TEACHER_COPY


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def join(location: str | Path, *parts: str) -> str:
    """``location/part/...`` for a folder or a URI (a URI keeps its scheme and ``//``)."""
    return "/".join([str(location).rstrip("/"), *parts])


def _resolve(location: str | Path) -> tuple[pafs.FileSystem, str]:
    if is_uri(location):
        return pafs.FileSystem.from_uri(str(location))
    return pafs.LocalFileSystem(), str(Path(location).expanduser().resolve())


def exists(location: str | Path) -> bool:
    """True for a file, or for a folder with anything in it."""
    fs, path = _resolve(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        return bool(fs.get_file_info(pafs.FileSelector(path)))
    return info.type == pafs.FileType.File


def children(location: str | Path) -> list[str]:
    """The names of the files and folders directly in a stored folder (none if absent)."""
    fs, path = _resolve(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return sorted(info.base_name for info in fs.get_file_info(pafs.FileSelector(path)))


def read_text(location: str | Path) -> str:
    fs, path = _resolve(location)
    with fs.open_input_stream(path) as src:
        return src.readall().decode()


def write_text(location: str | Path, text: str) -> None:
    fs, path = _resolve(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as out:
        out.write(text.encode())


def upload(local: str | Path, location: str | Path) -> None:
    """Copies a local file or folder to ``location`` (replacing files of the same name)."""
    fs, path = _resolve(location)
    local = Path(local).resolve()
    if isinstance(fs, pafs.LocalFileSystem) and Path(path) == local:
        return
    fs.create_dir(path if local.is_dir() else path.rsplit("/", 1)[0], recursive=True)
    pafs.copy_files(str(local), path, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)


def remove(location: str | Path) -> None:
    """Deletes a stored file if it is there."""
    fs, path = _resolve(location)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)


def remove_tree(location: str | Path) -> int:
    """Deletes a stored file or folder if it is there; returns the bytes it held."""
    fs, path = _resolve(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        fs.delete_file(path)
        return info.size or 0
    if info.type != pafs.FileType.Directory:
        return 0
    held = sum(f.size or 0 for f in fs.get_file_info(pafs.FileSelector(path, recursive=True))
               if f.type == pafs.FileType.File)
    fs.delete_dir(path)
    return held


def download_file(location: str | Path, local: str | Path) -> Path:
    """Copies one stored file to the local path ``local``."""
    fs, path = _resolve(location)
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    with fs.open_input_stream(path) as source, local.open("wb") as target:
        target.write(source.readall())
    return local


def download(location: str | Path, local: str | Path) -> Path:
    """Copies a stored folder to the local folder ``local`` (written beside it, then renamed,
    so that a reader never sees half a copy); returns ``local``."""
    fs, path = _resolve(location)
    local = Path(local)
    partial = local.with_name(local.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(path, str(partial), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem())
    partial.rename(local)
    return local


def mirror_dir(uri: str) -> Path:
    """The local folder that mirrors ``uri``: ``<cache>/experiments/<scheme>/<rest of uri>``."""
    scheme, rest = uri.split("://", 1)
    root = Path(os.environ.get("COFI_SWEEP_CACHE", "~/.cache/cofi_sweep")).expanduser()
    return root / "experiments" / scheme / rest.strip("/")


def local_copy(location: str | Path) -> Path:
    """A local folder with the experiment's files: the folder itself, or for a URI its mirror,
    refreshed (Tune's checkpoints and the teacher's copy are left out: readers do not need
    them, and resuming reads them from the URI)."""
    if not is_uri(location):
        return Path(location).expanduser().resolve()
    fs, base = _resolve(location)
    mirror = mirror_dir(str(location))
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no experiment at {location}")
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        relative = info.path[len(base.rstrip("/")) + 1:]
        parts = relative.split("/")
        if info.type != pafs.FileType.File or parts[0] == TEACHER_COPY or any(
                part.startswith("checkpoint_") for part in parts):
            continue
        target = mirror / relative
        if target.is_file() and target.stat().st_size == info.size and (
                info.mtime is None or target.stat().st_mtime >= info.mtime.timestamp()):
            continue  # unchanged since the last copy
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src:
            target.write_bytes(src.readall())
    return mirror
