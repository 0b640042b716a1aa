"""``harness run --executor ray``: every job (model x variant x seed) as a Ray task.

The driver decodes the data once into the cache, one entry per input size; a worker on the same
machine maps that entry (no copy), and only a cluster of several machines also gets a copy in Ray's
object store, so workers elsewhere need neither the data path nor a shared filesystem. A task trains in a scratch folder of
its own and returns that folder's files; the driver writes them under ``--out``, each file
atomically and ``metrics.json`` last, so a folder with a ``metrics.json`` is complete. A worker
that dies is retried once by Ray; a job that raises gets a ``failed`` row, as with the local
executor. The driver writes the reports once, after the last job.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from harness.errors import HarnessError, one_line
from harness.fileio import write_bytes
from harness.runner import CHECKPOINT, failed_row, job_label, log, record_failure, run_model, spec_for

RETRIES = 1  # a worker that dies (killed, out of memory) gets one more try


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


def start(ray, request) -> None:
    """Join ``--address``'s cluster, or start a local one with this machine's CPUs."""
    if request.address:
        ray.init(address=request.address, log_to_driver=True)
    else:  # a cluster of this machine alone: it listens on loopback only
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True,
                 _node_ip_address="127.0.0.1")


def run_jobs(jobs: list, images_for, request, dataset: str) -> int:
    """Run ``jobs`` (``runner.Job``) as Ray tasks; write each one's files as it finishes. Returns
    the number of jobs that failed."""
    if not jobs:
        return 0
    ray = import_ray()
    start(ray, request)
    try:
        warm_up_workers(ray, request, len(jobs))
        train = ray.remote(train_job)
        stored = {}  # input size -> what ship() made of the decoded images
        weights_files = {}  # path -> object ref of the file's bytes, put once for every job using it
        pending = {}
        for job in jobs:
            size = job.config["input_size"]
            if size not in stored:
                stored[size] = ship(ray, images_for(size))
            if job.weights is not None and job.weights.kind == "file" and job.weights.path not in weights_files:
                weights_files[job.weights.path] = ray.put(Path(job.weights.path).read_bytes())
            label = job_label(job, request)
            task = train.options(num_cpus=request.job_cpus, num_gpus=request.job_gpus, max_retries=RETRIES,
                                 retry_exceptions=False, name=f"harness:{label}")
            # in a list, so that Ray hands the task the reference and fetches the bytes only if asked
            weights_bytes = [weights_files[job.weights.path]] if job.weights and job.weights.path in weights_files \
                else None
            ref = task.remote(payload(job, request, dataset), stored[size], threads(request.job_cpus), weights_bytes)
            pending[ref] = (job, label)
        log_start(len(jobs), request)
        return collect(ray, pending, request)
    finally:
        ray.shutdown()


def collect(ray, pending: dict, request) -> int:
    """Wait for the tasks one by one, writing each job's files and a progress line."""
    started, total, done, failures = time.perf_counter(), len(pending), 0, 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job, label = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # the worker died on every try, or the task was lost
                outcome = {"status": "failed", "reason": f"worker lost after {RETRIES + 1} tries: {one_line(exc)}",
                           "traceback": str(exc), "files": {}}
            write_files(request.out, outcome["files"])
            done += 1
            if outcome["status"] == "ok":
                result = f"ok, test accuracy {outcome['metrics']['accuracy']:.4f}"
            else:
                failures += 1
                record_failure(job, outcome["reason"], outcome["traceback"], label)
                result = "failed"
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (total - done)
            log(f"ray: {done}/{total} done: {label} {result} ({elapsed:.0f}s elapsed"
                + (f", about {eta:.0f}s to go)" if done < total else ")"))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        log(f"ray: interrupted; {done} finished jobs kept, {len(pending)} cancelled "
            "(run the command again with --resume to train them)")
        raise
    return failures


def log_start(count: int, request) -> None:
    where = request.address or "a local Ray instance"
    log(f"ray: {count} job(s) on {where}, {request.job_cpus:g} CPU(s)"
        + (f" and {request.job_gpus:g} GPU(s)" if request.job_gpus else "") + " each")


def warm_up_workers(ray, request, jobs: int) -> None:
    """Have the workers import torch and the plugins (seconds each) while the driver decodes the data
    and puts it in the object store, instead of after. Nothing waits for these tasks."""
    slots = int(ray.cluster_resources().get("CPU", 1) // request.job_cpus) or 1
    warm = ray.remote(import_what_a_job_needs).options(num_cpus=request.job_cpus, num_gpus=request.job_gpus)
    for _ in range(min(jobs, slots)):
        warm.remote()


def import_what_a_job_needs() -> None:
    import torch  # noqa: F401

    from harness import plugins

    plugins.installed()


def ship(ray, images) -> dict:
    """What a task gets of the images: the cache entry they are mapped from, which a worker on this
    machine maps too, and a reference to a copy in the object store where a worker may be on
    another machine (or the images are not cached)."""
    machines = sum(1 for node in ray.nodes() if node.get("Alive"))
    copy = [ray.put(images)] if images.entry is None or machines > 1 else None
    return {"entry": images.entry, "source": images.source, "copy": copy}


def receive(shipped: dict):
    """The images ``ship`` sent: mapped from the cache entry where this machine has it."""
    from harness.data.cache import open_entry

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


def threads(cpus: float) -> int:
    return max(1, int(cpus))


def payload(job, request, dataset: str) -> dict:
    """What a task needs besides the images (and the weights file's bytes): plain data, nothing that
    points at the driver's disk but the weights file's path."""
    relative = job.folder.relative_to(request.out)
    files = {}
    checkpoint = job.folder / CHECKPOINT
    if checkpoint.is_file():  # an interrupted run's: the task resumes from it
        files[CHECKPOINT] = checkpoint.read_bytes()
    return {"model": job.spec.name, "config": job.config, "name": job.name, "folder": str(relative),
            "request": dataclasses.replace(request, out=Path("."), executor="local"), "weights": job.weights,
            "files": files, "dataset": dataset}


def train_job(task: dict, shipped: dict, threads: int, weights_bytes=None) -> dict:
    """The Ray task: train one job in a scratch folder and return that folder's files. ``shipped``
    is what ``ship`` made of the images; ``weights_bytes`` is ``[object ref]`` of the weights file,
    fetched only when its path is not on this machine."""
    import torch

    from harness import plugins
    from harness.callbacks import CallbackList
    from harness.plugins import choose_evaluators

    torch.set_num_threads(threads)
    scratch = Path(tempfile.mkdtemp(prefix="harness-job-"))
    try:
        folder = scratch / task["folder"]
        folder.mkdir(parents=True)
        for name, data in task["files"].items():
            (folder / name).write_bytes(data)
        source = task["weights"]
        if weights_bytes is not None and not Path(source.path).is_file():  # another machine
            import ray

            local = scratch / ".weights" / Path(source.path).name
            local.parent.mkdir()
            local.write_bytes(ray.get(weights_bytes[0]))
            source = dataclasses.replace(source, path=local)
        request = dataclasses.replace(task["request"], out=scratch)
        registry = plugins.installed()
        spec = spec_for(registry, task["model"], request)
        callbacks = CallbackList.make(registry, task["config"], request.callbacks)
        evaluators = choose_evaluators(registry, request.evaluators, request.eval_options)
        try:
            images = receive(shipped)
            metrics = run_model(spec, task["config"], images, folder, request, source, callbacks=callbacks,
                                evaluators=evaluators, dataset=task["dataset"], name=task["name"], registry=registry)
            outcome = {"status": "ok", "metrics": metrics}
        except Exception as exc:  # noqa: BLE001 - the driver records the job as failed; the others go on
            reason = str(exc) if isinstance(exc, HarnessError) else one_line(exc)
            outcome = {"status": "failed", "reason": reason, "traceback": traceback.format_exc()}
            callbacks.call("on_run_end", failed_row(task["config"], reason))
        shutil.rmtree(scratch / ".weights", ignore_errors=True)
        outcome["files"] = files_under(scratch)
        return outcome
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def files_under(root: Path) -> dict:
    """Every file under ``root`` by relative path, ``metrics.json`` files last."""
    paths = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: (p.name == "metrics.json", str(p)))
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def write_files(out: Path, files: dict) -> None:
    """Write a task's files under ``out`` in the order given, each one atomically."""
    for relative, data in files.items():
        write_bytes(out / relative, data)
