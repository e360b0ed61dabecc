#!/usr/bin/env bash
# Regenerates types/ from every library's types.d.luau (the same as `lune setup`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p lune -- setup
