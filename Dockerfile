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
RUN pip install --no-cache-dir . && python manage.py collectstatic --noinput -v0 \
    && useradd --create-home gatehouse && mkdir -p /data && chown gatehouse /data
USER gatehouse
EXPOSE 8000
CMD ["sh", "-c", "daphne -b 0.0.0.0 -p ${PORT:-8000} --proxy-headers gateway_site.asgi:application"]
