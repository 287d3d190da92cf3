"""Who holds a claim, a lease or a run: this process, named so that another process can tell whether
it still lives (on this host by its process id; elsewhere only by its lease or heartbeat)."""

from __future__ import annotations

import os
import socket
import time


def this_process() -> str:
    """Who holds a claim: host, process id and a start stamp (process ids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_STARTED}"


_STARTED = time.time_ns() // 1_000_000


def holder_dead(holder: str | None) -> bool:
    """True when the claim's holder was a process on this host that no longer runs."""
    if not holder:
        return True
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if holder == this_process():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(int(pid_text))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False
