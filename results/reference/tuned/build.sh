#!/bin/sh
# Builds this folder, from the repository root at the commit named in README.md:
#   DATA=path/to/cifar10-jpeg.zip [WEIGHTS=path/to/weights] sh results/reference/tuned/build.sh [OUT]
# Every step continues where a killed or finished earlier one left off (a study goes on to its
# trials; runs resume), so the script is run again until it ends.
set -eu
DATA=${DATA:?set DATA to the CIFAR-10 data}
OUT=${1:-results/reference/tuned}
# the proxy every model is tuned on: 10,000 of the training images, 4 epochs per trial, 20 trials,
# Hyperband pruning; validation on the 5,000 held-out training images
PROXY="--profile quick --data $DATA --set data.train_size=10000 --budget-epochs 4 --trials 20"
harness tune --model baseline_cnn deep_cnn $PROXY --out "$OUT/tuning"
harness tune --model timm:resnet10t --no-pretrained --set input_size=32 $PROXY --out "$OUT/tuning"
# the best settings at full data over three seeds (each its own split), and the hand-made recipe
# at the same seeds (variant "recipe", compared with the tuned run pair by pair), model by model so
# that each model's comparison is complete before the next starts
RUN="--profile quick --data $DATA --seeds 3 --out $OUT/runs --resume"
for model in baseline_cnn deep_cnn; do
    harness run --model "$model" $RUN --tuned "$OUT/tuning"
    harness run --model "$model" $RUN --variant recipe
done
RESNET="--model timm:resnet10t --no-pretrained --set input_size=32"
harness run $RESNET $RUN --tuned "$OUT/tuning"
harness run $RESNET $RUN --variant recipe
# mobilenetv3 from the shared ImageNet weights, on the same terms at its own quick size (160 px):
# the costliest by far, so last (its trials and runs take several times the 32 px models' time)
WEIGHTS=${WEIGHTS:-../shared/weights}
harness tune --model mobilenetv3 --weights-dir "$WEIGHTS" $PROXY --out "$OUT/tuning"
harness run --model mobilenetv3 --weights-dir "$WEIGHTS" $RUN --tuned "$OUT/tuning"
harness run --model mobilenetv3 --weights-dir "$WEIGHTS" $RUN --variant recipe
