package provision

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFirmware is just enough Mongoose OS for the helpers: a config tree,
// a small file system and a Wi-Fi station, behind a fakeDevice. Like
// Mongoose OS (and unlike the demo firmware), it never settles a trial
// itself: settings saved with try_once last one boot.
type fakeFirmware struct {
	*fakeDevice
	mu       sync.Mutex
	tree     map[string]any    // in RAM
	saved    map[string]any    // conf9.json
	try      map[string]any    // conf9.json.try, nil if none
	noTry    bool              // an older firmware: try_once is ignored
	reject   map[string]string // key -> message: the firmware's validators
	files    map[string][]byte
	fsSize   int
	networks map[string]string // ssid -> password
	boots    int
	bootedAt time.Time
	// stationMute: the Wi-Fi station stays "connecting" and logs nothing.
	stationMute bool
}

const fakeConfig = `{"device":{"id":"esp32_A1B2C3","mac":""},"debug":{"level":2},
 "wifi":{"sta":{"enable":false,"ssid":"","pass":""},"ap":{"enable":true,"ssid":"Mongoose_A1B2C3"}},
 "mqtt":{"enable":false,"server":"iot.eclipse.org:1883","reconnect_timeout_min":2.000000}}`

func newFakeFirmware(t *testing.T) *fakeFirmware {
	f := &fakeFirmware{files: map[string][]byte{}, fsSize: 64 << 10, networks: map[string]string{"HomeNet": "correct horse"}}
	dec := json.NewDecoder(strings.NewReader(fakeConfig))
	dec.UseNumber()
	if err := dec.Decode(&f.tree); err != nil {
		t.Fatal(err)
	}
	f.saved = cloneTree(f.tree)
	f.bootedAt = time.Now()
	f.fakeDevice = newFakeDevice(t, f.serve)
	return f
}

func (f *fakeFirmware) fsUsed() int {
	n := 0
	for _, b := range f.files {
		n += len(b)
	}
	return n
}

func (f *fakeFirmware) serve(r *fakeRequest) (any, *rpcErr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var p map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Params))
	dec.UseNumber()
	dec.Decode(&p)
	str := func(k string) string { s, _ := p[k].(string); return s }
	num := func(k string, def int) int {
		if n, ok := p[k].(json.Number); ok {
			i, _ := n.Int64()
			return int(i)
		}
		return def
	}
	switch r.Method {
	case "Sys.GetInfo":
		status, ip := "disconnected", ""
		if f.stationMute {
			status = "connecting"
		} else if f.wifiOK() {
			status, ip = "got ip", "192.168.1.23"
		}
		return map[string]any{"app": "demo", "fw_version": "1.0", "arch": "esp32", "mac": "240AC4A1B2C3",
			"uptime":  int(time.Since(f.bootedAt) / time.Second),
			"fs_size": f.fsSize, "fs_free": f.fsSize - f.fsUsed(),
			"wifi": map[string]any{"sta_ip": ip, "ap_ip": "", "status": status, "ssid": f.get("wifi.sta.ssid")}}, nil
	case "Sys.Reboot":
		f.rebootLater(10 * time.Millisecond)
		return nil, nil
	case "Config.Get":
		if k := str("key"); k != "" {
			v, err := lookup(f.tree, k)
			if err != nil {
				if ke, ok := err.(*KeyError); ok && ke.Section {
					return f.subtree(k), nil
				}
				return nil, &rpcErr{Code: 404, Message: "invalid config key"}
			}
			return v, nil
		}
		return f.tree, nil
	case "Config.Set":
		cfg, _ := p["config"].(map[string]any)
		for k, msg := range f.reject {
			if _, err := lookup(cfg, k); err == nil {
				return nil, &rpcErr{Code: 400, Message: "invalid config value: " + msg}
			}
		}
		merge(f.tree, cfg)
		if p["save"] == true {
			f.save(p["try_once"] == true)
		}
		if p["reboot"] == true {
			f.rebootLater(50 * time.Millisecond)
		}
		return map[string]bool{"saved": p["save"] == true}, nil
	case "Config.Save":
		f.save(p["try_once"] == true)
		if p["reboot"] == true {
			f.rebootLater(50 * time.Millisecond)
		}
		return map[string]bool{"saved": true}, nil
	case "FS.List":
		return slices.Sorted(maps.Keys(f.files)), nil
	case "FS.ListExt":
		var out []FileInfo
		for _, n := range slices.Sorted(maps.Keys(f.files)) {
			out = append(out, FileInfo{n, int64(len(f.files[n]))})
		}
		return out, nil
	case "FS.Get":
		data, ok := f.files[str("filename")]
		if !ok {
			return nil, &rpcErr{Code: 400, Message: `failed to open file "` + str("filename") + `"`}
		}
		off := min(num("offset", 0), len(data))
		end := len(data)
		if n := num("len", -1); n >= 0 {
			end = min(off+n, len(data))
		}
		return map[string]any{"data": base64.StdEncoding.EncodeToString(data[off:end]), "left": len(data) - end}, nil
	case "FS.Put":
		data, _ := base64.StdEncoding.DecodeString(str("data"))
		name := str("filename")
		old := f.files[name]
		off := num("offset", -1)
		if off < 0 {
			off = len(old)
		}
		if off > len(old) {
			return nil, &rpcErr{Code: 500, Message: "seek failed"}
		}
		buf := append(append([]byte(nil), old[:off]...), data...)
		if f.fsUsed()-len(old)+len(buf) > f.fsSize {
			f.files[name] = append(old[:off:off], data[:0]...)
			return nil, &rpcErr{Code: 500, Message: "write failed"}
		}
		f.files[name] = buf
		return nil, nil
	case "FS.Remove":
		if _, ok := f.files[str("filename")]; !ok {
			return nil, &rpcErr{Code: 500, Message: "remove failed"}
		}
		delete(f.files, str("filename"))
		return nil, nil
	case "FS.Rename":
		data, ok := f.files[str("src")]
		if !ok {
			return nil, &rpcErr{Code: 500, Message: "rename failed"}
		}
		delete(f.files, str("src"))
		f.files[str("dst")] = data
		return nil, nil
	}
	return nil, &rpcErr{Code: 404, Message: "No handler for " + r.Method}
}

func (f *fakeFirmware) get(key string) any { v, _ := lookup(f.tree, key); return v }

func (f *fakeFirmware) save(tryOnce bool) {
	if tryOnce && !f.noTry {
		f.try = cloneTree(f.tree)
	} else {
		f.saved = cloneTree(f.tree)
	}
}

func cloneTree(t map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range t {
		if m, ok := v.(map[string]any); ok {
			v = cloneTree(m)
		}
		out[k] = v
	}
	return out
}

func (f *fakeFirmware) subtree(key string) any {
	var node any = f.tree
	for _, p := range strings.Split(key, ".") {
		node = node.(map[string]any)[p]
	}
	return node
}

func (f *fakeFirmware) wifiOK() bool {
	pass, ok := f.networks[f.get("wifi.sta.ssid").(string)]
	return f.get("wifi.sta.enable") == true && ok && pass == f.get("wifi.sta.pass")
}

// rebootLater restarts the firmware after its reply: the ROM line, the
// boot, and then the Wi-Fi station's attempt.
func (f *fakeFirmware) rebootLater(after time.Duration) {
	go func() {
		time.Sleep(after)
		f.mu.Lock()
		f.boots++
		f.bootedAt = time.Now()
		// the boot loads conf9.json.try once (and deletes it), else conf9.json
		if f.try != nil {
			f.tree, f.try = f.try, nil
		} else {
			f.tree = cloneTree(f.saved)
		}
		f.mu.Unlock()
		f.fakeDevice.mu.Lock()
		f.sawCRC, f.sawQuotes = false, false
		f.fakeDevice.mu.Unlock()
		f.log("ets Jun  8 2016 00:22:57", "", "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
			"mgos_init.c:33          Init done")
		f.mu.Lock()
		enabled := f.get("wifi.sta.enable") == true
		ssid, _ := f.get("wifi.sta.ssid").(string)
		pass, known := f.networks[ssid]
		f.mu.Unlock()
		if !enabled || f.stationMute {
			return
		}
		time.Sleep(30 * time.Millisecond)
		f.log("mgos_wifi_sta.c:611     Trying "+ssid+" AP 11:22:33:44:55:66 ch 6 RSSI -52 cfg 0 att 1",
			"mgos_net.c:89           WiFi STA: connecting")
		switch {
		case !known:
			f.log("mgos_wifi.c:70          WiFi STA: Disconnected, reason: 201")
		case pass != f.get("wifi.sta.pass"):
			f.log("mgos_wifi.c:70          WiFi STA: Disconnected, reason: 202")
		default:
			f.log("mgos_wifi.c:83          WiFi STA: Connected, BSSID 11:22:33:44:55:66 ch 6 RSSI -52",
				"mgos_net.c:103          WiFi STA: ready, IP 192.168.1.23, GW 192.168.1.1, DNS 192.168.1.1, NTP 0.0.0.0")
		}
	}()
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if m, ok := v.(map[string]any); ok {
			if d, ok := dst[k].(map[string]any); ok {
				merge(d, m)
				continue
			}
		}
		dst[k] = v
	}
}
