#!/usr/bin/env bash
# A real migration on a fresh machine: starts a local sample source (a private Dovecot with a
# few hundred messages, Chinese and special-character folder names and a 5 MB attachment),
# then moves it into ./demo-maildir with examples/migrate.rs over TLS, and prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dovecot >/dev/null 2>&1 || [ ! -x /usr/lib/dovecot/imap ]; then
  echo "== installing Dovecot (the sample source server)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dovecot-imapd dovecot-pop3d >/dev/null
fi

echo "== building"
cargo build -q --release --features tokio --example sample_server --example migrate

work=$(mktemp -d)
info="$work/sample.env"
# The sample server serves until its stdin closes: keep a pipe open and close it on exit.
mkfifo "$work/stdin"
target/release/examples/sample_server --info-file "$info" <"$work/stdin" >"$work/server.log" 2>&1 &
server=$!
exec 3>"$work/stdin"
cleanup() { exec 3>&-; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 1 300); do [ -s "$info" ] && break; kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
if [ ! -s "$info" ]; then cat "$work/server.log"; echo "the sample server did not start"; exit 1; fi
# shellcheck disable=SC1090
set -a; . "$info"; set +a
echo "== sample source: $SAMPLE_MESSAGES messages for $SAMPLE_USER on $SAMPLE_HOST:$SAMPLE_IMAPS_PORT (TLS, private CA)"

rm -rf ./demo-maildir
echo "== migrating into ./demo-maildir"
target/release/examples/migrate \
  --from "imaps://$SAMPLE_USER@$SAMPLE_HOST:$SAMPLE_IMAPS_PORT" --ca-file "$SAMPLE_CA_FILE" \
  --to maildir:./demo-maildir --summary-json ./demo-summary.json "$@"
echo "== again: a second run copies nothing new"
target/release/examples/migrate \
  --from "imaps://$SAMPLE_USER@$SAMPLE_HOST:$SAMPLE_IMAPS_PORT" --ca-file "$SAMPLE_CA_FILE" \
  --to maildir:./demo-maildir --quiet "$@" | tail -n 1
echo "== done: the mail is in ./demo-maildir (Maildir++), the summary in ./demo-summary.json"
