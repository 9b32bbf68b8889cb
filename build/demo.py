"""The local demo: a private httpd on 127.0.0.1 with mod_rhythm_session and a page that counts
visits in the session. Started by build/demo; Ctrl-C stops everything it started."""

import os
import pathlib
import signal
import sys
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("RHYTHM_MODULE", str(pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", TOP / "_build"))
                                          / "mod_rhythm_session" / "mod_rhythm_session.so"))

from rhythm_httpd import Httpd  # noqa: E402

SITE = """
<Location /app>
    Session On
    SessionMaxAge 1800
    SessionEnv On
    SessionHeader X-Replace-Session
    RhythmSession On
</Location>
"""


def main():
    server = Httpd(SITE, name="demo")
    server.start()
    # SIGTERM stops the demo like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"""
Rhythm demo running (httpd pid {server.pid}, files in {server.dir})

  Visit counter:  {server.url}/app/demo
  server-status:  {server.url}/server-status

Reload the page: the count lives in the session, kept in this server's shared memory.
Press Ctrl-C to stop.
""", flush=True)
    try:
        while server.proc.poll() is None:
            time.sleep(0.5)
        print(f"httpd exited with {server.proc.returncode}; see {server.error_log}")
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()
        print("demo stopped")


if __name__ == "__main__":
    main()
