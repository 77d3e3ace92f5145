# The chat server, pointed at an external MongoDB (set MONGODB_URI and JWT_SECRET).
# Built from uv.lock: the same versions as `make run` and `make test`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data

RUN pip install uv==0.13.9 \
    && useradd --create-home --uid 10001 chat \
    && mkdir -p /app /data \
    && chown chat:chat /data \
    && chmod 700 /data
WORKDIR /app

# Dependencies first (a layer that only changes with the lock), then the app itself, installed
# in place (editable) so that it finds its static/ folder beside app/.
# clients/python is only read to check the lock (it is the dev extra's client package, not installed).
COPY pyproject.toml uv.lock README.md ./
COPY clients/python ./clients/python
RUN uv sync --locked --no-dev --no-install-project
COPY app ./app
COPY static ./static
RUN uv sync --locked --no-dev

USER chat
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
CMD ["chat-server"]
