FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GATEWAY_DATA_DIR=/data
# The image runs the installed package, as tests/test_wheel.py does: the sources are built and removed, so nothing
# is imported from a source tree in the working directory.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway_site gateway_site
COPY proxy proxy
COPY accounts accounts
COPY usage usage
COPY batches batches
COPY templates templates
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /app
COPY manage.py ./
COPY bin bin
RUN python manage.py collectstatic --noinput -v0 \
    && useradd --create-home gatehouse && mkdir -p /data && chown gatehouse /data
USER gatehouse
EXPOSE 8000
ENV HOST=0.0.0.0 VENV_PYTHON=python
CMD ["bin/serve"]
