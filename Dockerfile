# GLA Lab web app.
#   CPU (default):  docker build -t gla-lab .
#   NVIDIA GPU:     docker build --build-arg TORCH_VARIANT=cuda -t gla-lab:gpu .
#   run:            docker run --rm -p 8501:8501 gla-lab          (add --gpus all for the GPU image)
#   no Docker:      buildah build --layers --format docker -t gla-lab .   (no registry: docs/deploy.md)
# Runs as a non-root user and works with --read-only --tmpfs /tmp (everything it writes goes to /tmp).

# The base: the official Python image. BASE_IMAGE swaps in another Python 3.11 with pip on PATH (CI builds on
# a locally made Debian one, scripts/image-base, since no registry can be reached there).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# cpu: CPU-only torch wheel from the PyTorch CPU index (small, no CUDA libraries).
# cuda: PyPI's Linux torch wheel, which bundles CUDA; the host needs an NVIDIA driver + container toolkit.
ARG TORCH_VARIANT=cpu
# Overrides the variant: an extra wheel index for torch (a mirror, or a CUDA build such as
# https://download.pytorch.org/whl/cu128).
ARG TORCH_INDEX=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    XDG_CONFIG_HOME=/tmp/.config \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.config/matplotlib \
    TORCH_HOME=/tmp/.cache/torch \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none

WORKDIR /app

# Dependencies in their own layer: rebuilt only when requirements.txt changes. The torch index is
# added as an extra index; its local-version wheel (2.13.0+cpu, +cu128, ...) sorts above PyPI's
# plain 2.13.0, so pip takes it while torch stays pinned in requirements.txt alone.
# Then, in the same layer so the bytes really leave the image, what the app never runs goes (about 340 MB
# of 1.58 GB): torch's C++ test programs and headers (torch_shm_manager stays: torch's shared-memory
# tensors use it) and every package's own test suite. scripts/image-test trains through the built image,
# which proves nothing the app needs went with them.
COPY requirements.txt ./
RUN set -eu; \
    if [ -n "$TORCH_INDEX" ]; then set -- --extra-index-url "$TORCH_INDEX"; \
    elif [ "$TORCH_VARIANT" = "cpu" ]; then set -- --extra-index-url https://download.pytorch.org/whl/cpu; \
    elif [ "$TORCH_VARIANT" = "cuda" ]; then set --; \
    else echo "TORCH_VARIANT must be cpu or cuda, got '$TORCH_VARIANT'" >&2; exit 1; fi; \
    pip install --no-cache-dir "$@" -r requirements.txt; \
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; \
    packages=$(python -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))"); \
    rm -rf "$packages/torch/test" "$packages/torch/include"; \
    find "$packages/torch/bin" -mindepth 1 ! -name torch_shm_manager -exec rm -rf {} +; \
    find "$packages" -type d -name tests -prune -exec rm -rf {} +

# The app itself (see .dockerignore for what stays out), owned by root and read-only to the app user.
COPY . .
RUN useradd --system --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin gla \
    && python -m compileall -q /app

USER 10001:10001
EXPOSE 8501

# No curl in the image: ask Streamlit's health endpoint with Python's urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://localhost:%s/_stcore/health' % os.environ.get('STREAMLIT_SERVER_PORT', '8501'), timeout=4)"]

# The port comes from STREAMLIT_SERVER_PORT (8501 above), so `-e STREAMLIT_SERVER_PORT=...` moves it.
ENTRYPOINT ["streamlit", "run", "app.py", "--server.headless=true", "--server.address=0.0.0.0"]
