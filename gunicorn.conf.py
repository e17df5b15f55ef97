"""gunicorn settings; each can be overridden by the environment variable in brackets."""
import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"  # [HOST, PORT]
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() * 2)))  # [WEB_CONCURRENCY]
threads = int(os.environ.get("GUNICORN_THREADS", 2))  # [GUNICORN_THREADS]
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))  # [GUNICORN_TIMEOUT]
graceful_timeout = 30
keepalive = 5
# The app writes one JSON line per request itself; gunicorn's access log would double it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Refuse oversized request lines and headers early.
limit_request_line = 8190
limit_request_fields = 100
