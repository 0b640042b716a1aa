"""``--executor local``: every job in this process, one after another; the reports are rewritten
after each, so a long run's leaderboard is always current."""
from harness.executors import interrupted_line, log, run_job


def run(jobs: list, context) -> None:
    for job in jobs:
        try:
            outcome = run_job(job, context)
        except KeyboardInterrupt:
            log(interrupted_line(job, context.request))
            raise
        context.finished(outcome)
