// Package emulator is the test tier that runs mos against Espressif's ESP32
// emulator: QEMU's ESP32 machine running the chip's real mask ROM, so the
// ROM loader, the flasher stub mos uploads and the ROM's boot checks are the
// real code rather than the virtual device's model of it.
//
// The emulator is not part of this repository. The tests look for it next
// to the checkout (../shared/emulators/esp32 from the module root) or where
// MOS_ESP32_EMULATOR points. Without it they skip with a message, except in
// CI (CI=true), where a missing or broken emulator fails the run.
package emulator
