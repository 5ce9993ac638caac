"""Training: the recipe, logs, resume after SIGKILL, divergence."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.training.recipe import learning_rate_at

SMALL = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(8, 3, 1, pool=None),
                     blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 16, strides=2)],
                     shortcut="A", classes=10)


def test_schedule():
    assert [learning_rate_at(e, 8, 0.1) for e in range(8)] == pytest.approx(
        [0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert learning_rate_at(0, 10, 0.1, warmup_epochs=1) == pytest.approx(0.01)
    assert learning_rate_at(1, 10, 0.1, warmup_epochs=1) == pytest.approx(0.1)
    assert learning_rate_at(0, 10, 0.1, "cosine") == pytest.approx(0.1)
    assert learning_rate_at(5, 10, 0.1, "cosine") == pytest.approx(0.05)
    assert learning_rate_at(7, 10, 0.1, "constant") == 0.1
    # short runs do not start already decayed
    assert learning_rate_at(0, 1, 0.1) == 0.1
    assert [learning_rate_at(e, 2, 0.1) for e in range(2)] == pytest.approx([0.1, 0.01])


def test_recipe_fields_are_checked_and_round_trip():
    recipe = kr.Recipe(epochs=8, learning_rate=0.1)
    assert [recipe.learning_rate_at(e) for e in range(8)] == pytest.approx(
        [0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert kr.Recipe.from_dict(recipe.to_dict()) == recipe
    assert json.loads(json.dumps(recipe.to_dict())) == recipe.to_dict()
    assert recipe.replace(augment=True).augment and not recipe.augment
    assert isinstance(kr.Recipe(learning_rate=1).learning_rate, float)
    with pytest.raises(ValueError, match=r"^optimizer must be one of 'sgd'.*Received: "
                                         r"optimizer='sgdd'"):
        kr.Recipe(optimizer="sgdd")
    with pytest.raises(ValueError, match=r"^warmup_epochs must be <= 3"):
        kr.Recipe(epochs=3, warmup_epochs=4)
    with pytest.raises(TypeError, match=r"^augment must be True or False"):
        kr.Recipe(augment="yes")
    with pytest.raises(ValueError, match=r"^label_smoothing must be < 1.0"):
        recipe.replace(label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"^recipe.lr is not a known field"):
        kr.Recipe.from_dict({"lr": 0.1})
    with pytest.raises(ValueError, match="the model must be compiled first"):
        kr.Recipe().fit(kr.build_resnet(SMALL), kr.load_data("digits"))


def test_train_is_the_recipe_sequence():
    """seed -> build -> compile -> fit by hand (as a tuning trial does) and
    kr.train give the same numbers, with the recipe as keywords or as an object."""
    data = kr.load_data("digits")
    recipe = kr.Recipe(epochs=2, batch_size=64, learning_rate=0.05, seed=3)
    model = recipe.build(SMALL, data)
    recipe.compile(model)
    manual = recipe.fit(model, data, verbose=0).history["val_accuracy"]
    keras.backend.clear_session()
    by_object = kr.train(SMALL, data, recipe=recipe, verbose=0)
    keras.backend.clear_session()
    by_keywords = kr.train(SMALL, data, **recipe.to_dict(), verbose=0)
    assert len(manual) == 2 and manual[-1] > 0.3  # chance is 0.1
    assert by_object.history["val_accuracy"] == manual
    assert by_keywords.history["val_accuracy"] == manual
    assert by_object.recipe == recipe
    # keywords given with recipe= change those fields
    assert kr.train(SMALL, data, recipe=recipe, epochs=1, verbose=0).recipe.epochs == 1


def test_prepare_is_removed_and_the_recipe_does_what_it_did():
    """0.2's training.prepare (deprecated in 0.3) fails naming recipe.build, which seeds
    and builds for the data; Recipe.compile compiles (kr.compile_model's replacement:
    see test_api.py)."""
    import keras_resnet.training

    with pytest.raises(AttributeError, match=r"^keras_resnet\.training\.prepare was "
                       r"deprecated in 0\.3 and is removed; use recipe\.build\(model, data\)$"):
        keras_resnet.training.prepare  # noqa: B018
    assert "prepare" not in keras_resnet.training.__all__
    data = kr.load_data("digits")
    recipe = kr.Recipe(learning_rate=0.05, momentum=0.8, seed=3)
    one, two = recipe.build(SMALL, data), recipe.build(SMALL, data)
    assert kr.spec_of(one) == kr.spec_of(two) == SMALL
    for a, b in zip(one.get_weights(), two.get_weights()):  # seeded alike
        np.testing.assert_array_equal(a, b)
    assert recipe.compile(one) is one
    assert isinstance(one.optimizer, keras.optimizers.SGD)
    assert float(one.optimizer.learning_rate) == pytest.approx(0.05)
    assert float(one.optimizer.momentum) == pytest.approx(0.8)
    assert isinstance(one.loss, keras.losses.SparseCategoricalCrossentropy)
    assert one.steps_per_execution == 16  # a small step


def test_train_writes_run_and_loss_goes_down(tmp_path):
    out = tmp_path / "run"
    result = kr.train(SMALL, "digits", epochs=4, batch_size=64, out_dir=str(out),
                      verbose=0)
    loss = result.history["loss"]
    assert len(loss) == 4 and loss[-1] < 0.5 * loss[0]
    assert result.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    # run.lock: filelock's file, left in place (deleting it on release would race with a
    # second process); run.owner.json, written while a process holds the folder, is gone.
    assert sorted(os.listdir(out)) == ["history.csv", "history.json", "labels.json",
                                       "model.keras", "run.json", "run.lock", "spec.json"]
    assert kr.RunFolder(out).status() == "finished"
    run = json.loads((out / "run.json").read_text())
    assert run["format"] == 1 and run["keras_resnet"] == kr.__version__
    assert run["recipe"] == kr.Recipe(epochs=4, batch_size=64).to_dict()
    assert kr.ModelSpec.from_dict(run["spec"]) == SMALL
    assert run["data"]["input_shape"] == [8, 8, 1] and run["data"]["classes"] == 10
    assert "num_classes" not in run["data"]
    assert len(run["data"]["fingerprint"]) == 64
    assert json.loads((out / "history.json").read_text()) == result.history
    assert json.loads((out / "labels.json").read_text()) == [str(i) for i in range(10)]
    assert kr.ModelSpec.load(out / "spec.json") == SMALL
    loaded = keras.models.load_model(str(out / "model.keras"))
    x = kr.load_data("digits").validation[0][:8]
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               result.model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        kr.train(SMALL, "digits", epochs=1, out_dir=str(out), verbose=0)
    again = kr.train(SMALL, "digits", epochs=1, out_dir=str(out), overwrite=True, verbose=0)
    assert len(again.history["loss"]) == 1


def test_spec_is_fitted_to_the_data():
    result = kr.train("cifar_resnet20", "digits", epochs=1, verbose=0)
    spec = result.spec
    assert spec.input_shape == (8, 8, 1) and spec.classes == 10
    # residual= was removed in 0.3: the error names the replacement, before any work
    with pytest.raises(TypeError, match=r"^train\(\) got residual=, removed in 0\.3: .*"
                                        r"kr\.build_plain\(spec\) or "
                                        r"spec\.replace\(residual=False\)"):
        kr.train(SMALL, kr.load_data("digits"), epochs=1, residual=False, verbose=0)
    plain = kr.train(SMALL.replace(residual=False), kr.load_data("digits"), epochs=1,
                     verbose=0)
    assert not plain.model.residual and plain.spec.residual is False


def test_mlp_spec_gets_flat_digits():
    mlp = kr.ModelSpec.load(os.path.join(os.path.dirname(__file__), "..", "examples",
                                         "specs", "residual_mlp.yaml"))
    # no BatchNormalization in this MLP (the lecture's blocks): a gentler rate
    result = kr.train(mlp, "digits", epochs=4, batch_size=64, learning_rate=0.01,
                      schedule="constant", verbose=0)
    assert result.spec.input_shape == (64,)
    assert result.history["val_accuracy"][-1] > 0.9


def test_augment_and_folder_data(tmp_path):
    from test_data import write_folder

    root = write_folder(tmp_path / "imgs", per_class=6, size=(16, 16))
    data = kr.load_data(str(root), image_size=(16, 16), batch_size=6)
    result = kr.train(SMALL, data, epochs=2, augment=True, verbose=0)
    assert result.spec.input_shape == (16, 16, 3) and result.spec.classes == 3
    result = kr.train(SMALL, "digits", epochs=1, augment=True, verbose=0)
    assert len(result.history["loss"]) == 1


def test_divergence_stops_and_keeps_the_previous_model(tmp_path):
    out = tmp_path / "run"
    kr.train(SMALL, "digits", epochs=1, out_dir=str(out), verbose=0)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "history.csv"}
    with pytest.raises(kr.TrainingDiverged, match="training diverged.*lower learning_rate"):
        kr.train(SMALL.replace(norm=None), "digits", epochs=3, learning_rate=1e8,
                 out_dir=str(out), overwrite=True, verbose=0)
    # the finished run's model, settings and history are as they were
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # No backup of NaN weights either, or the next run would resume from them.
    assert not (out / "backup").exists()


def test_bad_arguments_fail_before_work(tmp_path):
    with pytest.raises(ValueError, match=r"^optimizer must be one of 'sgd'"):
        kr.train(SMALL, "digits", optimizer="sgdd")
    with pytest.raises(ValueError, match=r"^epochs must be >= 1"):
        kr.train(SMALL, "digits", epochs=0)
    with pytest.raises(ValueError, match=r"^schedule must be one of"):
        kr.train(SMALL, "digits", schedule="linear")


def test_kill_during_backup_write_still_resumes_exactly(tmp_path, monkeypatch):
    """A crash in the middle of writing a backup loses that epoch, never the run.

    The third backup write leaves half a file and dies (as SIGKILL would); the
    next ``train`` resumes from epoch 2's backup and ends with the weights an
    uninterrupted run has (same batches, optimizer state restored).
    """
    kwargs = dict(epochs=4, batch_size=64, verbose=0, learning_rate=0.05)
    straight = kr.train(SMALL, "digits", out_dir=str(tmp_path / "straight"), **kwargs)

    from keras_resnet.training import backup as backup_module

    real_savez = np.savez
    calls = []

    def dying_savez(fh, *args, **kw):
        calls.append(fh.name)
        if len(calls) == 3:
            fh.write(b"PK\x03\x04 half a file")
            raise KeyboardInterrupt("killed while writing the backup")
        return real_savez(fh, *args, **kw)

    out = tmp_path / "run"
    monkeypatch.setattr(backup_module.np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        kr.train(SMALL, "digits", out_dir=str(out), **kwargs)
    monkeypatch.setattr(backup_module.np, "savez", real_savez)
    backup = out / "backup"
    assert json.loads((backup / "state.json").read_text())["epoch"] == 2
    assert sorted(p.name for p in backup.glob("epoch-*")) == ["epoch-00002.npz"]

    resumed = kr.train(SMALL, "digits", out_dir=str(out), **kwargs)
    # epoch 3 ran twice; the resume cut its first row (the log keeps one row an epoch)
    assert csv_epochs(out / "history.csv") == [0, 1, 2, 3]
    assert len(resumed.history["loss"]) == 4 and not backup.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


TRAIN_SCRIPT = textwrap.dedent("""
    import sys, keras_resnet as kr
    spec = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 16, repeat=2)], classes=10)
    kr.train(spec, "digits", epochs=int(sys.argv[2]), batch_size=32, out_dir=sys.argv[1],
             verbose=2)
""")


def csv_epochs(path):
    with open(path) as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


def test_sigkill_resumes_from_last_epoch(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    epochs = 8
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(epochs)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        csv_path = out / "history.csv"
        while time.time() < deadline:
            if csv_path.exists() and len(csv_epochs(csv_path)) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("training did not reach epoch 3 in time")
        time.sleep(np.random.RandomState(int(time.time())).uniform(0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = csv_epochs(out / "history.csv")
    assert not (out / "model.keras").exists() and (out / "backup").is_dir()
    rerun = subprocess.run([sys.executable, str(script), str(out), str(epochs)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    # The second run starts at the epoch after the last backup, not at 1.
    assert f"Epoch 1/{epochs}" not in rerun.stdout
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == epochs
    # one row an epoch: the resume cut the row of an epoch it runs again (or a torn one)
    assert csv_epochs(out / "history.csv") == list(range(epochs))
    assert len(done_before) >= 3 and not (out / "backup").exists()


class _Interrupt(keras.callbacks.Callback):
    """Dies (as a kill would) at the end of an epoch, after the backup."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"killed after epoch {epoch + 1}")


def unfinished_run(out, **kwargs):
    with pytest.raises(KeyboardInterrupt):
        kr.train(SMALL, "digits", out_dir=str(out), verbose=0, callbacks=[_Interrupt(0)],
                 **kwargs)
    assert kr.EpochBackup.last_epoch(out / "backup") == 1


def test_resume_with_other_settings_names_each_difference(tmp_path, capsys):
    from keras_resnet.cli import main

    out = tmp_path / "run"
    unfinished_run(out, epochs=2, batch_size=64)
    before = (out / "run.json").read_text()
    with pytest.raises(ValueError, match=(
            rf"^out_dir '{out}' holds an unfinished run with other settings: epochs 2 → 3, "
            r"learning_rate 0.1 → 0.05; pass overwrite=True \(--overwrite\) to start over$")):
        kr.train(SMALL, "digits", out_dir=str(out), epochs=3, batch_size=64,
                 learning_rate=0.05, verbose=0)
    wider = SMALL.replace(blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 32,
                                                                          strides=2)])
    with pytest.raises(ValueError, match=r"other settings: spec.blocks\[1\].filters 16 → 32;"):
        kr.train(wider, "digits", out_dir=str(out), epochs=2, batch_size=64, verbose=0)
    with pytest.raises(ValueError, match=r"other settings: data.fingerprint [0-9a-f]{12} → "
                                         r"[0-9a-f]{12};"):
        kr.train(SMALL, kr.load_data("digits", seed=1), out_dir=str(out), epochs=2,
                 batch_size=64, verbose=0)
    assert (out / "run.json").read_text() == before  # nothing changed by a refusal
    spec_file = tmp_path / "small.json"
    SMALL.save(spec_file)
    assert main(["train", str(spec_file), "--out", str(out), "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"keras-resnet: error: out_dir '{out}' holds an unfinished run with other "
                   "settings: batch_size 64 → 128; pass overwrite=True (--overwrite) to "
                   "start over"]
    assert (out / "run.json").read_text() == before
    # the same settings resume; overwrite=True starts from scratch
    resumed = kr.train(SMALL, "digits", out_dir=str(out), epochs=2, batch_size=64, verbose=0)
    assert csv_epochs(out / "history.csv") == [0, 1] and len(resumed.history["loss"]) == 2
    unfinished_run(out, epochs=2, batch_size=64, overwrite=True)
    again = kr.train(SMALL, "digits", out_dir=str(out), epochs=3, batch_size=64,
                     overwrite=True, verbose=0)
    assert csv_epochs(out / "history.csv") == [0, 1, 2] and len(again.history["loss"]) == 3
    assert json.loads((out / "run.json").read_text())["recipe"]["epochs"] == 3


def test_backup_of_0_2_0_loads_and_a_backup_of_another_model_is_refused(tmp_path):
    """A 0.2.0 backup (.weights.h5) still restores; an .npz of another net is an error."""
    def fresh(spec=SMALL):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = kr.Recipe(learning_rate=0.05).compile(kr.build_resnet(spec))
        model.optimizer.build(model.trainable_variables)
        return model

    trained = fresh()
    x, y = kr.load_data("digits").train
    trained.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    old = tmp_path / "old"
    old.mkdir()
    trained.save_weights(str(old / "epoch-00001.weights.h5"))
    (old / "state.json").write_text(json.dumps({"epoch": 1,
                                                "weights": "epoch-00001.weights.h5"}))
    model = fresh()
    assert kr.EpochBackup(str(old)).restore(model) == 1
    for a, b in zip(trained.get_weights() + [v.numpy() for v in trained.optimizer.variables],
                    model.get_weights() + [v.numpy() for v in model.optimizer.variables]):
        np.testing.assert_array_equal(a, b)

    new = str(tmp_path / "new")
    backup = kr.EpochBackup(new)
    backup.set_model(trained)
    backup.on_epoch_end(0, {"loss": 1.0})
    assert sorted(os.listdir(new)) == ["epoch-00001.npz", "state.json"]
    model = fresh()
    assert kr.EpochBackup(new).restore(model) == 1
    for a, b in zip(trained.get_weights() + [v.numpy() for v in trained.optimizer.variables],
                    model.get_weights() + [v.numpy() for v in model.optimizer.variables]):
        np.testing.assert_array_equal(a, b)
    other = fresh(kr.presets.get("cifar_resnet20"))
    with pytest.raises(ValueError, match=r"epoch-00001.npz' holds \d+ variables that do "
                                         r"not match this model's"):
        kr.EpochBackup(new).restore(other)


def test_epoch_backup_with_plain_fit(tmp_path):
    """kr.EpochBackup resumes a plain model.fit exactly (initial_epoch from the folder)."""
    (x, y), _ = kr.load_data("digits").train, None
    folder = str(tmp_path / "backup")

    def fresh():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = kr.build_resnet(SMALL)
        return kr.Recipe(learning_rate=0.05).compile(model)

    straight = fresh()
    straight.fit(x, y, epochs=3, batch_size=128, shuffle=False, verbose=0)
    model = fresh()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=128, shuffle=False, verbose=0,
                  callbacks=[kr.EpochBackup(folder), _Interrupt(1)])
    assert kr.EpochBackup.last_epoch(folder) == 2
    assert sorted(os.listdir(folder)) == ["epoch-00002.npz", "state.json"]
    with pytest.raises(ValueError, match=r"holds 2 finished epoch\(s\) but fit starts at "
                                         r"epoch 0; pass initial_epoch="):
        fresh().fit(x, y, epochs=3, verbose=0, callbacks=[kr.EpochBackup(folder)])
    model = fresh()
    history = model.fit(x, y, epochs=3, batch_size=128, shuffle=False, verbose=0,
                        initial_epoch=kr.EpochBackup.last_epoch(folder),
                        callbacks=[kr.EpochBackup(folder)])
    assert len(history.history["loss"]) == 1 and kr.EpochBackup.last_epoch(folder) == 3
    assert int(model.optimizer.iterations) == int(straight.optimizer.iterations)
    for a, b in zip(straight.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_cli_train_with_a_run_json_recipe_reproduces_the_run(tmp_path, capsys):
    from keras_resnet.cli import main

    first = kr.train(SMALL, "digits", epochs=2, batch_size=64, learning_rate=0.05,
                     schedule="cosine", seed=4, out_dir=str(tmp_path / "a"), verbose=0)
    assert main(["train", str(tmp_path / "a" / "spec.json"), "--recipe",
                 str(tmp_path / "a" / "run.json"), "--out", str(tmp_path / "b")]) == 0
    assert "run.json" in capsys.readouterr().out
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["recipe"] == first.recipe.to_dict()
    assert json.loads((tmp_path / "b" / "history.json").read_text()) == first.history
    # flags change the recipe they start from
    assert main(["train", str(tmp_path / "a" / "spec.json"), "--recipe",
                 str(tmp_path / "a" / "run.json"), "--epochs", "1", "--no-augment",
                 "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "run.json").read_text())["recipe"] == {
        **first.recipe.to_dict(), "epochs": 1}


def _digits_subset(n=200, val=60):
    data = kr.load_data("digits", seed=0)
    (x, y), (vx, vy) = data.train, data.validation
    return kr.Data("digits-small", (x[:n], y[:n]), (vx[:val], vy[:val]), data.input_shape,
                   data.classes, data.class_names)


@pytest.mark.parametrize("augment", [False, True])
def test_fast_feed_gives_each_epoch_its_seed_epoch_batches(augment):
    """What fit sees: epoch e's batches are the (seed, e) order, batch b augmented by
    draws of (seed, e, b) only, the same whichever epoch a run starts at."""
    from keras_resnet.training import pipeline

    data = _digits_subset(70)
    x, y = data.train
    recipe = kr.Recipe(batch_size=32, seed=3, augment=augment)
    pad = 1 if augment else 0
    for start in (0, 2):
        train, _, cbs = pipeline.batches(data, recipe, initial_epoch=start)
        for epoch in range(start, 4):
            cbs[0].on_epoch_begin(epoch)  # what Keras does before each epoch
            if keras.backend.backend() == "tensorflow":
                # no autotuning: it made each epoch's start wait on a busy machine
                assert train.options().autotune.enabled is False
                got = [(np.asarray(a), np.asarray(b)) for a, b in train]
            else:
                got = [train[i] for i in range(len(train))]
            assert [len(b) for _, b in got] == [32, 32, 6]
            order = np.random.RandomState([3, epoch]).permutation(70)
            np.testing.assert_array_equal(np.concatenate([b for _, b in got]), y[order])
            for b, (xb, _) in enumerate(got):
                part = x[order[b * 32:(b + 1) * 32]]
                want = pipeline.augment_batch(part, 3, epoch, b, pad) if augment else part
                np.testing.assert_array_equal(xb, want)


def _shift_flip(img, dy, dx, flip):
    """One image shifted by (dy, dx) whole pixels with zero fill, then maybe flipped."""
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out[:, ::-1] if flip else out


def _draws(images, augmented, pad=1):
    """The (dy, dx, flip) that explains each augmented image (exactly one must)."""
    shifts = range(-pad, pad + 1)
    out = []
    for img, got in zip(images, augmented):
        fits = [(dy, dx, f) for dy in shifts for dx in shifts for f in (False, True)
                if np.array_equal(_shift_flip(img, dy, dx, f), got)]
        assert len(fits) == 1, fits
        out.append(fits[0])
    return out


def test_augmentation_is_whole_pixel_shifts_and_flips_drawn_from_seed_epoch_batch():
    """The one augmentation (pipeline.augment_batch): each image is its original shifted
    by at most pad pixels each way with zero fill, flipped or not; the draws are a
    function of (seed, epoch, batch) only."""
    from keras_resnet.training.pipeline import augment_batch

    rng = np.random.RandomState(0)
    x = rng.rand(200, 8, 8, 1).astype("float32") + 1  # no zero pixel of its own
    out = augment_batch(x, 0, 0, 0, 1)
    assert out.shape == x.shape and out.dtype == x.dtype
    drawn = _draws(x, out)
    # every shift and both flips occur among 200 images (18 kinds, about 11 each)
    assert len(set(drawn)) == 18
    assert 70 <= sum(f for _, _, f in drawn) <= 130
    # the same (seed, epoch, batch) draw the same; any other one draws otherwise
    np.testing.assert_array_equal(augment_batch(x, 0, 0, 0, 1), out)
    for other in [(1, 0, 0), (0, 1, 0), (0, 0, 1)]:
        assert not np.array_equal(augment_batch(x, *other, 1), out)
    # the draws do not depend on what the images hold, nor on the batch's size
    y = rng.rand(200, 8, 8, 1).astype("float32") + 1
    assert _draws(y, augment_batch(y, 0, 0, 0, 1)) == drawn
    np.testing.assert_array_equal(augment_batch(x[:10], 0, 0, 0, 1), out[:10])
    # pad 4 at 32x32 (the paper's): shifts up to 4 pixels, never more
    big = rng.rand(64, 32, 32, 3).astype("float32") + 1
    moved = augment_batch(big, 5, 2, 7, 4)
    zero_rows = [int((m == 0).all(axis=(1, 2)).sum()) for m in moved]
    assert max(zero_rows) == 4 and min(zero_rows) == 0
    # channels_first draws the same images, in its layout
    np.testing.assert_array_equal(
        augment_batch(np.moveaxis(big, -1, 1), 5, 2, 7, 4, channels_first=True),
        np.moveaxis(moved, -1, 1))
    # flip=False: shifts only, every image explained without a flip
    for img, got in zip(x[:50], augment_batch(x[:50], 0, 0, 0, 1, flip=False)):
        assert any(np.array_equal(_shift_flip(img, dy, dx, False), got)
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_folders_are_augmented_by_the_same_draws_as_arrays(tmp_path):
    """An image folder's batch i of epoch e draws as batch i of NumPy data would."""
    tf = pytest.importorskip("tensorflow")
    from keras_resnet.training.pipeline import EpochCounter, augment_batch, augment_folder

    rng = np.random.RandomState(1)
    x = rng.rand(20, 8, 8, 3).astype("float32")
    y = np.arange(20) % 3
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    epoch = EpochCounter()
    augmented = augment_folder(dataset, 4, 1, epoch)
    for e in (0, 3):
        epoch.epoch = e
        got = [(np.asarray(a), np.asarray(b)) for a, b in augmented]
        assert [len(b) for _, b in got] == [8, 8, 4]
        for i, (xb, yb) in enumerate(got):
            np.testing.assert_array_equal(xb, augment_batch(x[i * 8:(i + 1) * 8], 4, e, i, 1))
            np.testing.assert_array_equal(yb, y[i * 8:(i + 1) * 8])


def test_the_keras_layer_augmentation_of_0_2_is_gone_with_a_pointer():
    import keras_resnet.data

    with pytest.raises(AttributeError, match=r"cifar_augmentation was removed in 0\.3: .*"
                                             r"keras_resnet\.training\.pipeline\."
                                             r"augment_batch\(x, seed, epoch, batch, pad\)"):
        keras_resnet.data.cifar_augmentation  # noqa: B018
    from keras_resnet.training import pipeline

    assert not hasattr(pipeline, "shift_flip")  # one implementation: augment_batch


def test_fast_feed_trains_as_the_python_feed_bit_for_bit(monkeypatch):
    """The tf.data path and steps_per_execution change speed, not the weights."""
    import functools

    from keras_resnet.training import pipeline
    from keras_resnet.training import recipe as recipe_module

    data = _digits_subset()
    recipe = kr.Recipe(epochs=2, batch_size=32, learning_rate=0.05, augment=True)

    def weights(path, spe):
        monkeypatch.setattr(recipe_module, "batches",
                            functools.partial(_original_batches, path=path))
        keras.backend.clear_session()
        model = recipe.build(SMALL, data)
        recipe.compile(model, steps_per_execution=spe)
        assert model.steps_per_execution == spe
        recipe.fit(model, data, verbose=0)
        return [np.asarray(w) for w in model.get_weights()]

    _original_batches = pipeline.batches
    fast = weights("auto", 4)
    for a, b in zip(fast, weights("pydataset", 1)):
        np.testing.assert_array_equal(a, b)
    model = recipe.build(SMALL, data)
    assert kr.Recipe(batch_size=32).compile(model).steps_per_execution == 16  # any backend
    assert kr.Recipe(batch_size=10 ** 6).compile(model).steps_per_execution == 1
    with pytest.raises(ValueError, match=r"^steps_per_execution must be >= 1"):
        kr.train(SMALL, data, epochs=1, steps_per_execution=0)


def test_nan_is_caught_at_epoch_end_without_per_batch_callbacks():
    from keras_resnet.training.recipe import StopOnNaN

    callbacks = kr.Recipe().callbacks()
    assert any(isinstance(c, StopOnNaN) for c in callbacks)
    base = keras.callbacks.Callback
    for c in callbacks:  # nothing per batch: Keras keeps dispatching asynchronously
        for hook in ("on_batch_end", "on_train_batch_end", "on_train_batch_begin"):
            assert getattr(type(c), hook) is getattr(base, hook), (c, hook)
    cb = StopOnNaN()
    cb.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    cb.model.stop_training = False
    cb.on_epoch_end(0, {"loss": 1.0})
    assert not cb.model.stop_training
    cb.on_epoch_end(1, {"loss": float("nan")})
    assert cb.model.stop_training
