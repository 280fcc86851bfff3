"""`campaign-pipeline` commands run in this test process (`cli.main`), for the tests that share
a run or compare one with another: the command's exit code, what it printed, and the results
of the `runner.run_pipeline` calls it made, without a second interpreter's imports (seconds
per command). The tests of the command as a user starts it (a subprocess) run it so."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess

import pytest


def run_cli_in_process(
    *args: str, unset: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, list]:
    """``campaign-pipeline ARGS`` through `cli.main` with the variables named in ``unset``
    (names, or prefixes ending in ``_``) unset for the command, as a user without them runs it,
    and those of ``env`` set.
    The code location is built afresh under those variables, as a fresh process loads it.
    Returns what a subprocess would (exit code, stdout, stderr) and each `runner.PipelineRun`
    the command's `runner.run_pipeline` returned. Dagster's logger, which the command quiets
    for its process, is left as it was."""
    from campaign_pipeline import cli, definitions, executors, runner

    runs: list[runner.PipelineRun] = []
    run_pipeline = runner.run_pipeline

    def recorded(*run_args, **run_kwargs) -> runner.PipelineRun:
        """`runner.run_pipeline` itself, its result kept."""
        runs.append(run_pipeline(*run_args, **run_kwargs))
        return runs[-1]

    printed, errors = io.StringIO(), io.StringIO()
    dagster_logger = logging.getLogger("dagster")
    level = dagster_logger.level
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name in unset or name.startswith(tuple(n for n in unset if n.endswith("_"))):
                patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        # the code location as a fresh process would load it under these variables: its
        # resources read some of them (the export ledger's DAGSTER_PG_*) when it is built
        patch.setattr(
            definitions, "defs", definitions.build_defs(executors.in_process_first_executor)
        )
        patch.setattr(runner, "run_pipeline", recorded)
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
                code = cli.main(list(args))
        finally:
            dagster_logger.setLevel(level)
    proc = subprocess.CompletedProcess(
        ["campaign-pipeline", *args], code, printed.getvalue(), errors.getvalue()
    )
    return proc, runs
