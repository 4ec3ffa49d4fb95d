# syntax=docker/dockerfile:1
# Node 24 (the LTS CI tests on). Build arguments for the OCI labels and price_stream_build_info:
#   docker build --build-arg VERSION=0.1.0 --build-arg GIT_REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_URL=https://github.com/OWNER/price-stream -t price-stream:0.1.0 .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The npm workspace (the client library, packages/client): npm ci needs its manifest.
COPY packages/client/package.json ./packages/client/
RUN npm ci --no-audit --no-fund
COPY . .
# The service and the web client only: bench/ is not in the build context (.dockerignore).
# The context has no .git: the revision comes from the build argument (else "unknown").
ARG GIT_REVISION=unknown
RUN npx nest build && GIT_REVISION=${GIT_REVISION} node scripts/write-build-info.mjs && node scripts/bundle.mjs \
  && npm run build:client && npm prune --omit=dev

FROM node:24-bookworm-slim
ARG VERSION=0.1.0
ARG GIT_REVISION=unknown
ARG SOURCE_URL=https://github.com/price-stream/price-stream
LABEL org.opencontainers.image.title="price-stream" \
  org.opencontainers.image.description="Live crypto prices over SSE, Socket.IO and WebSocket with gapless resume" \
  org.opencontainers.image.licenses="MIT" \
  org.opencontainers.image.source="${SOURCE_URL}" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${GIT_REVISION}"
# tini as PID 1: forwards SIGTERM/SIGINT to node and reaps orphaned children.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production PORT=8080
WORKDIR /app
# The app files belong to root and are read-only for the node user that runs the service.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/client/dist ./client/dist
RUN chmod -R u=rwX,go=rX /app
# uid 1000 (the image's `node` user): deploy/k8s runs it with runAsUser 1000 and runAsNonRoot.
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
