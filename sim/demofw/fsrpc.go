package demofw

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// The FS.* methods over the demo's file store. Names may carry a leading
// "/" (the mount point of the only file system).

var errNoFS = errors.New("no file system")

// fsName is a file name as the store keeps it.
func fsName(s string) string { return strings.TrimPrefix(s, "/") }

func (fw *demoFirmware) needFS() *rpcError {
	if fw.fs == nil {
		return rpcErrorf(500, "%v", errNoFS)
	}
	return nil
}

func fsList(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	names := []string{}
	if fw.fs != nil && fw.listsRoot(call) {
		for _, f := range fw.fs.List() {
			names = append(names, f.name)
		}
	}
	return printfJSON(names), nil
}

func fsListExt(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	type entry struct {
		Name string `json:"name"`
		Size int    `json:"size"`
	}
	list := []entry{}
	if fw.fs != nil && fw.listsRoot(call) {
		for _, f := range fw.fs.List() {
			list = append(list, entry{f.name, f.size})
		}
	}
	return printfJSON(list), nil
}

// listsRoot reports whether FS.List asks for the root: the store has no
// directories, and listing a missing one gives [].
func (fw *demoFirmware) listsRoot(call *rpcCall) bool {
	p := struct {
		Path string `json:"path"`
	}{}
	call.decodeParams(&p)
	return p.Path == "" || p.Path == "/" || p.Path == "."
}

func fsGet(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Filename string `json:"filename"`
		Offset   int    `json:"offset"`
		Len      int    `json:"len"`
	}{Len: -1}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if p.Filename == "" {
		return nil, rpcErrorf(400, "filename is required")
	}
	if err := fw.needFS(); err != nil {
		return nil, err
	}
	name := fsName(p.Filename)
	size, ok := fw.fs.Stat(name)
	if !ok {
		return nil, rpcErrorf(400, "failed to open file %q", p.Filename)
	}
	if size <= maxKeyFileCheck {
		// a private key never leaves the device (identity.go)
		if whole, _, err := fw.fs.Read(name, 0, -1); err == nil && isPrivateKeyFile(whole) {
			fw.logf(logWarn, "mgos_rpc_service_fs.c:118", "FS.Get %s refused: it holds a private key", name)
			return nil, rpcErrorf(403, "%s holds a private key, which never leaves the device", p.Filename)
		}
	}
	n := p.Len
	if off := min(max(p.Offset, 0), size); n < 0 || off+n > size {
		n = size - off
	}
	if n > fw.ram.free/2 {
		// the chunk and its base64 are built in RAM
		return nil, rpcErrorf(500, "out of memory reading %d bytes of %q", n, p.Filename)
	}
	data, size, err := fw.fs.Read(name, p.Offset, n)
	if err != nil {
		return nil, rpcErrorf(500, "failed to read file %q: %v", p.Filename, err)
	}
	left := size - min(max(p.Offset, 0), size) - len(data)
	return printfJSON(struct {
		Data string `json:"data"`
		Left int    `json:"left"`
	}{base64.StdEncoding.EncodeToString(data), left}), nil
}

func fsPut(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Filename string `json:"filename"`
		Offset   *int   `json:"offset"`
		Append   bool   `json:"append"`
		Data     string `json:"data"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if p.Filename == "" {
		return nil, rpcErrorf(400, "filename is required")
	}
	data, err := base64.StdEncoding.DecodeString(p.Data)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(p.Data); err != nil {
			return nil, rpcErrorf(400, "invalid base64 data")
		}
	}
	if err := fw.needFS(); err != nil {
		return nil, err
	}
	name := fsName(p.Filename)
	// An offset >= 0 wins over append: 0 truncates, more seeks.
	off, truncate := 0, true
	switch {
	case p.Offset != nil && *p.Offset >= 0:
		off, truncate = *p.Offset, *p.Offset == 0
	case p.Append:
		off, _ = fw.fs.Stat(name)
		truncate = false
	}
	if err := fw.fs.Write(name, off, data, truncate); err != nil {
		return nil, fsRPCError("failed to write file", p.Filename, err)
	}
	return nil, nil
}

func fsRemove(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Filename string `json:"filename"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if p.Filename == "" {
		return nil, rpcErrorf(400, "filename is required")
	}
	if err := fw.needFS(); err != nil {
		return nil, err
	}
	if err := fw.fs.Remove(fsName(p.Filename)); err != nil {
		return nil, rpcErrorf(500, "remove failed")
	}
	return nil, nil
}

func fsRename(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Src string `json:"src"`
		Dst string `json:"dst"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if p.Src == "" || p.Dst == "" {
		return nil, rpcErrorf(400, "src and dst are required")
	}
	if err := fw.needFS(); err != nil {
		return nil, err
	}
	if err := fw.fs.Rename(fsName(p.Src), fsName(p.Dst)); err != nil {
		if errors.Is(err, errFSName) {
			return nil, rpcErrorf(400, "%v", err)
		}
		return nil, rpcErrorf(500, "rename failed")
	}
	return nil, nil
}

// fsRPCError maps a store error: a bad name is the caller's (400), a full
// file system or a flash failure the device's (500).
func fsRPCError(what, name string, err error) *rpcError {
	if errors.Is(err, errFSName) {
		return rpcErrorf(400, "%v", err)
	}
	return rpcErrorf(500, "%s %q: %v", what, name, err)
}
