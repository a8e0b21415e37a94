"""The local worker pool of the image stages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

# A Ctrl-C at the first fork of the pool, in a process of its own (an at-fork hook cannot
# be taken back). The child sets SIGINT's handler itself: a suite started as a shell's
# background job inherits SIGINT ignored, and then no key can interrupt anything.
# A terminal's Ctrl-C goes to the process; the kernel hands it to any thread that does
# not block it: the main thread ("main"), or one of the threads a build already runs
# (Okt's JVM, the reader's fetch threads: "other"). The other thread's C handler only
# notes it, and the main thread raises it at its next bytecode, here still inside the
# at-fork hook, whose exceptions CPython prints and drops. The wakeup fd tells the hook
# that the other thread's C handler has run.
_CTRL_C_AT_FORK = """\
import os, signal, sys, threading; sys.path.insert(0, {src!r})
signal.signal(signal.SIGINT, signal.default_int_handler)
from weaklabel.images.pool import WorkerPool
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
parent, fired = os.getpid(), []
def before():
    if not fired and os.getpid() == parent:
        fired.append(1)
        if {where!r} == "main":
            signal.raise_signal(signal.SIGINT)
        else:
            signal.pthread_kill(other.ident, signal.SIGINT)
            os.read(r, 1)
os.register_at_fork(before=before)
try:
    with WorkerPool(2) as pool:
        assert list(pool.imap(abs, list(range(-20, 0)))) == list(range(20, 0, -1))
    print("swallowed")
except KeyboardInterrupt:
    print("interrupted")
stop.set()
"""


@pytest.mark.parametrize("where", ["main", "other"])
def test_a_ctrl_c_while_the_workers_are_forked_is_not_swallowed(where: str) -> None:
    code = _CTRL_C_AT_FORK.format(src=SRC, where=where)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert (out.stdout.strip(), out.stderr) == ("interrupted", "")


def test_the_workers_take_a_ctrl_c_as_before() -> None:
    code = (f"import signal, sys; sys.path.insert(0, {SRC!r})\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from weaklabel.images.pool import WorkerPool\n"
            "def mask(_):\n"
            "    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())\n"
            "def handler(_):\n"
            "    return signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "with WorkerPool(2) as pool:\n"
            "    print(any(pool.imap(mask, list(range(16)))))\n"
            "    print(all(pool.imap(handler, list(range(16)))))\n"
            "print(mask(0), handler(0))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    # blocked nowhere after, and Python's KeyboardInterrupt handler in every worker
    assert out.stdout.split() == ["False", "True", "False", "True"], out.stderr


def test_a_ctrl_c_mid_run_ends_the_pool_instead_of_waiting_for_ever() -> None:
    """A terminal's Ctrl-C reaches the workers too, and they die with their tasks: the
    pool's end must not wait for their results (it did, for ever, the lock held)."""
    import os
    import signal
    import time

    code = (f"import signal, sys, time; sys.path.insert(0, {SRC!r})\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from weaklabel.images.pool import WorkerPool\n"
            "def slow(x):\n"
            "    time.sleep(0.05)\n"
            "    return x\n"
            "try:\n"
            "    with WorkerPool(2) as pool:\n"
            "        it = pool.imap(slow, list(range(2000)))\n"
            "        print('started', next(it), flush=True)\n"
            "        sum(it)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("started")
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # the whole group, as a terminal sends it
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "interrupted" in out
