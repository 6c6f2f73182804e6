package demofw

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/sim"
)

// Improv Wi-Fi over serial (improv-wifi.com/serial), as the demo's
// "mos-demo-improv" build speaks it on UART0, next to RPC frames and the
// log. Written from the specification:
//
//	packet  "IMPROV", version 1, type, length, data (length bytes),
//	        checksum (the sum of all the bytes before it, mod 256)
//	types   1 current state, 2 error state, 3 RPC command, 4 RPC result
//	RPC     command, data length, data; a result is command, data length,
//	        then strings, each a length byte and its bytes
//
// Commands: 1 Wi-Fi settings (SSID length and bytes, password length and
// bytes), 2 current state, 3 device info (firmware, version, chip family,
// device name), 4 scanned networks (one result per network: SSID, RSSI,
// "YES"/"NO" for security; then an empty result). States: 2 authorized
// (serial needs no authorization), 3 provisioning, 4 provisioned, whose
// RPC result carries the device's URL. Errors: 1 invalid RPC packet, 2
// unknown RPC command, 3 unable to connect, 0xFF unknown.
//
// Sharing the UART with RPC: the firmware's main loop hands every received
// byte to the Improv receiver first (improvRX). The six header bytes
// "IMPROV" go on to RPC framing as well, where they are harmless letters
// that a frame's search for `{` skips; from the version byte on, a packet's
// bytes are the receiver's alone, so a length of 10, a checksum >= 0x80 or
// an SSID holding `{`, `"""` or a newline never reach RPC framing. (A
// packet sent into the middle of an RPC frame would still spoil that
// frame with its header; hosts write whole packets and frames.) Replies
// are whole console writes ended by '\n', so they never land inside a log
// line or a frame, and a host reading lines finds them at a line start.
//
// Flow control: the Improv build turns XON/XOFF off by default
// (rpc.uart.fc_type 0, as its mos.yml would): the host's packets carry
// arbitrary bytes (lengths of 17 or 19, checksums) that the UART's
// software flow control would swallow as 0x11/0x13.
//
// Wi-Fi settings are handled in the main loop, as a blocking step: the
// station tries to join with the model's real association and DHCP times
// and disconnect reasons (wifi.go); RPC frames arriving meanwhile wait
// in the UART FIFO. Joined, the firmware saves wifi.sta.enable, .ssid and
// .pass in conf9.json and reports "provisioned" with http://IP/; failed,
// it reports "unable to connect" and keeps its saved configuration.

const (
	improvHeader  = "IMPROV"
	improvVersion = 1

	improvTypeState  = 0x01
	improvTypeError  = 0x02
	improvTypeRPC    = 0x03
	improvTypeResult = 0x04

	improvCmdWiFi  = 0x01
	improvCmdState = 0x02
	improvCmdInfo  = 0x03
	improvCmdScan  = 0x04

	improvAuthorized   = 0x02
	improvProvisioning = 0x03
	improvProvisioned  = 0x04

	improvErrInvalid = 0x01
	improvErrUnknown = 0x02
	improvErrConnect = 0x03
	improvErrOther   = 0xFF

	// improvGap: a packet whose bytes stop coming for this long is
	// dropped, so that a host that died mid-packet does not swallow the
	// next RPC frame.
	improvGap = 500 * time.Millisecond
)

// improvDevice is the Improv side of one run of the firmware.
type improvDevice struct {
	// the packet being received: only the main loop touches these
	pkt  []byte
	last time.Time

	// tookWiFi: Improv gave the station new settings, so the retry loop
	// of the configuration's network (startWiFi) gives up.
	tookWiFi atomic.Bool
}

// improvSetup prepares an Improv build, before the configuration loads
// and anything runs in the background.
func (fw *demoFirmware) improvSetup() {
	if !fw.app.improv {
		return
	}
	fw.improv = &improvDevice{}
	// the build's default; a user may still turn XON/XOFF on (and lose
	// Improv packets that carry 0x11 or 0x13)
	fw.cfg.schema[fw.cfg.index["rpc.uart.fc_type"]].def = int64(0)
}

// improvTookWiFi reports whether Improv has given the station other
// settings than the configuration's.
func (fw *demoFirmware) improvTookWiFi() bool {
	return fw.improv != nil && fw.improv.tookWiFi.Load()
}

// improvRX is the receive hook: it reports whether the bytes (the main
// loop passes one at a time) belong to an Improv packet, which RPC
// framing must then not see.
func (fw *demoFirmware) improvRX(p []byte) bool {
	if fw.improv == nil || len(p) == 0 {
		return false
	}
	took := true
	for _, b := range p {
		took = fw.improvByte(b) && took
	}
	return took
}

func (fw *demoFirmware) improvByte(b byte) bool {
	im := fw.improv
	now := time.Now()
	if len(im.pkt) > 0 && now.Sub(im.last) > improvGap {
		im.pkt = im.pkt[:0]
	}
	im.last = now
	n := len(im.pkt)
	switch {
	case n < len(improvHeader) && b == improvHeader[n]:
		im.pkt = append(im.pkt, b)
		return false
	case n < len(improvHeader) || n == len(improvHeader) && b != improvVersion:
		// not a packet (or another version): start over; "IMPROV" has
		// no repeated prefix, so only an 'I' can begin the next one
		im.pkt = im.pkt[:0]
		if b == improvHeader[0] {
			im.pkt = append(im.pkt, b)
		}
		return false
	}
	im.pkt = append(im.pkt, b)
	if n+1 < 9 || n+1 < 9+int(im.pkt[8])+1 {
		return true
	}
	pkt := im.pkt
	im.pkt = nil
	fw.improvPacket(pkt)
	return true
}

// improvPacket handles a whole received packet.
func (fw *demoFirmware) improvPacket(pkt []byte) {
	var sum byte
	for _, c := range pkt[:len(pkt)-1] {
		sum += c
	}
	if sum != pkt[len(pkt)-1] {
		fw.logf(logWarn, "mgos_improv.c:212", "Improv: bad checksum 0x%02x (want 0x%02x)", pkt[len(pkt)-1], sum)
		fw.improvError(improvErrInvalid)
		return
	}
	typ, data := pkt[7], pkt[9:len(pkt)-1]
	if typ != improvTypeRPC {
		fw.logf(logDebug, "mgos_improv.c:218", "Improv: ignoring packet type %d", typ)
		return
	}
	if len(data) < 2 || int(data[1]) != len(data)-2 {
		fw.improvError(improvErrInvalid)
		return
	}
	args := data[2:]
	switch data[0] {
	case improvCmdWiFi:
		ssid, pass, ok := improvWiFiArgs(args)
		if !ok {
			fw.improvError(improvErrInvalid)
			return
		}
		fw.improvProvision(ssid, pass)
	case improvCmdState:
		fw.improvCurrentState()
	case improvCmdInfo:
		fw.improvResult(improvCmdInfo, fw.app.name, fw.app.version, fw.chip.Name, fw.deviceID())
	case improvCmdScan:
		fw.improvScan()
	default:
		fw.improvError(improvErrUnknown)
	}
}

// improvWiFiArgs reads the Wi-Fi settings command's data: SSID length,
// SSID, password length, password, nothing after.
func improvWiFiArgs(a []byte) (ssid, pass string, ok bool) {
	if len(a) < 1 {
		return "", "", false
	}
	sl := int(a[0])
	if sl < 1 || sl > 32 || len(a) < 1+sl+1 {
		return "", "", false
	}
	pl := int(a[1+sl])
	if pl > 64 || len(a) != 1+sl+1+pl {
		return "", "", false
	}
	return string(a[1 : 1+sl]), string(a[2+sl:]), true
}

// improvCurrentState answers "request current state": provisioned while
// the station has an address (with the URL, as after provisioning),
// authorized otherwise.
func (fw *demoFirmware) improvCurrentState() {
	status, ip, _ := fw.wifi.get()
	if status != "got ip" {
		fw.improvState(improvAuthorized)
		return
	}
	fw.improvState(improvProvisioned)
	fw.improvResult(improvCmdState, improvURL(ip))
}

func improvURL(ip string) string { return "http://" + ip + "/" }

// improvProvision joins the network and saves the settings if that works.
func (fw *demoFirmware) improvProvision(ssid, pass string) {
	fw.logf(logInfo, "mgos_improv.c:143", "Improv: Wi-Fi settings received, SSID %s", ssid)
	fw.improv.tookWiFi.Store(true)
	fw.improvState(improvProvisioning)
	fw.wifiAttemptLog(ssid, 1)
	if !fw.connect(ssid, pass, fw.cfg.String("wifi.sta.ip"), fw.cfg.String("wifi.sta.gw")) {
		if fw.ctx.Err() != nil {
			return // reset meanwhile
		}
		fw.logf(logError, "mgos_improv.c:160", "Improv: unable to connect to %s", ssid)
		fw.improvState(improvAuthorized)
		fw.improvError(improvErrConnect)
		return
	}
	fw.task.Lock()
	fw.cfg.set(userLevel, map[string]any{"wifi.sta.enable": true, "wifi.sta.ssid": ssid, "wifi.sta.pass": pass})
	err := fw.saveConfig(userLevel, false)
	fw.task.Unlock()
	if err != nil {
		fw.logf(logError, "mgos_improv.c:168", "Improv: error saving config: %v", err)
		fw.improvError(improvErrOther)
		return
	}
	_, ip, _ := fw.wifi.get()
	fw.logf(logInfo, "mgos_improv.c:172", "Improv: provisioned, %s", improvURL(ip))
	fw.improvState(improvProvisioned)
	fw.improvResult(improvCmdWiFi, improvURL(ip))
}

// improvScan answers "request scanned networks" when the scan is done:
// one result per network name (its strongest access point), strongest
// first, then an empty result. The main loop goes on meanwhile.
func (fw *demoFirmware) improvScan() {
	aps := slices.Clone(fw.env)
	slices.SortStableFunc(aps, func(a, b sim.AccessPoint) int { return b.RSSI - a.RSSI })
	fw.goAsync(func() {
		if fw.pause(wifiScanTime) != nil {
			return
		}
		seen := map[string]bool{}
		for _, ap := range aps {
			if ap.SSID == "" || seen[ap.SSID] {
				continue
			}
			seen[ap.SSID] = true
			secured := "YES"
			if ap.Auth == sim.WiFiOpen {
				secured = "NO"
			}
			if fw.improvResult(improvCmdScan, ap.SSID, strconv.Itoa(ap.RSSI), secured) != nil {
				return
			}
		}
		fw.improvResult(improvCmdScan)
	})
}

func (fw *demoFirmware) improvState(state byte) error {
	return fw.improvSend(improvTypeState, []byte{state})
}

func (fw *demoFirmware) improvError(code byte) error {
	return fw.improvSend(improvTypeError, []byte{code})
}

// improvResult sends an RPC result: command, length, then the strings.
func (fw *demoFirmware) improvResult(cmd byte, strs ...string) error {
	data := []byte{cmd, 0}
	for _, s := range strs {
		// a packet holds at most 255 data bytes: cut what does not fit
		if len(data) >= 255 {
			break
		}
		s = s[:min(len(s), 255-len(data)-1)]
		data = append(data, byte(len(s)))
		data = append(data, s...)
	}
	data[1] = byte(len(data) - 2)
	return fw.improvSend(improvTypeResult, data)
}

// improvSend writes one packet, ended by a newline (as the Improv
// clients send theirs) so that a host reading lines sees it alone.
func (fw *demoFirmware) improvSend(typ byte, data []byte) error {
	if len(data) > 255 {
		panic(fmt.Sprintf("sim: Improv packet of %d bytes", len(data)))
	}
	pkt := make([]byte, 0, len(improvHeader)+3+len(data)+2)
	pkt = append(pkt, improvHeader...)
	pkt = append(pkt, improvVersion, typ, byte(len(data)))
	pkt = append(pkt, data...)
	var sum byte
	for _, c := range pkt {
		sum += c
	}
	pkt = append(pkt, sum, '\n')
	return fw.con.write(pkt)
}
