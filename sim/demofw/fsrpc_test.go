package demofw_test

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// upload writes data as a careful client does: chunks appended to a
// temporary name, renamed at the end.
func (dc *demoConn) upload(name string, data []byte, chunk int) *rpcReply {
	dc.t.Helper()
	tmp := name + ".part"
	for off := 0; off == 0 || off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		r := dc.call("FS.Put", map[string]any{"filename": tmp, "offset": off, "data": base64.StdEncoding.EncodeToString(data[off:end])})
		if r.Error != nil {
			return &r
		}
	}
	r := dc.call("FS.Rename", map[string]any{"src": tmp, "dst": name})
	if r.Error != nil {
		return &r
	}
	return nil
}

func (dc *demoConn) download(name string, chunk int) []byte {
	dc.t.Helper()
	var out []byte
	for {
		var got struct {
			Data string
			Left int
		}
		dc.result("FS.Get", map[string]any{"filename": name, "offset": len(out), "len": chunk}, &got)
		b, err := base64.StdEncoding.DecodeString(got.Data)
		if err != nil {
			dc.t.Fatal(err)
		}
		out = append(out, b...)
		if got.Left == 0 {
			return out
		}
	}
}

type fsEntry struct {
	Name string
	Size int
}

func (dc *demoConn) listExt() map[string]int {
	dc.t.Helper()
	var list []fsEntry
	dc.result("FS.ListExt", nil, &list)
	m := map[string]int{}
	for _, e := range list {
		m[e.Name] = e.Size
	}
	return m
}

func TestDemoFSRoundTrip(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	data := pattern(100 << 10)
	if r := dc.upload("big.bin", data, 2048); r != nil {
		t.Fatalf("upload: %s", r.raw)
	}
	if got := dc.download("big.bin", 3000); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(data))
	}
	if m := dc.listExt(); m["big.bin"] != len(data) || len(m) != 1 {
		t.Errorf("FS.ListExt: %v", m)
	}
	// overwrite in the middle, append, and a whole-file read
	dc.result("FS.Put", map[string]any{"filename": "big.bin", "offset": 5000, "data": base64.StdEncoding.EncodeToString([]byte("HELLO"))}, nil)
	dc.result("FS.Put", map[string]any{"filename": "big.bin", "append": true, "data": base64.StdEncoding.EncodeToString([]byte("TAIL"))}, nil)
	copy(data[5000:], "HELLO")
	data = append(data, "TAIL"...)
	var whole struct {
		Data string
		Left int
	}
	dc.result("FS.Get", map[string]any{"filename": "/big.bin"}, &whole)
	if got, _ := base64.StdEncoding.DecodeString(whole.Data); !bytes.Equal(got, data) || whole.Left != 0 {
		t.Errorf("after overwrite and append: %d bytes, left %d", len(got), whole.Left)
	}
	// the file system survives a reset
	dc.reset()
	if got := dc.download("big.bin", 4096); !bytes.Equal(got, data) {
		t.Errorf("after reset: %d bytes, differ", len(got))
	}
	var list []string
	dc.result("FS.List", nil, &list)
	if len(list) != 1 || list[0] != "big.bin" {
		t.Errorf("FS.List: %v", list)
	}
	dc.result("FS.Remove", map[string]any{"filename": "big.bin"}, nil)
	dc.result("FS.List", nil, &list)
	if len(list) != 0 {
		t.Errorf("FS.List after remove: %v", list)
	}
}

func TestDemoFSFull(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	var info struct {
		FSSize int `json:"fs_size"`
		FSFree int `json:"fs_free"`
	}
	dc.result("Sys.GetInfo", nil, &info)
	if err := dc.upload("a.bin", pattern(400<<10), 2048); err != nil {
		t.Fatalf("400 KiB of %d: %s", info.FSFree, err.raw)
	}
	// 104 KiB fit, 200 KiB do not
	r := dc.upload("b.bin", pattern(200<<10), 2048)
	if r == nil || r.Error.Code != 500 {
		t.Fatalf("writing past the end: %+v", r)
	}
	m := dc.listExt()
	if m["a.bin"] != 400<<10 || m["b.bin.part"]%2048 != 0 || m["b.bin.part"] == 0 || m["b.bin.part"] > info.FSSize-400<<10 {
		t.Errorf("after a full file system: %v", m)
	}
	// what was acknowledged is on flash; the failed chunk left nothing
	part := dc.download("b.bin.part", 4096)
	if !bytes.Equal(part, pattern(200 << 10)[:len(part)]) {
		t.Errorf("partial upload does not hold the acknowledged chunks")
	}
	dc.result("FS.Remove", map[string]any{"filename": "b.bin.part"}, nil)
	dc.result("Sys.GetInfo", nil, &info)
	if info.FSFree != info.FSSize-100*4096 {
		t.Errorf("fs_free %d after removing the partial upload, want %d", info.FSFree, info.FSSize-100*4096)
	}
}

// A reset in the middle of an upload leaves the chunks acknowledged so
// far and a size that says so; the final name does not appear.
func TestDemoFSResetDuringUpload(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	data := pattern(10 << 10)
	for off := 0; off < 6<<10; off += 2048 {
		dc.result("FS.Put", map[string]any{"filename": "up.part", "append": off > 0, "data": base64.StdEncoding.EncodeToString(data[off : off+2048])}, nil)
	}
	// one more chunk, and reset while it may be in progress
	body, _ := dc.request("FS.Put", map[string]any{"filename": "up.part", "append": true, "data": base64.StdEncoding.EncodeToString(data[6<<10 : 8<<10])})
	dc.write(frame(body))
	dc.reset()
	m := dc.listExt()
	size := m["up.part"]
	if size != 6<<10 && size != 8<<10 || len(m) != 1 {
		t.Fatalf("after reset: %v", m)
	}
	if got := dc.download("up.part", 4096); !bytes.Equal(got, data[:size]) {
		t.Errorf("content after reset differs")
	}
}

// pattern is n bytes of a pseudo-random sequence, the same every time.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}
