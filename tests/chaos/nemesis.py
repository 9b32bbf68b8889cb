"""The nemesis: a schedule of faults drawn from a seed (the same seed, the same schedule), and
their injection into a running cluster. Faults may overlap: the next one starts after a gap
drawn from the seed, whether the last has healed or not. Each fault's actual interval is logged
for the checker."""

import dataclasses
import random
import threading
import time

# What each fault does (the checker knows which excuse what):
#   kill-web      kill -9 a web server (its whole group); after the fault, it starts again empty
#   restart-web   a graceful restart of a web server (apache2 -k graceful) as the fault begins
#   pause-web     SIGSTOP a web server's group (a hung host); SIGCONT after
#   cut-web       a web server cut off from every node, both ways
#   kill-node     kill -9 an rss_node; after the fault, it starts again empty
#   stop-node     SIGTERM to an rss_node (a clean stop); after the fault, it starts again empty
#   pause-node    SIGSTOP an rss_node; SIGCONT after
#   cut-node      an rss_node cut off from every other host, both ways
#   loss          30 % of the packets between the web servers and the nodes lost, both ways
#   lag-web       a web server's connections to the nodes delayed (campaign.LAG_MS, both ways)
#   lag-node      every connection to and from an rss_node delayed (web servers' and peers')
#   kill-balancer kill -9 HAProxy; after the fault, it starts again on its ports
#   pause-balancer SIGSTOP HAProxy; SIGCONT after
FAULTS = ("kill-web", "restart-web", "pause-web", "cut-web", "kill-node", "stop-node", "pause-node",
          "cut-node", "loss", "lag-web", "lag-node", "kill-balancer", "pause-balancer")


@dataclasses.dataclass
class Fault:
    kind: str
    target: str  # a host name, or "" for a fault on links between sets
    at: float  # seconds after the campaign's start, as scheduled
    duration: float
    started: float = None  # time.monotonic(), as it happened
    healed: float = None
    # cut-web: when the server's agent had back every node it counted down in the cut (its log,
    # RS0306), up to a second or more after the network healed (a connect given up and tried
    # again, TCP's back-off); until then the server is still cut off from the bank.
    reconnected: float = None


def schedule(seed, seconds, kinds, web_names, node_names, gap=(2.0, 6.0), length=(2.0, 8.0)):
    """Faults from `kinds` over `seconds`, each on a target drawn from the seed."""
    r = random.Random(seed)
    faults, t = [], r.uniform(*gap)
    while t < seconds:
        kind = r.choice(kinds)
        if kind.endswith("-web"):
            target = r.choice(web_names)
        elif kind.endswith("-node"):
            target = r.choice(node_names)
        elif kind.endswith("-balancer"):
            target = "balancer"
        else:
            target = ""
        duration = round(min(r.uniform(*length), seconds - t), 2)
        faults.append(Fault(kind, target, round(t, 2), duration))
        t += r.uniform(*gap)
    return faults


class Nemesis(threading.Thread):
    """Injects `faults` into `cluster` (campaign.Cluster: its servers, nodes and network),
    relative to `t0`; heal() ends every fault still active."""

    def __init__(self, bank, faults, t0, log):
        super().__init__(name="nemesis", daemon=True)
        self.bank = bank
        self.faults = faults
        self.t0 = t0
        self.log = log
        self.lock = threading.Lock()
        self.active = []  # (heal time, fault, undo)
        self.stopping = threading.Event()

    def run(self):
        pending = sorted(self.faults, key=lambda f: f.at)
        while not self.stopping.is_set() and (pending or self.active):
            now = time.monotonic() - self.t0
            with self.lock:
                for entry in [a for a in self.active if a[0] <= now]:
                    self.active.remove(entry)
                    self._undo(entry)
                while pending and pending[0].at <= now:
                    fault = pending.pop(0)
                    undo = self._inject(fault)
                    if undo is not None:
                        self.active.append((fault.at + fault.duration, fault, undo))
            self.stopping.wait(0.05)

    def heal(self):
        self.stopping.set()
        self.join(30)
        with self.lock:
            for entry in self.active:
                self._undo(entry)
            self.active.clear()

    def _inject(self, fault):
        # From the moment it begins to take effect (a kill waits for the port to close).
        fault.started = time.monotonic()
        try:
            undo = self.bank.inject(fault.kind, fault.target)
        except Exception as e:  # a fault that cannot be made (its target already down)
            fault.started = None
            self.log(f"{fault.kind} {fault.target}: not injected ({e})")
            return None
        self.log(f"{fault.kind} {fault.target} for {fault.duration:.1f} s")
        return undo

    def _undo(self, entry):
        _, fault, undo = entry
        try:
            undo()
        except ProcessLookupError:
            # Another fault ended the process meanwhile (a paused server killed): nothing to undo.
            self.log(f"{fault.kind} {fault.target}: its process is gone, nothing to undo")
        finally:
            fault.healed = time.monotonic()
            self.log(f"healed {fault.kind} {fault.target}")
