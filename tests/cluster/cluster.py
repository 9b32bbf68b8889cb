"""A cluster of hosts on one machine, each a network namespace of its own, and its lifetime.

The shape is a switch and its hosts: a namespace holding a Linux bridge, and one namespace per
host joined to it by a veth pair. Each pair is created inside the namespaces (`ip -n SWITCH link
add ... peer name eth0 netns HOST`), so no link ever appears in the machine's own namespace. A
host has `lo` and `eth0` with its address in SUBNET, and no other route: traffic cannot leave the
namespaces the cluster made.

Everything a cluster made goes when it closes: on leaving its `with` (an exception included),
on SIGINT or SIGTERM of the test process (a handler, while any cluster is open), and at exit.
Processes started on a host are stopped by their PID, anything else still inside a namespace is
killed by its PID, then the namespaces are deleted. Leftovers of earlier runs that died without
cleaning up (namespaces.py) are removed when a cluster starts.
"""

import atexit
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

from . import namespaces
from .faults import NetworkFaults
from .lag import Lags
from .namespaces import ClusterUnavailable
from .netns_thread import NamespaceThread

# Every cluster's hosts take their addresses from this /24, in the order they are added (.1 up).
SUBNET = ipaddress.ip_network("10.77.0.0/24")
HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
SWITCH = "switch"

_serials = itertools.count(1)


def stop_process(proc, timeout=5):
    """Ends a process started on a host: SIGTERM (and SIGCONT, should it be paused), SIGKILL if
    it is still there after `timeout` seconds; reaps it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        os.kill(proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class Host:
    """One machine of the cluster: its `name`, its namespace `netns`, its `address`.
    `popen`/`run` start a command on it, `call` runs Python code in its network namespace."""

    def __init__(self, name, netns, address):
        self.name = name
        self.netns = netns
        self.address = address
        self.processes = []  # what popen started, stopped at close
        self._thread = NamespaceThread(netns)

    def __repr__(self):
        return f"<host {self.name} {self.address}>"

    def command(self, cmd):
        """`cmd` as it runs on this host: `ip netns exec` joins the namespace and execs `cmd`,
        so the process started is `cmd` itself, with its PID."""
        return ["ip", "netns", "exec", self.netns, *cmd]

    def popen(self, cmd, **kwargs):
        """subprocess.Popen of `cmd` on this host; the cluster stops it at its close if it still
        runs."""
        proc = subprocess.Popen(self.command(cmd), **kwargs)
        self.processes.append(proc)
        return proc

    def run(self, cmd, **kwargs):
        """subprocess.run of `cmd` on this host."""
        return subprocess.run(self.command(cmd), **kwargs)

    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) in this host's network namespace (netns_thread.py): its sockets
        connect and bind as this host. Calls are run one at a time."""
        return self._thread.call(fn, *args, **kwargs)

    def pids(self):
        """Every process running on this host, whoever started it."""
        return namespaces.pids(self.netns)

    def close(self):
        for proc in self.processes:
            stop_process(proc)
        self._thread.close()


class Cluster:
    """A switch and the hosts named in `hosts` (more with add_host). Use it with `with`, or
    start() and close(). start() raises ClusterUnavailable where the machine cannot make
    network namespaces."""

    def __init__(self, hosts=()):
        self._wanted = list(hosts)
        self.prefix = None  # of every namespace name, once started
        self.hosts = {}
        self.faults = NetworkFaults()
        self.lags = Lags()

    def start(self):
        if os.geteuid() != 0:
            raise ClusterUnavailable(f"network namespaces need root (this is uid {os.geteuid()})")
        if shutil.which("ip") is None:
            raise ClusterUnavailable("ip (iproute2) not found: build/install-deps installs it")
        namespaces.remove_leftovers()
        self.prefix = namespaces.run_prefix(next(_serials))
        _register(self)  # from here on a signal or the exit cleans up
        try:
            self._switch = self.prefix + SWITCH
            namespaces.add(self._switch)
            namespaces.ip("link", "add", "br0", "type", "bridge", netns=self._switch)
            namespaces.ip("link", "set", "br0", "up", netns=self._switch)
            for name in self._wanted:
                self.add_host(name)
        except BaseException:
            _close_all([self])  # what went wrong here is the error to see
            raise
        return self

    def add_host(self, name):
        """A new host `name`, linked to the switch, with the next address of SUBNET."""
        if not HOST_NAME.match(name) or name == SWITCH or name in self.hosts:
            raise ValueError(f"bad or repeated host name {name!r}")
        index = len(self.hosts) + 1
        if index >= SUBNET.num_addresses - 1:
            raise ValueError(f"no address left in {SUBNET}")
        address = str(SUBNET.network_address + index)
        netns = self.prefix + name
        namespaces.add(netns)
        port = f"v{index}"  # the switch's end of the pair
        namespaces.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns,
                      netns=self._switch)
        namespaces.ip("link", "set", port, "master", "br0", "up", netns=self._switch)
        namespaces.ip("addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0", netns=netns)
        namespaces.ip("link", "set", "eth0", "up", netns=netns)
        namespaces.ip("link", "set", "lo", "up", netns=netns)
        host = Host(name, netns, address)
        self.hosts[name] = host
        return host

    def __getitem__(self, name):
        return self.hosts[name]

    def _host_list(self, which):
        """A host, a host's name, or an iterable of either, as a list of hosts."""
        if isinstance(which, (Host, str)):
            which = [which]
        return [self.hosts[h] if isinstance(h, str) else h for h in which]

    def partition(self, senders, receivers, both_ways=False):
        """What `senders` send to `receivers` is dropped on arrival (with `both_ways`, the
        reverse too); hosts or names, one or several. Returns the fault (fault.heal())."""
        return self.lose(senders, receivers, 100, both_ways)

    def lose(self, senders, receivers, percent, both_ways=False):
        """As partition(), for `percent` of the packets at random."""
        senders, receivers = self._host_list(senders), self._host_list(receivers)
        return self.faults.drop(senders, receivers, percent, both_ways)

    def enable_lag(self, hosts):
        """Lets `hosts` (hosts or names) lag later (lag.py): each gets a delaying relay that
        every TCP connection it opens to another host of the cluster from now on goes through.
        Call it before the connections to be delayed are made; add every host first."""
        for host in self._host_list(hosts):
            others = [h.address for h in self.hosts.values() if h is not host]
            self.lags.enable(host, others)

    def lag(self, senders, receivers, delay_ms, jitter_ms=0):
        """Delays both ways of each connection a host of `senders` opens to one of `receivers`
        by `delay_ms` plus up to `jitter_ms` at random, at once. Returns the lag (lag.heal())."""
        return self.lags.add(self._host_list(senders), self._host_list(receivers), delay_ms,
                             jitter_ms)

    def heal(self):
        """Every network fault and lag removed."""
        self.faults.heal_all()
        self.lags.heal_all()

    def close(self):
        """Removes everything the cluster made. Safe to call again, also from a signal handler
        that interrupted it: each step finds what is left."""
        if self.prefix is None:
            return
        errors = []
        for host in list(self.hosts.values()):
            try:
                host.close()
            except Exception as e:  # go on: the namespaces must go whatever happened
                errors.append(e)
        self.faults.active.clear()  # the rules go with the namespaces
        self.lags.active.clear()  # the relays are among the hosts' processes
        for name in namespaces.listed():
            if name.startswith(self.prefix):
                try:
                    namespaces.remove(name)
                except Exception as e:
                    errors.append(e)
        _unregister(self)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self if self.prefix is not None else self.start()

    def __exit__(self, *exc):
        self.close()


# ---- cleanup on a signal and at exit -------------------------------------------------------

_live = []  # the clusters open in this process
_previous = {}  # signal -> the handler ours replaced
_atexit_done = []


def _register(cluster):
    if not _atexit_done:
        atexit.register(_close_all)
        _atexit_done.append(True)
    if not _live and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if previous not in (signal.SIG_IGN, None):
                _previous[sig] = signal.signal(sig, _on_signal)
    _live.append(cluster)


def _unregister(cluster):
    if cluster in _live:
        _live.remove(cluster)
    if not _live and threading.current_thread() is threading.main_thread():
        for sig, handler in _previous.items():
            if signal.getsignal(sig) is _on_signal:
                signal.signal(sig, handler)
        _previous.clear()


def _close_all(clusters=None):
    for cluster in list(_live if clusters is None else clusters):
        try:
            cluster.close()
        except Exception as e:  # the next start removes what is left
            print(f"cluster {cluster.prefix}: cleanup failed: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    """Cleans up, then does what the signal did before: Python's SIGINT handler raises
    KeyboardInterrupt; a default action (SIGTERM's: the process ends) is taken again."""
    previous = _previous.get(signum, signal.SIG_DFL)
    _close_all()
    if callable(previous):
        previous(signum, frame)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
