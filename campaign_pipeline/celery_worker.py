"""The Celery app a worker runs, configured from the environment:

    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/1 \\
      celery -A campaign_pipeline.celery_worker worker --pool solo --queues dagster -n w1@%h

It is dagster-celery's app (the task that executes one step, on the ``dagster`` queue) with the
broker and result backend read from the same variables ``deploy/celery/run_config.yaml`` names,
so the launcher and the workers cannot disagree about them.

Why not ``dagster-celery worker start -y <run config>``: that command resolves the config and
writes the broker URL, password included, into a Python file under ``$DAGSTER_HOME``. Here the
URL stays in the environment (Celery masks its password in the worker's banner).

``--pool solo`` runs one step at a time in the worker process itself (a step's pandas work
already uses a core); start one worker per core, on as many machines as you like.
"""

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

BROKER_ENV = "CELERY_BROKER_URL"
BACKEND_ENV = "CELERY_RESULT_BACKEND"


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is not set: the Celery worker needs the broker's URL")
    return value


app = make_app(
    {
        "broker": _required(BROKER_ENV),
        "backend": os.environ.get(BACKEND_ENV, "").strip() or _required(BROKER_ENV),
        # the code location, imported when the worker starts rather than by its first step
        "include": ["campaign_pipeline.celery_definitions"],
        # a step is acknowledged when it finished, so a worker that dies mid-step hands the
        # message back to the broker (with Redis, after its visibility timeout: one hour by
        # default); one message at a time, so a long step blocks no other
        "config_source": {"task_acks_late": True, "worker_prefetch_multiplier": 1},
    }
)
execute_plan = create_task(app)
