# syntax=docker/dockerfile:1
#
# One image for every doisoat process; the command picks which one runs:
#   docker run IMAGE            -> doisoat run         (everything in one process, SQLite in /app/data)
#   docker run IMAGE migrate    -> doisoat migrate
#   docker run IMAGE api | ingest | reconciler | alerts
# Every process serves /metrics, /healthz and /readyz on DOISOAT_HTTP_PORT (8000).
# The whole stack: deploy/docker-compose.yml; Kubernetes: deploy/kubernetes/.

# --- build: install doisoat and its runtime dependencies (no dev extras) into a venv ---------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY shared ./shared
COPY services ./services
COPY migrations ./migrations
RUN pip install --upgrade pip setuptools \
    && pip install -c constraints.txt . \
    && pip uninstall --yes pip setuptools

# --- runtime: the venv only, run as an unprivileged user -------------------------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="doisoat" \
      org.opencontainers.image.description="Reconciles dossier status on the administrative-procedure system with what the one-stop desk really did."

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DOISOAT_HTTP_PORT=8000

# A numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without a user database.
RUN groupadd --system --gid 10001 doisoat \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin doisoat \
    && mkdir -p /app/data \
    && chown 10001:10001 /app/data

COPY --from=build /opt/venv /opt/venv

# `doisoat run` keeps its SQLite file in /app/data (mount a volume there to keep it); the
# production processes keep every state in PostgreSQL (DOISOAT_DATABASE_URL).
WORKDIR /app
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DOISOAT_HTTP_PORT', '8000') + '/healthz', timeout=4)"]

ENTRYPOINT ["doisoat"]
CMD ["run"]
