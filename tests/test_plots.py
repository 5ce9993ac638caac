"""kr.plot: one box per block, each shortcut marked by kind."""

import struct

import keras
import pytest

import keras_resnet as kr
from keras_resnet.cli import main
from keras_resnet.plots import layout


def png_size(path):
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_layout_marks_every_shortcut():
    boxes, titles = layout("resnet50")
    assert titles == ["stem", "stage1\nbottleneck x3", "stage2\nbottleneck x4",
                      "stage3\nbottleneck x6", "stage4\nbottleneck x3", "head"]
    blocks = [b for b in boxes if b.shortcut]
    assert len(blocks) == 16  # one box per block, not per layer
    assert [b.shortcut for b in blocks if b.row == 0] == ["B"] * 4
    assert {b.shortcut for b in blocks if b.row > 0} == {"identity"}
    assert blocks[3].detail.startswith("256->512, /2")  # stage2, block1


def test_layout_of_plain_twin_and_long_stages():
    boxes, _ = layout(kr.build_plain("cifar_plain110"))
    kinds = {b.shortcut for b in boxes if b.shortcut}
    assert kinds == {"none"}
    ellipses = [b for b in boxes if b.title == "..."]
    assert len(ellipses) == 3 and "11 more identical blocks" in ellipses[0].detail
    boxes, _ = layout("cifar_resnet20")
    assert [b.shortcut for b in boxes if b.shortcut and b.row == 0] == [
        "identity", "A", "A"]


@pytest.mark.parametrize("option", ["C", "D"])
def test_layout_other_options(option):
    spec = kr.presets.get("cifar_resnet20").replace(shortcut=option)
    kinds = [b.shortcut for b in layout(spec)[0] if b.shortcut]
    assert kinds.count(option) == (9 if option == "C" else 2)


def test_plot_writes_png(tmp_path):
    path = tmp_path / "net.png"
    assert kr.plot("resnet50", path) == str(path)
    width, height = png_size(path)
    assert width > 1000 and height > 500
    # nothing is overwritten unasked (0.3: the default is overwrite=False)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        kr.plot("cifar_resnet20", path)
    with pytest.raises(FileExistsError):
        kr.plot("cifar_resnet20", path, overwrite=False)
    assert path.read_bytes() == before
    assert kr.plot("cifar_resnet20", path, overwrite=True) == str(path)
    assert path.read_bytes() != before and png_size(path)[0] < width


def test_plot_path_keyword_is_removed_and_names_filepath(tmp_path):
    """0.2's path= (deprecated in 0.3) fails before any work, naming filepath=."""
    removed = r"^plot\(path=\.\.\.\) was deprecated in 0\.3 and is removed; use filepath=$"
    with pytest.raises(TypeError, match=removed):
        kr.plot("cifar_resnet20", path=tmp_path / "old.png")
    with pytest.raises(TypeError, match=removed):
        kr.plot("cifar_resnet20", path=tmp_path / "old.png", filepath=tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
    assert kr.plot("cifar_resnet20", filepath=tmp_path / "new.png") == str(
        tmp_path / "new.png")
    assert not (tmp_path / "x.png").exists()


def test_summary_plot_option(tmp_path, capsys):
    path = tmp_path / "r20.png"
    assert main(["summary", "cifar_resnet20", "--plot", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    assert png_size(path)[0] > 500
    before = path.read_bytes()
    assert main(["summary", "resnet50", "--plot", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"keras-resnet: error: {str(path)!r} already exists; pass overwrite=True "
        "(--overwrite) to replace it")
    assert path.read_bytes() == before
    assert main(["summary", "resnet50", "--plot", str(path), "--overwrite"]) == 0
    assert png_size(path)[0] > 1000  # resnet50 now


def test_graphviz_draws_what_the_spec_says(tmp_path, monkeypatch):
    """kr.plot("cifar_plain20", backend="graphviz") drew the residual net in 0.1.0."""
    drawn = []

    def fake_plot_model(model, to_file, **kwargs):
        drawn.append(model)
        open(to_file, "wb").write(b"png")

    monkeypatch.setattr(keras.utils, "plot_model", fake_plot_model)
    kr.plot("cifar_plain20", tmp_path / "plain.png", backend="graphviz")
    kr.plot("cifar_resnet20", tmp_path / "resnet.png", backend="graphviz")
    plain, resnet = drawn
    assert kr.spec_of(plain).residual is False and plain.name == "cifar_plain20"
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    assert sum(isinstance(layer, keras.layers.Add) for layer in resnet.layers) == 9
