#!/usr/bin/env bash
# Coverage-guided fuzzing of every TransferSharp parser with AFL++ and SharpFuzz (not part of `dotnet test`).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]      default: 600 seconds, every target, one after another
#
# Installs what it needs (afl++ from Debian, the SharpFuzz.CommandLine tool), builds fuzz/TransferSharp.Fuzz,
# instruments TransferSharp.dll, writes the seed corpus from the test fixtures, then runs afl-fuzz on each target
# for a bounded time and prints executions, corpus size, coverage and findings per target. Findings land in
# fuzz/.findings/TARGET/default/{crashes,hangs}; replay one (with an uninstrumented build) with
#   dotnet run --project fuzz/TransferSharp.Fuzz -- replay TARGET FILE
# and commit the minimised input under tests/data/fuzz/TARGET/ (the suite replays every file there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-600}
shift || true
build="$here/.build"
seeds="$here/.corpus"
findings="$here/.findings"

if ! command -v afl-fuzz >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
if [ ! -x "$here/.tools/sharpfuzz" ]; then
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$here/.tools" >/dev/null
fi

# A fresh build each run: sharpfuzz instruments the library in place and refuses an instrumented one. The seeds are
# written first: instrumented code runs only under afl-fuzz (it writes to afl's shared coverage map).
rm -rf "$build"
dotnet build "$here/TransferSharp.Fuzz/TransferSharp.Fuzz.csproj" -c Release -o "$build" -v q -nologo >/dev/null
if [ ! -d "$seeds" ]; then dotnet "$build/TransferSharp.Fuzz.dll" seeds "$seeds"; fi
"$here/.tools/sharpfuzz" "$build/TransferSharp.dll" >/dev/null

mkdir -p "$findings"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(ls "$seeds"); fi

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1
# A managed allocation over 2 GB is a finding (OutOfMemoryException escapes as a crash), not a slow machine.
export DOTNET_GCHeapHardLimit=0x80000000 TRANSFERSHARP_OFFLINE=1
printf '%-16s %10s %8s %7s %8s %8s %6s\n' target seconds execs exec/s corpus coverage finds
for target in "${targets[@]}"; do
  afl-fuzz -i "$seeds/$target" -o "$findings/$target" -t 10000 -m none -V "$seconds" -- \
    dotnet "$build/TransferSharp.Fuzz.dll" "$target" >"$findings/$target.log" 2>&1 || true
  stats="$findings/$target/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then echo "$target: afl-fuzz did not start; see $findings/$target.log"; continue; fi
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  printf '%-16s %10s %8s %7s %8s %8s %6s\n' "$target" "$(get run_time)" "$(get execs_done)" "$(get execs_per_sec)" \
    "$(get corpus_count)" "$(get bitmap_cvg)" "$(( $(get saved_crashes) + $(get saved_hangs) ))"
done
