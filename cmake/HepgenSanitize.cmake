# HEPGEN_SANITIZE: build the core with AddressSanitizer and/or UndefinedBehaviorSanitizer, for
# testing only (tools/sanitize.sh builds and runs it; docs/reliability.md records the results).
#
#   -DHEPGEN_SANITIZE="address;undefined"     (or just "address", or just "undefined")
#
# The flags are usage requirements of hepgen_core (INTERFACE, and exported with the CMake
# package): everything that links the core — hepgen._C, tests/cpp, an outside consumer —
# is compiled and linked with them too. That is needed, not only convenient: the ASan
# runtime must be linked into (or preloaded by) the executable, and an uninstrumented
# program that loads an instrumented library fails at start-up.
#
# -fno-sanitize-recover=undefined makes undefined behaviour end the run (by default UBSan
# prints and carries on, so a test would still pass). -g and -fno-omit-frame-pointer give
# reports with file:line and full stacks. The optimisation level is left as the core's own
# (-O3): the code checked is the code shipped.
#
# CPU only: ASan does not instrument device code, and the CUDA runtime's own allocations
# under ASan need options (protect_shadow_gap=0) that hide the errors it is meant to find;
# CUDA kernels are checked with compute-sanitizer instead (benchmarks/gpu/session.sh).
# HEPGEN_CUDA=ON with HEPGEN_SANITIZE is refused; AUTO builds the CPU core only.

set(HEPGEN_SANITIZE "" CACHE STRING
    "Sanitizers for a test build of the core: a ;-list of address, undefined (empty: none)")

set(HEPGEN_SANITIZERS_ALLOWED address undefined)
set(HEPGEN_SANITIZE_ENABLED OFF)
if(HEPGEN_SANITIZE)
  foreach(_sanitizer IN LISTS HEPGEN_SANITIZE)
    if(NOT _sanitizer IN_LIST HEPGEN_SANITIZERS_ALLOWED)
      message(FATAL_ERROR "HEPGEN_SANITIZE: unknown sanitizer '${_sanitizer}' in '${HEPGEN_SANITIZE}'; "
                          "use a ;-list of address, undefined (e.g. -DHEPGEN_SANITIZE=\"address;undefined\")")
    endif()
  endforeach()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "HEPGEN_SANITIZE needs GCC or Clang, got ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(HEPGEN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HEPGEN_SANITIZE builds the CPU core only: use it with HEPGEN_CUDA=OFF (or AUTO). "
                        "The CUDA kernels are checked with compute-sanitizer, not ASan/UBSan.")
  endif()
  set(HEPGEN_SANITIZE_ENABLED ON)
  list(JOIN HEPGEN_SANITIZE "," _sanitizers)
  set(HEPGEN_SANITIZE_COMPILE_FLAGS -fsanitize=${_sanitizers} -fno-omit-frame-pointer -g)
  if("undefined" IN_LIST HEPGEN_SANITIZE)
    list(APPEND HEPGEN_SANITIZE_COMPILE_FLAGS -fno-sanitize-recover=undefined)
  endif()
  set(HEPGEN_SANITIZE_LINK_FLAGS -fsanitize=${_sanitizers})
  message(STATUS "hepgen: sanitized test build (${_sanitizers}), CPU core only")
endif()

# Give `target` (hepgen_core) the sanitizer flags as usage requirements: its own sources and
# every consumer's C/C++ sources are compiled with them, and every link that uses it links
# the sanitizer runtimes.
function(hepgen_sanitize target)
  if(NOT HEPGEN_SANITIZE_ENABLED)
    return()
  endif()
  target_compile_options(${target} PUBLIC "$<$<COMPILE_LANGUAGE:C,CXX>:${HEPGEN_SANITIZE_COMPILE_FLAGS}>")
  target_link_options(${target} PUBLIC ${HEPGEN_SANITIZE_LINK_FLAGS})
endfunction()
