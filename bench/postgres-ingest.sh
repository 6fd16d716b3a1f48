#!/usr/bin/env bash
# Bulk ingest on the PostgreSQL engine, in one run (docs/postgres.md):
#
#   1. Cairn through one node:  `cairn serve --store postgres://…`, the
#      bench load generator posting batches over HTTP for $DURATION;
#   2. a plain COPY of the very rows Cairn stored in run 1 into a table with
#      the same columns and indexes (the baseline a team would otherwise
#      use; no tree, no signatures, no HTTP, no JSON);
#   3. Cairn through two nodes on one schema, both writing into one context;
#   4. the same with each node writing into a context of its own.
#
# Usage: bench/postgres-ingest.sh [duration] [clients per node] [batch]
# Env:   CAIRN_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable),
#        CAIRN_BENCH_PORT_A, CAIRN_BENCH_PORT_B (28191, 28192)
# Each run gets a schema of its own, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30s}
CLIENTS=${2:-8}
BATCH=${3:-1000}
DSN=${CAIRN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PA=${CAIRN_BENCH_PORT_A:-28191}
PB=${CAIRN_BENCH_PORT_B:-28192}
TOKEN=cairn_bench-token-0123456789abcdef0123
work=$(mktemp -d)
pids=()
schemas=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for s in "${schemas[@]}"; do psql "$DSN" -qXc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/cairn" ./cmd/cairn
go build -o "$work/bench" ./bench
"$work/cairn" keys add-signing --out "$work/signing.key" >/dev/null

# node <schema> <port>: start a node in the background, wait until it listens.
node() {
	CAIRN_BOOTSTRAP_TOKEN=$TOKEN "$work/cairn" serve --addr "127.0.0.1:$2" --data-dir "$work/data-$2" \
		--store "$DSN" --store-schema "$1" --signing-key-file "$work/signing.key" --log-level warn \
		2>>"$work/node-$2.log" &
	pids+=($!)
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
	echo "node on $2 did not start:" >&2; cat "$work/node-$2.log" >&2; exit 1
}
stop_nodes() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}
context() { # port name
	curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		"http://127.0.0.1:$1/api/v1/orgs/default/contexts" -d "{\"name\":\"$2\"}" >/dev/null
}
ingest() { # port context clients seed → JSON summary on stdout
	"$work/bench" ingest --server "http://127.0.0.1:$1" --token "$TOKEN" --context "$2" --clients "$3" \
		--batch "$BATCH" --duration "$DURATION" --seed "$4" --progress 0 --json 2>/dev/null
}
rate() { python3 -c 'import json,sys; print(round(sum(json.load(open(f))["ingest"]["events_per_sec"] for f in sys.argv[1:])))' "$@"; }
count() { psql "$DSN" -AtXc "SELECT count(*) FROM $1.events"; }

s1=cairn_bench_one_$$; s2=cairn_bench_two_$$; s3=cairn_bench_split_$$; sb=cairn_bench_copy_$$
schemas+=("$s1" "$s2" "$s3" "$sb")

echo "== 1. Cairn, one node, $CLIENTS clients × batch $BATCH, $DURATION"
node "$s1" $PA
context $PA bench
ingest $PA bench "$CLIENTS" 1 >"$work/one.json"
stop_nodes
rows=$(count "$s1")
echo "   $(rate "$work/one.json") events/s ($rows rows stored)"

echo "== 2. COPY of the same $rows rows into a table with the same indexes"
echo "   indexes: $(psql "$DSN" -AtXc "SELECT count(*) FROM pg_indexes WHERE schemaname = '$s1' AND tablename = 'events'") on events"
psql "$DSN" -qX -v ON_ERROR_STOP=1 <<SQL
\copy (SELECT * FROM $s1.events) TO '$work/rows.bin' WITH (FORMAT binary)
CREATE SCHEMA $sb;
-- The same columns and every index of Cairn's events table (not its
-- partitions, triggers or time marks).
CREATE TABLE $sb.events (LIKE $s1.events INCLUDING DEFAULTS INCLUDING INDEXES);
CHECKPOINT;
SQL
start=$(date +%s.%N)
psql "$DSN" -qX -v ON_ERROR_STOP=1 -c "\\copy $sb.events FROM '$work/rows.bin' WITH (FORMAT binary)"
end=$(date +%s.%N)
echo "   baseline indexes: $(psql "$DSN" -AtXc "SELECT count(*) FROM pg_indexes WHERE schemaname = '$sb'")"
copy_rate=$(python3 -c "print(round($rows/($end-$start)))")
echo "   $copy_rate rows/s ($(python3 -c "print(round($end-$start,2))") s, one COPY, one transaction)"
psql "$DSN" -qXc "DROP SCHEMA $s1 CASCADE; DROP SCHEMA $sb CASCADE" >/dev/null

half=$(( (CLIENTS + 1) / 2 ))
echo "== 3. Cairn, two nodes, one context, $half clients each"
node "$s2" $PA
node "$s2" $PB
context $PA bench
ingest $PA bench "$half" 1 >"$work/two-a.json" &
other=$!
ingest $PB bench "$half" 2 >"$work/two-b.json"
wait "$other"
stop_nodes
echo "   $(rate "$work/two-a.json" "$work/two-b.json") events/s ($(count "$s2") rows stored)"
psql "$DSN" -qXc "DROP SCHEMA $s2 CASCADE" >/dev/null

echo "== 4. Cairn, two nodes, a context each, $half clients each"
node "$s3" $PA
node "$s3" $PB
context $PA a
context $PB b
ingest $PA a "$half" 1 >"$work/split-a.json" &
other=$!
ingest $PB b "$half" 2 >"$work/split-b.json"
wait "$other"
stop_nodes
echo "   $(rate "$work/split-a.json" "$work/split-b.json") events/s ($(count "$s3") rows stored)"

echo "== summary (events/s): one node $(rate "$work/one.json"); COPY $copy_rate;" \
	"two nodes one context $(rate "$work/two-a.json" "$work/two-b.json");" \
	"two nodes two contexts $(rate "$work/split-a.json" "$work/split-b.json")"
