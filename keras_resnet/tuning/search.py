"""The search: :func:`tune`, its loop over the ledger, and its results.

Each process keeps a stock KerasTuner oracle driven only through its public
methods and replays :mod:`~keras_resnet.tuning.state`'s ledger into it: a
``created`` record is ``create_trial`` (with the recorded values), a
``finished`` one ``update_trial`` per epoch and ``end_trial``. So the oracle's
state is a function of the ledger: a (re)started process replays it and goes
on, and processes sharing a folder agree. KerasTuner's own files go to a
scratch folder that is never read back.
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import keras_tuner as kt

from keras_resnet import _checks as C
from keras_resnet._io import atomic_write_text
from keras_resnet._table import text_table
from keras_resnet.builders import as_spec
from keras_resnet.spec import ModelSpec
from keras_resnet.training.recipe import Recipe
from keras_resnet.tuning import runner, state
from keras_resnet.tuning.cli import ALGORITHMS
from keras_resnet.tuning.space import RECIPE_HPS, ResNetHyperModel, _as_recipe, as_data, base_depth

_ORACLES = {"random": kt.oracles.RandomSearchOracle,
            "grid": kt.oracles.GridSearchOracle,
            "bayesian": kt.oracles.BayesianOptimizationOracle,
            "hyperband": kt.oracles.HyperbandOracle}
_POLL_S = 0.5


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
        oracle: The stock KerasTuner oracle, replayed from the ledger
            (``oracle.get_best_trials()``, ``oracle.trials``...).
        project_dir: The project folder.
        best_spec_path: ``<project_dir>/best_spec.json``.
        trial_stats: ``{trial_id: timings and RSS}`` of the trials this
            process ran.
    """

    def __init__(self, hypermodel: ResNetHyperModel, project_dir: str, config: dict,
                 data: Any = None, isolate: bool = True, verbose: int = 1) -> None:
        self.hypermodel = hypermodel
        self.project_dir = project_dir
        self.best_spec_path = os.path.join(project_dir, "best_spec.json")
        self.config = config
        self.project = state.Project(project_dir)
        self.trials = state.Trials()
        self.oracle: Any = None
        self.trial_stats: dict = {}
        self.data = data
        self.verbose = verbose
        self._setup = None
        if isolate and data is not None:
            try:
                self._setup = pickle.dumps((hypermodel, data))
            except Exception:  # noqa: BLE001 - e.g. a tf.data pipeline
                if verbose:
                    print("[tune] the data cannot be sent to a worker process; trials "
                          "run in this process", flush=True)
        self._worker: runner.Worker | None = None
        self._spare: runner.Worker | None = None
        self._scratch = tempfile.mkdtemp(prefix="kr-tune-oracle-")
        # KerasTuner's tuner_id of each trial this process creates: unique even when
        # a restarted process gets the pid of a dead one whose trial is unfinished.
        self._slot = f"{state.HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self._slots = 0
        self._waiting_at: int | None = None  # ledger size when the oracle said wait/stop
        #: Trial worker processes started (the first, and one per replacement).
        self.workers_started = 0

    # ------------------------------------------------------------ the oracle
    def _new_oracle(self) -> Any:
        c = self.config
        args = dict(objective=_objective(c["objective"]), seed=c["seed"] + 1,
                    max_consecutive_failed_trials=1 << 30)
        if c["algorithm"] == "hyperband":
            args.update(max_epochs=self.hypermodel.recipe.epochs,
                        factor=c["hyperband_factor"])
        else:
            args["max_trials"] = c["max_trials"]
        oracle = _replaying(_ORACLES[c["algorithm"]])(**args)
        if c["algorithm"] == "hyperband":
            oracle.max_trials = c["max_trials"]
        # A stock Tuner gives the oracle its (scratch) folder and its space.
        kt.Tuner(oracle=oracle, hypermodel=_Space(self.hypermodel),
                 directory=self._scratch, project_name="oracle", overwrite=True)
        oracle.verbose = 0
        return oracle

    def sync(self) -> None:
        """Applies the ledger's new records to the oracle (with the lock held)."""
        if self.oracle is None:
            self.oracle = self._new_oracle()
            self.trials = state.Trials()
            records = self.project.read_all()
        else:
            records = self.project.read_new()
        for record in records:
            self._apply(record)

    def _apply(self, record: dict) -> None:
        self.trials.add(record)
        oracle = self.oracle
        if record["event"] == "created":
            oracle.forced_values = record["values"]
            try:
                trial = oracle.create_trial(record["slot"])
            finally:
                oracle.forced_values = None
            if trial.trial_id != record["trial_id"]:
                raise RuntimeError(f"the ledger of {self.project_dir!r} does not replay: "
                                   f"trial {record['trial_id']} came back as "
                                   f"{trial.trial_id}")
        elif record["event"] == "finished":
            trial = oracle.get_trial(record["trial_id"])
            if trial.status != "RUNNING":
                return
            if record["status"] == "COMPLETED":
                epochs = zip(*record["metrics"].values())
                for step, row in enumerate(epochs):
                    oracle.update_trial(trial.trial_id, dict(zip(record["metrics"], row)),
                                        step=step)
            trial.status = record["status"]
            trial.message = record.get("message")
            oracle.end_trial(trial)

    def _next(self) -> tuple | None:
        """Claims a trial to run (lock held): an orphan first, else a new one."""
        for trial_id in self.trials.unfinished():
            if self.project.is_orphan(trial_id):
                self.project.claim(trial_id)
                return trial_id, self.trials.created[trial_id]["values"], True
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
        self.trials.add(record)
        self.project.claim(trial.trial_id)
        return trial.trial_id, values, False

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        """Runs trials until the search is done (every trial of it finished)."""
        try:
            while True:
                t0 = time.perf_counter()
                with self.project.lock():
                    self.sync()
                    job = self._next()
                    done = job is None and not self.trials.unfinished()
                if job is not None:
                    self._run_one(t0, *job)
                elif done:
                    return
                else:
                    time.sleep(_POLL_S)  # others' trials are running; one may die
        finally:
            for w in (self._worker, self._spare):
                if w is not None:
                    w.close()
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _run_one(self, t0: float, trial_id: str, values: dict, again: bool) -> None:
        with state.heartbeat(self.project, trial_id):
            out = self._train(values)
        record = {"event": "finished", "trial_id": trial_id, "status": out["status"],
                  "metrics": out.get("metrics", {}), "message": out.get("message")}
        with self.project.lock():
            self.sync()
            if trial_id not in self.trials.finished:
                self.project.append(record)
                self._apply(record)
            self.project.release(trial_id)
        stats = {"total_s": time.perf_counter() - t0, "fit_s": out.get("fit_s", 0.0),
                 "build_s": out.get("build_s", 0.0), "rss_mb": out.get("rss_mb"),
                 "search_rss_mb": runner.rss_mb(),
                 "status": out["status"], "again": again}
        stats["other_s"] = stats["total_s"] - stats["fit_s"] - stats["build_s"]
        self.trial_stats[trial_id] = stats
        if self.verbose:
            print(self._progress_line(trial_id, values, stats, out), flush=True)
        finished = [self.trials.finished[t] for t in self.trials.created
                    if t in self.trials.finished]
        if len(finished) >= 3 and all(f["status"] != "COMPLETED" for f in finished):
            raise RuntimeError(f"the first {len(finished)} trials of {self.project_dir!r} "
                               f"all failed; the last: {out.get('message')}")

    def _train(self, values: dict) -> dict:
        if self._setup is None:
            return runner.run_trial(self.hypermodel, self.data, values)
        if self._worker is None:
            self._worker, self._spare = self._spare or self._start_worker(), None
        out = self._worker.run(values)
        if out.get("worker_died") or self._worker.growth() > runner.MAX_GROWTH:
            self._worker.close()
            self._worker = None
        if self._spare is None:  # a fresh worker, importing while trials run
            self._spare = self._start_worker()
        return out

    def _start_worker(self) -> runner.Worker:
        if self._setup is None:
            raise RuntimeError("trial workers need the pickled search setup")
        self.workers_started += 1
        return runner.Worker(self._setup)

    def _progress_line(self, trial_id: str, values: dict, stats: dict, out: dict) -> str:
        shown = " ".join(f"{k}={_format_value(v)}" for k, v in
                         self.hypermodel.describe(values).items() if k != "blocks")
        score = self.oracle.get_trial(trial_id).score if self.oracle else None
        result = (f"{self.config['objective']}={score:.4f}" if score is not None
                  else f"{out['status']} ({out.get('message')})")
        again = ", run again" if stats["again"] else ""
        return (f"[tune] trial {trial_id}{again}: {shown} -> {result}  "
                f"{stats['total_s']:.1f}s (fit {stats['fit_s']:.1f}s, build "
                f"{stats['build_s']:.1f}s, other {stats['other_s']:.2f}s)")

    # ------------------------------------------------------------ results
    def completed(self) -> list:
        """The completed trials, best first (KerasTuner ``Trial`` objects)."""
        if self.oracle is None:
            with self.project.lock():
                self.sync()
        trials = [t for t in self.oracle.trials.values() if t.status == "COMPLETED"
                  and t.score is not None and t.score == t.score]
        return sorted(trials, key=lambda t: t.score,
                      reverse=self.oracle.objective.direction == "max")

    def write_best(self) -> ModelSpec:
        """Writes best_spec.json, best_recipe.json, best_hyperparameters.json."""
        trials = self.completed()
        if not trials:
            last = [f.get("message") for f in self.trials.finished.values()][-1:]
            raise RuntimeError(f"no trial of {self.project_dir!r} completed"
                               + (f"; the last error: {last[0]}" if last else ""))
        best = trials[0]
        values = {k: v for k, v in best.hyperparameters.values.items()
                  if not k.startswith("tuner/")}
        spec = self.hypermodel.spec(values)
        recipe = self.hypermodel.recipe_for(best.hyperparameters.values).to_dict()
        hps = {"trial_id": best.trial_id, "score": best.score, "values": values,
               "objective": self.config["objective"], "recipe": recipe,
               "residual": self.hypermodel.residual}
        with self.project.lock():
            spec.save(self.best_spec_path, overwrite=True)
            for name, content in (("best_recipe", recipe), ("best_hyperparameters", hps)):
                atomic_write_text(os.path.join(self.project_dir, f"{name}.json"),
                                  json.dumps(content, indent=1), overwrite=True)
        return spec


def _objective(name: str) -> kt.Objective:
    return kt.Objective(name, "min" if name.endswith("loss") else "max")


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if v != 0 else "0"
    return str(v)


def results_table(search: Search, num_trials: int = 10) -> str:
    """The best trials of a search as a text table (best first).

    Columns: rank, trial id, depth (blocks in the deepest stage), blocks per
    stage, l2, every other searched hyperparameter, and the objective (the
    trial's best epoch).

    Args:
        search: What :func:`tune` returned.
        num_trials: Rows at most.

    Returns:
        The table, with a line counting completed and failed trials.
    """
    num_trials = C.check_int("num_trials", num_trials, minimum=1)
    name = search.config["objective"]
    trials = search.completed()
    described = [(t, search.hypermodel.describe(t.hyperparameters.values))
                 for t in trials[:num_trials]]
    extra: list = []
    for _, d in described:
        extra += [k for k in d if k not in ("depth", "blocks", "l2") and k not in extra]
    header = ["rank", "trial", "depth", "blocks", "l2", *extra, name]
    rows = [[rank, t.trial_id, d["depth"], d["blocks"], _format_value(d["l2"]),
             *[_format_value(d.get(k, "")) for k in extra], f"{t.score:.4f}"]
            for rank, (t, d) in enumerate(described, start=1)]
    failed = sum(r["status"] != "COMPLETED" for r in search.trials.finished.values())
    return (text_table(header, rows, right=[0, len(header) - 1]) +
            f"\n{len(trials)} completed, {failed} failed ({name}: best epoch of each "
            "trial)")


def _training_args(given: dict) -> tuple:
    """Splits tune's training arguments into recipe fields and searched hyperparameters."""
    fields, searched = {}, {}
    for name, value in given.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, Mapping)) or (value is True and name != "augment"):
            searched[name] = value
        else:
            fields[name] = value
    return fields, searched


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
    isolate: bool | None = None,
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
        data: A :class:`~keras_resnet.data.Data`, a source name such as
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
        isolate: Train in a worker process, replaced when its memory grows
            (TensorFlow leaks ~20 MB per trial); None: True on TensorFlow.

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
    if max_trials is not None:
        max_trials = C.check_int("max_trials", max_trials, minimum=1, maximum=1 << 20)
    elif algorithm != "hyperband":
        C.fail("max_trials", f"is required for algorithm={algorithm!r}", max_trials,
               TypeError)
    directory = os.fspath(directory) if isinstance(directory, os.PathLike) else directory
    if not C.check_str("directory", directory):
        C.fail("directory", "must not be empty", directory)
    C.check_bool("overwrite", overwrite)
    if isolate is None:
        import keras

        isolate = keras.backend.backend() == "tensorflow"
    C.check_bool("isolate", isolate)
    seed = C.check_int("seed", seed, minimum=0, maximum=2**31 - 2)
    hyperband_factor = C.check_int("hyperband_factor", hyperband_factor, minimum=2,
                                   maximum=100)
    verbose = C.check_choice("verbose", verbose, (0, 1))
    objective = C.check_choice("objective", objective,
                               ("val_accuracy", "val_loss", "accuracy", "loss"))
    if "KERASTUNER_ORACLE_IP" in os.environ:
        raise ValueError(
            "KERASTUNER_ORACLE_IP is set, but kr.tune does not use KerasTuner's chief "
            "and workers any more: start the same search in every process on the same "
            "directory (a shared folder) instead. Received: KERASTUNER_ORACLE_IP="
            f"{os.environ['KERASTUNER_ORACLE_IP']!r}")
    training = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    optimizer=optimizer, schedule=schedule, augment=augment)
    given_hm = isinstance(base, ResNetHyperModel)
    if given_hm:
        given = [k for k, v in dict(training, recipe=recipe, depth=depth, l2=l2,
                                    width=width, shortcut=shortcut, block_type=block_type,
                                    residual=residual).items() if v is not None]
        if given or allow_zero_l2:
            raise TypeError("tune() got a ResNetHyperModel and search arguments ("
                            f"{', '.join(given) or 'allow_zero_l2'}); set them on the "
                            "HyperModel instead")
    else:
        fields, searched = _training_args(training)
        if algorithm == "hyperband" and "epochs" in searched:
            C.fail("epochs", "must be one number with algorithm='hyperband' (Hyperband "
                   "chooses each trial's epochs)", epochs, TypeError)
        recipe = _as_recipe(recipe).replace(seed=seed, **fields)
    if isinstance(data, str):
        from keras_resnet.data import load_data

        data = load_data(data, flatten=(base.base if given_hm else as_spec(base)).is_mlp)
    else:
        data = as_data(data, y, validation_data)
    if given_hm:
        hypermodel = base
        if tuple(hypermodel.base.input_shape) != tuple(data.input_shape):
            raise ValueError(f"the HyperModel's input_shape {hypermodel.base.input_shape} "
                             f"does not match the data's {tuple(data.input_shape)}")
    else:
        hypermodel = ResNetHyperModel(
            base, recipe=recipe, **searched, depth=depth, l2=l2, width=width,
            shortcut=shortcut, block_type=block_type, allow_zero_l2=allow_zero_l2,
            residual=residual, input_shape=tuple(data.input_shape),
            classes=data.num_classes)
    if objective.startswith("val_") and data.validation is None:
        raise ValueError(f"objective {objective!r} needs validation data: pass "
                         "validation_data=(x_val, y_val). Received: validation_data=None")
    if algorithm == "grid":
        for name, setting in hypermodel.settings.items():
            if setting is not None and setting["kind"] == "range" and not setting["step"]:
                C.fail(name, "is a continuous range, which algorithm='grid' cannot "
                       "enumerate: give a list of values or a 'step'", setting)
    if project_name is None:
        project_name = f"{hypermodel.base.name or 'resnet'}_{algorithm}"
    C.check_str("project_name", project_name)
    if (not project_name or project_name in (".", "..") or os.sep in project_name
            or (os.altsep and os.altsep in project_name)):
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
    search = Search(hypermodel, project_dir, config, data, isolate=isolate,
                    verbose=verbose)
    with search.project.lock():
        records = search.project.read_all()
        if not records:
            search.project.append(config)
        elif records[0] != config:
            old = records[0]
            differ = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise ValueError(
                f"{project_dir!r} holds a search with a different {', '.join(differ)}; "
                "resume it with the same arguments, or pass overwrite=True or another "
                "project_name")
        elif verbose:
            done = sum(r["event"] == "finished" for r in records)
            print(f"[tune] resuming {project_dir}: {done} trial(s) finished", flush=True)
    search.run()
    return search.write_best(), search


def describe_best(search: Search, best: ModelSpec) -> str:
    """One line on the winner: where its files are and how to train it again."""
    return (f"best spec: {search.best_spec_path} (depth {base_depth(best)}, l2 "
            f"{_format_value(best.l2)}); train it again with kr.train(spec, data, "
            f"**recipe) where recipe = {os.path.join(search.project_dir, 'best_recipe.json')}")


__all__ = ["ALGORITHMS", "RECIPE_HPS", "Search", "describe_best", "results_table", "tune"]
