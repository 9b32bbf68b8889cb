"""build/package's two Debian packages on this machine, the way an administrator uses them:
install, `a2enmod rhythm_session`, `apache2ctl configtest`, an upgrade to a newer build, the node
started from the unit's own command lines with the packaged example config as the user the unit
names, one session backed up by one web server and fetched by another, remove, then purge. Whatever the
outcome, the machine is left as it was: the same files under /etc, /usr and /var/lib, the same
users and groups (checked, not assumed).

It installs packages on the machine it runs on, so it runs as root (as CI does), and refuses to
start where either package is already installed: it would purge the administrator's."""

import grp
import os
import pathlib
import pwd
import re
import shlex
import signal
import subprocess
import sys

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))

from rhythm_httpd import Browser, backed_server, count_of, free_port, wait_for  # noqa: E402

PACKAGES = ["libapache2-mod-rhythm-session", "rhythm-rss-node"]
MODULE = "/usr/lib/apache2/modules/mod_rhythm_session.so"
UNIT = "/lib/systemd/system/rss_node@.service"
INSTANCE = "pkgtest"
INSTANCE_CONFIG = pathlib.Path(f"/etc/rhythm/rss_node-{INSTANCE}.conf")
# What a package may change on the machine. dpkg's and apt's own records say what was installed,
# and compiled Python files appear as this test imports modules: neither is the packages'.
WATCHED = ["/etc", "/usr", "/var/lib"]
NOT_THE_PACKAGES = re.compile(r"^/var/lib/(dpkg|apt)/|/__pycache__/|^/etc/(passwd|group|shadow|"
                              r"gshadow|subuid|subgid)-$")
ACCOUNT_FILES = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="installs packages with dpkg: run it as root (CI does)")


def run(*cmd, **kwargs):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=kwargs.pop("timeout", 600),
                       **kwargs)
    assert p.returncode == 0, f"{shlex.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}"
    return p.stdout + p.stderr


def installed_version(package):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package],
                       capture_output=True, text=True)
    status = p.stdout.split()
    return status[3] if p.returncode == 0 and status[:3] == ["install", "ok", "installed"] else None


def package_files(directory):
    """The packages' .deb files (not their debug symbols) that build/package wrote."""
    return [str(directory / f) for f in sorted(os.listdir(directory))
            if f.endswith(".deb") and "-dbgsym_" not in f]


def machine_state():
    """Every path under the watched folders, and the account files' contents."""
    out = subprocess.run(["find"] + WATCHED + ["-xdev"], capture_output=True, text=True).stdout
    paths = {p for p in out.splitlines() if not NOT_THE_PACKAGES.search(p)}
    accounts = {f: pathlib.Path(f).read_text() for f in ACCOUNT_FILES}
    return paths, accounts


# What enabling our module does to mod_session where it was off (a2enmod follows our .load's
# "Depends: session"): its link in mods-enabled and Debian's record of who enabled it. Purging our
# package leaves mod_session on, as it should (the site may use it by then).
SESSION_ENABLED = re.compile(r"^/etc/apache2/mods-enabled/session\.load$|"
                             r"^/var/lib/apache2/module/\w+/session$")
APACHE_MODULE_STATE = re.compile(r"^/etc/apache2/mods-enabled/|^/var/lib/apache2/module/\w+/")
# The folders of those records, which a2enmod and a2dismod make on their first use: on a machine
# where no module was enabled or disabled that way yet, they appear empty and stay.
APACHE_STATE_FOLDER = re.compile(r"^/var/lib/apache2/module/\w+$")


def enabled_modules():
    return set(os.listdir("/etc/apache2/mods-enabled"))


def restore_apache_modules(before_paths):
    """Puts the links of mods-enabled and Debian's records of who enabled or disabled a module
    (empty files, and the folders they are in) back as they were."""
    now, _ = machine_state()
    for path in sorted(now - before_paths, reverse=True):  # a folder after what it holds
        if APACHE_MODULE_STATE.search(path):
            os.unlink(path)
        elif APACHE_STATE_FOLDER.search(path):
            os.rmdir(path)
    for path in sorted(before_paths - now):
        if path.startswith("/etc/apache2/mods-enabled/"):
            os.symlink("../mods-available/" + os.path.basename(path), path)
        elif APACHE_MODULE_STATE.search(path):
            pathlib.Path(path).touch()


def unit_command_lines():
    """ExecStartPre and ExecStart of the installed unit, for this test's instance."""
    unit = pathlib.Path(UNIT).read_text()
    lines = dict(re.findall(r"^(ExecStartPre|ExecStart)=(.+)$", unit, re.M))
    return [shlex.split(lines[k].replace("%i", INSTANCE)) for k in ("ExecStartPre", "ExecStart")]


def as_unit_user(cmd):
    """cmd as the unit runs it: as User= and Group= of the unit."""
    unit = pathlib.Path(UNIT).read_text()
    user = re.search(r"^User=(\S+)$", unit, re.M).group(1)
    group = re.search(r"^Group=(\S+)$", unit, re.M).group(1)
    return ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", "--"] + cmd


class InstalledNode:
    """The packaged rss_node, started from the unit's command line."""

    def __init__(self, queries, proc, log):
        self.queries = queries
        self.proc = proc
        self.log = log

    def get(self, session_id):
        return subprocess.run(["rss_node", "get", self.queries, session_id], capture_output=True,
                              text=True, timeout=10)


def stop_node(node):
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(10)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
    node.log.close()


def test_install_upgrade_use_remove_and_purge_leave_the_machine_as_it_was(tmp_path):
    for package in PACKAGES:
        assert installed_version(package) is None, (
            f"{package} is installed here: this test would purge it; remove it first")
    assert "rhythm" not in {u.pw_name for u in pwd.getpwall()}, "a user rhythm exists already"

    # Two builds of this checkout, the second a newer version, as a release and its update.
    builds = {}
    for version in ("0.1.0+test1", "0.1.0+test2"):
        out = tmp_path / version
        log = run(str(TOP / "build" / "package"), "--version", version, "--out", str(out),
                  timeout=900)
        assert not re.search(r"^E: ", log, re.M), log  # lintian: no error (it also fails the build)
        builds[version] = package_files(out)
        assert len(builds[version]) == 2, os.listdir(out)

    before_paths, before_accounts = machine_state()
    modules_before = enabled_modules()
    node = None
    servers = []
    try:
        run("dpkg", "-i", *builds["0.1.0+test1"])
        assert [installed_version(p) for p in PACKAGES] == ["0.1.0+test1"] * 2

        # The system user the unit runs as, with a group of its own, no shell and no home.
        user = pwd.getpwnam("rhythm")
        assert user.pw_uid < 1000 and grp.getgrgid(user.pw_gid).gr_name == "rhythm"
        assert user.pw_shell.endswith("nologin") and not os.path.exists(user.pw_dir)
        # The operator commands on the PATH, the man page, the example config.
        assert run("which", "rss_node").strip() == "/usr/bin/rss_node"
        assert "usage: rss_node" in run("rss_node", "--help")
        assert os.path.isfile("/usr/share/man/man1/rss_node.1.gz")
        assert "# rss_node configuration" in pathlib.Path(
            "/etc/rhythm/rss_node.conf.example").read_text()

        # As the README says: enable it (and with it mod_session), check the configuration.
        run("a2enmod", "rhythm_session")
        assert {"rhythm_session.load", "rhythm_session.conf", "session.load"} <= enabled_modules()
        assert "Syntax OK" in run("apache2ctl", "configtest")

        # An upgrade to the newer build keeps the administrator's change to a config file.
        conf = pathlib.Path("/etc/apache2/mods-available/rhythm_session.conf")
        conf.write_text(conf.read_text() + "# changed by the administrator\n")
        run("dpkg", "-i", *builds["0.1.0+test2"])
        assert [installed_version(p) for p in PACKAGES] == ["0.1.0+test2"] * 2
        assert conf.read_text().endswith("# changed by the administrator\n")
        assert {"rhythm_session.load", "session.load"} <= enabled_modules()
        assert "Syntax OK" in run("apache2ctl", "configtest")

        # An instance config from the example, as its comments say (this machine's loopback).
        updates, queries = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
        example = pathlib.Path("/etc/rhythm/rss_node.conf.example").read_text()
        INSTANCE_CONFIG.write_text(
            re.sub(r"^updates = .*$", f"updates = {updates}",
                   re.sub(r"^queries = .*$", f"queries = {queries}",
                          re.sub(r"^max-memory = .*$", "max-memory = 64M", example, flags=re.M),
                          flags=re.M), flags=re.M))
        check, start = unit_command_lines()
        assert start[0] == "/usr/bin/rss_node"
        assert "configuration OK" in run(*as_unit_user(check))
        log = open(tmp_path / "rss_node.log", "w")
        node = InstalledNode(queries, subprocess.Popen(as_unit_user(start), stdout=log,
                                                       stderr=subprocess.STDOUT), log)
        wait_for(lambda: subprocess.run(["rss_node", "status", queries], capture_output=True,
                                        timeout=10).returncode == 0, 20, "the node to answer")
        assert pwd.getpwuid(os.stat(f"/proc/{node.proc.pid}").st_uid).pw_name == "rhythm"

        # One session made on a web server with the installed module, in the bank, and fetched
        # by another web server, which counts on.
        os.environ["RHYTHM_MODULE"] = MODULE
        web1 = backed_server("web1", [node]).start()
        servers.append(web1)
        browser = Browser(web1)
        for expected in (1, 2):
            status, _, text = browser.get("/app/counter")
            assert status == 200 and count_of(text) == expected
        session_id = browser.cookies["rhythm_session"]
        got = wait_for(lambda: (lambda p: p.stdout if "count=2" in p.stdout else None)(
            node.get(session_id)), 10, "the session's second version in the bank")
        assert "state: found" in got and "origin: web1" in got
        web2 = backed_server("web2", [node]).start()
        servers.append(web2)
        browser.server = web2
        status, _, text = browser.get("/app/counter")
        assert status == 200 and count_of(text) == 3, text
        assert web2.status()["RhythmBackupFetched"] >= 1

        # Removed (not purged): the programs go, the configuration and the user stay.
        for server in servers:
            server.cleanup()
        servers.clear()
        stop_node(node)
        run("dpkg", "--remove", *PACKAGES)
        assert not os.path.exists(MODULE) and not os.path.exists("/usr/bin/rss_node")
        assert not os.path.exists("/etc/apache2/mods-enabled/rhythm_session.load")
        assert conf.read_text().endswith("# changed by the administrator\n")
        assert os.path.isfile("/etc/rhythm/rss_node.conf.example")
        assert pwd.getpwnam("rhythm")
    finally:
        for server in servers:
            server.cleanup()
        os.environ.pop("RHYTHM_MODULE", None)
        if node is not None:
            stop_node(node)
        INSTANCE_CONFIG.unlink(missing_ok=True)
        purge = subprocess.run(["dpkg", "--purge"] + PACKAGES, capture_output=True, text=True)
        purged_paths, purged_accounts = machine_state()
        restore_apache_modules(before_paths)
    assert node is None or node.proc.returncode == 0, (tmp_path / "rss_node.log").read_text()
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert [installed_version(p) for p in PACKAGES] == [None, None]
    # After the purge: nothing of ours, the accounts as they were, and mod_session on where it was
    # off before.
    left = purged_paths ^ before_paths
    assert sorted(p for p in left
                  if not SESSION_ENABLED.search(p) and not APACHE_STATE_FOLDER.search(p)) == []
    assert purged_accounts == before_accounts
    if "session.load" not in modules_before:
        assert "/etc/apache2/mods-enabled/session.load" in purged_paths
    # And after the test's own clean-up of that, the machine as it was.
    assert machine_state() == (before_paths, before_accounts)
