package demofw

import (
	"fmt"
	"strings"
)

// The configuration schema of the demo firmware: the keys Mongoose OS
// 2.20 with the wifi, mqtt, aws, rpc and update libraries defines, their
// types and compiled-in defaults (level 0).

type cfgType uint8

const (
	cfgBool cfgType = iota
	cfgInt
	cfgDouble
	cfgString
)

func (t cfgType) String() string {
	return [...]string{"bool", "int", "double", "string"}[t]
}

// cfgKey is one leaf of the schema. Defaults are bool, int64, float64 or
// string, matching typ.
type cfgKey struct {
	path string
	typ  cfgType
	def  any
}

// configSchema lists the keys in the order Config.Get prints them. Keys of
// one subtree must stay together: the tree printer relies on it.
func configSchema(chipKey string) []cfgKey {
	var s []cfgKey
	add := func(path string, def any) {
		var t cfgType
		switch v := def.(type) {
		case bool:
			t = cfgBool
		case int:
			t, def = cfgInt, int64(v)
		case float64:
			t = cfgDouble
		case string:
			t = cfgString
		default:
			panic("sim: bad config default for " + path)
		}
		s = append(s, cfgKey{path, t, def})
	}
	add("device.id", chipKey+"_??????")
	add("device.mac", "")
	add("device.public_key", "")
	add("device.sn", "")
	add("debug.level", 2)
	add("debug.file_level", "")
	add("debug.stdout_uart", 0)
	add("debug.stderr_uart", 0)
	add("debug.factory_reset_gpio", -1)
	add("sys.wdt_timeout", 30)
	add("sys.atca.enable", false)
	add("sys.atca.i2c_bus", 0)
	add("sys.atca.i2c_addr", 96)
	add("sys.atca.ecdh_slots_mask", 12)
	add("conf_acl", "*")
	add("i2c.enable", false)
	add("i2c.freq", 100000)
	sda, scl := 21, 22
	if chipKey == "esp8266" {
		sda, scl = 4, 5
	}
	add("i2c.sda_gpio", sda)
	add("i2c.scl_gpio", scl)
	add("wifi.ap.enable", true)
	add("wifi.ap.ssid", "Mongoose_??????")
	add("wifi.ap.pass", "Mongoose")
	add("wifi.ap.hidden", false)
	add("wifi.ap.channel", 6)
	add("wifi.ap.max_connections", 10)
	add("wifi.ap.ip", "192.168.4.1")
	add("wifi.ap.netmask", "255.255.255.0")
	add("wifi.ap.gw", "192.168.4.1")
	add("wifi.ap.dhcp_start", "192.168.4.2")
	add("wifi.ap.dhcp_end", "192.168.4.100")
	add("wifi.ap.disable_after", 0)
	for _, sta := range []string{"sta", "sta1", "sta2"} {
		add("wifi."+sta+".enable", false)
		add("wifi."+sta+".ssid", "")
		add("wifi."+sta+".pass", "")
		add("wifi."+sta+".user", "")
		add("wifi."+sta+".ca_cert", "")
		add("wifi."+sta+".ip", "")
		add("wifi."+sta+".netmask", "")
		add("wifi."+sta+".gw", "")
		add("wifi."+sta+".nameserver", "")
		add("wifi."+sta+".dhcp_hostname", "")
	}
	add("wifi.sta_cfg_idx", 0)
	add("wifi.sta_connect_timeout", 15)
	add("mqtt.enable", false)
	add("mqtt.server", "iot.eclipse.org:1883")
	add("mqtt.client_id", "")
	add("mqtt.user", "")
	add("mqtt.pass", "")
	add("mqtt.reconnect_timeout_min", 2.0)
	add("mqtt.reconnect_timeout_max", 60.0)
	add("mqtt.ssl_cert", "")
	add("mqtt.ssl_key", "")
	add("mqtt.ssl_ca_cert", "")
	add("mqtt.ssl_cipher_suites", "")
	add("mqtt.clean_session", true)
	add("mqtt.keep_alive", 60)
	add("mqtt.will_topic", "")
	add("mqtt.will_message", "")
	add("mqtt.max_qos", 2)
	add("aws.thing_name", "")
	add("aws.greengrass.enable", false)
	add("rpc.enable", true)
	add("rpc.max_frame_size", 4096)
	add("rpc.max_queue_length", 25)
	add("rpc.acl", "")
	add("rpc.auth_domain", "RPC")
	add("rpc.auth_file", "")
	add("rpc.auth_algo", 0)
	add("rpc.uart.uart_no", 0)
	add("rpc.uart.baud_rate", 115200)
	add("rpc.uart.fc_type", 2)
	add("rpc.uart.dst", "")
	add("update.timeout", 600)
	add("update.commit_timeout", 0)
	for i := range 8 {
		add(fmt.Sprintf("update.key%d", i), "")
	}
	add("update.sig_req_mask", -1)
	return s
}

// macPlaceholderKeys are the strings whose "??????" Mongoose OS fills from
// the MAC address at boot, whichever level set them.
var macPlaceholderKeys = map[string]bool{"device.id": true, "wifi.ap.ssid": true}

// expandMAC fills a run of an even number of '?' from the right with the
// MAC's last bytes in uppercase hex: "esp32_??????" -> "esp32_A1B2C3".
func expandMAC(s string, mac [6]byte) string {
	i := strings.Index(s, "??")
	if i < 0 {
		return s
	}
	n := 0
	for i+n < len(s) && s[i+n] == '?' {
		n++
	}
	n &^= 1
	if n > 12 {
		n = 12
	}
	hex := fmt.Sprintf("%02X", mac[:])
	return s[:i] + hex[12-n:] + s[i+n:]
}
