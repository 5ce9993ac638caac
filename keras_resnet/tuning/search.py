"""The search: :func:`tune`, its loop over the ledger, its trials, and its results.

Each process keeps a stock KerasTuner oracle driven only through its public
methods and replays :mod:`~keras_resnet.tuning.state`'s ledger into it: a
``created`` record is ``create_trial`` (with the recorded values), a
``finished`` one ``update_trial`` per epoch and ``end_trial``. So the oracle's
state is a function of the ledger: a (re)started process replays it and goes
on, and processes sharing a folder agree. KerasTuner's own files go to a
scratch folder that is never read back.

Trials run in :mod:`keras_resnet.workers` processes, ``jobs`` side by side.
As in KerasTuner's chief/worker mode, a worker that is free asks the oracle for
the next trial, which the oracle chooses from the trials finished so far (so
Bayesian optimization and Hyperband decide with up to ``jobs - 1`` results
still out, and Hyperband may keep a worker waiting for its bracket).
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet import _checks as C
from keras_resnet._io import atomic_write_text
from keras_resnet._table import text_table
from keras_resnet.builders import as_spec
from keras_resnet.data import load_data
from keras_resnet.experiment import plan_jobs
from keras_resnet.spec import ModelSpec
from keras_resnet.training.recipe import Recipe
from keras_resnet.tuning import state
from keras_resnet.tuning.cli import ALGORITHMS
from keras_resnet.tuning.space import ResNetHyperModel, _as_recipe, _points, as_data, base_depth
from keras_resnet.workers import rss_mb, run_tasks

_ORACLES = {"random": kt.oracles.RandomSearchOracle,
            "grid": kt.oracles.GridSearchOracle,
            "bayesian": kt.oracles.BayesianOptimizationOracle,
            "hyperband": kt.oracles.HyperbandOracle}
_POLL_S = 0.5
#: A trial worker whose RSS grew by more than this since its second trial is
#: replaced: on TensorFlow every trained model leaves ~20 MB clear_session() keeps.
MAX_GROWTH = 0.06


def run_trial(hypermodel: ResNetHyperModel, data: Any, values: dict) -> dict:
    """Trains one trial; a failure of the trial is a result, not an exception.

    Returns:
        ``{"status": "COMPLETED", "metrics": {name: [per epoch]}, "build_s",
        "fit_s", "rss_mb", "pid"}``, or ``{"status": "FAILED", "message"}``.
    """
    t0 = time.perf_counter()
    try:
        keras.backend.clear_session()
        model = hypermodel.build_values(values)
        t1 = time.perf_counter()
        history = hypermodel.fit_values(model, values, data)
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0]
        return {"status": "FAILED", "message": f"{type(e).__name__}: {first}"}
    return {"status": "COMPLETED", "build_s": t1 - t0, "fit_s": time.perf_counter() - t1,
            "metrics": {k: [float(v) for v in vs] for k, vs in history.history.items()
                        if k != "learning_rate"}, "rss_mb": rss_mb(), "pid": os.getpid()}


_SETUP: dict = {}


def trial_task(setup: str, values: dict, report: Any = None) -> dict:
    """A trial in a worker process (the setup pickle is read once per worker)."""
    if setup not in _SETUP:
        with open(setup, "rb") as fh:
            _SETUP[setup] = pickle.load(fh)
    hypermodel, data = _SETUP[setup]
    data = load_data(**data) if isinstance(data, dict) else data  # tf.data: load again
    return run_trial(hypermodel, data, values)


def _replaying(cls: type) -> type:
    """``cls`` whose ``populate_space`` returns ``forced_values`` when they are set."""

    def populate_space(self: Any, trial_id: str) -> dict:
        response = cls.populate_space(self, trial_id)  # type: ignore[attr-defined]
        if self.forced_values is not None:
            return {"status": "RUNNING", "values": dict(self.forced_values)}
        return response

    return type(f"Replayed{cls.__name__}", (cls,),
                {"populate_space": populate_space, "forced_values": None})


class _Space(kt.HyperModel):
    """Declares the search space only (what the oracle's tuner needs)."""

    def __init__(self, hypermodel: ResNetHyperModel) -> None:
        super().__init__()
        self.hypermodel = hypermodel

    def build(self, hp: kt.HyperParameters) -> None:
        self.hypermodel.declare_values(hp)


class Search:
    """A search's state and results; :func:`tune` returns one.

    Attributes:
        hypermodel: The :class:`~keras_resnet.tuning.ResNetHyperModel`.
        oracle: The stock KerasTuner oracle, replayed from the ledger.
        project_dir: The project folder; ``best_spec_path`` its best_spec.json.
        created, finished: ``{trial_id: ledger record}``, in ledger order.
        trial_stats: ``{trial_id: timings, RSS, pid}`` of this process's trials.
    """

    def __init__(self, hypermodel: ResNetHyperModel, project_dir: str, config: dict,
                 data: Any = None, verbose: int = 1, threads: int | None = None) -> None:
        self.hypermodel, self.project_dir, self.config = hypermodel, project_dir, config
        self.data, self.verbose, self.threads = data, verbose, threads
        self.best_spec_path = os.path.join(project_dir, "best_spec.json")
        self.project = state.Project(project_dir)
        self.oracle: Any = None
        self.created: dict = {}
        self.finished: dict = {}
        self.trial_stats: dict = {}
        self._running: dict = {}  # trial id: (start time, values, run again?)
        # KerasTuner's tuner_id of each trial this process creates: unique even when
        # a restarted process gets the pid of a dead one whose trial is unfinished.
        self._slot = f"{state.HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self._slots = 0
        self._waiting_at: int | None = None  # ledger size when the oracle said wait
        self._scratch: str | None = None  # KerasTuner's files, never read back

    # ------------------------------------------------------------ the oracle
    def sync(self) -> None:
        """Applies the ledger's new records to the oracle (lock held)."""
        if self.oracle is None:
            c = self.config
            args = dict(objective=_objective(c["objective"]), seed=c["seed"] + 1,
                        max_consecutive_failed_trials=1 << 30)
            if c["algorithm"] == "hyperband":
                args.update(max_epochs=self.hypermodel.recipe.epochs,
                            factor=c["hyperband_factor"])
            else:
                args["max_trials"] = c["max_trials"]
            self.oracle = _replaying(_ORACLES[c["algorithm"]])(**args)
            self.oracle.max_trials = c["max_trials"]  # Hyperband: a cap
            self._scratch = self._scratch or tempfile.mkdtemp(prefix="kr-tune-oracle-")
            # A stock Tuner gives the oracle its (scratch) folder and its space.
            kt.Tuner(oracle=self.oracle, hypermodel=_Space(self.hypermodel),
                     directory=self._scratch, project_name="oracle", overwrite=True)
            self.oracle.verbose = 0
            self.created, self.finished = {}, {}
            records = self.project.read(0)
        else:
            records = self.project.read()
        for record in records:
            self._apply(record)

    def _apply(self, record: dict) -> None:
        oracle, trial_id = self.oracle, record.get("trial_id")
        if record["event"] == "created":
            self.created[trial_id] = record
            oracle.forced_values = record["values"]
            try:
                trial = oracle.create_trial(record["slot"])
            finally:
                oracle.forced_values = None
            if trial.trial_id != trial_id:
                raise RuntimeError(f"the ledger of {self.project_dir!r} does not replay: "
                                   f"trial {trial_id} came back as {trial.trial_id}")
        elif record["event"] == "finished" and trial_id not in self.finished:
            self.finished[trial_id] = record
            trial = oracle.get_trial(trial_id)
            metrics = record["metrics"] if record["status"] == "COMPLETED" else {}
            for step, row in enumerate(zip(*metrics.values())):
                oracle.update_trial(trial_id, dict(zip(metrics, row)), step=step)
            trial.status, trial.message = record["status"], record.get("message")
            oracle.end_trial(trial)

    def _unfinished(self) -> list:
        return [t for t in self.created if t not in self.finished]

    def _next(self) -> tuple | None:
        """Claims a trial to run (lock held): an orphan first, else a new one."""
        for trial_id in self._unfinished():
            if self.project.is_orphan(trial_id):
                self.project.claim(trial_id)
                return trial_id, self.created[trial_id]["values"], True
        if self._waiting_at == self.project.offset:
            return None  # nothing new since the oracle said wait or stop
        if self._waiting_at is not None:  # it may have moved on without a record
            self.oracle = None
            self.sync()
        self._slots += 1
        slot = f"{self._slot}:{self._slots}"
        trial = self.oracle.create_trial(slot)
        if trial.status != "RUNNING":
            self._waiting_at = self.project.offset
            return None
        self._waiting_at = None
        values = json.loads(json.dumps(trial.hyperparameters.values))
        record = {"event": "created", "trial_id": trial.trial_id, "slot": slot,
                  "values": values,
                  "recipe": self.hypermodel.recipe_for(values).to_dict()}
        self.project.append(record)
        self.created[trial.trial_id] = record
        self.project.claim(trial.trial_id)
        return trial.trial_id, values, False

    # ------------------------------------------------------------ the loop
    def _tasks(self, setup: str | None) -> Iterator[dict | None]:
        """Claimed trials as worker tasks; None while there is none yet."""
        while True:
            t0 = time.perf_counter()
            with self.project.lock():
                self.sync()
                job = self._next()
                done = job is None and not self._unfinished()
            if job is None:
                if done:
                    return
                yield None  # others' trials run (one may die) or the oracle waits
                continue
            trial_id, values, again = job
            self._running[trial_id] = (t0, values, again)
            yield {"id": trial_id, "fn": "keras_resnet.tuning.search:trial_task",
                   "kwargs": {"setup": setup, "values": values}}

    def run(self, jobs: int = 1, setup: str | None = None) -> None:
        """Runs trials until every trial of the search is finished.

        Args:
            jobs: Worker processes training side by side.
            setup: A pickle of ``(hypermodel, data)`` for the workers; None
                trains in this process.
        """
        try:
            with self.project.heartbeat(self._running):
                if setup is not None:
                    run_tasks(self._tasks(setup), jobs, threads=self.threads or 1,
                              on_event=self._on_event, poll_s=_POLL_S, restart=True,
                              max_rss_growth=MAX_GROWTH)
                    return
                for task in self._tasks(None):
                    if task is None:
                        time.sleep(_POLL_S)
                    else:
                        self._finish(task["id"], run_trial(self.hypermodel, self.data,
                                                           task["kwargs"]["values"]))
        finally:
            if self._scratch:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def _on_event(self, event: dict) -> None:
        if event["event"] == "result":
            self._finish(event["id"], event["value"])
        elif event["event"] == "died":
            self._finish(event["id"], {"status": "FAILED", "message": event["message"]})

    def _finish(self, trial_id: str, out: dict) -> None:
        """Records a trial's result, prints its line, releases its claim."""
        t0, values, again = self._running.pop(trial_id)
        record = {"event": "finished", "trial_id": trial_id, "status": out["status"],
                  "metrics": out.get("metrics", {}), "message": out.get("message"),
                  "threads": self.threads}
        with self.project.lock():
            self.sync()
            if trial_id not in self.finished:
                self.project.append(record)
                self._apply(record)
            self.project.release(trial_id)
        s = {"total_s": time.perf_counter() - t0, "search_rss_mb": rss_mb(),
             "again": again, **{k: out.get(k, 0.0) for k in ("fit_s", "build_s")},
             **{k: out.get(k) for k in ("status", "rss_mb", "pid")}}
        s["other_s"] = s["total_s"] - s["fit_s"] - s["build_s"]
        self.trial_stats[trial_id] = s
        if self.verbose:
            shown = " ".join(f"{k}={_format_value(v)}" for k, v in
                             self.hypermodel.describe(values).items() if k != "blocks")
            score = self.oracle.get_trial(trial_id).score
            result = (f"{self.config['objective']}={score:.4f}" if score is not None
                      else f"{out['status']} ({out.get('message')})")
            print(f"[tune] trial {trial_id}{', run again' if again else ''}: {shown} -> "
                  f"{result}  {s['total_s']:.1f}s (fit {s['fit_s']:.1f}s, build "
                  f"{s['build_s']:.1f}s, other {s['other_s']:.2f}s)", flush=True)
        ends = [r["status"] for r in self.finished.values()]
        if len(ends) >= 3 and "COMPLETED" not in ends:
            raise RuntimeError(f"the first {len(ends)} trials of {self.project_dir!r} "
                               f"all failed; the last: {out.get('message')}")

    # ------------------------------------------------------------ results
    def completed(self) -> list:
        """The completed trials, best first (KerasTuner ``Trial`` objects)."""
        trials = [t for t in self.oracle.trials.values() if t.status == "COMPLETED"
                  and t.score is not None and t.score == t.score]
        return sorted(trials, key=lambda t: t.score,
                      reverse=self.oracle.objective.direction == "max")

    def write_best(self) -> ModelSpec:
        """Writes best_spec.json, best_recipe.json and best_hyperparameters.json."""
        trials = self.completed()
        if not trials:
            last = [f.get("message") for f in self.finished.values()][-1:]
            raise RuntimeError(f"no trial of {self.project_dir!r} completed"
                               + (f"; the last error: {last[0]}" if last else ""))
        best = trials[0]
        values = {k: v for k, v in best.hyperparameters.values.items()
                  if not k.startswith("tuner/")}
        spec = self.hypermodel.spec(values)
        recipe = self.hypermodel.recipe_for(best.hyperparameters.values).to_dict()
        hps = {"trial_id": best.trial_id, "score": best.score, "values": values,
               "objective": self.config["objective"], "recipe": recipe,
               "residual": self.hypermodel.residual,
               "threads": self.finished[best.trial_id].get("threads")}
        with self.project.lock():
            spec.save(self.best_spec_path, overwrite=True)
            for name, content in (("best_recipe", recipe), ("best_hyperparameters", hps)):
                atomic_write_text(os.path.join(self.project_dir, f"{name}.json"),
                                  json.dumps(content, indent=1), overwrite=True)
        return spec


def _objective(name: str) -> kt.Objective:
    return kt.Objective(name, "min" if name.endswith("loss") else "max")


def _format_value(v: Any) -> str:
    return (f"{v:.3g}" if v != 0 else "0") if isinstance(v, float) else str(v)


def results_table(search: Search, num_trials: int = 10) -> str:
    """The best trials of a search as a text table (best first).

    Args:
        search: What :func:`tune` returned.
        num_trials: Rows at most.

    Returns:
        The table (rank, trial id, depth, blocks per stage, l2, every other
        searched hyperparameter, the objective at the trial's best epoch) and
        a line counting completed and failed trials.
    """
    num_trials = C.check_int("num_trials", num_trials, minimum=1)
    name = search.config["objective"]
    trials = search.completed()
    described = [(t, search.hypermodel.describe(t.hyperparameters.values))
                 for t in trials[:num_trials]]
    extra: list = []
    for _, d in described:
        extra += [k for k in d if k not in ("depth", "blocks", "l2", *extra)]
    header = ["rank", "trial", "depth", "blocks", "l2", *extra, name]
    rows = [[rank, t.trial_id, d["depth"], d["blocks"], _format_value(d["l2"]),
             *[_format_value(d.get(k, "")) for k in extra], f"{t.score:.4f}"]
            for rank, (t, d) in enumerate(described, start=1)]
    failed = sum(r["status"] != "COMPLETED" for r in search.finished.values())
    return (text_table(header, rows, right=[0, len(header) - 1]) +
            f"\n{len(trials)} completed, {failed} failed ({name}: best epoch of each "
            "trial)")


def tune(
    base: Any,
    data: Any = "digits",
    y: Any = None,
    *,
    validation_data: Any = None,
    algorithm: str = "hyperband",
    max_trials: int | None = 10,
    recipe: Recipe | Mapping | None = None,
    epochs: Any = None, batch_size: Any = None, learning_rate: Any = None,
    optimizer: Any = None, schedule: Any = None, augment: Any = None,
    directory: str | os.PathLike = "tuner",
    project_name: str | None = None,
    overwrite: bool = False,
    objective: str = "val_accuracy",
    seed: int = 0,
    hyperband_factor: int = 3,
    verbose: int = 1,
    depth: Any = None, l2: Any = None, width: Any = None, shortcut: Any = None,
    block_type: Any = None,
    allow_zero_l2: bool = False,
    residual: bool | None = None,
    jobs: int | str = "auto",
    threads: int | str = "auto",
    isolate: bool = True,
) -> tuple:
    """Searches depth and L2 (and more) for a base spec; every trial is a ``kr.train`` run.

    Writes, in ``<directory>/<project_name>/``: ``ledger.jsonl`` (every trial,
    its values, recipe and per-epoch metrics), ``best_spec.json``,
    ``best_recipe.json`` (``kr.train(best_spec, data, **best_recipe)`` gives the
    winner's score again) and ``best_hyperparameters.json``. Run it again to
    resume, also after SIGKILL (no finished trial is lost or rerun; a killed
    one is rerun); run it in several processes on one folder to share the trials.

    Args:
        base: The base spec (``ModelSpec``, dict, spec file or preset name;
            input shape and classes come from the data), or a
            :class:`~keras_resnet.tuning.ResNetHyperModel` (then leave the
            search space and recipe arguments unset).
        data: A :class:`~keras_resnet.data.Data`, a source such as
            ``"digits"``, or training inputs (with ``y``).
        y: Integer labels, with array ``data``.
        validation_data: ``(x_val, y_val)``, with array ``data``.
        algorithm: ``"hyperband"``, ``"random"``, ``"bayesian"`` or ``"grid"``.
            Hyperband trials train from scratch for their budget (``epochs``
            is the most).
        max_trials: Trials in all, resumed ones included (Hyperband: a cap).
        recipe: The base training recipe (``kr.Recipe`` or its dict).
        epochs, batch_size, learning_rate, optimizer, schedule, augment: A
            value sets the recipe's field; a list, a range dict or True (not
            for ``augment``, which takes a list) searches it.
        directory: Folder of the tuner projects.
        project_name: Project folder; default ``"<base name>_<algorithm>"``.
        overwrite: Delete the project first (only a tuner project is deleted).
        objective: ``"val_accuracy"``, ``"val_loss"``, ``"accuracy"`` or
            ``"loss"``; a trial scores its best epoch.
        seed: The recipe's seed and the oracle's.
        hyperband_factor: Hyperband's reduction factor.
        verbose: 0 silent, 1 one line per trial.
        depth, l2, width, shortcut, block_type, allow_zero_l2, residual: See
            :class:`~keras_resnet.tuning.ResNetHyperModel`.
        jobs: Trials trained side by side in worker processes; ``"auto"``
            follows :func:`keras_resnet.experiment.plan_jobs` for the
            biggest network of the space.
        threads: Threads of each worker; ``"auto"``: 1 when that network's
            step is small, else every core, whatever ``jobs`` (the thread
            count changes float results; each trial records it).
        isolate: Train in worker processes, replaced when their memory grows
            (TensorFlow keeps ~20 MB per trained model); False trains in this
            process, one trial at a time, with its threads.

    Returns:
        ``(best_spec, search)``: the best ``ModelSpec`` and the :class:`Search`.

    Example:

    ```python
    best, search = kr.tune("cifar_resnet20", kr.load_data("digits"),
                           algorithm="random", max_trials=12, epochs=8)
    print(kr.tuning.results_table(search))
    ```
    """
    C.check_choice("algorithm", algorithm, ALGORITHMS)
    if max_trials is not None or algorithm != "hyperband":
        if max_trials is None:
            C.fail("max_trials", f"is required for algorithm={algorithm!r}", None, TypeError)
        max_trials = C.check_int("max_trials", max_trials, minimum=1, maximum=1 << 20)
    directory = C.check_str("directory", os.fspath(directory)
                            if isinstance(directory, os.PathLike) else directory)
    for name, value in dict(overwrite=overwrite, isolate=isolate).items():
        C.check_bool(name, value)
    seed = C.check_int("seed", seed, minimum=0, maximum=2**31 - 2)
    hyperband_factor = C.check_int("hyperband_factor", hyperband_factor, minimum=2,
                                   maximum=100)
    C.check_choice("verbose", verbose, (0, 1))
    C.check_choice("objective", objective, ("val_accuracy", "val_loss", "accuracy", "loss"))
    jobs, threads = (v if v == "auto" else C.check_int(k, v, minimum=1, maximum=4096)
                     for k, v in (("jobs", jobs), ("threads", threads)))
    if not isolate and jobs not in ("auto", 1):
        C.fail("jobs", "must be 1 with isolate=False (trials in this process)", jobs)
    if "KERASTUNER_ORACLE_IP" in os.environ:
        raise ValueError(
            "KERASTUNER_ORACLE_IP is set, but kr.tune does not use KerasTuner's chief "
            "and workers any more: start the same search in every process on the same "
            "directory (a shared folder) instead. Received: KERASTUNER_ORACLE_IP="
            f"{os.environ['KERASTUNER_ORACLE_IP']!r}")
    training = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    optimizer=optimizer, schedule=schedule, augment=augment)
    space = dict(depth=depth, l2=l2, width=width, shortcut=shortcut, block_type=block_type)
    if isinstance(base, ResNetHyperModel):
        given = [k for k, v in dict(training, recipe=recipe, residual=residual,
                                    **space).items() if v is not None]
        if given or allow_zero_l2:
            raise TypeError("tune() got a ResNetHyperModel and search arguments ("
                            f"{', '.join(given) or 'allow_zero_l2'}); set them on the "
                            "HyperModel instead")
    searched: dict = {k: v for k, v in training.items() if v is True and k != "augment"
                or isinstance(v, (list, tuple, Mapping))}
    if algorithm == "hyperband" and "epochs" in searched:
        C.fail("epochs", "must be one number with algorithm='hyperband' (Hyperband "
               "chooses each trial's epochs)", epochs, TypeError)
    hm_base = base.base if isinstance(base, ResNetHyperModel) else as_spec(base)
    data = (load_data(data, flatten=hm_base.is_mlp) if isinstance(data, str)
            else as_data(data, y, validation_data))
    if isinstance(base, ResNetHyperModel):
        hypermodel = base
        if tuple(hypermodel.base.input_shape) != tuple(data.input_shape):
            raise ValueError(f"the HyperModel's input_shape {hypermodel.base.input_shape} "
                             f"does not match the data's {tuple(data.input_shape)}")
    else:
        fields = {k: v for k, v in training.items() if v is not None and k not in searched}
        hypermodel = ResNetHyperModel(
            base, recipe=_as_recipe(recipe).replace(seed=seed, **fields), **searched,
            **space, allow_zero_l2=allow_zero_l2, residual=residual,
            input_shape=tuple(data.input_shape), classes=data.classes)
    if objective.startswith("val_") and data.validation is None:
        raise ValueError(f"objective {objective!r} needs validation data: pass "
                         "validation_data=(x_val, y_val). Received: validation_data=None")
    for name, setting in hypermodel.settings.items():
        if algorithm == "grid" and setting and setting["kind"] == "range" and not setting[
                "step"]:
            C.fail(name, "is a continuous range, which algorithm='grid' cannot "
                   "enumerate: give a list of values or a 'step'", setting)
    project_name = C.check_str("project_name", project_name or
                               f"{hypermodel.base.name or 'resnet'}_{algorithm}")
    if project_name in ("", ".", "..") or os.sep in project_name or (
            os.altsep and os.altsep in project_name):
        C.fail("project_name", "must be a folder name (no path separators)", project_name)

    project_dir = os.path.join(directory, project_name)
    state.check_folder(project_dir)
    if overwrite and os.path.isdir(project_dir):
        shutil.rmtree(project_dir)
    config = json.loads(json.dumps({
        "event": "search", "format": state.FORMAT, "algorithm": algorithm,
        "objective": objective, "max_trials": max_trials, "seed": seed,
        "hyperband_factor": hyperband_factor if algorithm == "hyperband" else None,
        "hypermodel": hypermodel.get_config()}))
    biggest = {n: max(_points(s)) for n, s in hypermodel.settings.items()
               if s and n in ("depth", "width", "batch_size")}
    jobs, threads = plan_jobs(hypermodel.spec(biggest), data, biggest.get(
        "batch_size", hypermodel.recipe.batch_size), max_trials or 1 << 20, jobs, threads)
    with tempfile.TemporaryDirectory(prefix="kr-tune-") as tmp:
        setup = os.path.join(tmp, "setup.pkl") if isolate else None
        if setup is not None:
            try:
                with open(setup, "wb") as fh:
                    pickle.dump((hypermodel, data if data.is_numpy or not data.load_args
                                 else data.load_args), fh)
            except Exception:  # noqa: BLE001 - e.g. a tf.data pipeline
                setup, jobs = None, 1
                if verbose:
                    print("[tune] the data cannot be sent to a worker process; trials "
                          "run in this process", flush=True)
        search = Search(hypermodel, project_dir, config, data, verbose,
                        threads if setup else None)
        done = search.project.start(config)
        if verbose and done is not None:
            print(f"[tune] resuming {project_dir}: {done} trial(s) finished", flush=True)
        if verbose and setup:
            print(f"[tune] {jobs} worker process{'es' if jobs > 1 else ''} of {threads} "
                  f"thread{'s' if threads > 1 else ''}", flush=True)
        search.run(jobs, setup)
    return search.write_best(), search


def describe_best(search: Search, best: ModelSpec) -> str:
    """One line on the winner: where its files are and how to train it again."""
    return (f"best spec: {search.best_spec_path} (depth {base_depth(best)}, l2 "
            f"{_format_value(best.l2)}); train it again with kr.train(spec, data, "
            f"**recipe) where recipe = {os.path.join(search.project_dir, 'best_recipe.json')}")


__all__ = ["ALGORITHMS", "Search", "describe_best", "results_table", "run_trial", "tune"]
