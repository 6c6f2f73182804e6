package fwbundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// A pack spec is a bundle recipe: a manifest.json whose parts also say
// where their bytes come from, with exactly one of these keys, which
// BuildSpec removes from the manifest it returns:
//
//	"file":            "path"          the bytes of a file
//	"image":           "app.json"      an ESP image built from an image spec
//	"partition_table": "pt.json"       a partition table from a table spec
//	"data":            [Piece, ...]    raw bytes made of pieces
//
// A part with none of them is a fill part ("fill" and "size"), or names
// with "src" a file next to the spec. "src" (the entry name in the zip)
// defaults to the file's base name, or to PART.bin. Paths are relative to
// the file that names them. firmware-images/README.md documents the
// format with examples.
var sourceKeys = []string{"file", "image", "partition_table", "data"}

// Piece is a run of bytes in a segment or a "data" part: exactly one of
// Text, Hex, Fill (with Length), Gen (with Length and Seed) or File.
type Piece struct {
	Text   *string `json:"text,omitempty"`   // the string's bytes (no NUL added: write "\u0000")
	Hex    string  `json:"hex,omitempty"`    // bytes in hex
	Fill   *uint8  `json:"fill,omitempty"`   // Length bytes of this value
	Gen    string  `json:"gen,omitempty"`    // generator: code, rodata, data, random
	ISA    string  `json:"isa,omitempty"`    // for code: xtensa or riscv
	Seed   uint64  `json:"seed,omitempty"`   // generator seed
	Length Number  `json:"length,omitempty"` // bytes to fill or generate
	File   string  `json:"file,omitempty"`   // bytes of a file
	// Base is the address the bytes load at, which generated pointers
	// aim near. Default: where the piece lands in its segment (0 in a
	// "data" part).
	Base *Number `json:"base,omitempty"`
}

// BuildSpec reads the pack spec at path and makes what Pack needs: the
// manifest (spec-only keys removed) and the part files by src name.
func BuildSpec(path string) (*Manifest, map[string][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &Error{Kind: ErrMissingSrc, File: path, Cause: unwrapPath(err)}
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, nil, &Error{Kind: ErrBadManifest, File: path, Cause: err}
	}
	dir := filepath.Dir(path)
	srcs := map[string][]byte{}
	names := make([]string, 0, len(m.Parts))
	for n := range m.Parts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		data, err := buildPart(m, name, dir)
		if err != nil {
			return nil, nil, err
		}
		if data == nil {
			continue // a fill part
		}
		p := m.Parts[name]
		if old, dup := srcs[p.Src]; dup && !bytes.Equal(old, data) {
			return nil, nil, &Error{Kind: ErrBadManifest, File: path, Part: name, Detail: fmt.Sprintf("src %q is used by another part with other content", p.Src)}
		}
		srcs[p.Src] = data
	}
	return m, srcs, nil
}

// buildPart makes one part's bytes and sets its src; nil for a fill part.
func buildPart(m *Manifest, name, dir string) ([]byte, error) {
	p := m.Parts[name]
	bad := func(kind error, file string, cause error) error {
		return &Error{Kind: kind, File: file, Part: name, Cause: cause}
	}
	var key string
	var val json.RawMessage
	for _, k := range sourceKeys {
		if v, ok := p.Extra[k]; ok {
			if key != "" {
				return nil, bad(ErrBadManifest, "", fmt.Errorf("both %q and %q", key, k))
			}
			key, val = k, v
			delete(p.Extra, k)
		}
	}
	if len(p.Extra) == 0 {
		p.Extra = nil
	}
	if key == "data" {
		var pieces []Piece
		if err := strictJSON(val, &pieces); err != nil {
			return nil, bad(ErrBadManifest, "", err)
		}
		data, err := buildPieces(pieces, dir, 0)
		if err != nil {
			return nil, bad(ErrBadManifest, "", err)
		}
		p.Src = orDefault(p.Src, name+".bin")
		return data, nil
	}
	var file string
	if key != "" {
		if err := json.Unmarshal(val, &file); err != nil || file == "" {
			return nil, bad(ErrBadManifest, "", fmt.Errorf("%q must be a file name", key))
		}
	} else if p.Src != "" {
		file = p.Src // mos create-fw-bundle style: src is the file
	} else {
		return nil, nil
	}
	path := filepath.Join(dir, filepath.FromSlash(file))
	var data []byte
	var err error
	switch key {
	case "image":
		data, err = BuildImageSpec(path, m.Platform)
		p.Src = orDefault(p.Src, name+".bin")
	case "partition_table":
		data, err = BuildPartitionTableSpec(path)
		p.Src = orDefault(p.Src, name+".bin")
	case "file":
		var total int64
		data, err = readLimited(path, &total)
		p.Src = orDefault(p.Src, filepath.Base(file))
	default: // src names a file next to the spec; the zip holds it flat
		var total int64
		data, err = readLimited(path, &total)
		p.Src = filepath.Base(file)
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// strictJSON decodes refusing unknown keys: in a hand-written spec an
// unknown key is a typo, which would otherwise be silently ignored.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// buildPieces concatenates pieces; base is the load address of the first.
func buildPieces(pieces []Piece, dir string, base uint32) ([]byte, error) {
	var out []byte
	for i, pc := range pieces {
		set := 0
		for _, b := range []bool{pc.Text != nil, pc.Hex != "", pc.Fill != nil, pc.Gen != "", pc.File != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			return nil, fmt.Errorf("piece %d: give exactly one of text, hex, fill, gen, file", i)
		}
		if pc.Length > MaxPartSize || len(out)+int(pc.Length) > MaxPartSize {
			return nil, fmt.Errorf("piece %d: longer than %d bytes", i, MaxPartSize)
		}
		at := base + uint32(len(out))
		if pc.Base != nil {
			at = uint32(*pc.Base)
		}
		var b []byte
		var err error
		switch {
		case pc.Text != nil:
			b = []byte(*pc.Text)
		case pc.Hex != "":
			b, err = hex.DecodeString(pc.Hex)
		case pc.Fill != nil:
			b = bytes.Repeat([]byte{*pc.Fill}, int(pc.Length))
		case pc.Gen != "":
			b, err = generate(pc.Gen, pc.ISA, pc.Seed, int(pc.Length), at)
		default:
			var total int64
			b, err = readLimited(filepath.Join(dir, filepath.FromSlash(pc.File)), &total)
		}
		if err != nil {
			return nil, fmt.Errorf("piece %d: %w", i, err)
		}
		out = append(out, b...)
	}
	return out, nil
}
