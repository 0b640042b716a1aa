"""``--executor local``: every job in this process, one after another; the reports are rewritten
after each, so a long run's leaderboard is always current."""
from harness.executors import job_label, log, resume_command, run_job


def run(jobs: list, context) -> None:
    for job in jobs:
        try:
            outcome = run_job(job, context)
        except KeyboardInterrupt:
            log(f"{job_label(job, context.request)}: interrupted; its last finished epoch is checkpointed. "
                f"Resume with: {resume_command(context.request)}")
            raise
        context.finished(outcome)
