#!/usr/bin/env bash
# The project's one test command (`npm test`): checks and installs what the tests need, starts a
# real Kafka broker (KRaft, from Maven Central jars), runs unit, contract, integration and
# end-to-end tests with Node 24's test runner, and stops the broker afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need java openjdk-17-jre-headless
need mvn maven
need docker-registry docker-registry
need skopeo skopeo
need htpasswd apache2-utils
need openssl openssl
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "the tests need these Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund
NODE=$PWD/node_modules/.bin/node
"$NODE" --version | grep -q '^v24\.' || { echo "node_modules/.bin/node is not Node 24: run npm ci" >&2; exit 1; }

echo "typecheck" >&2
"$NODE" node_modules/typescript/bin/tsc --noEmit -p .

run=${HSB_TEST_RUN:-$PWD/.test-run}
rm -rf "$run" && mkdir -p "$run/tmp"
# Every temp dir the tests make lives under $run, so whatever a test leaves running (a broker, a
# registry) is found and stopped here even when the test itself was killed.
export TMPDIR=$run/tmp
cleanup() {
  "$NODE" scripts/kafka/broker.ts stop "$run/kafka" || true
  pkill -f -- "$run/" 2>/dev/null || true
}
trap cleanup EXIT
KAFKA_BROKERS=$("$NODE" --no-warnings scripts/kafka/broker.ts start "$run/kafka")
export KAFKA_BROKERS
# Its SASL_SSL and mutual-TLS listeners, CA and users (test/support/kafka.ts reads it).
export KAFKA_SECURE=$run/kafka/secure.json
echo "Kafka broker at $KAFKA_BROKERS" >&2

patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=("test/unit/**/*.test.ts" "test/integration/**/*.test.ts" "test/e2e/**/*.test.ts")
"$NODE" --no-warnings --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=600000 "${patterns[@]}"
