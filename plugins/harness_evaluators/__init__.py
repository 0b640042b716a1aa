"""Built-in evaluators, registered through the same hook as any plugin's: ``classification``
(always on) and, with ``--eval NAME``, ``calibration``, ``robustness``, ``latency`` and ``deploy``."""
from harness import Column, EvaluatorSpec, hookimpl

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
                           columns=(Column("f1", "F1", "F1 is the macro average over the classes (± the 95% "
                                           "half-interval over seeds where a row has several)."),),
                           description="accuracy, macro precision / recall / F1, per class, confusion matrix"))
    register(EvaluatorSpec("calibration", _calibration, options={"bins": 15}, report=_report("calibration"),
                           columns=(Column("ece", "ECE", "ECE is the expected calibration error of the test "
                                           "predictions over equal-width confidence bins (15 unless "
                                           "`--set eval.calibration.bins=N`; lower is better)."),),
                           description="expected calibration error (15 bins), NLL, Brier score, reliability diagram"))
    register(EvaluatorSpec("robustness", _robustness, options={"severities": "1-5", "seed": 0},
                           report=_report("robustness"),
                           columns=(Column("corruption_acc", "corruption acc", "corruption acc is the mean accuracy "
                                           "over the corruptions and severities run (`--eval robustness`)."),),
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
