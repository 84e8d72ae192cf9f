# harbor-swr-bridge: Node 24 runs the TypeScript sources directly (type stripping), no build step.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY config ./config
RUN mkdir -p /var/lib/harbor-swr-bridge && chown node:node /var/lib/harbor-swr-bridge
USER node
ENV DATA_DIR=/var/lib/harbor-swr-bridge PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/harbor-swr-bridge.js"]
CMD ["run", "--config", "/etc/harbor-swr-bridge/config.yaml"]
