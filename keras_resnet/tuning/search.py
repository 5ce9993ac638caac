"""The search: :func:`tune`, its loop over the ledger, its trials, its result.

Each process keeps a stock KerasTuner oracle, driven only through its public
methods, and replays :mod:`~keras_resnet.tuning.ledger`'s records into it (a
``created`` record is ``create_trial`` with the recorded values, a ``finished``
one ``update_trial`` per epoch and ``end_trial``): the oracle's state is a
function of the ledger, so a restarted process goes on, and processes sharing a
folder agree. Each trial is a ``kr.train`` run in its own run folder
(``trials/<id>/``: a killed trial resumes from its last epoch), in
:mod:`keras_resnet.parallel` workers, ``jobs`` side by side; as in KerasTuner's
chief/worker mode, a free worker asks the oracle for the next trial.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner as kt
import psutil

from keras_resnet import _checks as C
from keras_resnet import parallel
from keras_resnet._io import atomic_write_text
from keras_resnet._table import text_table
from keras_resnet.builders import as_spec
from keras_resnet.data import Data, as_data
from keras_resnet.flops import is_small_step
from keras_resnet.runfolder import RunFolder
from keras_resnet.spec import ModelSpec
from keras_resnet.training import Recipe
from keras_resnet.tuning import ALGORITHMS, HP_NAMES, OBJECTIVES, RECIPE_HPS
from keras_resnet.tuning import ledger as L
from keras_resnet.tuning.space import ResNetHyperModel, points

_ORACLES = {"random": kt.oracles.RandomSearchOracle, "grid": kt.oracles.GridSearchOracle,
            "bayesian": kt.oracles.BayesianOptimizationOracle,
            "hyperband": kt.oracles.HyperbandOracle}
_POLL_S = 0.5
#: Trial workers are replaced after this many trials each (the pool is closed and a
#: new one started): on TensorFlow every trained model leaves about 20 MB that
#: ``clear_session()`` does not free. (Not the executor's ``max_tasks_per_child``:
#: on Python 3.11 it can leave queued tasks without a worker, CPython gh-115634.)
TRIALS_PER_WORKER = 10


def run_trial(hypermodel: ResNetHyperModel, data: Data | dict, values: dict,
              out_dir: str | None) -> dict:
    """Trains one trial (in a worker, or in this process; ``data`` may be a
    :meth:`Data.to_ref <keras_resnet.Data.to_ref>`); a failure is a result:
    ``{"status": "FAILED", "message"}``, else ``{"status": "COMPLETED", "metrics":
    {name: [per epoch]}, "seconds", "rss_mb", "pid"}``."""
    start = time.perf_counter()
    try:
        keras.backend.clear_session()
        folder = out_dir and RunFolder(out_dir)
        history = (folder.history() if folder and folder.status() == folder.FINISHED else
                   hypermodel.train_trial(values, Data.from_ref(data) if isinstance(
                       data, dict) else data, out_dir))
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0]
        return {"status": "FAILED", "message": f"{type(e).__name__}: {first}"}
    return {"status": "COMPLETED", "seconds": time.perf_counter() - start,
            "metrics": {k: [float(v) for v in vs] for k, vs in (history or {}).items()
                        if k != "learning_rate"},
            "rss_mb": psutil.Process().memory_info().rss / 2**20, "pid": os.getpid()}


def _replaying(cls: type) -> type:
    """``cls`` whose ``populate_space`` returns ``replay`` values when they are set."""

    def populate_space(self: Any, trial_id: str) -> dict:
        response = cls.populate_space(self, trial_id)  # type: ignore[attr-defined]
        if self.replay is not None:
            return {"status": "RUNNING", "values": dict(self.replay)}
        return response

    return type(f"Replayed{cls.__name__}", (cls,), {"populate_space": populate_space,
                                                     "replay": None})


class Search:
    """A search's state: the ledger replayed into a stock oracle, and its loop.

    Attributes:
        hypermodel: The :class:`~keras_resnet.tuning.ResNetHyperModel`.
        oracle: The stock KerasTuner oracle, replayed from the ledger.
        out_dir: The project folder.
        created, finished: ``{trial_id: ledger record}``, in ledger order.
        trial_stats: ``{trial_id: seconds, RSS, pid}`` of this process's trials.
    """

    def __init__(self, hypermodel: ResNetHyperModel, out_dir: str, config: dict,
                 verbose: Any = 1, threads: int | None = None) -> None:
        self.hypermodel, self.out_dir, self.config = hypermodel, out_dir, config
        self.verbose, self.threads = verbose, threads
        self.ledger = L.Ledger(out_dir)
        self.oracle: Any = None
        self.created: dict = {}
        self.finished: dict = {}
        self.trial_stats: dict = {}
        self._running: dict = {}  # trial id: (start time, values, taken over?)
        # KerasTuner's tuner_id of each trial this process creates: unique even when
        # a restarted process gets the pid of a dead one whose trial is unfinished.
        self._slot = f"{L.HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self._slots = 0
        self._waiting_at: int | None = None  # ledger size when the oracle said wait
        self._scratch: str | None = None  # KerasTuner's files, never read back
        self.finished_all = False  # every trial created and finished (set by claim)

    def sync(self) -> None:
        """Applies the ledger's new records to the oracle (lock held)."""
        if self.oracle is None:
            c = self.config
            direction = "min" if c["objective"].endswith("loss") else "max"
            args = dict(objective=kt.Objective(c["objective"], direction),
                        seed=c["seed"] + 1, hyperparameters=self.hypermodel.hyperparameters.copy(),
                        tune_new_entries=False, allow_new_entries=False,
                        max_consecutive_failed_trials=1 << 30)
            if c["algorithm"] == "hyperband":
                args.update(max_epochs=self.hypermodel.recipe.epochs,
                            factor=c["hyperband_factor"])
            else:
                args["max_trials"] = c["max_trials"]
            self.oracle = _replaying(_ORACLES[c["algorithm"]])(**args)
            self._scratch = self._scratch or tempfile.mkdtemp(prefix="kr-tune-oracle-")
            # A stock Tuner gives the oracle its (scratch) folder; its "model" only
            # declares the space.
            kt.Tuner(oracle=self.oracle, hypermodel=self.hypermodel.declare_hyperparameters,
                     directory=self._scratch, project_name="oracle", overwrite=True)
            self.oracle.verbose = 0  # the oracle's own property: its lines are ours to print
            self.created, self.finished = {}, {}
            records = self.ledger.read(0)
        else:
            records = self.ledger.read()
        for record in records:
            self._apply(record)

    def _apply(self, record: dict) -> None:
        oracle, trial_id = self.oracle, record.get("trial_id")
        if record["event"] == "created":
            self.created[trial_id] = record
            oracle.replay = record["values"]
            try:
                trial = oracle.create_trial(record["slot"])
            finally:
                oracle.replay = None
            if trial.trial_id != trial_id:
                raise RuntimeError(f"the ledger of {self.out_dir!r} does not replay: "
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
            if trial_id not in self._running and self.ledger.claim(trial_id):
                return trial_id, self.created[trial_id]["values"], True
        if len(self.created) >= self.config["max_trials"] or \
                self._waiting_at == self.ledger.offset:
            return None  # all created, or nothing new since the oracle said wait
        if self._waiting_at is not None:  # it may have moved on without a record
            self.oracle = None
            self.sync()
        self._slots += 1
        slot = f"{self._slot}:{self._slots}"
        trial = self.oracle.create_trial(slot)
        if trial.status != "RUNNING":
            self._waiting_at = self.ledger.offset
            return None
        self._waiting_at = None
        values = json.loads(json.dumps(trial.hyperparameters.values))
        record = {"event": "created", "trial_id": trial.trial_id, "slot": slot,
                  "values": values, "recipe": self.hypermodel.recipe_for(values).to_dict()}
        self.ledger.append(record)
        self.created[trial.trial_id] = record
        self.ledger.claim(trial.trial_id)
        return trial.trial_id, values, False

    def claim(self) -> tuple | None:
        """The next trial this process runs, or None: none yet (others' trials run,
        or the oracle waits for results), or none left (then :attr:`finished_all`)."""
        with self.ledger.lock:
            self.sync()
            job = self._next()
            self.finished_all = job is None and not self._unfinished()
        if job is not None:
            self._running[job[0]] = (time.perf_counter(), job[1], job[2])
        return job

    def trial_dir(self, trial_id: str) -> str:
        return os.path.join(self.out_dir, L.TRIALS, trial_id)

    def run(self, jobs: int, data: Data | dict) -> None:
        """Runs trials until every trial of the search is finished: in ``jobs``
        worker processes (``data`` is a :meth:`Data.to_ref <keras_resnet.Data.to_ref>`),
        or in this process (``data`` is a ``Data``)."""
        try:
            while not self.finished_all:
                if isinstance(data, dict):
                    self._run_workers(jobs, data)
                elif (job := self.claim()) is None:  # others' trials run, or the oracle
                    time.sleep(0 if self.finished_all else _POLL_S)  # waits for results
                else:
                    self.record(job[0], run_trial(self.hypermodel, data, job[1],
                                                     self.trial_dir(job[0])))
        finally:  # trials this process will not finish are free for anyone (or a rerun)
            for trial_id in list(self.ledger.held):
                self.ledger.release(trial_id)
            if self._scratch:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def _run_workers(self, jobs: int, data: dict) -> None:
        """Runs trials in a pool of ``jobs`` workers, until the search ends or the
        workers have had their :data:`TRIALS_PER_WORKER` trials."""
        with parallel.Pool(jobs, self.threads or 1) as pool:
            futures: dict = {}
            submitted = 0
            try:
                while True:
                    while (len(futures) < jobs and submitted < TRIALS_PER_WORKER * jobs
                           and (job := self.claim()) is not None):
                        futures[pool.submit(job[0], run_trial, hypermodel=self.hypermodel,
                                            data=data, values=job[1],
                                            out_dir=self.trial_dir(job[0]))] = job[0]
                        submitted += 1
                    if not futures:
                        if self.finished_all or submitted >= TRIALS_PER_WORKER * jobs:
                            return  # the end, or fresh workers for the next trials
                        time.sleep(_POLL_S)  # others' trials run, or the oracle waits
                        continue
                    ready, _ = cf.wait(futures, timeout=_POLL_S, return_when=cf.FIRST_COMPLETED)
                    for future in ready:
                        out = future.result()  # a dead worker raises: below
                        self.record(futures.pop(future), out)
            except cf.process.BrokenProcessPool as e:  # a worker died: its trials failed
                for trial_id in futures.values():
                    self.record(trial_id, {"status": "FAILED", "message":
                                           f"the worker process died ({e})"})

    def record(self, trial_id: str, out: dict) -> None:
        """Records a trial's result, prints its line, releases its claim."""
        t0, values, again = self._running[trial_id]
        record = {"event": "finished", "trial_id": trial_id, "status": out["status"],
                  "metrics": out.get("metrics", {}), "message": out.get("message"),
                  "threads": self.threads}
        with self.ledger.lock:
            self.sync()
            if trial_id not in self.finished:
                self.ledger.append(record)  # if this fails, run() releases the claim
                self._apply(record)
            self.ledger.release(trial_id)
        del self._running[trial_id]
        seconds = time.perf_counter() - t0
        self.trial_stats[trial_id] = {"seconds": seconds, "again": again,
                                      **{k: out.get(k) for k in ("status", "rss_mb", "pid")}}
        if self.verbose:
            shown = " ".join(f"{k}={_format(v)}" for k, v in
                             self.hypermodel.describe(values).items() if k != "blocks")
            score = self.oracle.get_trial(trial_id).score
            result = (f"{self.config['objective']}={score:.4f}" if score is not None
                      else f"{out['status']} ({out.get('message')})")
            print(f"[tune] trial {trial_id}{', taken over' if again else ''}: {shown} -> "
                  f"{result}  {seconds:.1f}s", flush=True)
        ends = [r["status"] for r in self.finished.values()]
        if len(ends) >= 3 and "COMPLETED" not in ends:
            raise RuntimeError(f"the first {len(ends)} trials of {self.out_dir!r} all "
                               f"failed; the last: {out.get('message')}")

    def completed(self) -> list:
        """The completed trials, best first (KerasTuner ``Trial`` objects)."""
        trials = [t for t in self.oracle.trials.values() if t.status == "COMPLETED"
                  and t.score is not None and t.score == t.score]
        return sorted(trials, key=lambda t: t.score,
                      reverse=self.oracle.objective.direction == "max")


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
        best_spec: The best trial's ``ModelSpec``.
        best_recipe: Its :class:`~keras_resnet.Recipe`: ``kr.train(best_spec,
            data, recipe=best_recipe)`` gives its score again.
        best_score: Its objective, at its best epoch.
        best_values: Its hyperparameter values.
        trials: One dict per finished trial, best first: ``trial_id``,
            ``status``, ``score``, ``values`` (effective: depth, blocks, l2 and
            every searched one), ``out_dir`` (its run folder).
        out_dir: The project folder.
        paths: ``{"best_spec", "best_recipe", "best_hyperparameters",
            "ledger"}``: the files written.
        search: The :class:`Search` (its KerasTuner oracle, ledger records).
    """

    best_spec: ModelSpec
    best_recipe: Recipe
    best_score: float
    best_values: dict
    trials: list
    out_dir: str
    paths: dict
    search: Search = field(repr=False)

    def get_best_models(self, num_models: int = 1) -> list:
        """The trained models of the best trials (each trial's ``model.keras``, as
        at its last epoch), best first, as KerasTuner's ``get_best_models``."""
        C.check_int("num_models", num_models, minimum=1)
        done = [t for t in self.trials if t["status"] == "COMPLETED"][:num_models]
        return [keras.models.load_model(RunFolder(t["out_dir"]).file(RunFolder.MODEL))
                for t in done]

    def table(self, num_trials: int = 10) -> str:
        """The best trials as a text table (best first), and a count line."""
        num_trials = C.check_int("num_trials", num_trials, minimum=1)
        rows = [t for t in self.trials if t["status"] == "COMPLETED"][:num_trials]
        extra: list = []
        for t in rows:
            extra += [k for k in t["values"] if k not in ("depth", "blocks", "l2", *extra)]
        name = self.search.config["objective"]
        header = ["rank", "trial", "depth", "blocks", "l2", *extra, name]
        body = [[rank, t["trial_id"], t["values"]["depth"], t["values"]["blocks"],
                 _format(t["values"]["l2"]), *[_format(t["values"].get(k, "")) for k in extra],
                 f"{t['score']:.4f}"] for rank, t in enumerate(rows, start=1)]
        failed = sum(t["status"] != "COMPLETED" for t in self.trials)
        return (text_table(header, body, right=[0, len(header) - 1]) +
                f"\n{len(self.trials) - failed} completed, {failed} failed ({name}: best "
                "epoch of each trial)")


def _format(v: Any) -> str:
    return (f"{v:.3g}" if v != 0 else "0") if isinstance(v, float) else str(v)


@C.renamed(base="model", directory="out_dir=os.path.join(directory, project_name)",
           project_name="out_dir=os.path.join(directory, project_name)")
def tune(
    model: Any,
    data: Any = "digits",
    y: Any = None,
    *,
    validation_data: Any = None,
    recipe: Recipe | Mapping | None = None,
    hyperparameters: kt.HyperParameters | None = None,
    algorithm: str = "hyperband",
    max_trials: int = 10,
    objective: str = "val_accuracy",
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    verbose: int | str = "auto",
    jobs: int | str = "auto",
    threads: int | str = "auto",
    isolate: bool = True,
    hyperband_factor: int = 3,
    depth: Any = None, l2: Any = None, width: Any = None, shortcut: Any = None,
    block_type: Any = None, drop_path_rate: Any = None,
    allow_zero_l2: bool = False,
    **recipe_fields: Any,
) -> TuneResult:
    """Searches depth and L2 (and more) for a base spec; every trial is a ``kr.train`` run.

    Writes into ``out_dir``: ``ledger.jsonl`` (every trial's values, recipe and per-epoch
    metrics), ``trials/<id>/`` (each trial's run folder), ``best_spec.json``,
    ``best_recipe.json`` and ``best_hyperparameters.json``. Run it again to resume, also
    after SIGKILL (no finished trial is lost or run again; a killed one resumes from its
    last epoch); run it in several processes on one folder (a shared disk) to share the trials.

    Args:
        model: The base spec (anything :func:`~keras_resnet.as_spec` takes; the input shape
            and classes come from the data), or a :class:`~keras_resnet.tuning.ResNetHyperModel`.
        data: A :class:`~keras_resnet.Data`, a source (``"digits"``, a folder) or training
            arrays (with ``y``), as :func:`keras_resnet.train` takes them.
        y: Integer labels, with array ``data``.
        validation_data: ``(x_val, y_val)``, with array ``data``.
        recipe: The base training recipe (``kr.Recipe`` or its dict).
        hyperparameters: The space as a ``keras_tuner.HyperParameters`` (names of
            :data:`~keras_resnet.tuning.HP_NAMES`); the shortcuts add to it.
        algorithm: ``"hyperband"``, ``"random"``, ``"bayesian"`` or ``"grid"`` (Hyperband
            trains each trial from scratch for its budget).
        max_trials: Trials in all, resumed ones included (Hyperband: a cap).
        objective: One of :data:`~keras_resnet.tuning.OBJECTIVES`; a trial scores its best epoch.
        out_dir: The project folder; default ``tuner/<base name>_<algorithm>``.
        overwrite: Delete the project first (only a tuner project is deleted).
        verbose: Keras' meaning: 0 silent; otherwise one line per trial.
        jobs: Trials side by side in worker processes (``"auto"``:
            :func:`keras_resnet.parallel.plan_jobs` for the space's biggest network).
        threads: Threads of each worker (``"auto"``: 1 for small steps, else every core); it
            changes float results, and each trial records it.
        isolate: Train in worker processes (replaced every :data:`TRIALS_PER_WORKER`
            trials); False trains in this process.
        hyperband_factor: Hyperband's reduction factor.
        depth: Blocks in the deepest stage (the space's shortcuts: a value, a list, a range
            dict, True or False, as :class:`~keras_resnet.tuning.ResNetHyperModel`).
        l2: L2 strength (default: a log range 1e-6 to 1e-2).
        width: Filter multiplier.
        shortcut: Shortcut option.
        block_type: Conv block type.
        drop_path_rate: Stochastic depth's largest rate.
        allow_zero_l2: Also try no weight decay (a ``use_l2`` switch).
        **recipe_fields: Recipe fields; a list, a range dict or True searches one of
            :data:`~keras_resnet.tuning.RECIPE_HPS`. ``seed`` also seeds the oracle.

    Returns:
        A :class:`TuneResult`.

    Example:

    ```python
    result = kr.tune("cifar_resnet20", "digits", algorithm="random", max_trials=12,
                     epochs=8, out_dir="tuner/r20")
    print(result.table())
    kr.train(result.best_spec, "digits", recipe=result.best_recipe)
    ```
    """
    if "residual" in recipe_fields:
        raise C.InvalidInputType("tune() got residual=, removed in 0.3: plain or residual is "
                                 "the spec's field; pass spec.replace(residual=False)")
    C.check_choice("algorithm", algorithm, ALGORITHMS)
    max_trials = C.check_int("max_trials", max_trials, minimum=1, maximum=1 << 20)
    C.check_bool("overwrite", overwrite)
    C.check_bool("isolate", isolate)
    factor = C.check_int("hyperband_factor", hyperband_factor, minimum=2, maximum=100)
    C.check_choice("verbose", verbose, ("auto", 0, 1, 2))
    C.check_choice("objective", objective, OBJECTIVES)
    if not isolate and jobs not in ("auto", 1):
        C.fail("jobs", "must be 1 with isolate=False (trials in this process)", jobs)
    if "KERASTUNER_ORACLE_IP" in os.environ:  # KerasTuner's chief/worker mode
        raise C.InvalidInput(
            "KERASTUNER_ORACLE_IP is set, but kr.tune does not use KerasTuner's chief "
            "and workers: start the same search in every process on the same out_dir "
            "(a shared folder) instead. Received: KERASTUNER_ORACLE_IP="
            f"{os.environ['KERASTUNER_ORACLE_IP']!r}")
    base = model.base if isinstance(model, ResNetHyperModel) else as_spec(model)
    data = as_data(data, y, validation_data, flatten=base.is_mlp)
    if objective.startswith("val_") and data.validation is None:
        raise C.InvalidInput(f"objective {objective!r} needs validation data: pass "
                             "validation_data=(x_val, y_val). Received: validation_data=None")
    hypermodel = _hypermodel(model, recipe, hyperparameters, recipe_fields, dict(
        depth=depth, l2=l2, width=width, shortcut=shortcut, block_type=block_type,
        drop_path_rate=drop_path_rate), allow_zero_l2, algorithm, data)
    for h in hypermodel.hyperparameters.space:  # a grid of what the user asked for only
        if algorithm == "grid" and getattr(h, "step", 0) is None:
            C.fail(h.name, "is a continuous range, which algorithm='grid' cannot "
                   "enumerate: give a list of values or a 'step'", h.get_config())
    config = json.loads(json.dumps({
        "event": "search", "format": L.FORMAT, "algorithm": algorithm,
        "objective": objective, "max_trials": max_trials,
        "seed": hypermodel.recipe.seed or 0,
        "hyperband_factor": factor if algorithm == "hyperband" else None,
        "hypermodel": hypermodel.get_config()}))
    # the space's most expensive network: its training step sets the threads
    space = {h.name: h for h in hypermodel.hyperparameters.space}
    biggest = {n: max(points(space[n])) for n in ("depth", "width", "batch_size") if n in space}
    jobs, threads = parallel.plan_jobs(max_trials, jobs, threads, small_steps=is_small_step(
        hypermodel.spec(biggest), biggest.get("batch_size", hypermodel.recipe.batch_size)))
    with tempfile.TemporaryDirectory(prefix="kr-tune-") as scratch:
        ref = data.to_ref(scratch) if isolate else None  # refuses tf.data before any file
        out_dir = _project(out_dir, hypermodel, algorithm, overwrite)
        search = Search(hypermodel, out_dir, config, verbose, threads if isolate else None)
        done = search.ledger.start(config)
        if verbose and done is not None:
            print(f"[tune] resuming {out_dir}: {done} trial(s) finished", flush=True)
        if verbose and isolate:
            print(f"[tune] {jobs} worker process{'es' if jobs > 1 else ''} of {threads} "
                  f"thread{'s' if threads > 1 else ''}", flush=True)
        search.run(jobs, ref or data)
    return _result(search)


def _hypermodel(model: Any, recipe: Any, hyperparameters: Any, recipe_fields: dict,
                space: dict, allow_zero_l2: bool, algorithm: str,
                data: Data) -> ResNetHyperModel:
    """The HyperModel of a search: the one given (for the data's shape), or one
    made from the arguments, for the data's input shape and classes."""
    C.check_keys("tune()", recipe_fields, [n for n in Recipe.__dataclass_fields__])
    searched: dict[str, Any] = {k: v for k, v in recipe_fields.items() if k in RECIPE_HPS and (
        (v is True and k != "augment") or isinstance(v, (list, tuple, Mapping)))}
    if isinstance(model, ResNetHyperModel):
        given = [k for k, v in dict(recipe_fields, recipe=recipe, **space,
                                    hyperparameters=hyperparameters).items() if v is not None]
        if given or allow_zero_l2:
            raise C.InvalidInputType(
                f"tune() got a ResNetHyperModel and search arguments "
                f"({', '.join(given) or 'allow_zero_l2'}); set them on the HyperModel")
        if tuple(model.base.input_shape) != tuple(data.input_shape):
            raise C.InvalidInput(f"the HyperModel's input_shape {model.base.input_shape} "
                                 f"does not match the data's {tuple(data.input_shape)}")
        return model
    if algorithm == "hyperband" and "epochs" in searched:
        C.fail("epochs", "must be one number with algorithm='hyperband' (Hyperband "
               "chooses each trial's epochs)", recipe_fields["epochs"], TypeError)
    fields = {k: v for k, v in recipe_fields.items() if k not in searched}
    return ResNetHyperModel(model, recipe=Recipe.of(recipe, **fields),
                            hyperparameters=hyperparameters, **space, **searched,
                            allow_zero_l2=allow_zero_l2,
                            input_shape=tuple(data.input_shape), classes=data.classes)


def _project(out_dir: Any, hm: ResNetHyperModel, algorithm: str, overwrite: bool) -> str:
    """The project folder: checked (only a tuner project is resumed or deleted)."""
    if out_dir is None:
        out_dir = os.path.join("tuner", f"{hm.base.name or 'resnet'}_{algorithm}")
    out_dir = C.check_str("out_dir", os.fspath(out_dir))
    L.check_folder(out_dir)
    if overwrite and os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    return out_dir


def _result(search: Search) -> TuneResult:
    """Writes best_spec.json, best_recipe.json and best_hyperparameters.json; the result."""
    trials = search.completed()
    if not trials:
        last = [f.get("message") for f in search.finished.values()][-1:]
        raise RuntimeError(f"no trial of {search.out_dir!r} completed"
                           + (f"; the last error: {last[0]}" if last else ""))
    best, hm = trials[0], search.hypermodel
    values = {k: v for k, v in best.hyperparameters.values.items() if k in HP_NAMES}
    spec, recipe = hm.spec(values), hm.recipe_for(best.hyperparameters.values)
    paths = {name: os.path.join(search.out_dir, f"{name}.json")
             for name in ("best_spec", "best_recipe", "best_hyperparameters")}
    paths["ledger"] = os.path.join(search.out_dir, L.LEDGER)
    record = {"trial_id": best.trial_id, "score": best.score, "values": values,
              "objective": search.config["objective"], "recipe": recipe.to_dict(),
              "threads": search.finished[best.trial_id].get("threads")}
    with search.ledger.lock:
        spec.save(paths["best_spec"], overwrite=True)
        for name, content in (("best_recipe", recipe.to_dict()),
                              ("best_hyperparameters", record)):
            atomic_write_text(paths[name], json.dumps(content, indent=1), overwrite=True)
    scores = {t.trial_id: t.score for t in trials}
    order = [t.trial_id for t in trials] + [t for t in search.finished if t not in scores]
    table = [{"trial_id": t, "status": search.finished[t]["status"], "score": scores.get(t),
              "values": hm.describe(search.created[t]["values"]),
              "out_dir": search.trial_dir(t)} for t in order]
    return TuneResult(spec, recipe, best.score, values, table, search.out_dir, paths, search)
