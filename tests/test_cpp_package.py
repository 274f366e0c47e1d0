"""The compiled core is usable from C++ without Python: find_package(hepgen) -> hepgen::core."""

import os
import shutil
import subprocess

import pytest

import hepgen

pytestmark = pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("c++") is None, reason="needs cmake and a C++ compiler"
)


def test_cpp_program_links_core_through_find_package(tmp_path):
    source = os.path.join(os.path.dirname(__file__), "cpp")
    build = tmp_path / "build"
    subprocess.run(
        ["cmake", "-S", source, "-B", str(build), f"-Dhepgen_DIR={hepgen.cmake_dir()}", "-DCMAKE_BUILD_TYPE=Release"],
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, text=True)
    result = subprocess.run([str(build / "set_pool_consumer")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "max error" in result.stdout
    # Bad views (wrong rank, shapes, dtype, negative sizes, null data, overlapping outputs, ...)
    # come back as a Status with a message naming the argument; none crashes.
    checks = subprocess.run([str(build / "tensor_view_checks")], capture_output=True, text=True)
    assert checks.returncode == 0, checks.stdout + checks.stderr
    assert "0 failure(s)" in checks.stdout
    assert "mask must have shape [4, 512]" in checks.stdout


def test_headers_and_cmake_package_are_installed():
    assert os.path.isfile(os.path.join(hepgen.include_dir(), "hepgen", "set_pool.h"))
    assert os.path.isfile(os.path.join(hepgen.include_dir(), "hepgen", "tensor_view.h"))
    assert os.path.isfile(os.path.join(hepgen.include_dir(), "hepgen", "third_party", "dlpack", "dlpack.h"))
    assert os.path.isfile(os.path.join(hepgen.cmake_dir(), "hepgenConfig.cmake"))
