# The metaparticle-sync sidecar image.
#
#   docker build -t metaparticle-sync .
#   docker run --rm metaparticle-sync --help
#
# The daemon listens on 127.0.0.1:13131 (loopback: only containers in the same
# pod reach it) and picks its backend itself: Kubernetes Leases when it runs in
# a pod with a service account, else the in-process memory store. Flags after
# the image name, or MSYNC_* environment variables, change its settings.
#
# test/grpc/production-install.test.ts repeats these steps without Docker (the
# COPY lines, the RUN lines and the ENTRYPOINT) and checks the labels and that
# the runtime has no npm: change them together. The version label follows
# package.json's "version" (the test checks it).
#
# @kubernetes/client-node 2 needs Node >= 22.19; node:22 images are past that.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY clients/typescript/package.json clients/typescript/
# No install scripts: the devDependency "node" would download a second Node, which the image already has.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY clients/typescript clients/typescript
COPY daemon daemon
COPY examples examples
RUN node node_modules/typescript/bin/tsc -b
# The lean build the image runs: the daemon bundled into dist/lean (scripts/bundle.mjs).
COPY scripts/bundle.mjs scripts/
RUN node scripts/bundle.mjs
# Keep only the production dependencies (pruning, not a second install); the workspace link to the client stays.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="metaparticle-sync" \
      org.opencontainers.image.description="Sidecar daemon: distributed locks and leader election over gRPC, stored in Kubernetes Leases" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/metaparticle-io/metaparticle-sync"
# Nothing installs packages at run time: the base image's npm, npx and corepack go.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/clients/typescript/package.json clients/typescript/
COPY --from=build /src/clients/typescript/dist clients/typescript/dist
COPY --from=build /src/dist/lean dist/lean
COPY --from=build /src/dist/examples dist/examples
# The image's "node" user, by number, so that runAsNonRoot can check it.
USER 1000:1000
# Documentation only: the default address is loopback, for the app beside it in the pod.
EXPOSE 13131
# V8 flags: a smaller young generation and code tuned for size. Holding 1,000 locks for 1,000 observers, max RSS
# 117.4 MiB against 162.0 MiB without them, for about 6 % more CPU per handoff (1.06 against 1.00 ms) and per
# renewal (bench: MSYNC_BENCH_DAEMON_NODE_FLAGS, bench/README.md).
ENTRYPOINT ["node", "--optimize-for-size", "--max-semi-space-size=1", "dist/lean/main.mjs"]
