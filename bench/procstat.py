"""CPU time of another process (a worker, a PostgreSQL backend), read from /proc: what the benches
report beside wall time, since CPU stays meaningful on a shared machine."""

import os
from pathlib import Path


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
