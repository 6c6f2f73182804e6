package sim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WiFiAuth is an access point's security, numbered as Mongoose OS's
// Wifi.Scan reports it ("auth").
type WiFiAuth int

const (
	WiFiOpen WiFiAuth = iota
	WiFiWEP
	WiFiWPA
	WiFiWPA2
	WiFiWPAWPA2
	WiFiWPA2Enterprise
	WiFiWPA3
	WiFiWPA2WPA3
)

var wifiAuthNames = []string{"open", "wep", "wpa", "wpa2", "wpa-wpa2", "wpa2-enterprise", "wpa3", "wpa2-wpa3"}

func (a WiFiAuth) String() string {
	if a >= 0 && int(a) < len(wifiAuthNames) {
		return wifiAuthNames[a]
	}
	return strconv.Itoa(int(a))
}

// AccessPoint is a Wi-Fi network in the virtual device's surroundings.
type AccessPoint struct {
	SSID     string
	Password string // ignored for open networks
	Auth     WiFiAuth
	RSSI     int     // dBm
	Channel  int     // 1..14
	BSSID    [6]byte // zero: derived from the SSID
}

// MACAddr is the access point's BSSID, a locally administered address
// derived from the SSID unless one is set.
func (ap AccessPoint) MACAddr() [6]byte {
	if ap.BSSID != ([6]byte{}) {
		return ap.BSSID
	}
	h := fnv.New32a()
	h.Write([]byte(ap.SSID))
	s := h.Sum32()
	return [6]byte{0x02, 0x6D, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

// DefaultWiFi is the environment of a device without a WiFi setting: the
// demo network, an open café network and a WPA3 neighbour.
func DefaultWiFi() []AccessPoint {
	return []AccessPoint{
		{SSID: "mos-demo-net", Password: "demo-pass-1234", Auth: WiFiWPA2, RSSI: -52, Channel: 6},
		{SSID: "CoffeeShop", Auth: WiFiOpen, RSSI: -71, Channel: 11},
		{SSID: "Neighbor", Password: "n3ighb0ur-only", Auth: WiFiWPA3, RSSI: -83, Channel: 1},
	}
}

// ParseWiFi reads the wifi= option of a sim:// address: "none" for no
// networks, or comma-separated SSID:SECURITY[:RSSI[:CHANNEL[:PASSWORD]]],
// where SECURITY is open, wep, wpa, wpa2, wpa-wpa2, wpa2-enterprise, wpa3
// or wpa2-wpa3. The password comes last so that it may contain colons;
// SSIDs cannot. RSSI defaults to -60, the channel to 1.
func ParseWiFi(s string) ([]AccessPoint, error) {
	aps := []AccessPoint{} // non-nil: an empty environment, not the default
	if s == "none" || s == "" {
		return aps, nil
	}
	for _, entry := range strings.Split(s, ",") {
		f := strings.SplitN(entry, ":", 5)
		if len(f) < 2 || f[0] == "" {
			return nil, fmt.Errorf("sim: bad wifi network %q (want SSID:SECURITY[:RSSI[:CHANNEL[:PASSWORD]]])", entry)
		}
		auth := slices.Index(wifiAuthNames, strings.ToLower(f[1]))
		if auth < 0 {
			return nil, fmt.Errorf("sim: wifi network %q: unknown security %q (%s)", f[0], f[1], strings.Join(wifiAuthNames, ", "))
		}
		ap := AccessPoint{SSID: f[0], Auth: WiFiAuth(auth), RSSI: -60, Channel: 1}
		if len(f) > 2 && f[2] != "" {
			n, err := strconv.Atoi(f[2])
			if err != nil || n > 0 || n < -100 {
				return nil, fmt.Errorf("sim: wifi network %q: bad RSSI %q (-100..0 dBm)", f[0], f[2])
			}
			ap.RSSI = n
		}
		if len(f) > 3 && f[3] != "" {
			n, err := strconv.Atoi(f[3])
			if err != nil || n < 1 || n > 14 {
				return nil, fmt.Errorf("sim: wifi network %q: bad channel %q (1..14)", f[0], f[3])
			}
			ap.Channel = n
		}
		if len(f) > 4 {
			ap.Password = f[4]
		}
		if ap.Auth != WiFiOpen && ap.Password == "" {
			return nil, fmt.Errorf("sim: wifi network %q: %s needs a password", f[0], ap.Auth)
		}
		aps = append(aps, ap)
	}
	return aps, nil
}

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
		// like mgos, it keeps trying until it is connected
		for att := 2; !fw.connect(ssid, pass, static, gw); att++ {
			if fw.pause(wifiRetryTime) != nil || fw.improvTookWiFi() {
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
func (fw *demoFirmware) findAP(ssid string) (*AccessPoint, int) {
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

func (fw *demoFirmware) authOK(ap *AccessPoint, pass string) bool {
	switch ap.Auth {
	case WiFiOpen:
		return true
	case WiFiWPA2Enterprise:
		return false // needs EAP credentials the demo does not model
	case WiFiWPA3:
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
		SSID    string   `json:"ssid"`
		BSSID   string   `json:"bssid"`
		Auth    WiFiAuth `json:"auth"`
		Channel int      `json:"channel"`
		RSSI    int      `json:"rssi"`
	}
	aps := slices.Clone(fw.env)
	slices.SortStableFunc(aps, func(a, b AccessPoint) int { return b.RSSI - a.RSSI })
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
