"""Entry point: `celery -A workers.worker worker` and `celery -A workers.worker beat`."""

from leads import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
