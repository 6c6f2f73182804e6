package demofw

import (
	"context"
	"errors"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"

	"github.com/mos-tool/mos/sim"
)

// The demo firmware's boot: what it prints, where its file system lives,
// and the configuration it loads.

// ramInfo is the heap as the firmware reports it.
type ramInfo struct{ total, free, minFree int }

func ramOf(chip *chips.Chip) ramInfo {
	switch {
	case chip.IsESP8266():
		return ramInfo{52032, 44120, 42784}
	case chip.Key == "esp32":
		return ramInfo{299468, 231264, 229520}
	}
	return ramInfo{321536, 254780, 252104}
}

// logBanner prints the first lines of a Mongoose OS boot.
func (fw *demoFirmware) logBanner() {
	a := fw.app
	flashMB := fw.m.Flash().Size() >> 20
	if fw.chip.IsESP8266() {
		fw.logf(logInfo, "esp_main.c:158", "%s %s (%s)", a.name, a.version, a.buildID)
		fw.logf(logInfo, "esp_main.c:160", "Mongoose OS %s (%s)", mgosVersion, mgosBuildID)
		fw.logf(logInfo, "esp_main.c:161", "CPU: ESP8266EX, 160 MHz, RAM: %d total, %d free", fw.ram.total, fw.ram.free+4756)
		fw.logf(logInfo, "esp_main.c:165", "SDK 2.2.1(6ab97e9); flash: %dM", flashMB)
		code, name := fw.esp8266ResetCause()
		fw.logf(logInfo, "esp_exc.c:240", "Reset cause: %d (%s)", code, name)
		return
	}
	fw.logf(logInfo, "mgos_freertos.c:98", "%s %s (%s)", a.name, a.version, a.buildID)
	fw.logf(logInfo, "mgos_freertos.c:100", "Mongoose OS %s (%s)", mgosVersion, mgosBuildID)
	fw.logf(logInfo, "mgos_freertos.c:101", "CPU: 160 MHz, FreeRTOS 10.2.1, heap: %d total, %d free", fw.ram.total, fw.ram.free+30880)
	// the partition the bootloader loaded the app from
	label := "factory"
	if pt := fw.partitionTable(); pt != nil {
		for _, p := range pt.Partitions {
			if p.Type == fwimage.PartTypeApp && p.Offset == fw.appAddr {
				label = p.Label
			}
		}
	}
	fw.logf(logInfo, "esp32xx_main.c:78", "Boot partition: %s; flash: %dM", label, flashMB)
}

// esp8266ResetCause is the SDK's rst_info reason (enum rst_reason in the
// ESP8266 NONOS SDK's user_interface.h: 0 power on, 1 hardware watchdog,
// 4 software restart, 6 external).
func (fw *demoFirmware) esp8266ResetCause() (int, string) {
	crashed := fw.esp8266CrashedBefore()
	switch fw.m.ResetReason() {
	case sim.ResetSoftware:
		if crashed {
			return 2, "exception" // REASON_EXCEPTION_RST
		}
		return 4, "soft restart"
	case sim.ResetPowerOn:
		return 0, "power on"
	case sim.ResetWatchdog:
		return 1, "hw watchdog"
	}
	return 6, "external reset"
}

func (fw *demoFirmware) wifiMode() string {
	ap, sta := fw.cfg.Bool("wifi.ap.enable"), fw.cfg.Bool("wifi.sta.enable")
	switch {
	case ap && sta:
		return "AP+STA"
	case ap:
		return "AP"
	case sta:
		return "STA"
	}
	return ""
}

// channelAddr is the address the firmware's logs print for its UART RPC
// channel object.
func (fw *demoFirmware) channelAddr() string {
	switch {
	case fw.chip.IsESP8266():
		return "0x3fff0d70"
	case fw.chip.Key == "esp32":
		return "0x3ffb4c10"
	}
	return "0x3fc9b4c0"
}

// ESP8266 demo images have no partition table: the file system sits where
// the demo bundle's fs part puts it.
const (
	esp8266FSAddr = 0x80000
	esp8266FSSize = 256 << 10
)

// fsRegion finds the file system: the ESP32 family's "fs" data partition
// (or the first SPIFFS/LittleFS one), the ESP8266's fixed region.
func (fw *demoFirmware) fsRegion() (addr, size uint32, ok bool) {
	if fw.chip.IsESP8266() {
		if fw.m.Flash().Size() < esp8266FSAddr+esp8266FSSize {
			return 0, 0, false
		}
		return esp8266FSAddr, esp8266FSSize, true
	}
	pt := fw.partitionTable()
	if pt == nil {
		return 0, 0, false
	}
	p := pt.Find("fs")
	for i := range pt.Partitions {
		q := &pt.Partitions[i]
		if p == nil && q.Type == fwimage.PartTypeData && (q.SubType == fwimage.PartSubDataSPIFFS || q.SubType == fwimage.PartSubDataLittleFS) {
			p = q
		}
	}
	if p == nil {
		return 0, 0, false
	}
	return p.Offset, p.Size, true
}

func (fw *demoFirmware) partitionTable() *fwimage.PartitionTable {
	raw := make([]byte, fwimage.PartitionTableMaxLen)
	if fw.m.Flash().ReadAt(raw, fwimage.PartitionTableOffset) != nil {
		return nil
	}
	pt, err := fwimage.ParsePartitionTable(raw)
	if err != nil {
		return nil
	}
	return pt
}

// mountFS mounts the file system, formatting blank flash.
func (fw *demoFirmware) mountFS() error {
	addr, size, ok := fw.fsRegion()
	if !ok {
		fw.logf(logError, "mgos_vfs.c:284", "/: no file system partition")
		return nil
	}
	fs, formatted, err := mountFS(fw.m.Flash(), addr, size, fw.spend)
	if errors.Is(err, context.Canceled) {
		return err
	}
	if err != nil {
		fw.logf(logError, "mgos_vfs.c:284", "/: mount failed: %v", err)
		return nil
	}
	if formatted {
		fw.logf(logInfo, "mgos_vfs.c:275", "/: no file system at 0x%x, formatted", addr)
	}
	fw.fs = fs
	fw.logf(logInfo, "mgos_vfs.c:284", "/: MFS1 @ 0x%x, %d total, %d free", addr, fs.Size(), fs.Free())
	return nil
}

// loadConfig reads the levels' files: confN.json.try instead of
// confN.json for one boot (then deleted), and conf9.json last.
func (fw *demoFirmware) loadConfig() {
	if fw.fs == nil {
		return
	}
	for level := 1; level <= maxLevel; level++ {
		name := levelFileName(level)
		try := name + ".try"
		if _, ok := fw.fs.Stat(try); ok {
			fw.logf(logInfo, "mgos_sys_config.c:375", "Trying %s once; %s stays until the change is confirmed", try, name)
			fw.loadLevel(level, try)
			fw.fs.Remove(try)
			fw.trial.Store(true)
			fw.trialLevels = append(fw.trialLevels, level)
			continue
		}
		if _, ok := fw.fs.Stat(name); ok {
			fw.loadLevel(level, name)
		}
	}
}

func (fw *demoFirmware) loadLevel(level int, name string) {
	data, _, err := fw.fs.Read(name, 0, -1)
	if err == nil {
		err = fw.cfg.load(level, data)
	}
	if err != nil {
		fw.logf(logWarn, "mgos_sys_config.c:391", "%s: %v", name, err)
	}
}
