#!/usr/bin/env bash
# Fails when the tests leave anything behind in /dev/shm or /tmp (and in
# $TMPDIR, when it is set elsewhere): segments, scratch directories, sockets.
#
#   scripts/leftover-check.sh snapshot FILE   before the tests: the entries now
#   scripts/leftover-check.sh compare FILE    after them: exit 1, naming each
#                                             entry that was not in FILE
#
# Names only, one level deep (a test's scratch directory is one entry). FILE
# must be outside the directories listed (e.g. under target/), or it would be
# an entry of its own.
set -euo pipefail

usage() {
    echo "usage: $0 snapshot FILE | compare FILE" >&2
    exit 2
}
[ $# -eq 2 ] || usage
mode=$1
file=$2

dirs=(/dev/shm /tmp)
if [ -n "${TMPDIR:-}" ] && [ "${TMPDIR%/}" != /tmp ]; then
    dirs+=("${TMPDIR%/}")
fi

# Entries that are not the tests' and may appear while they run. Patterns
# on the entry's name; keep this list short.
ignored=(
    # rustc's scratch directories for linking (removed when it ends; seen
    # when a build runs alongside).
    'rustc*'
)

# Every entry of the directories, as DIR/NAME, sorted.
list() {
    local dir
    for dir in "${dirs[@]}"; do
        [ -d "$dir" ] || continue
        ls -A -- "$dir" | sed "s|^|$dir/|"
    done | LC_ALL=C sort -u
}

is_ignored() {
    local name=${1##*/} pattern
    for pattern in "${ignored[@]}"; do
        # shellcheck disable=SC2053 # a glob on purpose
        [[ $name == $pattern ]] && return 0
    done
    return 1
}

abs=$(realpath -m -- "$file")
for dir in "${dirs[@]}"; do
    case "$abs/" in
        "$(realpath -m -- "$dir")"/*)
            echo "leftover-check: keep $file outside ${dirs[*]} (e.g. under target/)" >&2
            exit 2
            ;;
    esac
done

case "$mode" in
    snapshot)
        mkdir -p -- "$(dirname -- "$file")"
        list >"$file"
        echo "leftover-check: $(wc -l <"$file") entries in ${dirs[*]} before the tests"
        ;;
    compare)
        [ -f "$file" ] || { echo "leftover-check: no snapshot $file (run: $0 snapshot $file)" >&2; exit 2; }
        new=()
        while IFS= read -r entry; do
            is_ignored "$entry" || new+=("$entry")
        done < <(LC_ALL=C comm -13 "$file" <(list))
        if [ ${#new[@]} -gt 0 ]; then
            echo "leftover-check: left behind by the tests (${#new[@]}):" >&2
            for entry in "${new[@]}"; do
                echo "  $(ls -ld -- "$entry" 2>/dev/null || echo "$entry (gone since)")" >&2
            done
            exit 1
        fi
        echo "leftover-check: nothing new in ${dirs[*]}"
        ;;
    *)
        usage
        ;;
esac
