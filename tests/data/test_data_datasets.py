"""The synthetic insects and the bee-vs-wasp download (through file:// URLs only)."""
import io
import sys
import tarfile
import zipfile

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="Pillow (a declared dependency) is not installed")

from minigrad.data import ImageFolder, SyntheticInsects, download_bee_vs_wasp
from minigrad.data.datasets import download_url, extract_archive, find_image_root
from minigrad.data.progress import PlainProgress, progress_bar


# ----------------------------------------------------------------- synthetic
def test_synthetic_set_is_deterministic_balanced_and_labelled_as_such():
    a = SyntheticInsects(103, size=40, seed=5)
    b = SyntheticInsects(103, size=40, seed=5)
    c = SyntheticInsects(103, size=40, seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.labels.tolist() == b.labels.tolist()
    assert not np.array_equal(a.images, c.images)
    assert a.classes == ["bee", "other_insect", "other_noinsect", "wasp"]
    assert a.class_counts().tolist() == [26, 26, 26, 25]
    assert a.images.shape == (103, 40, 40, 3) and a.images.dtype == np.uint8
    assert "synthetic" in a.description and "not photos" in a.description
    assert "synthetic" in repr(a)


def test_synthetic_pictures_vary_and_use_the_range():
    ds = SyntheticInsects(64, size=80, seed=0)
    flat = ds.images.reshape(64, -1).astype(np.float64)
    # No two pictures alike, none blank, and the pixel values spread over the range.
    assert len({img.tobytes() for img in ds.images}) == 64
    assert flat.std(axis=1).min() > 5
    assert flat.min() < 30 and flat.max() > 225


def test_synthetic_classes_differ_in_colour_statistics():
    # A weak, model-free check that the classes carry signal: wasps are drawn in
    # lemon yellow and black, so their share of strongly yellow pixels is larger
    # than that of pictures without insects (which only sometimes hold a sign).
    ds = SyntheticInsects(400, size=48, seed=2)
    img = ds.images.astype(np.int16)
    yellow = ((img[..., 0] > 180) & (img[..., 1] > 150) & (img[..., 2] < 90)).mean(axis=(1, 2))
    by_class = [yellow[ds.labels == k].mean() for k in range(4)]
    assert by_class[3] > 1.5 * by_class[1]


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_images"):
        SyntheticInsects(0)
    with pytest.raises(ValueError, match="size"):
        SyntheticInsects(10, size=8)


# ----------------------------------------------------------------- archives
def _png_bytes(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _add(tar, name, data=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def _bee_archive(path):
    with tarfile.open(path, "w:gz") as tar:
        for cls, colour in (("bee", (200, 120, 10)), ("other_insect", (20, 20, 20)),
                            ("other_noinsect", (0, 150, 0)), ("wasp", (250, 220, 20))):
            for i in range(2):
                _add(tar, f"bee_vs_wasp/{cls}/{i}.png", _png_bytes(colour))
    return path


def test_download_and_unpack_through_a_file_url(tmp_path):
    archive = _bee_archive(tmp_path / "source.tar.gz")
    dest = tmp_path / "data"
    root = download_bee_vs_wasp(dest, url=archive.as_uri(), progress=False)
    assert root == dest / "bee_vs_wasp" / "bee_vs_wasp"
    ds = ImageFolder(root, size=6)
    assert ds.classes == ["bee", "other_insect", "other_noinsect", "wasp"] and len(ds) == 8
    assert not (dest / "source.tar.gz").exists()  # the archive is removed after unpacking
    assert [p.name for p in dest.iterdir()] == ["bee_vs_wasp"]  # no temporary leftovers
    # A second call finds the finished folder and downloads nothing.
    archive.unlink()
    assert download_bee_vs_wasp(dest, url=archive.as_uri(), progress=False) == root


def test_download_shows_progress_and_keeps_archive_when_asked(tmp_path, capsys,
                                                              monkeypatch):
    archive = _bee_archive(tmp_path / "bee_vs_wasp.tar.gz")
    dest = tmp_path / "data"
    download_bee_vs_wasp(dest, url=archive.as_uri(), progress=True, keep_archive=True)
    assert (dest / "bee_vs_wasp.tar.gz").read_bytes() == archive.read_bytes()
    assert capsys.readouterr().err == ""  # not a terminal (a log, CI): no bar frames
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    download_bee_vs_wasp(tmp_path / "again", url=archive.as_uri(), progress=True)
    assert "bee_vs_wasp.tar.gz" in capsys.readouterr().err  # the bar names the file


def test_failed_download_leaves_nothing(tmp_path):
    with pytest.raises(ConnectionError, match="could not download"):
        download_url((tmp_path / "absent.tar.gz").as_uri(), tmp_path / "out" / "x.tar.gz",
                     progress=False)
    assert not (tmp_path / "out" / "x.tar.gz").exists()


def test_short_download_is_an_error_and_leaves_no_file(tmp_path, monkeypatch):
    import urllib.request

    class Short(io.BytesIO):
        headers = {"Content-Length": "100"}

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Short(b"only 10 b."))
    target = tmp_path / "file.bin"
    with pytest.raises(ConnectionError, match="after 10 of 100 bytes"):
        download_url("http://example.invalid/file.bin", target, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("build, match", [
    (lambda t: _add(t, "../evil.txt", b"x"), r"'\.\.'"),
    (lambda t: _add(t, "/abs/evil.txt", b"x"), "absolute"),
    (lambda t: _add(t, "ok/../../evil.txt", b"x"), r"'\.\.'"),
    (lambda t: _add(t, "link", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "absolute"),
    (lambda t: _add(t, "sub/link", type=tarfile.SYMTYPE, linkname="../../outside"), "outside"),
    (lambda t: _add(t, "hard", type=tarfile.LNKTYPE, linkname="../x"), "outside"),
    (lambda t: _add(t, "dev", type=tarfile.CHRTYPE), "special file"),
])
def test_unsafe_tar_entries_are_refused_before_writing(tmp_path, build, match):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "good/first.txt", b"written only if the archive is safe")
        build(tar)
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match=match):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_links_inside_the_destination_are_fine(tmp_path):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "a/file.txt", b"hello")
        _add(tar, "a/link.txt", type=tarfile.SYMTYPE, linkname="file.txt")
    extract_archive(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "a" / "link.txt").read_bytes() == b"hello"


def test_zip_archives_are_checked_too(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("set/bee/0.png", _png_bytes((1, 2, 3)))
        z.writestr("set/wasp/0.png", _png_bytes((3, 2, 1)))
    extract_archive(good, tmp_path / "g")
    assert find_image_root(tmp_path / "g") == tmp_path / "g" / "set"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        extract_archive(bad, tmp_path / "b")
    assert not (tmp_path / "escape.txt").exists()


def test_a_mac_made_zip_loads_without_its_resource_forks(tmp_path):
    archive = tmp_path / "mac.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for cls, colour in (("bee", (200, 150, 0)), ("wasp", (250, 220, 0))):
            z.writestr(f"{cls}/0.png", _png_bytes(colour))
            z.writestr(f"__MACOSX/{cls}/._0.png", b"\x00\x05\x16\x07 AppleDouble")
    root = find_image_root(extract_archive(archive, tmp_path / "m"))
    assert root == tmp_path / "m"
    ds = ImageFolder(root, size=4)  # used to fail: "class folder __MACOSX contains no ..."
    assert ds.classes == ["bee", "wasp"] and len(ds) == 2
    wrapped = tmp_path / "wrapped.zip"  # one top folder plus __MACOSX: walk into the folder
    with zipfile.ZipFile(wrapped, "w") as z:
        for cls in ("bee", "wasp"):
            z.writestr(f"set/{cls}/0.png", _png_bytes((1, 2, 3)))
            z.writestr(f"__MACOSX/set/{cls}/._0.png", b"\x00")
    assert find_image_root(extract_archive(wrapped, tmp_path / "w")) == tmp_path / "w" / "set"


def test_failed_unpack_leaves_no_half_folder(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "bee_vs_wasp/bee/0.png", _png_bytes((1, 1, 1)))
        _add(tar, "../../escape", b"x")
    dest = tmp_path / "data"
    with pytest.raises(ValueError):
        download_bee_vs_wasp(dest, url=archive.as_uri(), progress=False)
    leftovers = sorted(p.name for p in dest.iterdir())
    assert leftovers == ["bad.tar.gz"]  # the archive stays for inspection; no partial folder


# ----------------------------------------------------------------- progress
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_progress_draws_on_a_terminal_only():
    screen = _Terminal()
    bar = PlainProgress(total=4, desc="Epoch 1/2", unit="batch", file=screen, interval=0.0)
    for _ in range(4):
        bar.update(1)
    bar.set_postfix("loss 0.5000")
    assert "Epoch 1/2" in screen.getvalue() and "4/4" in screen.getvalue()
    assert "loss 0.5000" in bar.render()
    bar.close()
    assert screen.getvalue().endswith("\r")  # wiped, so the summary line starts clean
    log = io.StringIO()  # not a terminal: nothing is drawn
    quiet = PlainProgress(total=4, file=log, interval=0.0)
    quiet.update(4)
    quiet.close()
    assert log.getvalue() == ""


def test_progress_bar_picks_an_implementation():
    assert isinstance(progress_bar(total=3, kind="plain", file=io.StringIO()), PlainProgress)
    with pytest.raises(ValueError, match="progress kind"):
        progress_bar(kind="fancy")


def test_progress_bars_follow_tqdms_disable_none(monkeypatch):
    # disable=None (the default): a bar only on a terminal, as tqdm's own disable=None;
    # True: never; False: always, even into a log.
    for kind in ("plain", "tqdm"):
        if kind == "tqdm":
            pytest.importorskip("tqdm")
        for stream, disable, drawn in ((io.StringIO(), None, False), (_Terminal(), None, True),
                                       (io.StringIO(), False, True), (_Terminal(), True, False)):
            bar = progress_bar(total=3, desc="Epoch 1/1", file=stream, disable=disable,
                               kind=kind)
            bar.update(3)
            bar.close()
            assert ("Epoch 1/1" in stream.getvalue()) == drawn, (kind, disable, drawn)
            assert ("\r" in stream.getvalue()) == drawn


def test_training_into_a_log_prints_one_line_per_epoch_and_no_frames(capsys):
    import minigrad as mg
    from minigrad import nn
    from minigrad.data import DataLoader, TensorDataset
    from minigrad.train import fit
    rng = np.random.default_rng(0)
    data = TensorDataset(rng.normal(size=(64, 3)).astype(np.float32),
                         rng.integers(0, 2, 64))
    mg.manual_seed(0)
    fit(nn.Sequential(nn.Dense(3, 2)), DataLoader(data, 16), epochs=2, verbose=1)
    captured = capsys.readouterr()  # stdout and stderr are not terminals here
    assert "\r" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
