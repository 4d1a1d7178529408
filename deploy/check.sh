#!/usr/bin/env bash
# CI checks for everything under deploy/ (issue 6). Run from the repository root by .ci/run:
#
#   HOOKGATE_BIN=target/release/hookgate bash deploy/check.sh
#   HOOKGATE_MUSL=1 HOOKGATE_BIN=... bash deploy/check.sh   # also builds the image's static binary
#
# 1. every Kubernetes object (files and kustomize renders of the base and the three overlays)
#    against pinned Kubernetes schemas, plus what durable delivery needs of each store overlay;
# 2. `hookgate check` on the ConfigMap's proxy.toml, the three overlays' and the systemd example,
#    with the example Secrets' values, a throwaway openssl certificate and no network but a
#    throwaway PostgreSQL server (the store-postgres overlay's database); `hookgate thumbprint`
#    against openssl's fingerprints;
# 3. `systemd-analyze verify` on the unit and its socket unit, `security` on the unit;
# 4. (HOOKGATE_MUSL=1) the static musl build exactly as deploy/Dockerfile does it, checked to be
#    static and run through the same checks as 2.
# Installs if missing: kubernetes-validate (PyPI, pinned), systemd (Debian, for systemd-analyze),
# postgresql (Debian, for initdb/pg_ctl; .ci/run installs it for the tests already), and with
# HOOKGATE_MUSL=1 the rustup musl target and musl-tools. Fails on the first error.
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
pg_dir=        # the throwaway PostgreSQL server's directory (step 2)
pg_started=
netns_pid=     # the process holding the network namespace `hookgate check` runs in (step 2)
cleanup() {
    if [[ -n "$pg_started" ]]; then
        "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$netns_pid" ]]; then kill "$netns_pid" 2>/dev/null || true; fi
    rm -rf "$tmp" ${pg_dir:+"$pg_dir"}
}
trap cleanup EXIT

# --------------------------------------------------------------------------------------------
step "1/4 Kubernetes manifests (kubernetes-validate $KUBERNETES_VALIDATE_VERSION, Kubernetes ${K8S_VERSIONS[*]})"
if ! python3 -c "import kubernetes_validate.version as v, sys; sys.exit(v.__version__ != '$KUBERNETES_VALIDATE_VERSION')" 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" ||
      python3 -m pip install -q --disable-pip-version-check --break-system-packages \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
rendered=()
KUBECTL=${KUBECTL:-kubectl}
OVERLAYS=(aws-nlb-proxy-protocol store-single-replica store-postgres)
if command -v "$KUBECTL" >/dev/null 2>&1; then
    "$KUBECTL" kustomize deploy/kubernetes >"$tmp/base.yaml"
    rendered=(--rendered "base=$tmp/base.yaml")
    for o in "${OVERLAYS[@]}"; do
        "$KUBECTL" kustomize "deploy/kubernetes/$o" >"$tmp/render-$o.yaml"
        rendered+=(--rendered "$o=$tmp/render-$o.yaml")
    done
    ok "kubectl kustomize renders deploy/kubernetes and deploy/kubernetes/{${OVERLAYS[*]}}"
else
    # Without kustomize the base is still plain files; the overlays' patches cannot be applied.
    echo "skip kustomize rendering of ${OVERLAYS[*]}: kubectl not found (their patched proxy.toml files are still checked below)"
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

# `check` must not reach the sender's real endpoints from CI: run it in a network namespace of
# its own (root can make one) with only loopback up, where the one listener is the throwaway
# PostgreSQL server below; else point the list URLs at a closed loopback port.
if unshare -n true 2>/dev/null; then
    mkfifo "$tmp/netns-ready"
    # Holds the namespace: brings lo up (SIOCGIFFLAGS/SIOCSIFFLAGS; no iproute2 needed), says so,
    # and sleeps until cleanup kills it. nsenter runs each command in it.
    unshare -n python3 -c '
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
open(sys.argv[1], "w").write("up\n")
os.execvp("sleep", ["sleep", "infinity"])' "$tmp/netns-ready" &
    netns_pid=$!
    read -r _ <"$tmp/netns-ready" || die "could not set up the network namespace for hookgate check"
    offline=(nsenter "--net=/proc/$netns_pid/ns/net")
    "${offline[@]}" true || die "nsenter cannot enter the network namespace of pid $netns_pid"
    echo "info hookgate check runs in a network namespace of its own, loopback only (unshare -n, nsenter)"
else
    offline=()
    echo "info unshare -n is not available: list URLs are pointed at https://127.0.0.1:9 for check"
fi

# A throwaway PostgreSQL server for the store-postgres overlay: `hookgate check` on a config
# with store.url connects to the database and asks `SELECT 1`, so that overlay's proxy.toml is
# checked against a real server, in the same network namespace, with the example Secret's user,
# database and sslmode (TLS: a throwaway CA given as sslrootcert; SCRAM password
# authentication) and only its host, port and password pointed at this server. postgres refuses
# to run as root: as root it runs as the system user hookgate-pg (as tests/it/support/postgres.rs
# does), in a directory outside $tmp (root's, 0700).
pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[[ -x "$pg_bin/initdb" ]] || pg_bin=$(pg_config --bindir 2>/dev/null || true)
if [[ ! -x "$pg_bin/initdb" ]]; then
    echo "info installing Debian's postgresql for the store-postgres overlay's check"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -x "$pg_bin/initdb" ]] || die "postgresql is installed but initdb is not in /usr/lib/postgresql/*/bin"
fi
as_pg=()
if [[ $(id -u) == 0 ]]; then
    id -u hookgate-pg >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin hookgate-pg
    as_pg=(runuser -u hookgate-pg --)
fi
pg_dir=$(mktemp -d)
[[ ${#as_pg[@]} -eq 0 ]] || chown hookgate-pg: "$pg_dir"
# The example URL's parts: user, database, sslmode, and what hookgate names it by in errors.
eval "$(python3 - <<'EOF'
import shlex, urllib.parse, yaml
secret = yaml.safe_load(open("deploy/kubernetes/store-postgres/secret-store.example.yaml"))
url = secret["stringData"]["HOOKGATE_STORE_URL"]
u = urllib.parse.urlsplit(url)
mode = urllib.parse.parse_qs(u.query).get("sslmode", ["verify-full"])[0]
for k, v in {"pg_example_url": url, "pg_user": u.username, "pg_db": u.path.lstrip("/"),
             "pg_example_password": urllib.parse.unquote(u.password or ""), "pg_sslmode": mode,
             "pg_example_target": f"postgres://{u.hostname}:{u.port or 5432}{u.path} (sslmode={mode})"}.items():
    print(f"{k}={shlex.quote(v)}")
EOF
)"
pg_password=$(openssl rand -hex 16)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=hookgate check database CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tmp/pg-ca.key" -out "$tmp/pg-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$pg_dir/server.key" -out "$tmp/pg-server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/pg-server.ext"
openssl x509 -req -in "$tmp/pg-server.csr" -CA "$tmp/pg-ca.pem" -CAkey "$tmp/pg-ca.key" \
    -CAcreateserial -days 2 -extfile "$tmp/pg-server.ext" -out "$pg_dir/server.crt" 2>/dev/null
printf '%s' "$pg_password" >"$pg_dir/pw"
chmod 0600 "$pg_dir/server.key" "$pg_dir/pw"
[[ ${#as_pg[@]} -eq 0 ]] || chown hookgate-pg: "$pg_dir/server.key" "$pg_dir/server.crt" "$pg_dir/pw"
pg() { (cd "$pg_dir" && "$@" >>"$pg_dir/commands.log" 2>&1) || {
    sed 's/^/     | /' "$pg_dir/commands.log" "$pg_dir/log" 2>/dev/null; die "PostgreSQL: $* failed"; }; }
pg "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U "$pg_user" --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$pg_dir/pw" --no-sync --encoding=UTF8 --no-instructions
pg_port=$("${offline[@]}" python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg_started=1
pg "${offline[@]}" "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -t 30 \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=localhost -c max_connections=20 -c fsync=off -c ssl=on -c ssl_cert_file=$pg_dir/server.crt -c ssl_key_file=$pg_dir/server.key" start
[[ "$pg_db" == postgres ]] || pg "${as_pg[@]}" "$pg_bin/createdb" -h "$pg_dir" -p "$pg_port" -U "$pg_user" "$pg_db"
pg_url="postgres://$pg_user:$pg_password@localhost:$pg_port/$pg_db?sslmode=$pg_sslmode&sslrootcert=$tmp/pg-ca.pem"
echo "info $("$pg_bin/postgres" --version) on localhost:$pg_port (ssl = on, user $pg_user, database $pg_db) for the store-postgres overlay"

run_check() { # BIN LABEL CONFIG [VAR=VALUE...]: the environment of this check only
    local bin=$1 label=$2 config=$3 out
    [[ ${#offline[@]} -gt 0 ]] || sed -i 's|"https://api.copyleaks.com/|"https://127.0.0.1:9/|' "$config"
    if ! out=$(env "${@:4}" "${offline[@]}" "$bin" check --config "$config" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/     | /'
        die "hookgate check rejected $label"
    fi
    printf '%s\n' "$out" | sed 's/^/     | /'
    ok "hookgate check accepts $label"
}

# The example Secret's URL itself cannot connect (postgres.example), but check must get as far as
# connecting: the URL parses, its sslmode is accepted and the system roots load (hookgate names
# the database by its loggable form only after that). And the password is never printed.
run_check_example_url() { # BIN CONFIG
    local bin=$1 config=$2 out
    [[ ${#offline[@]} -gt 0 ]] || sed -i 's|"https://api.copyleaks.com/|"https://127.0.0.1:9/|' "$config"
    if out=$(env HOOKGATE_STORE_URL="$pg_example_url" "${offline[@]}" "$bin" check --config "$config" 2>&1); then
        die "hookgate check reached $pg_example_target: it must be unreachable from here"
    fi
    printf '%s\n' "$out" | sed 's/^/     | /'
    [[ "$out" == *"$pg_example_target"* ]] ||
        die "hookgate check rejected the URL of store-postgres/secret-store.example.yaml before connecting"
    [[ -z "$pg_example_password" || "$out" != *"$pg_example_password"* ]] ||
        die "hookgate check printed the database password"
    ok "hookgate check takes store-postgres/secret-store.example.yaml's URL as far as connecting (unreachable from here, as expected)"
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
    # store.path /var/lib/hookgate/store (the PersistentVolumeClaim) becomes $tmp/N-single/state/store.
    run_check "$bin" "the store-single-replica overlay's proxy.toml (store.path in a temporary directory)" \
        "$(stage_config deploy/kubernetes/store-single-replica/configmap-hookgate.patch.yaml "$tmp/$n-single")"
    [[ -d "$tmp/$n-single/state/store" ]] || die "hookgate check did not create the store directory"
    local pg_config
    pg_config=$(stage_config deploy/kubernetes/store-postgres/configmap-hookgate.patch.yaml "$tmp/$n-pg")
    run_check_example_url "$bin" "$pg_config"
    run_check "$bin" "the store-postgres overlay's proxy.toml (store.url: the throwaway PostgreSQL, sslmode=$pg_sslmode)" \
        "$pg_config" HOOKGATE_STORE_URL="$pg_url"
    run_check "$bin" "deploy/systemd/proxy.toml" \
        "$(stage_config deploy/systemd/proxy.toml "$tmp/$n-systemd")"
    run_thumbprint "$bin"
}
stage=0
check_configs "$HOOKGATE_BIN"

# Each overlay carries a full copy of proxy.toml (a patch replaces the whole key): it must not
# drift from the base anywhere but in the lines it is there for.
python3 - <<'EOF'
import difflib, sys, tomllib, yaml
def conf(p): return yaml.safe_load(open(f"deploy/kubernetes/{p}"))["data"]["proxy.toml"]
def changed(a, b):
    return [l for l in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
            if l[:1] in "+-" and not l.startswith(("+++", "---"))]
base = conf("base/configmap-hookgate.yaml")
nlb = conf("aws-nlb-proxy-protocol/configmap-hookgate.patch.yaml")
bad = [l for l in changed(base, nlb)
       if not l[1:].lstrip().startswith(("proxy_protocol", "trusted_proxies"))]
if bad:
    sys.exit("aws-nlb-proxy-protocol/configmap-hookgate.patch.yaml drifted from the base:\n" + "\n".join(bad))
# The store overlays only add: every base line is kept, and what they add is [store] and the
# routes' delivery (and dedup) keys, every route storing.
for overlay, backend in [("store-single-replica", "path"), ("store-postgres", "url")]:
    text = conf(f"{overlay}/configmap-hookgate.patch.yaml")
    removed = [l for l in changed(base, text) if l.startswith("-")]
    if removed:
        sys.exit(f"{overlay}/configmap-hookgate.patch.yaml drifted from the base (lines removed or changed):\n"
                 + "\n".join(removed))
    want, got = tomllib.loads(base), tomllib.loads(text)
    store = got.pop("store", {})
    if backend not in store:
        sys.exit(f"{overlay}: [store] has no {backend}")
    for r in got.get("routes", []):
        if r.pop("delivery", None) != "store":
            sys.exit(f"{overlay}: route {r['name']} does not have delivery = \"store\"")
        r.pop("dedup", None), r.pop("dedup_window", None)
    if got != want:
        sys.exit(f"{overlay}/configmap-hookgate.patch.yaml drifted from the base beyond [store] and delivery")
# The Secret the store-postgres Deployment reads is the example's.
dep = yaml.safe_load(open("deploy/kubernetes/store-postgres/deployment.patch.yaml"))
(gate,) = dep["spec"]["template"]["spec"]["initContainers"]
(env,) = [e for e in gate["env"] if e["name"] == "HOOKGATE_STORE_URL"]
ref = env["valueFrom"]["secretKeyRef"]
secret = yaml.safe_load(open("deploy/kubernetes/store-postgres/secret-store.example.yaml"))
if ref["name"] != secret["metadata"]["name"] or ref["key"] not in secret["stringData"]:
    sys.exit(f"store-postgres: the Deployment reads {ref}, which secret-store.example.yaml does not define")
EOF
ok "the overlays' proxy.toml copies differ from the base only in proxy_protocol/trusted_proxies (aws-nlb-proxy-protocol) and [store] + delivery (store-single-replica, store-postgres)"

# --------------------------------------------------------------------------------------------
step "3/4 systemd units"
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
cp deploy/systemd/hookgate.socket "$tmp/unit/hookgate.socket"
# verify exits 0 on unknown keys and bad values and only prints them: any output fails. The
# socket unit is verified with the service it activates (Service=hookgate.service).
for unit in hookgate.service hookgate.socket; do
    verify_out=$(cd "$tmp/unit" && systemd-analyze verify "$unit" 2>&1) ||
        die "systemd-analyze verify $unit failed: $verify_out"
    [[ -z "$verify_out" ]] || die "systemd-analyze verify $unit complained: $verify_out"
    ok "systemd-analyze verify deploy/systemd/$unit ($(systemd-analyze --version | head -n 1))"
done
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
