package demofw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
)

// These tests boot the demo firmware bundles on the virtual device and
// speak Mongoose OS RPC to it over the raw UART, as mos does.

// demoConn is a port to a device running the demo, with everything the
// device sent collected in the background.
type demoConn struct {
	t   *testing.T
	p   port.Port
	dev *sim.Device

	mu     sync.Mutex
	out    []byte
	grew   chan struct{} // closed and replaced when out grows
	nextID int
}

var demoSeq atomic.Int64

// bootDemo flashes the chip's demo bundle straight into the device's flash
// and boots it. opts are extra sim:// options ("&wifi=...").
func bootDemo(t *testing.T, chip, opts string) *demoConn {
	t.Helper()
	// a shared device (id=), so that the test could reconnect; unique,
	// since closed devices stay registered
	url := fmt.Sprintf("sim://%s?fast=1&id=%s-%d%s", chip, t.Name(), demoSeq.Add(1), opts)
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	dev := port.SimDevice(p)
	t.Cleanup(func() {
		p.Close()
		dev.Close()
	})
	if err := dev.ProgramBundle("../../firmware-images/" + chip + "-demo.zip"); err != nil {
		t.Fatal(err)
	}
	dc := &demoConn{t: t, p: p, dev: dev, grew: make(chan struct{}), nextID: 1000}
	go dc.collect()
	dc.reset()
	return dc
}

func (dc *demoConn) collect() {
	buf := make([]byte, 4096)
	dc.p.SetReadTimeout(0)
	for {
		n, err := dc.p.Read(buf)
		dc.mu.Lock()
		dc.out = append(dc.out, buf[:n]...)
		close(dc.grew)
		dc.grew = make(chan struct{})
		dc.mu.Unlock()
		if err != nil && err != port.ErrTimeout {
			return
		}
	}
}

// reset presses reset through the lines and waits for the end of init.
func (dc *demoConn) reset() {
	dc.t.Helper()
	mark := dc.mark()
	if err := flasher.HardReset().Run(context.Background(), dc.p); err != nil {
		dc.t.Fatal(err)
	}
	dc.waitFor(mark, "Init done", 5*time.Second)
}

// mark is a position in the output to search from.
func (dc *demoConn) mark() int {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return len(dc.out)
}

func (dc *demoConn) since(mark int) string {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return string(dc.out[mark:])
}

// waitUntil waits until ok accepts the output since mark.
func (dc *demoConn) waitUntil(mark int, timeout time.Duration, what string, ok func(string) bool) string {
	dc.t.Helper()
	deadline := time.After(timeout)
	for {
		dc.mu.Lock()
		out, grew := string(dc.out[mark:]), dc.grew
		dc.mu.Unlock()
		if ok(out) {
			return out
		}
		select {
		case <-grew:
		case <-deadline:
			dc.t.Fatalf("no %s within %v; the device sent:\n%s", what, timeout, out)
		}
	}
}

func (dc *demoConn) waitFor(mark int, text string, timeout time.Duration) string {
	dc.t.Helper()
	return dc.waitUntil(mark, timeout, fmt.Sprintf("%q", text), func(s string) bool { return strings.Contains(s, text) })
}

func (dc *demoConn) write(s string) {
	dc.t.Helper()
	if _, err := dc.p.Write([]byte(s)); err != nil {
		dc.t.Fatal(err)
	}
}

// rpcReply is a response frame as the device sent it.
type rpcReply struct {
	raw    string // the JSON
	ID     json.RawMessage
	Src    string
	Dst    string
	Result json.RawMessage
	Error  *struct {
		Code    int
		Message string
	}
}

// mgosLine matches the source prefix of a Mongoose OS log line.
var mgosLine = regexp.MustCompile(`^([a-z0-9_]+\.?c?:\d+) +`)

var crcSuffix = regexp.MustCompile(`}([0-9a-f]{8})$`)

// replies picks the response frames out of the console output: lines that
// hold `{"id":...}`, with or without `"""` and CRC.
func replies(out string) []rpcReply {
	var list []rpcReply
	// flow control bytes may land anywhere, even inside a frame
	out = strings.NewReplacer("\x11", "", "\x13", "").Replace(out)
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSuffix(strings.TrimPrefix(line, `"""`), `"""`)
		if !strings.HasPrefix(line, `{"id":`) {
			continue
		}
		if m := crcSuffix.FindStringSubmatchIndex(line); m != nil {
			line = line[:m[2]]
		}
		r := rpcReply{raw: line}
		if json.Unmarshal([]byte(line), &r) == nil {
			list = append(list, r)
		}
	}
	return list
}

// frame is a request as mos sends it: `"""`, JSON, CRC, `"""`.
func frame(body string) string {
	return fmt.Sprintf("\n\"\"\"%s%08x\"\"\"\n", body, crc32.ChecksumIEEE([]byte(body)))
}

func (dc *demoConn) request(method string, params any) (string, int) {
	dc.nextID++
	id := dc.nextID
	req := map[string]any{"id": id, "src": "mos", "method": method}
	if params != nil {
		req["params"] = params
	}
	body, err := json.Marshal(req)
	if err != nil {
		dc.t.Fatal(err)
	}
	return string(body), id
}

// call sends a framed request and waits for its reply.
func (dc *demoConn) call(method string, params any) rpcReply {
	dc.t.Helper()
	body, id := dc.request(method, params)
	mark := dc.mark()
	dc.write(frame(body))
	return dc.waitReply(mark, id, 5*time.Second)
}

func (dc *demoConn) waitReply(mark, id int, timeout time.Duration) rpcReply {
	dc.t.Helper()
	var got rpcReply
	dc.waitUntil(mark, timeout, fmt.Sprintf("reply to id %d", id), func(s string) bool {
		for _, r := range replies(s) {
			if string(r.ID) == fmt.Sprint(id) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// result calls and decodes a successful result.
func (dc *demoConn) result(method string, params, v any) {
	dc.t.Helper()
	r := dc.call(method, params)
	if r.Error != nil {
		dc.t.Fatalf("%s: error %d %q", method, r.Error.Code, r.Error.Message)
	}
	if v != nil {
		if err := json.Unmarshal(r.Result, v); err != nil {
			dc.t.Fatalf("%s: result %s: %v", method, r.Result, err)
		}
	}
}

func wantError(t *testing.T, r rpcReply, code int, msg string) {
	t.Helper()
	if r.Error == nil || r.Error.Code != code || !strings.Contains(r.Error.Message, msg) {
		t.Errorf("reply %s, want error %d %q", r.raw, code, msg)
	}
}

func TestDemoBootLog(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3", "esp8266"} {
		t.Run(chip, func(t *testing.T) {
			dc := bootDemo(t, chip, "")
			out := dc.since(0)
			mac := dc.dev.MAC()
			macText := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
			want := []string{
				"mos-demo 1.0.0 (20250101-000000/1.0.0-demo)\n",
				"Mongoose OS 2.20.0 (",
				"mgos_sys_config.c:470   MAC: " + macText + "\n",
				"mgos_wifi.c:360         WiFi mode: AP\n",
				"mgos_rpc_channel_ua:320 0x",
				"mgos_init.c:33          Init done, RAM: ",
			}
			if chip == "esp8266" {
				want = append(want, "esp_main.c:158          mos-demo", "esp_main.c:161          CPU: ESP8266EX, 160 MHz",
					"/: MFS1 @ 0x80000, 253952 total",
					"esp_exc.c:240           Reset cause: 6 (external reset)")
			} else {
				want = append(want, "mgos_freertos.c:98      mos-demo", "esp32xx_main.c:78       Boot partition: factory; flash: 4M\n",
					"Project name:     mos-demo")
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("boot log lacks %q:\n%s", w, out)
				}
			}
			// every Mongoose OS line has its source padded to 24 columns
			for _, line := range strings.Split(out, "\n") {
				if m := mgosLine.FindStringSubmatch(line); m != nil && (len(m[1]) > 23 || len(m[0]) != 24) {
					t.Errorf("line not padded to 24 columns: %q", line)
				}
			}
		})
	}
}

func TestDemoFramingWithAndWithoutCRC(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	id := dc.dev.MAC()
	devID := fmt.Sprintf("esp32_%02X%02X%02X", id[3], id[4], id[5])

	// a new-style frame: no quotes, no CRC; the reply has neither
	mark := dc.mark()
	dc.write(`{"id":7,"src":"tool","method":"RPC.Ping"}` + "\n")
	r := dc.waitReply(mark, 7, 2*time.Second)
	wantRaw := `{"id":7,"src":"` + devID + `","dst":"tool","result":{"channel_info": "UART0"}}`
	if r.raw != wantRaw {
		t.Errorf("reply %s, want %s", r.raw, wantRaw)
	}
	if out := dc.since(mark); !strings.Contains(out, "\n"+wantRaw+"\n") {
		t.Errorf("reply not framed by newlines only: %q", out)
	}

	// the reference exchange: handshake, then a framed request with CRC
	mark = dc.mark()
	dc.write("\"\"\"\x04\"\"\"\n\n")
	dc.waitFor(mark, "\n\"\"\"\x04\"\"\"\n\n", 2*time.Second)
	mark = dc.mark()
	body := `{"src":"mos","id":1398765432101,"method":"Config.Get","params":{"key":"device.id"}}`
	dc.write(frame(body))
	r = dc.waitReply(mark, 1398765432101, 2*time.Second)
	want := `{"id":1398765432101,"src":"` + devID + `","dst":"mos","result":"` + devID + `"}`
	if r.raw != want {
		t.Errorf("reply %s, want %s", r.raw, want)
	}
	if out := dc.since(mark); !strings.Contains(out, fmt.Sprintf("\"\"\"%s%08x\"\"\"\n", want, crc32.ChecksumIEEE([]byte(want)))) {
		t.Errorf("reply lacks quotes and CRC once the host used them: %q", out)
	}

	// a string id that is all digits comes back bare, others quoted
	mark = dc.mark()
	dc.write(`{"id":"abc","method":"RPC.Ping"}` + "\n")
	dc.waitFor(mark, `{"id":"abc","src":"`+devID+`","result":`, 2*time.Second)
}

func TestDemoBadCRCDropped(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	body, id := dc.request("RPC.Ping", nil)
	mark := dc.mark()
	dc.write(fmt.Sprintf("\"\"\"%s%08x\"\"\"\n", body, crc32.ChecksumIEEE([]byte(body))^1))
	out := dc.waitFor(mark, "Corrupted frame", 2*time.Second)
	// the next request is answered; the corrupted one never is
	r := dc.call("RPC.Ping", nil)
	if r.Error != nil {
		t.Fatalf("ping after a bad frame: %s", r.raw)
	}
	for _, r := range replies(dc.since(mark)) {
		if string(r.ID) == fmt.Sprint(id) {
			t.Errorf("corrupted frame was answered: %s\n%s", r.raw, out)
		}
	}
	if !strings.Contains(out, "mgos_rpc_channel_ua:") {
		t.Errorf("warning without its source: %q", out)
	}
}

func TestDemoRPCErrors(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	wantError(t, dc.call("No.Such", nil), 404, "No handler for No.Such")
	wantError(t, dc.call("Config.Set", map[string]any{"config": map[string]any{"wifi": map[string]any{"ap": map[string]any{"channel": "six"}}}}), 400, "invalid config value: wifi.ap.channel")
	wantError(t, dc.call("Config.Set", map[string]any{"config": map[string]any{"wifi": map[string]any{"sta": map[string]any{"sid": "x"}}}}), 404, "invalid config key")
	wantError(t, dc.call("Config.Get", map[string]any{"key": "wifi.nope"}), 404, "invalid config key")
	wantError(t, dc.call("FS.Get", map[string]any{}), 400, "filename is required")
	wantError(t, dc.call("FS.Get", map[string]any{"filename": "missing.txt"}), 400, `failed to open file "missing.txt"`)
	wantError(t, dc.call("FS.Remove", map[string]any{"filename": "missing.txt"}), 500, "remove failed")
	wantError(t, dc.call("Sys.Reboot", map[string]any{"delay_ms": -5}), 400, "delay_ms")

	// a frame for another device is not answered
	body := `{"id":55,"src":"mos","dst":"someone_else","method":"RPC.Ping"}`
	mark := dc.mark()
	dc.write(frame(body))
	dc.call("RPC.Ping", nil)
	if strings.Contains(dc.since(mark), `"id":55`) {
		t.Errorf("answered a frame for another device")
	}
	// a frame past rpc.max_frame_size is dropped, and the device goes on
	mark = dc.mark()
	dc.write(`{"id":57,"method":"RPC.Ping","params":{"pad":"` + strings.Repeat("x", 5000) + `"}}` + "\n")
	dc.waitFor(mark, "Incoming frame is too big, dropping.", 2*time.Second)
	dc.call("RPC.Ping", nil)
	if strings.Contains(dc.since(mark), `"id":57`) {
		t.Errorf("answered an oversized frame")
	}
	// bytes >= 0x80 wipe what was received so far
	mark = dc.mark()
	dc.write(`{"id":56,"method":` + "\xff" + `"RPC.Ping"}` + "\n")
	dc.call("RPC.Ping", nil)
	if strings.Contains(dc.since(mark), `"id":56`) {
		t.Errorf("answered a frame with a non-ASCII byte in it")
	}
}

func TestDemoGetInfoAndConfig(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	r := dc.call("Sys.GetInfo", nil)
	keys := []string{"id", "app", "fw_version", "fw_id", "mg_version", "mg_id", "mac", "arch", "uptime", "public_key",
		"ram_size", "ram_free", "ram_min_free", "fs_size", "fs_free", "wifi"}
	pos := 0
	for _, k := range keys {
		i := strings.Index(r.raw[pos:], `"`+k+`": `)
		if i < 0 {
			t.Fatalf("GetInfo lacks %q in order: %s", k, r.raw)
		}
		pos += i
	}
	var info struct {
		App, FwVersion, Arch, MAC string
		FwID                      string `json:"fw_id"`
		FSSize                    int    `json:"fs_size"`
		FSFree                    int    `json:"fs_free"`
		WiFi                      struct{ Status, APIP string }
	}
	json.Unmarshal(r.Result, &info)
	mac := dc.dev.MAC()
	if info.App != "mos-demo" || info.Arch != "esp32" || info.MAC != fmt.Sprintf("%02X", mac) || info.FwID != "20250101-000000/1.0.0-demo" {
		t.Errorf("GetInfo: %s", r.raw)
	}
	if info.FSSize != 126*4096 || info.FSFree != info.FSSize || info.WiFi.Status != "disconnected" {
		t.Errorf("GetInfo fs/wifi: %s", r.raw)
	}

	var set struct{ Saved bool }
	var channel float64
	dc.result("Config.Get", map[string]any{"key": "wifi.ap.channel"}, &channel)
	if channel != 6 {
		t.Errorf("wifi.ap.channel = %v", channel)
	}
	r = dc.call("Config.Get", map[string]any{"key": "mqtt"})
	if !strings.Contains(r.raw, `"reconnect_timeout_min":2.000000`) || !strings.Contains(r.raw, `"server":"iot.eclipse.org:1883"`) {
		t.Errorf("Config.Get mqtt: %s", r.raw)
	}

	var methods []string
	dc.result("RPC.List", nil, &methods)
	if len(methods) < 14 || methods[0] != "RPC.Ping" || !strings.Contains(strings.Join(methods, ","), "FS.Rename") {
		t.Errorf("RPC.List: %v", methods)
	}

	// set without saving, then Config.Save
	dc.result("Config.Set", map[string]any{"key": "device.sn", "value": "SN-1"}, &set)
	if set.Saved {
		t.Errorf("Config.Set without save saved")
	}
	dc.result("Config.Save", nil, &set)
	if !set.Saved {
		t.Errorf("Config.Save did not save")
	}
	// saved user settings survive a reset; only what differs is in conf9.json
	dc.result("Config.Set", map[string]any{"config": map[string]any{"debug": map[string]any{"level": 3}, "mqtt": map[string]any{"server": "broker:1883", "enable": false}}, "save": true}, &set)
	if !set.Saved {
		t.Errorf("Config.Set did not save")
	}
	dc.reset()
	var server string
	dc.result("Config.Get", map[string]any{"key": "mqtt.server"}, &server)
	if server != "broker:1883" {
		t.Errorf("mqtt.server after reset = %q", server)
	}
	var got struct{ Data string }
	dc.result("FS.Get", map[string]any{"filename": "conf9.json"}, &got)
	conf := decodeB64(t, got.Data)
	want := "{\n  \"device\": {\n    \"sn\": \"SN-1\"\n  },\n  \"debug\": {\n    \"level\": 3\n  },\n  \"mqtt\": {\n    \"server\": \"broker:1883\"\n  }\n}\n"
	if string(conf) != want {
		t.Errorf("conf9.json:\n%s\nwant\n%s", conf, want)
	}
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	if err := json.Unmarshal([]byte(`"`+s+`"`), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDemoReboot(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	mark := dc.mark()
	r := dc.call("Sys.Reboot", map[string]any{"delay_ms": 200})
	if r.Error != nil || string(r.Result) != "null" {
		t.Fatalf("Sys.Reboot: %s", r.raw)
	}
	out := dc.waitFor(mark, "Init done", 5*time.Second)
	if !strings.Contains(out, "rst:0xc (SW_CPU_RESET)") {
		t.Errorf("no software reset in:\n%s", out)
	}
	if i, j := strings.Index(out, `"result":null`), strings.Index(out, "rst:0xc"); i < 0 || j < i {
		t.Errorf("the reply must come before the reboot:\n%s", out)
	}
	// the device serves again, and forgot the host's framing habits
	mark = dc.mark()
	dc.write(`{"id":9,"method":"RPC.Ping"}` + "\n")
	if r := dc.waitReply(mark, 9, 2*time.Second); r.Error != nil {
		t.Errorf("after reboot: %s", r.raw)
	}
	if out := dc.since(mark); strings.Contains(out, `"""`) {
		t.Errorf("framing flags survived the reboot: %q", out)
	}
}

func TestDemoESP8266Reboot(t *testing.T) {
	dc := bootDemo(t, "esp8266", "")
	mark := dc.mark()
	dc.result("Sys.Reboot", nil, nil)
	out := dc.waitFor(mark, "Init done", 5*time.Second)
	if !strings.Contains(out, "Reset cause: 4 (soft restart)") {
		t.Errorf("no soft restart in:\n%q", out)
	}
	if !bytes.Contains([]byte(out), []byte("esp_main.c:158")) {
		t.Errorf("the app did not boot again:\n%q", out)
	}
}
