#!/usr/bin/env bash
# Lune compatibility check: builds Lune 0.11.1, unmodified, from its crates.io
# source with this workspace's lune-std-net put in by one [patch.crates-io]
# entry, checks that it says it is 0.11.1, then runs every tests/net script
# with that binary through the Luau test harness (crates/lune/tests/luau.rs,
# LUNE_TEST_BIN). Scripts marked `-- ours-only:` are reported as ignored.
#
# Lune's source and its target directory are cached in $LUNE_COMPAT_CACHE
# (default ~/.cache/lune-compat), so a repeated run only rebuilds our crate
# and Lune's binary. The cache must not be inside a Cargo workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

LUNE_VERSION=0.11.1
# The crate's checksum as the crates.io index lists it.
LUNE_SHA256=6856ad6c58c35b403780d117067340d9f877b426979dee8ea5a21775bcd01c6b
FEATURES=cli,std-net,std-serde,std-task,std-process,std-stdio,std-fs,std-datetime,std-luau,std-regex

cache=${LUNE_COMPAT_CACHE:-$HOME/.cache/lune-compat}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
case "$cache/" in
"$root"/*)
	echo "lune-compat: LUNE_COMPAT_CACHE ($cache) must be outside this workspace" >&2
	exit 1
	;;
esac
src=$cache/lune-$LUNE_VERSION
target=$cache/target
started=$SECONDS

sha256() {
	if command -v sha256sum >/dev/null; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

# 1. Lune's source, as published (static.crates.io is where crates.io's
#    download endpoint, and cargo itself, fetch crate files from).
if [ ! -f "$src/Cargo.toml" ]; then
	crate=$cache/lune-$LUNE_VERSION.crate
	echo "lune-compat: downloading lune $LUNE_VERSION from crates.io"
	curl --fail --silent --show-error --location --retry 3 \
		-o "$crate" "https://static.crates.io/crates/lune/lune-$LUNE_VERSION.crate"
	actual=$(sha256 "$crate")
	if [ "$actual" != "$LUNE_SHA256" ]; then
		echo "lune-compat: checksum mismatch for $crate: $actual" >&2
		rm -f "$crate"
		exit 1
	fi
	rm -rf "$src"
	tar -xzf "$crate" -C "$cache"
	rm -f "$crate"
fi

# 2. Build it with our crate patched in. Debug, with dependencies at
#    opt-level 1 as in this workspace's own dev profile: far quicker to
#    build on two cores than a release build, and fast enough for the tests.
#    Cargo adds our crate's extra dependencies to Lune's Cargo.lock in the
#    cache, and keeps the rest of Lune's pins.
lune=(
	--manifest-path "$src/Cargo.toml"
	--no-default-features --features "$FEATURES"
	--config "patch.crates-io.lune-std-net.path='$root/crates/lune-std-net'"
)
echo "lune-compat: building lune $LUNE_VERSION with $root/crates/lune-std-net"
cargo build "${lune[@]}" --bin lune --target-dir "$target" \
	--config 'profile.dev.package."*".opt-level=1'
if ! cargo tree "${lune[@]}" --offline --invert lune-std-net --depth 0 |
	grep -qF "($root/crates/lune-std-net)"; then
	echo "lune-compat: the patch was not used - Lune built with the crates.io lune-std-net" >&2
	echo "(does crates/lune-std-net's version match what Lune's Cargo.lock pins?)" >&2
	exit 1
fi
echo "lune-compat: built in $((SECONDS - started))s"

# 3. It is Lune 0.11.1.
bin=$target/debug/lune
version=$("$bin" --version)
case "$version" in
*" $LUNE_VERSION" | *" $LUNE_VERSION "* | *" $LUNE_VERSION+"*) echo "lune-compat: $version" ;;
*)
	echo "lune-compat: expected lune $LUNE_VERSION, '$bin --version' says '$version'" >&2
	exit 1
	;;
esac

# 4. Every tests/net script, through the same harness as `cargo test`.
LUNE_TEST_BIN=$bin cargo test -p lune --test luau --locked -- net/
echo "lune-compat: done in $((SECONDS - started))s"
