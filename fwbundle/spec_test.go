package fwbundle

import (
	"bytes"
	"compress/flate"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mos-tool/mos/fwimage"
)

const testSpec = `{
  "name": "t", "platform": "esp32c3", "version": "2.0", "custom": 1,
  "parts": {
    "boot": {"type": "boot", "addr": "0x0", "image": "boot.json", "update": false},
    "pt":   {"type": "pt", "addr": "0x8000", "src": "pt.bin", "partition_table": "pt.json"},
    "app":  {"type": "app", "ptn": "factory", "src": "app.bin", "image": "app.json"},
    "blob": {"type": "data", "addr": "0x300000", "data": [{"text": "hi"}, {"hex": "00ff"}, {"fill": 7, "length": 4}, {"file": "raw.bin"}]},
    "raw":  {"type": "data", "addr": "0x310000", "src": "raw.bin"},
    "nvs":  {"type": "nvs", "ptn": "nvs", "fill": 255, "size": 24576}
  }
}`

const testBoot = `{"flash_mode": "dio", "flash_size": "4MB", "flash_freq": "80m", "entry": "0x403cc71a", "hash_appended": true,
  "segments": [{"addr": "0x3fcd5820", "data": [{"gen": "rodata", "seed": 1, "length": 1000}]},
               {"addr": "0x403cc710", "data": [{"gen": "code", "isa": "riscv", "seed": 2, "length": 3000}]}]}`

const testApp = `{"flash_mode": "dio", "flash_size": "4MB", "flash_freq": "80m", "entry": "0x40380000", "hash_appended": true,
  "app_desc": {"project_name": "proj", "version": "2.0", "date": "Jan  1 2025", "time": "00:00:00", "idf_ver": "v5.3.1"},
  "segments": [{"addr": "0x3c000020", "data": [{"gen": "rodata", "seed": 3, "length": 2000}]},
               {"addr": "0x42000020", "data": [{"gen": "code", "isa": "riscv", "seed": 4, "length": 5000}, {"gen": "random", "seed": 5, "length": 10}]}]}`

const testPT = `{"partitions": [
  {"label": "nvs", "type": "data", "subtype": "nvs", "offset": "0x9000", "size": "0x6000"},
  {"label": "factory", "type": "app", "subtype": "factory", "offset": "0x10000", "size": "0x100000"},
  {"label": "ota", "type": "app", "subtype": "ota_3", "offset": "0x110000", "size": "0x100000", "flags": ["readonly"]},
  {"label": "fs", "type": "data", "subtype": "0x99", "offset": "0x210000", "size": "0x10000"}]}`

func specDir(t *testing.T, over map[string]string) string {
	t.Helper()
	fs := map[string][]byte{}
	for name, s := range map[string]string{"spec.json": testSpec, "boot.json": testBoot, "app.json": testApp, "pt.json": testPT, "raw.bin": "RAW"} {
		fs[name] = []byte(s)
	}
	for name, s := range over {
		fs[name] = []byte(s)
	}
	return files(t, fs)
}

func TestBuildSpec(t *testing.T) {
	dir := specDir(t, nil)
	m, srcs, err := BuildSpec(filepath.Join(dir, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Parts["boot"].Src != "boot.bin" || m.Parts["raw"].Src != "raw.bin" || m.Parts["blob"].Src != "blob.bin" || m.Parts["pt"].Src != "pt.bin" {
		t.Errorf("srcs: %+v", m.Parts)
	}
	for _, p := range m.Parts {
		for _, k := range sourceKeys {
			if _, ok := p.Extra[k]; ok {
				t.Errorf("spec key %q left in the manifest", k)
			}
		}
	}
	if string(m.Extra["custom"]) != "1" || string(m.Parts["boot"].Extra["update"]) != "false" {
		t.Errorf("extra keys lost")
	}
	if got := srcs["blob.bin"]; !bytes.Equal(got, []byte("hi\x00\xff\x07\x07\x07\x07RAW")) {
		t.Errorf("blob %q", got)
	}

	var buf bytes.Buffer
	if err := Pack(&buf, m, srcs); err != nil {
		t.Fatal(err)
	}
	b, err := readZip(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(chip(t, "esp32c3"), 4<<20); err != nil {
		t.Fatal(err)
	}
	img, err := fwimage.Parse(b.Part("app").Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Verify(); err != nil {
		t.Fatal(err)
	}
	if img.ChipID != 5 || img.AppDesc == nil || img.AppDesc.ProjectName != "proj" || img.AppDesc.ELFSHA256 == [32]byte{} || len(img.Segments) != 2 {
		t.Errorf("app image %+v %+v", img, img.AppDesc)
	}
	if b.Part("app").Addr != 0x10000 || img.Segments[1].Addr != 0x42000020 || len(img.Segments[1].Data) != 5012 {
		t.Errorf("app at 0x%x, segment %+v", b.Part("app").Addr, len(img.Segments[1].Data))
	}
	pt, err := fwimage.ParsePartitionTable(b.Part("pt").Data)
	if err != nil || !pt.HasMD5 || len(pt.Partitions) != 4 {
		t.Fatalf("table %+v %v", pt, err)
	}
	if p := pt.Partitions[2]; p.SubType != fwimage.PartSubAppOTA0+3 || p.Flags != fwimage.PartFlagReadOnly || pt.Partitions[3].SubType != 0x99 {
		t.Errorf("rows %+v", pt.Partitions)
	}

	// Building again gives the same bytes.
	m2, srcs2, _ := BuildSpec(filepath.Join(dir, "spec.json"))
	var buf2 bytes.Buffer
	Pack(&buf2, m2, srcs2)
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Error("spec build is not reproducible")
	}
}

func TestBuildSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		over map[string]string
		kind error
		msg  string
	}{
		{"two sources", map[string]string{"spec.json": `{"platform": "esp32", "parts": {"a": {"file": "raw.bin", "data": []}}}`}, ErrBadManifest, "both"},
		{"missing file", map[string]string{"spec.json": `{"platform": "esp32", "parts": {"a": {"file": "nope.bin"}}}`}, ErrMissingSrc, "nope.bin"},
		{"missing image spec", map[string]string{"spec.json": `{"platform": "esp32", "parts": {"a": {"image": "nope.json"}}}`}, ErrMissingSrc, "nope.json"},
		{"typo in image spec", map[string]string{"boot.json": `{"flash_mode": "dio", "flash_sise": "4MB"}`}, ErrBadManifest, "flash_sise"},
		{"bad flash size", map[string]string{"boot.json": `{"flash_mode": "dio", "flash_size": "3MB", "flash_freq": "40m", "segments": []}`}, ErrBadManifest, "3MB"},
		{"bad piece", map[string]string{"boot.json": strings.Replace(testBoot, `"gen": "rodata"`, `"hex": "00", "gen": "rodata"`, 1)}, ErrBadManifest, "exactly one"},
		{"bad generator", map[string]string{"boot.json": strings.Replace(testBoot, `"gen": "rodata"`, `"gen": "poetry"`, 1)}, ErrBadManifest, "poetry"},
		{"bad isa", map[string]string{"boot.json": strings.Replace(testBoot, `"isa": "riscv"`, `"isa": "arm"`, 1)}, ErrBadManifest, "arm"},
		{"esp8266 desc", map[string]string{"spec.json": strings.Replace(testSpec, "esp32c3", "esp8266", 1)}, ErrBadManifest, "ESP8266"},
		{"bad subtype", map[string]string{"pt.json": strings.Replace(testPT, `"nvs", "offset"`, `"nvx", "offset"`, 1)}, ErrBadManifest, "nvx"},
		{"overlapping table", map[string]string{"pt.json": strings.Replace(testPT, `"0x110000"`, `"0x100000"`, 1)}, ErrBadManifest, "overlaps"},
		{"unaligned app", map[string]string{"pt.json": strings.Replace(testPT, `"0x110000"`, `"0x111000"`, 1)}, ErrBadManifest, "multiple"},
		{"huge piece", map[string]string{"boot.json": strings.Replace(testBoot, `"length": 1000`, `"length": 100000000`, 1)}, ErrBadManifest, "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := BuildSpec(filepath.Join(specDir(t, tt.over), "spec.json"))
			badInput(t, err, tt.kind)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q lacks %q", err, tt.msg)
			}
		})
	}
}

// The generators give exactly the length asked, the same bytes for the
// same seed, and compress about as real firmware does.
func TestGenerators(t *testing.T) {
	tests := []struct {
		kind, isa  string
		minR, maxR float64 // deflated size / size
	}{
		{GenCode, "xtensa", 0.45, 0.65},
		{GenCode, "riscv", 0.40, 0.60},
		{GenRodata, "", 0.25, 0.45},
		{GenData, "", 0.30, 0.50},
		{GenRandom, "", 0.99, 1.01},
	}
	for _, tt := range tests {
		for _, n := range []int{0, 1, 7, 100001} {
			a, err := generate(tt.kind, tt.isa, 42, n, 0x3F400000)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := generate(tt.kind, tt.isa, 42, n, 0x3F400000)
			c, _ := generate(tt.kind, tt.isa, 43, n, 0x3F400000)
			if len(a) != n || !bytes.Equal(a, b) || (n > 100 && bytes.Equal(a, c)) {
				t.Errorf("%s %s n=%d: len %d, deterministic %v", tt.kind, tt.isa, n, len(a), bytes.Equal(a, b))
			}
			if n < 100000 {
				continue
			}
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, flate.BestCompression)
			w.Write(a)
			w.Close()
			if r := float64(z.Len()) / float64(n); r < tt.minR || r > tt.maxR {
				t.Errorf("%s %s compresses to %.2f, want %.2f-%.2f", tt.kind, tt.isa, r, tt.minR, tt.maxR)
			}
		}
	}
}

// Pinned output: the committed demo images depend on the generators never
// changing. If this fails, the generators changed: regenerate the images
// (make firmware-images) and update the digest.
func TestGeneratorsPinned(t *testing.T) {
	var all []byte
	for _, k := range [][2]string{{GenCode, "xtensa"}, {GenCode, "riscv"}, {GenRodata, ""}, {GenData, ""}, {GenRandom, ""}} {
		b, _ := generate(k[0], k[1], 7, 4096, 0x40000000)
		all = append(all, b...)
	}
	const want = "ca342984730f7729773d535b9475080550127e99709815b5938bcbfa25e0c7e1"
	if got := sha256hex(all); got != want {
		t.Errorf("generators' output changed: sha256 %s, pinned %s", got, want)
	}
}
