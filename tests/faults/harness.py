"""What the fault scenarios share: real worker processes to start and kill, a way to wait
for a job to reach a point, the checks every scenario makes (no job lost, none done twice,
one terminal webhook each, no 5xx), and the table the reliability command prints.

`LIPDUB_FAULT_RUNS` sets how many times each scenario repeats its fault (the ordinary test
command: 2; `scripts/reliability.sh`: 20; the slower scenarios run half as many)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from lipdub.db.models import Job
from lipdub.db.session import session_factory

RUNS = int(os.environ.get("LIPDUB_FAULT_RUNS", "2"))
REPORT = os.environ.get("LIPDUB_RELIABILITY_REPORT")  # JSON lines, one per scenario
RECORDED: list[Scenario] = []  # this session's, for the table at the end (conftest)


@dataclass
class Scenario:
    """One fault scenario's outcome, a row of the reliability table."""

    name: str
    runs: int = 0
    jobs: int = 0
    lost: int = 0  # jobs that did not end as they should
    duplicates: int = 0  # stages or webhooks done twice
    server_errors: int = 0  # 5xx answers from the gateway
    max_rss_mib: float = 0.0  # the largest peak RSS of the processes under test
    notes: list[str] = field(default_factory=list)

    def watch(self, pid: int) -> None:
        """Fold in a process's peak RSS (read before it is stopped)."""
        self.max_rss_mib = max(self.max_rss_mib, peak_rss_mib(pid))

    def count(self, response: httpx.Response) -> httpx.Response:
        self.server_errors += response.status_code >= 500
        return response

    def save(self) -> None:
        RECORDED.append(self)
        if REPORT:
            with open(REPORT, "a") as out:
                out.write(json.dumps(asdict(self)) + "\n")


def reset_peak_rss(pid: int) -> None:
    """Start a process's peak RSS afresh (Linux: 5 > clear_refs), so that an in-process
    scenario's figure is its own, not the test session's."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident memory, or 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Workers:
    """Celery worker processes of one platform (environment fixed), started and stopped at
    will. Their temp folder is their own, so leftovers can be looked for. With `beat`, a
    beat process runs beside them, restarted whenever it exits, as the deployments'
    `restart: unless-stopped` and Kubernetes Deployment do."""

    def __init__(self, env: dict[str, str], tmp: Path, beat: bool = False) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "TMPDIR": str(tmp)}
        self.tmp = tmp
        self.processes: list[subprocess.Popen] = []
        self.beat_restarts = -1
        self._beat: subprocess.Popen | None = None
        self._stop = threading.Event()
        if beat:
            threading.Thread(target=self._supervise_beat, daemon=True).start()

    def _supervise_beat(self) -> None:
        while not self._stop.is_set():
            if self._beat is None or self._beat.poll() is not None:
                self.beat_restarts += 1
                log = (self.tmp / f"beat-{self.beat_restarts}.log").open("wb")
                self._beat = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "beat",
                     "--loglevel", "WARNING", "-s",
                     str(self.tmp / f"beat-schedule-{self.beat_restarts}")],
                    env=self.env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            self._stop.wait(0.5)

    def start(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "worker",
                   "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel",
                   os.environ.get("LIPDUB_TEST_WORKER_LOGLEVEL", "WARNING")]
        log = (self.tmp / f"worker-{len(self.processes)}.log").open("wb")  # for post-mortems
        self.processes.append(subprocess.Popen(command, env=self.env, stdout=log,
                                               stderr=subprocess.STDOUT,
                                               start_new_session=True))
        return self.processes[-1]

    def signal(self, process: subprocess.Popen, sig: int, scenario: Scenario) -> None:
        scenario.watch(process.pid)
        os.killpg(process.pid, sig)

    def stop_all(self, scenario: Scenario | None = None) -> None:
        self._stop.set()
        for process in [*self.processes, *([self._beat] if self._beat else [])]:
            if process.poll() is None:
                if scenario is not None:
                    scenario.watch(process.pid)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               every: float = 0.05) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def job_row(database_url: str, job_id: str) -> Job:
    with session_factory(database_url)() as session:
        job = session.get(Job, job_id)
        _ = job.events  # loaded while the session is open
        return job


def finished(database_url: str, job_id: str) -> bool:
    return job_row(database_url, job_id).state.terminal


def check_jobs(scenario: Scenario, database_url: str, job_ids: list[str],
               webhooks: list[tuple[str, dict]] | None = None) -> None:
    """Every job succeeded exactly once, its stages each done once, and (with a receiver)
    exactly one terminal webhook each."""
    scenario.jobs += len(job_ids)
    terminal = Counter(message_id for message_id, body in webhooks or []
                       if body["type"] != "job.progress")
    interruptions = 0
    for job_id in job_ids:
        job = job_row(database_url, job_id)
        states = [e.state.value for e in job.events]
        interruptions += sum(any(w in (e.message or "") for w in ("interrupted", "handed back"))
                             for e in job.events)
        if job.state.value != "succeeded":
            scenario.lost += 1
            scenario.notes.append(f"{job_id}: {job.state.value} {job.error_code}")
        done = (job.work or {}).get("done", [])
        scenario.duplicates += (states.count("succeeded") > 1) + (len(done) != len(set(done)))
        if webhooks is not None:
            sent = terminal.get(f"msg_{job_id}_succeeded", 0)
            scenario.duplicates += max(0, sent - 1)
            scenario.lost += sent == 0
    scenario.notes.append(f"{interruptions} stage interruptions or hand-backs in job events")


def leftovers(tmp: Path, store: Path | None = None) -> list[str]:
    """Scratch folders, half-written files and working artifacts still lying around."""
    found = [p.name for p in tmp.glob("lipdub-*") if p.name != "lipdub-jobs"]  # not logs
    found += [p.name for p in (tmp / "lipdub-jobs").glob("*")]
    if store is not None:
        found += [str(p.relative_to(store)) for p in store.rglob("*")
                  if p.is_file() and ("/work/" in str(p) or "/.partial/" in str(p)
                                      or "_readiness" in str(p))]
    return found


def table(rows: list[dict]) -> str:
    """The reliability table: scenario, runs, jobs, lost, duplicates, 5xx, max memory."""
    head = f"{'scenario':<42} {'runs':>4} {'jobs':>4} {'lost':>4} {'dups':>4} {'5xx':>4} " \
           f"{'max RSS':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<42} {r['runs']:>4} {r['jobs']:>4} {r['lost']:>4} "
                     f"{r['duplicates']:>4} {r['server_errors']:>4} "
                     f"{r['max_rss_mib']:>5.0f} MiB")
        lines += [f"    {note}" for note in r["notes"]]
    return "\n".join(lines)
