# rayjoule: meter, attribute and minimise the energy of parallel Python jobs (Ray, Lithops).
#
#   docker build -t rayjoule .
#   docker run --rm --shm-size=2g \
#       -v /sys/class/powercap:/sys/class/powercap:ro \
#       --group-add "$(stat -c %g /sys/class/powercap/intel-rapl:0/energy_uj)" \
#       -v rayjoule-data:/work rayjoule
#
# docs/cluster.md explains the RAPL mount, the group and running it on a Ray cluster.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0

# A fixed uid/gid so files written to a mounted /work have a predictable owner; /work (the
# results store's default place) and the home (Ray keeps its auth token in ~/.ray) are its own.
RUN groupadd --system --gid 1000 rayjoule \
    && useradd --system --uid 1000 --gid rayjoule --create-home --home-dir /home/rayjoule rayjoule \
    && mkdir -p /work \
    && chown rayjoule:rayjoule /work

WORKDIR /opt/rayjoule
COPY pyproject.toml README.md ./
COPY meters ./meters
COPY workloads ./workloads
COPY rayjoule ./rayjoule
# DL3013 (pin versions in pip) is ignored on purpose: this installs the local project, not a
# package by name; its dependencies' bounds live in pyproject.toml and are resolved at build
# time exactly as a user's `pip install` resolves them (the image is rebuilt, not patched).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[lithops,gpu]"

# numeric, so Kubernetes' runAsNonRoot can verify it (and hadolint DL3066 is satisfied)
USER 1000:1000
WORKDIR /work
# Ray's dashboard, GCS and metrics export, for `ray start --head` inside the container.
EXPOSE 8265 6379 8080
CMD ["python", "-m", "rayjoule.tune"]
