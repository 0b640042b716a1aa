"""Data-parallel training on this machine: deep_cnn with 1 and 2 gloo processes of one thread
each over the same global batches. Run: python -m pytest benchmarks -q -s (nothing else running)."""
from harness.bench import process_scaling


def test_two_processes_train_at_least_1_6x_faster_than_one(benchmark):
    result = benchmark.pedantic(process_scaling, args=("deep_cnn", 2), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\ndeep_cnn: 1 process {result['img_s_1_process']:.0f} img/s, 2 processes "
          f"{result['img_s_2_processes']:.0f} img/s, ratio {result['ratio']:.2f}")
    assert result["ratio"] >= 1.6
