# The shoplens image: the CLI (generator, producer, sink, live scorer, reports) and the dbt
# project. docker-compose.yml runs the sink and the producer from it against a real Kafka.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DBT_PROFILES_DIR=/app \
    SHOPLENS_DB=/data/warehouse.duckdb

WORKDIR /app

# Dependencies first (cached while only the code changes).
COPY pyproject.toml README.md ./
COPY python ./python
RUN pip install --upgrade pip && pip install .

COPY dbt_project.yml profiles.yml ./
COPY models ./models
COPY macros ./macros
COPY seeds ./seeds
COPY tests/dbt ./tests/dbt

RUN useradd --create-home --uid 1000 shoplens && mkdir -p /data && chown shoplens /data /app
USER shoplens
VOLUME ["/data"]

CMD ["shoplens", "--help"]
