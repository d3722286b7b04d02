"""WSGI entry point: `gunicorn wsgi:app`, and FLASK_APP=wsgi for the flask command."""

from leads import create_app

app = create_app()
