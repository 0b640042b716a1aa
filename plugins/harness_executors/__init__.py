"""The built-in executors, registered through the same hook as any third-party one: ``local`` (one
job after another in this process) and ``ray`` (every job a Ray task, side by side)."""
from harness import ExecutorSpec, hookimpl

from harness_executors import local, ray_tasks


@hookimpl
def register_executors(register):
    register(ExecutorSpec(name="local", run=local.run, description="one job after another in this process"))
    register(ExecutorSpec(name="ray", run=ray_tasks.run, options=ray_tasks.OPTIONS, help=ray_tasks.HELP,
                          check=ray_tasks.check, slots=ray_tasks.slots, description="every job a Ray task, side by side on a cluster"))
