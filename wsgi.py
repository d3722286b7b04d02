"""WSGI entry point: `gunicorn wsgi:app`, and FLASK_APP=wsgi for the flask command."""

from leads import create_app_or_exit

app = create_app_or_exit()
