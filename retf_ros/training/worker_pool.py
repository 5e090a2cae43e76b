"""Independent jobs (the runs of `retf ablate --jobs N`) in at most N worker processes at once.

Each job gets a fresh *spawned* process (never forked: a forked child would inherit the parent's
torch thread pools and could not use CUDA), whose stdout and stderr go to the job's own log
file, so N trainings do not interleave on the terminal; the parent shows one progress bar over
the jobs. A job succeeds when its process exits with status 0. After the first failure no new
job starts, the running ones finish (their results are kept), and :class:`RetfError` names
every failed job, its log and the log's last line.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from retf_ros.errors import RetfError


@dataclass(frozen=True)
class Job:
    name: str              # how errors and the progress bar call it, e.g. "rtf seed 1"
    log: Path              # the job's stdout + stderr (appended to)
    target: Callable       # a module-level function: spawn pickles it by name
    args: tuple = ()


def _child(job: Job) -> None:
    """Worker process entry: redirect the output into the job's log, run the target, exit
    with status 1 (the error in the log) when it raises."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        job.target(*job.args)
    except RetfError as exc:  # expected failures: one clear line, as the CLI prints them
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        raise SystemExit(1) from None
    sys.stdout.flush()
    sys.stderr.flush()


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").replace("\r", "\n").splitlines()]
    except OSError:
        return "(no log)"
    return next((line for line in reversed(lines) if line), "(empty log)")


def run_jobs(jobs: list[Job], processes: int, desc: str = "jobs") -> None:
    """Run ``jobs``, at most ``processes`` at a time, each in its own spawned process."""
    context = multiprocessing.get_context("spawn")
    pending = list(jobs)
    running: dict[int, tuple[Job, multiprocessing.Process]] = {}  # sentinel -> (job, process)
    failed: list[tuple[Job, int]] = []
    bar = tqdm(total=len(jobs), desc=desc, unit="run", file=sys.stderr)
    try:
        while pending or running:
            while pending and not failed and len(running) < processes:
                job = pending.pop(0)
                process = context.Process(target=_child, args=(job,), name=f"retf {job.name}")
                process.start()
                running[process.sentinel] = (job, process)
            if not running:
                break
            for sentinel in wait(list(running)):
                job, process = running.pop(sentinel)
                process.join()
                if process.exitcode != 0:
                    failed.append((job, process.exitcode))
                bar.update(1)
            bar.set_postfix_str(", ".join(job.name for job, _ in running.values()), refresh=True)
    finally:
        bar.close()
        for job, process in running.values():  # interrupted: stop what still runs
            process.terminate()
            process.join()
    if failed:
        detail = "; ".join(f"{job.name} (exit status {code}, log {job.log}: {_last_line(job.log)})"
                           for job, code in failed)
        not_started = f"; not started: {', '.join(job.name for job in pending)}" if pending else ""
        raise RetfError(f"{len(failed)} of {len(jobs)} worker(s) failed: {detail}{not_started}")
