# The CityOps image used by compose.yml (ingest, scheduler, web and migrate).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cityops ./cityops
COPY ingest ./ingest
COPY models ./models
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && useradd --system --uid 10001 cityops
USER cityops
EXPOSE 8050
CMD ["cityops", "run"]
