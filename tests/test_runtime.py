import subprocess
import sys

import torch

from mnistlab.runtime import configure_threads, default_threads, make_generator

DENORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def test_importing_mnistlab_flushes_denormals_in_every_thread():
    # a large tensor makes torch hand the multiply to its OpenMP workers, which must have
    # inherited the setting: run in a fresh interpreter, where mnistlab comes first
    code = (
        "import mnistlab, torch; torch.set_num_threads(2);"
        f"x = torch.full((1_000_000,), {DENORMAL}) * 1.0;"
        "print(int((x != 0).sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_without_mnistlab_denormals_survive():
    code = f"import torch; print(int((torch.full((1000,), {DENORMAL}) * 1.0 != 0).sum()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1000"


def test_configure_threads_sets_torch():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_generators_are_independent_and_seeded():
    a, b = make_generator(7), make_generator(7)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


def test_small_dense_models_get_one_thread():
    small = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.Linear(30, 10))
    assert default_threads(small, batch_size=10) == 1  # 10·784·30 = 235,200 multiply-adds
    assert default_threads(small, batch_size=128) is None  # 3.0 M: both cores pay
    wide = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.Linear(512, 10))
    assert default_threads(wide, batch_size=4) is None  # 1.6 M


def test_convolutions_keep_every_core():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    assert default_threads(conv, batch_size=1) is None
