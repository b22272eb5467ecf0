#!/bin/sh
# A STAND-IN for NVIDIA's nvidia-smi, for tests on machines without a GPU.
# It answers the queries hepml's local executor makes:
#   --query-gpu=index ...                                  the device indices
#   --query-gpu=index,utilization.gpu,memory.used ...      one line per device
# with the lines of $HEPML_NVIDIA_SMI_STANDIN ("INDEX, UTIL, MEM_MB" per line,
# separated by the two characters \n).
lines=$(printf '%b' "$HEPML_NVIDIA_SMI_STANDIN")
case "$*" in
  *--query-gpu=index,utilization.gpu,memory.used*) printf '%s\n' "$lines" ;;
  *--query-gpu=index*) printf '%s\n' "$lines" | cut -d, -f1 ;;
  *) echo "nvidia-smi stand-in: unsupported query: $*" >&2; exit 2 ;;
esac
