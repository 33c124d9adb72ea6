# The orderdesk suite: one image for the five services, the gateway and the console; the command chooses the process:
#   docker run orderdesk python -m services.orders      (intake, orders, inventory, shipping, returns)
#   docker run orderdesk python -m gateway
#   docker run orderdesk python -m console
# Build: docker build -t orderdesk .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY orderdesk ./orderdesk
COPY services ./services
COPY gateway ./gateway
COPY console ./console

# Generate the protobuf code into orderdesk/v1 first, so the wheel built by `pip install .` carries it
# (the installed package has no protos/ folder to generate from). grpcio-tools is pinned to grpcio's version.
RUN pip install "grpcio-tools==1.85.1" \
    && python -m orderdesk.protos \
    && pip install . \
    && rm -rf /src

# Non-root; the Kubernetes manifests run with runAsUser 10001 and a read-only root filesystem (/tmp is an emptyDir).
RUN groupadd --system --gid 10001 orderdesk \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent orderdesk
USER 10001
WORKDIR /tmp

# gRPC (services), HTTP (gateway, console), Prometheus /metrics (services)
EXPOSE 50051 8080 8090 9100

CMD ["python", "-c", "print('orderdesk: choose a process, e.g. `python -m services.orders` (intake, orders, inventory, shipping, returns) or `python -m gateway` or `python -m console`; configuration in the README')"]
