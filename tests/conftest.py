"""Shared test setup: torch on one thread, Qt offscreen, the bundled samples, and leak-proof teardown.

Every test ends with a check (napari's ``_dangling_q*`` fixtures are the model): after a
20 ms grace it fails if the test left running a QThreadPool job, a QThread, an active QTimer
(with or without a parent), a pending ``QTimer.singleShot``, a running QAbstractAnimation or
a non-daemon Python thread, and names the file:line that started each. A test that means to
leave one behind says so: ``@pytest.mark.allow_leaks("timers")`` (kinds: ``LEAK_KINDS``).
"""
import os

# OpenMP/MKL threads spin on a busy 2-core machine (the receptive-field tests slow down 10-77x):
# one thread, set before anything imports torch (subprocesses of the tests inherit it too).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CONVVIZ_SETTINGS_ORG", "convviz-tests")
# Cached features would make a second run of a test skip the work it is about (cancelling, progress):
# off here; tests/core/test_feature_cache.py turns it on in a temporary folder.
os.environ["CONVVIZ_FEATURE_CACHE"] = "0"

import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from functools import wraps  # noqa: E402
from weakref import WeakKeyDictionary, ref  # noqa: E402

import pytest  # noqa: E402

GRACE_S = 0.020
CLEANUP_MS = 10_000
LEAK_KINDS = ("pool", "qthreads", "timers", "single_shots", "animations", "threads")
_HERE = os.path.abspath(__file__)
_STOP_AT = (os.sep + "_pytest" + os.sep, os.sep + "pluggy" + os.sep)


@pytest.fixture(scope="session", autouse=True)
def _torch_on_one_thread():
    """torch read OMP_NUM_THREADS at import; pin it again in case something imported torch first."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


@pytest.fixture
def sample_path():
    """Path of a bundled sample photo by short name (``cat``, ``coffee`` …), found through the package."""
    from convviz.ui.settings import sample_path as path_of

    return path_of


# ---------------------------------------------------------------------------------------------
# Where things were started


class _Sites:
    """Short call stacks for the report: the direct caller, then the project's own frames."""

    local = threading.local()  # .deferred: the singleShot whose callback runs now; .in_single_shot

    def __init__(self, root):
        self.root = str(root) + os.sep

    def name(self, path):
        if path.startswith(self.root):
            return path[len(self.root):]
        _, packages, rest = path.rpartition("site-packages" + os.sep)
        return rest if packages else path

    def here(self, skip=2, depth=3):
        """``file:line in func ← …`` from the caller of the patched Qt/threading function outwards."""
        frame, parts, project = sys._getframe(skip), [], 0
        while frame is not None and project < depth:
            path = frame.f_code.co_filename
            if any(marker in path for marker in _STOP_AT):
                break
            mine = path.startswith(self.root) and "site-packages" not in path[len(self.root):]
            if path != _HERE and (mine or not parts):
                parts.append(f"{self.name(path)}:{frame.f_lineno} in {frame.f_code.co_name}")
                project += mine
            frame = frame.f_back
        site = " ← ".join(parts) or "(unknown)"
        deferred = getattr(self.local, "deferred", None)
        return f"{site} (run by the QTimer.singleShot from {deferred})" if deferred else site


class _Job:
    """One runnable handed to a QThreadPool: queued, running or done (done None: not observable)."""

    __slots__ = ("site", "started", "done")

    def __init__(self, site):
        self.site, self.started, self.done = site, False, False


class _Shot:
    """One ``QTimer.singleShot`` call: pending until it fires, its context dies, or cleanup cancels it."""

    __slots__ = ("site", "msec", "over", "cancelled")

    def __init__(self, site, msec):
        self.site, self.msec, self.over, self.cancelled = site, msec, False, False


# ---------------------------------------------------------------------------------------------
# Tracking


class _Tracker:
    """Records what one test starts (weakly: tracking never keeps an object alive)."""

    def __init__(self, monkeypatch, sites):
        self.mp, self.sites = monkeypatch, sites
        self.timers, self.qthreads, self.animations = WeakKeyDictionary(), WeakKeyDictionary(), WeakKeyDictionary()
        self.threads = WeakKeyDictionary()
        self.jobs, self.job_of, self.pools, self.shots = [], WeakKeyDictionary(), WeakKeyDictionary(), []
        self.patched_runs = set()
        self.threads_before = set(threading.enumerate())
        self._track_python_threads()
        try:
            from PySide6 import QtCore
        except ImportError:  # a core-only environment: nothing Qt to track
            self.qt = None
            return
        self.qt = QtCore
        pool = QtCore.QThreadPool.globalInstance()
        self.global_pool_idle = pool.activeThreadCount() == 0
        self._track_timers()
        self._track_single_shots()
        self._track_pools()
        self._track_start(QtCore.QThread, self.qthreads)
        self._track_start(QtCore.QAbstractAnimation, self.animations)

    def _track_python_threads(self):
        original, threads, sites = threading.Thread.start, self.threads, self.sites

        def start(thread, *args, **kwargs):
            threads[thread] = sites.here()
            return original(thread, *args, **kwargs)

        self.mp.setattr(threading.Thread, "start", start)

    def _track_start(self, cls, table, skip_in_single_shot=False):
        original, sites = cls.start, self.sites

        def start(obj, *args, **kwargs):
            if not (skip_in_single_shot and getattr(_Sites.local, "in_single_shot", False)):
                table[obj] = sites.here()
            return original(obj, *args, **kwargs)

        self.mp.setattr(cls, "start", start)

    def _track_timers(self):
        QTimer, timers, sites = self.qt.QTimer, self.timers, self.sites
        init = QTimer.__init__

        def created(timer, *args, **kwargs):
            init(timer, *args, **kwargs)
            if not getattr(_Sites.local, "in_single_shot", False):  # that one is tracked as a singleShot
                timers.setdefault(timer, sites.here())

        self.mp.setattr(QTimer, "__init__", created)
        self._track_start(QTimer, timers, skip_in_single_shot=True)

    def _track_single_shots(self):
        QTimer, shots, sites = self.qt.QTimer, self.shots, self.sites
        original = QTimer.__dict__["singleShot"].__func__

        def single_shot(msec, *args):
            if not args or not callable(args[-1]):  # the (receiver, b"slot()") forms: left to Qt
                return original(msec, *args)
            shot, functor = _Shot(sites.here(), msec), args[-1]
            shots.append(shot)
            if len(args) == 2 and isinstance(args[0], self.qt.QObject):  # Qt drops it with its context
                args[0].destroyed.connect(lambda *_: setattr(shot, "over", True))

            def fire():
                shot.over = True
                if shot.cancelled:
                    return
                _Sites.local.deferred = shot.site
                try:
                    functor()
                finally:
                    _Sites.local.deferred = None

            _Sites.local.in_single_shot = True  # PySide makes its timer through QTimer(): not a second leak
            try:
                return original(msec, *args[:-1], fire)
            finally:
                _Sites.local.in_single_shot = False

        self.mp.setattr(QTimer, "singleShot", staticmethod(single_shot))

    def _track_pools(self):
        QThreadPool, QRunnable = self.qt.QThreadPool, self.qt.QRunnable
        start, try_start, try_take, clear = (QThreadPool.start, QThreadPool.tryStart, QThreadPool.tryTake,
                                             QThreadPool.clear)

        def track(pool, runnable):
            job = _Job(self.sites.here(skip=3))
            if isinstance(runnable, QRunnable):
                if type(runnable) is QRunnable:  # QRunnable.create(fn): its run() never reaches Python
                    job.done = None
                else:
                    self._observe_run(type(runnable))
                    self.job_of[runnable] = job
            elif callable(runnable):
                runnable = self._observed_callable(runnable, job)
            self.jobs.append((ref(pool), job))
            self.pools[pool] = True
            return runnable, job

        def tracked_start(pool, runnable, *args, **kwargs):
            runnable, _ = track(pool, runnable)
            return start(pool, runnable, *args, **kwargs)

        def tracked_try_start(pool, runnable, *args, **kwargs):
            runnable, job = track(pool, runnable)
            ok = try_start(pool, runnable, *args, **kwargs)
            job.done = job.done if ok else True
            return ok

        def tracked_try_take(pool, runnable):
            taken = try_take(pool, runnable)
            if taken and runnable in self.job_of:
                self.job_of[runnable].done = True
            return taken

        def tracked_clear(pool):
            clear(pool)
            for owner, job in self.jobs:
                if owner() is pool and not job.started:
                    job.done = True

        for name, patched in (("start", tracked_start), ("tryStart", tracked_try_start),
                              ("tryTake", tracked_try_take), ("clear", tracked_clear)):
            self.mp.setattr(QThreadPool, name, patched)

    def _observe_run(self, cls):
        if cls in self.patched_runs:
            return
        self.patched_runs.add(cls)
        original, job_of = cls.run, self.job_of

        @wraps(original)
        def run(runnable):
            job = job_of.get(runnable)
            if job is not None:
                job.started = True
            try:
                return original(runnable)
            finally:
                if job is not None:
                    job.done = True

        self.mp.setattr(cls, "run", run)

    @staticmethod
    def _observed_callable(function, job):
        def run():
            job.started = True
            try:
                return function()
            finally:
                job.done = True

        return run

    # -----------------------------------------------------------------------------------------
    # What is left

    def leaks(self, allowed):
        """``(kind, description)`` of everything still running that the test did not allow."""
        found = []
        if "threads" not in allowed:
            for thread in threading.enumerate():
                if thread not in self.threads_before and thread.is_alive() and not thread.daemon:
                    site = self.threads.get(thread, "(not started through threading.Thread.start)")
                    found.append(("threads", f"Python thread {thread.name!r} (non-daemon) still running, "
                                             f"started at {site}"))
        if self.qt is None:
            return found
        if "pool" not in allowed:
            found += self._pool_leaks()
        checks = (("qthreads", self.qthreads, "QThread still running", lambda t: t.isRunning()),
                  ("timers", self.timers, "active QTimer", lambda t: t.isActive()),
                  ("animations", self.animations, "running QAbstractAnimation",
                   lambda a: a.state() == self.qt.QAbstractAnimation.State.Running))
        for kind, table, what, alive in checks:
            if kind not in allowed:
                found += [(kind, f"{what}{_timer_detail(obj)}, started at {site}")
                          for obj, site in list(table.items()) if _alive(alive, obj)]
        if "single_shots" not in allowed:
            found += [("single_shots", f"pending QTimer.singleShot({shot.msec} ms), called at {shot.site}")
                      for shot in self.shots if not shot.over]
        return found

    def _pool_leaks(self):
        found = []
        for owner, job in self.jobs:
            busy = owner() is not None and _alive(lambda pool: pool.activeThreadCount() > 0, owner())
            if job.done is False or (job.done is None and busy):
                state = "running" if job.started else "queued" if job.done is False else "maybe running"
                found.append(("pool", f"QThreadPool job still {state}, started at {job.site}"))
        pool = self.qt.QThreadPool.globalInstance()
        if not found and self.global_pool_idle and not self.jobs and pool.activeThreadCount() > 0:
            found.append(("pool", f"{pool.activeThreadCount()} QThreadPool.globalInstance() job(s) running, "
                                  "started where Python did not see it (C++)"))
        return found

    def settle(self):
        """Let the event loop deliver what is queued (finished signals, deleteLater) during the grace."""
        app = self.qt and self.qt.QCoreApplication.instance()
        if app is not None:
            app.processEvents()
            self.qt.QCoreApplication.sendPostedEvents(None, self.qt.QEvent.Type.DeferredDelete)
        time.sleep(0.002)

    def clean_up(self, kinds):
        """After a failure: stop what leaked so the next test does not inherit it."""
        for shot in self.shots:
            shot.cancelled = True
        if self.qt is not None:
            for kind, table, stop in (("timers", self.timers, "stop"), ("animations", self.animations, "stop"),
                                      ("qthreads", self.qthreads, "quit")):
                for obj in list(table) if kind in kinds else ():
                    _alive(lambda o: getattr(o, stop)(), obj)
            for thread in list(self.qthreads) if "qthreads" in kinds else ():
                _alive(lambda t: t.wait(CLEANUP_MS), thread)
            for pool in [*self.pools, self.qt.QThreadPool.globalInstance()] if "pool" in kinds else ():
                _alive(lambda p: p.clear() or p.waitForDone(CLEANUP_MS), pool)
        for thread in threading.enumerate() if "threads" in kinds else ():
            if thread not in self.threads_before and not thread.daemon:
                thread.join(CLEANUP_MS / 1000)


def _alive(check, obj):
    """``check(obj)``, False when the C++ object is already gone."""
    try:
        return check(obj)
    except RuntimeError:
        return False


def _timer_detail(obj):
    try:
        return f" (interval {obj.interval()} ms{', single-shot' if obj.isSingleShot() else ''})"
    except (AttributeError, RuntimeError):
        return ""


def _allowed_kinds(item):
    allowed = set()
    for mark in item.iter_markers("allow_leaks"):
        unknown = [kind for kind in mark.args if kind not in LEAK_KINDS]
        if unknown or not mark.args:
            pytest.fail(f"allow_leaks needs kinds from {LEAK_KINDS}, got {mark.args!r}", pytrace=False)
        allowed.update(mark.args)
    return allowed


@pytest.fixture(autouse=True)
def _no_leaks(request, monkeypatch):
    """Fail a test that leaves a pool job, QThread, QTimer, singleShot, animation or thread running."""
    allowed = _allowed_kinds(request.node)
    tracker = _Tracker(monkeypatch, _Sites(request.config.rootpath))
    yield
    deadline = time.monotonic() + GRACE_S
    leaks = tracker.leaks(allowed)
    while leaks and time.monotonic() < deadline:
        tracker.settle()
        leaks = tracker.leaks(allowed)
    if leaks:
        tracker.clean_up({kind for kind, _ in leaks})
        kinds = ", ".join(sorted({f'"{kind}"' for kind, _ in leaks}))
        pytest.fail(f"test left {len(leaks)} thing(s) running after a {GRACE_S * 1000:.0f} ms grace:\n"
                    + "\n".join(f"  [{kind}] {text}" for kind, text in leaks)
                    + f"\nWait for them in the test (qtbot.waitSignal / waitUntil) or, where the test means it,"
                      f" mark it @pytest.mark.allow_leaks({kinds}).", pytrace=False)
