package fwbundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mos-tool/mos/fwimage"
)

// ParseInputs turns the arguments of `mos flash` into a Bundle. It accepts:
//
//   - one bundle zip (recognised by its content, whatever its name);
//   - one ESP-IDF flasher_args.json (any .json file), the build's record
//     of what goes where;
//   - ADDR:FILE pairs, ADDR in decimal or 0x hex (0x1000:bootloader.bin),
//     or esptool's habit of ADDR FILE as two arguments.
//
// A lone FILE without an address is refused rather than guessed at: an
// image written to the wrong offset does not boot, and the right offset
// depends on what the image is (bootloader, app) and on the chip.
func ParseInputs(args []string) (*Bundle, error) {
	if len(args) == 0 {
		return nil, &ArgError{Msg: "nothing to flash"}
	}
	if len(args) == 1 {
		if _, _, ok := splitPair(args[0]); !ok {
			return parseSingle(args[0])
		}
	}
	return parsePairs(args)
}

func parseSingle(name string) (*Bundle, error) {
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		return nil, dirError(name)
	}
	head, err := readHead(name)
	if _, aerr := ParseAddr(name); err != nil && aerr == nil {
		return nil, &ArgError{Arg: name, Msg: "an address without a file"}
	}
	if err != nil {
		if aerr := badAddr(name); aerr != nil {
			return nil, aerr
		}
		return nil, &Error{Kind: ErrNoInput, File: name, Cause: unwrapPath(err)}
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Open(name)
	case strings.EqualFold(filepath.Ext(name), ".json"):
		return ParseFlasherArgs(name)
	}
	return nil, &ArgError{Arg: name, Msg: "no flash address: write ADDR:FILE, e.g. 0x10000:" + name +
		" (the bootloader goes to 0x1000 on ESP32/S2, 0x0 on other chips)"}
}

func readHead(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, err := io.ReadFull(f, head)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return head[:n], err
}

// dirError refuses a folder given as a bundle, pointing at the
// flasher_args.json of an ESP-IDF build folder (or project) if there is one.
func dirError(name string) error {
	for _, rel := range []string{"flasher_args.json", filepath.Join("build", "flasher_args.json")} {
		p := filepath.Join(name, rel)
		if _, err := os.Stat(p); err == nil {
			return &ArgError{Arg: name, Msg: "a folder, not a bundle: this is an ESP-IDF build; give its " + p}
		}
	}
	return &ArgError{Arg: name, Msg: "a folder, not a bundle: give a bundle zip, a flasher_args.json or ADDR:FILE pairs"}
}

// badAddr refuses an ADDR:FILE argument whose address does not parse
// ("zz" of "zz:app.bin"), and returns nil for any other. A one-letter
// prefix is a Windows drive (C:\fw.zip), not an address.
func badAddr(arg string) error {
	a, file, ok := strings.Cut(arg, ":")
	if !ok || file == "" || len(a) < 2 || strings.ContainsAny(a, `/\`) {
		return nil
	}
	if _, err := ParseAddr(a); err != nil {
		return &ArgError{Arg: arg, Msg: fmt.Sprintf("%q is not a flash address (decimal or 0x hex, as in 0x10000:app.bin)", a)}
	}
	return nil
}

// splitPair splits "ADDR:FILE". The address ends at the first colon, so
// a Windows path (0x1000:C:\fw\boot.bin) keeps its own.
func splitPair(arg string) (uint32, string, bool) {
	a, file, ok := strings.Cut(arg, ":")
	if !ok || file == "" {
		return 0, "", false
	}
	addr, err := ParseAddr(a)
	if err != nil {
		return 0, "", false
	}
	return addr, file, true
}

func parsePairs(args []string) (*Bundle, error) {
	b := &Bundle{}
	var total int64
	for i := 0; i < len(args); i++ {
		addr, file, ok := splitPair(args[i])
		if !ok {
			if err := badAddr(args[i]); err != nil {
				return nil, err
			}
			a, err := ParseAddr(args[i])
			if err != nil || i+1 == len(args) {
				return nil, &ArgError{Arg: args[i], Msg: "not ADDR:FILE (with several inputs, each needs an address)"}
			}
			addr, file = a, args[i+1]
			i++
		}
		data, err := readLimited(file, &total)
		if err != nil {
			return nil, err
		}
		b.Parts = append(b.Parts, Part{
			Name: filepath.Base(file), Addr: addr, Data: data, Flash: true, Source: file,
		})
	}
	b.sortParts()
	return b, nil
}

// readLimited reads a part file within MaxPartSize, adding its size to
// *total, which must stay within MaxTotalSize.
func readLimited(name string, total *int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &Error{Kind: ErrMissingSrc, File: name, Cause: unwrapPath(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Kind: ErrMissingSrc, File: name, Cause: unwrapPath(err)}
	}
	if st.IsDir() {
		return nil, &Error{Kind: ErrMissingSrc, File: name, Detail: "is a directory"}
	}
	if st.Size() > MaxPartSize {
		return nil, &Error{Kind: ErrTooLarge, File: name, Detail: fmt.Sprintf("%d bytes", st.Size())}
	}
	if *total += st.Size(); *total > MaxTotalSize {
		return nil, &Error{Kind: ErrTooLarge, File: name, Detail: fmt.Sprintf("inputs add up to more than %d bytes", MaxTotalSize)}
	}
	// The limit also holds if the file grows while read (a device node).
	data, err := io.ReadAll(io.LimitReader(f, MaxPartSize+1))
	if err != nil {
		return nil, &Error{Kind: ErrMissingSrc, File: name, Cause: err}
	}
	if len(data) > MaxPartSize {
		return nil, &Error{Kind: ErrTooLarge, File: name}
	}
	return data, nil
}

// flasherArgs is the part of ESP-IDF's build/flasher_args.json used here.
type flasherArgs struct {
	FlashFiles    map[string]string `json:"flash_files"` // "0x1000": "bootloader/bootloader.bin"
	FlashSettings struct {
		Mode string `json:"flash_mode"`
		Size string `json:"flash_size"`
		Freq string `json:"flash_freq"`
	} `json:"flash_settings"`
	Extra struct {
		Chip string `json:"chip"`
	} `json:"extra_esptool_args"`
}

// idfSections are the named entries of flasher_args.json ({"offset",
// "file"}), which give the parts their names, and the manifest type each
// corresponds to.
var idfSections = []struct{ key, typ string }{
	{"bootloader", "boot"},
	{"partition-table", "pt"},
	{"otadata", "otadata"},
	{"app", "app"},
}

// ParseFlasherArgs reads ESP-IDF's flasher_args.json and the files it
// lists, relative to its folder.
func ParseFlasherArgs(name string) (*Bundle, error) {
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, &Error{Kind: ErrMissingSrc, File: name, Cause: unwrapPath(err)}
	}
	var fa flasherArgs
	if err := json.Unmarshal(raw, &fa); err != nil {
		return nil, &Error{Kind: ErrBadManifest, File: name, Cause: err}
	}
	if len(fa.FlashFiles) == 0 {
		return nil, &Error{Kind: ErrBadManifest, File: name, Detail: `no "flash_files": is this ESP-IDF's flasher_args.json?`}
	}
	fs := fa.FlashSettings
	if err := (fwimage.FlashParams{Mode: fs.Mode, Size: fs.Size, Freq: fs.Freq}).Check(); err != nil {
		return nil, &Error{Kind: ErrBadManifest, File: name, Detail: "flash_settings", Cause: err}
	}
	var sections map[string]json.RawMessage
	json.Unmarshal(raw, &sections) // it parsed above
	named := map[string]struct{ name, typ string }{}
	for _, s := range idfSections {
		var sec struct{ Offset, File string }
		if json.Unmarshal(sections[s.key], &sec) == nil && sec.Offset != "" {
			named[sec.Offset+"|"+sec.File] = struct{ name, typ string }{s.key, s.typ}
		}
	}

	b := &Bundle{
		Source:    name,
		Platform:  platformKey(fa.Extra.Chip),
		FlashMode: fa.FlashSettings.Mode,
		FlashSize: fa.FlashSettings.Size,
		FlashFreq: fa.FlashSettings.Freq,
	}
	dir := filepath.Dir(name)
	var total int64
	for off, file := range fa.FlashFiles {
		addr, err := ParseAddr(off)
		if err != nil {
			return nil, &Error{Kind: ErrBadManifest, File: name, Detail: "flash_files", Cause: err}
		}
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, filepath.FromSlash(file))
		}
		data, err := readLimited(path, &total)
		if err != nil {
			var fe *Error
			if errors.As(err, &fe) {
				fe.ListedIn = name
			}
			return nil, err
		}
		p := Part{Name: filepath.Base(file), Addr: addr, Data: data, Flash: true, Source: path}
		if n, ok := named[off+"|"+file]; ok {
			p.Name, p.Type = n.name, n.typ
		}
		b.Parts = append(b.Parts, p)
	}
	b.sortParts()
	return b, nil
}
