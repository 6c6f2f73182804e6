package fwbundle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func packManifest() (*Manifest, map[string][]byte) {
	ff := uint8(0xFF)
	no := false
	m := &Manifest{Name: "demo", Platform: "esp32", Version: "1.0", Parts: map[string]*ManifestPart{
		"app":  {Type: "app", Addr: 0x10000, Src: "app.bin"},
		"boot": {Type: "boot", Addr: 0x1000, Src: "boot.bin", Flash: &no},
		"nvs":  {Type: "nvs", Addr: 0x9000, Size: 0x4000, Fill: &ff},
	}}
	return m, map[string][]byte{"app.bin": bytes.Repeat(appData, 100), "boot.bin": bootData}
}

func TestPackRoundTrip(t *testing.T) {
	m, srcs := packManifest()
	var buf bytes.Buffer
	if err := Pack(&buf, m, srcs); err != nil {
		t.Fatal(err)
	}
	if app := m.Parts["app"]; app.CSSHA1 != sha1hex(srcs["app.bin"]) || app.CSSHA256 != sha256hex(srcs["app.bin"]) || int(app.Size) != len(srcs["app.bin"]) {
		t.Errorf("manifest not filled in: %+v", app)
	}
	b, err := readZip(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if b.Platform != "esp32" || len(b.Parts) != 3 || !bytes.Equal(b.Part("app").Data, srcs["app.bin"]) || b.Part("boot").Flash {
		t.Errorf("read back %+v", b)
	}
	if len(b.Part("nvs").Data) != 0x4000 {
		t.Errorf("nvs %d bytes", len(b.Part("nvs").Data))
	}
}

// The same input gives the same bytes, in the layout mos's updater wants.
func TestPackDeterministic(t *testing.T) {
	var outs [2][]byte
	for i := range outs {
		m, srcs := packManifest()
		var buf bytes.Buffer
		if err := Pack(&buf, m, srcs); err != nil {
			t.Fatal(err)
		}
		outs[i] = buf.Bytes()
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("two packs of the same input differ")
	}
	z := outs[0]
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Flags&0x8 != 0 || len(f.Extra) != 0 || f.ModifiedDate != zipEpoch || f.ModifiedTime != 0 {
			t.Errorf("%s: flags 0x%x, extra %x, date 0x%x time 0x%x", f.Name, f.Flags, f.Extra, f.ModifiedDate, f.ModifiedTime)
		}
	}
	if strings.Join(names, ",") != "manifest.json,app.bin,boot.bin" {
		t.Errorf("entries %v", names)
	}
	// Local headers carry the CRC and sizes themselves.
	for off := 0; off+30 <= len(z) && binary.LittleEndian.Uint32(z[off:]) == 0x04034b50; {
		crc, csize := binary.LittleEndian.Uint32(z[off+14:]), binary.LittleEndian.Uint32(z[off+18:])
		nlen, xlen := binary.LittleEndian.Uint16(z[off+26:]), binary.LittleEndian.Uint16(z[off+28:])
		if crc == 0 || csize == 0 {
			t.Errorf("local header at %d without CRC or size", off)
		}
		off += 30 + int(nlen) + int(xlen) + int(csize)
	}
}

func TestPackErrors(t *testing.T) {
	tests := []struct {
		name  string
		part  ManifestPart
		srcs  map[string][]byte
		wants string
	}{
		{"no data", ManifestPart{Src: "a.bin"}, nil, "no data"},
		{"path in src", ManifestPart{Src: "dir/a.bin"}, map[string][]byte{"dir/a.bin": {1}}, "plain file name"},
		{"manifest as src", ManifestPart{Src: "manifest.json"}, map[string][]byte{"manifest.json": {1}}, "plain file name"},
		{"neither", ManifestPart{}, nil, "neither src nor fill"},
		{"fill without size", ManifestPart{Fill: new(uint8)}, nil, "needs a size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manifest{Parts: map[string]*ManifestPart{"p": &tt.part}}
			err := Pack(&bytes.Buffer{}, m, tt.srcs)
			if err == nil || !strings.Contains(err.Error(), tt.wants) {
				t.Errorf("error %v, want %q", err, tt.wants)
			}
		})
	}
	if err := Pack(&bytes.Buffer{}, &Manifest{}, nil); err == nil {
		t.Error("empty manifest packed")
	}
}
