"""Added latency and jitter between hosts of a cluster: a delaying relay (delay_relay.py) on each
host that may lag, and an nftables rule there (`ip rhythm_lag`, a nat table of our own) that
sends every new TCP connection the host opens to another host of the cluster through it.

The relay must be in place before the connections it is to delay are made (the rule applies to
new connections only), so a cluster enables it on its hosts first (Cluster.enable_lag) and a lag
then only changes the relay's delays, at once and for open connections too. A lag of SENDERS to
RECEIVERS delays both ways of each connection a sender opens to a receiver, by the delay plus a
random share of the jitter (in order: jitter never reorders a stream); connections the receivers
open are not delayed. Lags may overlap; each heals on its own, and the largest active one holds.
"""

import pathlib
import sys

from .delay_relay import MARK
from .faults import nft

RELAY = pathlib.Path(__file__).resolve().parent / "delay_relay.py"
TABLE = "ip rhythm_lag"


class Lag:
    """A lag of `senders` to `receivers`; heal() removes it."""

    def __init__(self, lags, senders, receivers, delay_ms, jitter_ms):
        self._lags = lags
        self.senders = senders
        self.receivers = receivers
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms

    def __repr__(self):
        return (f"<lag {','.join(h.name for h in self.senders)} -> "
                f"{','.join(h.name for h in self.receivers)}: {self.delay_ms} ms "
                f"+ up to {self.jitter_ms} ms>")

    def heal(self):
        self._lags.heal(self)


class Relay:
    """The delaying relay of one host, and the rule that routes its connections through it."""

    def __init__(self, host, destinations, mark):
        self.host = host
        self.proc = host.popen([sys.executable, str(RELAY)], stdin=-1, stdout=-1, text=True)
        ready = self.proc.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"delay relay on {host.name} did not start: {ready}")
        port = int(ready[1])
        nft(host, f"""
add table {TABLE}
add chain {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add rule {TABLE} output meta mark != {mark:#x} ip daddr {{ {', '.join(sorted(destinations))} }} \
tcp flags syn redirect to :{port}
""")

    def set(self, address, delay_ms, jitter_ms):
        self.proc.stdin.write(f"{address} {delay_ms} {jitter_ms}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"delay relay on {self.host.name}: {answer!r}")


class Lags:
    """The relays of one cluster, and the lags active."""

    def __init__(self):
        self.relays = {}  # host -> Relay
        self.active = []

    def enable(self, host, destinations):
        if host not in self.relays:
            self.relays[host] = Relay(host, destinations, MARK)

    def add(self, senders, receivers, delay_ms, jitter_ms=0):
        missing = [h.name for h in senders if h not in self.relays]
        if missing:
            raise ValueError(f"no delay relay on {', '.join(missing)}: enable_lag() them first")
        lag = Lag(self, senders, receivers, delay_ms, jitter_ms)
        self.active.append(lag)
        self._apply(senders, receivers)
        return lag

    def heal(self, lag):
        if lag in self.active:
            self.active.remove(lag)
            self._apply(lag.senders, lag.receivers)

    def heal_all(self):
        for lag in list(self.active):
            self.heal(lag)

    def _apply(self, senders, receivers):
        """Each (sender, receiver) pair's delay: the largest active lag over it, else none."""
        for s in senders:
            for r in receivers:
                if r is s:
                    continue
                over = [g for g in self.active if s in g.senders and r in g.receivers]
                delay = max((g.delay_ms for g in over), default=0)
                jitter = max((g.jitter_ms for g in over), default=0)
                self.relays[s].set(r.address, delay, jitter)
