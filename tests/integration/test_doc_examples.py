"""Every configuration example in README.md and docs/ passes `apache2 -t`: each ```apache block,
put into a server's configuration as an administrator would paste it. (A trailing `# comment` is
read by httpd as more arguments: the first thing a new user trips on.) The key files an example
names under /etc/rhythm/ are made with `rss_node keygen` in a temporary folder and the example
is pointed there; nothing else in it is changed.
"""

import pathlib
import re
import subprocess

import pytest

from rhythm_httpd import Httpd
from rss_node_fixture import binary_path

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
KEY_FILE = re.compile(r"/etc/rhythm/([\w.-]+)\.(?:pub|key)\b")


def examples():
    """(document, line, text) of each ```apache block."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for m in re.finditer(r"^```apache\n(.*?)^```", text, re.S | re.M):
            line = text.count("\n", 0, m.start()) + 1
            found.append((path.relative_to(ROOT), line, m.group(1)))
    return found


def test_the_documents_have_examples_to_test():
    # Both of README.md's and docs/security.md's: a change to the fences must not make the test
    # below pass by finding nothing.
    where = {str(path) for path, _, _ in examples()}
    assert {"README.md", "docs/security.md"} <= where


@pytest.mark.parametrize("path,line,example",
                         [pytest.param(*e, id=f"{e[0]}:{e[1]}") for e in examples()])
def test_the_example_passes_the_config_test(path, line, example, tmp_path):
    for name in sorted(set(KEY_FILE.findall(example))):
        subprocess.run([binary_path(), "keygen", str(tmp_path / name)], check=True,
                       capture_output=True)
    server = Httpd(example.replace("/etc/rhythm/", f"{tmp_path}/"))
    try:
        rc, out = server.config_test()
    finally:
        server.cleanup()
    assert rc == 0, f"{path}:{line}: apache2 -t refused the example:\n{out}\n{example}"
