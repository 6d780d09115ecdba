#!/usr/bin/env bash
# tests/e2e/cli.sh - the `ember` command line as a newcomer meets it: `--help` of every
# subcommand, every command line that the README's tool section and the help texts show (run
# for real, in a scratch folder), README and help naming the same commands and options, strict
# numbers, did-you-mean for options and commands, runs that never overwrite each other, the
# user config reaching `ember train`, the pictures, and the progress bar in an 80-column
# pseudo-terminal. Usage: tests/e2e/cli.sh [BUILD_DIR]; prints "cli e2e: N passed, N failed".
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
ember=$build/tools/ember
export EMBER_CONFIG=
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/e2e/check.sh"

# ---- help --------------------------------------------------------------------------------
commands=$("$ember" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && $1 != "help" {print $1}')
[ -n "$commands" ] || { echo "FAIL: ember --help lists no commands"; exit 1; }
for c in $commands; do
    check "ember $c --help" 0 "^usage: ember $c " -- "$ember" "$c" --help
    check "ember $c -h" 0 "^usage: ember $c " -- "$ember" "$c" -h
    check "ember help $c" 0 "^usage: ember $c " -- "$ember" help "$c"
    check "every line of ember $c --help fits 80 columns" 0 '^ok$' -- \
        sh -c "'$ember' $c --help | awk 'length > 80 { bad = 1 } END { print bad ? \"too wide\" : \"ok\" }'"
done
check "ember --help fits 80 columns" 0 '^ok$' -- \
    sh -c "'$ember' --help | awk 'length > 80 { bad = 1 } END { print bad ? \"too wide\" : \"ok\" }'"
# every variable the library and its plugins read is in the help
for v in $(grep -rhoE 'getenv\("EMBER_[A-Z_]+"\)' "$src/core" "$src/backends" "$src/plugins" |
           sed -E 's/getenv\("(.*)"\)/\1/' | sort -u) EMBER_BACKEND EMBER_NUM_THREADS \
           EMBER_SEED EMBER_STRICT EMBER_FALLBACK EMBER_DISABLE_PLUGINS; do
    check "ember --help names $v" 0 "^  $v( |$)" -- "$ember" --help
done

# ---- man page and bash completion, generated from the same tables ------------------------------
man=$build/tools/share/ember.1
if command -v groff >/dev/null; then
    check "the man page renders without warnings" 0 '^ok$' -- \
        sh -c "groff -man -ww -z '$man' 2>&1 | grep . || echo ok"
fi
for c in $commands; do
    check "the man page describes ember $c" 0 "^\\.SS \"ember $c " -- cat "$man"
done
check "the man page describes --epochs" 0 '^\\fB\\-e\\fR, \\fB\\-\\-epochs' -- cat "$man"
comp() { bash -c ". '$build/tools/share/ember'; COMP_WORDS=($1); COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1)); _ember; echo \"\${COMPREPLY[*]}\""; }
check "completion of a command" 0 '^train$' -- comp "ember tr"
check "completion of an option" 0 '^--epochs$' -- comp "ember train x --ep"
check "completion of --device" 0 'opencl:0' -- comp "ember train x --device o"

# ---- README and help agree ----------------------------------------------------------------
readme_tool=$(sed -n '/^## The `ember` tool/,/^## /p' "$src/README.md")
readme_cmds=$(grep -E '^ember [a-z]' <<<"$readme_tool" | awk '{print $2}' | sort -u)
for c in $commands; do
    check "the README's tool section shows ember $c" 0 "^ember $c( |$)" -- echo "$readme_tool"
done
for c in $readme_cmds; do
    check "the README's ember $c is a command" 0 "^usage: ember $c " -- "$ember" "$c" --help
    for o in $(grep -E "^ember $c " <<<"$readme_tool" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        check "the README's ember $c $o is in its help" 0 "(^|[ ,])$o([= ]|$)" -- "$ember" "$c" --help
    done
done

# ---- every command line shown, run for real --------------------------------------------------
mkdir -p "$work/cwd"
ln -s "$src/examples" "$work/cwd/examples"
{
    # the README's sh block of the tool section, then each help's examples (joined at "\")
    sed -n '/^```sh$/,/^```$/p' <<<"$readme_tool" | grep -E '^ember '
    for c in $commands; do
        "$ember" "$c" --help | sed -n '/^examples:$/,$p' | tail -n +2 | sed 's/^  //' |
            sed -e ':a' -e '/\\$/N; s/\\\n *//; ta'
    done
} | awk '!seen[$0]++' > "$work/shown.txt"
n_shown=$(wc -l < "$work/shown.txt")
check "the README and the help show command lines" 0 '^' -- test "$n_shown" -ge 10
while IFS= read -r line; do
    check "shown: $line" 0 '^' -- sh -c "cd '$work/cwd' && PATH='$build/tools':\$PATH $line"
done < "$work/shown.txt"

# ---- errors: strict numbers, did-you-mean, usage -------------------------------------------------
d=$src/examples/digits.ini
check "--epochs abc" 2 "^ember train: --epochs: 'abc' is not a positive whole number$" -- "$ember" train "$d" --epochs abc
check "--epochs 0" 2 "'0' is not a positive whole number" -- "$ember" train "$d" --epochs 0
check "--epochs -1" 2 "'-1' is not a positive whole number" -- "$ember" train "$d" --epochs -1
check "--epochs=2x" 2 "'2x' is not a positive whole number" -- "$ember" train "$d" --epochs=2x
check "--epochs 99999999999999999999" 2 "is not a whole number from 1 to 1000000" -- "$ember" train "$d" --epochs 99999999999999999999
check "--epochs without a value" 2 '^ember train: --epochs needs a value' -- "$ember" train "$d" --epochs
check "--seed -3" 2 "^ember train: --seed: '-3' is not a whole number" -- "$ember" train "$d" --seed -3
check "--batch-size 1.5" 2 "^ember train: --batch-size: '1.5'" -- "$ember" train "$d" --batch-size 1.5
check "conformance --skip-status x" 2 "^ember conformance: --skip-status: 'x'" -- "$ember" conformance --backend cpu --skip-status x
check "summary --input 3,,4" 2 "^ember summary: --input: '3,,4' is not a shape" -- "$ember" summary "Linear(3, 1)" --input 3,,4
check "a mistyped option gets a suggestion" 2 "^ember train: unknown option '--epcohs'; did you mean '--epochs'\?" -- "$ember" train "$d" --epcohs 3
check "a mistyped --opt=value too" 2 "unknown option '--chekpoint'; did you mean '--checkpoint'\?" -- "$ember" eval "$d" --chekpoint=x
check "an unknown option without a near name" 2 "^ember info: unknown option '--frobnicate'$" -- "$ember" info --frobnicate
check "an ambiguous prefix names the options it could be" 2 "^ember conformance: option '--s' is ambiguous; it could be '--seed', '--support', '--skip-status'" -- "$ember" conformance --s 1
check "an unambiguous prefix is taken (GNU style)" 0 'epoch 1/1:' -- "$ember" train "$d" --epo 1 --out "$work/prefix" --quiet --no-plot
check "a flag given a value" 2 "^ember train: --quiet takes no value" -- "$ember" train "$d" --quiet=yes
check "a mistyped command gets a suggestion" 2 "^ember: unknown command 'trian'; did you mean 'train'\?" -- "$ember" trian
check "a missing positional argument" 2 "^ember train: missing CONFIG" -- "$ember" train
check "an extra positional argument" 2 "^ember plot: unexpected argument 'b'" -- "$ember" plot a b
check "--opt=value works" 0 'epoch 1/1:' -- "$ember" train "$d" --epochs=1 --out="$work/eq" --quiet --no-plot
check "a missing config file" 2 'nosuch\.ini: No such file' -- "$ember" train "$work/nosuch.ini"
check "a missing checkpoint file" 2 'nosuch\.safetensors: No such file' -- "$ember" eval "$d" --checkpoint "$work/nosuch.safetensors"

# ---- runs are never overwritten -------------------------------------------------------------
mkdir -p "$work/runs-test"
cd "$work/runs-test" || exit 1
check "a first run goes to version_0 and says so" 0 'writing to runs/digits/version_0/' -- "$ember" train "$d" --epochs 1 --no-plot
check "a second run goes to version_1" 0 'writing to runs/digits/version_1/' -- "$ember" train "$d" --epochs 1 --no-plot
check "the first run's checkpoint is still there" 0 '^' -- test -s runs/digits/version_0/best.safetensors
check "--resume continues the latest run" 0 'epoch 2/2:' -- "$ember" train "$d" --epochs 2 --resume --no-plot
check "--resume of a finished run says how to go on" 0 'has done 2 epochs already; --epochs N \(more than 2\)' -- "$ember" train "$d" --epochs 2 --resume --no-plot
check "--resume wrote into version_1" 0 '^3$' -- sh -c 'wc -l < runs/digits/version_1/metrics.csv'
check "--out on a folder with a run is refused, naming --resume and --force" 2 'with --resume, start over in it with --force' -- \
    "$ember" train "$d" --out runs/digits/version_0 --epochs 1
check "--force starts over there" 0 'writing to runs/digits/version_0/' -- "$ember" train "$d" --out runs/digits/version_0 --epochs 1 --force --no-plot
check "--resume with nothing to resume" 1 'no run to continue' -- "$ember" train "$src/examples/iris.ini" --resume
cd "$src" || exit 1

# ---- layered config: the user's config reaches ember train ----------------------------------------
mkdir -p "$work/xdg/ember"
printf '[runtime]\nthreads = 1\nseed = 5\n' > "$work/xdg/ember/ember.ini"
check "train uses and shows the user config" 0 'runtime\.threads += 1 \(from .*xdg/ember/ember\.ini:2\)' -- \
    env -u EMBER_CONFIG XDG_CONFIG_HOME="$work/xdg" "$ember" train "$d" --epochs 1 --out "$work/layer1" --no-plot
check "the environment beats the user config" 0 'runtime\.threads += 2 \(from env EMBER_NUM_THREADS\)' -- \
    env -u EMBER_CONFIG XDG_CONFIG_HOME="$work/xdg" EMBER_NUM_THREADS=2 "$ember" train "$d" --epochs 1 --out "$work/layer2" --no-plot
check "the command line beats the config" 0 'train\.epochs += 1 \(from --epochs\)' -- \
    env -u EMBER_CONFIG XDG_CONFIG_HOME="$work/xdg" "$ember" train "$d" --epochs 1 --out "$work/layer3" --no-plot
check "info shows where a value came from" 0 'runtime\.threads += 1 +\(from .*xdg/ember/ember\.ini:2\)' -- \
    env -u EMBER_CONFIG XDG_CONFIG_HOME="$work/xdg" "$ember" info

have_python=0
python3 -c 'import pty, xml.etree.ElementTree' 2>/dev/null && have_python=1
[ "$have_python" = 1 ] || echo "SKIP: picture and progress-bar checks (they need python3)"

# ---- pictures ---------------------------------------------------------------------------------
check "train draws its pictures" 0 'wrote .*/confusion\.svg' -- "$ember" train "$d" --epochs 3 --out "$work/pic" --quiet
check "plot redraws them" 0 'wrote .*/loss\.svg' -- "$ember" plot "$work/pic"
[ "$have_python" = 1 ] && check "the SVGs are pictures of the run" 0 '^ok' -- python3 "$src/tests/e2e/check_pictures.py" "$work/pic" 3 10
check "eval --plot draws its confusion matrix" 0 "wrote $work/eval\.svg" -- \
    "$ember" eval "$d" --checkpoint "$work/pic/best.safetensors" --plot "$work/eval.svg"
[ "$have_python" = 1 ] && check "that SVG holds a 10x10 matrix" 0 '^ok' -- python3 "$src/tests/e2e/check_pictures.py" --confusion "$work/eval.svg" 10
if [ "$have_python" = 1 ] && "$ember" --version | grep -q 'PNG (cairo)'; then
    check "the PNGs are not blank" 0 '^ok' -- python3 "$src/tests/e2e/check_pictures.py" --png "$work/pic"
else
    echo "SKIP: PNG checks (ember built without cairo, or no python3)"
    check "without cairo, no PNG is written" 0 '^0$' -- sh -c "ls '$work/pic' | grep -c png || true"
fi

# ---- the progress bar in an 80-column terminal -------------------------------------------------
[ "$have_python" = 1 ] && check "the progress bar fits 80 columns and redraws at most ~10 times a second" 0 '^progress: ok' -- \
    sh -c "cd '$work' && python3 '$src/tests/e2e/progress_pty.py' '$ember' '$d' pty 80"
# a config at a long path (as in a deep checkout) in 80 columns: the settings lines
# are cut too, value first, then the source from its left
deep="$work/a-folder-with-a-rather-long-name/and-another-one-below-it/and-a-third"
mkdir -p "$deep/data" && cp "$d" "$deep/" && cp "$src/examples/data/digits.csv" "$deep/data/"
[ "$have_python" = 1 ] && check "at a long path, every line fits 80 columns" 0 '^progress: ok' -- \
    sh -c "cd '$work' && python3 '$src/tests/e2e/progress_pty.py' '$ember' '$deep/digits.ini' pty-deep 80"
check "no bar when stdout is not a terminal: one line per epoch" 0 '^0 3$' -- \
    sh -c "'$ember' train '$d' --epochs 3 --out '$work/notty' --no-plot > '$work/notty.log';
           echo \$(grep -c \$(printf '\\r') '$work/notty.log') \$(grep -c '^epoch [0-9]*/3:' '$work/notty.log')"

echo "cli e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
