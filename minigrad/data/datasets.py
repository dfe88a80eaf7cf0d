"""Ready-made data for the exercise: the synthetic default and the real photos' download.

- :class:`SyntheticInsects`: generated 4-class "insect" drawings (not photos),
  needing no download; the demo's default.
- :func:`download_bee_vs_wasp`: fetch and unpack the course's "Bee or Wasp?" photo
  archive (about 11,400 images; needs network), safely.
"""
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from .. import io as mg_io
from .folder import holds_data
from .progress import progress_bar
from .synthetic import SYNTHETIC_CLASSES, SyntheticInsects

__all__ = ["SyntheticInsects", "SYNTHETIC_CLASSES", "BEE_VS_WASP_URL", "download_bee_vs_wasp",
           "download_url", "extract_archive", "find_image_root"]

#: The archive the course's notebook downloads.
BEE_VS_WASP_URL = ("https://data.rc.ufl.edu/pub/practicum-ai/Deep_Learning_Foundations/"
                   "bee_vs_wasp.tar.gz")

_COMPLETE_MARKER = ".minigrad-complete"


def download_url(url, path, progress=True, timeout=60, chunk_size=1 << 16):
    """Download ``url`` to ``path`` with a progress bar; the file appears only when complete.

    The bytes stream into a temporary file beside ``path`` that is renamed over
    it at the end (:func:`minigrad.io.atomic_write`), so an interrupted download
    never leaves a truncated file under the final name. Returns ``Path(path)``.
    """
    path = Path(path)
    request = urllib.request.Request(url, headers={"User-Agent": "minigrad"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except OSError as exc:  # URLError is an OSError
        raise ConnectionError(f"could not download {url}: {exc}. Check the network "
                              f"connection (or pass the data folder with --data)") from exc
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = [0]

        def copy(f):
            with progress_bar(total=total, desc=path.name, unit="B", unit_scale=True,
                              disable=None if progress else True, leave=True) as bar:
                while True:
                    chunk = response.read(chunk_size)
                    if not chunk:
                        break
                    f.write(chunk)
                    received[0] += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received[0] != total:
                raise ConnectionError(f"download of {url} ended after {received[0]} of "
                                      f"{total} bytes")

        mg_io.atomic_write(path, copy)
    return path


def _check_member(name, dest, link=None, hardlink=False):
    """Raise ``ValueError`` if an archive entry (or its link target) leaves ``dest``."""
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"unsafe archive entry {name!r}: absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise ValueError(f"unsafe archive entry {name!r}: '..' leaves the destination")
    target = os.path.realpath(os.path.join(dest, name))
    if os.path.commonpath([target, dest]) != dest:
        raise ValueError(f"unsafe archive entry {name!r}: it resolves outside {dest}")
    if link is not None:
        if os.path.isabs(link):
            raise ValueError(f"unsafe archive link {name!r} -> {link!r}: absolute target")
        base = dest if hardlink else os.path.dirname(os.path.join(dest, name))
        resolved = os.path.realpath(os.path.join(base, link))
        if os.path.commonpath([resolved, dest]) != dest:
            raise ValueError(f"unsafe archive link {name!r} -> {link!r}: it points "
                             f"outside the destination")


def extract_archive(archive, dest):
    """Unpack a ``.tar``/``.tar.gz``/``.tgz``/``.zip`` archive into ``dest``, safely.

    Every entry is checked first: absolute paths, ``..`` components, links
    pointing outside ``dest``, and device files are refused with a
    ``ValueError`` naming the entry, before anything is written. Returns ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                _check_member(name, root)
            z.extractall(root)
        return dest
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            if m.issym() or m.islnk():
                _check_member(m.name, root, m.linkname, hardlink=m.islnk())
            elif m.isfile() or m.isdir():
                _check_member(m.name, root)
            else:
                raise ValueError(f"unsafe archive entry {m.name!r}: device, FIFO or other "
                                 f"special file")
        if hasattr(tarfile, "data_filter"):  # Python's own guard too, where it exists
            tar.extractall(root, members=members, filter="data")
        else:
            tar.extractall(root, members=members)
    return dest


def find_image_root(folder):
    """The folder that holds the class (or train/val) subfolders inside an unpacked archive.

    Archives usually wrap their content in one top folder (``bee_vs_wasp/...``);
    this walks down through folders that contain exactly one visible subfolder
    and no visible files.
    """
    folder = Path(folder)
    while True:
        entries = [e for e in os.scandir(folder) if holds_data(e.name)]
        subdirs = [e for e in entries if e.is_dir()]
        files = [e for e in entries if e.is_file()]
        if len(subdirs) == 1 and not files:
            folder = Path(subdirs[0].path)
        else:
            return folder


def download_bee_vs_wasp(dest="data", url=BEE_VS_WASP_URL, progress=True, force=False,
                         keep_archive=False):
    """Download and unpack the course's "Bee or Wasp?" photos; returns the image folder.

    The archive (about 11,400 photos in ``bee/``, ``other_insect/``,
    ``other_noinsect/``, ``wasp/``) is fetched from ``url`` into ``dest`` with a
    progress bar, unpacked into ``dest/bee_vs_wasp`` through a temporary folder
    (so a half-unpacked set is never mistaken for a complete one), and the
    archive is deleted unless ``keep_archive``. A later call finds the finished
    folder and returns at once (``force=True`` downloads again). Pass the
    returned path to ``ImageFolder`` or the demo's ``--data``.
    """
    dest = Path(dest)
    final = dest / "bee_vs_wasp"
    if (final / _COMPLETE_MARKER).exists() and not force:
        return find_image_root(final)
    dest.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "bee_vs_wasp.tar.gz"
    archive = download_url(url, dest / name, progress=progress)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".bee_vs_wasp.partial-"))
    try:
        extract_archive(archive, staging)
        (staging / _COMPLETE_MARKER).write_text(f"unpacked from {url}\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_archive:
        archive.unlink()
    return find_image_root(final)
