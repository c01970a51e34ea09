#!/usr/bin/env bash
# Instructions per request through smartproxy, counted by callgrind: a repeatable figure for
# smartproxy's own CPU work that machine noise does not move (the proxy_overhead bench's CPU
# times do move). Each side runs under `valgrind --tool=callgrind` in front of the
# proxy_overhead bench's mock upstream; WARMUP requests, then the counters are zeroed
# (`callgrind_control -z`), REQUESTS non-streaming chat completions (the bench's body) over
# CONNECTIONS keep-alive connections, then a dump: instructions / REQUESTS.
#
# Sides: `hop` (the bench's bare hyper hop: the floor), `run` (`smartproxy run -- sh`), `daemon`
# (`smartproxy daemon` with a client key, as editors use it). Own work = side − hop.
#
# Run from the repository root:
#   benches/instructions.sh                  # release profile (fat LTO; the figures to quote)
#   PROFILE=profiling benches/instructions.sh  # thin LTO, quicker to build while iterating
# Knobs (environment): REQUESTS=5000 WARMUP=300 CONNECTIONS=8 SIDES="hop run daemon"
# OUT=<dir> (kept; default a temp dir that is removed), SMARTPROXY_BIN=<an older build> to
# measure it instead of this tree's. Per side it prints Ir/request and leaves
# OUT/<side>.out; `callgrind_annotate --inclusive=yes OUT/run.out | head -60` shows
# where the instructions go. Needs valgrind; nothing leaves 127.0.0.1.
set -euo pipefail

PROFILE=${PROFILE:-release}
REQUESTS=${REQUESTS:-5000}
WARMUP=${WARMUP:-300}
CONNECTIONS=${CONNECTIONS:-8}
SIDES=${SIDES:-hop run daemon}
UPSTREAM_KEY=sk-bench-upstream-0123456789abcdef
CLIENT_KEY=sk-bench-client-0123456789abcdef

cd "$(dirname "$0")/.."
cargo build --quiet --profile "$PROFILE" --bin smartproxy --example instructions_rig
target=${CARGO_TARGET_DIR:-target}
dir=$target/$PROFILE
[ "$PROFILE" = dev ] && dir=$target/debug
BIN=$(realpath "${SMARTPROXY_BIN:-$dir/smartproxy}")
RIG=$(realpath "$dir/examples/instructions_rig")

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    WORK=$(realpath "$OUT")
else
    WORK=$(mktemp -d -t smartproxy-instr-XXXXXX)
fi
pids=()
fifos=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -z "${OUT:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
# No proxy variables: everything stays on loopback.
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY no_proxy NO_PROXY
export HOME=$WORK/home SMARTPROXY_LOG_LEVEL=error BENCH_UPSTREAM_KEY=$UPSTREAM_KEY
mkdir -p "$HOME"

# wait_for FILE: until it holds a whole line (60 s at most).
wait_for() {
    for _ in $(seq 600); do
        if [ -s "$1" ] && [ "$(tail -c1 "$1" | od -An -c | tr -d ' ')" = '\n' ]; then return 0; fi
        sleep 0.1
    done
    echo "instructions.sh: nothing in $1 after 60 s" >&2
    return 1
}

# The mock upstream (not counted), held open through a fifo on its stdin.
mkfifo "$WORK/upstream.in"
"$RIG" upstream <"$WORK/upstream.in" >"$WORK/upstream.addr" &
pids+=($!)
exec 3>"$WORK/upstream.in"
wait_for "$WORK/upstream.addr"
UPSTREAM=$(cat "$WORK/upstream.addr")
cat >"$WORK/config.yaml" <<EOF
providers:
  - name: bench
    kind: openai
    base_url: http://$UPSTREAM/v1
    api_key_env: BENCH_UPSTREAM_KEY
    models: [gpt-4o-mini]
EOF

# Valgrind hides SHA-NI from the program, so SHA-256 runs its portable code here: its share
# (sha2::sha256::soft) is several times what it costs natively.
CG=(valgrind --tool=callgrind --quiet)

# measure SIDE PID ADDR KEY: warm up, zero, load, dump; prints Ir per request.
measure() {
    local side=$1 pid=$2 addr=$3 key=$4
    "$RIG" load "$addr" "$key" "$WARMUP" "$CONNECTIONS"
    callgrind_control -z "$pid" >/dev/null 2>&1
    "$RIG" load "$addr" "$key" "$REQUESTS" "$CONNECTIONS"
    callgrind_control --dump="$side" "$pid" >/dev/null 2>&1
    # The first dump of an out-file named F is F.1 (F itself is written at exit).
    local dump=$WORK/$side.callgrind.1 ir
    for _ in $(seq 600); do [ -s "$dump" ] && break; sleep 0.1; done
    ir=$(grep -m1 -E '^(totals|summary):' "$dump" | awk '{print $2}')
    mv "$dump" "$WORK/$side.out"
    printf '%-7s %10.0f Ir/request  (%d requests, %d connections)\n' \
        "$side" "$(echo "$ir / $REQUESTS" | bc -l)" "$REQUESTS" "$CONNECTIONS"
}

for side in $SIDES; do
    out=$WORK/$side.callgrind
    case $side in
    hop)
        mkfifo "$WORK/hop.in"
        "${CG[@]}" --callgrind-out-file="$out" "$RIG" hop "$UPSTREAM" \
            <"$WORK/hop.in" >"$WORK/hop.addr" &
        pid=$!
        pids+=("$pid")
        exec 4>"$WORK/hop.in"
        wait_for "$WORK/hop.addr"
        measure hop "$pid" "$(cat "$WORK/hop.addr")" "$UPSTREAM_KEY"
        exec 4>&-
        ;;
    run)
        mkdir -p "$WORK/run"
        SMARTPROXY_DB=$WORK/run/ledger.db "${CG[@]}" --callgrind-out-file="$out" \
            "$BIN" run --summary none --config "$WORK/config.yaml" -- \
            sh -c 'echo "$SMARTPROXY_URL $OPENAI_API_KEY" > "$1"; exec sleep 3600' sh \
            "$WORK/run/info" </dev/null >/dev/null &
        pid=$!
        pids+=("$pid")
        wait_for "$WORK/run/info"
        read -r url key <"$WORK/run/info"
        addr=${url#http://}
        measure run "$pid" "${addr%/}" "$key"
        kill -TERM "$pid"
        ;;
    daemon)
        mkdir -p "$WORK/daemon/run"
        SMARTPROXY_DB=$WORK/daemon/ledger.db SMARTPROXY_RUNTIME_DIR=$WORK/daemon/run \
            SMARTPROXY_API_KEY=$CLIENT_KEY "${CG[@]}" --callgrind-out-file="$out" \
            "$BIN" daemon --config "$WORK/config.yaml" --listen 127.0.0.1:0 \
            --admin-listen 127.0.0.1:0 </dev/null >/dev/null &
        pid=$!
        pids+=("$pid")
        for _ in $(seq 600); do
            [ -s "$WORK/daemon/run/smartproxy.pid" ] && break
            sleep 0.1
        done
        addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"])' \
            "$WORK/daemon/run/smartproxy.pid")
        measure daemon "$pid" "$addr" "$CLIENT_KEY"
        kill -TERM "$pid"
        ;;
    *)
        echo "instructions.sh: unknown side $side (hop, run, daemon)" >&2
        exit 2
        ;;
    esac
    wait "$pid" 2>/dev/null || true
done
echo "dumps: $WORK/<side>.out (callgrind_annotate --inclusive=yes)"
