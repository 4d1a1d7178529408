#!/usr/bin/env bash
# CI checks for everything under deploy/ (issue 6). Run from the repository root by .ci/run:
#
#   HOOKGATE_BIN=target/release/hookgate bash deploy/check.sh
#   HOOKGATE_MUSL=1 HOOKGATE_BIN=... bash deploy/check.sh   # also builds the image's static binary
#
# 1. every Kubernetes object (files and kustomize renders) against pinned Kubernetes schemas;
# 2. `hookgate check` on the ConfigMap's proxy.toml, the AWS overlay's and the systemd example,
#    with the example Secrets' values, a throwaway openssl certificate and no network at all;
#    `hookgate thumbprint` against openssl's fingerprints;
# 3. `systemd-analyze verify` and `security` on the unit;
# 4. (HOOKGATE_MUSL=1) the static musl build exactly as deploy/Dockerfile does it, checked to be
#    static and run through the same checks as 2.
# Installs if missing: kubernetes-validate (PyPI, pinned), systemd (Debian, for systemd-analyze),
# and with HOOKGATE_MUSL=1 the rustup musl target and musl-tools. Fails on the first error.
set -euo pipefail

cd "$(dirname "$0")/.."
KUBERNETES_VALIDATE_VERSION=1.37.0
# The oldest Kubernetes the example supports (native sidecars are on by default from 1.29, the
# preStop sleep action from 1.30) and the newest the pinned validator knows.
K8S_VERSIONS=(1.30.0 1.37.0)

passed=0
step() { printf '\n== deploy: %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
die() { printf 'deploy/check.sh: FAIL: %s\n' "$*" >&2; exit 1; }

[[ -n "${HOOKGATE_BIN:-}" ]] || die "set HOOKGATE_BIN to a built hookgate binary"
HOOKGATE_BIN=$(realpath "$HOOKGATE_BIN")
[[ -x "$HOOKGATE_BIN" ]] || die "HOOKGATE_BIN=$HOOKGATE_BIN is not an executable"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --------------------------------------------------------------------------------------------
step "1/4 Kubernetes manifests (kubernetes-validate $KUBERNETES_VALIDATE_VERSION, Kubernetes ${K8S_VERSIONS[*]})"
if ! python3 -c "import kubernetes_validate.version as v, sys; sys.exit(v.__version__ != '$KUBERNETES_VALIDATE_VERSION')" 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" ||
      python3 -m pip install -q --disable-pip-version-check --break-system-packages \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
rendered=()
KUBECTL=${KUBECTL:-kubectl}
if command -v "$KUBECTL" >/dev/null 2>&1; then
    "$KUBECTL" kustomize deploy/kubernetes >"$tmp/base.yaml"
    "$KUBECTL" kustomize deploy/kubernetes/aws-nlb-proxy-protocol >"$tmp/aws-nlb.yaml"
    rendered=(--rendered "base=$tmp/base.yaml" --rendered "aws-nlb-proxy-protocol=$tmp/aws-nlb.yaml")
    ok "kubectl kustomize renders deploy/kubernetes and deploy/kubernetes/aws-nlb-proxy-protocol"
else
    # Without kustomize the base is still plain files; the overlay's patches cannot be applied.
    echo "skip kustomize rendering of aws-nlb-proxy-protocol: kubectl not found (its patched proxy.toml is still checked below)"
    for f in $(sed -n 's/^  - \([a-z.-]*\.yaml\)$/\1/p' deploy/kubernetes/base/kustomization.yaml); do
        cat "deploy/kubernetes/base/$f"
        echo "---"
    done >"$tmp/base.yaml"
    rendered=(--rendered "base-without-kustomize=$tmp/base.yaml")
fi
k8s_args=()
for v in "${K8S_VERSIONS[@]}"; do k8s_args+=(--k8s-version "$v"); done
python3 deploy/validate-manifests.py "${k8s_args[@]}" --dir deploy/kubernetes "${rendered[@]}"
ok "every Kubernetes object is valid; CRD kinds skipped as listed above"

# --------------------------------------------------------------------------------------------
step "2/4 hookgate check on the shipped configurations ($HOOKGATE_BIN)"

# A throwaway server certificate stands in for the hookgate-tls Secret / the VM's certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=webhooks.example.com" -addext "subjectAltName=DNS:webhooks.example.com" \
    -keyout "$tmp/server.key" -out "$tmp/server.pem" 2>/dev/null
expect_sha1=$(openssl x509 -in "$tmp/server.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
expect_sha256=$(openssl x509 -in "$tmp/server.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')

# The example Secret's values, as the Deployment passes them (environment variables).
eval "$(python3 - <<'EOF'
import shlex, yaml
secret = yaml.safe_load(open("deploy/kubernetes/base/secret-hookgate.example.yaml"))
for k, v in secret["stringData"].items():
    print(f"export {k}={shlex.quote(v)}")
EOF
)"

# Copies a proxy.toml out of a ConfigMap file (or a plain file) into DIR, with the deployment's
# absolute paths pointed into DIR; prints the new path.
stage_config() { # SRC DIR
    local src=$1 dir=$2
    mkdir -p "$dir/tls" "$dir/cache" "$dir/state" "$dir/creds"
    cp "$tmp/server.pem" "$dir/tls/tls.crt"; cp "$tmp/server.key" "$dir/tls/tls.key"
    cp "$tmp/server.pem" "$dir/tls/server.pem"; cp "$tmp/server.key" "$dir/tls/server.key"
    printf '%s\n' "$HOOKGATE_SIGNING_KEY" >"$dir/creds/signing-key"
    printf '%s\n' "$HOOKGATE_HEADER_SECRET" >"$dir/creds/header-secret"
    printf '%s\n' "$HOOKGATE_DEVELOPER_PAYLOAD" >"$dir/creds/developer-payload"
    printf '%s\n' "$HOOKGATE_EXPORT_SECRET" >"$dir/creds/export-secret"
    python3 - "$src" "$dir" <<'EOF'
import sys, yaml
src, dir = sys.argv[1], sys.argv[2]
text = open(src).read()
if src.endswith(".yaml"):
    text = yaml.safe_load(text)["data"]["proxy.toml"]
for old, new in [("/etc/hookgate-tls/", "tls/"), ("/var/cache/hookgate/", "cache/"),
                 ("/etc/hookgate/tls/", "tls/"), ("/var/lib/hookgate/", "state/"),
                 ("/run/credentials/hookgate.service/", "creds/")]:
    text = text.replace(f'"{old}', f'"{dir}/{new}')
open(f"{dir}/proxy.toml", "w").write(text)
EOF
    echo "$dir/proxy.toml"
}

# `check` must not reach the sender's real endpoints from CI: run it in a network namespace
# with nothing in it (root can), else point the list URLs at a closed loopback port.
if unshare -n true 2>/dev/null; then
    offline=(unshare -n)
    echo "info hookgate check runs in an empty network namespace (unshare -n)"
else
    offline=()
    echo "info unshare -n is not available: list URLs are pointed at https://127.0.0.1:9 for check"
fi

run_check() { # BIN LABEL CONFIG
    local bin=$1 label=$2 config=$3 out
    [[ ${#offline[@]} -gt 0 ]] || sed -i 's|"https://api.copyleaks.com/|"https://127.0.0.1:9/|' "$config"
    if ! out=$("${offline[@]}" "$bin" check --config "$config" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/     | /'
        die "hookgate check rejected $label"
    fi
    printf '%s\n' "$out" | sed 's/^/     | /'
    ok "hookgate check accepts $label"
}

run_thumbprint() { # BIN
    local bin=$1 line
    line=$("$bin" thumbprint "$tmp/server.pem")
    echo "     | $line"
    [[ "$line" == "$tmp/server.pem sha1:$expect_sha1 sha256:$expect_sha256 "* ]] ||
        die "hookgate thumbprint disagrees with openssl (sha1:$expect_sha1 sha256:$expect_sha256)"
    ok "hookgate thumbprint matches openssl's SHA-1 and SHA-256 fingerprints"
}

check_configs() { # BIN
    local bin=$1 n=$((++stage))
    run_check "$bin" "deploy/kubernetes/base/configmap-hookgate.yaml" \
        "$(stage_config deploy/kubernetes/base/configmap-hookgate.yaml "$tmp/$n-k8s")"
    run_check "$bin" "the aws-nlb-proxy-protocol overlay's proxy.toml" \
        "$(stage_config deploy/kubernetes/aws-nlb-proxy-protocol/configmap-hookgate.patch.yaml "$tmp/$n-nlb")"
    run_check "$bin" "deploy/systemd/proxy.toml" \
        "$(stage_config deploy/systemd/proxy.toml "$tmp/$n-systemd")"
    run_thumbprint "$bin"
}
stage=0
check_configs "$HOOKGATE_BIN"

# The overlay carries a full copy of proxy.toml (a patch replaces the whole key): it must not
# drift from the base anywhere but in the PROXY protocol lines.
python3 - <<'EOF'
import difflib, sys, yaml
def conf(p): return yaml.safe_load(open(p))["data"]["proxy.toml"].splitlines()
base = conf("deploy/kubernetes/base/configmap-hookgate.yaml")
nlb = conf("deploy/kubernetes/aws-nlb-proxy-protocol/configmap-hookgate.patch.yaml")
changed = [l for l in difflib.unified_diff(base, nlb, lineterm="", n=0)
           if l[:1] in "+-" and not l.startswith(("+++", "---"))]
bad = [l for l in changed if not l[1:].lstrip().startswith(("proxy_protocol", "trusted_proxies"))]
if bad:
    sys.exit("aws-nlb-proxy-protocol/configmap-hookgate.patch.yaml drifted from the base:\n" + "\n".join(bad))
EOF
ok "the overlay's proxy.toml differs from the base only in proxy_protocol/trusted_proxies"

# --------------------------------------------------------------------------------------------
step "3/4 systemd unit"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "info installing Debian's systemd for systemd-analyze"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
# verify needs ExecStart to exist: check a copy (same name, so the credential paths match)
# that starts the binary under test instead of /usr/local/bin/hookgate.
mkdir -p "$tmp/unit"
sed "s|^ExecStart=/usr/local/bin/hookgate |ExecStart=$HOOKGATE_BIN |" deploy/systemd/hookgate.service \
    >"$tmp/unit/hookgate.service"
grep -q "^ExecStart=$HOOKGATE_BIN run --config /etc/hookgate/proxy.toml$" "$tmp/unit/hookgate.service" ||
    die "ExecStart in deploy/systemd/hookgate.service is not /usr/local/bin/hookgate run --config ..."
# verify exits 0 on unknown keys and bad values and only prints them: any output fails.
verify_out=$(cd "$tmp/unit" && systemd-analyze verify hookgate.service 2>&1) ||
    die "systemd-analyze verify failed: $verify_out"
[[ -z "$verify_out" ]] || die "systemd-analyze verify complained: $verify_out"
ok "systemd-analyze verify deploy/systemd/hookgate.service ($(systemd-analyze --version | head -n 1))"
# Exposure score (0 = locked down, 10 = none); threshold is in tenths.
security_out=$(cd "$tmp/unit" && systemd-analyze security --offline=true --threshold=20 --no-pager hookgate.service 2>&1) ||
    die "systemd-analyze security: exposure above 2.0: $(printf '%s\n' "$security_out" | grep -E '✗|Overall')"
ok "systemd-analyze security: $(printf '%s\n' "$security_out" | sed -n 's/^→ //p')"

# --------------------------------------------------------------------------------------------
if [[ "${HOOKGATE_MUSL:-0}" == 1 ]]; then
    step "4/4 static musl binary, built as deploy/Dockerfile builds it"
    start=$SECONDS
    musl_bin=$(deploy/build-static.sh | tail -n 1)
    echo "info built $musl_bin in $((SECONDS - start)) s"
    file_out=$(file -b "$musl_bin")
    echo "     | $file_out"
    [[ "$file_out" == *"statically linked"* || "$file_out" == *"static-pie linked"* ]] ||
        die "$musl_bin is not statically linked"
    ldd_out=$(ldd "$musl_bin" 2>&1 || true)
    [[ "$ldd_out" == *"not a dynamic executable"* || "$ldd_out" == *"statically linked"* ]] ||
        die "ldd finds dynamic dependencies in $musl_bin: $ldd_out"
    ok "the musl binary is static ($(du -h "$musl_bin" | cut -f1))"
    check_configs "$musl_bin"
else
    step "4/4 static musl binary: skipped (HOOKGATE_MUSL=1 builds it, a few minutes)"
fi

printf '\ndeploy: %d passed, 0 failed\n' "$passed"
