# Tandem's operator image. The local cluster builds the same image without a Docker engine
# (deploy/local/images/operator_image.py): Debian bookworm's Python 3.11, the project's wheel and its
# dependencies, user 65532, entrypoint `python3 -m tandem`, command `run`.
#
# The base image is named by tag: this repository is built where no registry can be asked for the
# digest, and a digest written down unchecked would be worse than none. Pin it when you build:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY crds ./crds
# The project's own wheel only: its dependencies come from the hashed lock below. Its build backend
# comes from a hashed lock too; without build isolation, pip builds with it and fetches nothing.
RUN pip install --no-cache-dir --only-binary=:all: --require-hashes --no-deps \
      -r operator/build-requirements.lock \
 && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
COPY operator/requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
# Every dependency pinned and checked against the lock's sha256 (--require-hashes); --no-deps so
# that nothing outside the lock is resolved, neither for the lock nor for the project's wheel.
RUN pip install --no-cache-dir --no-compile --only-binary=:all: --require-hashes --no-deps \
      -r /tmp/requirements.lock \
 && pip install --no-cache-dir --no-compile --no-deps /wheels/*.whl \
 && pip check \
 && rm -rf /wheels /tmp/requirements.lock \
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin tandem
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["python3", "-m", "tandem"]
CMD ["run"]
