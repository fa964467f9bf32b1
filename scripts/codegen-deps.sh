#!/usr/bin/env bash
# Installs what the codegen tests need beyond the system C compiler: clang (the generated C must compile warning-free
# under gcc and clang), the Arm bare-metal toolchain with newlib, and qemu-system-arm (the check program runs on an
# emulated Cortex-M4F, mps2-an386). Idempotent; where something cannot be installed it says why and those tests skip.
set -u
want=()
command -v clang >/dev/null 2>&1 || want+=(clang)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || want+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/librdimon.a ] || want+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || want+=(qemu-system-arm)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null 2>&1) \
    || echo "codegen-deps: apt-get install ${want[*]} failed; the clang / Cortex-M4 codegen tests will skip"
else
  echo "codegen-deps: ${want[*]} missing and apt-get unavailable (not root); the clang / Cortex-M4 codegen tests will skip"
fi
exit 0
