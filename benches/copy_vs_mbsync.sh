#!/usr/bin/env bash
# Runs the end-to-end copy benchmark of issue 5 (benches/copy_vs_mbsync/main.rs) after
# checking the tools it compares, and keeps its output in target/copy_vs_mbsync.log.
#
#   benches/copy_vs_mbsync.sh                                   # 20,000 messages, ~15 min
#   MAILMIGRATE_BENCH_MESSAGES=2000 benches/copy_vs_mbsync.sh   # a quick run
#   TMPDIR=/dev/shm benches/copy_vs_mbsync.sh                   # everything on tmpfs
#
# Other knobs (see the bench's doc comment): MAILMIGRATE_BENCH_ONLY=mbsync-plain,mm-plain,...
# MAILMIGRATE_BENCH_SETTLE=0 (no pause between runs), MAILMIGRATE_BENCH_ENGINE=connections=4,...
# MAILMIGRATE_BENCH_WRAP="heaptrack -o FILE" (run each tool under a profiler; its figures are then off).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ] || missing+=("dovecot-imapd dovecot-pop3d (the private Dovecot)")
[ -x /usr/bin/mbsync ] || missing+=("isync (mbsync, the reference)")
if [ "${#missing[@]}" -gt 0 ] && [ -z "${MAILMIGRATE_BENCH_ONLY:-}" ]; then
  echo "copy_vs_mbsync needs: ${missing[*]}" >&2
  echo "install with: apt-get install isync dovecot-imapd dovecot-pop3d time" >&2
  exit 1
fi
[ -x /usr/bin/time ] || echo "note: /usr/bin/time is missing (apt-get install time); peak RSS will be sampled instead of exact" >&2

mkdir -p target
cargo bench --bench copy_vs_mbsync 2>&1 | tee target/copy_vs_mbsync.log
exit "${PIPESTATUS[0]}"
