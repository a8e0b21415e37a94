"""The local worker pool of the image stages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_a_ctrl_c_while_the_workers_are_forked_is_not_swallowed() -> None:
    # CPython raises a SIGINT that lands during fork() inside its at-fork callbacks and
    # only prints it; the run then went on to the end. The signal is raised here at the
    # first fork, in a process of its own (an at-fork hook cannot be taken back).
    code = (f"import os, signal, sys; sys.path.insert(0, {SRC!r})\n"
            "from weaklabel.images.pool import WorkerPool\n"
            "parent, fired = os.getpid(), []\n"
            "def before():\n"
            "    if not fired and os.getpid() == parent:\n"
            "        fired.append(1)\n"
            "        signal.raise_signal(signal.SIGINT)\n"
            "os.register_at_fork(before=before)\n"
            "try:\n"
            "    with WorkerPool(2) as pool:\n"
            "        assert list(pool.imap(abs, list(range(-20, 0)))) == list(range(20, 0, -1))\n"
            "    print('swallowed')\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "interrupted", out.stderr


def test_the_workers_take_a_ctrl_c_as_before() -> None:
    code = (f"import signal, sys; sys.path.insert(0, {SRC!r})\n"
            "from weaklabel.images.pool import WorkerPool\n"
            "def mask(_):\n"
            "    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())\n"
            "with WorkerPool(2) as pool:\n"
            "    print(any(pool.imap(mask, list(range(16)))))\n"
            "print(mask(0))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr  # blocked nowhere after
