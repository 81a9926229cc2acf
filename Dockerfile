# Tandem's operator image. The local cluster builds the same image without a Docker engine
# (deploy/local/images/operator_image.py): Debian bookworm's Python 3.11, the project's wheel and its
# dependencies, user 65532, entrypoint `python3 -m tandem`, command `run`.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY crds ./crds
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl \
 && rm -rf /wheels \
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin tandem
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["python3", "-m", "tandem"]
CMD ["run"]
