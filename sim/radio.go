package sim

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// The radio environment of a virtual device: the Wi-Fi networks around it,
// which the firmware it runs can scan and join. It belongs to the device's
// surroundings (the sim:// address's wifi= option), not to any firmware.

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
