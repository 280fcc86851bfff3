"""`campaign-pipeline` commands run in this test process (`cli.main`), for the tests that share
a run, compare one with another, or check what an error path prints and its exit code: the
command's exit code, what it printed, and the results of the `runner.run_pipeline` calls it
made, without a second interpreter's imports (seconds per command). The tests of the command
as a user starts it (a subprocess: what is imported before an error, the interpreter's own
output, the variables a process inherits) run it so."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import warnings

import pytest

# the warning filters of a Python process started without -W or PYTHONWARNINGS
_PROCESS_WARNING_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


def _exit_code(exited: SystemExit) -> int:
    """The exit code a process ending with ``exited`` has (`sys.exit` and argparse's errors):
    None is 0, a number itself, anything else is printed to stderr and is 1."""
    if exited.code is None:
        return 0
    if isinstance(exited.code, int):
        return exited.code
    print(exited.code, file=sys.stderr)
    return 1


def run_cli_in_process(
    *args: str, unset: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, list]:
    """``campaign-pipeline ARGS`` through `cli.main` with the variables named in ``unset``
    (names, or prefixes ending in ``_``) unset for the command, as a user without them runs it,
    and those of ``env`` set.
    The code location is built afresh under those variables when the command starts the run,
    as a fresh process loads it then. A `SystemExit` (argparse's errors) gives its exit code,
    and the warnings the command raises are printed to its stderr under a fresh process's
    filters, as they would be.
    Returns what a subprocess would (exit code, stdout, stderr) and each `runner.PipelineRun`
    the command's `runner.run_pipeline` returned. Dagster's logger, which the command quiets
    for its process, is left as it was."""
    from campaign_pipeline import cli, runner

    runs: list[runner.PipelineRun] = []
    run_pipeline = runner.run_pipeline

    printed, errors = io.StringIO(), io.StringIO()
    dagster_logger = logging.getLogger("dagster")
    level = dagster_logger.level
    with pytest.MonkeyPatch.context() as patch:

        def recorded(*run_args, **run_kwargs) -> runner.PipelineRun:
            """`runner.run_pipeline` itself on the code location as a fresh process would
            load it under these variables (its resources read some of them, the export
            ledger's DAGSTER_PG_*, when it is built); its result kept."""
            from campaign_pipeline import definitions, executors

            patch.setattr(
                definitions, "defs", definitions.build_defs(executors.in_process_first_executor)
            )
            runs.append(run_pipeline(*run_args, **run_kwargs))
            return runs[-1]

        for name in list(os.environ):
            if name in unset or name.startswith(tuple(n for n in unset if n.endswith("_"))):
                patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.setattr(runner, "run_pipeline", recorded)
        try:
            with (
                contextlib.redirect_stdout(printed),
                contextlib.redirect_stderr(errors),
                warnings.catch_warnings(record=True) as raised,
            ):
                warnings.resetwarnings()
                for action, category, module in reversed(_PROCESS_WARNING_FILTERS):
                    warnings.filterwarnings(action, category=category, module=module)
                try:
                    code = cli.main(list(args))
                except SystemExit as exited:
                    code = _exit_code(exited)
                for shown in raised:
                    errors.write(
                        warnings.formatwarning(
                            shown.message, shown.category, shown.filename, shown.lineno
                        )
                    )
        finally:
            dagster_logger.setLevel(level)
    proc = subprocess.CompletedProcess(
        ["campaign-pipeline", *args], code, printed.getvalue(), errors.getvalue()
    )
    return proc, runs
