# asc-token-action as a container: `uses: docker://ghcr.io/org/asc-token-action:v1` on Linux
# runners, a GitLab job image, a Woodpecker/Drone plugin, a Bitbucket pipe. Same entrypoint.py.
#
# Default base: the official python:3.13-slim (Debian trixie) pinned by its multi-arch index
# digest, as pinned by Dependabot/Renovate in public repositories in 2026-05 (this project's
# shared/pins.md); Dependabot's docker ecosystem keeps it current. Override with
# --build-arg BASE_IMAGE=... (the tests build on a local Debian base).
ARG BASE_IMAGE=python:3.13-slim@sha256:9d2e5553305c7c7b0097999bb17187c69b921ccd6bc9d40e4bb5ebe652c00285
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY requirements/runtime.lock /opt/asc-token-action/requirements/runtime.lock
# A venv without pip holding exactly the locked wheels (hash-checked, no sdists, no resolver),
# filled by the base image's pip; the .pyc files are compiled here, once, for fast starts.
RUN python3 -m venv --without-pip /opt/asc-token-action/venv \
 && site="$(/opt/asc-token-action/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && python3 -m pip install --no-deps --require-hashes --only-binary :all: --no-warn-script-location \
      --target "$site" -r /opt/asc-token-action/requirements/runtime.lock \
 && rm -rf "$site/bin" "$site/tests"

COPY entrypoint.py /opt/asc-token-action/entrypoint.py
COPY src/asc_token /opt/asc-token-action/src/asc_token
RUN /opt/asc-token-action/venv/bin/python -m compileall -q /opt/asc-token-action/src \
 && printf '#!/bin/sh\nexec /opt/asc-token-action/venv/bin/python -I -c "import sys; sys.path.insert(0, \\"/opt/asc-token-action/src\\"); from asc_token.entry import cli; sys.exit(cli())" "$@"\n' \
      > /usr/local/bin/asc-token \
 && chmod 0755 /usr/local/bin/asc-token

# Absolute paths and -I: a PATH, HOME or PYTHONPATH passed into the container changes nothing.
# No USER and no WORKDIR: the runner mounts the workspace, runs as root and sets the workdir.
ENTRYPOINT ["/opt/asc-token-action/venv/bin/python", "-I", "/opt/asc-token-action/entrypoint.py"]
