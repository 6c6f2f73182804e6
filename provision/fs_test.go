package provision

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestPutGetRoundTrip(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	for _, size := range []int{0, 1, 2000, 40000} {
		data := randomBytes(size, uint64(size))
		var last int64
		if err := c.Put(t.Context(), "blob.bin", data, func(done, total int64) { last = done }); err != nil {
			t.Fatalf("put %d: %v", size, err)
		}
		if last != int64(size) {
			t.Fatalf("progress ended at %d of %d", last, size)
		}
		if !bytes.Equal(f.files["blob.bin"], data) {
			t.Fatalf("device holds %d bytes, not the %d sent", len(f.files["blob.bin"]), size)
		}
		back, err := c.Get(t.Context(), "blob.bin", nil)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("get %d: %d bytes, %v", size, len(back), err)
		}
	}
	names, err := c.List(t.Context(), "")
	if err != nil || !slices.Equal(names, []string{"blob.bin"}) {
		t.Fatalf("list %v %v (no .part left)", names, err)
	}
	// Frames stay within the device's limit and FS.Put always has an offset.
	for _, r := range f.requests {
		if len(r.frame)+len(delim) > MaxFrameSize {
			t.Fatalf("%s frame of %d bytes", r.Method, len(r.frame))
		}
		if r.Method == "FS.Put" && !strings.Contains(string(r.Params), `"offset":`) {
			t.Fatalf("FS.Put without offset: %s", r.Params)
		}
	}
}

func TestPutRetriesChunksByOffset(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	f.ignore["FS.Put"] = 1
	f.corrupt["FS.Put"] = 1
	data := randomBytes(10000, 3)
	if err := c.Put(t.Context(), "a.bin", data, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.files["a.bin"], data) {
		t.Fatal("content differs after retried chunks")
	}
}

func TestPutFailureLeavesNoFile(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	f.files["keep.txt"] = []byte("old")
	// The device dies (into the ROM loader, say) after the second chunk.
	puts := 0
	f.onRequest = func(r *fakeRequest) {
		if r.Method == "FS.Put" {
			if puts++; puts == 2 {
				f.silent = true
				f.log("rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))", "waiting for download")
			}
		}
	}
	err := c.Put(t.Context(), "keep.txt", randomBytes(20000, 4), nil)
	var dr *DeviceResetError
	if !errors.As(err, &dr) {
		t.Fatalf("err %v, want DeviceResetError", err)
	}
	if got := string(f.files["keep.txt"]); got != "old" {
		t.Fatalf("keep.txt holds %d bytes: a partial upload under the real name", len(got))
	}
}

func TestPutDeviceErrorRemovesPartial(t *testing.T) {
	f := newFakeFirmware(t)
	f.fsSize = 30000
	c := connectFake(t, f.fakeDevice, fastOpts())
	f.files["other"] = randomBytes(15000, 5)
	// Fits by the free figure, fails on the device (it reports too much free space).
	f.fsSize = 30000
	err := c.Put(t.Context(), "big.bin", randomBytes(16000, 6), nil)
	var ns *NoSpaceError
	if !errors.As(err, &ns) || ns.Need != 16000 || ns.Free != 15000 || ns.ExitCode() != 7 {
		t.Fatalf("err %v, want NoSpaceError", err)
	}
	if slices.Contains(f.methods(), "FS.Put") {
		t.Fatal("sent data that cannot fit")
	}
	// The device's own refusal mid-way: the partial file goes.
	f.onRequest = func(r *fakeRequest) {
		if r.Method == "FS.Put" && strings.Contains(string(r.Params), `"offset":0`) {
			f.mu.Lock()
			f.fsSize = 20000
			f.mu.Unlock()
		}
	}
	err = c.Put(t.Context(), "mid.bin", randomBytes(12000, 7), nil)
	var re *RPCError
	if !errors.As(err, &re) || re.Message != "write failed" {
		t.Fatalf("err %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, ok := f.files["mid.bin.part"]; ok {
		t.Fatal("partial file left behind")
	}
	if _, ok := f.files["mid.bin"]; ok {
		t.Fatal("partial file under the real name")
	}
}

func TestPutReplacesWhenOnlyThatFits(t *testing.T) {
	f := newFakeFirmware(t)
	f.fsSize = 30000
	f.files["cfg.bin"] = randomBytes(20000, 8)
	c := connectFake(t, f.fakeDevice, fastOpts())
	data := randomBytes(18000, 9)
	if err := c.Put(t.Context(), "cfg.bin", data, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.files["cfg.bin"], data) {
		t.Fatal("content")
	}
}

func TestGetMissingFile(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	_, err := c.Get(t.Context(), "nope", nil)
	var re *RPCError
	if !errors.As(err, &re) || re.Code != 400 {
		t.Fatalf("err %v", err)
	}
}

func TestTmpName(t *testing.T) {
	long := strings.Repeat("n", 48)
	tests := []struct{ name, want string }{
		{"a.bin", "a.bin.part"},
		{"conf9.json", "~"}, // 10+5 > 14: hashed
		{long, "~"},
		{"www/" + long, "www/~"},
		{"www/i.js", "www/i.js.part"},
	}
	for _, tt := range tests {
		got := tmpName(tt.name)
		base := got[strings.LastIndexByte(got, '/')+1:]
		nameBase := tt.name[strings.LastIndexByte(tt.name, '/')+1:]
		if !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, partSuffix) || len(base) > max(len(nameBase), tmpMaxBase) {
			t.Errorf("tmpName(%q) = %q", tt.name, got)
		}
	}
	if tmpName(long) == tmpName(long+"x") {
		t.Error("two names share a temporary name")
	}
}
