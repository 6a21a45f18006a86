# syntax=docker/dockerfile:1
# tenant-enclave image: build with `docker build -t tenant-enclave .`, or use compose.yaml.
# Written to be correct by reading: no Docker engine runs on the project's own machines or CI.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: all dependencies (isolated-vm loads a prebuilt binary on Node 24), TypeScript -> dist/
FROM ${NODE_IMAGE} AS build
# Same npm major as development and CI (npm 11 honours package.json "allowScripts").
RUN npm install -g npm@11 && npm --version
WORKDIR /app
COPY package.json package-lock.json ./
# The workspaces (the TypeScript client, the sandbox modules) must be declared for npm ci to accept the lockfile.
COPY clients/typescript/package.json ./clients/typescript/package.json
COPY sandbox-modules/package.json ./sandbox-modules/package.json
# Optional dependencies stay in this stage: the console's bundler (Vite on Rolldown) loads its
# native binding from one. The runtime stage drops them (prune below), the pinned `node` included.
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund

# ---- runtime: production dependencies (with the compiled addon), compiled JS, migrations, sandbox modules
FROM ${NODE_IMAGE} AS runtime
# bubblewrap: the runners' OS sandbox (no network, read-only file system).
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap \
 && rm -rf /var/lib/apt/lists/*
# RUNNER_SANDBOX=required: the service refuses to start unless every layer of the runner sandbox
# is in place (runners as user nobody, bubblewrap), naming what is missing; compose.yaml grants
# bubblewrap what it needs. Set best-effort only knowingly: it starts with a warning instead.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    RUNNER_SANDBOX=required
WORKDIR /app
# package.json is needed at run time: it makes dist/*.js ES modules ("type": "module").
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/migrations ./migrations
# The sandbox modules' bundles (npm run build made them): what scripts may import.
COPY --from=build /app/sandbox-modules/dist ./sandbox-modules/dist
# Code stays root-owned and read-only to every other user. The service runs as root (no USER):
# only so can it start the runners, which hold tenants' code, as user nobody, a user apart from
# the one that holds the secrets. /data is for PGLITE_DIR=/data.
RUN mkdir -p /data
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# isolated-vm needs --no-node-snapshot (Node 20 and later).
CMD ["node", "--no-node-snapshot", "dist/server.js"]
