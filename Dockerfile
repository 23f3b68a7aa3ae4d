# asc-token-action as a container: `uses: docker://ghcr.io/org/asc-token-action:1` on Linux
# runners, a GitLab job image, a Woodpecker/Drone plugin, a Bitbucket pipe. Same entrypoint.py.
#
# Default base: the official python:3.13-slim (Debian trixie) pinned by its multi-arch index
# digest, as pinned by Dependabot/Renovate in public repositories in 2026-05 (this project's
# shared/pins.md). Dependabot does not read a FROM that goes through an ARG
# (dependabot-core#10190), so bump this digest by hand with the Python patch releases. Override
# with --build-arg BASE_IMAGE=... (the tests build on a local Debian base).
ARG BASE_IMAGE=python:3.13-slim@sha256:9d2e5553305c7c7b0097999bb17187c69b921ccd6bc9d40e4bb5ebe652c00285

# Build stage: the whole venv is made here and copied into the image, so setuptools, the wheel
# and pip's temporary files never reach a layer of the image. Works with BuildKit and with the
# legacy builder (which the tests use) alike: both stages come from the same base.
FROM ${BASE_IMAGE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A venv without pip holding exactly the locked wheels (hash-checked, no sdists, no resolver).
# The base image's pip installs into it through --python, so console scripts get the venv's
# interpreter and every .pyc is compiled once, here, by that interpreter.
COPY requirements/runtime.lock /build/requirements/runtime.lock
RUN python3 -m venv --without-pip /opt/asc-token-action/venv \
 && python3 -m pip --python /opt/asc-token-action/venv/bin/python install --no-deps --require-hashes \
      --only-binary :all: -r /build/requirements/runtime.lock

# The project itself as a wheel, built offline by the hashed setuptools of the dev lock (no
# unpinned download for build isolation), then installed without dependencies: the lock above
# already holds all of them.
COPY requirements/dev.lock /build/requirements/dev.lock
RUN awk '/^[^ #]/ { keep = ($0 ~ /^setuptools==/) } keep' /build/requirements/dev.lock > /build/setuptools.lock \
 && python3 -m pip install --no-deps --require-hashes --only-binary :all: --target /build/setuptools \
      -r /build/setuptools.lock
COPY pyproject.toml README.md LICENSE /build/src/
COPY src/asc_token /build/src/src/asc_token
RUN PYTHONPATH=/build/setuptools python3 -m pip wheel --no-deps --no-build-isolation --wheel-dir /build/dist /build/src \
 && python3 -m pip --python /opt/asc-token-action/venv/bin/python install --no-deps --no-index /build/dist/*.whl \
 && sed -i '1s|$| -I|' /opt/asc-token-action/venv/bin/asc-token
# (-I on the console script's #! line, as on the ENTRYPOINT: PYTHONPATH and friends change nothing.)

COPY entrypoint.py /opt/asc-token-action/entrypoint.py

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY --from=build /opt/asc-token-action /opt/asc-token-action
# `asc-token` on PATH is the package's own console script (GitLab `image:` jobs call it).
RUN ln -s /opt/asc-token-action/venv/bin/asc-token /usr/local/bin/asc-token

# Absolute paths and -I: a PATH, HOME or PYTHONPATH passed into the container changes nothing.
# No USER and no WORKDIR: the runner mounts the workspace, runs as root and sets the workdir.
ENTRYPOINT ["/opt/asc-token-action/venv/bin/python", "-I", "/opt/asc-token-action/entrypoint.py"]
