#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars from Maven Central once and caches them.
# Prints the lib directory. Version pinned in pom.xml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
cache=${HSB_CACHE:-$HOME/.cache/harbor-swr-bridge}/kafka-$version
if [ ! -f "$cache/lib/kafka_2.13-$version.jar" ] || [ ! -f "$cache/lib/slf4j-reload4j-1.7.36.jar" ]; then
  command -v mvn >/dev/null || { echo "Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven" >&2; exit 1; }
  command -v java >/dev/null || { echo "Java 17 is needed to run the Kafka broker: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
  echo "fetching Kafka $version jars from Maven Central into $cache/lib" >&2
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$cache.tmp/lib" >&2
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
echo "$cache/lib"
