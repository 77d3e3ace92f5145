# The chat server. With no MONGODB_URI it runs its embedded database in the /data volume; set
# MONGODB_URI (and JWT_SECRET) to use a MongoDB replica set instead (docker-compose.yml).
#
# PYTHON_IMAGE is the base of both stages: any Debian-like image with Python 3.11+ and its venv
# module. The default is the official slim image; pass a mirror's copy, or a base built from
# Debian's packages where no registry is reachable (`make image-check` does that).
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: uv installs the exact versions in uv.lock into /app/.venv ----------------------
# (trusting the base image's CA certificates, as pip does, e.g. those of a proxy it was given)
FROM ${PYTHON_IMAGE} AS build
ENV UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_NATIVE_TLS=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
WORKDIR /app
# Dependencies first (a layer that only changes with the lock), then the app itself, installed in
# place (editable) so that it finds its static/ folder beside app/. clients/python is only read
# to check the lock (it is the dev extra's client package, not installed).
COPY pyproject.toml uv.lock README.md ./
COPY clients/python ./clients/python
RUN /opt/uv/bin/uv sync --locked --no-dev --no-install-project
COPY app ./app
COPY static ./static
RUN /opt/uv/bin/uv sync --locked --no-dev

# ---- runtime: the environment and the app; no uv, no pip ------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
RUN if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall --yes --quiet pip; fi \
    && rm -f /usr/local/bin/pip /usr/local/bin/pip3* \
    && useradd --create-home --uid 10001 chat \
    && mkdir -p /data \
    && chown chat:chat /data \
    && chmod 700 /data
COPY --from=build /app /app
WORKDIR /app

USER chat
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/readyz', timeout=2)"]
# SIGTERM (docker stop) ends the server gracefully; compose gives it stop_grace_period.
CMD ["chat-server"]
