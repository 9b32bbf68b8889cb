"""CURVE on the bank's sockets, against real rss_node processes (and, at the end, the real
apache2 with the module): `rss_node keygen`, a listed client served, an unlisted key, a plain-text
client and a client holding the wrong server key refused at the handshake with nothing they send
applied, CURVE on one side only reported on both sides, the allowlist re-read on SIGHUP, nodes
talking to each other with the bank's pair, and bad key files refused at start-up."""

import os
import stat

import pytest
import zmq

import rss_node_fixture as rf
from rhythm_httpd import APP_LOCATION, Browser, Httpd, backed_server, session_id_of, wait_for
from rss_node_fixture import BankKeys, Publisher, Requester, RssNode, new_key


@pytest.fixture
def keys(tmp_path):
    return BankKeys(tmp_path / "keys")


@pytest.fixture
def node(keys):
    n = RssNode(keys=keys)
    n.start()
    yield n
    n.cleanup()


def wait_for_log(node, text, timeout=10):
    wait_for(lambda: text in node.log_text(), timeout, f"'{text}' in the node's log")


def test_keygen_writes_a_secret_and_a_public_key(tmp_path):
    pair = rf.KeyPair(tmp_path / "web1")
    assert stat.S_IMODE(os.stat(pair.secret_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pair.public_path).st_mode) == 0o644
    assert len(pair.secret) == 40 and len(pair.public) == 40
    assert zmq.curve_public(pair.secret) == pair.public
    # An existing pair is never overwritten.
    before = pair.secret_path.read_bytes()
    cli = RssNode(name="unused")
    try:
        code, _, err = cli.run_cli("keygen", str(pair.stem))
    finally:
        cli.cleanup()
    assert code == 2 and "web1.key: File exists" in err
    assert pair.secret_path.read_bytes() == before


def test_a_listed_client_publishes_and_fetches(node):
    pub = node.publisher()
    pub.wait_subscribed()
    sessions = {new_key(): os.urandom(512) for _ in range(50)}
    for key, data in sessions.items():
        pub.publish(key, 1, data)
    node.wait_status(lambda s: s["updates_applied"] == 50, 10, "50 updates applied")
    for key, data in sessions.items():
        reply = node.fetch(key)
        assert reply["status"] == rf.FOUND and reply["data"] == data
    status = node.status()
    assert status["curve"] is True
    assert status["curve_refused"] == 0 and status["handshake_failures"] == 0
    # The operator commands, with the bank's public key and their own secret key.
    key = next(iter(sessions))
    code, out, err = node.run_cli("get", node.queries, session_id_of(key),
                                  *node.keys.operator_options(node.curve))
    assert code == 0, err
    assert "state: found" in out
    pub.close()


@pytest.mark.parametrize("who", ["unlisted key", "plain text", "wrong server key"])
def test_refused_clients_get_nothing_in_and_nothing_out(node, keys, who):
    key = new_key()
    good = node.publisher()
    good.wait_subscribed()
    good.publish(key, 1, b"the real session")
    node.wait_status(lambda s: s["updates_applied"] == 1, 10, "the good update applied")
    if who == "unlisted key":
        curve = keys.stranger("intruder")
        expected_log = "is not listed in"
    elif who == "plain text":
        curve = None
        expected_log = "does not use CURVE"
    else:
        curve = rf.Curve(rf.KeyPair(keys.dir / "fake-bank").public, keys.client("confused").pair)
        expected_log = "holds a server key other than this bank's"
    bad_pub = Publisher(node.context, node.updates, agent_id=b"B" * 16, curve=curve)
    bad_req = Requester(node.context, node.queries, curve)
    bad_req.send_raw(rf.fetch_frames(1, key))
    wait_for_log(node, expected_log)
    # The handshake never completes: no subscription reaches the intruder's publisher, so what it
    # publishes goes nowhere, and no answer comes back to its requests.
    for version in range(2, 50):
        bad_pub.publish(key, version, b"forged")
    assert not bad_req.socket.poll(1000)
    assert not bad_pub._drain_subscriptions() and not bad_pub.topics
    status = node.status()
    assert status["updates_applied"] == 1 and status["malformed_frames"] == 0
    assert status["handshake_failures"] >= 1
    reply = node.fetch(key)
    assert reply["version"] == 1 and reply["data"] == b"the real session"
    bad_pub.close()
    bad_req.close()
    good.close()


def test_operator_commands_report_a_refused_handshake(node, keys):
    code, _, err = node.run_cli("status", node.queries)
    assert code == 2 and "requires CURVE" in err and "set --curve-server and --curve-secret" in err
    stranger = keys.stranger("stranger")
    code, _, err = node.run_cli("status", node.queries, *keys.operator_options(stranger))
    assert code == 2 and "refused this side's CURVE key" in err
    code, _, err = node.run_cli("status", node.queries, "--curve-server",
                                str(keys.bank.public_path))
    assert code == 2 and "--curve-server and --curve-secret go together" in err


def test_curve_on_the_client_only_is_refused_and_reported_on_both_sides(keys):
    with RssNode(name="plain") as plain:
        curve = keys.client("web1")
        req = Requester(plain.context, plain.queries, curve)
        req.send_raw(rf.status_frames(1))
        wait_for_log(plain, "uses CURVE")
        assert not req.socket.poll(500)
        code, _, err = plain.run_cli("status", plain.queries, *keys.operator_options(curve))
        assert code == 2
        # The client sees either the mechanism mismatch or, when the node hangs up first, only
        # that the handshake failed; both messages say what to check.
        assert "does not use CURVE" in err
        req.close()


def test_sighup_rereads_the_client_list(node, keys):
    late = keys.stranger("late")
    code, _, err = node.run_cli("status", node.queries, *keys.operator_options(late))
    assert code == 2 and "refused" in err
    keys.allow(late.pair)
    node.proc.send_signal(1)  # SIGHUP
    wait_for_log(node, "SIGHUP: 2 CURVE client key(s) admitted")
    code, out, err = node.run_cli("status", node.queries, *keys.operator_options(late))
    assert code == 0, err
    # A broken file on SIGHUP: an error, and the keys read before stay in force.
    keys.clients_path.write_text("not a key\n")
    node.proc.send_signal(1)
    wait_for_log(node, f"{keys.clients_path}:1: not a public key")
    assert "the 2 key(s) read before stay in force" in node.log_text()
    code, _, err = node.run_cli("status", node.queries, *keys.operator_options(late))
    assert code == 0, err


def test_nodes_of_one_bank_talk_to_each_other_under_curve(keys, tmp_path):
    with RssNode(name="node-a", keys=keys) as a:
        with RssNode(name="node-b", peers=[a.queries], keys=keys) as b:
            b.wait_status(lambda s: s["peers"][0]["state"] == "up", 10, "node-b to see node-a")
        # A node of another bank (its own key pair) is refused by node-a.
        other = BankKeys(tmp_path / "other-bank")
        with RssNode(name="node-x", peers=[a.queries], keys=other) as x:
            wait_for_log(a, "holds a server key other than this bank's")
            assert x.status()["peers"][0]["state"] == "unknown"


def test_bad_key_settings_fail_at_start(keys, tmp_path):
    n = RssNode(name="unused")
    base = ["--name", "n", "--updates", n.updates, "--queries", n.queries]
    try:
        code, _, err = n.run_cli(*base, "--curve-secret", str(keys.bank.secret_path),
                                 "--check-config")
        assert code == 1 and "curve-secret and curve-clients go together" in err
        loose = tmp_path / "loose.key"
        loose.write_bytes(keys.bank.secret_path.read_bytes())
        loose.chmod(0o644)
        code, _, err = n.run_cli(*base, "--curve-secret", str(loose), "--curve-clients",
                                 str(keys.clients_path), "--check-config")
        assert code == 1 and "must not be readable by group or others (mode 0644)" in err
        bad_list = tmp_path / "clients"
        bad_list.write_text(f"# ok\n{keys.bank.public.decode()}\nshort-key\n")
        code, _, err = n.run_cli(*base, *keys.node_options()[:2], "--curve-clients",
                                 str(bad_list), "--check-config")
        assert code == 1 and f"{bad_list}:3: not a public key" in err
        code, _, err = n.run_cli(*base, "--curve-secret", str(keys.bank.public_path),
                                 "--curve-clients", str(keys.clients_path))
        assert code == 1 and "bank.pub" in err
        code, out, err = n.run_cli(*base, *keys.node_options(), "--check-config")
        assert code == 0, err
    finally:
        n.cleanup()


def curve_web_server(name, node, curve):
    """An httpd backing up to `node`, under CURVE with `curve`'s files (None: plain text)."""
    extra = "" if curve is None else (
        f"SessionBackupCurve {curve.bank_public_path} {curve.pair.secret_path}")
    return backed_server(name, [node], extra)


def web_client(keys, name, listed=True):
    curve = keys.client(name) if listed else keys.stranger(name)
    curve.bank_public_path = keys.bank.public_path
    return curve


def test_the_module_backs_up_and_fails_over_under_curve(keys):
    web1, web2 = web_client(keys, "web1"), web_client(keys, "web2")
    with RssNode(keys=keys) as node, curve_web_server("web1", node, web1) as a:
        b = Browser(a)
        for _ in range(3):
            assert b.get("/app/counter")[0] == 200
        key = b.session_key()
        wait_for(lambda: b"count=3" in node.fetch(key).get("data", b""), 10,
                 "the session in the bank")
        st = a.status()
        assert st["RhythmBackupCurve"] == 1 and st["RhythmBackupNodesUp"] == 1
        a.stop()
        # Another server of the bank takes the session over, through a CURVE fetch.
        with curve_web_server("web2", node, web2) as c:
            # As a balancer's health check would: traffic once its agent reached the bank (the
            # CURVE handshake is slow under the sanitizers).
            wait_for(lambda: c.status()["RhythmBackupNodesUp"] == 1, 10, "web2's agent up")
            b.server = c
            status, _, text = b.get("/app/counter")
            assert status == 200 and "count=4" in text


def test_a_web_server_whose_key_is_not_listed_gets_nothing_in_or_out(keys):
    with RssNode(keys=keys) as node, \
            curve_web_server("web1", node, web_client(keys, "web1", listed=False)) as a:
        b = Browser(a)
        assert b.get("/app/counter")[0] == 200
        wait_for(lambda: "refused this side's CURVE key" in a.log_text(), 10,
                 "the refusal in the error log")
        assert node.status()["updates_applied"] == 0
        assert a.status()["RhythmBackupNodesUp"] == 0


@pytest.mark.parametrize("side", ["web server only", "node only"])
def test_curve_on_one_side_only_is_an_error_on_both_and_nothing_flows(keys, side):
    # Each side sees the mechanism mismatch, or only a failed handshake when the other hung up
    # first; every message names the missing setting.
    if side == "node only":
        node, curve, expected = RssNode(keys=keys), None, "requires CURVE"
        node_log = "does not use CURVE"
    else:
        node, curve, expected = RssNode(), web_client(keys, "web1"), "does not use CURVE"
        node_log = "uses CURVE"
    with node, curve_web_server("web1", node, curve) as a:
        b = Browser(a)
        for _ in range(3):
            assert b.get("/app/counter")[0] == 200  # pages serve as with the bank down
        wait_for(lambda: "RS0315" in a.log_text() and expected in a.log_text(), 10,
                 f"RS0315 '{expected}' in the error log")
        wait_for_log(node, node_log)
        assert node.status()["updates_applied"] == 0
        st = a.status()
        assert st["RhythmBackupNodesUp"] == 0 and st["RhythmBackupAcknowledged"] == 0


def test_bad_curve_directives_fail_the_config_test(keys, tmp_path):
    loose = tmp_path / "loose.key"
    loose.write_bytes(keys.bank.secret_path.read_bytes())
    loose.chmod(0o644)
    bad = [
        (f"SessionBackupCurve {keys.bank.public_path}", "takes two arguments"),
        (f"SessionBackupCurve {tmp_path}/missing.pub {keys.bank.secret_path}",
         "missing.pub: No such file or directory"),
        (f"SessionBackupCurve {keys.bank.public_path} {loose}",
         "must not be readable by group or others (mode 0644)"),
        (f"SessionBackupCurve {keys.clients_path} {keys.bank.secret_path}",
         "clients: no key in the file"),
    ]
    for line, message in bad:
        h = Httpd(APP_LOCATION, server_wide=f"SessionBackup On\nSessionBackupNode "
                                            f"tcp://127.0.0.1:9\n{line}")
        try:
            code, out = h.config_test()
            assert code != 0 and message in out, (line, out)
            assert "SessionBackupCurve" in out
        finally:
            h.cleanup()
