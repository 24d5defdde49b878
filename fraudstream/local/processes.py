"""Processes the local pipeline starts (the Kafka broker, the Flink job), and the guarantee that none outlives us.

Each runs under a watchdog, `python -m fraudstream.local.processes --parent PID -- COMMAND...`: the
watchdog leads a new session, so the command and whatever it starts (PyFlink's JVM) share its process
group, and it stops that whole group, SIGTERM then SIGKILL, when any of these happens:
- we ask it to (Supervised.stop sends SIGTERM to the group),
- our process dies, however it died: the kernel tells the watchdog (PR_SET_PDEATHSIG) and the
  watchdog also polls its parent, so a SIGKILL or a closed terminal leaves nothing behind,
- the command exits on its own (anything it left in the group goes with it).
Standard library only: the watchdog runs before anything else is imported.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_SECONDS = 20.0  # between SIGTERM and SIGKILL of the group
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1


class Supervised:
    """One command under a watchdog; its output goes to ``log_path``."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.command, self.log_path, self.env, self.cwd = name, command, log_path, env, cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fraudstream.local.processes", "--parent", str(os.getpid()), "--", *self.command],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                start_new_session=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop the command and everything it started; returns when the watchdog has exited."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)  # the watchdog stops its group, then exits
                self.process.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        else:  # the watchdog ended; make sure nothing of its group is left
            _kill_group(self.process.pid, signal.SIGKILL)


    def kill(self) -> None:
        """Kill the command and everything it started at once (SIGKILL): a hung process gets no grace."""
        if self.process is not None:
            _kill_group(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def watch(parent: int, command: list[str]) -> int:
    """The watchdog: run ``command`` in this process group until it exits or it must stop; returns its code."""
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    try:  # Linux: a signal when the parent dies, even by SIGKILL
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    child = subprocess.Popen(command)
    group = os.getpgid(0)
    while not stopping and child.poll() is None and os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    code = child.poll()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what follows signals our own group too
    _kill_group(group, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and (child.poll() is None or _others_in_group(group)):
        time.sleep(POLL_SECONDS)
    if child.poll() is None or _others_in_group(group):
        _kill_group(group, signal.SIGKILL)  # takes this watchdog too; the exit code is then -9
    child.wait()
    return code if code is not None else child.returncode


def _others_in_group(group: int) -> bool:
    """Is any process other than this watchdog (and its reaped child) left in the group?"""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":  # pgrp is the fifth field; zombies do not count
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run a command that must not outlive its parent")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return watch(args.parent, command)


if __name__ == "__main__":
    sys.exit(main())
