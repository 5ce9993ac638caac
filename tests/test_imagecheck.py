"""Image folders are checked before training: every kind of bad file is refused with
its reason, in agreement with the pipeline of ``image_dataset_from_directory``; the
folder is listed as Keras lists it; verdicts are cached; bad files can be left out."""

import io
import json
import os
import re
import time
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

import keras_resnet as kr
from keras_resnet import imagecheck as ic

# ----------------------------------------------------------------------------- fixtures


def picture(size=(12, 16), mode="RGB", seed=0):
    """A small smooth random image (compresses like a photo)."""
    rng = np.random.RandomState(seed)
    img = Image.fromarray(rng.randint(0, 255, (4, 4, 3)).astype("uint8"))
    return img.resize((size[1], size[0]), Image.BILINEAR).convert(mode)


def encode(img, fmt, **kwargs):
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def jpeg(size=(12, 16), mode="RGB", seed=0):
    return encode(picture(size, mode, seed), "JPEG", quality=90)


def png(size=(12, 16), mode="RGB", seed=0):
    return encode(picture(size, mode, seed), "PNG")


def png16_grey():
    rng = np.random.RandomState(1)
    return encode(Image.fromarray((rng.rand(10, 14) * 65535).astype("uint16")), "PNG")


def png16_rgb():
    import tensorflow as tf

    rng = np.random.RandomState(2)
    return tf.io.encode_png((rng.rand(10, 14, 3) * 65535).astype("uint16")).numpy()


def corrupt_png():
    data = bytearray(png())
    data[40] ^= 0xFF  # inside the first IDAT: its CRC no longer matches
    return bytes(data)


def write(root, files, classes=("a", "b"), per_class=2):
    """``per_class`` good PNGs per class, plus ``files`` ({relative path: bytes})."""
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(per_class):
            (root / c / f"good{i}.png").write_bytes(png(seed=i))
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def pipeline_failures(root, color_mode="rgb"):
    """The files Keras' own image_dataset_from_directory pipeline fails on."""
    ds = keras.utils.image_dataset_from_directory(
        str(root), image_size=(8, 8), batch_size=1, shuffle=False, color_mode=color_mode,
        verbose=False)
    failed, it = set(), iter(ds)
    for path in ds.file_paths:  # the iterator goes on after a failed element
        try:
            next(it)
        except StopIteration:
            break
        except Exception:  # noqa: BLE001 - TensorFlow's errors
            failed.add(os.path.relpath(path, root))
    return failed


def check_quietly(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ic.check_image_folder(str(root), skip_bad_files=True, **kwargs)


# ----------------------------------------------------------------------------- kinds

# id: (file, bytes, color_mode, reason pattern or None for a good file)
KINDS = {
    "truncated_jpeg": ("a/cut.jpg", lambda: jpeg()[: len(jpeg()) // 2], "rgb",
                       r"^truncated JPEG: the file ends before its end-of-image marker "
                       r"\[TensorFlow: jpeg::Uncompress failed"),
    "zero_byte_file": ("a/empty.jpg", lambda: b"", "rgb", r"^empty file \(0 bytes\)$"),
    "text_named_jpg": ("a/notes.jpg", lambda: b"shopping list\n- milk\n", "rgb",
                       r"^a text file, not an image \(it starts with b'shopping list"),
    "png_named_jpg": ("a/really_a_png.jpg", png, "rgb", None),
    "cmyk_jpeg": ("a/cmyk.jpg", lambda: jpeg(mode="CMYK"), "rgb", None),
    "cmyk_jpeg_as_grayscale": ("a/cmyk.jpg", lambda: jpeg(mode="CMYK"), "grayscale",
                               r"^a CMYK JPEG, which TensorFlow decodes to RGB only "
                               r"\(color_mode='grayscale'\)"),
    "png_16_bit_grey": ("a/deep.png", png16_grey, "rgb", None),
    "png_16_bit_rgb": ("a/deep_rgb.png", png16_rgb, "rgb", None),
    "greyscale_in_rgb": ("a/grey.jpg", lambda: jpeg(mode="L"), "rgb", None),
    "rgba_in_rgb": ("a/alpha.png", lambda: png(mode="RGBA"), "rgb", None),
    "palette_png_in_rgb": ("a/palette.png", lambda: png(mode="P"), "rgb", None),
    "gif": ("a/anim.gif", lambda: encode(picture(mode="P"), "GIF"), "rgb", None),
    "webp_named_jpg": ("a/webp.jpg", lambda: encode(picture(), "WEBP"), "rgb", None),
    "rgb_in_grayscale": ("a/colour.png", png, "grayscale", None),
    "jpeg_as_rgba": ("a/photo.jpg", jpeg, "rgba",
                     r"^a JPEG that TensorFlow cannot decode to 4 channel\(s\) "
                     r"\(color_mode='rgba'\) \[TensorFlow: JPEG does not support 4"),
    "gif_as_grayscale": ("a/anim.gif", lambda: encode(picture(mode="P"), "GIF"),
                         "grayscale", r"^a GIF that TensorFlow cannot decode to 1 channel"),
    "one_bit_bmp": ("a/mono.bmp", lambda: encode(picture(mode="1"), "BMP"), "rgb",
                    r"^a 1-bit BMP, which TensorFlow does not decode \[TensorFlow: Number of "),
    "tiff_named_png": ("a/scan.png", lambda: encode(picture(), "TIFF"), "rgb",
                       r"^a TIFF image, which TensorFlow does not decode$"),
    "corrupt_png": ("a/bitflip.png", corrupt_png, "rgb", r"^corrupt PNG data \[TensorFlow: "),
    "truncated_png": ("a/cut.png", lambda: png()[:-20], "rgb",
                      r"^truncated PNG: the file ends before its IEND chunk"),
    "macos_resource_fork": ("a/._photo.jpg", lambda: b"\x00\x05\x16\x07" + bytes(60),
                            "rgb", r"^not an image: the content is not JPEG, PNG, GIF, BMP "
                                   r"or WebP \(it starts with b'\\x00\\x05"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_file_gets_the_verdict_of_tensorflows_pipeline(tmp_path, kind):
    rel, make, color_mode, reason = KINDS[kind]
    root = write(tmp_path / "photos", {rel: make()})
    folder = check_quietly(root, color_mode=color_mode)
    # What the check says is what Keras' own pipeline does with the file.
    assert pipeline_failures(root, color_mode) == ({rel} if reason else set())
    if reason is None:
        assert folder.bad_files == [] and rel in folder.files and len(folder.files) == 5
        ic.check_image_folder(str(root), color_mode=color_mode)  # no error by default
        return
    assert [b.path for b in folder.bad_files] == [rel] and rel not in folder.files
    assert re.search(reason, folder.bad_files[0].reason), folder.bad_files[0].reason
    assert len(folder.files) == 4 and folder.labels == [0, 0, 1, 1]
    with pytest.raises(ic.BadImageFilesError, match=re.escape(rel)):
        ic.check_image_folder(str(root), color_mode=color_mode)


def test_too_large_images_are_refused_from_the_header_before_decoding(tmp_path, monkeypatch):
    assert ic.MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS  # Pillow's bomb limit
    small = png(size=(30, 40))
    bomb_png = small[:16] + (100_000).to_bytes(4, "big") * 2 + small[24:]
    sof = jpeg().index(b"\xff\xc0")
    bomb_jpeg = bytearray(jpeg())
    bomb_jpeg[sof + 5:sof + 9] = (60_000).to_bytes(2, "big") * 2
    root = write(tmp_path / "photos", {"a/bomb.png": bomb_png, "b/bomb.jpg": bytes(bomb_jpeg),
                                       "b/big.png": small})
    import tensorflow as tf

    decode = tf.image.decode_image
    decoded = []
    monkeypatch.setattr(tf.image, "decode_image",
                        lambda data, **kw: decoded.append(1) or decode(data, **kw))
    folder = check_quietly(root)
    assert {b.path: b.reason for b in folder.bad_files} == {
        "a/bomb.png": "too large to decode safely: a PNG of 100,000 x 100,000 = "
                      "10,000,000,000 pixels, more than max_image_pixels=89,478,485",
        "b/bomb.jpg": "too large to decode safely: a JPEG of 60,000 x 60,000 = "
                      "3,600,000,000 pixels, more than max_image_pixels=89,478,485"}
    assert len(decoded) == 5  # the good files only: the bombs were never decoded
    # The limit is a parameter: a 40 x 30 image is refused under 1,200 pixels.
    limited = check_quietly(root, max_image_pixels=1199)
    assert "b/big.png" in {b.path for b in limited.bad_files}
    assert "b/big.png" in check_quietly(root, max_image_pixels=1200).files
    with pytest.warns(UserWarning, match="left out 3 of 7"):
        data = kr.load_data(str(root), max_image_pixels=1199, skip_bad_files=True,
                            image_size=(8, 8), validation_split=0.5)
    assert data.load_args["max_image_pixels"] == 1199 and len(data.bad_files) == 3
    with pytest.raises(ValueError, match=r"^max_image_pixels must be >= 1"):
        kr.load_data(str(root), max_image_pixels=0)


def test_an_empty_class_folder_is_refused(tmp_path):
    root = write(tmp_path / "photos", {"b/notes.txt": b"not listed"})
    (root / "c").mkdir()
    # Keras counts it as a class with no images (an output never trained) ...
    assert keras.utils.image_dataset_from_directory(
        str(root), verbose=False).class_names == ["a", "b", "c"]
    # ... we refuse it, before decoding anything.
    with pytest.raises(ValueError, match=r"has class folder\(s\) with no images: 'c'\. "
                                         r"The model gets one output per class folder"):
        kr.load_data(str(root))
    # A class whose only image is bad is empty once it is left out.
    (root / "c" / "broken.jpg").write_bytes(jpeg()[:50])
    with pytest.raises(ValueError, match=r"with no images once its 1 bad file\(s\) are left "
                                         r"out: 'c'"):
        check_quietly(root)


def test_one_class_folder_is_refused(tmp_path):
    root = write(tmp_path / "photos", {}, classes=("a",))
    (root / ".thumbnails").mkdir()  # hidden folders are no class, as in Keras
    (root / "loose.jpg").write_bytes(jpeg())  # files beside the class folders: ignored
    with pytest.raises(ValueError, match=r"must hold one sub-folder per class \(at least 2\)"
                                         r"\. Received: 1 sub-folder\(s\) \('a'\)"):
        kr.load_data(str(root))


def test_nested_folders_are_found_and_labelled_by_their_class_folder(tmp_path):
    root = write(tmp_path / "photos", {"a/2024/june/x.png": png(), "a/2024/y.JPG": jpeg(),
                                       "b/sub/z.jpeg": jpeg(mode="L"), "b/sub/skip.txt": b"",
                                       "b/.hidden/w.png": png(), "loose.png": png(),
                                       "b/.DS_Store": b"\x00\x00\x00\x01Bud1"})
    (root / ".cache").mkdir()
    (root / ".cache" / "c.png").write_bytes(png())
    os.symlink(root / "a", root / "linked")  # a link to a folder is a class, as in Keras
    folder = ic.list_image_folder(str(root))
    keras_ds = keras.utils.image_dataset_from_directory(str(root), shuffle=False,
                                                        verbose=False)
    assert folder.paths() == keras_ds.file_paths  # the same files, in the same order
    assert folder.class_names == keras_ds.class_names == ["a", "b", "linked"]
    assert folder.files == [
        "a/good0.png", "a/good1.png", "a/2024/y.JPG", "a/2024/june/x.png",
        "b/good0.png", "b/good1.png", "b/.hidden/w.png", "b/sub/z.jpeg",
        "linked/good0.png", "linked/good1.png", "linked/2024/y.JPG",
        "linked/2024/june/x.png"]  # folder by folder, sorted: Keras' order
    assert folder.labels == [0] * 4 + [1] * 4 + [2] * 4
    assert check_quietly(root).files == folder.files


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_loops_neither_hang_nor_crash(tmp_path):
    root = write(tmp_path / "photos", {})
    os.symlink("..", root / "a" / "up")  # folder loops: not followed, as in Keras
    os.symlink(".", root / "b" / "here")
    os.symlink(root, root / "b" / "top")
    os.symlink("l2.jpg", root / "a" / "l1.jpg")  # a file loop: unreadable
    os.symlink("l1.jpg", root / "a" / "l2.jpg")
    os.symlink("missing.png", root / "b" / "gone.png")  # a broken link
    os.symlink(root / "a" / "good0.png", root / "b" / "alias.png")  # a good link
    os.symlink("loop", root / "loop")  # a loop where a class folder would be
    start = time.perf_counter()
    folder = check_quietly(root)
    assert time.perf_counter() - start < 20
    assert folder.class_names == ["a", "b"]
    assert {b.path: b.reason for b in folder.bad_files} == {
        "a/l1.jpg": "cannot be read: a loop of symbolic links",
        "a/l2.jpg": "cannot be read: a loop of symbolic links",
        "b/gone.png": "cannot be read: a broken symbolic link (to 'missing.png')"}
    assert "b/alias.png" in folder.files
    assert pipeline_failures(root) == {"a/l1.jpg", "a/l2.jpg", "b/gone.png"}


# ----------------------------------------------------------------------------- load_data


def test_load_data_gives_keras_split_order_and_pixels(tmp_path):
    files = {f"{c}/{i}.{ext}": (png if ext == "png" else jpeg)(size=(10 + i, 14), seed=i)
             for c in "ab" for i, ext in enumerate(["png", "jpg"] * 5)}
    root = write(tmp_path / "photos", files, classes=("a", "b", "c"), per_class=3)
    data = kr.load_data(str(root), validation_split=0.25, seed=7, image_size=(8, 8),
                        batch_size=4)
    for subset, ours in (("training", data.train), ("validation", data.validation)):
        theirs = keras.utils.image_dataset_from_directory(
            str(root), validation_split=0.25, subset=subset, seed=7, image_size=(8, 8),
            batch_size=4, verbose=False)
        for _ in range(2):  # the same shuffles, epoch after epoch
            got = [(x.numpy(), y.numpy()) for x, y in ours]
            want = [(x.numpy() / 255.0, y.numpy()) for x, y in theirs]
            assert [len(y) for _, y in got] == [len(y) for _, y in want]
            for (gx, gy), (wx, wy) in zip(got, want):
                np.testing.assert_allclose(gx, wx, atol=1e-6)
                np.testing.assert_array_equal(gy, wy)
    assert sum(len(y) for _, y in got) == 7  # 29 images, a quarter held out


def test_the_error_names_the_first_ten_bad_files_and_counts_the_rest(tmp_path):
    bad = {f"a/bad{i:02d}.jpg": jpeg()[:60] for i in range(13)}
    root = write(tmp_path / "photos", bad)
    with pytest.raises(ic.BadImageFilesError) as info:
        kr.load_data(str(root))
    assert isinstance(info.value, ValueError) and len(info.value.bad_files) == 13
    lines = str(info.value).splitlines()
    assert lines[0] == (f"image folder {str(root)!r}: 13 of 17 image files cannot be "
                        f"decoded, and training would stop when it reached the first:")
    assert [line.split(":")[0] for line in lines[1:11]] == [
        f"  a/bad{i:02d}.jpg" for i in range(10)]
    assert all("truncated JPEG" in line for line in lines[1:11])
    assert lines[11:] == ["  ... and 3 more", "Fix or remove them, or pass "
                          "skip_bad_files=True (--skip-bad-files) to leave them out of "
                          "training."]


def test_verdicts_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    root = write(tmp_path / "photos", {"a/cut.jpg": jpeg()[:60]}, per_class=3)
    cache = tmp_path / "run" / "image_check.json"
    calls = []
    check_file = ic._check_file
    monkeypatch.setattr(ic, "_check_file", lambda p, *a: calls.append(p) or check_file(p, *a))
    assert len(check_quietly(root, cache=str(cache)).bad_files) == 1
    assert len(calls) == 7 and os.listdir(cache.parent) == ["image_check.json"]
    saved = json.loads(cache.read_text())
    assert saved["channels"] == 3 and saved["max_image_pixels"] == ic.MAX_IMAGE_PIXELS
    size, mtime, reason = saved["files"]["a/cut.jpg"]
    assert size == 60 and isinstance(mtime, int) and reason.startswith("truncated JPEG")
    assert saved["files"]["a/good0.png"][2] is None

    calls.clear()  # a resume decodes nothing, and says the same
    again = check_quietly(root, cache=str(cache))
    assert calls == [] and [b.path for b in again.bad_files] == ["a/cut.jpg"]
    with pytest.raises(ic.BadImageFilesError, match="a/cut.jpg: truncated JPEG"):
        ic.check_image_folder(str(root), cache=str(cache))
    assert calls == []

    (root / "a" / "cut.jpg").write_bytes(jpeg())  # repaired: size and mtime change
    os.utime(root / "b" / "good0.png", ns=(1, 1))  # touched: mtime changes
    assert check_quietly(root, cache=str(cache)).bad_files == []
    assert sorted(os.path.relpath(p, root) for p in calls) == ["a/cut.jpg", "b/good0.png"]

    for garbage in ("{not json", "[]", '{"format": 1}', json.dumps(dict(
            saved, files={"a/cut.jpg": "oops"}))):
        cache.write_text(garbage)  # corrupt: ignored, checked again, rewritten
        calls.clear()
        assert check_quietly(root, cache=str(cache)).bad_files == []
        assert len(calls) == 7 and json.loads(cache.read_text())["files"]
    calls.clear()  # other settings, other verdicts: checked again
    check_quietly(root, cache=str(cache), color_mode="grayscale")
    assert len(calls) == 7


def test_skip_bad_files_leaves_them_out_warns_once_and_lists_them(tmp_path):
    root = write(tmp_path / "photos", {"a/cut.jpg": jpeg()[:80], "b/x/empty.png": b""},
                 per_class=4)
    cache = str(tmp_path / "run" / "image_check.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = kr.load_data(str(root), skip_bad_files=True, check_cache=cache,
                            image_size=(8, 8), validation_split=0.25)
    assert [str(w.message) for w in caught] == [
        f"left out 2 of 10 image files of {str(root)!r} that cannot be decoded "
        f"(skip_bad_files=True); the first: a/cut.jpg: truncated JPEG: the file ends "
        f"before its end-of-image marker [TensorFlow: jpeg::Uncompress failed. Invalid "
        f"JPEG data or crop window.]"]
    assert [(b.path, b.reason) for b in data.bad_files] == [
        ("a/cut.jpg", data.bad_files[0].reason), ("b/x/empty.png", "empty file (0 bytes)")]
    n = sum(len(y) for _, y in data.train) + sum(len(y) for _, y in data.validation)
    assert n == 8
    args = json.loads(json.dumps(data.load_args))  # JSON-ready: a run folder reloads it
    assert (args["skip_bad_files"], args["check_cache"]) == (True, cache)
    with pytest.warns(UserWarning, match="left out 2 of 10"):
        assert kr.load_data(**args).class_names == ["a", "b"]

    run = tmp_path / "run"
    path = ic.write_bad_files(str(run), data.bad_files)
    assert path == str(run / "bad_files.json")
    assert json.loads(open(path).read())[1] == {"path": "b/x/empty.png",
                                                "reason": "empty file (0 bytes)"}
    assert ic.read_bad_files(path) == data.bad_files
    with pytest.raises(FileExistsError):
        ic.write_bad_files(str(run), data.bad_files)
    ic.write_bad_files(str(run), [], overwrite=True)
    assert ic.read_bad_files(path) == []

    with pytest.raises(TypeError, match=r"^skip_bad_files must be True or False"):
        kr.load_data(str(root), skip_bad_files="yes")


def test_check_image_files_for_prediction(tmp_path):
    (tmp_path / "ok.jpg").write_bytes(jpeg())
    (tmp_path / "png.jpg").write_bytes(png())
    (tmp_path / "cut.jpg").write_bytes(jpeg()[:70])
    (tmp_path / "cut.png").write_bytes(png()[:-20])  # Pillow reads it; TensorFlow not
    (tmp_path / "notes.png").write_text("hello")
    (tmp_path / "dir.png").mkdir()
    names = ["ok.jpg", "cut.jpg", "png.jpg", "cut.png", "notes.png", "dir.png", "nope.png"]
    paths = [str(tmp_path / n) for n in names]
    good, bad = ic.check_image_files(paths, skip_bad_files=True)
    assert good == [paths[0], paths[2]]
    reasons = {os.path.basename(b.path): b.reason for b in bad}
    assert reasons["cut.jpg"].startswith("truncated JPEG")
    assert reasons["cut.png"].startswith("truncated PNG")
    assert reasons["notes.png"].startswith("a text file, not an image")
    assert reasons["dir.png"] == "a folder, not an image file"
    assert reasons["nope.png"] == "cannot be read: No such file or directory"
    with pytest.raises(ic.BadImageFilesError, match=r"^image files: 5 of 7 image files "
                                                    r"cannot be decoded"):
        ic.check_image_files(paths)
    assert ic.check_image_files(paths[:1], color_mode="grayscale") == (paths[:1], [])
    with pytest.raises(TypeError, match="must be a list of image files"):
        ic.check_image_files(paths[0])


def test_a_folder_of_180_photos_with_one_truncated_jpeg(tmp_path):
    """The reported case: fails at once naming the file; with skip_bad_files, trains."""
    rng = np.random.RandomState(0)
    files = {}
    for c in ("cat", "dog", "owl"):
        for i in range(60):
            size = tuple(int(v) for v in rng.randint(12, 40, 2))
            mode = ("RGB", "RGB", "L", "RGBA")[i % 4]
            ext = "png" if mode == "RGBA" or i % 3 == 0 else "jpg"
            files[f"{c}/{i:03d}.{ext}"] = (png if ext == "png" else jpeg)(size, mode, i)
    files["dog/holiday/broken.jpg"] = jpeg(size=(40, 30))[:300]
    root = write(tmp_path / "photos", files, classes=("cat", "dog", "owl"), per_class=0)
    start = time.perf_counter()
    with pytest.raises(ic.BadImageFilesError, match=r"1 of 181 image files cannot be "
                       r"decoded.*\n  dog/holiday/broken.jpg: truncated JPEG"):
        kr.load_data(str(root), image_size=(16, 16))
    assert time.perf_counter() - start < 15  # at once: no training started
    with pytest.warns(UserWarning, match="left out 1 of 181"):
        data = kr.load_data(str(root), image_size=(16, 16), batch_size=16,
                            skip_bad_files=True, validation_split=0.2)
    assert [b.path for b in data.bad_files] == ["dog/holiday/broken.jpg"]
    spec = kr.ModelSpec(input_shape=(16, 16, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 8)], shortcut="A", classes=3)
    result = kr.train(spec, data, epochs=1, verbose=0, out_dir=str(tmp_path / "run"))
    assert len(result.history["loss"]) == len(result.history["val_loss"]) == 1
    assert np.isfinite(result.history["loss"][0]) and result.model.output_shape == (None, 3)
    # kr.train writes the files it left out into its run folder
    assert json.loads((tmp_path / "run" / "bad_files.json").read_text())[0]["path"] == \
        "dog/holiday/broken.jpg"
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["load_args"]["skip_bad_files"] is True  # a resume loads the same


# ----------------------------------------------------------------------------- docs


def test_the_image_folders_page_runs(tmp_path, monkeypatch, capsys):
    """Every python block of docs/image-folders.md, in order, on a folder 'photos'."""
    page = os.path.join(os.path.dirname(__file__), "..", "docs", "image-folders.md")
    blocks = re.findall(r"```python\n(.*?)```", open(page, encoding="utf-8").read(), re.S)
    assert len(blocks) >= 3
    root = write(tmp_path / "photos", {"cat/IMG_0042.jpg": jpeg()[:100],
                                       "dog/2023/IMG_0007.jpg": jpeg(size=(30, 20))},
                 classes=("cat", "dog"), per_class=3)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for block in blocks:
            exec(compile(block, page, "exec"), namespace)
    out = capsys.readouterr().out
    shown = [b for b in re.findall(r"```text\n(.*?)```", open(page).read(), re.S)
             if b.startswith("image folder")]
    assert len(shown) == 1 and shown[0] in out  # the page shows the real message
    assert os.path.exists(root.parent / "run" / "bad_files.json")
