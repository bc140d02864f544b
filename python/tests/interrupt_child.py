"""The child process of test_interrupt.py: iterates a loader or trains until Ctrl-C (SIGINT).

    python interrupt_child.py MODE DATA [CHECKPOINT_DIR]

MODE is one of:

- `next`: one `next()` that waits for a shuffle buffer of every row to fill; a helper thread
  sends SIGINT to this process as soon as the main thread has released the GIL in that call;
  then, before the loader is closed, one more `next()`, compared with a fresh loader's first
  batch;
- `loop`: epoch after epoch, forever; prints `iterating` after the first batch and waits for
  the test to send SIGINT;
- `train`: `streamfit.train` for a million epochs with checkpoints in CHECKPOINT_DIR; prints
  `training` once the main thread has released the GIL in `train`, for the test to send SIGINT.

On KeyboardInterrupt it prints one JSON line (what the loader had yielded, the pipeline's
threads then and after `close()`, in `next` mode whether the loader went on with the batch
it would have yielded) and raises it again, so the process ends as Python ends on
an unhandled Ctrl-C: the traceback on stderr and death by SIGINT.
"""

import json
import os
import signal
import sys
import threading
import time

import streamfit


def num_threads():
    return len(os.listdir("/proc/self/task"))


def once_the_gil_is_released(action):
    """Runs `action` on a helper thread once the main thread gives up the GIL in a blocking
    call. The switch interval of a minute means the helper never takes the GIL between two of
    the main thread's bytecodes, only when the main thread releases it (here: in the call to
    streamfit that follows)."""
    armed = False

    def helper():
        while not armed:
            time.sleep(0.001)
        action()

    sys.setswitchinterval(60)
    thread = threading.Thread(target=helper, name="ctrl-c")
    thread.start()
    armed = True  # read by the helper
    return thread


def main():
    mode, data = sys.argv[1], sys.argv[2]
    before = num_threads()
    helper = None
    loader = None
    try:
        if mode == "next":
            loader = streamfit.Loader(data, batch_size=256, shuffle_buffer=200_000, readers=1,
                                      return_ids=True)
            it = iter(loader)
            helper = once_the_gil_is_released(lambda: os.kill(os.getpid(), signal.SIGINT))
            next(it)
        elif mode == "loop":
            loader = streamfit.Loader(data, batch_size=64, shuffle_buffer=600)
            while True:
                for i, _ in enumerate(loader):
                    if i == 0 and loader.epoch == 0:
                        print("iterating", flush=True)
        elif mode == "train":
            helper = once_the_gil_is_released(lambda: print("training", flush=True))
            streamfit.train(data, epochs=1_000_000, batch_size=64, shuffle_buffer=600,
                            no_eval=True, threads=1, checkpoint_dir=sys.argv[3])
        else:
            raise SystemExit(f"unknown mode {mode}")
    except KeyboardInterrupt:
        if helper is not None:
            helper.join()
        report = {}
        if loader is not None:
            report["batches"] = loader.state_dict()["batches"]
            report["threads_running"] = num_threads() - before
            if mode == "next":
                ids = next(it)[2]
                fresh = streamfit.Loader(data, batch_size=256, shuffle_buffer=200_000,
                                         readers=1, return_ids=True)
                first = next(iter(fresh))[2]
                report["went_on_with_the_first_batch"] = ids.tolist() == first.tolist()
                fresh.close()
            loader.close()
            report["threads_after_close"] = num_threads() - before
        print(json.dumps(report), flush=True)
        raise


if __name__ == "__main__":
    main()
