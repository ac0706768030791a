"""A `refact conform` or `refact sweep` killed with SIGKILL leaves no process behind: its
checking processes, backend workers and sweep pool all watch their parent."""

import os
import signal
import subprocess
import sys
import time

import pytest


def _children():
    """``{pid: parent pid}`` of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    text = stat.read()
                state, parent = text.rsplit(")", 1)[1].split()[:2]
                if state != "Z":
                    found[int(entry)] = int(parent)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return found


def _descendants(pid):
    table = _children()
    out, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - out
        out |= frontier
    return out


def _alive(pids):
    return set(pids) & set(_children())


@pytest.mark.parametrize("command, depth", [
    (["conform", "--backend", "numpy,reference", "--function", "sigmoid,softmax", "--cases", "default",
      "--quiet", "--timeout", "60"], 2),  # checking processes and their backend workers
    (["sweep", "--function", "sigmoid", "--backend", "numpy", "--format", "float32", "--exhaustive",
      "--workers", "2", "--quiet"], 1),
], ids=["conform", "sweep"])
def test_sigkill_leaves_no_process(tmp_path, command, depth):
    env = dict(os.environ, REFACT_CACHE_DIR=str(tmp_path / "cache"))
    parent = subprocess.Popen([sys.executable, "-m", "refact.conformance.cli", *command],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=tmp_path)
    deadline = time.monotonic() + 120
    family = set()
    while time.monotonic() < deadline:  # until the run has its processes
        family = _descendants(parent.pid)
        levels = {p for p in family if _children().get(p) != parent.pid}
        if family and (depth == 1 or levels):
            break
        time.sleep(0.2)
    assert family, "the run started no process"
    time.sleep(1.0)
    family = _descendants(parent.pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(family), f"left running: {sorted(_alive(family))}"
