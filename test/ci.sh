#!/usr/bin/env bash
# Passerelle: the one command that runs every check and test on a fresh Debian 12 machine with Node 20.
#
#   bash test/ci.sh [extra vitest args...]
#
# 1. Installs what is missing (apt packages, pgvector built from trixie's Debian source package, npm install).
#    Every step is skipped when already done, so a second run goes straight to the cluster.
# 2. Creates a throwaway PostgreSQL 15 cluster (superuser postgres, vector + unaccent in template1, fsync off)
#    and a throwaway Redis, each on a free port, and exports
#      PASSERELLE_TEST_DATABASE_URL=postgresql://postgres:<pw>@127.0.0.1:<port>/postgres
#      PASSERELLE_TEST_REDIS_URL=redis://127.0.0.1:<port>
# 3. Runs, in order, stopping at the first failure: a docker-compose.yml parse check, buf lint, biome check,
#    tsc --noEmit, vitest run "$@".
# A trap always stops Redis and drops the cluster, whatever happens.
#
# Environment:
#   PASSERELLE_CI_SETUP_ONLY=1  set up, print the URLs, prove vector + unaccent exist in a fresh database, tear down.
#   PASSERELLE_CI_PG_PORT_BASE / PASSERELLE_CI_REDIS_PORT_BASE  first port tried (55432 / 56379).
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PG_VERSION=15
PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"
VECTOR_SO="/usr/lib/postgresql/${PG_VERSION}/lib/vector.so"
VECTOR_CONTROL="/usr/share/postgresql/${PG_VERSION}/extension/vector.control"
APT_PACKAGES=(postgresql-15 postgresql-contrib postgresql-server-dev-15 dpkg-dev redis-server)
# onnxruntime-node (if ever added) tries to download CUDA providers when nvcc is present; its CPU build is in the tarball.
export ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}"

log() { printf '[ci] %s\n' "$*" >&2; }
die() {
  printf '[ci] ERROR: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- timing
PHASE_NAME=""
PHASE_T0=""
phase() { # phase NAME: ends the running phase (prints its duration) and starts NAME ("" = just end)
  local now="${EPOCHREALTIME}"
  if [[ -n "$PHASE_NAME" ]]; then
    LC_ALL=C awk -v a="$PHASE_T0" -v b="$now" -v n="$PHASE_NAME" 'BEGIN { printf "[ci] %-14s %7.1fs\n", n, b - a }' >&2
  fi
  PHASE_NAME="$1"
  PHASE_T0="$now"
}
CI_T0="${EPOCHREALTIME}"

# ---------------------------------------------------------------- privileges
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    die "this script installs packages and creates a PostgreSQL cluster: run it as root, or install sudo for $(id -un)"
  fi
fi
as_root() { "${SUDO[@]}" "$@"; }
as_postgres() {
  if [[ ${#SUDO[@]} -eq 0 ]]; then runuser -u postgres -- "$@"; else sudo -u postgres -- "$@"; fi
}

# ---------------------------------------------------------------- teardown (always)
PG_CLUSTER=""
REDIS_PORT=""
REDIS_PIDFILE=""
TMP_DIRS=()
cleanup() {
  local rc=$?
  set +e
  if [[ -n "$PHASE_NAME" ]]; then phase ""; fi
  if [[ -n "$REDIS_PORT" ]]; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 ||
      if [[ -s "$REDIS_PIDFILE" ]]; then kill "$(cat "$REDIS_PIDFILE")" 2>/dev/null; fi
  fi
  if [[ -n "$PG_CLUSTER" ]]; then
    as_root pg_dropcluster --stop "$PG_VERSION" "$PG_CLUSTER" >/dev/null 2>&1 ||
      log "warning: could not drop cluster $PG_VERSION/$PG_CLUSTER (pg_dropcluster --stop $PG_VERSION $PG_CLUSTER)"
  fi
  local d
  for d in "${TMP_DIRS[@]}"; do as_root rm -rf -- "$d"; done
  LC_ALL=C awk -v a="$CI_T0" -v b="${EPOCHREALTIME}" -v rc="$rc" \
    'BEGIN { printf "[ci] %-14s %7.1fs (exit %d)\n", "total", b - a, rc }' >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

new_tmp_dir() { # new_tmp_dir VAR: a temp dir removed by the trap
  local d
  d="$(mktemp -d "${TMPDIR:-/tmp}/passerelle-ci.XXXXXX")"
  TMP_DIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

# ---------------------------------------------------------------- 1. apt packages
phase "apt"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]]; then missing+=("$p"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing missing apt packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- 2. pgvector (no bookworm package: build trixie's)
phase "pgvector"
if [[ ! -f "$VECTOR_SO" || ! -f "$VECTOR_CONTROL" ]]; then
  log "building pgvector from Debian trixie's source package"
  # A private apt configuration in a temp dir: the trixie deb-src entry and its index never touch /etc/apt or
  # /var/lib/apt/lists, and the trap removes the whole dir even on failure. The mirror URI is the bookworm one.
  new_tmp_dir PGV_DIR
  uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  if [[ -z "$uri" ]]; then
    uri="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [[ -n "$uri" ]] || die "cannot find the Debian mirror URI in /etc/apt/sources.list.d/debian.sources or sources.list"
  mkdir -p "$PGV_DIR/sources.list.d" "$PGV_DIR/lists/partial" "$PGV_DIR/src"
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" >"$PGV_DIR/sources.list.d/trixie-src.sources"
  chmod -R a+rX "$PGV_DIR"
  as_root chown -R _apt:root "$PGV_DIR/lists/partial" "$PGV_DIR/src" 2>/dev/null || true
  apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$PGV_DIR/sources.list.d"
    -o "Dir::State::Lists=$PGV_DIR/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  )
  as_root apt-get "${apt_opts[@]}" update -qq
  (cd "$PGV_DIR/src" && as_root apt-get "${apt_opts[@]}" source -qq pgvector >/dev/null)
  src="$(find "$PGV_DIR/src" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)"
  [[ -n "$src" ]] || die "apt-get source pgvector produced no pgvector-* directory"
  # OPTFLAGS="" avoids -march=native (the .so may be copied to another CPU); PG_CONFIG pins PostgreSQL 15.
  as_root make -s -C "$src" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="" -j"$(nproc)" >/dev/null
  as_root make -s -C "$src" PG_CONFIG="$PG_BIN/pg_config" install >/dev/null
  [[ -f "$VECTOR_SO" ]] || die "pgvector build finished but $VECTOR_SO is missing"
fi

# ---------------------------------------------------------------- 3. npm install
# `npm install`, not `npm ci`: the registry these machines reach serves only the linux builds of packages with
# per-platform optional binaries (biome, esbuild…), so the lock file cannot list the others and `npm ci` refuses it
# ("Missing: @biomejs/cli-darwin-arm64 from lock file"). `npm install` honours the locked versions all the same.
phase "npm install"
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "running npm install"
  npm install --no-audit --no-fund
fi

# ---------------------------------------------------------------- 4. PostgreSQL cluster
phase "postgres"
command -v node >/dev/null 2>&1 || die "node (20) is required"
# Prints the first port >= $1 on which 127.0.0.1 can be bound, skipping the ports listed in $2 (space-separated).
free_port() {
  node -e '
    const net = require("node:net");
    const start = Number(process.argv[1]);
    const skip = new Set(process.argv[2].split(/\s+/).filter(Boolean).map(Number));
    const tryPort = (p) => new Promise((ok) => {
      const s = net.createServer();
      s.once("error", () => ok(false));
      s.listen({ port: p, host: "127.0.0.1", exclusive: true }, () => s.close(() => ok(true)));
    });
    (async () => {
      for (let p = start; p < start + 500 && p < 65536; p++) {
        if (!skip.has(p) && (await tryPort(p))) { console.log(p); return; }
      }
      console.error("no free port from " + start); process.exit(1);
    })();
  ' "$1" "${2:-}"
}

# Drop clusters left behind by killed runs (named ptPID, PID no longer alive).
while read -r ver name _; do
  if [[ "$ver" == "$PG_VERSION" && "$name" =~ ^pt([0-9]+)$ && ! -d "/proc/${BASH_REMATCH[1]}" ]]; then
    log "dropping stale cluster $ver/$name"
    as_root pg_dropcluster --stop "$ver" "$name" >/dev/null 2>&1 || true
  fi
done < <(pg_lsclusters -h 2>/dev/null || true)

PG_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
name="pt$$"
if pg_lsclusters -h 2>/dev/null | awk -v n="$name" -v v="$PG_VERSION" '$1 == v && $2 == n { f = 1 } END { exit !f }'; then
  as_root pg_dropcluster --stop "$PG_VERSION" "$name" >/dev/null 2>&1 || true
fi
PG_PORT=""
port_from="${PASSERELLE_CI_PG_PORT_BASE:-55432}"
for attempt in 1 2 3 4 5; do
  used="$(pg_lsclusters -h 2>/dev/null | awk '{ printf "%s ", $3 }' || true)"
  port="$(free_port "$port_from" "$used")"
  PG_CLUSTER="$name" # from here on the trap drops it
  as_root pg_createcluster -q "$PG_VERSION" "$name" --port "$port" --start-conf=manual --locale=C.UTF-8 \
    -- --no-sync >/dev/null
  # Throwaway data: trade durability for speed. Appended to postgresql.conf (the last setting wins) rather than
  # passed as pg_createcluster -o, which mangles listen_addresses (bare 127.0.0.1 is a syntax error, and a quoted
  # value gets quoted twice), and rather than a conf.d file, which pg_dropcluster would leave behind.
  printf '%s\n' "" "# passerelle test/ci.sh" "listen_addresses = '127.0.0.1'" "max_connections = 200" "fsync = off" \
    "synchronous_commit = off" "full_page_writes = off" "shared_buffers = 512MB" |
    as_root tee -a "/etc/postgresql/$PG_VERSION/$name/postgresql.conf" >/dev/null
  if start_err="$(as_root pg_ctlcluster "$PG_VERSION" "$name" start 2>&1)"; then
    PG_PORT="$port"
    break
  fi
  as_root pg_dropcluster --stop "$PG_VERSION" "$name" >/dev/null 2>&1 || true
  PG_CLUSTER=""
  if ! grep -qiE 'already in use|could not bind|could not create any TCP|lock file' <<<"$start_err"; then
    die "PostgreSQL $PG_VERSION cluster failed to start: $start_err"
  fi
  log "port $port was taken before the cluster could start (attempt $attempt), trying another one"
  port_from=$((port + 1))
done
[[ -n "$PG_PORT" ]] || die "could not start a PostgreSQL $PG_VERSION cluster"

# Superuser password, then vector + unaccent in template1 so every CREATE DATABASE gets them.
as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
  -c "ALTER USER postgres PASSWORD '${PG_PASSWORD}'" >/dev/null
as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d template1 \
  -c "CREATE EXTENSION IF NOT EXISTS vector" -c "CREATE EXTENSION IF NOT EXISTS unaccent" >/dev/null
export PASSERELLE_TEST_DATABASE_URL="postgresql://postgres:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/postgres"

# ---------------------------------------------------------------- 5. Redis
phase "redis"
command -v redis-server >/dev/null 2>&1 || die "redis-server is missing"
new_tmp_dir REDIS_DIR
port_from="${PASSERELLE_CI_REDIS_PORT_BASE:-56379}"
for attempt in 1 2 3 4 5; do
  port="$(free_port "$port_from" "$PG_PORT")"
  REDIS_PIDFILE="$REDIS_DIR/redis-$port.pid"
  if redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_DIR/redis-$port.log" >/dev/null; then
    REDIS_PORT="$port" # from here on the trap shuts it down
    # Ours only if the server answering on the port has the pid of our pidfile: a concurrent run may have taken
    # the port between free_port and the bind, and its server would answer PING too.
    for _ in $(seq 1 100); do
      if [[ -s "$REDIS_PIDFILE" ]]; then
        answer_pid="$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')"
        if [[ -n "$answer_pid" && "$answer_pid" == "$(cat "$REDIS_PIDFILE")" ]]; then break 2; fi
      fi
      if grep -q 'Could not create server TCP\|Address already in use' "$REDIS_DIR/redis-$port.log" 2>/dev/null; then break; fi
      sleep 0.05
    done
    log "redis did not start on port $port (attempt $attempt): $(tail -n 2 "$REDIS_DIR/redis-$port.log" 2>/dev/null)"
    if [[ -s "$REDIS_PIDFILE" ]]; then kill "$(cat "$REDIS_PIDFILE")" 2>/dev/null || true; fi
    REDIS_PORT=""
  fi
  port_from=$((port + 1))
done
[[ -n "$REDIS_PORT" ]] || die "could not start redis-server"
export PASSERELLE_TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"

log "PASSERELLE_TEST_DATABASE_URL=${PASSERELLE_TEST_DATABASE_URL}"
log "PASSERELLE_TEST_REDIS_URL=${PASSERELLE_TEST_REDIS_URL}"

# ---------------------------------------------------------------- setup-only smoke check
if [[ "${PASSERELLE_CI_SETUP_ONLY:-}" == "1" ]]; then
  phase "smoke"
  db="ci_smoke_$$"
  base="${PASSERELLE_TEST_DATABASE_URL%/postgres}"
  psql -X -q -v ON_ERROR_STOP=1 "$PASSERELLE_TEST_DATABASE_URL" -c "CREATE DATABASE ${db}"
  exts="$(psql -X -A -t -v ON_ERROR_STOP=1 "${base}/${db}" -c "select extname from pg_extension order by 1")"
  printf '[ci] extensions in a fresh database: %s\n' "$(echo "$exts" | tr '\n' ' ')" >&2
  psql -X -A -t -v ON_ERROR_STOP=1 "${base}/${db}" \
    -c "select version()" \
    -c "select extname || ' ' || extversion from pg_extension where extname in ('vector', 'unaccent') order by 1" \
    -c "select unaccent('Élèves château'), '[1,0,0]'::vector <=> '[1,0.1,0]'::vector" \
    -c "show fsync" -c "show max_connections" >&2
  grep -qx vector <<<"$exts" || die "extension vector missing in a fresh database"
  grep -qx unaccent <<<"$exts" || die "extension unaccent missing in a fresh database"
  [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)" == "PONG" ]] || die "redis does not answer PING"
  log "setup OK (PASSERELLE_CI_SETUP_ONLY=1: skipping lint, typecheck and tests)"
  exit 0
fi

# ---------------------------------------------------------------- 6. checks and tests
phase "compose"
# docker-compose.yml cannot be run here (no Docker engine): at least check that it parses and names its services.
node --input-type=module -e '
  import { readFileSync } from "node:fs";
  import { parse } from "yaml";
  const doc = parse(readFileSync("docker-compose.yml", "utf8"));
  const want = ["passerelle", "postgres", "redis", "elasticsearch", "vllm"];
  const missing = want.filter((s) => !doc?.services?.[s]);
  if (missing.length) { console.error("docker-compose.yml: missing services " + missing.join(", ")); process.exit(1); }
'
phase "buf lint"
npx buf lint
phase "biome"
npx biome check .
phase "tsc"
npx tsc --noEmit
phase "vitest"
VITEST_JSON="$(mktemp)"
vitest_rc=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$VITEST_JSON" "$@" || vitest_rc=$?
# One plain closing line that any CI reads: "N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$VITEST_JSON" || true
rm -f "$VITEST_JSON"
[[ $vitest_rc -eq 0 ]] || exit "$vitest_rc"
phase ""
log "all checks passed"
