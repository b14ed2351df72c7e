# The Nightshift image for Linux: Flower, and a CPU or CUDA worker joining the Mac's queue.
# Not for the Mac worker itself: Docker on macOS has no access to the GPU (MPS).
#     docker build -t nightshift .                                   # CPU torch
#     docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu121 -t nightshift:cuda .
FROM python:3.11-slim

# Which torch wheels: the CPU index keeps the image small; a CUDA index for GPU boxes.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NIGHTSHIFT_DATA_DIR=/data \
    HF_HOME=/data/hf

# torch first, from its own index, so that `pip install .` finds it satisfied.
RUN pip install --index-url "$TORCH_INDEX" "torch>=2.1"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY worker ./worker
COPY producer ./producer
RUN pip install .

# Not root: the worker only needs its data volume.
RUN useradd --create-home --uid 1000 nightshift && mkdir -p /data && chown nightshift /data
USER nightshift
VOLUME ["/data"]

# `nightshift worker` by default; compose runs `nightshift flower` from the same image.
# Celery treats SIGTERM as a warm shutdown (the current job finishes first).
STOPSIGNAL SIGTERM
ENTRYPOINT ["nightshift"]
CMD ["worker"]
