# Shared by bench/gpu.sh and bench/gpu_pipeline.sh (sourced, not run): with $py and $log set, `machine_header`
# writes the GPU, driver and versions to the log, and `part SECONDS command...` runs one part with its own time limit,
# logging everything and how it ended, so one part that hangs leaves the others their time.
machine_header() {
  {
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    "$py" -c "import torch, torchvision; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(), '| torchvision', torchvision.__version__, '|', torch.cuda.get_device_name())"
    echo "cores: $(nproc)"
  } >"$log" 2>&1
}
part() {
  local limit=$1; shift
  echo "=== $* (limit ${limit}s) ===" >>"$log"
  local start=$SECONDS
  timeout "$limit" "$@" >>"$log" 2>&1
  echo "=== exit $? after $((SECONDS - start)) s ===" >>"$log"
}
