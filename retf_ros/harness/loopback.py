"""Keep DDS on the loopback interface: the one place that decides how.

Every process retf_ros starts (tests, benchmarks, the demo) gets its environment from
:func:`loopback_environment`. It must be in place before the process's first ``rclpy.init()``,
so it is passed to child processes as their environment rather than set from inside them.
Importing this module does not import rclpy.
"""
from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

PROFILE_RESOURCE = "fastdds_loopback.xml"


def profile_path() -> Path:
    """Path of the Fast DDS XML profile (shared memory + UDPv4 on 127.0.0.1 only)."""
    return Path(str(resources.files("retf_ros.resources").joinpath(PROFILE_RESOURCE)))


def loopback_environment(domain_id: int, log_dir: str | os.PathLike | None = None,
                         base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that must speak DDS on loopback only.

    ``domain_id`` separates concurrent test workers and demos (0-101 are safe with Fast DDS).
    ``log_dir`` receives rclpy's log files (a fresh temporary directory when omitted).
    """
    if not 0 <= domain_id <= 101:
        raise ValueError(f"ROS_DOMAIN_ID must be in 0..101 for Fast DDS on one host, got {domain_id}")
    env = dict(os.environ if base is None else base)
    env.pop("RMW_IMPLEMENTATION", None)  # only rmw_fastrtps_cpp exists in the wheels
    env.pop("ROS_LOCALHOST_ONLY", None)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile_path())
    # The profile restricts transports to loopback; discovery uses its unicast initial peer.
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_LOG_DIR"] = str(log_dir) if log_dir is not None else tempfile.mkdtemp(prefix="retf_roslog_")
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def remove_stale_shm_segments() -> int:
    """Delete Fast DDS shared-memory files that no live process maps or holds open.

    A killed DDS process leaves ``/dev/shm/fastdds_*`` segments and ``sem.fastdds_*`` mutexes
    behind. Their names carry no owner pid, so a file counts as stale when no process lists it
    in ``/proc/<pid>/maps`` or among its open descriptors. Returns how many files were removed.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return 0
    candidates = [p for p in shm.iterdir() if p.name.startswith(("fastdds_", "sem.fastdds_"))]
    if not candidates:
        return 0
    in_use = shm_files_in_use()
    removed = 0
    for path in candidates:
        if str(path) in in_use:
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def shm_files_in_use() -> set[str]:
    """Paths under /dev/shm that some live process maps or has open."""
    used: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for line in (proc / "maps").read_text().splitlines():
                if "/dev/shm/" in line:
                    used.add(line[line.index("/dev/shm/"):].removesuffix(" (deleted)"))
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    used.add(target)
        except OSError:
            continue
    return used
