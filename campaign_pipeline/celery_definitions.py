"""The code location with Celery as the executor: every job of ``campaign_pipeline.definitions``,
each step sent to a Celery worker (``campaign_pipeline.celery_worker``).

A separate code location rather than an option of the main one: a job has one executor, and
the main location must load (and run its steps in local processes) without the ``celery``
extra. Load this one where Celery workers exist:

    dagster job execute -m campaign_pipeline.celery_definitions -j weekly_pipeline_job \\
      -c deploy/celery/run_config.yaml --tags '{"dagster/partition": "2025-05-05"}'

or add ``python_module: campaign_pipeline.celery_definitions`` to a workspace. The workers load
the job from this module too. Steps on different machines see each other's tables only when
the data dir and out dir are on a store every machine reaches (``s3://...``), and the Dagster
instance is one they all reach (PostgreSQL); see docs/orchestration.md.
"""

from dagster_celery import celery_executor

from campaign_pipeline import definitions

defs = definitions.build_defs(celery_executor)
