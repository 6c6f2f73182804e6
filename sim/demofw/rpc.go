package demofw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Mongoose OS RPC over UART0, the device side (mongoose-os-libs rpc-uart
// and mg_rpc): frames are JSON objects ended by `"""` or a newline,
// optionally followed by a CRC-32; replies copy the host's habits.

// rpcFramer cuts the received byte stream into frames, a byte at a time:
// a frame ends at `"""` or at '\n', whichever comes first.
type rpcFramer struct {
	buf []byte
}

// push adds one byte. It returns a frame (without its delimiter) when the
// byte ended one; quoted says the delimiter was `"""`. tooBig reports a
// buffer that grew past limit without a delimiter and was dropped.
func (f *rpcFramer) push(b byte, limit int) (frame []byte, quoted, done, tooBig bool) {
	if b >= 0x80 {
		f.buf = f.buf[:0] // the firmware's reader resets on non-ASCII bytes
		return nil, false, false, false
	}
	f.buf = append(f.buf, b)
	switch {
	case bytes.HasSuffix(f.buf, []byte(`"""`)):
		frame, quoted = bytes.Clone(f.buf[:len(f.buf)-3]), true
	case b == '\n':
		frame = bytes.Clone(f.buf[:len(f.buf)-1])
	case len(f.buf) > limit:
		f.buf = f.buf[:0]
		return nil, false, false, true
	default:
		return nil, false, false, false
	}
	f.buf = f.buf[:0]
	return frame, quoted, true, false
}

// rpcLink remembers what the host has shown it understands: the device
// adds `"""` once the host used it, and a CRC once a host frame carried a
// correct one. Both last until the next reset.
type rpcLink struct {
	quotes atomic.Bool
	crc    atomic.Bool
}

// rpcCall is one request being served.
type rpcCall struct {
	id     string // as the reply prints it ("" = no reply wanted)
	src    string
	tag    json.RawMessage
	method string
	params json.RawMessage
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message,omitempty"`
}

func rpcErrorf(code int, format string, args ...any) *rpcError {
	return &rpcError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errDeferred is what a handler returns when it answers later itself.
var errDeferred = &rpcError{Code: -2}

type rpcHandler func(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError)

// onFrame handles one received frame.
func (fw *demoFirmware) onFrame(frame []byte, quoted bool) error {
	if quoted {
		fw.link.quotes.Store(true)
	}
	if len(frame) == 1 && frame[0] == 0x04 {
		// the host's channel handshake: echo it
		return fw.con.write([]byte("\"\"\"\x04\"\"\""))
	}
	if len(bytes.TrimSpace(frame)) == 0 {
		return fw.con.write([]byte("\n"))
	}
	start := bytes.IndexByte(frame, '{')
	if start < 0 {
		return nil // console junk
	}
	frame = frame[start:]
	if err := fw.rx.busy(rpcFrameCost + time.Duration(len(frame))*rpcByteCost(fw.chip)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(frame))
	var obj json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		fw.logf(logError, "mg_rpc.c:310", "Invalid frame: %.40q", frame)
		return nil
	}
	body := frame[:dec.InputOffset()]
	meta := strings.TrimRight(string(frame[dec.InputOffset():]), " \t\r")
	if crcField, _, _ := strings.Cut(meta, ","); len(crcField) >= 8 {
		got, err := strconv.ParseUint(crcField, 16, 32)
		if want := crc32.ChecksumIEEE(body); err != nil || uint32(got) != want {
			fw.logf(logWarn, "mgos_rpc_channel_uart.c:192", "%s Corrupted frame (%.8s != %08x)", fw.channelAddr(), crcField, want)
			return nil
		}
		fw.link.crc.Store(true)
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Src    string          `json:"src"`
		Dst    string          `json:"dst"`
		Tag    json.RawMessage `json:"tag"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
		Args   json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		fw.logf(logError, "mg_rpc.c:310", "Invalid frame: %v", err)
		return nil
	}
	if req.Dst != "" && req.Dst != fw.deviceID() {
		return nil // for another device on the bus
	}
	if req.Method == "" {
		return nil // a response to a request the device never sent
	}
	call := &rpcCall{id: rpcID(req.ID), src: req.Src, tag: req.Tag, method: req.Method, params: req.Params}
	if len(call.params) == 0 {
		call.params = req.Args
	}
	result, rerr := fw.dispatch(call)
	if rerr == errDeferred {
		return nil
	}
	return fw.reply(call, result, rerr)
}

// rpcID is the request id as the reply carries it: bare when it is all
// digits (a number, or a string of digits), quoted otherwise.
func rpcID(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	text := string(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		text = s
	}
	if text != "" && strings.Trim(text, "0123456789") == "" {
		return text
	}
	var b bytes.Buffer
	writeJSONString(&b, text)
	return b.String()
}

func (fw *demoFirmware) dispatch(call *rpcCall) (json.RawMessage, *rpcError) {
	if !fw.rebootAt.IsZero() {
		if left := time.Until(fw.rebootAt); left <= fw.async(100*time.Millisecond) {
			return nil, rpcErrorf(418, "shutting down in %d ms", max(left.Milliseconds(), 0))
		}
	}
	h, ok := fw.rpcHandlerFor(call.method)
	if !ok {
		return nil, rpcErrorf(404, "No handler for %s", call.method)
	}
	fw.task.Lock()
	defer fw.task.Unlock()
	return h(fw, call)
}

// reply sends the response frame: envelope fields in mg_rpc's order, then
// the result or the error.
func (fw *demoFirmware) reply(call *rpcCall, result json.RawMessage, rerr *rpcError) error {
	if call.id == "" {
		return nil // no id: the caller wants no answer
	}
	var b bytes.Buffer
	b.WriteString(`{"id":` + call.id + `,"src":`)
	writeJSONString(&b, fw.deviceID())
	if call.src != "" {
		b.WriteString(`,"dst":`)
		writeJSONString(&b, call.src)
	}
	if len(call.tag) > 0 {
		b.WriteString(`,"tag":`)
		b.Write(compactJSON(call.tag))
	}
	if rerr != nil {
		e, _ := json.Marshal(rerr)
		b.WriteString(`,"error":`)
		b.Write(e)
	} else {
		b.WriteString(`,"result":`)
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		b.Write(result)
	}
	b.WriteByte('}')
	return fw.con.write(fw.frame(b.Bytes()))
}

// frame wraps JSON for the wire as the host has shown it can read.
func (fw *demoFirmware) frame(body []byte) []byte {
	quotes := fw.link.quotes.Load()
	out := make([]byte, 0, len(body)+16)
	out = append(out, '\n')
	if quotes {
		out = append(out, `"""`...)
	}
	out = append(out, body...)
	if fw.link.crc.Load() {
		out = fmt.Appendf(out, "%08x", crc32.ChecksumIEEE(body))
	}
	if quotes {
		out = append(out, `"""`...)
	}
	return append(out, '\n')
}

func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return []byte("null")
	}
	return b.Bytes()
}

// printfJSON encodes v the way the firmware's printf-style JSON writer
// does: `": "` and `", "` between members, no HTML escaping.
func printfJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage("null")
	}
	compact := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// decodeParams reads the request's params into v; missing params leave v
// as it is (the handler's defaults).
func (call *rpcCall) decodeParams(v any) *rpcError {
	if len(call.params) == 0 || string(call.params) == "null" {
		return nil
	}
	if err := json.Unmarshal(call.params, v); err != nil {
		return rpcErrorf(400, "invalid params: %v", err)
	}
	return nil
}
