#!/usr/bin/env bash
# Builds hookgate as a static x86_64 musl binary. This is the one recipe for it: deploy/Dockerfile
# runs this script, and deploy/check.sh runs it too (HOOKGATE_MUSL=1) to test what the image
# would contain. Progress goes to stderr; the last line on stdout is the binary's path.
#
# Needs: rustup (adds the musl target's std) and a C compiler for musl, because aws-lc-sys
# (rustls' crypto) compiles C: Debian's musl-tools gives x86_64-linux-musl-gcc, the name the
# cc crate looks for, so no other environment is needed.
set -euo pipefail

target=x86_64-unknown-linux-musl
cd "$(dirname "$0")/.."

rustup target add "$target" >&2
if ! command -v x86_64-linux-musl-gcc >/dev/null 2>&1; then
    echo "build-static: installing musl-tools (Debian) for x86_64-linux-musl-gcc" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >&2
fi
# Said explicitly so that a CC set for the host build cannot leak into the musl one.
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-x86_64-linux-musl-gcc}"

cargo build --release --locked --target "$target" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$target/release/hookgate"
