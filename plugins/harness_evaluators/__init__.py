"""Built-in evaluators, registered through the same hook as any plugin's: ``classification``
(always on) and, with ``--eval NAME``, ``calibration``, ``robustness``, ``latency`` and ``deploy``."""
from harness import EvaluatorSpec, hookimpl

# the kinds ``harness_evaluators.corruptions`` computes (named here so that listing plugins imports no torch)
CORRUPTION_NAMES = ("gaussian_noise", "gaussian_blur", "contrast", "brightness", "jpeg", "pixelate")


def _classification(ctx):
    from harness_evaluators.classification import classification_metrics

    return classification_metrics(ctx.test_y, ctx.logits, ctx.classes)


def _calibration(ctx):
    from harness_evaluators.measures import calibration

    return calibration(ctx)


def _robustness(ctx):
    from harness_evaluators.measures import robustness

    return robustness(ctx)


def _latency(ctx):
    from harness_evaluators.measures import latency

    return latency(ctx)


def _deploy(ctx):
    from harness_evaluators.deploy import deploy

    return deploy(ctx)


def _report(kind):
    def report(results, folder):
        from harness_evaluators import sections

        return getattr(sections, kind)(results, folder)

    return report


@hookimpl
def register_evaluators(register):
    register(EvaluatorSpec("classification", _classification, default=True,
                           description="accuracy, macro precision / recall / F1, per class, confusion matrix"))
    register(EvaluatorSpec("calibration", _calibration, options={"bins": 15}, report=_report("calibration"),
                           headline=("ece", "ECE"),
                           description="expected calibration error (15 bins), NLL, Brier score, reliability diagram"))
    register(EvaluatorSpec("robustness", _robustness, options={"severities": "1-5", "seed": 0},
                           report=_report("robustness"), headline=("corruption_acc", "corruption acc"),
                           description="accuracy under common corruptions at severities 1-5 (CIFAR-10-C's constants, "
                           "computed on the fly, one plain pass each), mCE against baseline_cnn: "
                           + ", ".join(CORRUPTION_NAMES)))
    register(EvaluatorSpec("latency", _latency, options={"warmup": 10, "runs": 100, "batches": 3},
                           report=_report("latency"),
                           description="batch-1 latency p50/p95 (ms) and throughput at the evaluation batch size"))
    register(EvaluatorSpec("deploy", _deploy, report=_report("deployment"),
                           options={"serving_batch": 32, "calibration_images": 256},
                           description="ONNX export run by ONNX Runtime on the CPU: agreement with PyTorch, accuracy, "
                           "batch-1 latency, throughput, size; then int8 (static QDQ, calibrated on training "
                           "images) with its paired accuracy change (the deploy extra)"))
