# tts-queue: one image for every role. The entrypoint is the `ttsqueue` CLI, so the command
# picks the process: `api` (default), `worker`, `dashboard`, or any other ttsqueue command.
#
#   docker build -t tts-queue .                        # gtts + espeak-ng
#   docker build -t tts-queue --build-arg EXTRAS=piper .  # adds the Piper engine (docs/piper.md)
#
# APP_UID / APP_GID must match the Asterisk container's user (andrius/asterisk: PUID / PGID,
# 1000 by default) because both write the shared spool and sounds volumes.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
ARG EXTRAS=""
# The dependencies first, from pyproject.toml alone (an empty package and readme stand in for
# the real ones), so that a change to the code or the docs reuses this layer instead of
# downloading them all again.
COPY pyproject.toml ./
RUN mkdir -p src/ttsqueue \
    && touch src/ttsqueue/__init__.py README.md \
    && /opt/venv/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
    && /opt/venv/bin/pip uninstall --yes ttsqueue \
    && rm -rf src build README.md
COPY README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim-bookworm
ARG APP_UID=1000
ARG APP_GID=1000
# Debian's stable point releases only ship fixes: pinning exact versions would break the
# build at every security update, so the packages follow the pinned base image instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/healthcheck.py /usr/local/bin/ttsq-healthcheck
RUN chmod 0755 /usr/local/bin/ttsq-healthcheck \
    && groupadd --gid "${APP_GID}" ttsq \
    && useradd --uid "${APP_UID}" --gid ttsq --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ttsq \
    && mkdir -p /app /var/lib/asterisk/sounds/tts \
        /var/spool/asterisk/outgoing /var/spool/asterisk/outgoing_done /var/spool/asterisk/tmp \
    && chown -R ttsq:ttsq /app /var/lib/asterisk/sounds/tts /var/spool/asterisk
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AUDIO_DIR=/var/lib/asterisk/sounds/tts \
    ASTERISK_SPOOL_DIR=/var/spool/asterisk
WORKDIR /app
USER ${APP_UID}:${APP_GID}
EXPOSE 5000 8080
HEALTHCHECK --interval=15s --timeout=8s --start-period=30s --retries=3 CMD ["ttsq-healthcheck"]
ENTRYPOINT ["ttsqueue"]
CMD ["api"]
