package provision

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func echoParams(r *fakeRequest) (any, *rpcErr) { return json.RawMessage(r.Params), nil }

func TestCallMatchesIDAndSkipsLogAndStrangers(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	var mu sync.Mutex
	var logged []string
	o := fastOpts()
	o.Log = func(l string) { mu.Lock(); logged = append(logged, l); mu.Unlock() }
	c := connectFake(t, d, o)
	d.onRequest = func(r *fakeRequest) {
		// A reply to someone else's request, and log lines, come first.
		d.port.deviceSend([]byte("\n\"\"\"{\"id\":42,\"src\":\"x\",\"dst\":\"mos\",\"result\":\"not yours\"}\"\"\"\n"))
		d.log("mgos_http_server.c:180  HTTP server started", "{\"looks\": \"like json\"}")
	}
	d.logBefore = "half a log li"
	var got map[string]string
	if err := c.Call(t.Context(), "Test.Echo", map[string]string{"k": "v"}, &got); err != nil {
		t.Fatal(err)
	}
	if got["k"] != "v" {
		t.Fatalf("result %v", got)
	}
	r := d.lastRequest("Test.Echo")
	var id uint64
	json.Unmarshal(r.ID, &id)
	if id < 1<<40 || id >= 1<<41 || r.Src != "mos" {
		t.Fatalf("id %d src %q", id, r.Src)
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"mgos_http_server.c:180  HTTP server started", `{"looks": "like json"}`, "half a log li"}
	if strings.Join(logged, "|") != strings.Join(want, "|") {
		t.Fatalf("log %q, want %q", logged, want)
	}
}

func TestHandshakeNoAnswer(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	d.silent = true
	go func() {
		for range 5 {
			d.log("invalid header: 0xffffffff")
			time.Sleep(50 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := Connect(t.Context(), d.port, Options{HandshakeTimeout: 400 * time.Millisecond})
	var na *NoAnswerError
	if !errors.As(err, &na) || na.ExitCode() != 6 {
		t.Fatalf("err %v, want NoAnswerError", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("handshake not bounded: %v", time.Since(start))
	}
	if !strings.Contains(err.Error(), "invalid header") || !strings.Contains(na.Hint(), "does not serve RPC") {
		t.Fatalf("a printing device must be described as such: %v / %s", err, na.Hint())
	}
	// The probes are the handshake bytes, every 200 ms.
	if n := len(d.methods()); n != 0 {
		t.Fatalf("requests sent without a handshake: %d", n)
	}

	quiet := newFakeDevice(t, echoParams)
	quiet.silent = true
	_, err = Connect(t.Context(), quiet.port, Options{HandshakeTimeout: 300 * time.Millisecond})
	if !errors.As(err, &na) || !strings.Contains(na.Hint(), "Is mem://fake the right port? Is rpc-uart enabled") {
		t.Fatalf("silent port: %v / %v", err, na)
	}
}

func TestRetriesOnTimeoutAndBadCRCWithSameID(t *testing.T) {
	d := newFakeDevice(t, func(r *fakeRequest) (any, *rpcErr) { return map[string]int{"uptime": 5}, nil })
	c := connectFake(t, d, fastOpts())
	d.ignore["Sys.GetInfo"] = 1
	d.corrupt["Sys.GetInfo"] = 1
	var info Info
	if err := c.Call(t.Context(), "Sys.GetInfo", nil, &info); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range d.requests {
		ids = append(ids, string(r.ID))
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("want 3 sends with one id, got %v", ids)
	}
	if s := c.Stats(); s.Retries != 2 || s.CorruptReads != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNoRetryForUnsafeMethods(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	c := connectFake(t, d, fastOpts())
	d.ignore["FS.Remove"] = 5
	err := c.Call(t.Context(), "FS.Remove", map[string]string{"filename": "a"}, nil)
	var nr *NoReplyError
	if !errors.As(err, &nr) || nr.ExitCode() != 10 || err.Error() != "FS.Remove: no reply within 300ms" {
		t.Fatalf("err %v", err)
	}
	if n := len(d.methods()); n != 1 {
		t.Fatalf("FS.Remove sent %d times", n)
	}
	d.ignore["Config.Set"] = 5
	err = c.Call(t.Context(), "Config.Set", map[string]any{}, nil)
	if err == nil || err.Error() != "Config.Set: no reply within 300ms (3 attempts)" {
		t.Fatalf("err %v", err)
	}
}

func TestRPCErrorTyped(t *testing.T) {
	d := newFakeDevice(t, methodTable(nil))
	c := connectFake(t, d, fastOpts())
	err := c.Call(t.Context(), "OTA.Begin", nil, nil)
	var re *RPCError
	if !errors.As(err, &re) || re.Code != 404 || re.Method != "OTA.Begin" || re.ExitCode() != 7 {
		t.Fatalf("err %v", err)
	}
	if err.Error() != "OTA.Begin: No handler for OTA.Begin (code 404)" || !strings.Contains(re.Hint(), "RPC.List") {
		t.Fatalf("message %q hint %q", err, re.Hint())
	}
}

func TestConcurrentCallsMatchedByID(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	c := connectFake(t, d, fastOpts())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var n int
			if err := c.Call(t.Context(), "Test.Echo", i, &n); err != nil || n != i {
				t.Errorf("call %d: %d, %v", i, n, err)
			}
		})
	}
	wg.Wait()
}

func TestFlowControlHoldsWritesOnXOFF(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	c := connectFake(t, d, fastOpts())
	d.port.deviceSend([]byte{xoff})
	time.Sleep(20 * time.Millisecond)
	before := len(d.port.writeLog())
	released := time.Now().Add(150 * time.Millisecond)
	go func() {
		time.Sleep(time.Until(released))
		d.port.deviceSend([]byte{xon})
	}()
	big := strings.Repeat("x", 1000)
	var back string
	if err := c.Call(t.Context(), "Test.Echo", big, &back); err != nil || back != big {
		t.Fatalf("call: %v", err)
	}
	ws := d.port.writeLog()[before:]
	if len(ws) == 0 || ws[0].at.Before(released) {
		t.Fatalf("wrote during XOFF")
	}
	for i, w := range ws {
		// Each chunk is drained before the one after the next is written.
		if w.n > 16 || (i+2 < len(ws) && w.drains > ws[i+2].drainsBefore) {
			t.Fatalf("write %d: %d bytes, drains %d/%d: want <= 16 bytes and a drain in between", i, w.n, w.drains, ws[i+2].drainsBefore)
		}
	}
	if s := c.Stats(); s.XOFFs != 1 || s.StaleXOFFs != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestStaleXOFFIsGivenUp(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out maxXOFF")
	}
	d := newFakeDevice(t, echoParams)
	o := fastOpts()
	o.CallTimeout = 5 * time.Second
	c := connectFake(t, d, o)
	d.port.deviceSend([]byte{xoff}) // and never XON
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := c.Call(t.Context(), "Test.Echo", 1, nil); err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e < maxXOFF-100*time.Millisecond || e > maxXOFF+time.Second {
		t.Fatalf("resumed after %v", e)
	}
	if s := c.Stats(); s.StaleXOFFs != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestChunkSizeByBaud(t *testing.T) {
	for baud, want := range map[int]int{9600: 16, 115200: 16, 230400: 32, 460800: 32, 921600: 32, 2000000: 32} {
		if got := chunkSize(baud); got != want {
			t.Errorf("chunkSize(%d) = %d, want %d", baud, got, want)
		}
	}
}

func TestDeviceResetDuringCallRetriesIdempotent(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	c := connectFake(t, d, fastOpts())
	d.ignore["Config.Get"] = 1
	resets := map[string]int{"Config.Get": 1, "Sys.Reboot": 1}
	d.onRequest = func(r *fakeRequest) {
		if resets[r.Method] > 0 {
			resets[r.Method]--
			d.log("rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)")
		}
	}
	var v int
	start := time.Now()
	if err := c.Call(t.Context(), "Config.Get", 7, &v); err != nil || v != 7 {
		t.Fatalf("%v %v", v, err)
	}
	if time.Since(start) > 250*time.Millisecond {
		t.Fatalf("a reset must end the wait at once, took %v", time.Since(start))
	}
	d.ignore["Sys.Reboot"] = 1
	err := c.Call(t.Context(), "Sys.Reboot", nil, nil)
	var dr *DeviceResetError
	if !errors.As(err, &dr) || dr.ExitCode() != 6 {
		t.Fatalf("non-idempotent call across a reset: %v", err)
	}
}

func TestClientStopsOnPortError(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	c := connectFake(t, d, fastOpts())
	d.port.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := c.Call(ctx, "Sys.GetInfo", nil, nil); err == nil {
		t.Fatal("call on a closed port succeeded")
	}
}

func TestDigestAuth(t *testing.T) {
	const user, pass, realm, nonce = "admin", "s3cret", "RPC", "1700000000"
	var mu sync.Mutex
	challenges := 0
	d := newFakeDevice(t, func(r *fakeRequest) (any, *rpcErr) {
		mu.Lock()
		defer mu.Unlock()
		if r.Auth == nil || string(r.Auth.Nonce) != nonce {
			challenges++
			return nil, &rpcErr{Code: 401, Message: `{"auth_type": "digest", "nonce": ` + nonce + `, "nc": 1, "realm": "RPC", "algorithm": "MD5"}`}
		}
		want := digestResponse("MD5", r.Auth.Username, pass, realm, nonce, r.Auth.CNonce)
		if r.Auth.Response != want || r.Auth.Realm != realm {
			return nil, &rpcErr{Code: 401, Message: `{"auth_type": "digest", "nonce": ` + nonce + `, "nc": 1, "realm": "RPC", "algorithm": "MD5"}`}
		}
		return "ok", nil
	})
	o := fastOpts()
	o.Username, o.Password = user, pass
	c := connectFake(t, d, o)
	for range 3 {
		var s string
		if err := c.Call(t.Context(), "Sys.Reboot", nil, &s); err != nil || s != "ok" {
			t.Fatalf("%q %v", s, err)
		}
	}
	if challenges != 1 {
		t.Fatalf("challenged %d times; the nonce should be reused", challenges)
	}

	o.Password = "wrong"
	c2 := connectFake(t, newFakeDevice(t, d.handle), o)
	err := c2.Call(t.Context(), "Sys.Reboot", nil, nil)
	var re *RPCError
	if !errors.As(err, &re) || re.Code != 401 || re.ExitCode() != 5 || !strings.Contains(re.Hint(), "--rpc-creds") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestDigestResponseKnownValue(t *testing.T) {
	// HA1 = md5("u:RPC:p"), HA2 = md5("dummy_method:dummy_uri"), then
	// md5(HA1:123:1:456:auth:HA2), computed independently with md5sum.
	if got := digestResponse("MD5", "u", "p", "RPC", "123", 456); got != "d185fe0cf0edd80850a416eaa8e1536b" {
		t.Fatalf("digest %s", got)
	}
}

// The firmware logs that it dropped a damaged frame: a request that is
// safe to repeat goes again at once instead of waiting out its timeout.
func TestRetryOnFrameDroppedLog(t *testing.T) {
	d := newFakeDevice(t, echoParams)
	o := fastOpts()
	o.CallTimeout = 5 * time.Second
	c := connectFake(t, d, o)
	d.reject["Config.Get"] = 1
	start := time.Now()
	var v int
	if err := c.Call(t.Context(), "Config.Get", 5, &v); err != nil || v != 5 {
		t.Fatalf("%d %v", v, err)
	}
	if e := time.Since(start); e > time.Second {
		t.Fatalf("retried after %v", e)
	}
	if s := c.Stats(); s.Retries != 1 {
		t.Fatalf("stats %+v", s)
	}
}
