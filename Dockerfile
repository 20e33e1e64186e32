# A drills runner: drills and its dependencies, the shipped scenarios in /opt/drills (the
# working directory), `drills` on the PATH. Scheduled rehearsals run it as Kubernetes CronJobs
# (`drills schedule --kubernetes --image IMAGE --store-secret NAME`, docs/schedule.md).
#
#   docker build -t registry.example.com/drills:0.1.0 .
#
# Without a registry to pull python:3.11-slim-bookworm from, `make runner-image` builds the same
# layout from this host's Python as drills/runner:local (drills/containers/runner_image.py).
FROM python:3.11-slim-bookworm

# ssh: host targets and ssh:// engines; psql: `exec` steps of many scenarios.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client postgresql-client \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md /src/
COPY drills /src/drills
COPY probes /src/probes
RUN pip install --no-cache-dir --target /opt/drills/site /src && rm -rf /src \
    && printf '#!/bin/sh\nexec python -m drills "$@"\n' > /usr/local/bin/drills \
    && chmod 755 /usr/local/bin/drills
COPY scenarios /opt/drills/scenarios

ENV PYTHONPATH=/opt/drills/site DRILLS_STATE_DIR=/var/lib/drills
WORKDIR /opt/drills
CMD ["drills", "--help"]
