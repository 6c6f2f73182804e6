#!/bin/sh
# Builds the crash decoder's test ELFs from crash.c with Debian's cross
# compilers, into the directory given (default: this one):
#
#   esp8266.elf  gcc-xtensa-lx106, ESP8266 memory map
#   esp32.elf    gcc-xtensa-lx106, ESP32 memory map (Debian has no compiler
#                for the ESP32's Xtensa LX6; the instruction set and DWARF
#                are the same, so its backtraces are checked against this)
#   esp32c3.elf  gcc-riscv64-unknown-elf for rv32imc/ilp32 (ESP32-C3/C6)
#   esp32c3-nodebug.elf, esp32c3-stripped.elf: the same without DWARF,
#                and without any symbols
#
# The package's tests run it (the ELFs are not committed): CI installs the
# compilers (.ci/run). Tested with both compilers at Debian 12's 12.2.0.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
# -O0 keeps every marker on its line; the prefix map keeps this machine's
# paths out of the DWARF, so the decoder prints "crash.c".
common="-O0 -g -ffreestanding -nostdlib -ffile-prefix-map=$here=."
cd "$here"
xtensa-lx106-elf-gcc $common -mlongcalls -T esp8266.ld -o "$out/esp8266.elf" crash.c
xtensa-lx106-elf-gcc $common -mlongcalls -T esp32.ld -o "$out/esp32.elf" crash.c
riscv64-unknown-elf-gcc $common -march=rv32imc -mabi=ilp32 -T esp32c3.ld -o "$out/esp32c3.elf" crash.c
riscv64-unknown-elf-strip --strip-debug -o "$out/esp32c3-nodebug.elf" "$out/esp32c3.elf"
riscv64-unknown-elf-strip --strip-all -o "$out/esp32c3-stripped.elf" "$out/esp32c3.elf"
