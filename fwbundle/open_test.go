package fwbundle

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mos-tool/mos/fwimage"
)

var (
	appData  = []byte("app data, not an image")
	bootData = []byte("boot data")
)

// manifestFor writes a manifest for parts given as JSON objects.
func manifestFor(parts string) []byte {
	return []byte(`{"name": "t", "platform": "esp32", "version": "1", "parts": {` + parts + `}}`)
}

func goodParts() string {
	return fmt.Sprintf(`"app": {"type": "app", "addr": 65536, "src": "app.bin", "cs_sha1": %q, "cs_sha256": %q},
		"boot": {"type": "boot", "addr": "0x1000", "src": "boot.bin", "cs_sha256": %q},
		"nvs": {"type": "nvs", "addr": 36864, "size": 16, "fill": 255}`,
		sha1hex(appData), sha256hex(appData), sha256hex(bootData))
}

func readZip(t *testing.T, z []byte) (*Bundle, error) {
	t.Helper()
	return Read(bytes.NewReader(z), int64(len(z)), "fw.zip")
}

func TestReadGood(t *testing.T) {
	for _, dir := range []string{"", "demo-1.0/"} {
		t.Run("dir="+dir, func(t *testing.T) {
			z := makeZip(t,
				entry{dir, nil},
				entry{dir + "manifest.json", manifestFor(goodParts())},
				entry{dir + "app.bin", appData},
				entry{dir + "boot.bin", bootData},
			)
			if dir == "" {
				z = makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", bootData})
			}
			b, err := readZip(t, z)
			if err != nil {
				t.Fatal(err)
			}
			if b.Platform != "esp32" || b.Manifest.Name != "t" || len(b.Parts) != 3 {
				t.Fatalf("bundle %+v", b)
			}
			// Sorted by address.
			want := []struct {
				name string
				addr uint32
				data []byte
			}{{"boot", 0x1000, bootData}, {"nvs", 0x9000, bytes.Repeat([]byte{0xFF}, 16)}, {"app", 0x10000, appData}}
			for i, w := range want {
				p := b.Parts[i]
				if p.Name != w.name || p.Addr != w.addr || !bytes.Equal(p.Data, w.data) || !p.Flash {
					t.Errorf("part %d = %s@0x%x %q, want %s@0x%x", i, p.Name, p.Addr, p.Data, w.name, w.addr)
				}
			}
			if b.Part("app").Source != "fw.zip:"+dir+"app.bin" || b.Part("nvs").Source != "fill 0xff" {
				t.Errorf("sources %q %q", b.Part("app").Source, b.Part("nvs").Source)
			}
		})
	}
}

// Part files are matched by base name when not next to the manifest, as
// mos does.
func TestReadByBaseName(t *testing.T) {
	z := makeZip(t,
		entry{"x/manifest.json", manifestFor(goodParts())},
		entry{"x/bin/app.bin", appData},
		entry{"boot.bin", bootData},
	)
	if _, err := readZip(t, z); err != nil {
		t.Fatal(err)
	}
}

func TestReadBad(t *testing.T) {
	good := makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", bootData})
	flipped := bytes.Clone(good)
	i := bytes.Index(flipped, appData)
	flipped[i] ^= 0xFF // stored data no longer matches the zip's CRC
	huge := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Store})
		w.Write(manifestFor(goodParts()))
		// A header claiming 1 GiB: refused before inflating anything.
		w, _ = zw.CreateRaw(&zip.FileHeader{Name: "app.bin", Method: zip.Deflate, UncompressedSize64: 1 << 30, CompressedSize64: 4})
		w.Write([]byte{1, 2, 3, 4})
		zw.Close()
		return buf.Bytes()
	}()
	tests := []struct {
		name string
		zip  []byte
		kind error
	}{
		{"not a zip", []byte("hello, this is not a zip file at all"), ErrBadZip},
		{"empty", nil, ErrBadZip},
		{"truncated", good[:len(good)/2], ErrBadZip},
		{"zip CRC", flipped, ErrBadZip},
		{"no manifest", makeZip(t, entry{"app.bin", appData}), ErrNoManifest},
		{"manifest too deep", makeZip(t, entry{"a/b/manifest.json", manifestFor(goodParts())}), ErrNoManifest},
		{"two manifests", makeZip(t, entry{"a/manifest.json", manifestFor(goodParts())}, entry{"b/manifest.json", manifestFor(goodParts())}), ErrNoManifest},
		{"manifest not JSON", makeZip(t, entry{"manifest.json", []byte("{")}), ErrBadManifest},
		{"no parts", makeZip(t, entry{"manifest.json", manifestFor("")}), ErrBadManifest},
		{"missing src", makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}), ErrMissingSrc},
		{"sha1 mismatch", makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", []byte("other")}, entry{"boot.bin", bootData}), ErrChecksum},
		{"sha256 mismatch", makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", appData}), ErrChecksum},
		{"src and fill", makeZip(t, entry{"manifest.json", manifestFor(`"a": {"src": "a.bin", "fill": 0, "size": 4}`)}, entry{"a.bin", appData}), ErrBadManifest},
		{"neither src nor fill", makeZip(t, entry{"manifest.json", manifestFor(`"a": {"addr": 0}`)}), ErrBadManifest},
		{"fill without size", makeZip(t, entry{"manifest.json", manifestFor(`"a": {"fill": 0}`)}), ErrBadManifest},
		{"huge fill", makeZip(t, entry{"manifest.json", manifestFor(`"a": {"fill": 0, "size": 4000000000}`)}), ErrTooLarge},
		{"huge entry", huge, ErrTooLarge},
		{"fills add up", makeZip(t, entry{"manifest.json", manifestFor(`"a": {"fill": 0, "size": 50000000}, "b": {"fill": 0, "size": 50000000}, "c": {"fill": 0, "size": 50000000}`)}), ErrTooLarge},
		{"partition fills add up", makeZip(t, entry{"manifest.json", manifestFor(partitionFills)}, entry{"pt.bin", bigTable(t)}), ErrTooLarge},
		{"dot-dot name", makeZip(t, entry{"../manifest.json", manifestFor(goodParts())}), ErrBadZip},
		{"absolute name", makeZip(t, entry{"/manifest.json", manifestFor(goodParts())}), ErrBadZip},
		{"backslash name", makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{`..\app.bin`, appData}), ErrBadZip},
		{"duplicate name", makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"manifest.json", nil}), ErrBadZip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := readZip(t, tt.zip)
			if b != nil {
				t.Errorf("got a bundle from a bad zip")
			}
			badInput(t, err, tt.kind)
			if !strings.HasPrefix(err.Error(), "fw.zip: ") {
				t.Errorf("message %q does not name the file", err)
			}
		})
	}
}

func TestChecksumErrorDetails(t *testing.T) {
	z := makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", appData})
	_, err := readZip(t, z)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Part != "boot" || ce.Algo != "sha256" || ce.Want != sha256hex(bootData) || ce.Got != sha256hex(appData) {
		t.Fatalf("error %#v", err)
	}
}

func TestReadPartitionNames(t *testing.T) {
	pt := testTable(t)
	parts := fmt.Sprintf(`"pt": {"type": "pt", "addr": 32768, "src": "pt.bin", "cs_sha256": %q},
		"app": {"type": "app", "ptn": "factory", "src": "app.bin"},
		"nvs": {"type": "nvs", "ptn": "nvs", "fill": 255},
		"fs": {"type": "fs", "ptn": "fs", "addr": 4096, "src": "fs.bin"}`, sha256hex(pt))
	z := makeZip(t, entry{"manifest.json", manifestFor(parts)}, entry{"pt.bin", pt}, entry{"app.bin", appData}, entry{"fs.bin", bootData})
	b, err := readZip(t, z)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"pt": 0x8000, "app": 0x10000, "nvs": 0x9000, "fs": 0x111000} {
		if got := b.Part(name).Addr; got != want {
			t.Errorf("%s at 0x%x, want 0x%x", name, got, want)
		}
	}
	if n := len(b.Part("nvs").Data); n != 0x6000 {
		t.Errorf("nvs fill of %d bytes, want the partition's 0x6000", n)
	}

	for _, bad := range []string{
		`"x": {"type": "data", "ptn": "nope", "fill": 0, "size": 4}`,
		`"x": {"type": "data", "ptn": "nvs", "addr": 65536, "fill": 0, "size": 4}`,
	} {
		parts := fmt.Sprintf(`"pt": {"type": "pt", "addr": 32768, "src": "pt.bin"}, %s`, bad)
		_, err := readZip(t, makeZip(t, entry{"manifest.json", manifestFor(parts)}, entry{"pt.bin", pt}))
		badInput(t, err, ErrBadManifest)
	}
}

func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "fw.zip")
	os.WriteFile(name, makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", bootData}), 0o644)
	b, err := Open(name)
	if err != nil || b.Source != name {
		t.Fatalf("Open: %v", err)
	}

	_, err = Open(filepath.Join(dir, "absent.zip"))
	badInput(t, err, ErrBadZip)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.(*Error).Hint(), "file name") {
		t.Errorf("absent file: %v", err)
	}
	_, err = Open(dir)
	badInput(t, err, ErrBadZip)

	if os.Geteuid() != 0 { // root reads anything
		os.Chmod(name, 0)
		_, err = Open(name)
		var e *Error
		if !errors.As(err, &e) || e.ExitCode() != exitPermission {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

// partitionFills are fills sized by their 48 MiB partition (size 0):
// together past MaxTotalSize.
const partitionFills = `"pt": {"type": "pt", "src": "pt.bin"},
	"a": {"ptn": "big", "fill": 0}, "b": {"ptn": "big", "fill": 0}, "c": {"ptn": "big", "fill": 0}`

func bigTable(t *testing.T) []byte {
	pt := &fwimage.PartitionTable{Partitions: []fwimage.Partition{
		{Type: fwimage.PartTypeData, SubType: fwimage.PartSubDataFAT, Offset: 0x100000, Size: 48 << 20, Label: "big"}}}
	b, err := pt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
