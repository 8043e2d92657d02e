# The harness image: the gating suites run from it inside the cluster (the runner Job), and so do the
# node agent (faults from the host PID namespace) and the Locust load generator
# (harness/platforms/kubernetes/manifests/loadgen). Python 3.11 and redis-tools 7.0.15 from Debian 12 - the Redis
# version the reference pins; kubectl renders the overlays (kubectl kustomize); nftables, iproute2,
# util-linux and procps are the node agent's fault tools; prometheus brings promtool, which the
# observability suite runs against the overlay's alert rules. The checkout is installed editable at
# /opt/redis-harness, so reference/, scenarios/ and benchmarks/ sit where the harness looks for them.
#
#   docker build -t redis-harness:TAG .
FROM registry.k8s.io/kubectl:v1.32.2 AS kubectl

FROM docker.io/library/python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        redis-tools nftables iproute2 util-linux procps tar ca-certificates prometheus \
    && rm -rf /var/lib/apt/lists/*
COPY --from=kubectl /bin/kubectl /usr/local/bin/kubectl

WORKDIR /opt/redis-harness
# Dependencies first, so that a change to the code reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir harness && touch harness/__init__.py \
    && pip install --no-cache-dir -e '.[test]' \
    && rm -rf harness redis_harness.egg-info
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && useradd --uid 10001 --user-group --home-dir /tmp --no-create-home harness

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REDIS_HARNESS_REPORTS=/reports
USER 10001
ENTRYPOINT []
CMD ["redis-harness", "--help"]
