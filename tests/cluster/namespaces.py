"""Named network namespaces, made and unmade with iproute2's `ip`, under a naming scheme that says
which run made each: `rhythm-<pid>-<serial>-<name>`, the pid of the test process and a serial
of its own clusters. The scheme is what lets a run clean up after an earlier one that died
without doing it (SIGKILL, a crash): a namespace of this scheme whose pid is no longer alive is a
leftover, and only those are ever removed. Any other namespace on the machine is never touched.

A named namespace lives while its file under /run/netns exists or any process is in it, so
removing one means killing (by PID) every process still inside, then `ip netns delete`.
"""

import os
import re
import signal
import subprocess
import time

NAME = re.compile(r"^rhythm-(\d+)-(\d+)-[a-z0-9][a-z0-9-]*$")


class ClusterUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no `ip`, or `ip netns add`
    refused): a test turns the message into a skip."""


def ip(*args, netns=None, timeout=10):
    """Runs `ip [-n NETNS] ARGS...`; returns its output, raises RuntimeError with its message."""
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip() or f'exit {p.returncode}'}")
    return p.stdout


def run_prefix(serial):
    """The names of this process's cluster number `serial` start with this."""
    return f"rhythm-{os.getpid()}-{serial}-"


def listed():
    """Every named network namespace on the machine (`ip netns list`: "NAME (id: N)" lines)."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def add(name):
    """Makes the namespace `name`; a refusal means the machine cannot make namespaces."""
    try:
        ip("netns", "add", name)
    except (RuntimeError, OSError) as e:
        raise ClusterUnavailable(f"cannot create a network namespace here ({e})") from e


def pids(name):
    """The processes running in the namespace `name` (a zombie is no longer in any)."""
    try:
        return {int(p) for p in ip("netns", "pids", name).split()}
    except RuntimeError:
        return set()  # gone already


def remove(name, timeout=10):
    """Kills every process left in the namespace (SIGKILL, each by its PID), waits until none is
    left, and deletes the namespace. A namespace already gone is no error."""
    deadline = time.monotonic() + timeout
    while True:
        inside = pids(name)
        if not inside:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {sorted(inside)} do not leave namespace {name}")
        for pid in inside:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    try:
        ip("netns", "delete", name)
    except RuntimeError:
        if name in listed():
            raise


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def leftovers():
    """The namespaces of this naming scheme whose run is over: their pid is not alive."""
    out = []
    for name in listed():
        m = NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not alive(int(m.group(1))):
            out.append(name)
    return out


def remove_leftovers():
    for name in leftovers():
        remove(name)
