#!/bin/sh
# Builds this folder from nothing, from the repository root at one commit on one machine (name both
# in COMMANDS.md), with the cores left to it (or its times are marked busy):
#   DATA=path/to/cifar10-jpeg.zip WEIGHTS=path/to/weights sh results/reference/quick/build.sh [OUT]
# Every step resumes: run the script again until it ends. PROFILE and STUDY_PROFILE (quick and full)
# may be set to smoke for a dry run of the whole script on small data.
set -eu
DATA=${DATA:?set DATA to the CIFAR-10 data}
WEIGHTS=${WEIGHTS:?set WEIGHTS to the folder of pretrained weights files}
OUT=${1:-results/reference/quick}
PROFILE=${PROFILE:-quick}
STUDY_PROFILE=${STUDY_PROFILE:-full}
COMMON="--data $DATA --weights-dir $WEIGHTS --out $OUT --resume"
# the zoo, every row with calibration, robustness at severities 1-5 and batch-1 latency
harness run --all --profile "$PROFILE" $COMMON --eval calibration,robustness,latency
# the study's callbacks: its own recipe (the full profile) on 10,000 training images, as it is and
# without early stopping / without ReduceLROnPlateau, all three on the same data and split
harness run --model baseline_cnn --profile "$STUDY_PROFILE" $COMMON --variant study --ablate callbacks \
    --set data.train_size=10000
# transfer learning on small data: the same recipes on 1,000 and 5,000 training images (and
# baseline_cnn on 20,000), the validation and test images unchanged
for n in 1000 5000; do
    harness run --model baseline_cnn deep_cnn mobilenetv3 --profile "$PROFILE" $COMMON --variant "n$n" \
        --set data.train_size=$n
done
harness run --model baseline_cnn --profile "$PROFILE" $COMMON --variant n20000 --set data.train_size=20000
# three seeds of baseline_cnn, each its own split (seed 0 is the zoo row's run again)
harness run --model baseline_cnn --profile "$PROFILE" $COMMON --variant seeds --seeds 3
