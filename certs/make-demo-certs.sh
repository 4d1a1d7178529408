#!/usr/bin/env bash
# Makes the DEMO-ONLY certificates in this folder (committed so `hookgate demo` works at once).
# Their private keys are public: never trust them anywhere. For real certificates see README.md.
#
#   certs/make-demo-certs.sh [OUT_DIR]      (default: the folder of this script)
set -euo pipefail
out=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$out"
cd "$out"
days=3650
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A CA for the server certificate (the sender verifies hookgate's server certificate with it).
ec demo-ca.key
openssl req -x509 -new -key demo-ca.key -sha256 -days "$days" -subj "/CN=hookgate demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out demo-ca.pem

# The server certificate for localhost / 127.0.0.1 / ::1, chain file = leaf + CA.
ec demo-server.key
openssl req -new -key demo-server.key -subj "/CN=localhost" -out demo-server.csr
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" > demo-server.ext
openssl x509 -req -in demo-server.csr -CA demo-ca.pem -CAkey demo-ca.key -CAcreateserial \
  -days "$days" -sha256 -extfile demo-server.ext -out demo-server.leaf.pem 2>/dev/null
cat demo-server.leaf.pem demo-ca.pem > demo-server.pem
rm -f demo-server.csr demo-server.ext demo-server.leaf.pem demo-ca.srl

# The sender's client certificate: self-signed, trusted by its thumbprint (like Copyleaks').
ec demo-client.key
openssl req -x509 -new -key demo-client.key -sha256 -days "$days" -subj "/CN=demo webhook sender" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=clientAuth" -out demo-client.pem

# Another self-signed client certificate that is NOT pinned, to see a refusal.
ec demo-other-client.key
openssl req -x509 -new -key demo-other-client.key -sha256 -days "$days" -subj "/CN=not the sender" \
  -addext "extendedKeyUsage=clientAuth" -out demo-other-client.pem

echo "demo-client.pem sha256: $(openssl x509 -in demo-client.pem -outform DER | sha256sum | cut -d' ' -f1)"
