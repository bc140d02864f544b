"""The GIL is released while streamfit works and waits, and Ctrl-C (SIGINT) interrupts a
loader's `next()` and `train`: measured by what a Python thread counts and by what child
processes report, never by how long anything took."""

import gc
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import streamfit

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="counts threads in /proc")

CHILD = Path(__file__).with_name("interrupt_child.py")

# Only a guard against hanging: a child that ignores Ctrl-C runs for hours.
HANG_GUARD_S = 30


class GilCounter:
    """A Python thread that counts while it holds the GIL.

    While it runs, the switch interval is a minute, so the thread never takes the GIL from the
    main thread between two bytecodes: it can count only while the main thread has released
    the GIL in a blocking call. A call that holds the GIL throughout leaves the count where it
    was, exactly (the garbage collector, whose finalizers may release the GIL, is off
    meanwhile). Every 1,000 counts the thread sleeps 50 µs, giving the GIL back, so a call
    that wants the GIL back (to check for signals, or to return) is not kept waiting."""

    def __enter__(self):
        self.count = 0
        self.stop = False
        gc.collect()
        gc.disable()
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(60)
        self.thread = threading.Thread(target=self._run, name="gil-counter")
        self.thread.start()
        return self

    def _run(self):
        while not self.stop:
            for _ in range(1000):
                self.count += 1
            time.sleep(50e-6)

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        sys.setswitchinterval(self.interval)
        gc.enable()

    def during(self, call):
        """How far the count advanced while `call()` ran, and what it returned."""
        start = self.count
        result = call()
        return self.count - start, result


def test_the_gil_is_released_while_next_waits_for_a_batch(slow_dataset):
    loader = streamfit.Loader(slow_dataset, batch_size=256, shuffle_buffer=200_000, readers=1)
    it = iter(loader)
    with GilCounter() as counter:
        held, _ = counter.during(lambda: sum(range(3_000_000)))
        # The first batch waits until the shuffle buffer holds every row: about a second of
        # reading 20,000 row groups on the pipeline's threads.
        released, (x, y) = counter.during(lambda: next(it))
    assert held == 0
    assert released >= 10_000, released
    assert x.shape == (256, 3) and y.shape == (256,)


def test_the_gil_is_released_while_train_trains(dataset):
    with GilCounter() as counter:
        held, _ = counter.during(lambda: sum(range(3_000_000)))
        released, report = counter.during(lambda: streamfit.train(
            dataset, epochs=20, batch_size=16, shuffle_buffer=600, no_eval=True, threads=1))
    assert held == 0
    assert released >= 10_000, released
    assert report["iterations"] == 20 * 313  # 20 × ceil(5000 / 16)


def start_child(*args):
    return subprocess.Popen([sys.executable, str(CHILD), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(child, expected):
    line = child.stdout.readline()
    if line != expected + "\n":
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the child printed {line!r}, not {expected!r}:\n{err}")


def ended_by_ctrl_c(child):
    """Waits for a child that was sent SIGINT; asserts it ended as Python ends on an unhandled
    KeyboardInterrupt and returns the JSON line it printed first."""
    try:
        out, err = child.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail(f"the child was still running {HANG_GUARD_S} s after Ctrl-C")
    assert child.returncode == -signal.SIGINT, err
    assert err.rstrip().splitlines()[-1] == "KeyboardInterrupt", err
    return json.loads(out.splitlines()[-1])


def test_ctrl_c_interrupts_a_next_that_waits(slow_dataset):
    # The child sends itself SIGINT once its main thread is inside `next()`, which waits about
    # a second for its first batch.
    report = ended_by_ctrl_c(start_child("next", slow_dataset))
    # KeyboardInterrupt came out of the waiting call itself: it yielded no batch (a wait
    # deaf to signals returns the first batch and the interrupt is raised after it).
    assert report["batches"] == 0
    # The reader and the shuffle thread were still working; close() stopped and joined them.
    assert report["threads_running"] == 2
    assert report["threads_after_close"] == 0
    # Nothing was lost: the next call yielded the epoch's first batch.
    assert report["went_on_with_the_first_batch"] is True


def test_ctrl_c_ends_an_endless_loop_over_a_loader(dataset):
    child = start_child("loop", dataset)
    wait_for_line(child, "iterating")
    child.send_signal(signal.SIGINT)
    report = ended_by_ctrl_c(child)
    assert report["threads_after_close"] == 0


def test_ctrl_c_stops_train_with_a_checkpoint_that_resumes_exactly(dataset, tmp_path):
    child = start_child("train", dataset, tmp_path / "ckpt")
    # Printed once the child's main thread has released the GIL in `train` (a million epochs).
    wait_for_line(child, "training")
    child.send_signal(signal.SIGINT)
    ended_by_ctrl_c(child)
    # The newest checkpoint is the one written when it stopped (each epoch's end writes one too).
    stopped_at = max(int(p.name[5:17]) for p in (tmp_path / "ckpt").glob("ckpt-*.sfck"))
    # Resumed with the epochs that finish the interrupted one (the epoch count is not one of
    # the settings a checkpoint checks under a constant learning rate), the run ends with the
    # parameters of an uninterrupted run of as many epochs.
    options = dict(batch_size=64, shuffle_buffer=600, no_eval=True, threads=1)
    epochs = stopped_at // 79 + 1  # 79 = ceil(5000 / 64) steps an epoch
    resumed = streamfit.train(dataset, epochs=epochs, checkpoint_dir=tmp_path / "ckpt",
                              resume="auto", save_model=tmp_path / "resumed.json", **options)
    assert resumed["resumed"]["from_iteration"] == stopped_at > 0
    assert resumed["iterations"] == epochs * 79
    streamfit.train(dataset, epochs=epochs, save_model=tmp_path / "whole.json", **options)
    whole, again = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "resumed"))
    assert again["weights"] == whole["weights"] and again["bias"] == whole["bias"]
