package fwbundle

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// files writes name -> content into a temporary folder and returns it.
func files(t *testing.T, fs map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range fs {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseInputsPairs(t *testing.T) {
	dir := files(t, map[string][]byte{"boot.bin": bootData, "app.bin": appData, "pt.bin": {1, 2}})
	in := func(n string) string { return filepath.Join(dir, n) }
	tests := []struct {
		name string
		args []string
	}{
		{"colon pairs", []string{"0x10000:" + in("app.bin"), "4096:" + in("boot.bin"), "0x8000:" + in("pt.bin")}},
		{"esptool style", []string{"0x1000", in("boot.bin"), "0x8000", in("pt.bin"), "65536", in("app.bin")}},
		{"mixed", []string{"0x1000", in("boot.bin"), "0x8000:" + in("pt.bin"), "0x10000:" + in("app.bin")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseInputs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if b.Platform != "" || b.Manifest != nil || len(b.Parts) != 3 {
				t.Fatalf("bundle %+v", b)
			}
			for i, want := range []uint32{0x1000, 0x8000, 0x10000} {
				if b.Parts[i].Addr != want || !b.Parts[i].Flash {
					t.Errorf("part %d at 0x%x, want 0x%x", i, b.Parts[i].Addr, want)
				}
			}
			if !bytes.Equal(b.Parts[2].Data, appData) || b.Parts[2].Source != in("app.bin") || b.Parts[2].Name != "app.bin" {
				t.Errorf("app part %+v", b.Parts[2])
			}
		})
	}
}

func TestParseInputsSingle(t *testing.T) {
	z := makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", bootData})
	dir := files(t, map[string][]byte{"fw.bundle": z, "app.bin": appData})
	b, err := ParseInputs([]string{filepath.Join(dir, "fw.bundle")}) // a zip by content, whatever its name
	if err != nil || b.Manifest == nil || b.Platform != "esp32" {
		t.Fatalf("zip: %v %+v", err, b)
	}

	_, err = ParseInputs([]string{filepath.Join(dir, "app.bin")})
	var ae *ArgError
	if !errors.As(err, &ae) || ae.ExitCode() != 2 || ae.Hint() == "" {
		t.Errorf("raw file without address: %v", err)
	}
}

func TestParseInputsErrors(t *testing.T) {
	dir := files(t, map[string][]byte{"app.bin": appData})
	app := filepath.Join(dir, "app.bin")
	absent := filepath.Join(dir, "absent.bin")
	for _, args := range [][]string{nil, {"0x1000"}, {"zz:" + app, "0x0:" + app}, {app, "0x0:" + app}, {"0x1000", app, "0x2000"}} {
		_, err := ParseInputs(args)
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Errorf("%q: %v, want an ArgError", args, err)
		}
	}
	for _, args := range [][]string{{"0x1000:" + absent}, {"0x1000:" + dir}} {
		_, err := ParseInputs(args)
		badInput(t, err, ErrMissingSrc)
	}
	_, err := ParseInputs([]string{absent})
	badInput(t, err, ErrNoInput)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent: %v", err)
	}
	// A file given on the command line is not talked about as if
	// flasher_args.json had named it.
	if h := err.(*Error).Hint(); strings.Contains(h, "flasher_args") {
		t.Errorf("absent: hint %q", h)
	}
}

func TestParseInputsMessages(t *testing.T) {
	dir := files(t, map[string][]byte{"app.bin": appData, "idf/build/flasher_args.json": []byte(flasherArgsJSON),
		"plain/x.txt": nil, "fa/flasher_args.json": []byte(`{"flash_files": {"0x0": "absent.bin"}}`)})
	app := filepath.Join(dir, "app.bin")
	tests := []struct {
		name string
		args []string
		want string // in the message or the hint
	}{
		{"bad address", []string{"zz:" + app}, `"zz" is not a flash address`},
		{"bad address among pairs", []string{"0x0:" + app, "zz:" + app}, `"zz" is not a flash address`},
		{"project folder", []string{filepath.Join(dir, "idf")}, "a folder, not a bundle: this is an ESP-IDF build; give its " + filepath.Join(dir, "idf", "build", "flasher_args.json")},
		{"build folder", []string{filepath.Join(dir, "idf", "build")}, "give its " + filepath.Join(dir, "idf", "build", "flasher_args.json")},
		{"other folder", []string{filepath.Join(dir, "plain")}, "a folder, not a bundle: give a bundle zip"},
		{"file listed in flasher_args.json", []string{filepath.Join(dir, "fa", "flasher_args.json")}, "are relative to its folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInputs(tt.args)
			if err == nil {
				t.Fatal("no error")
			}
			text := err.Error()
			var h interface{ Hint() string }
			if errors.As(err, &h) {
				text += "\n" + h.Hint()
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("%s\nlacks %q", text, tt.want)
			}
		})
	}
}

const flasherArgsJSON = `{
    "write_flash_args" : [ "--flash_mode", "dio", "--flash_size", "4MB", "--flash_freq", "80m" ],
    "flash_settings" : { "flash_mode": "dio", "flash_size": "4MB", "flash_freq": "80m" },
    "flash_files" : {
        "0x0" : "bootloader/bootloader.bin",
        "0x10000" : "hello.bin",
        "0x8000" : "partition_table/partition-table.bin"
    },
    "bootloader" : { "offset" : "0x0", "file" : "bootloader/bootloader.bin", "encrypted" : "false" },
    "app" : { "offset" : "0x10000", "file" : "hello.bin", "encrypted" : "false" },
    "partition-table" : { "offset" : "0x8000", "file" : "partition_table/partition-table.bin", "encrypted" : "false" },
    "extra_esptool_args" : { "after" : "hard_reset", "before" : "default_reset", "stub" : true, "chip" : "esp32c3" }
}`

func TestParseInputsFlasherArgs(t *testing.T) {
	dir := files(t, map[string][]byte{
		"build/flasher_args.json":                        []byte(flasherArgsJSON),
		"build/bootloader/bootloader.bin":                bootData,
		"build/hello.bin":                                appData,
		"build/partition_table/partition-table.bin":      testTable(t),
		"build/partition_table/partition-table-copy.bin": nil,
	})
	b, err := ParseInputs([]string{filepath.Join(dir, "build", "flasher_args.json")})
	if err != nil {
		t.Fatal(err)
	}
	if b.Platform != "esp32c3" || b.FlashMode != "dio" || b.FlashSize != "4MB" || b.FlashFreq != "80m" {
		t.Errorf("bundle %+v", b)
	}
	want := []struct {
		name, typ string
		addr      uint32
	}{{"bootloader", "boot", 0}, {"partition-table", "pt", 0x8000}, {"app", "app", 0x10000}}
	if len(b.Parts) != len(want) {
		t.Fatalf("%d parts", len(b.Parts))
	}
	for i, w := range want {
		if p := b.Parts[i]; p.Name != w.name || p.Type != w.typ || p.Addr != w.addr {
			t.Errorf("part %d = %s/%s@0x%x, want %+v", i, p.Name, p.Type, p.Addr, w)
		}
	}
	if !bytes.Equal(b.Part("app").Data, appData) {
		t.Errorf("app data %q", b.Part("app").Data)
	}

	for content, kind := range map[string]error{
		`{"flash_files": {"0x0": "absent.bin"}}`: ErrMissingSrc,
		`{"flash_files": {"zz": "hello.bin"}}`:   ErrBadManifest,
		`{"flash_files": {}}`:                    ErrBadManifest,
		`{`:                                      ErrBadManifest,
	} {
		name := filepath.Join(dir, "build", "bad.json")
		os.WriteFile(name, []byte(content), 0o644)
		_, err := ParseInputs([]string{name})
		badInput(t, err, kind)
	}
}

// flasher_args.json's flash settings are checked when it is read, before
// any board is involved.
func TestFlasherArgsBadFlashSettings(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.bin"), []byte{1, 2, 3, 4}, 0o644)
	args := `{"flash_files": {"0x10000": "app.bin"}, "flash_settings": {"flash_mode": "quad", "flash_size": "4MB", "flash_freq": "40m"}}`
	name := filepath.Join(dir, "flasher_args.json")
	os.WriteFile(name, []byte(args), 0o644)
	_, err := ParseFlasherArgs(name)
	if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), `flash_settings: unknown flash mode "quad"`) {
		t.Fatalf("err %v", err)
	}
}
