#!/usr/bin/env bash
# The quick A/B and profiling runs BENCHMARKS.md quotes, with the shared bench's own tools.
# Run ../shared/bench/run.sh once first (it builds the load generator and upstream into
# /tmp/hgbench-build and leaves certificates, bodies and a hookgate config in /tmp/hgbench-run).
#
#   bench-results/profile.sh BIN A|B|C [SECONDS]   hookgate µs CPU/request, one worker on cpu0
#   bench-results/profile.sh BIN hold               RSS per idle mTLS connection (1,000 held)
#   PERF=1 ...   also `perf record` the proxy with call graphs (PERF_CG=dwarf for exact stacks;
#                the default fp is cheaper; report: perf report -i /tmp/hgprofile/perf.data)
#   DEVPAYLOAD=1 ... with the developerPayload check on (the bench's HOOKGATE_DEVPAYLOAD=1)
#   STRACE=1 ... also `strace -c` it (summary in /tmp/hgprofile/strace.txt)
#   HEAPTRACK=1 ... run hookgate under heaptrack (stopped with SIGTERM so it writes
#                /tmp/hgprofile/heaptrack.zst; read it with heaptrack_print; RSS includes heaptrack)
#   bench-results/profile.sh nginx A|B|C|hold   the same load and probes on the bench's nginx
#                (its config from the last run.sh, moved to these ports; the worker is measured)
# Alternate two binaries a few times: this VM's speed drifts by tens of percent.
set -euo pipefail
W=$2; SECS=${3:-5}
T=/tmp/hgbench-build/target/release; R=/tmp/hgbench-run; C=$R/certs; O=/tmp/hgprofile
[[ -x $T/hgbench-loadgen && -f $R/hookgate-hookgate-main/hookgate.toml ]] ||
  { echo "run ../shared/bench/run.sh once first" >&2; exit 1; }
mkdir -p "$O"
taskset -c 1 "$T/hgbench-upstream" --listen 127.0.0.1:28080 >/dev/null 2>&1 & UP=$!
if [[ $1 == nginx ]]; then
  N=$O/nginx; mkdir -p "$N/nginx-tmp"
  sed -e "s|$R/nginx-nginx-main|$N|g" -e 's/:18443 /:28443 /' -e 's/:18080;/:28080;/' \
    "$R/nginx-nginx-main/nginx.conf" > "$N/nginx.conf"
  taskset -c 0 nginx -c "$N/nginx.conf" -p "$N" >/dev/null 2>&1 & MASTER=$!
  sleep 0.7; HG=$(pgrep -P $MASTER | head -1)   # the one worker process
  stop() { kill $MASTER $UP 2>/dev/null; wait 2>/dev/null; }
else
  BIN=$(realpath "$1")
  sed -e 's/:18449"/:28443"/' -e 's/:19901"/:29901"/' -e 's/:18080"/:28080"/' \
    "$R/hookgate-hookgate-main/hookgate.toml" > "$O/hookgate.toml"
  if [[ ${DEVPAYLOAD:-0} == 1 ]]; then   # the bench's HOOKGATE_DEVPAYLOAD=1 section
    sed -i 's|^# \[developer_payload\] off.*|[developer_payload]\npointer = "/developerPayload"\nvalues = [{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }]\npath_prefixes = ["/"]|' "$O/hookgate.toml"
    grep -q '^\[developer_payload\]' "$O/hookgate.toml" || { echo "no developer_payload placeholder" >&2; exit 1; }
  fi
  run=("$BIN"); [[ ${HEAPTRACK:-0} == 1 ]] && { rm -f "$O/heaptrack.zst"; run=(heaptrack -o "$O/heaptrack" "$BIN"); }
  HOOKGATE_HEADER_SECRET=bench-waf-secret-5b1f0c HOOKGATE_DEVELOPER_PAYLOAD=bench-developer-payload-0123456789 HOOKGATE_SIGNING_KEY=$(openssl rand -base64 32) \
    TOKIO_WORKER_THREADS=1 taskset -c 0 "${run[@]}" run --config "$O/hookgate.toml" > "$O/hookgate.log" 2>&1 & HG=$!
  sleep 0.7
  # Under heaptrack the process to measure and stop is its child; SIGTERM lets it write its file.
  [[ ${HEAPTRACK:-0} == 1 ]] && { sleep 2; HG=$(pgrep -P $HG -f "$BIN" | head -1); }
  stop() { kill -TERM $HG 2>/dev/null; while kill -0 $HG 2>/dev/null; do sleep 0.2; done; kill $UP 2>/dev/null; wait 2>/dev/null; }
fi
trap stop EXIT
lg() { taskset -c 1 "$T/hgbench-loadgen" --url https://localhost:28443/webhooks/copyleaks \
  --cert "$C/client-ecdsa.pem" --key "$C/client-ecdsa.key" --ca "$C/ca.pem" \
  -H "X-Webhook-Secret: bench-waf-secret-5b1f0c" "$@"; }
cpu() { awk '{print $14 + $15}' "/proc/$HG/stat"; }
if [[ $W == hold ]]; then
  lg --mode new-conn --requests 40 --concurrency 4 --body "$R/body-1k.json" >/dev/null
  idle=$(awk '/VmRSS/{print $2}' "/proc/$HG/status")
  lg --hold 1000 --hold-secs 6 --body "$R/body-1k.json" >/dev/null & L=$!
  sleep 5; held=$(awk '/VmRSS/{print $2}' "/proc/$HG/status"); wait $L
  echo "idle ${idle} KiB, 1000 held ${held} KiB, $(( (held - idle) / 1000 )) KiB per connection"
  exit 0
fi
case $W in
  A) args=(--concurrency 16 --mode new-conn --body "$R/body-1k.json") ;;
  B) args=(--concurrency 64 --mode keepalive --body "$R/body-1k.json") ;;
  C) args=(--concurrency 16 --mode keepalive --body "$R/body-256k.json") ;;
  *) echo "workload A, B, C or hold" >&2; exit 2 ;;
esac
probes=()
if [[ ${PERF:-0} == 1 ]]; then
  { sleep 1.5; perf record -F 4000 --call-graph "${PERF_CG:-fp}" -p $HG -o "$O/perf.data" -- sleep 3 >/dev/null 2>&1; } & probes+=($!)
fi
if [[ ${STRACE:-0} == 1 ]]; then
  { sleep 1.5; timeout 3 strace -c -f -p $HG -o "$O/strace.txt" >/dev/null 2>&1; } & probes+=($!)
fi
t0=$(cpu)
lg "${args[@]}" --duration "$SECS" > "$O/loadgen.json"
t1=$(cpu)
python3 - "$t0" "$t1" "$O/loadgen.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[3]))
ok, cpu_s = d["requests_ok"], (int(sys.argv[2]) - int(sys.argv[1])) / 100
print(f"{ok} requests, {d['rps']:.0f} req/s, proxy {cpu_s * 1e6 / max(ok, 1):.1f} µs CPU/request")
PY
for p in "${probes[@]}"; do wait "$p"; done
