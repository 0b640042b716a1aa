#!/usr/bin/env bash
# Produces this folder on a lent GPU machine (the `device` tool), in calls of at most 10 minutes.
# What it reads, carried in .dev/ (ignored by git; see COMMANDS.md for how it is made):
#   .dev/cifar10-jpeg.zip.xz        the shared zip, xz-compressed (61 MB -> 19 MB; same bytes unpacked)
#   .dev/weights/*.xz               the MobileNetV3-Small safetensors and EfficientNet-Lite0's .pth
# Everything lives in $WORK, which outlives a call while the machine stays warm: a second call
# with the same script resumes the runs the first one stopped (each epoch is checkpointed).
# One process, one model after another (processes sharing a GPU take turns on it): deep_cnn
# (seconds), the two transfer models, then baseline_cnn (the study's 100-epoch recipe at batch 64).
# Unfinished runs are stopped after $BUDGET seconds; the results go back as one tarball.
set -u
PROFILE=${PROFILE:-full}
BUDGET=${BUDGET:-520}
WORK=${WORK:-/tmp/gpu-full}
OUT=${OUT:-$WORK/out}
HERE=$PWD
start=$(date +%s)
mkdir -p "$WORK/weights" "$WORK/runs/logs" "$OUT"
log() { echo "[$(($(date +%s) - start)) s] $*"; }

[ -f "$WORK/cifar10-jpeg.zip" ] || xz -dc .dev/cifar10-jpeg.zip.xz > "$WORK/cifar10-jpeg.zip"
for f in .dev/weights/*.xz; do
    name=$(basename "$f" .xz)
    [ -f "$WORK/weights/$name" ] || xz -dc "$f" > "$WORK/weights/$name"
done
log "data and weights unpacked: $(sha256sum "$WORK/cifar10-jpeg.zip" | cut -c1-16)"

if ! python3 -c "import harness_efficientnet_lite0" 2>/dev/null; then
    python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . -e plugins/harness-efficientnet-lite0 \
        >"$WORK/pip.log" 2>&1 || { log "pip failed, using PYTHONPATH"; tail -3 "$WORK/pip.log"; }
fi
python3 -c "import harness_efficientnet_lite0" 2>/dev/null ||
    export PYTHONPATH=$HERE:$HERE/plugins:$HERE/plugins/harness-efficientnet-lite0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"

python3 -m harness run --model deep_cnn mobilenetv3 efficientnet_lite0 baseline_cnn --profile "$PROFILE" \
    --data "$WORK/cifar10-jpeg.zip" --weights-dir "$WORK/weights" --out "$WORK/runs" --resume \
    >>"$WORK/runs/logs/run.log" 2>&1 &
harness=$!
log "started harness run, pid $harness"
while kill -0 "$harness" 2>/dev/null; do
    if [ $(($(date +%s) - start)) -ge "$BUDGET" ]; then
        log "budget spent: stopping the run (its last finished epoch is checkpointed)"
        kill -TERM "$harness" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$harness" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$harness" 2>/dev/null
        break
    fi
    sleep 2
done

# the leaderboard and report from every finished model folder (trains nothing)
done_models=$(cd "$WORK/runs" && grep -l '"status": "ok"' */metrics.json 2>/dev/null | xargs -r -n1 dirname)
log "finished: ${done_models:-none}"
if [ -n "$done_models" ]; then
    python3 -m harness run --model $done_models --profile "$PROFILE" --data "$WORK/cifar10-jpeg.zip" \
        --weights-dir "$WORK/weights" --out "$WORK/runs" --resume >>"$WORK/runs/logs/board.log" 2>&1
fi
tail -n 4 "$WORK"/runs/logs/*.log
# weights (*.pt) and checkpoints stay on the machine; the numbers, plots and logs come back
tar -C "$WORK/runs" --exclude='*.pt' --exclude='*.tmp' --exclude='.harness.lock' -czf "$OUT/gpu-full.tar.gz" .
log "wrote $OUT/gpu-full.tar.gz ($(du -h "$OUT/gpu-full.tar.gz" | cut -f1))"
