"""Fault campaigns against a real cluster (issue 15): a workload of browsers counting in their
sessions, a nemesis injecting random faults from a seeded schedule, and a checker over every
client's history and the bank's final content. `build/chaos` runs a campaign; the integration
test test_chaos.py runs a short one with a fixed schedule, and the checker's rules on made-up
histories.

workload.py: the clients and their histories; nemesis.py: the schedule and the faults;
checker.py: the guarantees (G1 no rollback, G2 bounded loss, G3 convergence, G4 availability);
campaign.py: the cluster, the run and the summary.
"""
