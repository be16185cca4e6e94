#!/usr/bin/env bash
# Run each cargo-fuzz target for a bounded time and summarize.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, all targets)
#
# Seeds come from the repository's corpora (corpora/examples, corpora/hostile,
# corpora/policies, fuzz/seeds, fuzz/regressions) and, when present, ../shared/corpora/real. They
# are copied into fuzz/corpus/<target>/ at run time (git-ignored), so shared
# data is never committed. Crashes land in fuzz/artifacts/<target>/; logs in
# fuzz/logs/. Exit status 1 when any target found a crash.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain; with
# only a stable toolchain it falls back to RUSTC_BOOTSTRAP=1. The targets are
# safe Rust, so they are built without a sanitizer (`-s none`, faster) but with
# debug assertions and overflow checks (`-a`). Not run by CI.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="$(cd "$root/.." && pwd)/shared/corpora/real"
cd "$here"

secs="${1:-60}"
shift || true
all_targets=(falco_line policy_toml http_body http_server)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo_fuzz=(cargo +nightly fuzz)
else
    echo "run.sh: no nightly toolchain; using RUSTC_BOOTSTRAP=1 with the default one" >&2
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
fi
build_flags=(-a -s none)

# One seed file per chunk of up to 4 lines (falco_line feeds one bridge with
# up to 32 lines), prefixed with one selector byte.
seed_lines() {
    local target="$1" prefix="$2" file="$3" name
    name="$(basename "$file" .jsonl)"
    [ -s "$file" ] || return 0
    # Skip anything large (generated hostile files): seeds stay small.
    [ "$(stat -c %s "$file")" -le 1048576 ] || return 0
    local tmp="$here/seeds.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    split -l 4 -d -a 4 "$file" "$tmp/$name-"
    local i=0 chunk
    for chunk in "$tmp"/*; do
        # Cycle the selector byte so every domain and mapping mode gets seeds.
        printf "\\x$(printf %02x $(( (prefix + i) % 32 )))" | cat - "$chunk" \
            >"corpus/$target/seed-$(basename "$chunk")"
        i=$((i + 1))
    done
    rm -rf "$tmp"
}

seed() {
    local target="$1" f
    mkdir -p "corpus/$target"
    # Inputs that once crashed a target stay in its corpus.
    for f in "$here/regressions/$target"/*; do
        [ -f "$f" ] && cp "$f" "corpus/$target/regression-$(basename "$f")"
    done
    case "$target" in
        falco_line | http_body)
            local sources=("$root"/corpora/examples/*.jsonl "$root"/corpora/hostile/*.jsonl)
            if [ -d "$shared" ]; then
                while IFS= read -r -d '' f; do sources+=("$f"); done \
                    < <(find "$shared" -name '*.jsonl' -print0)
            else
                echo "run.sh: $shared not present; seeding from corpora/ only" >&2
            fi
            local n=0
            for f in "${sources[@]}"; do
                [ -f "$f" ] || continue
                seed_lines "$target" "$n" "$f"
                n=$((n + 1))
            done
            ;;
        http_server)
            for f in "$here"/seeds/http_server/*.http; do
                [ -f "$f" ] && cp "$f" "corpus/$target/seed-$(basename "$f")"
            done
            ;;
        policy_toml)
            for f in "$root"/corpora/policies/*.toml "$here"/seeds/policy_toml/*.toml; do
                [ -f "$f" ] && cp "$f" "corpus/$target/seed-$(basename "$f")"
            done
            ;;
    esac
}

dict_for() {
    case "$1" in
        policy_toml) echo "$here/dict/policy.dict" ;;
        http_server) echo "$here/dict/http.dict" ;;
        *) echo "$here/dict/falco.dict" ;;
    esac
}

max_len_for() {
    case "$1" in
        policy_toml) echo 16384 ;;
        *) echo 65536 ;;
    esac
}

# The last number of the last match of PATTERN in FILE, or nothing.
stat_of() {
    { grep -o "$1" "$2" || true; } | tail -1 | { grep -o '[0-9]*$' || true; }
}

mkdir -p logs
"${cargo_fuzz[@]}" build "${build_flags[@]}"

status=0
summary=()
for t in "${targets[@]}"; do
    seed "$t"
    log="logs/$t.log"
    echo "== $t: ${secs}s, $(find "corpus/$t" -type f | wc -l) inputs in the corpus" >&2
    set +e
    "${cargo_fuzz[@]}" run "${build_flags[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$secs" \
        -max_len="$(max_len_for "$t")" \
        -dict="$(dict_for "$t")" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    set -e
    execs="$(stat_of 'stat::number_of_executed_units: *[0-9]*' "$log")"
    per_sec="$(stat_of 'stat::average_exec_per_sec: *[0-9]*' "$log")"
    cov="$(stat_of 'cov: [0-9]*' "$log")"
    crashes="$( (find "artifacts/$t" -type f 2>/dev/null || true) | wc -l)"
    line="$t: exit=$rc execs=${execs:-?} exec/s=${per_sec:-?} cov=${cov:-?} artifacts=$crashes corpus=$(find "corpus/$t" -type f | wc -l)"
    summary+=("$line")
    echo "$line" >&2
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        status=1
        grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" >&2 || true
    fi
done

echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit "$status"
