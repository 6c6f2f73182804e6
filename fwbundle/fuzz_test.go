package fwbundle

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzRead: whatever the zip, Read returns a bundle or one of the typed
// errors, and never panics or allocates past the limits.
func FuzzRead(f *testing.F) {
	m, srcs := packManifest()
	var buf bytes.Buffer
	if err := Pack(&buf, m, srcs); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	pt := testTable(f)
	f.Add(makeZip(f, entry{"d/manifest.json", manifestFor(`"pt": {"type": "pt", "src": "pt.bin"}, "n": {"ptn": "nvs", "fill": 1}`)}, entry{"d/pt.bin", pt}))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	kinds := []error{ErrBadZip, ErrNoManifest, ErrBadManifest, ErrMissingSrc, ErrChecksum, ErrTooLarge}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Read(bytes.NewReader(data), int64(len(data)), "f.zip")
		if err == nil {
			if b == nil || len(b.Parts) == 0 || b.Size() > MaxTotalSize+MaxPartSize {
				t.Fatalf("bundle %+v", b)
			}
			return
		}
		for _, k := range kinds {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("untyped error %v", err)
	})
}
