#!/usr/bin/env bash
# update-assets.sh refreshes the vendored GraphiQL assets in assets/ from the
# npm registry: it packs the pinned versions below with `npm pack` in a
# temporary directory and copies only the files the playground page loads,
# with each package's license, into assets/<package>-<version>/.
#
# To upgrade, change a version, run this script, then
#   go test ./internal/server/...
# (the page finds the files by name, so a new version needs no Go change) and
# check the page in a browser. The directory names carry the versions, which
# is what lets the handler cache them for a year.
#
# GraphiQL 4.1 is the last release with a standalone browser bundle
# (graphiql.min.js, a UMD build that takes React and ReactDOM from globals);
# from 5.0 on GraphiQL ships ES modules for bundlers only. It supports
# React 18 and 19, but React 19 has no UMD build, so React stays on 18.
set -euo pipefail

GRAPHIQL_VERSION=4.1.2
REACT_VERSION=18.3.1
GRAPHQL_WS_VERSION=6.4.2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
assets="$here/assets"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# unpack NAME VERSION: npm pack NAME@VERSION into $tmp/NAME-VERSION/package.
unpack() {
	local dir="$tmp/$1-$2"
	mkdir -p "$dir"
	(cd "$dir" && npm pack --silent "$1@$2" >/dev/null && tar -xzf ./*.tgz)
}

# vendor NAME VERSION FILE...: copy FILEs (paths inside the package) into
# assets/NAME-VERSION/, flattened.
vendor() {
	local name=$1 version=$2
	shift 2
	local src="$tmp/$name-$version/package" dst="$assets/$name-$version"
	mkdir -p "$dst"
	for f in "$@"; do
		cp "$src/$f" "$dst/"
	done
}

unpack graphiql "$GRAPHIQL_VERSION"
unpack react "$REACT_VERSION"
unpack react-dom "$REACT_VERSION"
unpack graphql-ws "$GRAPHQL_WS_VERSION"

# Only versioned directories are ours to replace; assets/jobchat holds the
# page's own script and style.
find "$assets" -mindepth 1 -maxdepth 1 -type d -name '*-[0-9]*' -exec rm -rf {} +

vendor graphiql "$GRAPHIQL_VERSION" graphiql.min.js graphiql.min.css LICENSE
vendor react "$REACT_VERSION" umd/react.production.min.js LICENSE
vendor react-dom "$REACT_VERSION" umd/react-dom.production.min.js LICENSE
vendor graphql-ws "$GRAPHQL_WS_VERSION" umd/graphql-ws.min.js LICENSE.md

cd "$assets"
find . -path ./jobchat -prune -o -type f -print | sort | xargs sha256sum
du -sh --exclude=jobchat .
