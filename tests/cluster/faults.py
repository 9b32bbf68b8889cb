"""The faults a cluster injects: on the network between two sets of hosts, and on a process.

Network faults are nftables rules in the receiver's input path, inside the receiving host's
namespace (a table of our own, `inet rhythm_faults`, made with the host's first fault and deleted
with its last): a packet from a sender in the set is dropped on arrival, always (a partition) or
with a probability (loss). Dropping on arrival is what a cut or lossy link does: the sender's send
succeeds and nothing comes back, where a drop in the sender's output path would return EPERM to it.
Only packets that arrive from the network count: a host's connection through its delay relay
(lag.py) has a leg on loopback whose replies carry the far host's address, and dropping those would
lose a reset that TCP never sends again (the client then waited 30 s for a handshake where without
the relay it reconnected at once). A one-way partition drops only what one side sends; TCP needs
both ways, so for a connection it is as good as a cut, while datagrams still pass the other way.
Faults may overlap; each heals on its own.

Process faults act on a process the test started, by its PID (or its process group: an httpd
runs as a session of its own, and its children and backup agent go with it): kill -9, and
SIGSTOP/SIGCONT, a hung host.
"""

import os
import pathlib
import re
import shutil
import signal
import time

TABLE = "inet rhythm_faults"


def nft(host, script):
    """Runs an nft script in `host`'s namespace; returns what it echoes (each rule added with
    its handle)."""
    if shutil.which("nft") is None:
        raise RuntimeError("nft not found: build/install-deps installs Debian's nftables")
    p = host.run(["nft", "--echo", "--handle", "-f", "-"], input=script, capture_output=True,
                 text=True, timeout=10)
    if p.returncode != 0:
        raise RuntimeError(f"nft in {host.name}: {p.stderr.strip()}\n{script}")
    return p.stdout


class Fault:
    """Rules that drop what `senders` send to `receivers` (and the reverse, `both_ways`): all
    of it, or `percent` of the packets at random. heal() removes them."""

    def __init__(self, faults, senders, receivers, percent, both_ways):
        self._faults = faults
        self.senders = senders
        self.receivers = receivers
        self.percent = percent
        self.both_ways = both_ways
        self.rules = {}  # receiver host -> the handle of its rule

    def __repr__(self):
        what = "partition" if self.percent == 100 else f"{self.percent}% loss"
        arrow = "<->" if self.both_ways else "->"
        return (f"<{what} {','.join(h.name for h in self.senders)} {arrow} "
                f"{','.join(h.name for h in self.receivers)}>")

    def heal(self):
        self._faults.heal(self)


class NetworkFaults:
    """The network faults active in one cluster."""

    def __init__(self):
        self.active = []

    def drop(self, senders, receivers, percent=100, both_ways=False):
        """Drops what each host of `senders` sends to each host of `receivers` (with
        `both_ways`, the reverse too; a host in both sets is not cut from itself): every packet,
        or `percent` of them."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss of {percent}%: give 0 to 100")
        sources = {}  # receiving host -> the addresses it drops
        for to, of in [(receivers, senders)] + ([(senders, receivers)] if both_ways else []):
            for receiver in to:
                sources.setdefault(receiver, set()).update(
                    h.address for h in of if h is not receiver)
        fault = Fault(self, senders, receivers, percent, both_ways)
        self.active.append(fault)
        match = "" if percent == 100 else f"numgen random mod 100 < {percent} "
        for receiver, addresses in sources.items():
            if not addresses:
                continue
            echoed = nft(receiver, f"""
add table {TABLE}
add chain {TABLE} input {{ type filter hook input priority filter; policy accept; }}
add rule {TABLE} input iifname != "lo" ip saddr {{ {', '.join(sorted(addresses))} }} {match}drop
""")
            fault.rules[receiver] = int(re.findall(r"# handle (\d+)", echoed)[-1])
        return fault

    def heal(self, fault):
        """Removes the fault's rules; a host left without any loses its table."""
        if fault not in self.active:
            return
        self.active.remove(fault)
        for receiver, handle in fault.rules.items():
            if any(receiver in f.rules for f in self.active):
                nft(receiver, f"delete rule {TABLE} input handle {handle}\n")
            else:
                nft(receiver, f"delete table {TABLE}\n")

    def heal_all(self):
        for fault in list(self.active):
            self.heal(fault)


def _signal(pid, sig, group):
    if group:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)


def _states(pid, group):
    """The states (the letter of /proc/PID/stat) of the process, or of every process of its
    group."""
    states = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name == str(pid) or (group and fields[2] == str(pid)):
            states.append(fields[0])
    return states


def kill(pid, group=False):
    """kill -9 of the process `pid` (with `group`, of every process of its group)."""
    _signal(pid, signal.SIGKILL, group)


def pause(pid, group=False, timeout=5):
    """SIGSTOP, and waits until every process it reached is stopped: a stop takes effect when a
    process is next scheduled, after kill() has returned."""
    _signal(pid, signal.SIGSTOP, group)
    deadline = time.monotonic() + timeout
    while not all(state == "T" for state in _states(pid, group)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} not stopped after {timeout}s")
        time.sleep(0.01)


def resume(pid, group=False):
    """SIGCONT: the process (or group) runs again."""
    _signal(pid, signal.SIGCONT, group)

