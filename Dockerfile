# keymux in a container: `docker build -t keymux .` then see README "Deployment".
# The base is a build argument so machines without registry access can build on a local Python image
# (Python >= 3.11 with venv); the default is the official slim image.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
RUN python3 -m venv /opt/keymux
COPY pyproject.toml README.md LICENSE /src/
COPY keymux /src/keymux
# Redis (several replicas) and PostgreSQL (ledger) support are in the image: a PaaS user only sets env.
RUN /opt/keymux/bin/pip install --no-cache-dir --disable-pip-version-check "/src[redis,postgres]" \
 && /opt/keymux/bin/pip uninstall -y -q pip setuptools \
 && find /opt/keymux -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
# A fixed uid so a host directory mounted at /data can be given to it (chown 10001).
RUN groupadd --system --gid 10001 keymux \
 && useradd --system --uid 10001 --gid keymux --home-dir /data --no-create-home keymux \
 && mkdir /data && chown keymux:keymux /data
COPY --from=build /opt/keymux /opt/keymux
# KEYMUX_RUN_AS: started as root anyway (a host whose volume is mounted root-owned, e.g. Railway with
# RAILWAY_RUN_UID=0), keymux gives /data to this user and becomes it before reading any config.
ENV PATH=/opt/keymux/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KEYMUX_HOST=0.0.0.0 \
    KEYMUX_RUN_AS=keymux
USER keymux
WORKDIR /data
VOLUME /data
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["python3", "-m", "keymux.probe"]
# `docker stop` sends SIGTERM: keymux stops accepting, answers what is in flight, writes the ledger, exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["keymux"]
CMD ["serve"]
