# crmbridge as a long-lived container: `docker run crmbridge run` (the default), or any other
# command, e.g. `docker run crmbridge backfill --source hubspot`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY constraints.txt pyproject.toml README.md ./
COPY src ./src
COPY connectors ./connectors
COPY mappings ./mappings
COPY examples ./examples
RUN pip install -c constraints.txt . ./connectors/* \
    && useradd --create-home --uid 10001 crmbridge \
    && mkdir -p /data && chown crmbridge /data

USER crmbridge
ENV CRMBRIDGE_DATABASE_URL=sqlite:////data/crmbridge.db \
    CRMBRIDGE_MAPPINGS_DIR=/app/mappings \
    CRMBRIDGE_SCORING_MODEL=/app/examples/scoring/default.yaml \
    CRMBRIDGE_LOG_FORMAT=json \
    CRMBRIDGE_HTTP_HOST=0.0.0.0 \
    CRMBRIDGE_HTTP_PORT=8080
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["crmbridge", "healthcheck"]
ENTRYPOINT ["crmbridge"]
CMD ["run"]
