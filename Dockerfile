# Strigil's container image: `docker compose up -d` (docker-compose.yml), or
#   docker build -t strigil .
#   docker run -d -p 127.0.0.1:8080:8080 -v strigil-data:/data strigil
# See README.md, "Deployment". Tested by tests/docker/test_image.sh.
#
# Two stages: a full Debian to compile in, then bookworm-slim with only the
# shared libraries the binary links (no compiler, no headers, no apt lists).

# --- build -------------------------------------------------------------------
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
# The same package list as a developer's machine; its own layer so a code
# change does not reinstall the toolchain.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" --target strigil
# The unit tests of this exact Release build (the full suite, plain and under
# sanitizers, is CI's `make test`). --build-arg UNIT_TESTS=0 skips.
ARG UNIT_TESTS=1
RUN if [ "$UNIT_TESTS" = 1 ]; then \
      cmake --build build -j"$(nproc)" \
      && cd build && ctest --output-on-failure --no-tests=error -R '^unit/'; \
    fi

# The container's config: the documented default file with container paths.
# Each substitution is checked, so a change to the file fails the build here
# rather than shipping a config that points somewhere else. The console and
# the listen address are set by the image's environment below.
RUN set -e; mkdir -p /out/etc/strigil; out=/out/etc/strigil/strigil.conf.lua; \
    sed -e 's|^database = .*|database = "/data/strigil.db"|' \
        -e 's|^protocols = .*|protocols = "/etc/strigil/protocols"|' \
        -e 's|^lang_dir = .*|lang_dir = "/usr/share/strigil/lang"|' \
        config/strigil.conf.lua > "$out"; \
    for want in '^database = "/data/strigil.db"$' \
        '^protocols = "/etc/strigil/protocols"$' \
        '^lang_dir = "/usr/share/strigil/lang"$'; do \
      grep -q "$want" "$out" || { echo "Dockerfile: $out lacks $want" >&2; exit 1; }; \
    done; \
    cp -r scripts/protocols /out/etc/strigil/protocols; \
    install -D -m 0755 -s build/strigil /out/usr/bin/strigil; \
    mkdir -p /out/usr/share/strigil; \
    cp -r scripts/protocols scripts/lang /out/usr/share/strigil/

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      liblua5.4-0 libuv1 libsqlite3-0 libcjson1 libcurl4 libhttp-parser2.9 \
      tzdata ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
RUN groupadd --gid 10001 strigil \
 && useradd --uid 10001 --gid strigil --home-dir /data \
      --no-create-home --shell /usr/sbin/nologin strigil \
 && install -d -o strigil -g strigil -m 0750 /data

COPY --from=build /out/ /

# The container's paths are fixed here; they win over the config file, so a
# config file written for a development checkout works when mounted too.
# Every STRIGIL_* setting can still be overridden at `docker run`/compose.
ENV STRIGIL_CONFIG=/etc/strigil/strigil.conf.lua \
    STRIGIL_DATABASE=/data/strigil.db \
    STRIGIL_PROTOCOLS=/etc/strigil/protocols \
    STRIGIL_LANG_DIR=/usr/share/strigil/lang \
    STRIGIL_CONSOLE=false \
    STRIGIL_HTTP_LISTEN=0.0.0.0

# Fails the build if a runtime library is missing or a protocol is broken.
RUN strigil --version && strigil check /usr/share/strigil/protocols/*.lua

USER strigil:strigil
WORKDIR /data
VOLUME ["/data"]
# /healthz and /metrics; publish on the host's loopback (docker-compose.yml).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["strigil", "health"]
# The daemon is PID 1: it handles SIGTERM itself (clean stop, exit 0) and
# starts no child processes, so no init is needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["strigil"]
CMD ["run"]
