# The chat server, pointed at an external MongoDB (set MONGODB_URI and JWT_SECRET).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data

RUN useradd --create-home --uid 10001 chat \
    && mkdir -p /app /data \
    && chown chat:chat /data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
RUN pip install .

USER chat
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
CMD ["chat-server"]
