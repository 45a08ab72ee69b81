# The embedded default in a container: dashboard + scheduler, SQLite in a volume, demo history on first start.
#   docker build -t city-maturity .
#   docker run -p 8050:8050 -v maturity-data:/app/data city-maturity
# For the server deployment set DATABASE_URL=postgresql+psycopg://… and run `maturity worker` in one
# container and `gunicorn -w 4 -b 0.0.0.0:8050 maturity.app:server` in others (see README, "Deployment").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MATURITY_CONFIG=/app/config.toml
WORKDIR /app
# Explicit paths rather than `COPY .`, so a local .venv, databases and exports never enter the image.
COPY pyproject.toml README.md config.toml /app/
COPY maturity /app/maturity
COPY connectors /app/connectors
COPY indicators /app/indicators
COPY layouts /app/layouts
COPY storage /app/storage
# The demo bundle is package data (maturity/demo_data), so a volume mounted on /app/data never hides it.
RUN pip install . && useradd --create-home maturity && mkdir -p /app/data && chown -R maturity /app/data
USER maturity
EXPOSE 8050
CMD ["maturity", "serve", "--host", "0.0.0.0"]
