package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/output"
)

// fwFiles writes a bootloader-like ESP32 image, an app blob and a
// partition table into a temporary folder.
func fwFiles(t *testing.T) (dir, boot, app, pt string) {
	t.Helper()
	dir = t.TempDir()
	c, _ := chips.ByKey("esp32")
	img, err := fwimage.Build(fwimage.Spec{Chip: c, FlashMode: 2, FlashSizeCode: 2, Entry: 0x40080400, HashAppended: true,
		Segments: []fwimage.Segment{{Addr: 0x3FFF0030, Data: bytes.Repeat([]byte("boot"), 100)}}})
	if err != nil {
		t.Fatal(err)
	}
	table, _ := (&fwimage.PartitionTable{HasMD5: true, Partitions: []fwimage.Partition{
		{Type: fwimage.PartTypeApp, SubType: fwimage.PartSubAppFactory, Offset: 0x10000, Size: 0x100000, Label: "factory"},
	}}).Encode()
	boot, app, pt = filepath.Join(dir, "boot.bin"), filepath.Join(dir, "app.bin"), filepath.Join(dir, "pt.bin")
	os.WriteFile(boot, img, 0o644)
	os.WriteFile(app, bytes.Repeat([]byte("app!"), 1000), 0o644)
	os.WriteFile(pt, table, 0o644)
	return dir, boot, app, pt
}

func TestFwPackAndInfo(t *testing.T) {
	dir, boot, app, _ := fwFiles(t)
	out := filepath.Join(dir, "fw.zip")
	r := mos{}.run(t, "fw", "pack", "--out", out, "--platform", "ESP32", "--name", "demo", "--version", "1.0",
		"boot:boot:0x1000:"+boot, "app:app:65536:"+app)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Wrote "+out) || !strings.Contains(r.stdout, "demo 1.0 for esp32") {
		t.Fatalf("pack: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = mos{}.run(t, "fw", "info", out)
	for _, want := range []string{"Firmware:  demo 1.0", "Platform:  esp32", "boot  boot  0x001000", "app   app   0x010000",
		"ESP32 image (esp32), entry 0x40080400, dio 4MB 40m, 1 segments", "SHA-256 ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}

	r = mos{}.run(t, "fw", "info", "--json", out)
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	parts := res["parts"].([]any)
	if res["kind"] != "bundle" || len(parts) != 2 {
		t.Fatalf("result %v", res)
	}
	bootInfo := parts[0].(map[string]any)
	img := bootInfo["image"].(map[string]any)
	if bootInfo["checksums"] != "ok" || bootInfo["addr"] != float64(0x1000) || img["chip"] != "ESP32" || img["valid"] != true || img["hash_ok"] != true {
		t.Errorf("boot part %v", bootInfo)
	}
}

// The old mos name and part syntax still work.
func TestCreateFwBundleAlias(t *testing.T) {
	dir, _, app, _ := fwFiles(t)
	out := filepath.Join(dir, "old.zip")
	r := mos{}.run(t, "create-fw-bundle", "-o", out, "--platform", "esp8266",
		"fw:type=app,src="+app+",addr=0x0,encrypt=false", "fs:type=fs,addr=0x80000,size=4096,fill=255")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b, err := fwbundle.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	fw, fs := b.Part("fw"), b.Part("fs")
	if fw.Addr != 0 || fw.Manifest.Src != "app.bin" || string(fw.Manifest.Extra["encrypt"]) != "false" || fs.Addr != 0x80000 || len(fs.Data) != 4096 {
		t.Errorf("parts %+v %+v", fw, fs)
	}
	if help := (mos{}).run(t, "--help").stdout; strings.Contains(help, "create-fw-bundle") {
		t.Errorf("old name shown in help")
	}
}

func TestFwPackTimestamp(t *testing.T) {
	dir, _, app, _ := fwFiles(t)
	out := filepath.Join(dir, "fw.zip")
	r := mos{env: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}}.run(t, "fw", "pack", "-o", out, "--platform", "esp32", "a:app:0x10000:"+app)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, _ := fwbundle.Open(out)
	if b.Manifest.BuildTimestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("timestamp %q", b.Manifest.BuildTimestamp)
	}
}

func TestFwPackErrors(t *testing.T) {
	dir, _, app, _ := fwFiles(t)
	out := filepath.Join(dir, "x.zip")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no out", []string{"--platform", "esp32", "a:app:0:" + app}, output.ExitUsage, "--out is required"},
		{"no parts", []string{"-o", out, "--platform", "esp32"}, output.ExitUsage, "nothing to pack"},
		{"spec and parts", []string{"-o", out, "--spec", "x.json", "a:app:0:" + app}, output.ExitUsage, "not both"},
		{"no platform", []string{"-o", out, "a:app:0:" + app}, output.ExitUsage, "--platform is required"},
		{"unknown platform", []string{"-o", out, "--platform", "z80", "a:app:0:" + app}, output.ExitUsage, "unknown chip"},
		{"bad part", []string{"-o", out, "--platform", "esp32", "a:app"}, output.ExitUsage, "NAME:TYPE:ADDR:FILE"},
		{"bad address", []string{"-o", out, "--platform", "esp32", "a:app:0xZ:" + app}, output.ExitUsage, "not an address"},
		{"bad mos part", []string{"-o", out, "--platform", "esp32", "a:type=app,src"}, output.ExitUsage, "key=value"},
		{"twice", []string{"-o", out, "--platform", "esp32", "a:app:0:" + app, "a:app:0:" + app}, output.ExitUsage, "twice"},
		{"bad timestamp", []string{"-o", out, "--platform", "esp32", "--build-timestamp", "yesterday", "a:app:0:" + app}, output.ExitUsage, "RFC 3339"},
		{"missing file", []string{"-o", out, "--platform", "esp32", "a:app:0:" + filepath.Join(dir, "absent")}, output.ExitBadInput, "missing part file"},
		{"missing spec", []string{"-o", out, "--spec", filepath.Join(dir, "absent.json")}, output.ExitBadInput, "absent.json"},
		{"unwritable out", []string{"-o", filepath.Join(dir, "no", "such", "dir.zip"), "--platform", "esp32", "a:app:0:" + app}, output.ExitFailure, "no such file"},
		{"overlapping parts", []string{"-o", out, "--platform", "esp32", "a:app:0x10000:" + app, "b:data:0x10100:" + app}, output.ExitBadInput, `part "b": parts overlap`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{}.run(t, append([]string{"fw", "pack"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tt.code, r.stderr, tt.msg)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed pack left a file")
	}
}

func TestFwInfoKinds(t *testing.T) {
	dir, boot, _, pt := fwFiles(t)
	r := mos{}.run(t, "fw", "info", "--json", boot)
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	if img, _ := res["image"].(map[string]any); res["kind"] != "image" || img["chip"] != "ESP32" || img["flash_size"] != "4MB" {
		t.Errorf("image: %v", res)
	}
	r = mos{}.run(t, "fw", "info", pt)
	if r.code != 0 || !strings.Contains(r.stdout, "partition table, 1 partitions, MD5 ok") || !strings.Contains(r.stdout, "factory  app   factory  0x010000  0x100000") {
		t.Errorf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "fw", "info", "--chip", "esp32c3", boot)
	if r.code != 0 || !strings.Contains(r.stdout, "ESP32 image") {
		t.Errorf("--chip: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	junk := filepath.Join(dir, "junk.bin")
	os.WriteFile(junk, []byte("hello"), 0o644)
	corrupt := filepath.Join(dir, "corrupt.zip")
	os.WriteFile(corrupt, []byte("PK\x03\x04 and then nothing"), 0o644)
	for _, tt := range []struct {
		file, hint string
		code       int
	}{
		{junk, "ADDR:FILE", output.ExitBadInput},
		{corrupt, "download or build it again", output.ExitBadInput},
		{filepath.Join(dir, "absent.zip"), "check the file name", output.ExitBadInput},
	} {
		r := mos{}.run(t, "fw", "info", "--json", tt.file)
		if r.code != tt.code {
			t.Errorf("%s: exit %d, want %d", tt.file, r.code, tt.code)
			continue
		}
		if e, _ := oneJSON(t, r.stdout)["error"].(map[string]any); !strings.Contains(fmt.Sprint(e["hint"]), tt.hint) {
			t.Errorf("%s: error %v, want hint %q", tt.file, e, tt.hint)
		}
	}
	if r := (mos{}).run(t, "fw", "info", "--chip", "z80", boot); r.code != output.ExitUsage {
		t.Errorf("bad --chip: exit %d", r.code)
	}
}

var demoChips = []string{"esp8266", "esp32", "esp32c3"}

// The committed demo bundles are exactly what their sources build.
func TestDemoImagesReproducible(t *testing.T) {
	for _, c := range demoChips {
		t.Run(c, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), c+"-demo.zip")
			r := mos{}.run(t, "fw", "pack", "--spec", "../../firmware-images/src/"+c+"/spec.json", "--out", out)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			got, _ := os.ReadFile(out)
			want, err := os.ReadFile("../../firmware-images/" + c + "-demo.zip")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("firmware-images/%s-demo.zip differs from what its sources build (%s); run `make firmware-images`",
					c, contentDiff(t, got, want))
			}
		})
	}
}

// contentDiff tells a change of content from a change of compression
// only (a Go release whose compress/flate writes other bytes).
func contentDiff(t *testing.T, a, b []byte) string {
	entries := func(z []byte) map[string]string {
		zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
		if err != nil {
			return nil
		}
		m := map[string]string{}
		for _, f := range zr.File {
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			m[f.Name] = string(data)
		}
		return m
	}
	ea, eb := entries(a), entries(b)
	if fmt.Sprint(ea) == fmt.Sprint(eb) {
		return "same content, other compressed bytes: has compress/flate changed?"
	}
	return "content differs"
}

// The demo bundles are what the virtual device and the docs expect.
func TestDemoImagesContent(t *testing.T) {
	for _, c := range demoChips {
		t.Run(c, func(t *testing.T) {
			name := "../../firmware-images/" + c + "-demo.zip"
			if st, err := os.Stat(name); err != nil || st.Size() > 1<<20 {
				t.Fatalf("%s: %v, want at most 1 MiB", name, err)
			}
			b, err := fwbundle.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			chip, _ := chips.ByKey(c)
			if err := b.Validate(chip, 4<<20); err != nil {
				t.Fatal(err)
			}
			if m := b.Manifest; m.Name != "mos-demo" || m.Version != "1.0.0" || b.Platform != c {
				t.Errorf("manifest %+v", m)
			}
			app := b.Part("app")
			if c == "esp8266" {
				app = b.Part("fw")
			}
			img, err := fwimage.ParseFor(chip, app.Data)
			if err != nil {
				t.Fatal(err)
			}
			if err := img.Verify(); err != nil {
				t.Fatal(err)
			}
			appSize := len(app.Data)
			if c == "esp8266" {
				// No app descriptor: the virtual device knows the demo by
				// this text in the first segment.
				if !bytes.Contains(img.Segments[0].Data, []byte("mos-demo 1.0.0")) || app.Addr != 0 {
					t.Error("ESP8266 image at 0x0 without the demo text in its first segment")
				}
				appSize += len(b.Part("irom").Data)
			} else {
				d := img.AppDesc
				if d == nil || d.ProjectName != "mos-demo" || d.Version != "1.0.0" || d.IDFVersion != "v5.3.1" || app.Addr != 0x10000 {
					t.Errorf("app descriptor %+v at 0x%x", d, app.Addr)
				}
				pt, err := fwimage.ParsePartitionTable(b.Part("pt").Data)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []struct {
					label string
					sub   uint8
				}{{"nvs", fwimage.PartSubDataNVS}, {"phy_init", fwimage.PartSubDataPHY}, {"factory", fwimage.PartSubAppFactory}, {"fs", fwimage.PartSubDataLittleFS}} {
					if p := pt.Find(want.label); p == nil || p.SubType != want.sub {
						t.Errorf("partition %q: %+v", want.label, p)
					}
				}
				if boot := b.Part("boot"); boot.Addr != chip.BootloaderOffset {
					t.Errorf("bootloader at 0x%x", boot.Addr)
				}
			}
			if appSize < 300<<10 || appSize > 600<<10 {
				t.Errorf("app is %d KiB, want 300-600", appSize>>10)
			}
		})
	}
}

func TestFwInfoFlasherArgs(t *testing.T) {
	dir, boot, app, pt := fwFiles(t)
	args := fmt.Sprintf(`{"flash_settings": {"flash_mode": "dio", "flash_size": "4MB", "flash_freq": "40m"},
		"flash_files": {"0x1000": %q, "0x8000": %q, "0x10000": %q},
		"app": {"offset": "0x10000", "file": %q}, "extra_esptool_args": {"chip": "esp32"}}`,
		filepath.Base(boot), filepath.Base(pt), filepath.Base(app), filepath.Base(app))
	name := filepath.Join(dir, "flasher_args.json")
	os.WriteFile(name, []byte(args), 0o644)
	r := mos{}.run(t, "fw", "info", "--json", name)
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	parts, _ := res["parts"].([]any)
	if res["kind"] != "flasher_args" || res["platform"] != "esp32" || res["flash_mode"] != "dio" || len(parts) != 3 {
		t.Fatalf("result %v", res)
	}
	if p := parts[2].(map[string]any); p["name"] != "app" || p["type"] != "app" || p["checksums"] != nil {
		t.Errorf("app part %v", p)
	}
	if r := (mos{}).run(t, "fw", "info", name); !strings.Contains(r.stdout, "Flash:     dio 4MB 40m") {
		t.Errorf("text:\n%s", r.stdout)
	}
}

func TestFwInfoFlagsOverlap(t *testing.T) {
	dir, _, app, _ := fwFiles(t)
	// A bundle another tool made: its manifest places two parts on the
	// same bytes. Pack refuses that, so the zip is written here by hand.
	zipPath := filepath.Join(dir, "ov.zip")
	data, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string]string{
		"manifest.json": `{"name": "ov", "platform": "esp32", "version": "1.0", "parts": {` +
			`"a": {"type": "app", "addr": 65536, "src": "app.bin"}, "b": {"type": "data", "addr": 65792, "src": "app.bin"}}}`,
		"app.bin": string(data),
	} {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	zw.Close()
	if err := os.WriteFile(zipPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mos{}.run(t, "fw", "info", zipPath)
	if r.code != 0 || !strings.Contains(r.stdout, `OVERLAP: part "b" at 0x10100-`) {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "fw", "info", "--json", zipPath)
	ov, _ := oneJSON(t, r.stdout)["result"].(map[string]any)["overlaps"].([]any)
	if len(ov) != 1 {
		t.Errorf("overlaps %v", ov)
	}
}
