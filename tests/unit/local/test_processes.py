"""Nothing the local pipeline starts may outlive it: the watchdog stops the whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from fraudstream.local.processes import Supervised
from fraudstream.paths import REPO
from tests.support.wait import wait_for

# A command that starts a grandchild, as PyFlink starts its JVM: both must go.
FAMILY = ["bash", "-c", "sleep 300 & echo $! > \"$1\"; sleep 300", "family"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def wait_gone(pids: list[int], timeout: float = 30) -> bool:
    return wait_for(lambda: not any(alive(p) for p in pids), timeout, message=f"processes {pids} still alive")


def wait_file(path: Path, timeout: float = 30) -> int:
    return int(wait_for(lambda: path.is_file() and path.read_text().strip(), timeout, message=f"{path} not written"))


def test_stop_ends_the_command_and_everything_it_started(tmp_path):
    job = Supervised("family", [*FAMILY, str(tmp_path / "grandchild")], tmp_path / "out.log")
    job.start()
    grandchild = wait_file(tmp_path / "grandchild")
    job.stop(grace=5)
    assert wait_gone([job.process.pid, grandchild])


def test_a_command_that_exits_takes_what_it_left_behind_and_reports_its_code(tmp_path):
    job = Supervised("exits", ["bash", "-c", "sleep 300 & echo $! > \"$1\"; exit 3", "x", str(tmp_path / "left")],
                     tmp_path / "out.log")
    job.start()
    left = wait_file(tmp_path / "left")
    job.process.wait(timeout=30)
    assert job.returncode == 3 and not job.running
    assert wait_gone([left])


# The parent takes SIGHUP's default action, as a process on a terminal does: one started under nohup (or by a
# test runner that ignores SIGHUP) inherits the ignore and would outlive the hangup by design.
PARENT = """
import os, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_DFL)
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from fraudstream.local.processes import Supervised
job = Supervised("family", {family!r} + [sys.argv[2]], Path(sys.argv[3]))
job.start()
print(job.process.pid, flush=True)
time.sleep(300)
"""


def _orphaned_by(tmp_path: Path, how) -> list[int]:
    """Start a parent that supervises a family, end the parent with ``how``; returns the family's pids."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(family=FAMILY), str(REPO), str(tmp_path / "grandchild"),
                               str(tmp_path / "out.log")], stdout=subprocess.PIPE, text=True)
    watchdog = int(parent.stdout.readline())
    grandchild = wait_file(tmp_path / "grandchild")
    how(parent)
    parent.wait(timeout=30)
    return [watchdog, grandchild]


def test_a_parent_killed_without_cleaning_up_leaves_nothing_behind(tmp_path):
    assert wait_gone(_orphaned_by(tmp_path, lambda p: p.send_signal(signal.SIGKILL)))


def test_a_closed_terminal_leaves_nothing_behind(tmp_path):
    assert wait_gone(_orphaned_by(tmp_path, lambda p: p.send_signal(signal.SIGHUP)))
