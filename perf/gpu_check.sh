#!/usr/bin/env bash
# The prepared GPU check: one script, under 8 minutes on one GPU, that writes its figures
# as JSON and Markdown to a folder.
#
#   perf/gpu_check.sh OUT_DIR            # on a machine with a CUDA device
#   perf/gpu_check.sh OUT_DIR --dry-run  # CPU, tiny sizes: checks the script itself (CI)
#
# Steps (each under its own time limit; a failed step is recorded, the others still run):
#   1. the GPU tests (pytest -m gpu): metrics on the device equal the CPU's, a bf16 run;
#   2. ViT-S/8 throughput, eval and train, fp32 and bf16, and the fraction of the GPU's
#      bf16 peak (perf/backbone_speed.py; set PEAK_TFLOPS for GPUs other than an H100 SXM;
#      an H200 has the same 989 TFLOP/s dense bf16);
#   3. retrieval metrics at QuickDraw scale (92,291 x 54,151) on the GPU
#      (perf/metrics_speed.py);
#   4. a PSKD run on the embedded data set in bf16 (its wall time and metrics).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: perf/gpu_check.sh OUT_DIR [--dry-run]}
dry=${2:-}
mkdir -p "$out"
python=${PYTHON:-python}
if [ "$dry" = "--dry-run" ]; then
    device=cpu; models=tiny; precisions=fp32; scale=small; pskd_extra=(
        --epochs 1 --set teacher_epochs=1 --batch-size 8 --set teacher_batch_size=8
        --set dataset.sketches_per_class=8 --set dataset.photos_per_class=8)
    limits=(120 120 120 300); precision=fp32
else
    device=cuda; models=vit_s8,tiny; precisions=fp32,bf16; scale=quickdraw; pskd_extra=()
    limits=(120 150 150 150); precision=bf16
fi
status=()

step() {  # step NAME LIMIT COMMAND...: run it, remember how it ended
    local name=$1 limit=$2; shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local code=$?
    status+=("\"$name\": {\"exit_code\": $code, \"seconds\": $((SECONDS - start))}")
    echo "$name: exit $code in $((SECONDS - start)) s"
}

step gpu_tests "${limits[0]}" "$python" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
step backbone_speed "${limits[1]}" "$python" perf/backbone_speed.py --device "$device" \
    --models "$models" --precisions "$precisions" --peak-tflops "${PEAK_TFLOPS:-989}" \
    --json "$out/backbone_speed.json"
step metrics_speed "${limits[2]}" "$python" perf/metrics_speed.py --scale "$scale" \
    --device "$device" --repeats 2 --json "$out/metrics_speed.json"
step pskd_run "${limits[3]}" "$python" -m sbirbench run pskd --dataset synthetic \
    --device "$device" --precision "$precision" --out "$out/runs" --log-format jsonl \
    "${pskd_extra[@]}"

( IFS=,; echo "{${status[*]}}" ) > "$out/steps.json"
"$python" perf/gpu_check_report.py "$out"
