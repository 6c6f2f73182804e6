package provision

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"unicode/utf16"
	"unicode/utf8"
)

// delim is the "old" frame delimiter; a newline is the other one.
const delim = `"""`

// eot is the handshake byte: a frame that is exactly 0x04 is echoed.
const eot = 0x04

// MaxFrameSize is rpc.max_frame_size's default. The device drops a frame
// whose bytes up to the closing delimiter (JSON, CRC and the quotes) run
// past it by more than 6.
const MaxFrameSize = 4096

// maxRequestJSON is the longest request JSON sent: with its 8-digit CRC
// and the closing """ it stays within MaxFrameSize.
const maxRequestJSON = MaxFrameSize - 8 - len(delim)

// handshakeBytes ask the device to echo 0x04; the two newlines flush
// whatever half frame its buffer may hold.
var handshakeBytes = []byte("\"\"\"\x04\"\"\"\n\n")

// encodeFrame wraps one JSON object as mos sends it: newline, """, JSON,
// CRC-32 in lowercase hex, """, newline. The leading newline ends any junk
// in the device's buffer, so the frame is read on its own.
func encodeFrame(js []byte) []byte {
	b := make([]byte, 0, len(js)+16)
	b = append(b, '\n')
	b = append(b, delim...)
	b = append(b, js...)
	b = fmt.Appendf(b, "%08x", crc32.ChecksumIEEE(js))
	b = append(b, delim...)
	return append(b, '\n')
}

// asciiJSON marshals v compactly and escapes every non-ASCII character as
// \uXXXX: the device wipes its whole receive buffer on a byte >= 0x80.
func asciiJSON(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return escapeNonASCII(js), nil
}

// escapeNonASCII rewrites non-ASCII runes of compact JSON as \u escapes
// (surrogate pairs above U+FFFF). Outside strings JSON is ASCII, so the
// text can be rewritten without parsing it; invalid UTF-8 becomes U+FFFD,
// as encoding/json itself would write it.
func escapeNonASCII(js []byte) []byte {
	i := bytes.IndexFunc(js, func(r rune) bool { return r >= utf8.RuneSelf })
	if i < 0 {
		return js
	}
	out := append(make([]byte, 0, len(js)+32), js[:i]...)
	for rest := js[i:]; len(rest) > 0; {
		r, size := utf8.DecodeRune(rest)
		rest = rest[size:]
		if r < utf8.RuneSelf {
			out = append(out, byte(r))
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}

var (
	errNotJSON = errors.New("not a JSON object")
	errBadCRC  = errors.New("CRC mismatch")
)

// splitFrame separates a frame's JSON from its metadata and checks the CRC
// when one is there. The metadata follows the last `}` straight away as
// comma-separated fields, the first being the CRC; frames from a device
// that has not yet seen a good CRC from the host carry none.
func splitFrame(body []byte) (js []byte, err error) {
	if len(body) == 0 || body[0] != '{' {
		return nil, errNotJSON
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errNotJSON
	}
	js = body[:dec.InputOffset()]
	meta := bytes.TrimSpace(body[len(js):])
	crc, _, _ := bytes.Cut(meta, []byte(","))
	if len(crc) == 0 {
		return js, nil
	}
	want, herr := hex.DecodeString(string(crc))
	if herr != nil || len(want) != 4 {
		return js, fmt.Errorf("%w: bad CRC field %q", errBadCRC, crc)
	}
	got := crc32.ChecksumIEEE(js)
	if uint32(want[0])<<24|uint32(want[1])<<16|uint32(want[2])<<8|uint32(want[3]) != got {
		return js, fmt.Errorf("%w: frame says %s, data gives %08x", errBadCRC, crc, got)
	}
	return js, nil
}
