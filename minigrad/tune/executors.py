"""Where trials run: in this process, in a local pool of processes, or on a Dask cluster.

All three take a list of :class:`Task` and yield ``(task, outcome)`` pairs as
trials finish (outcome: the dict :func:`~minigrad.tune.trial.execute_trial`
returns). A trial's own errors never reach here; what can, a worker process dying
under a trial, becomes a ``"failed"`` outcome too.
"""
import concurrent.futures as cf
import multiprocessing
import os
import queue
import uuid
from collections import Counter, deque
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import NamedTuple, Optional
from urllib.parse import urlparse

from .trial import execute_trial

__all__ = ["Task", "Sequential", "LocalPool", "DaskExecutor", "available_cores",
           "core_shares", "THREAD_VARIABLES"]

#: Thread-count variables the numerical libraries read once, when they load.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


class Task(NamedTuple):
    """One call of the trial function: which trial, its config, how many epochs in total."""
    trial_id: str
    config: dict
    epochs: int
    checkpoint_path: Optional[str] = None


def _crash_outcome(task, message):
    return {"status": "failed", "history": {}, "error": message, "traceback": None,
            "resumed": False, "epochs_requested": int(task.epochs), "seconds": None,
            "images_per_second": None, "worker": None}


def available_cores():
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def core_shares(workers, cores=None):
    """Split ``cores`` into ``workers`` contiguous, equal-sized sets (one per worker).

    With more workers than cores, each worker gets one core, round robin.
    """
    cores = list(available_cores() if cores is None else cores)
    workers = int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers >= len(cores):
        return [[cores[i % len(cores)]] for i in range(workers)]
    per = len(cores) // workers  # leftovers stay idle rather than make shares unequal
    return [cores[i * per:(i + 1) * per] for i in range(workers)]


class Sequential:
    """Trials one after another in this process (``workers=1``): no start-up cost,
    and the trial may use every core; a crash inside a trial ends the sweep."""

    workers = 1
    description = "sequential (this process)"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, trial_fn, tasks):
        for task in tasks:
            yield task, execute_trial(trial_fn, task.config, task.epochs, task.checkpoint_path)


# --------------------------------------------------------------------------- local pool
PIN_TIMEOUT_S = 30  # how long a new worker waits for its share of the cores


def _pin_worker(shares):
    """Pool initializer: take one share of the cores and pin every thread of this process.

    The thread-count variables were already in the environment this process was
    spawned with (numpy and numba read them when they load, before any
    initializer runs); the affinity is set here for all existing threads, since
    a thread pool started at import time would keep the old mask.
    """
    try:
        # Not get_nowait: the parent's queue feeds its items from a background thread,
        # which a loaded machine may not have run yet when this worker starts; there
        # is one share per worker, so waiting is safe (and bounded, should one be lost).
        share = shares.get(timeout=PIN_TIMEOUT_S)
    except (queue.Empty, OSError):
        return
    if not hasattr(os, "sched_setaffinity"):
        return
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, share)
        except OSError:  # a thread may end meanwhile; pinning is best effort
            pass


@contextmanager
def _environment(values):
    """Set environment variables for the duration (children spawned meanwhile inherit them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalPool:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes, each pinned to its
    share of the cores, with the thread counts of NumPy's BLAS, OpenMP and Numba set
    to that share before they load (so two trials on two cores do not fight).

    A worker that dies (killed, out of memory, crashed) breaks the pool; the pool
    is rebuilt and the trials that were running are retried, one suspect at a
    time, and a trial whose worker dies twice is recorded as ``"failed"``.
    """

    def __init__(self, workers=None, cores=None):
        self.cores = list(available_cores() if cores is None else cores)
        self.workers = int(workers) if workers is not None else len(self.cores)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.shares = core_shares(self.workers, self.cores)
        self.threads = len(self.shares[0])
        self.description = (f"local pool of {self.workers} processes, {self.threads} "
                            f"thread{'s' if self.threads > 1 else ''} each")
        self._context = multiprocessing.get_context("spawn")
        self._pool = None
        self._env = None

    def __enter__(self):
        self._env = _environment({k: self.threads for k in THREAD_VARIABLES})
        self._env.__enter__()  # held while the pool lives: it spawns workers on demand
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._terminate()  # interrupted: do not wait for the running trials
        self._close()
        self._env.__exit__(exc_type, exc, tb)
        return False

    def _terminate(self):
        """Stop the workers now; their trials leave no row and run again on a restart."""
        processes = getattr(self._pool, "_processes", None) or {}
        for process in list(processes.values()):
            try:
                process.terminate()
            except (OSError, AttributeError):
                pass

    def _open(self):
        shares = self._context.Queue()
        for share in self.shares:
            shares.put(share)
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context,
                                            initializer=_pin_worker, initargs=(shares,))

    def _close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, trial_fn, tasks):
        pending = deque(tasks)
        crashes = Counter()
        running = {}  # future -> task
        if self._pool is None:
            self._open()
        while pending or running:
            broken = self._fill(trial_fn, pending, running, crashes)
            if not broken:
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True  # settled with the others in _recover
                        continue
                    except Exception as exc:  # the task or its result could not be pickled
                        outcome = _crash_outcome(task=running[future],
                                                 message=f"{type(exc).__name__}: {exc}")
                    yield running.pop(future), outcome
            if broken:
                yield from self._recover(running, pending, crashes)

    def _fill(self, trial_fn, pending, running, crashes):
        """Submit tasks up to one per worker, with at most one crash suspect at a time.

        Returns True when the pool turned out to be broken (the task goes back).
        """
        suspect_running = any(crashes[t.trial_id] for t in running.values())
        skipped = []
        broken = False
        while pending and len(running) < self.workers:
            task = pending.popleft()
            if crashes[task.trial_id]:
                if suspect_running:
                    skipped.append(task)
                    continue
                suspect_running = True
            try:
                future = self._pool.submit(execute_trial, trial_fn, task.config, task.epochs,
                                           task.checkpoint_path)
            except BrokenProcessPool:
                skipped.append(task)
                broken = True
                break
            running[future] = task
        pending.extendleft(reversed(skipped))
        return broken

    def _recover(self, running, pending, crashes):
        """The pool broke: settle what was running, retry or fail it, start a new pool."""
        cf.wait(running)
        retry = []
        for future, task in running.items():
            try:
                yield task, future.result()
                continue
            except BrokenProcessPool:
                pass
            except Exception as exc:
                yield task, _crash_outcome(task, f"{type(exc).__name__}: {exc}")
                continue
            crashes[task.trial_id] += 1
            if crashes[task.trial_id] >= 2:
                yield task, _crash_outcome(
                    task, "the worker process died twice while running this trial (killed, "
                          "out of memory, or crashed; if every trial fails so, check that the "
                          "script starting the sweep runs it under "
                          "if __name__ == '__main__':)")
            else:
                retry.append(task)
        running.clear()
        pending.extendleft(reversed(retry))
        self._close()
        self._open()


# --------------------------------------------------------------------------- dask
def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"--cluster needs Dask's distributed package ({exc}); install it "
                          f"with: pip install 'minigrad[cluster]'") from None
    return distributed


def _dask_trial(trial_fn, config, epochs, checkpoint_path, host_threads):
    """Runs on a Dask worker: cap Numba's threads at this host's share, then the trial."""
    threads = None
    try:
        from distributed import get_worker
        host = urlparse(get_worker().address).hostname
        total = host_threads.get(host)
        if total:
            threads = max(1, len(available_cores()) // total)
    except (ImportError, ValueError):  # not on a worker: leave the defaults
        pass
    return execute_trial(trial_fn, config, epochs, checkpoint_path, threads=threads)


class DaskExecutor:
    """Trials as tasks on a Dask ``distributed`` scheduler.

    ``cluster``: a scheduler address (``"tcp://host:8786"``), a cluster object
    (``LocalCluster``, ...), or a ``distributed.Client`` (used as is, not closed).
    Workers need minigrad, the trial function's module and the data, at the same
    paths; checkpoints (for halving) must be on a file system they share.
    Each trial's Numba threads are capped at its host's cores divided by the
    worker threads on that host.
    """

    def __init__(self, cluster):
        distributed = _import_distributed()
        self._own_client = not isinstance(cluster, distributed.Client)
        if isinstance(cluster, distributed.Client):
            self.client = cluster
        else:
            try:
                self.client = distributed.Client(cluster, timeout="30s", set_as_default=False)
            except OSError as exc:
                raise ConnectionError(f"could not reach the Dask scheduler at {cluster!r}: "
                                      f"{exc}") from None
        self.address = self.client.scheduler.address
        self.workers = None
        self.description = f"Dask cluster at {self.address}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._own_client:
            self.client.close()
        return False

    def _host_threads(self):
        try:  # newer versions list only a few workers unless asked for all
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:
            workers = self.client.scheduler_info()["workers"]
        totals = Counter()
        for address, info in workers.items():
            totals[urlparse(address).hostname] += int(info.get("nthreads", 1))
        self.workers = sum(totals.values())
        return dict(totals)

    def run(self, trial_fn, tasks):
        distributed = _import_distributed()
        host_threads = self._host_threads()
        batch = uuid.uuid4().hex[:8]
        futures = {}
        try:
            for task in tasks:
                future = self.client.submit(
                    _dask_trial, trial_fn, task.config, task.epochs, task.checkpoint_path,
                    host_threads, pure=False,
                    key=f"minigrad-trial-{task.trial_id}-{task.epochs}-{batch}")
                futures[future] = task
            for future in distributed.as_completed(list(futures), loop=self.client.loop):
                task = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # KilledWorker, or the task could not be sent
                    outcome = _crash_outcome(task, f"{type(exc).__name__}: {exc}")
                finally:
                    future.release()
                yield task, outcome
        finally:
            if futures:  # interrupted: the cluster (maybe the user's own) must not run on
                self.client.cancel(list(futures))

