#!/usr/bin/env bash
# tests/plugins_tls.sh - checks that no plugin built here uses dynamic thread-local storage.
#
# Plugins are dlopen'd; a plain _Thread_local in one is dynamic TLS, which crashes the
# LeakSanitizer tracer of GCC 12 and LLVM 14 at exit (see EM_PLUGIN_THREAD_LOCAL in
# include/ember/plugin.h). A shared object whose TLS is all initial-exec carries the
# STATIC_TLS flag, so every plugin with a TLS segment must have that flag. One exception: the
# CUDA runtime, linked statically into the CUDA plugin, brings dynamic TLS of its own that we
# cannot change (it is touched only by threads that call CUDA); there every TLS symbol must be
# the runtime's, so a _Thread_local of ours in that plugin is still caught.
# Usage: tests/plugins_tls.sh BUILD_DIR. Exit 0 when clean, 1 naming each offender, 77 (skip)
# when readelf is missing.
set -euo pipefail
build=${1:?usage: plugins_tls.sh BUILD_DIR}
command -v readelf >/dev/null || { echo "readelf not found (binutils): cannot check"; exit 77; }

checked=0 bad=0
while IFS= read -r -d '' so; do
    readelf -hW "$so" >/dev/null 2>&1 || continue   # the loader tests' deliberately broken files
    checked=$((checked + 1))
    readelf -lW "$so" | grep -q '^ *TLS ' || continue
    readelf -dW "$so" | grep '(FLAGS)' | grep -q STATIC_TLS && continue
    ours=$(readelf -sW "$so" | awk '$4 == "TLS" && $8 !~ /^libcudart_static/ { print $8 }')
    [ -n "$(readelf -sW "$so" | awk '$4 == "TLS" && $8 ~ /^libcudart_static/')" ] && [ -z "$ours" ] &&
        continue
    echo "$so: has dynamic thread-local storage (${ours:-unnamed}); declare it EM_PLUGIN_THREAD_LOCAL"
    bad=$((bad + 1))
done < <(find "$build/backends" "$build/plugins" "$build/tests" -name '*.so' -print0)
[ "$checked" -gt 0 ] || { echo "no plugin found under $build"; exit 1; }
echo "$checked plugins checked, $bad with dynamic TLS"
[ "$bad" -eq 0 ]
