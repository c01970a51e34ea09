#!/bin/sh
# smartproxy shim for `@TOOL@`: runs the real @TOOL@ under `smartproxy run --preset @PRESET@`, so
# every session is budgeted and recorded without changing how you call it.
# Installed by `smartproxy shim install @TOOL@`; remove it with `smartproxy shim remove @TOOL@`.
shim_dir=@DIR@
# The real tool is the first @TOOL@ on PATH outside this folder: the shim never runs itself.
path_without_shims=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$shim_dir" | paste -sd: -)
real=$(PATH=$path_without_shims command -v @TOOL@) || {
    echo "smartproxy shim: no @TOOL@ on PATH outside $shim_dir" >&2
    exit 127
}
exec @SMARTPROXY@ run --preset @PRESET@ -- "$real" "$@"
