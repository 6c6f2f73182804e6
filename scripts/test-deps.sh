#!/usr/bin/env bash
# Installs the Debian packages `make test` needs, only those missing.
# `make test` runs it first, so a fresh machine needs nothing by hand; as
# a user who cannot install (not root, no sudo) it says what is missing,
# and the tests that need it then skip with a message (in CI they fail).
set -euo pipefail

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || missing+=("$1"); }

# esptool-js and the Improv SDK, the judges in interop/, run under Node.js.
need_cmd node nodejs
need_cmd npm npm
# Runtime libraries of the ESP32 emulator (QEMU with the real mask ROM,
# ../shared/emulators/esp32) that the emulator test tier starts.
for p in libglib2.0-0 libpixman-1-0 libgcrypt20 libgnutls30 libfdt1 libslirp0 \
	libpng16-16 libncursesw6 zlib1g libbz2-1.0; do
	need_pkg "$p"
done
# Crash decoder tests (console/crash): its test ELFs are built from C by
# console/crash/testdata/build.sh with Debian's cross compilers for the
# ESP8266's Xtensa lx106 and for RISC-V (rv32imc, the ESP32-C3/C6).
for p in gcc-xtensa-lx106 binutils-xtensa-lx106 gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf; do
	need_pkg "$p"
done
# Release packaging test (packaging/release_test.go): dpkg-deb checks the
# .deb; it comes with dpkg, but a slimmed image may lack it.
need_cmd dpkg-deb dpkg
# Cloud and identity tests (cloud/..., cmd/mos): a real mosquitto broker
# started by the end-to-end tests, and openssl to check issued
# certificates independently.
need_cmd mosquitto mosquitto
need_cmd openssl openssl
# mos console: its end-to-end test runs the console in a real terminal,
# tmux, against the virtual device (console/tmuxtest).
need_cmd tmux tmux

((${#missing[@]})) || exit 0
sudo=()
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		echo "test-deps: missing Debian packages: ${missing[*]}" >&2
		echo "test-deps: install them with: sudo apt-get install ${missing[*]}" >&2
		echo "test-deps: until then the tests that need them skip (in CI they fail)" >&2
		[ "${CI:-}" = true ] && exit 1
		exit 0
	fi
fi
echo "test-deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
