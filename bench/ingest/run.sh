#!/usr/bin/env bash
# `npm run bench:ingest`: starts a Kafka broker (scripts/kafka/broker.ts), the bridge
# (`harbor-swr-bridge serve`) and two bare Express handlers, drives each with wrk and autocannon
# from a separate process, prints the table and writes bench/ingest/RESULTS.md. Logs in bench/ingest/out/.
# Knobs: BENCH_SECONDS (10), BENCH_RATE (1000), BENCH_CONNECTIONS (64), BENCH_RATE_CONNECTIONS (32),
# BENCH_LOG_LEVEL (info), BENCH_RESULTS (path of the results file).
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=$PWD/node_modules/.bin/node
"$NODE" --version 2>/dev/null | grep -q '^v24\.' || { echo "node_modules/.bin/node is not Node 24: run npm ci" >&2; exit 1; }
[ -d node_modules/autocannon ] || { echo "autocannon is missing: run npm ci" >&2; exit 1; }
command -v java >/dev/null || { echo "the Kafka broker needs Java (openjdk-17-jre-headless) and maven" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing wrk with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
  else
    echo "the ingest benchmark needs wrk (Debian package wrk)" >&2
    exit 1
  fi
fi
exec "$NODE" --no-warnings bench/ingest/bench.ts "$@"
