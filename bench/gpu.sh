#!/usr/bin/env bash
# The GPU rows of the README and bench/results/, in one run of a few minutes on one CUDA GPU.
#
#     bash bench/gpu.sh results_folder        # default: bench/results/gpu
#
# 1. bench/models.py: resnet50 and resnet101 at 224 px, batch 64, fp32 / fp16 / bf16, with and without
#    channels_last, fp32 with TF32 off (the true fp32 baseline), then fp32 alone with TF32 on (NVIDIA's baseline);
# 2. bench/full_epoch.py: seconds per epoch of the full profile's recipe on stand-in pets at the real sizes;
# 3. bench/augment.py: presizing + BatchAugment on the GPU against the per-item chain.
# Each part has its own time limit (475 s in all; the first H100 run took 6 minutes), so one that hangs leaves the
# others their time; everything goes to gpu_log.txt.
set -u
out=${1:-bench/results/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=agg
py=${PYTHON:-python3}
log="$out/gpu_log.txt"
source "$(dirname "$0")/gpu_log.sh"
machine_header
part 150 "$py" bench/models.py --device cuda --archs resnet50,resnet101 --rounds 2 --tf32 off --out "$out"
part 80 "$py" bench/models.py --device cuda --archs resnet50,resnet101 --rounds 2 --tf32 on --precisions fp32 --out "$out/tf32on"
part 200 "$py" bench/full_epoch.py --device cuda --out "$out/full_epoch"
part 45 "$py" bench/augment.py --device cuda
# Bring back at most a handful of files, two folders down at most.
mv "$out/tf32on/models_cuda_tf32on.csv" "$out/" 2>/dev/null; rm -rf "$out/tf32on"
for c in fp32 fp16_CL; do cp "$out/full_epoch/$c/metrics.json" "$out/full_epoch_$c.json" 2>/dev/null; done
rm -rf "$out/full_epoch"
tail -n 60 "$log"
