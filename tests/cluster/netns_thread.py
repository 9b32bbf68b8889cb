"""A thread of the test process that lives in a host's network namespace and runs, one at a
time, the calls it is handed: how a test talks to a host as that host would.

A network namespace belongs to a thread, not to the process: setns(2) moves only the calling
thread, the threads it starts inherit its namespace, and a socket keeps the namespace it was made
in whichever thread uses it later. So a socket made here connects and binds as the host, and so
does a ZeroMQ context whose first socket is made here (its I/O threads, which make its
connections, start then). The test process's main thread never moves. Python 3.11 has no
os.setns: the call goes through ctypes.
"""

import concurrent.futures
import ctypes
import os
import queue
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def join_namespace(path):
    """Moves the calling thread into the network namespace whose file is `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NamespaceThread:
    """A daemon thread in the network namespace `netns` (a name under /run/netns)."""

    def __init__(self, netns):
        self.netns = netns
        self._jobs = queue.SimpleQueue()
        self._joined = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"netns {netns}", daemon=True)
        self._thread.start()
        self._joined.wait()
        if self._error:
            raise self._error

    def _run(self):
        try:
            join_namespace(f"/run/netns/{self.netns}")
        except OSError as e:
            self._error = e
            return
        finally:
            self._joined.set()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as e:  # handed to the caller, who sees it raised
                    future.set_exception(e)

    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) run in the namespace; its result, or its exception raised here.
        A call made from within a call runs at once (it is in the namespace already)."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        future = concurrent.futures.Future()
        self._jobs.put((future, fn, args, kwargs))
        return future.result()

    def close(self, timeout=1):
        """Ends the thread after the call it is running, waiting at most `timeout` seconds (it is
        a daemon thread: one stuck in a call does not hold the process)."""
        self._jobs.put(None)
        self._thread.join(timeout)
