"""The conftest's teardown check catches every kind of leak, names where it started, and honours allow_leaks.

An inner pytest run (pytester, in a subprocess, with a copy of tests/conftest.py) holds a test
per kind of leak; each must end in a teardown error that names the kind and the test file's
line that started it, after a short grace, while the clean and the allowed tests pass.
"""
import os
import re
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

LEAKY = textwrap.dedent('''
    import threading

    import pytest
    from PySide6.QtCore import QMetaObject, QObject, QRunnable, QThread, QThreadPool, QTimer, QVariantAnimation
    from superqt.utils import create_worker

    KEEP = []  # module-level: the leaked objects outlive their test, as real leaks do
    RELEASE = threading.Event()


    class Slow(QRunnable):
        def run(self):
            RELEASE.wait(0.5)


    def test_pool_runnable(qtbot):
        QThreadPool.globalInstance().start(Slow())  # <- pool-runnable


    def test_pool_callable(qtbot):
        QThreadPool.globalInstance().start(lambda: RELEASE.wait(0.5))  # <- pool-callable


    def test_superqt_worker(qtbot):
        KEEP.append(create_worker(RELEASE.wait, 0.5, _start_thread=True))  # <- superqt


    def test_qthread(qtbot):
        thread = QThread()
        KEEP.append(thread)
        thread.start()  # <- qthread


    def test_timer_without_parent(qtbot):
        timer = QTimer()
        KEEP.append(timer)
        timer.start(1000)  # <- timer-no-parent


    def test_timer_with_parent(qtbot):
        holder = QObject()
        KEEP.append(holder)
        timer = QTimer(holder)
        timer.setInterval(1000)
        timer.start()  # <- timer-parent


    def test_timer_started_from_cpp(qtbot):
        timer = QTimer()  # <- timer-created
        KEEP.append(timer)
        timer.setInterval(1000)
        QMetaObject.invokeMethod(timer, "start")


    def test_single_shot(qtbot):
        QTimer.singleShot(10_000, lambda: None)  # <- single-shot


    def test_single_shot_with_context(qtbot):
        holder = QObject()
        KEEP.append(holder)
        QTimer.singleShot(10_000, holder, lambda: None)  # <- single-shot-context


    def test_animation(qtbot):
        animation = QVariantAnimation()
        KEEP.append(animation)
        animation.setDuration(10_000)
        animation.setStartValue(0.0)
        animation.setEndValue(1.0)
        animation.start()  # <- animation


    def test_python_thread():
        threading.Thread(target=RELEASE.wait, args=(0.5,)).start()  # <- thread


    def test_clean(qtbot):
        timer = QTimer()
        timer.start(1000)
        timer.stop()
        fired = []
        QTimer.singleShot(0, lambda: fired.append(1))
        qtbot.waitUntil(lambda: bool(fired))
        holder = QObject()
        QTimer.singleShot(10_000, holder, lambda: None)
        holder.deleteLater()  # its context gone, Qt drops the call: nothing pending
        done = threading.Event()
        QThreadPool.globalInstance().start(done.set)
        assert QThreadPool.globalInstance().waitForDone(5000) and done.is_set()
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()


    @pytest.mark.allow_leaks("timers", "single_shots")
    def test_allowed(qtbot):
        timer = QTimer()
        KEEP.append(timer)
        timer.start(1000)
        QTimer.singleShot(10_000, lambda: None)


    @pytest.mark.allow_leaks("timer")
    def test_misspelt_kind():
        pass
''').lstrip()

LEAKS = {  # test -> (kind, marker of the line that started it)
    "test_pool_runnable": ("pool", "pool-runnable"),
    "test_pool_callable": ("pool", "pool-callable"),
    "test_superqt_worker": ("pool", "superqt"),
    "test_qthread": ("qthreads", "qthread"),
    "test_timer_without_parent": ("timers", "timer-no-parent"),
    "test_timer_with_parent": ("timers", "timer-parent"),
    "test_timer_started_from_cpp": ("timers", "timer-created"),
    "test_single_shot": ("single_shots", "single-shot"),
    "test_single_shot_with_context": ("single_shots", "single-shot-context"),
    "test_animation": ("animations", "animation"),
    "test_python_thread": ("threads", "thread"),
}


def line_of(marker):
    lines = LEAKY.splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.endswith(f"# <- {marker}"))


def run_leaky(pytester):
    """Run the leaky tests with this suite's conftest and marker, in a fresh process."""
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nqt_api = pyside6\nmarkers = allow_leaks(*kinds): see conftest\n")
    pytester.makepyfile(test_leaky=LEAKY)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--durations=0", "--durations-min=0")


def errors_by_test(output):
    """The error text pytest printed for each test's setup or teardown."""
    parts = re.split(r"_{3,} ERROR at (?:setup|teardown) of (\w+) _{3,}", output)
    return {test: text.split("\n===")[0] for test, text in zip(parts[1::2], parts[2::2])}


def test_every_kind_of_leak_fails_naming_where_it_started(pytester):
    result = run_leaky(pytester)
    output = result.stdout.str()
    errors = errors_by_test(output)
    wrong = []
    for test, (kind, marker) in sorted(LEAKS.items()):
        text = errors.get(test, "(no teardown error)")
        for expected in (f"[{kind}]", f"test_leaky.py:{line_of(marker)} in {test}", f'allow_leaks("{kind}")'):
            if expected not in text:
                wrong.append(f"{test}: {expected!r} not in:\n{text}")
    assert not wrong, "\n\n".join(wrong)
    # a library's start names the library, then the test that called it
    assert re.search(r"superqt/utils/_qthreading\.py:\d+ in start ← test_leaky\.py:\d+ in test_superqt_worker",
                     errors["test_superqt_worker"])
    # the clean test and the allowed leaks pass; a misspelt kind is an error, not a silent opt-out
    assert re.search(r"PASSED test_leaky\.py::test_clean\b", output), output[-3000:]
    assert re.search(r"PASSED test_leaky\.py::test_allowed\b", output)
    assert "allow_leaks needs kinds from" in errors["test_misspelt_kind"]
    result.assert_outcomes(passed=len(LEAKS) + 2, errors=len(LEAKS) + 1)
    # a short grace, not the 2 s wait of the old fixture
    teardown = re.search(r"([\d.]+)s teardown\s+test_leaky\.py::test_timer_without_parent", output)
    assert float(teardown.group(1)) < 1.0


def test_torch_runs_on_one_thread_in_tests():
    import torch

    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == 1
