// Package demofw is the demo firmware: what the project's mos-demo images
// (firmware-images/) do when the virtual device (package sim) boots them.
// It behaves as a Mongoose OS 2.20 firmware with the rpc-uart,
// rpc-service-config, -fs and wifi libraries: the boot log, RPC over UART0,
// the system configuration, a file system in flash and a Wi-Fi station in
// the environment of sim.Config.WiFi.
//
// A device runs it when it is attached at construction:
//
//	sim.New(sim.Config{Chip: chip, Firmware: demofw.New()})
//	sim.Open(address, demofw.New)
package demofw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/atca"
)

// errTimeout is a UART read whose deadline passed.
var errTimeout = sim.ErrReadTimeout

// The Mongoose OS the demo claims to be built with.
const (
	mgosVersion = "2.20.0"
	mgosBuildID = "20220601-120000/2.20.0-g0a1b2c3"
)

// fastScale shortens the asynchronous waits (Wi-Fi, scan, reboot delay) in
// fast mode. They stay real waits so that their order is kept: a test sees
// "connecting" before "ready".
const fastScale = 50

// demoApp is what the image says about itself.
type demoApp struct {
	name, version string
	buildID       string // "20250101-000000/1.0.0-demo", as the bundle's build_id
	// improv marks the "mos-demo-improv" build, which also speaks the
	// Improv serial protocol (see improvRX).
	improv bool
}

// esp8266DemoStamp is the build time of ESP8266 demo images, which carry
// no app descriptor to read it from.
const esp8266DemoStamp = "20250101-000000"

// Firmware is the demo firmware of one virtual device. What it keeps
// across reboots (the UART receiver's statistics) is that device's; all
// other state lives in flash, as on a real board.
type Firmware struct {
	mu   sync.Mutex
	uart sim.UARTStats
	// crashed: the last run ended in an exception (Sys.Crash), which the
	// ESP8266 SDK reports as reset reason 2 at the next boot
	crashed bool
}

// New makes the demo firmware for one device (sim.Config.Firmware).
func New() sim.Firmware { return &Firmware{} }

// Recognises reports whether img is a demo image.
func (f *Firmware) Recognises(img *fwimage.Image) bool {
	_, ok := demoAppOf(img)
	return ok
}

// Run boots the demo in app until the chip is reset or the demo restarts
// itself (sim.ErrRestart).
func (f *Firmware) Run(m *sim.Machine, app sim.App) error {
	a, ok := demoAppOf(app.Image)
	if !ok {
		return fmt.Errorf("demofw: the app at 0x%x is not a demo image", app.Offset)
	}
	return runDemo(m, f, a, app.Offset)
}

// UARTStats reports the receive side of the demo's UART since the
// device was built.
func (f *Firmware) UARTStats() sim.UARTStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.uart
}

// demoAppOf recognises a demo image: on the ESP32 family by the app
// descriptor's project name, on the ESP8266 (no descriptor) by the text
// "mos-demo 1.0.0\0" that starts the first segment.
func demoAppOf(img *fwimage.Image) (demoApp, bool) {
	var app demoApp
	stamp := esp8266DemoStamp
	switch {
	case img.AppDesc != nil:
		app.name, app.version = img.AppDesc.ProjectName, img.AppDesc.Version
		if t, err := time.Parse("Jan _2 2006 15:04:05", img.AppDesc.Date+" "+img.AppDesc.Time); err == nil {
			stamp = t.Format("20060102-150405")
		}
	case img.IsESP8266() && len(img.Segments) > 0:
		text, _, _ := bytes.Cut(img.Segments[0].Data, []byte{0})
		app.name, app.version, _ = strings.Cut(string(text), " ")
	}
	if app.name != "mos-demo" && !strings.HasPrefix(app.name, "mos-demo-") || app.version == "" {
		return demoApp{}, false
	}
	app.improv = app.name == "mos-demo-improv"
	app.buildID = stamp + "/" + app.version + "-" + strings.TrimPrefix(app.name, "mos-")
	return app, true
}

// demoFirmware is one run of the demo, from boot to the next reset.
type demoFirmware struct {
	m       *sim.Machine
	ctx     context.Context // ends at reset, or when the firmware restarts itself
	app     demoApp
	appAddr uint32 // where the boot chain loaded the app from
	chip    *chips.Chip
	mac     [6]byte
	dev     *Firmware // what survives reboots
	start   time.Time
	ram     ramInfo
	env     []sim.AccessPoint

	cfg  *sysConfig
	fs   *fileStore // nil: no file system partition
	con  *console
	rx   *uartRX // nil until the RPC channel is up
	link rpcLink
	wifi wifiSTA
	// improv: the Improv receiver of an Improv build (improv.go)
	improv *improvDevice

	// extraMethods: RPC methods registered at init by the identity
	// libraries (identity.go)
	extraMethods []rpcMethod
	// atca is the crypto chip when the atca library found it at init
	atca *atca.Chip
	// mqtt is the MQTT client's state (mqtt.go)
	mqtt mqttState

	// trial: this boot runs settings saved with try_once (confN.json.try),
	// not yet committed; see trial.go.
	trial       atomic.Bool
	trialLevels []int // the levels loaded from .try files

	// task is the firmware's main task: RPC handlers and event callbacks
	// run one at a time, as on Mongoose OS's single mgos task.
	task sync.Mutex

	// rebootAt is when a requested restart happens (zero: none); only the
	// RPC loop touches it.
	rebootAt time.Time
	// selfRestart: a background event restarted the chip (cancel ended
	// the run), so the run ends with a software reset.
	selfRestart atomic.Bool
	cancel      context.CancelFunc
	wg          sync.WaitGroup // background work: Wi-Fi, scans, the RX interrupt
}

func runDemo(m *sim.Machine, dev *Firmware, app demoApp, appAddr uint32) error {
	ctx, cancel := context.WithCancel(m.Context())
	fw := &demoFirmware{
		m: m, ctx: ctx, cancel: cancel, app: app, appAddr: appAddr, chip: m.Chip(), mac: m.MAC(),
		dev: dev, start: time.Now(), ram: ramOf(m.Chip()), env: m.WiFi(),
	}
	err := func() error {
		defer fw.wg.Wait() // nothing of this run may print into the next boot
		defer cancel()
		return fw.run()
	}()
	if fw.selfRestart.Load() && m.Context().Err() == nil {
		return sim.ErrRestart
	}
	return err
}

func (fw *demoFirmware) run() error {
	m := fw.m
	// The app sets up UART0 at 115200 (the ESP8266's ROM ran at 74880)
	// and starts with an empty receive FIFO.
	m.SetUARTBaud(115200)
	m.DiscardRX()
	fw.con = newConsole(m, fw.ctx)
	fw.cfg = newSysConfig(fw.chip.Key, fw.mac)
	fw.improvSetup()
	if err := fw.pause(0); err != nil {
		return err
	}
	fw.logBanner()
	if err := fw.mountFS(); err != nil {
		return err
	}
	fw.loadConfig()
	fw.identityInit()
	fw.logf(logInfo, "mgos_sys_config.c:470", "MAC: %s", macString(fw.mac))
	if mode := fw.wifiMode(); mode != "" {
		fw.logf(logInfo, "mgos_wifi.c:360", "WiFi mode: %s", mode)
	}
	fw.startWiFi()
	flow := fw.cfg.Int("rpc.uart.fc_type") == 2
	fw.rx = newUARTRX(m, fw.ctx, fw.dev, flow, fw.con)
	fw.logf(logInfo, "mgos_rpc_channel_uart.c:320", "%s UART0", fw.channelAddr())
	if baud := fw.cfg.Int("rpc.uart.baud_rate"); baud > 0 && fw.cfg.Int("rpc.uart.uart_no") == 0 {
		m.SetUARTBaud(baud)
	}
	if err := fw.m.Sleep(100 * time.Millisecond); err != nil { // the rest of init
		return err
	}
	fw.logf(logInfo, "mgos_init.c:33", "Init done, RAM: %d total, %d free, %d min free", fw.ram.total, fw.ram.free, fw.ram.minFree)
	fw.mqttStart()
	if !m.Fast() {
		fw.goAsync(fw.rx.isr)
	}
	return fw.serve()
}

func (fw *demoFirmware) deviceID() string { return fw.cfg.String("device.id") }

// serve is the firmware's main loop: bytes from the UART into RPC frames,
// until a reset or a requested restart.
func (fw *demoFirmware) serve() error {
	var framer rpcFramer
	// a frame may change rpc.max_frame_size: read it again after each one
	limit := fw.cfg.Int("rpc.max_frame_size") + 6
	for {
		b, err := fw.rx.next(fw.rebootAt)
		if errors.Is(err, errTimeout) && !fw.rebootAt.IsZero() && !time.Now().Before(fw.rebootAt) {
			return fw.restart()
		}
		if err != nil && !errors.Is(err, errTimeout) {
			return err
		}
		if err != nil {
			continue
		}
		if fw.improv != nil && fw.improvRX([]byte{b}) {
			continue // part of an Improv packet
		}
		frame, quoted, done, tooBig := framer.push(b, limit)
		if tooBig {
			fw.logf(logError, "mgos_rpc_channel_uart.c:163", "Incoming frame is too big, dropping.")
		}
		if done {
			if err := fw.onFrame(frame, quoted); err != nil {
				return err
			}
			limit = fw.cfg.Int("rpc.max_frame_size") + 6
		}
	}
}

// scheduleReboot asks for a restart after d (mgos_system_restart_after).
func (fw *demoFirmware) scheduleReboot(d time.Duration) {
	fw.rebootAt = time.Now().Add(fw.async(d))
}

// restart is the software reset: the firmware's run ends and the chip
// boots again through its ROM, which reports a software reset.
func (fw *demoFirmware) restart() error { return sim.ErrRestart }

// restartNow is a software reset from outside the RPC loop (an event
// callback): the run ends at once and the chip boots again.
func (fw *demoFirmware) restartNow() {
	fw.selfRestart.Store(true)
	fw.cancel()
}

// Log levels of debug.level.
const (
	logError = 0
	logWarn  = 1
	logInfo  = 2
	logDebug = 3
)

// logf prints a Mongoose OS log line: "file.c:LINE" padded to 24 columns
// (the file name cut so that one space remains), the message, '\n'.
func (fw *demoFirmware) logf(level int, where, format string, args ...any) {
	if fw.cfg != nil && level > fw.cfg.Int("debug.level") {
		return
	}
	fw.con.write([]byte(logPrefix(where) + fmt.Sprintf(format, args...) + "\n"))
}

func logPrefix(where string) string {
	const width = 24
	if len(where) >= width {
		i := strings.LastIndexByte(where, ':')
		line := where[i:]
		where = where[:width-1-len(line)] + line
	}
	return where + strings.Repeat(" ", width-len(where))
}

// async is a background wait as the firmware sees it: shortened in fast
// mode.
func (fw *demoFirmware) async(d time.Duration) time.Duration {
	if fw.m.Fast() {
		return d / fastScale
	}
	return d
}

// pause waits d (shortened in fast mode); an error means the run ended.
func (fw *demoFirmware) pause(d time.Duration) error {
	return sleepCtx(fw.ctx, fw.async(d))
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spend is the firmware busy for d, e.g. waiting for the flash: the UART
// keeps receiving meanwhile, nothing drains it.
func (fw *demoFirmware) spend(d time.Duration) error {
	if fw.rx != nil {
		return fw.rx.busy(d)
	}
	return fw.m.Sleep(d)
}

// goAsync runs f in the background for the length of this run.
func (fw *demoFirmware) goAsync(f func()) {
	fw.wg.Add(1)
	go func() {
		defer fw.wg.Done()
		f()
	}()
}
