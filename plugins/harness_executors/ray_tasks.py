"""``harness run --executor ray``: every job (model x variant x seed) as a Ray task.

The driver decodes the data once into the cache, one entry per input size; a worker on the same
machine maps that entry (no copy), and only a cluster of several machines also gets a copy in
Ray's object store, so workers elsewhere need neither the data path nor a shared filesystem. The
starting weights (a file, a package's file or the hub's) travel as bytes when the worker cannot
see the driver's path. A task trains in a scratch folder of its own and returns that folder's
files (the scratch folders of one run share a parent in the temp folder, which the driver removes
at the end, so a task cancelled or killed mid-job leaves nothing behind on the driver's machine);
the driver writes them under ``--out``, each file atomically and ``metrics.json`` last, so a
folder with a ``metrics.json`` is complete. A worker that dies is retried once by Ray, on another
node where its own is lost; when no node left can take the jobs still to run (``--node-wait``
seconds, for a node to come back or an autoscaler to add one), their rows fail, and ``--resume``
runs them again. A job that raises gets a ``failed`` row, as with the local executor
(``harness.executors``' policy).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from harness.toolkit import HarnessError, one_line
from harness.executors import (CHECKPOINT, METRICS, JobContext, Outcome, Status, choose_evaluators, installed_registry,
                               job_label, log, open_entry, outcome_words, plain_job, rebuild_job, resume_command,
                               run_job, write_bytes)

RETRIES = 1  # a worker that dies (killed, out of memory) gets one more try
SCRATCH_PREFIX = "harness-ray-"  # a run's tasks' scratch folders: <temp>/harness-ray-<run>/job-*
POLL_S = 5.0  # how often the driver looks for a node that can take the jobs left
OPTIONS = {"address": None, "job_cpus": 1.0, "job_gpus": 0.0, "node_wait": 300.0}
HELP = {"address": "with --executor ray: join this cluster ('auto', 'ray://host:10001'); default: start a local "
                   "Ray with this machine's CPUs",
        "job_cpus": "with --executor ray: CPUs per job, and its torch threads (default: 1)",
        "job_gpus": "with --executor ray: GPUs per job, fractions share one (default: 0)",
        "node_wait": "with --executor ray: seconds the jobs left wait while no node of the cluster can take "
                     "them (every node that could was lost) before their rows fail, for --resume to finish "
                     "later (default: 300)"}


def check(options: dict, request) -> None:
    if options["job_cpus"] <= 0 or options["job_gpus"] < 0:
        raise HarnessError("--job-cpus must be above 0 and --job-gpus at least 0")
    import_ray()


def slots(options: dict) -> int:
    """Jobs side by side: this machine's CPUs over each job's (a cluster joined with --address
    counts as this machine: pass harness tune --parallel for more)."""
    return max(1, int((os.cpu_count() or 1) // options["job_cpus"]))


def import_ray():
    # read when Ray is imported: usage statistics would be sent to Ray's servers (the harness sends
    # nothing anywhere); identical lines of two jobs are two jobs' lines, not one to fold
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise HarnessError("--executor ray needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')") from None
    return ray


def start(ray, options: dict) -> None:
    """Join ``--address``'s cluster, or start a local one with this machine's CPUs."""
    if options["address"]:
        ray.init(address=options["address"], log_to_driver=True)
    else:  # a cluster of this machine alone, listening on loopback only; "local": a new one even where
        # `ray start` left a cluster on this machine, which ray.init would otherwise join
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True,
                 _node_ip_address="127.0.0.1")


def run(jobs: list, context: JobContext) -> None:
    """Every job as a Ray task; each one's files are written as it finishes."""
    ray = import_ray()
    options = context.options
    scratch = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
    start(ray, options)
    try:
        warm_up_workers(ray, options, len(jobs))
        train = ray.remote(train_job)
        stored, weights_files, pending = {}, {}, {}  # input size -> shipped images; path -> ref of its bytes
        for job in jobs:
            size = job.config["input_size"]
            if size not in stored:
                stored[size] = ship(ray, context.images_for(size))
            path = job.weights.path if job.weights is not None else None
            if path is not None and path not in weights_files:
                weights_files[path] = ray.put(Path(path).read_bytes())
            label = job_label(job, context.request)
            task = train.options(num_cpus=options["job_cpus"], num_gpus=options["job_gpus"], max_retries=RETRIES,
                                 retry_exceptions=False, name=f"harness:{label}")
            # in a list, so that Ray hands the task the reference and fetches the bytes only if asked
            weights_bytes = [weights_files[path]] if path is not None else None
            ref = task.remote({**payload(job, context), "scratch": scratch}, stored[size], threads(options["job_cpus"]),
                              weights_bytes)
            pending[ref] = (job, label)
        log_start(len(jobs), options)
        collect(ray, pending, context)
    finally:
        ray.shutdown()  # the workers are gone: what a killed or cancelled task left can go
        shutil.rmtree(Path(tempfile.gettempdir()) / scratch, ignore_errors=True)


def collect(ray, pending: dict, context: JobContext) -> None:
    """Wait for the tasks one by one, writing each job's files and a progress line."""
    progress = Progress(len(pending))
    stranded_since = None  # when the cluster last lost every node that could take a job
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            if ready:
                job, label = pending.pop(ready[0])
                finish(context, job, label, result_of(ray, ready[0]), progress)
                continue
            stranded_since = None if can_take_a_job(ray, context.options) else stranded_since or time.monotonic()
            if stranded_since is not None and time.monotonic() - stranded_since >= context.options["node_wait"]:
                fail_stranded(ray, pending, context, progress)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        log(f"ray: interrupted; {progress.done} finished jobs kept, {len(pending)} cancelled "
            f"(continue with: {resume_command(context.request)})")
        raise


class Progress:
    """Jobs done of the run's, and the time so far: the progress line after each."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def line(self, label: str, summary: str) -> str:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        return (f"ray: {self.done}/{self.total} done: {label} {summary} ({elapsed:.0f}s elapsed"
                + (f", about {eta:.0f}s to go)" if self.done < self.total else ")"))


def result_of(ray, ref) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # the worker died on every try, or the task was lost
        return {"status": Status.FAILED, "reason": f"worker lost after {RETRIES + 1} tries: {one_line(exc)}",
                "traceback": str(exc), "files": {}}


def finish(context: JobContext, job, label: str, result: dict, progress: Progress) -> None:
    """A task's end: its files under --out, its outcome told, its progress line."""
    write_files(context.request.out, result["files"])
    outcome = Outcome(job, result["status"], result.get("metrics", {}), result.get("reason", ""),
                      result.get("traceback", ""))
    context.finished(outcome)
    log(progress.line(label, outcome_words(outcome)))


def can_take_a_job(ray, options: dict) -> bool:
    """Whether a live node of the cluster has a job's CPUs and GPUs (busy or not)."""
    for node in ray.nodes():
        have = node.get("Resources", {}) if node.get("Alive") else {}
        if have.get("CPU", 0) >= options["job_cpus"] and have.get("GPU", 0) >= options["job_gpus"]:
            return True
    return False


def fail_stranded(ray, pending: dict, context: JobContext, progress: Progress) -> None:
    """Every job left fails: no node of the cluster has been able to take one for --node-wait seconds."""
    options = context.options
    reason = (f"no node of the cluster can take it (a job needs {job_resources(options)}; the nodes that could "
              f"were lost) for {options['node_wait']:g}s; --resume runs it again once one can")
    for ref, (job, label) in list(pending.items()):
        ray.cancel(ref, force=True)
        del pending[ref]
        finish(context, job, label, {"status": Status.FAILED, "reason": reason, "traceback": reason, "files": {}},
               progress)


def log_start(count: int, options: dict) -> None:
    where = options["address"] or "a local Ray instance"
    log(f"ray: {count} job(s) on {where}, {job_resources(options)} each")


def job_resources(options: dict) -> str:
    """'1 CPU(s)', '2 CPU(s) and 0.5 GPU(s)': what one job asks of a node."""
    return f"{options['job_cpus']:g} CPU(s)" + (f" and {options['job_gpus']:g} GPU(s)" if options["job_gpus"] else "")


def warm_up_workers(ray, options: dict, jobs: int) -> None:
    """Have the workers import torch and the plugins (seconds each) while the driver decodes the data
    and puts it in the object store, instead of after. Nothing waits for these tasks."""
    slots = int(ray.cluster_resources().get("CPU", 1) // options["job_cpus"]) or 1
    warm = ray.remote(import_what_a_job_needs).options(num_cpus=options["job_cpus"], num_gpus=options["job_gpus"])
    for _ in range(min(jobs, slots)):
        warm.remote()


def import_what_a_job_needs() -> None:
    import torch  # noqa: F401

    installed_registry()


def threads(cpus: float) -> int:
    return max(1, int(cpus))


def ship(ray, images) -> dict:
    """What a task gets of the images: the cache entry they are mapped from, which a worker on this
    machine maps too, and a reference to a copy in the object store where a worker may be on
    another machine (or the images are not cached)."""
    machines = sum(1 for node in ray.nodes() if node.get("Alive"))
    copy = [ray.put(images)] if images.entry is None or machines > 1 else None
    return {"entry": images.entry, "source": images.source, "copy": copy}


def receive(shipped: dict):
    """The images ``ship`` sent: mapped from the cache entry where this machine has it."""
    if shipped["entry"]:
        images = open_entry(Path(shipped["entry"]), shipped["source"])
        if images is not None:
            print(f"harness: data: mapped from the cache entry {shipped['entry']}", flush=True)
            return images
    if shipped["copy"] is None:
        raise HarnessError(f"the cache entry {shipped['entry']} cannot be read on this worker")
    import ray

    print("harness: data: copied from the object store", flush=True)
    return ray.get(shipped["copy"][0])


def payload(job, context: JobContext) -> dict:
    """What a task needs besides the images and the weights' bytes: plain data, nothing that points
    at the driver's disk but the weights' path (used where the worker sees it)."""
    request = context.request
    files = {}
    checkpoint = job.folder / CHECKPOINT
    if checkpoint.is_file():  # an interrupted run's: the task resumes from it
        files[CHECKPOINT] = checkpoint.read_bytes()
    return {**plain_job(job), "folder": str(job.folder.relative_to(request.out)),
            "request": dataclasses.replace(request, out=Path("."), executor="local", executor_options={},
                                           results_dir=Path(request.out).resolve()),
            "weights": job.weights, "files": files, "dataset": context.dataset}


def train_job(task: dict, shipped: dict, threads: int, weights_bytes=None) -> dict:
    """The Ray task: train one job in a scratch folder and return that folder's files."""
    import torch

    torch.set_num_threads(threads)
    parent = Path(tempfile.gettempdir()) / task["scratch"]
    parent.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="job-", dir=parent))
    try:
        folder = scratch / task["folder"]
        folder.mkdir(parents=True)
        for name, data in task["files"].items():
            (folder / name).write_bytes(data)
        request = dataclasses.replace(task["request"], out=scratch)
        registry = installed_registry()
        source = local_weights(task["weights"], weights_bytes, scratch)
        job = rebuild_job(registry, request, task, folder, source)
        evaluators = choose_evaluators(registry, request.evaluators, request.eval_options)
        context = JobContext(request, registry, evaluators, images_for=lambda size: receive(shipped),
                             dataset=task["dataset"], options={}, finished=None)
        outcome = run_job(job, context)
        shutil.rmtree(scratch / ".weights", ignore_errors=True)
        return {"status": outcome.status, "metrics": outcome.metrics, "reason": outcome.reason,
                "traceback": outcome.traceback, "files": files_under(scratch)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def local_weights(source, weights_bytes, scratch: Path):
    """The weights' source as this worker reads it: the driver's path where this machine has that
    file, else the bytes the driver put in the object store, written into the scratch folder."""
    if source is None or weights_bytes is None:
        return source
    if Path(source.path).is_file():
        print(f"harness: weights: read from {source.path}", flush=True)
        return source
    import ray

    local = scratch / ".weights" / Path(source.path).name
    local.parent.mkdir()
    local.write_bytes(ray.get(weights_bytes[0]))
    print(f"harness: weights: received as bytes from the object store ({source.path} is not on this node)",
          flush=True)
    return dataclasses.replace(source, path=local)


def files_under(root: Path) -> dict:
    """Every file under ``root`` by relative path, ``metrics.json`` files last."""
    paths = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: (p.name == METRICS, str(p)))
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def write_files(out: Path, files: dict) -> None:
    """Write a task's files under ``out`` in the order given, each one atomically."""
    for relative, data in files.items():
        write_bytes(out / relative, data)
