"""Speed of the image-folder check: files/s with threads and with processes, and its
share of one training epoch on the same folder.

Writes ``--files`` random 64x64 JPEGs in two class folders, then times
:func:`keras_resnet.check_image_folder`'s decode (TensorFlow ``decode_image``)
with a thread pool of 1, 2, 4, 8 workers and with a process pool (spawned
processes each import TensorFlow: timed with and without that start), then a
second check that reads everything from the cache, then one epoch of
``kr.train`` on the folder (a small ResNet at 64x64, batch 32, TensorFlow).

    python benchmarks/imagecheck_speed.py --files 2000
    python benchmarks/imagecheck_speed.py --files 200 --no-train   # smoke run
"""

import argparse
import functools
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from keras_resnet import imagecheck  # noqa: E402


def write_folder(root: str, files: int, size: int = 64) -> None:
    rng = np.random.RandomState(0)
    # Smooth random images compress like photos (noise would not).
    base = rng.randint(0, 255, (files, 8, 8, 3)).astype("uint8")
    for i in range(files):
        cls = os.path.join(root, f"class{i % 2}")
        os.makedirs(cls, exist_ok=True)
        Image.fromarray(base[i]).resize((size, size), Image.BILINEAR).save(
            os.path.join(cls, f"{i:05d}.jpg"), quality=90)


def _warm(_: int) -> int:
    import tensorflow as tf

    tf.constant(0)
    return os.getpid()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--no-train", action="store_true", help="skip the epoch of training")
    p.add_argument("--out", help="write the numbers to this JSON file")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="imagecheck_speed_")
    root = os.path.join(tmp, "photos")
    write_folder(root, args.files)
    paths = imagecheck.list_image_folder(root).paths()
    check = functools.partial(imagecheck._check_file, channels=3,
                              max_image_pixels=imagecheck.MAX_IMAGE_PIXELS)
    check(paths[0])  # TensorFlow imported and initialised before any timing
    n = len(paths)
    results: dict = {"files": n, "cpu_count": os.cpu_count()}
    for workers in (1, 2, 4):
        with ThreadPoolExecutor(workers) as pool:  # one file per task
            t, out = timed(lambda pool=pool: list(pool.map(check, paths)))
        assert out == [None] * n
        results[f"threads_{workers}_file_per_task"] = round(n / t)
        # as the check runs them: chunks of files per task
        t2, out = timed(lambda w=workers: imagecheck._parallel(check, paths, w))
        assert out == [None] * n
        results[f"threads_{workers}"] = round(n / t2)
        print(f"threads x{workers}: {n / t:8.0f} files/s one file per task, {n / t2:8.0f} "
              f"in chunks", flush=True)
    for workers in (2,):
        ctx = multiprocessing.get_context("spawn")
        start = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            list(pool.map(_warm, range(workers)))  # start + import TensorFlow
            started = time.perf_counter() - start
            t, out = timed(lambda pool=pool: list(pool.map(check, paths, chunksize=64)))
        assert out == [None] * n
        total = started + t
        results[f"processes_{workers}"] = round(n / t)
        results[f"processes_{workers}_with_start"] = round(n / total)
        print(f"processes x{workers}: {n / t:8.0f} files/s after a {started:.1f} s start "
              f"({n / total:.0f} files/s counting it)", flush=True)
    cache = os.path.join(tmp, "run", "image_check.json")
    t_first, _ = timed(lambda: imagecheck.check_image_folder(root, cache=cache))
    t_cached, _ = timed(lambda: imagecheck.check_image_folder(root, cache=cache))
    results["check_default_s"] = round(t_first, 3)
    results["check_cached_s"] = round(t_cached, 3)
    print(f"check_image_folder (default threads): {t_first:.2f} s = {n / t_first:.0f} files/s;"
          f" from the cache: {t_cached:.3f} s", flush=True)
    if not args.no_train:
        import keras_resnet as kr

        data = kr.load_data(root, image_size=(64, 64), batch_size=32, validation_split=0.0)
        spec = kr.ModelSpec(input_shape=(64, 64, 3),
                            stem=kr.StemSpec(16, 3, 2, pool=None),
                            blocks=[kr.BlockSpec("basic", 16),
                                    kr.BlockSpec("basic", 32, strides=2)],
                            shortcut="B", classes=2)
        import keras

        class EpochTimes(keras.callbacks.Callback):
            times: list = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        timer = EpochTimes()
        t_train, _ = timed(lambda: kr.train(spec, data, epochs=2, verbose=0,
                                            callbacks=[timer]))
        first, second = timer.times
        results.update(train_2_epochs_s=round(t_train, 2), epoch1_s=round(first, 2),
                       epoch2_s=round(second, 2),
                       check_share_of_epoch2=round(t_first / second, 3))
        print(f"kr.train, ResNet 64x64 batch 32: 2 epochs {t_train:.1f} s in all (build, "
              f"compile), epoch 1 {first:.1f} s, epoch 2 {second:.1f} s; the check is "
              f"{100 * t_first / second:.1f}% of epoch 2, {100 * t_first / first:.1f}% "
              f"of epoch 1")
    shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
