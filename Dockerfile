# agentq as an image: compiled JavaScript (npm run build → dist/), production
# dependencies only, run by plain node as the unprivileged `node` user.
#
#   docker build -t agentq .
#   docker run --rm -e DATABASE_URL=… agentq node dist/scripts/migrate.js
#   docker run -e DATABASE_URL=… -e HOST=0.0.0.0 -e AGENTQ_API_TOKENS=… -p 127.0.0.1:8080:8080 agentq
#   docker run -e DATABASE_URL=… -e HOST=0.0.0.0 -e AGENTQ_API_TOKENS=… -e AGENTQ_METRICS_PORT=9464 agentq node dist/worker/main.js
#
# HOST is left at agentq's loopback default: listening on every interface is a
# choice, and agentq refuses it without AGENTQ_API_TOKENS.

# --- build: every dependency, then tsc ---------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- production: the compiled code and production dependencies -------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
# No dev dependencies, and no optional ones: those are the embedded Postgres
# binaries (only `npm start` without DATABASE_URL uses them) and esbuild's
# (only tsx uses it; the compiled code needs no TypeScript loader). No install
# scripts are needed without them.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
# Files stay root-owned and read-only to the process.
USER node
# The API; a worker's probes and /metrics are on AGENTQ_METRICS_PORT (9464 in the examples).
EXPOSE 8080 9464
# The API's readiness (database answers, migrations current). A worker
# container overrides it with its metrics port's /readyz (docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself, not npm: `docker stop` (SIGTERM) reaches agentq's graceful shutdown.
CMD ["node", "dist/api/main.js"]
