FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GATEWAY_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway_site gateway_site
COPY proxy proxy
COPY accounts accounts
COPY usage usage
COPY batches batches
COPY templates templates
COPY manage.py ./
COPY bin bin
RUN pip install --no-cache-dir . && python manage.py collectstatic --noinput -v0 \
    && useradd --create-home gatehouse && mkdir -p /data && chown gatehouse /data
USER gatehouse
EXPOSE 8000
ENV HOST=0.0.0.0 VENV_PYTHON=python
CMD ["bin/serve"]
