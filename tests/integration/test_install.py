"""`cmake --install` puts the module where apxs says and Debian's mods-available files beside
the others; the installed files make a configuration that apache2 accepts; the systemd unit runs
the rss_node it installed, and the documentation the installed files name is there."""

import os
import pathlib
import re
import subprocess
import tempfile

from rhythm_httpd import HTTPD, SYSTEM_MODULES, httpd_environment

BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", pathlib.Path(__file__).parents[2] / "_build"))


def apxs(what):
    return subprocess.run(["apxs", "-q", what], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_install_layout_and_config():
    with tempfile.TemporaryDirectory() as dest:
        subprocess.run(["cmake", "--install", str(BUILD)], check=True, capture_output=True,
                       env=dict(os.environ, DESTDIR=dest))
        root = pathlib.Path(dest)
        module = root / apxs("LIBEXECDIR").lstrip("/") / "mod_rhythm_session.so"
        available = root / apxs("SYSCONFDIR").lstrip("/") / "mods-available"
        assert module.is_file()
        load = (available / "rhythm_session.load").read_text()
        assert "# Depends: session" in load  # a2enmod enables mod_session first
        assert f"LoadModule rhythm_session_module {apxs('LIBEXECDIR')}/mod_rhythm_session.so" in load
        conf = available / "rhythm_session.conf"
        assert "RhythmSessionCacheSize" in conf.read_text()

        # The installed files, as a2enmod would link them (in alphabetical order, so this module
        # loads before mod_session), pass apache2 -t.
        test_conf = root / "httpd.conf"
        test_conf.write_text(f"""
ServerRoot "{dest}"
ServerName 127.0.0.1
DefaultRuntimeDir "{dest}"
PidFile "{dest}/httpd.pid"
ErrorLog "{dest}/error.log"
Listen 127.0.0.1:1
LoadModule mpm_event_module {SYSTEM_MODULES}/mod_mpm_event.so
LoadModule authz_core_module {SYSTEM_MODULES}/mod_authz_core.so
{load.replace(apxs("LIBEXECDIR") + "/mod_rhythm_session.so", str(module))}
LoadModule session_module {SYSTEM_MODULES}/mod_session.so
Include "{conf}"
""")
        p = subprocess.run([HTTPD, "-f", str(test_conf), "-t"], capture_output=True, text=True,
                           env=httpd_environment())
        assert p.returncode == 0, p.stderr


def test_the_systemd_unit_runs_the_installed_rss_node_and_every_named_document_is_installed():
    """The unit names the binary where this install put it (not /usr/bin/rss_node whatever the
    prefix), and every file of the documentation that an installed file (the unit, the
    mods-available file, the man page) names is installed."""
    prefix = pathlib.Path(cmake_cache("CMAKE_INSTALL_PREFIX"))
    with tempfile.TemporaryDirectory() as dest:
        subprocess.run(["cmake", "--install", str(BUILD)], check=True, capture_output=True,
                       env=dict(os.environ, DESTDIR=dest))
        root = pathlib.Path(dest)

        def installed(path):
            return root / str(path).lstrip("/")
        unit = installed(prefix / "lib/systemd/system/rss_node@.service").read_text()
        starts = re.findall(r"^ExecStart(?:Pre)?=(\S+) ", unit, re.M)
        assert starts == [str(prefix / "bin/rss_node")] * 2, unit
        assert installed(starts[0]).is_file()
        named = set(re.findall(r"(/\S+/share/doc/rhythm/[\w./-]+\w)", unit))
        named |= set(re.findall(
            r"(/\S+/share/doc/rhythm/[\w./-]+\w)",
            (installed(apxs("SYSCONFDIR")) / "mods-available/rhythm_session.conf").read_text()))
        man = installed(prefix / "share/man/man1/rss_node.1").read_text()
        assert "rss_node \\- remote session server" in man
        named |= set(re.findall(r"(/\S+/share/doc/rhythm/[\w./-]+\w)", man))
        assert len(named) >= 4, named  # rss_node.md, security.md, the example, the README
        for path in named:
            assert installed(path).is_file(), path
        # The example configurations and the documents the README links to.
        docs = installed(prefix / "share/doc/rhythm")
        for name in ("README.md", "backup.md", "rss_node.md", "security.md", "protocol.md",
                     "examples/rss_node.conf", "examples/rhythm_session.conf"):
            assert (docs / name).is_file(), name


def cmake_cache(name):
    for line in (BUILD / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    raise KeyError(name)


def test_without_mod_session_the_config_test_says_what_is_missing():
    with tempfile.TemporaryDirectory() as dest:
        conf = pathlib.Path(dest) / "httpd.conf"
        conf.write_text(f"""
ServerRoot "{dest}"
ServerName 127.0.0.1
PidFile "{dest}/httpd.pid"
ErrorLog "{dest}/error.log"
Listen 127.0.0.1:1
LoadModule mpm_event_module {SYSTEM_MODULES}/mod_mpm_event.so
LoadModule authz_core_module {SYSTEM_MODULES}/mod_authz_core.so
LoadModule rhythm_session_module {BUILD}/mod_rhythm_session/mod_rhythm_session.so
""")
        p = subprocess.run([HTTPD, "-f", str(conf), "-t"], capture_output=True, text=True,
                           env=httpd_environment())
        assert p.returncode != 0
        assert "RS0008: mod_rhythm_session needs mod_session" in p.stdout + p.stderr
