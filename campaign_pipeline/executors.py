"""The executor of every job in the code location: Dagster's own default executor
(``multi_or_in_process_executor``), whose in-process mode is the default here instead of its
multiprocess one.

Why in process by default: Dagster's multiprocess mode starts a fresh Python process for every
step, and each one imports Dagster, pandas, pyarrow, scipy and matplotlib and loads the code
location before its step starts (about 4 s of CPU per step on this project's 2-core machine).
A weekly run has 9 to 20 steps that mostly wait on one another, so those processes cost far
more than they share out: on a week of the scale benchmark's 1x year, ``weekly_assets_job``
took more than twice the wall time and nearly three times the CPU in the multiprocess mode
(README, "Orchestration", has the figures and the command). The steps that have much to do
share it out themselves (``anomaly_flags`` and ``weekly_report``: ``processes``), and the
``release_memory`` hook hands back each finished step's memory, so a run in one process starts
each step near its base.

Run config still chooses: ``execution: {config: {multiprocess: {...}}}`` (deploy/executors/
multiprocess.yaml) runs the steps in processes of their own, with the same options as
Dagster's default executor; the Celery code location replaces the executor altogether.
"""

import dagster as dg
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    MULTI_PROC_CONFIG,
    multi_or_in_process_executor,
    multiple_process_executor_requirements,
)


def _requirements(executor_config: dict):
    """What Dagster requires of a run: a reconstructable job only in the multiprocess mode."""
    return multiple_process_executor_requirements() if "multiprocess" in executor_config else []


@dg.executor(
    name="in_process_or_multiprocess_executor",
    config_schema=dg.Field(
        dg.Selector({"multiprocess": MULTI_PROC_CONFIG, "in_process": IN_PROC_CONFIG}),
        default_value={"in_process": {}},
        description="in_process (the default: one process for every step of a run) or "
        "multiprocess (a process per step, at most max_concurrent at once)",
    ),
    requirements=_requirements,
)
def in_process_first_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    return multi_or_in_process_executor.executor_creation_fn(init_context)
