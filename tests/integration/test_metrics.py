"""`SetHandler rhythm-metrics` (docs/metrics.md): the module's figures in Prometheus's text format,
checked by promtool and scraped by the real Prometheus server (Debian's prometheus package),
whose query API must show the series, rates that move under load, and a killed node as down;
the same for rss_node --metrics (a scraper that holds connections cannot keep it from others);
the shipped alert rules (conf/prometheus/rhythm.rules.yml) load and the node-down alert fires,
and every query of the Grafana dashboard (conf/grafana/rhythm.json) evaluates to data."""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from rhythm_httpd import Browser, backed_server, free_port, wait_for
from rss_node_fixture import RssNode
from test_backup import backup_status
from test_bank import wait_backed

TOP = pathlib.Path(__file__).resolve().parents[2]
RULES = TOP / "conf" / "prometheus" / "rhythm.rules.yml"
DASHBOARD = TOP / "conf" / "grafana" / "rhythm.json"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
METRICS_LOCATION = """
<Location /metrics>
    SetHandler rhythm-metrics
</Location>
"""


def metrics_server(name, nodes):
    return backed_server(name, nodes, extra=METRICS_LOCATION)


def metrics_node(name):
    """An rss_node serving its metrics (--metrics) on a free port of 127.0.0.1."""
    port = free_port()
    node = RssNode(name, extra=["--metrics", f"127.0.0.1:{port}"])
    node.metrics_port = port
    return node


def get(port, path="/metrics", method="GET"):
    """(status, content type, body) of one request to 127.0.0.1:port."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def promtool_check(text):
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr + text


def scrape(server):
    status, headers, text = server.request("/metrics")
    assert status == 200, text
    content_type = dict((k.lower(), v) for k, v in headers)["content-type"]
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return text


def value(text, series):
    """The value of one series line (`name` or `name{labels}`) of a scrape; None if absent."""
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_the_shipped_alert_rules_pass_promtool():
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_page_is_valid_exposition_text_with_every_status_figure():
    with RssNode("bank-1") as one, RssNode("bank-2") as two, \
            metrics_server("web-a", [one, two]) as a:
        wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 2, 10, "both nodes up")
        browser = Browser(a)
        for _ in range(5):
            browser.get("/app/counter")
        wait_backed(a)
        text = scrape(a)
        promtool_check(text)
        status = a.status()
        # Every ?auto figure of server-status has its metric, with the same value.
        for key, number in status.items():
            if not key.startswith("Rhythm") or not isinstance(number, int) or \
                    re.match(r"RhythmBackupNode\d", key) or key.startswith("RhythmBackupLagP") or \
                    key.endswith(("Ms", "Us")) or key == "RhythmBackupAgentPid":
                continue
            snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
            renamed = {"rhythm_arena_bytes_total": "rhythm_arena_size_bytes",
                       "rhythm_bytes_total": "rhythm_segment_size_bytes"}
            snake = renamed.get(snake, snake)
            got = value(text, snake) if value(text, snake) is not None else \
                value(text, snake + "_total")
            assert got is not None, f"{key} has no metric"
        assert value(text, "rhythm_sessions") == 1
        assert value(text, "rhythm_backup_acknowledged_total") >= 1
        assert value(text, 'rhythm_backup_agent_state{state="running"}') == 1
        for node in (one, two):
            assert value(text, f'rhythm_backup_node_up{{node="{node.queries}",name="{node.name}"}}') == 1
        # GET and HEAD only.
        assert a.request("/metrics", method="POST", body="x")[0] == 405
        status, _, body = a.request("/metrics", method="HEAD")
        assert status == 200 and body == ""


def test_a_node_serves_everything_its_status_shows_and_a_scraper_cannot_hold_it():
    with metrics_node("bank-1") as node, metrics_server("web-a", [node]) as a:
        browser = Browser(a)
        for _ in range(3):
            browser.get("/app/counter")
        wait_backed(a)
        status = node.status()

        def page():
            code, content_type, text = get(node.metrics_port)
            assert code == 200 and content_type == "text/plain; version=0.0.4; charset=utf-8"
            return text
        # Written by the node's loop once a second.
        text = wait_for(lambda: (lambda t: t if value(t, "rss_node_sessions") == 1 else None)(
            page()), 5, "the session in the node's metrics")
        promtool_check(text)
        assert value(text, 'rss_node_info{name="bank-1",protocol_version="7"}') == 1
        assert value(text, "rss_node_updates_applied_total") >= 1
        assert value(text, "rss_node_resident_bytes") > 1 << 20
        for key, number in status.items():
            if isinstance(number, bool) or not isinstance(number, int) or key in (
                    "protocol_version", "uptime_seconds", "bytes", "max_memory",
                    "shards_subscribed", "connections_updates", "connections_queries"):
                continue
            assert value(text, f"rss_node_{key}") is not None or \
                value(text, f"rss_node_{key}_total") is not None, key
        assert get(node.metrics_port, method="POST")[0] == 405
        assert get(node.metrics_port, "/status")[0] == 404
        # Connections that never send a request: one address gets 4 places; a scrape from it
        # gets in again once they are closed for their silence (5 s), and the node served on.
        idle = [socket.create_connection(("127.0.0.1", node.metrics_port)) for _ in range(16)]
        try:
            started = time.monotonic()
            def scrape_answered():
                try:
                    return get(node.metrics_port)[0] == 200
                except OSError:  # refused, or no answer in 5 s while every place is taken
                    return False
            wait_for(scrape_answered, 15, "a scrape past idle ones")
            assert browser.get("/app/counter")[0] == 200
            assert time.monotonic() - started < 12
        finally:
            for s in idle:
                s.close()
        # What it refused or closed is logged and shown, not only done.
        assert "RN0405: metrics: Server reached connection limit" in node.log_text(), \
            node.log_text()
        assert status["metrics_refused"] == 0 and node.status()["metrics_refused"] >= 12
        assert value(wait_for(lambda: (lambda t: t if value(
            t, "rss_node_metrics_refused_total") else None)(page()), 5, "the refusals on the page"),
            "rss_node_metrics_refused_total") >= 12
        assert "RN0101" in node.log_text() and "metrics on port" in node.log_text()


class Prometheus:
    """The real Prometheus server, on 127.0.0.1, scraping `targets` (host:port) every second."""

    def __init__(self, targets):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="rhythm-prometheus-"))
        self.port = free_port()
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [str(RULES)],
                  "scrape_configs": [{"job_name": "rhythm", "metrics_path": "/metrics",
                                      "static_configs": [{"targets": targets}]}]}
        # JSON is YAML: the configuration needs no YAML writer.
        (self.dir / "prometheus.yml").write_text(json.dumps(config))
        self.log = open(self.dir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, expression):
        """The result vector of an instant query, as [(labels, value)]."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + \
            urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if not os.environ.get("RHYTHM_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def test_prometheus_scrapes_two_servers_and_two_nodes_sees_rates_move_and_a_killed_node_down():
    one, two = metrics_node("bank-1"), metrics_node("bank-2")
    one.peers, two.peers = [two.queries], [one.queries]
    with one, two, metrics_server("web-a", [one, two]) as a, \
            metrics_server("web-b", [one, two]) as b:
        prometheus = Prometheus([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}",
                                 f"127.0.0.1:{one.metrics_port}", f"127.0.0.1:{two.metrics_port}"])
        try:
            wait_for(prometheus.ready, 60, "Prometheus ready")

            def scraped(expression, condition):
                result = prometheus.query(expression)
                return result if condition(result) else None

            wait_for(lambda: scraped("up", lambda r: len(r) == 4 and all(v == 1 for _, v in r)),
                     30, "both servers and both nodes scraped")
            wait_for(lambda: scraped("rhythm_backup_node_up",
                                     lambda r: len(r) == 4 and all(v == 1 for _, v in r)),
                     30, "each server's two nodes up")
            browsers = [Browser(a), Browser(b)]
            rate = 'sum(rate(rhythm_saves_total[5s]))'

            def load_and_rate():
                for browser in browsers:
                    for _ in range(10):
                        browser.get("/app/counter")
                return scraped(rate, lambda r: r and r[0][1] > 0)

            wait_for(load_and_rate, 30, "the save rate to move under load")
            wait_for(lambda: scraped("sum(rhythm_sessions)", lambda r: r and r[0][1] == 2), 30,
                     "two sessions")
            one.kill()
            result = wait_for(lambda: scraped(
                f'rhythm_backup_node_up{{name="{one.name}"}}',
                lambda r: len(r) == 2 and all(v == 0 for _, v in r)), 30,
                "the killed node down on both servers")
            assert {labels["instance"] for labels, _ in result} == \
                {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}
            assert scraped("sum(rhythm_backup_nodes_up)", lambda r: r)[0][1] == 2
            # Its own target is down; the other node saw its peer go.
            wait_for(lambda: scraped(f'up{{instance="127.0.0.1:{one.metrics_port}"}}',
                                     lambda r: r and r[0][1] == 0), 30, "the node's target down")
            wait_for(lambda: scraped(f'rss_node_peer_up{{name="{one.name}"}}',
                                     lambda r: r and r[0][1] == 0), 30, "its peer sees it down")
            # The shipped rules are loaded, and the node-down alert is pending or firing.
            rules = [rule["name"] for group in prometheus.get("/api/v1/rules")["groups"]
                     for rule in group["rules"]]
            assert "RhythmNodeDown" in rules and "RhythmUnbackedEvictions" in rules
            wait_for(lambda: any(a["labels"]["alertname"] == "RhythmNodeDown" and
                                 a["labels"]["name"] == one.name
                                 for a in prometheus.get("/api/v1/alerts")["alerts"]), 30,
                     "RhythmNodeDown pending")
            # Every panel of the dashboard has data.
            for panel in json.loads(DASHBOARD.read_text())["panels"]:
                for target in panel["targets"]:
                    assert prometheus.query(target["expr"]), panel["title"]
        finally:
            prometheus.close()


@pytest.fixture(autouse=True)
def needs_prometheus():
    if not (os.path.exists(PROMETHEUS) and os.path.exists(PROMTOOL)):
        pytest.fail("prometheus is not installed: run build/install-deps")
