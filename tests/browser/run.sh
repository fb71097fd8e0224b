#!/usr/bin/env bash
# Runs the nsqadmin browser test: installs playwright-core (pinned in package-lock.json) into a
# directory of the build tree with `npm ci`, checks that Chromium is there, then runs ui_test.mjs.
# Usage: run.sh <nsqlookupd> <nsqd> <nsqadmin> <npm-dir> <artifact-dir>
# Any failure (npm, a missing or unlaunchable browser, a check) fails the test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

export NSQLOOKUPD_BIN=$1 NSQD_BIN=$2 NSQADMIN_BIN=$3 NPM_DIR=$4 ARTIFACT_DIR=$5
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
    echo "browser test: $CHROMIUM not found (scripts/install-deps.sh installs Debian's chromium)" >&2
    exit 1
fi

mkdir -p "$NPM_DIR" "$ARTIFACT_DIR"
rm -f "$ARTIFACT_DIR"/*.png "$ARTIFACT_DIR"/*.log
# Reinstall only when the lock file changed since the last install in this build tree.
if ! cmp -s "$here/package-lock.json" "$NPM_DIR/package-lock.json" ||
        [ ! -d "$NPM_DIR/node_modules/playwright-core" ]; then
    cp "$here/package.json" "$here/package-lock.json" "$NPM_DIR/"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

exec node "$here/ui_test.mjs"
