package interop_test

// The Improv build of the demo firmware judged by a client mos did not
// write: the Improv Wi-Fi project's improv-wifi-serial-sdk (npm, pinned in
// node/package.json) runs headless under Node through
// node/rfc2217-serialport.mjs against sim.Device.ServeRFC2217, reads the
// device info, scans, fails with a wrong password and provisions Wi-Fi.
// The test then asks the device itself, over RPC, what it saved. See
// README.md.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// improvSDKVersion is the pinned improv-wifi-serial-sdk.
const improvSDKVersion = "2.8.1"

// needImprovJudge returns the node binary, or skips (fails on CI) when
// Node or the pinned SDK is missing.
func needImprovJudge(t *testing.T) string {
	t.Helper()
	return needNode(t, "Improv", "improv-wifi-serial-sdk", filepath.Join("dist", "serial.js"))
}

// improvJudgeResult is the JSON summary improv-judge.mjs prints.
type improvJudgeResult struct {
	OK         bool   `json:"ok"`
	SDKVersion string `json:"sdkVersion"`
	Info       *struct {
		Firmware, Version, Name, ChipFamily string
		OSName                              *string `json:"osName"`
	} `json:"info"`
	StateAfterInit string `json:"stateAfterInit"`
	Scan           []struct {
		Name    string `json:"name"`
		RSSI    int    `json:"rssi"`
		Secured bool   `json:"secured"`
	} `json:"scan"`
	WrongPass *struct {
		Rejected  bool   `json:"rejected"`
		Reason    string `json:"reason"`
		Error     int    `json:"error"`
		ErrorName string `json:"errorName"`
		State     string `json:"state"`
	} `json:"wrongPass"`
	Provision *struct {
		NextURL string `json:"nextUrl"`
		State   string `json:"state"`
	} `json:"provision"`
	CurrentState *struct {
		NextURL string `json:"nextUrl"`
		State   string `json:"state"`
	} `json:"currentState"`
	Steps []struct {
		Step string `json:"step"`
		MS   int    `json:"ms"`
	} `json:"steps"`
	Warnings []string `json:"warnings"`
	TotalMS  int      `json:"totalMs"`
	Error    string   `json:"error"`
}

func TestImprovSDK(t *testing.T) {
	node := needImprovJudge(t)
	chip, err := chips.ByKey("esp32")
	if err != nil {
		t.Fatal(err)
	}
	mac := [6]byte{0x24, 0x0A, 0xC4, 0x5A, 0x6B, 0x7C}
	// real timing: Wi-Fi association, DHCP and the scan take their time
	dev, err := sim.New(sim.Config{Chip: chip, Board: sim.BoardDevKit, MAC: mac, Firmware: demofw.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.ProgramBundle("../firmware-images/esp32-improv-demo.zip"); err != nil {
		t.Fatal(err)
	}
	// boot, and wait for the end of init before the judge connects
	hp, err := dev.Connect()
	if err != nil {
		t.Fatal(err)
	}
	dev.PressReset(false)
	if _, err := readUntil(hp, []byte("Init done"), 10*time.Second); err != nil {
		t.Fatalf("boot: %v", err)
	}
	hp.Close()

	serverAddr := serveRFC2217(t, dev)

	const ssid, pass = "mos-demo-net", "demo-pass-1234"
	args := []string{"--import", "./" + filepath.ToSlash(filepath.Join(judgeDir, "improv-hooks.mjs")),
		filepath.Join(judgeDir, "improv-judge.mjs"),
		"--port", serverAddr,
		"--ssid", ssid, "--pass", pass, "--wrong-pass", "wrong-password",
		"--timeout", "60",
	}
	var res improvJudgeResult
	run := runJudgeScript(t, node, args, 70*time.Second, &res, func() bool { return res.OK }, func(run *judgeRun) string {
		return fmt.Sprintf("improv-wifi-serial-sdk failed against the virtual device: %s\n%s", res.Error, run.stdout.String())
	})
	elapsed := run.elapsed
	if testing.Verbose() {
		var steps []string
		for _, s := range res.Steps {
			steps = append(steps, fmt.Sprintf("%s %dms", s.Step, s.MS))
		}
		t.Logf("improv-wifi-serial-sdk %s in %v: %s", res.SDKVersion, elapsed.Round(time.Millisecond), strings.Join(steps, ", "))
	}
	for _, w := range res.Warnings {
		t.Logf("judge warning: %s", w)
	}

	// What the SDK saw, against what the device models.
	if res.SDKVersion != improvSDKVersion {
		t.Errorf("improv-wifi-serial-sdk %q, want the pinned %s", res.SDKVersion, improvSDKVersion)
	}
	devID := fmt.Sprintf("esp32_%02X%02X%02X", mac[3], mac[4], mac[5])
	if i := res.Info; i == nil || i.Firmware != "mos-demo-improv" || i.Version != "1.0.0" || i.ChipFamily != "ESP32" || i.Name != devID {
		t.Errorf("device info %+v, want mos-demo-improv 1.0.0 ESP32 %s", res.Info, devID)
	}
	if res.StateAfterInit != "READY" {
		t.Errorf("state after initialize %q, want READY (authorized)", res.StateAfterInit)
	}
	var scan []string
	for _, n := range res.Scan {
		scan = append(scan, fmt.Sprintf("%s/%d/%v", n.Name, n.RSSI, n.Secured))
	}
	// the SDK sorts by name
	if got, want := strings.Join(scan, " "), "CoffeeShop/-71/false mos-demo-net/-52/true Neighbor/-83/true"; got != want {
		t.Errorf("scan %s, want %s", got, want)
	}
	if w := res.WrongPass; w == nil || !w.Rejected || w.Error != 3 || w.ErrorName != "UNABLE_TO_CONNECT" || w.State != "READY" {
		t.Errorf("wrong password: %+v, want rejected with error 3 (UNABLE_TO_CONNECT), state READY", w)
	}
	ip := fmt.Sprintf("192.168.1.%d", 100+int(mac[5])%100)
	url := "http://" + ip + "/"
	if p := res.Provision; p == nil || p.NextURL != url || p.State != "PROVISIONED" {
		t.Errorf("provision: %+v, want PROVISIONED %s", p, url)
	}
	if c := res.CurrentState; c == nil || c.NextURL != url || c.State != "PROVISIONED" {
		t.Errorf("current state: %+v, want PROVISIONED %s", c, url)
	}

	// Independently of the SDK: the device saved the settings and is on
	// the network, as it says over RPC.
	hp = connectWhenFree(t, dev)
	defer hp.Close()
	var sta struct {
		Enable     bool
		SSID, Pass string
	}
	rpcResult(t, hp, `{"id":1,"method":"Config.Get","params":{"key":"wifi.sta"}}`, &sta)
	if !sta.Enable || sta.SSID != ssid || sta.Pass != pass {
		t.Errorf("wifi.sta saved as %+v", sta)
	}
	var info struct {
		WiFi struct {
			STAIP  string `json:"sta_ip"`
			Status string
			SSID   string
		}
	}
	rpcResult(t, hp, `{"id":2,"method":"Sys.GetInfo"}`, &info)
	if info.WiFi.Status != "got ip" || info.WiFi.STAIP != ip || info.WiFi.SSID != ssid {
		t.Errorf("Sys.GetInfo wifi %+v, want got ip %s on %s", info.WiFi, ip, ssid)
	}
}

// readUntil reads the device's output until it holds want.
func readUntil(hp *sim.HostPort, want []byte, timeout time.Duration) ([]byte, error) {
	return readUntilFunc(hp, timeout, fmt.Sprintf("%q", want), func(out []byte) bool { return bytes.Contains(out, want) })
}

// readUntilFunc reads the device's output until done accepts it.
func readUntilFunc(hp *sim.HostPort, timeout time.Duration, what string, done func([]byte) bool) ([]byte, error) {
	var out []byte
	buf := make([]byte, 1024)
	deadline := time.Now().Add(timeout)
	for !done(out) {
		left := time.Until(deadline)
		if left <= 0 {
			return out, fmt.Errorf("no %s within %v; got %q", what, timeout, tail(string(out), 10))
		}
		hp.SetReadTimeout(min(left, 100*time.Millisecond))
		n, err := hp.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil && !errors.Is(err, sim.ErrReadTimeout) {
			return out, err
		}
	}
	return out, nil
}

// connectWhenFree connects to the device once the judge's RFC 2217
// session has let it go.
func connectWhenFree(t *testing.T, dev *sim.Device) *sim.HostPort {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		hp, err := dev.Connect()
		if err == nil {
			return hp
		}
		if !errors.Is(err, sim.ErrBusy) || time.Now().After(deadline) {
			t.Fatalf("connect after the judge: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rpcResult sends one RPC frame (a bare JSON line) and decodes the result
// of the reply with the same id.
func rpcResult(t *testing.T, hp *sim.HostPort, req string, v any) {
	t.Helper()
	var id struct{ ID int }
	json.Unmarshal([]byte(req), &id)
	if _, err := hp.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf(`{"id":%d,`, id.ID)
	out, err := readUntilFunc(hp, 5*time.Second, "reply "+prefix, func(out []byte) bool {
		i := bytes.Index(out, []byte("\n"+prefix))
		return i >= 0 && bytes.IndexByte(out[i+1:], '\n') >= 0
	})
	if err != nil {
		t.Fatalf("%s: %v", req, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var reply struct {
			Result json.RawMessage
			Error  *struct{ Code int }
		}
		if err := json.Unmarshal([]byte(line), &reply); err != nil || reply.Error != nil {
			t.Fatalf("%s: reply %s (%v)", req, line, err)
		}
		if err := json.Unmarshal(reply.Result, v); err != nil {
			t.Fatalf("%s: result %s: %v", req, reply.Result, err)
		}
		return
	}
	t.Fatalf("%s: no complete reply in %q", req, out)
}
