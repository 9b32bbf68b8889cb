// A simulation of shard ownership in a large bank (issue 17): the bank's own rendezvous hashing
// (wire/rendezvous.h) over N nodes, for several shard counts. For each it prints
//   - the spread of shard copies and of sessions over the nodes (max/mean, min/mean): sessions
//     go to shards uniformly at random, as session IDs do;
//   - what one node's death moves (every copy it held gets a new owner) and what one node's
//     joining moves, as a share of all copies, worst and mean over every node;
//   - the restore after a death at a stated network rate per node: each survivor receives the
//     copies of the shards it gains (from the other owner, at that rate), so the restore takes
//     as long as the survivor that gains most.
// No sockets, no nodes: the same functions the nodes run.
//
//   ownership_sim [--nodes 100] [--replicas 2] [--sessions 10000000] [--session-bytes 1024]
//                 [--gbit-per-node 1] [--shards 1024,4096,16384]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "wire/rendezvous.h"

namespace {

struct Options {
    std::size_t nodes = 100;
    std::size_t replicas = 2;
    std::uint64_t sessions = 10000000;
    std::uint64_t session_bytes = 1024;
    double gbit_per_node = 1.0;
    std::vector<std::uint32_t> shard_counts = {1024, 4096, 16384};
};

bool parse(int argc, char **argv, Options *o) {
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        const char *value = argv[i + 1];
        if (flag == "--nodes") {
            o->nodes = std::strtoull(value, nullptr, 10);
        } else if (flag == "--replicas") {
            o->replicas = std::strtoull(value, nullptr, 10);
        } else if (flag == "--sessions") {
            o->sessions = std::strtoull(value, nullptr, 10);
        } else if (flag == "--session-bytes") {
            o->session_bytes = std::strtoull(value, nullptr, 10);
        } else if (flag == "--gbit-per-node") {
            o->gbit_per_node = std::strtod(value, nullptr);
        } else if (flag == "--shards") {
            o->shard_counts.clear();
            for (const char *p = value; *p != '\0';) {
                char *end = nullptr;
                o->shard_counts.push_back(static_cast<std::uint32_t>(std::strtoul(p, &end, 10)));
                p = *end == ',' ? end + 1 : end;
            }
        } else {
            return false;
        }
    }
    return argc % 2 == 1 && o->nodes > o->replicas && o->replicas >= 1 && !o->shard_counts.empty();
}

struct Spread {
    double max_over_mean = 0;
    double min_over_mean = 0;
};

Spread spread(const std::vector<double> &per_node) {
    double sum = 0, max = 0, min = per_node.front();
    for (double v : per_node) {
        sum += v;
        max = std::max(max, v);
        min = std::min(min, v);
    }
    double mean = sum / static_cast<double>(per_node.size());
    return {max / mean, min / mean};
}

void simulate(const Options &o, std::uint32_t shard_count) {
    std::vector<std::string> names;
    for (std::size_t i = 1; i <= o.nodes; ++i) {
        names.push_back("node-" + std::to_string(i));
    }
    // Each shard's members by score, best first: owners are the first `replicas`; when one of
    // them dies the next one takes its place.
    std::vector<std::vector<std::uint32_t>> ranking(shard_count);
    for (std::uint32_t s = 0; s < shard_count; ++s) {
        std::vector<std::pair<std::uint64_t, std::uint32_t>> scored;
        for (std::uint32_t n = 0; n < o.nodes; ++n) {
            scored.emplace_back(rhythm::wire::rendezvous_score(s, names[n]), n);
        }
        std::partial_sort(scored.begin(), scored.begin() + static_cast<long>(o.replicas + 1),
                          scored.end(), [](const auto &a, const auto &b) { return a > b; });
        for (std::size_t r = 0; r <= o.replicas; ++r) {
            ranking[s].push_back(scored[r].second);
        }
    }
    // Sessions per shard: uniform, as random session IDs are.
    std::vector<std::uint64_t> sessions(shard_count, 0);
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::uint32_t> pick(0, shard_count - 1);
    for (std::uint64_t i = 0; i < o.sessions; ++i) {
        sessions[pick(rng)]++;
    }
    std::vector<double> shards_of(o.nodes, 0), sessions_of(o.nodes, 0);
    for (std::uint32_t s = 0; s < shard_count; ++s) {
        for (std::size_t r = 0; r < o.replicas; ++r) {
            shards_of[ranking[s][r]] += 1;
            sessions_of[ranking[s][r]] += static_cast<double>(sessions[s]);
        }
    }
    Spread shard_spread = spread(shards_of), session_spread = spread(sessions_of);
    double copies = static_cast<double>(o.sessions * o.replicas);

    // A death: every copy the dead node held moves to the next member of that shard's ranking.
    double worst_moved = 0, sum_moved = 0, worst_restore_s = 0, sum_restore_s = 0;
    double bytes_per_s = o.gbit_per_node * 1e9 / 8;
    for (std::uint32_t dead = 0; dead < o.nodes; ++dead) {
        std::vector<double> gained(o.nodes, 0);
        double moved = 0;
        for (std::uint32_t s = 0; s < shard_count; ++s) {
            for (std::size_t r = 0; r < o.replicas; ++r) {
                if (ranking[s][r] == dead) {
                    gained[ranking[s][o.replicas]] += static_cast<double>(sessions[s]);
                    moved += static_cast<double>(sessions[s]);
                }
            }
        }
        double most = *std::max_element(gained.begin(), gained.end());
        double restore_s = most * static_cast<double>(o.session_bytes) / bytes_per_s;
        worst_moved = std::max(worst_moved, moved / copies);
        sum_moved += moved / copies;
        worst_restore_s = std::max(worst_restore_s, restore_s);
        sum_restore_s += restore_s;
    }
    // A join: the new node takes each shard where it scores among the best `replicas`.
    double joined_moved = 0;
    std::string newcomer = "node-" + std::to_string(o.nodes + 1);
    for (std::uint32_t s = 0; s < shard_count; ++s) {
        std::uint64_t score = rhythm::wire::rendezvous_score(s, newcomer);
        std::uint64_t last_owner =
            rhythm::wire::rendezvous_score(s, names[ranking[s][o.replicas - 1]]);
        if (score > last_owner) {
            joined_moved += static_cast<double>(sessions[s]);
        }
    }
    double n = static_cast<double>(o.nodes);
    std::printf(
        "%7u shards | copies per node max/mean %.2f min/mean %.2f | sessions per node "
        "max/mean %.2f min/mean %.2f | death moves %.2f%% (worst %.2f%%), restore %.2f s "
        "(worst %.2f s) | a join moves %.2f%%\n",
        shard_count, shard_spread.max_over_mean, shard_spread.min_over_mean,
        session_spread.max_over_mean, session_spread.min_over_mean, 100 * sum_moved / n,
        100 * worst_moved, sum_restore_s / n, worst_restore_s, 100 * joined_moved / copies);
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    if (!parse(argc, argv, &o)) {
        std::fprintf(stderr,
                     "usage: ownership_sim [--nodes 100] [--replicas 2] [--sessions 10000000] "
                     "[--session-bytes 1024] [--gbit-per-node 1] [--shards 1024,4096,16384]\n");
        return 2;
    }
    std::printf(
        "%zu nodes, --replicas %zu, %llu sessions of %llu bytes, %.1f Gbit/s per node; "
        "ideal spread: max/mean 1.00\n",
        o.nodes, o.replicas, static_cast<unsigned long long>(o.sessions),
        static_cast<unsigned long long>(o.session_bytes), o.gbit_per_node);
    for (std::uint32_t shards : o.shard_counts) {
        simulate(o, shards);
    }
    return 0;
}
