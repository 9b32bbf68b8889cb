"""Real hosts simulated on one machine, for tests that need a network between web servers,
rss_nodes and clients, and faults on it (issue 15): each host a Linux network namespace with its
own address, joined to the others by a bridge, with partitions, loss and process faults to
inject. The integration tests and the chaos command share it.

    with Cluster(["web-a", "node-1"]) as cluster:
        node = RssNode("node-1", host=cluster["node-1"]).start()
        cluster.partition("web-a", "node-1", both_ways=True).heal()

cluster.py: the hosts and the cluster's lifetime; namespaces.py: namespaces, their names and
the leftovers of dead runs; netns_thread.py: running Python code inside a host's namespace;
faults.py: network and process faults. Needs root, iproute2 and nftables; where namespaces
cannot be made, Cluster.start() raises ClusterUnavailable.
"""

from .cluster import SUBNET, Cluster, Host
from .faults import kill, pause, resume
from .namespaces import ClusterUnavailable

__all__ = ["SUBNET", "Cluster", "ClusterUnavailable", "Host", "kill", "pause", "resume"]
