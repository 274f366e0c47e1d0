"""CMake options of the core: HEPGEN_CUDA=OFF builds a CPU-only core that says so;
HEPGEN_CUDA=ON without a CUDA compiler fails at configure time with a clear message."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("cmake") is None or not os.path.isfile(os.path.join(REPO, "CMakeLists.txt")),
        reason="needs cmake and the source tree",
    ),
]


def _configure(build, *defines, env=None):
    return subprocess.run(
        ["cmake", "-S", REPO, "-B", str(build), "-DHEPGEN_PYTHON=OFF", *defines],
        capture_output=True,
        text=True,
        env=env,
    )


def test_cuda_off_builds_cpu_core_usable_from_cpp(tmp_path):
    build, prefix = tmp_path / "core", tmp_path / "prefix"
    assert _configure(build, "-DHEPGEN_CUDA=OFF").returncode == 0
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    subprocess.run(["cmake", "--install", str(build), "--prefix", str(prefix)], check=True, capture_output=True)
    consumer = tmp_path / "consumer"
    subprocess.run(
        [
            "cmake",
            "-S",
            os.path.join(REPO, "tests", "cpp"),
            "-B",
            str(consumer),
            f"-Dhepgen_DIR={prefix / 'lib' / 'cmake' / 'hepgen'}",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(consumer)], check=True, capture_output=True)
    result = subprocess.run([str(consumer / "set_pool_consumer")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "cuda built 0" in result.stdout
    assert "backend not built into this library" in result.stdout
    checks = subprocess.run([str(consumer / "tensor_view_checks")], capture_output=True, text=True)
    assert checks.returncode == 0, checks.stdout


def test_cuda_on_without_compiler_fails_clearly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDACXX", "CUDA_HOME", "CUDA_PATH")}
    env["CUDACXX"] = str(tmp_path / "no-nvcc-here")
    result = _configure(tmp_path / "b", "-DHEPGEN_CUDA=ON", env=env)
    assert result.returncode != 0
    assert "HEPGEN_CUDA=ON but no CUDA compiler was found" in result.stdout + result.stderr


def test_bad_cuda_option_is_rejected(tmp_path):
    result = _configure(tmp_path / "b", "-DHEPGEN_CUDA=maybe")
    assert result.returncode != 0
    assert "HEPGEN_CUDA must be AUTO, ON or OFF" in result.stdout + result.stderr
