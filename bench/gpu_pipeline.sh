#!/usr/bin/env bash
# The GPU measurements of the input pipeline and of the course's claims, in one call of about five minutes.
#
#     bash bench/gpu_pipeline.sh results_folder        # default: bench/results/gpu_pipeline
#     bash bench/gpu_pipeline.sh results_folder notebooks/01_pets_data.ipynb   # the claims of some notebooks only
#
# 1. bench/gpu_pipeline.py on two cores with two workers (its --cores, as taskset does), as on a free Colab runtime,
#    then on every core: images/s of the full profile's resnet34 epochs for the PIL path, the torchvision.io path in the
#    workers, the nvJPEG path on the device, and a batch kept on the GPU (the ceiling); PSNR against PIL first.
# 2. bench/notebook_claims.py: every notebook in the tiny profile on CUDA; which asserted claims hold, and times.
# Each part has its own time limit (LIMIT_2CORES, LIMIT_ALLCORES, LIMIT_NOTEBOOKS seconds), so one that hangs leaves
# the others their time; EPOCHS, PSNR= (empty: skip it) and ALL_CORE_PATHS shorten a rerun. Everything goes to the log.
set -u
out=${1:-bench/results/gpu_pipeline}
shift $(( $# > 0 ? 1 : 0 ))
"${PYTHON:-python3}" -c 'import sys; sys.path.insert(0, "."); from helpers.outputs import writable_or_exit; writable_or_exit(sys.argv[1], "bench/gpu_pipeline.sh", "results")' "$out" || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=agg
py=${PYTHON:-python3}
log="$out/gpu_pipeline_log.txt"
source "$(dirname "$0")/gpu_log.sh"
machine_header
images=$(mktemp -d)
part ${LIMIT_2CORES:-150} "$py" bench/gpu_pipeline.py --cores 2 --workers 2 --epochs ${EPOCHS:-2} --images "$images" ${PSNR---psnr} --json "$out/pipeline_2cores.json"
part ${LIMIT_ALLCORES:-90} "$py" bench/gpu_pipeline.py --paths ${ALL_CORE_PATHS:-pil,device,resident} --epochs ${EPOCHS:-2} --images "$images" --json "$out/pipeline_allcores.json"
rm -rf "$images"
COURSE_DEVICE=cuda part ${LIMIT_NOTEBOOKS:-260} "$py" bench/notebook_claims.py --json "$out/notebook_claims_cuda.json" "$@"
cat "$log"
