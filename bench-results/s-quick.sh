#!/usr/bin/env bash
# The quick workload-S runs BENCHMARKS.md quotes (run 6: the store's hot path), for A/B checks
# between two binaries. Needs one `WORKLOADS=S ../shared/bench/run.sh` first: it builds the load
# generator and upstream into /tmp/hgbench-build and leaves the certificates, the 1 KiB body and
# the S config in /tmp/hgbench-run. hookgate (one worker) on cpu0, load generator and upstream on
# cpu1, c=64 keep-alive mTLS for DUR seconds (5); prints acks/s, p50/p99, hookgate's CPU per ack
# during the load and including the drain, and the drain time.
#
#   bench-results/s-quick.sh BIN        PERF=1 ... also `perf record -g` the load (/tmp/hgsquick/perf.data)
#
# Alternate two binaries a few times: this VM's speed drifts by tens of percent.
set -euo pipefail
BIN=$(realpath "$1"); DUR=${DUR:-5}
RUN=/tmp/hgbench-run; B=/tmp/hgbench-build/target/release; D=/tmp/hgsquick
rm -rf "$D"; mkdir -p "$D"
sed -e "s#$RUN/hookgate-hookgate-store/store#$D/store#" -e 's/18444/18544/' -e 's/19902/19952/' \
    -e 's/18080/18180/' "$RUN/hookgate-hookgate-store/hookgate.toml" >"$D/h.toml"
taskset -c 1 "$B/hgbench-upstream" --listen 127.0.0.1:18180 >/dev/null 2>&1 & UP=$!
export HOOKGATE_HEADER_SECRET=bench-waf-secret-5b1f0c TOKIO_WORKER_THREADS=1
HOOKGATE_SIGNING_KEY=$(head -c 32 /dev/zero | base64); export HOOKGATE_SIGNING_KEY
taskset -c 0 "$BIN" run --config "$D/h.toml" >"$D/log" 2>&1 & HG=$!
trap 'kill $HG $UP 2>/dev/null || true' EXIT
sleep 1.5
served() { curl -s http://127.0.0.1:18180/__stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["served"])'; }
cpu() { awk '{print $14+$15}' "/proc/$HG/stat"; }
s0=$(served); c0=$(cpu)
if [[ -n "${PERF:-}" ]]; then perf record -g -p "$HG" -o "$D/perf.data" -- sleep "$DUR" >/dev/null 2>&1 & fi
C=$RUN/certs
taskset -c 1 "$B/hgbench-loadgen" --url https://127.0.0.1:18544/webhooks/copyleaks --mode keepalive \
    -c 64 -z "$DUR" --body "$RUN/body-1k.json" -H "X-Webhook-Secret: $HOOKGATE_HEADER_SECRET" \
    --ca "$C/ca.pem" --server-name localhost --cert "$C/client-ecdsa.pem" --key "$C/client-ecdsa.key" \
    --kx p256 >"$D/lg.json"
t1=$(date +%s.%N); c1=$(cpu)
read -r acked p50 p99 < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests_ok"], d["latency"]["p50_ms"], d["latency"]["p99_ms"])' "$D/lg.json")
n=0
while (( n < acked )); do
    n=$(( $(served) - s0 ))
    python3 -c "import sys,time; sys.exit(time.time() - $t1 > 120)" || break
    sleep 0.02
done
t2=$(date +%s.%N); c2=$(cpu); tck=$(getconf CLK_TCK)
python3 -c "
a=$acked; print(f'acks/s {a/$DUR:.0f} p50 $p50 p99 $p99 | cpu/ack load {($c1-$c0)/$tck/a*1e6:.0f} us, incl drain {($c2-$c0)/$tck/a*1e6:.0f} us | drain {$t2-$t1:.2f} s, delivered $n/{a}')"
