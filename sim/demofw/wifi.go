package demofw

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mos-tool/mos/sim"
)

// How long the station takes, in real time; fast mode divides them by
// fastScale and stays asynchronous.
const (
	wifiAssocTime = 1500 * time.Millisecond // scan, authenticate, associate, 4-way handshake
	wifiDHCPTime  = 800 * time.Millisecond
	wifiRetryTime = 5 * time.Second // after a failed attempt
	wifiScanTime  = 1600 * time.Millisecond
)

// Station disconnect reasons (the SDK's codes, as Mongoose OS logs them).
const (
	wifiReasonNoAP       = 201
	wifiReasonAuthFailed = 202
)

// wifiSTA is the station's state as Sys.GetInfo reports it.
type wifiSTA struct {
	mu     sync.Mutex
	status string // "disconnected", "connecting", "connected", "got ip"
	ip     string
	ssid   string
}

func (w *wifiSTA) set(status, ip, ssid string) {
	w.mu.Lock()
	w.status, w.ip, w.ssid = status, ip, ssid
	w.mu.Unlock()
}

func (w *wifiSTA) get() (status, ip, ssid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status, w.ip, w.ssid
}

// startWiFi begins connecting the station when it is configured. The
// first attempt's lines are printed during init, as the firmware does;
// the rest happens in the background.
func (fw *demoFirmware) startWiFi() {
	fw.wifi.set("disconnected", "", "")
	ssid, pass := fw.cfg.String("wifi.sta.ssid"), fw.cfg.String("wifi.sta.pass")
	if !fw.cfg.Bool("wifi.sta.enable") || ssid == "" {
		return
	}
	static := fw.cfg.String("wifi.sta.ip")
	gw := fw.cfg.String("wifi.sta.gw")
	fw.wifiAttemptLog(ssid, 1)
	fw.goAsync(func() {
		// like mgos, it keeps trying until it is connected, unless the
		// settings are on trial: their first attempt decides (trial.go)
		for att := 2; ; att++ {
			ok := fw.connect(ssid, pass, static, gw)
			if fw.ctx.Err() != nil {
				return
			}
			if fw.trial.Load() && fw.settleTrial(ok) {
				return // reverting
			}
			if ok || fw.pause(wifiRetryTime) != nil || fw.improvTookWiFi() {
				return
			}
			fw.wifiAttemptLog(ssid, att)
		}
	})
}

// wifiAttemptLog starts an attempt: which AP, then "connecting".
func (fw *demoFirmware) wifiAttemptLog(ssid string, att int) {
	if ap, _ := fw.findAP(ssid); ap != nil {
		fw.logf(logInfo, "mgos_wifi_sta.c:611", "Trying %s AP %s ch %d RSSI %d cfg 0 att %d", ssid, macString(ap.MACAddr()), ap.Channel, ap.RSSI, att)
	} else {
		fw.logf(logInfo, "mgos_wifi_sta.c:611", "Trying %s AP any ch 0 RSSI 0 cfg 0 att %d", ssid, att)
	}
	fw.wifi.set("connecting", "", "")
	fw.logf(logInfo, "mgos_net.c:89", "WiFi STA: connecting")
}

// connect waits out association and DHCP and reports whether the station
// got an address.
func (fw *demoFirmware) connect(ssid, pass, static, gw string) bool {
	if fw.pause(wifiAssocTime) != nil {
		return false
	}
	ap, idx := fw.findAP(ssid)
	reason := 0
	switch {
	case ap == nil:
		reason = wifiReasonNoAP
	case !fw.authOK(ap, pass):
		reason = wifiReasonAuthFailed
	}
	if reason != 0 {
		fw.wifi.set("disconnected", "", "")
		fw.logf(logInfo, "mgos_wifi.c:70", "WiFi STA: Disconnected, reason: %d", reason)
		fw.logf(logInfo, "mgos_net.c:84", "WiFi STA: disconnected")
		fw.logf(logError, "mgos_wifi_sta.c:638", "Connect failed")
		return false
	}
	fw.wifi.set("connected", "", ssid)
	fw.logf(logInfo, "mgos_wifi.c:83", "WiFi STA: Connected, BSSID %s ch %d RSSI %d", macString(ap.MACAddr()), ap.Channel, ap.RSSI)
	ip := static
	if ip == "" {
		if fw.pause(wifiDHCPTime) != nil {
			return false
		}
		// each network is its own /24; the host part follows the MAC
		ip = fmt.Sprintf("192.168.%d.%d", 1+idx, 100+int(fw.mac[5])%100)
		gw = fmt.Sprintf("192.168.%d.1", 1+idx)
	} else if gw == "" {
		gw = "0.0.0.0"
	}
	fw.wifi.set("got ip", ip, ssid)
	fw.logf(logInfo, "mgos_net.c:103", "WiFi STA: ready, IP %s, GW %s, DNS %s, NTP 0.0.0.0", ip, gw, gw)
	return true
}

// findAP returns the strongest access point with the SSID and its index
// in the environment.
func (fw *demoFirmware) findAP(ssid string) (*sim.AccessPoint, int) {
	best := -1
	for i, ap := range fw.env {
		if ap.SSID == ssid && (best < 0 || ap.RSSI > fw.env[best].RSSI) {
			best = i
		}
	}
	if best < 0 {
		return nil, -1
	}
	return &fw.env[best], best
}

func (fw *demoFirmware) authOK(ap *sim.AccessPoint, pass string) bool {
	switch ap.Auth {
	case sim.WiFiOpen:
		return true
	case sim.WiFiWPA2Enterprise:
		return false // needs EAP credentials the demo does not model
	case sim.WiFiWPA3:
		if fw.chip.IsESP8266() {
			return false // the ESP8266 has no SAE
		}
	}
	return pass == ap.Password
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// wifiScan answers Wifi.Scan when the scan is done, strongest first; the
// firmware serves other requests meanwhile.
func wifiScan(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	type result struct {
		SSID    string       `json:"ssid"`
		BSSID   string       `json:"bssid"`
		Auth    sim.WiFiAuth `json:"auth"`
		Channel int          `json:"channel"`
		RSSI    int          `json:"rssi"`
	}
	aps := slices.Clone(fw.env)
	slices.SortStableFunc(aps, func(a, b sim.AccessPoint) int { return b.RSSI - a.RSSI })
	list := make([]result, 0, len(aps))
	for _, ap := range aps {
		list = append(list, result{ap.SSID, macString(ap.MACAddr()), ap.Auth, ap.Channel, ap.RSSI})
	}
	fw.goAsync(func() {
		if fw.pause(wifiScanTime) == nil {
			fw.reply(call, printfJSON(list), nil)
		}
	})
	return nil, errDeferred
}
