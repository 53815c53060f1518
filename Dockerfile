# imgsim web image: gunicorn serving the Django app; data lives in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    IMGSIM_DATA_DIR=/data \
    HF_HOME=/data/hf-cache \
    IMGSIM_BIND=0.0.0.0:8000

WORKDIR /app
RUN useradd --create-home --uid 1000 imgsim && mkdir -p /data && chown imgsim /data

# The CPU build of torch first, from PyTorch's CPU index, so pip never pulls a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml setup.py README.md requirements.lock ./
COPY imgsim_site ./imgsim_site
COPY gallery ./gallery
COPY search ./search
# A C compiler only while installing: it builds search's int4 pass (gallery/int4.c) in place, beside
# the sources that run from /app (editable, as scripts/setup.sh installs), then goes.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -c requirements.lock -e ".[postgres]" \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY . .
# collectstatic needs settings but no database; a throwaway data dir keeps the image clean.
RUN IMGSIM_DATA_DIR=/tmp/build SECRET_KEY=build-only-secret-key-not-used-at-run-time \
    python manage.py collectstatic --noinput -v0 && cp -r /tmp/build/static /app/static-collected && rm -rf /tmp/build
ENV IMGSIM_STATIC_ROOT=/app/static-collected

USER imgsim
VOLUME ["/data"]
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py ensure_admin && exec gunicorn --config gunicorn.conf.py imgsim_site.wsgi"]
