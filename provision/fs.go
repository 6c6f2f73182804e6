package provision

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"strings"
)

// FileInfo is one entry of FS.ListExt.
type FileInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Progress reports how many bytes of a transfer are done out of total.
type Progress func(done, total int64)

func (f Progress) report(done, total int64) {
	if f != nil {
		f(done, total)
	}
}

// getChunk is how much FS.Get is asked for at once: about 2.8 KiB of
// base64 per reply, so the request and reply envelopes (~150 bytes) and
// the turnaround cost a few percent of the line's time, where mos's 512
// bytes cost a fifth.
const getChunk = 2048

// partSuffix names the file an upload goes to before it is renamed into
// place, so that a device reset mid-upload leaves no half file under the
// real name.
const partSuffix = ".part"

// tmpName is the name an upload of name goes to first. Devices limit
// names (the virtual device and SPIFFS to 48 and 31 bytes), so the
// temporary name must not be longer than a name the user may give: a long
// name gets a short one made from its hash, in the same folder so the
// rename stays within it. The temporary file name is never longer than
// max(len(file name), 14 bytes).
func tmpName(name string) string {
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i+1], name[i+1:]
	}
	if len(base)+len(partSuffix) <= tmpMaxBase {
		return name + partSuffix
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s~%08x%s", dir, h.Sum32(), partSuffix)
}

// tmpMaxBase is the longest temporary file name (~ + 8 hex digits + .part).
const tmpMaxBase = 1 + 8 + len(partSuffix)

func dirParams(dir string) any {
	if dir == "" || dir == "/" || dir == "." {
		return nil // the device lists its root by default
	}
	return map[string]any{"path": dir}
}

// List returns the names of the files in dir ("" for the root).
func (c *Client) List(ctx context.Context, dir string) ([]string, error) {
	names := []string{}
	if err := c.Call(ctx, "FS.List", dirParams(dir), &names); err != nil {
		return nil, err
	}
	return names, nil
}

// ListExt returns the files in dir ("" for the root) with their sizes.
func (c *Client) ListExt(ctx context.Context, dir string) ([]FileInfo, error) {
	files := []FileInfo{}
	if err := c.Call(ctx, "FS.ListExt", dirParams(dir), &files); err != nil {
		return nil, err
	}
	return files, nil
}

// Remove deletes a file.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.Call(ctx, "FS.Remove", map[string]any{"filename": name}, nil)
}

// Get reads a whole file, in chunks, each retried on its own.
func (c *Client) Get(ctx context.Context, name string, progress Progress) ([]byte, error) {
	type getParams struct {
		Filename string `json:"filename"`
		Offset   int64  `json:"offset"`
		Len      int64  `json:"len"`
	}
	var data []byte
	for {
		var chunk struct {
			Data string `json:"data"`
			Left int64  `json:"left"`
		}
		p := getParams{Filename: name, Offset: int64(len(data)), Len: getChunk}
		if err := c.Call(ctx, "FS.Get", p, &chunk); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(chunk.Data)
		if err != nil {
			return nil, fmt.Errorf("FS.Get %s: bad base64 in the reply: %w", name, err)
		}
		if len(b) == 0 && chunk.Left > 0 {
			return nil, fmt.Errorf("FS.Get %s: the device sent no data at offset %d with %d bytes left", name, len(data), chunk.Left)
		}
		data = append(data, b...)
		progress.report(int64(len(data)), int64(len(data))+chunk.Left)
		if chunk.Left <= 0 {
			return data, nil
		}
	}
}

// putParams is FS.Put's request, in the order mos sends it.
type putParams struct {
	Filename string `json:"filename"`
	Offset   int64  `json:"offset"`
	Append   bool   `json:"append"`
	Data     string `json:"data"`
}

// Put writes data to the file name. The data goes to name+".part" first,
// in chunks as large as a frame allows, each retried on its own (always
// with an offset, so a repeat overwrites rather than appends); its size is
// checked, then FS.Rename puts it in place. On failure the partial file is
// removed (when the device still answers), and name is untouched, except
// when the new file fits only in the old one's place: then the old one is
// removed first. Data that cannot fit at all is a *NoSpaceError before
// anything is sent.
func (c *Client) Put(ctx context.Context, name string, data []byte, progress Progress) (err error) {
	if name == "" || strings.HasSuffix(name, "/") {
		return &ArgError{fmt.Errorf("bad file name %q", name)}
	}
	if err := c.makeRoom(ctx, name, int64(len(data))); err != nil {
		return err
	}
	tmp := tmpName(name)
	defer func() {
		if err != nil && deviceAnswers(err) {
			c.removeQuietly(ctx, tmp)
		}
	}()
	if err := c.putChunks(ctx, tmp, data, progress); err != nil {
		return err
	}
	if err := c.checkSize(ctx, tmp, int64(len(data))); err != nil {
		return err
	}
	return c.rename(ctx, tmp, name, data, progress)
}

// putChunks uploads data to name from offset 0 (which truncates it).
func (c *Client) putChunks(ctx context.Context, name string, data []byte, progress Progress) error {
	chunk := c.putChunkSize(name, int64(len(data)))
	off := 0
	for {
		n := min(chunk, len(data)-off)
		p := putParams{Filename: name, Offset: int64(off), Append: off > 0, Data: base64.StdEncoding.EncodeToString(data[off : off+n])}
		if err := c.call(ctx, "FS.Put", p, nil, c.opts.Attempts); err != nil {
			return err
		}
		off += n
		progress.report(int64(off), int64(len(data)))
		if off == len(data) {
			return nil // an empty file takes one empty FS.Put, which creates it
		}
	}
}

// putChunkSize is the most data one FS.Put frame carries within the
// device's frame limit, leaving room for an auth object.
func (c *Client) putChunkSize(name string, size int64) int {
	envelope, _ := asciiJSON(request{Src: "mos", ID: 1 << 41, Method: "FS.Put",
		Params: putParams{Filename: name, Offset: size, Append: true}})
	room := maxRequestJSON - len(envelope)
	if c.opts.Username != "" {
		room -= 256 + len(c.opts.Username)
	}
	n := room / 4 * 3 // base64: 4 characters per 3 bytes
	return max(n, 48)
}

// makeRoom checks that size bytes fit the file system next to the upload's
// temporary copy. When they fit only without the file being replaced, that
// file is removed first: the new one cannot be written otherwise.
func (c *Client) makeRoom(ctx context.Context, name string, size int64) error {
	info, err := c.GetInfo(ctx)
	if err != nil || info.FSSize <= 0 || size <= info.FSFree {
		return nil // no figures to go by: let the device decide
	}
	old := c.fileSize(ctx, name)
	if old < 0 || size > info.FSFree+old {
		return &NoSpaceError{File: name, Need: size, Free: info.FSFree}
	}
	c.debugf("%s: removing the old file first to make room (%d bytes free, %d needed)", name, info.FSFree, size)
	return c.Remove(ctx, name)
}

// fileSize is a file's size from FS.ListExt, or -1 when unknown.
func (c *Client) fileSize(ctx context.Context, name string) int64 {
	dir, base := path.Split(name)
	files, err := c.ListExt(ctx, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1
	}
	for _, f := range files {
		if f.Name == base || f.Name == name {
			return f.Size
		}
	}
	return -1
}

// checkSize makes sure the device holds all of an upload before it is
// put in place; firmware without FS.ListExt is taken at its word.
func (c *Client) checkSize(ctx context.Context, name string, want int64) error {
	got := c.fileSize(ctx, name)
	if got >= 0 && got != want {
		return fmt.Errorf("%s: the device holds %d bytes of the %d sent", name, got, want)
	}
	return nil
}

// rename moves the finished upload into place. File systems that refuse
// to rename over an existing file get it removed first; firmware without
// FS.Rename gets the data again, written straight to the real name.
func (c *Client) rename(ctx context.Context, tmp, name string, data []byte, progress Progress) error {
	err := c.Call(ctx, "FS.Rename", map[string]any{"src": tmp, "dst": name}, nil)
	var re *RPCError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && strings.HasPrefix(re.Message, "No handler"):
		c.debugf("the firmware has no FS.Rename: writing %s directly", name)
		if err := c.putChunks(ctx, name, data, progress); err != nil {
			c.removeQuietly(ctx, name)
			return err
		}
		c.removeQuietly(ctx, tmp)
		return nil
	case errors.As(err, &re) && c.fileSize(ctx, name) >= 0:
		if err := c.Remove(ctx, name); err != nil {
			return err
		}
		return c.Call(ctx, "FS.Rename", map[string]any{"src": tmp, "dst": name}, nil)
	}
	return err
}

// removeQuietly deletes a file left behind by a failure, if the device
// still answers; the failure that led here is what gets reported.
func (c *Client) removeQuietly(ctx context.Context, name string) {
	if ctx.Err() != nil {
		// Cancelled: the device may still answer; give it a moment alone.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.opts.CallTimeout)
		defer cancel()
	}
	if err := c.Remove(ctx, name); err != nil {
		c.debugf("could not remove %s: %v", name, err)
	}
}

// deviceAnswers tells failures after which the device is still there to
// clean up from those where asking it again would only wait once more.
func deviceAnswers(err error) bool {
	var (
		nr *NoReplyError
		na *NoAnswerError
		dr *DeviceResetError
	)
	return !errors.As(err, &nr) && !errors.As(err, &na) && !errors.As(err, &dr)
}
