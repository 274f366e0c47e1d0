"""CMake options of the core: HEPGEN_CUDA=OFF builds a CPU-only core that says so;
HEPGEN_CUDA=ON without a CUDA compiler fails at configure time with a clear message;
HEPGEN_SANITIZE puts the sanitizer flags on every compile and link of the core and of what
links it (checked at configure time: the sanitized build itself is tools/sanitize.sh's)."""

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

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


SANITIZE_COMPILE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer")


def _compile_commands(build):
    with open(build / "compile_commands.json") as f:
        return {os.path.relpath(entry["file"], REPO): entry["command"] for entry in json.load(f)}


def test_sanitize_flags_reach_every_compile_and_link(tmp_path):
    build = tmp_path / "b"
    defines = ["-DHEPGEN_SANITIZE=address;undefined", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
    python_module = importlib.util.find_spec("pybind11") is not None
    if python_module:  # hepgen._C too, where pybind11 is at hand (it is a build-time requirement only)
        import pybind11

        defines += ["-DHEPGEN_PYTHON=ON", f"-DPython_EXECUTABLE={sys.executable}"]
        defines.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
    result = _configure(build, *defines)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sanitized test build (address,undefined), CPU core only" in result.stdout
    commands = _compile_commands(build)
    core = [f for f in commands if f.split(os.sep)[:2] in (["csrc", "core"], ["csrc", "cpu"])]
    assert len(core) >= 10
    assert not any(f.endswith(".cu") for f in commands), "a sanitized build must not compile the CUDA kernels"
    if python_module:
        assert any(f.startswith(os.path.join("csrc", "python")) for f in commands)
    for source, command in commands.items():
        for flag in SANITIZE_COMPILE_FLAGS:
            assert flag in command.split(), f"{source} is compiled without {flag}"
    with open(build / "CMakeFiles" / "hepgen_core.dir" / "link.txt") as f:
        assert "-fsanitize=address,undefined" in f.read().split()
    # The installed package passes the flags on to consumers (tests/cpp, outside programs),
    # whose executables must link the ASan runtime, and says that it is sanitized.
    (exported,) = glob.glob(str(build / "CMakeFiles" / "Export" / "*" / "hepgenTargets.cmake"))
    with open(exported) as f:
        targets = f.read()
    assert "INTERFACE_LINK_OPTIONS" in targets and "-fsanitize=address,undefined" in targets
    with open(build / "hepgenConfig.cmake") as f:
        assert 'set(hepgen_SANITIZE "address;undefined")' in f.read()


def test_default_build_is_not_sanitized(tmp_path):
    build = tmp_path / "b"
    result = _configure(build, "-DHEPGEN_CUDA=OFF", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON")
    assert result.returncode == 0, result.stdout + result.stderr
    commands = _compile_commands(build)
    assert commands and not any("-fsanitize" in command for command in commands.values())


def test_sanitize_with_cuda_on_is_refused(tmp_path):
    result = _configure(tmp_path / "b", "-DHEPGEN_SANITIZE=address", "-DHEPGEN_CUDA=ON")
    assert result.returncode != 0
    assert "HEPGEN_SANITIZE builds the CPU core only: use it with HEPGEN_CUDA=OFF" in result.stdout + result.stderr


def test_unknown_sanitizer_is_refused(tmp_path):
    result = _configure(tmp_path / "b", "-DHEPGEN_SANITIZE=address;thread")
    assert result.returncode != 0
    assert "HEPGEN_SANITIZE: unknown sanitizer 'thread'" in result.stdout + result.stderr
