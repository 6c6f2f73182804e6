package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mos-tool/mos/port"
)

type listResult []string

func (r listResult) Text() string { return strings.Join(r, "\n") }
func (r listResult) Data() any {
	if r == nil {
		return []string{}
	}
	return []string(r)
}

func newTest(json, verbose bool) (*Printer, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return New(&out, &errb, json, verbose), &out, &errb
}

// decodeOne checks that b holds exactly one JSON document ending in a
// newline, and decodes it.
func decodeOne(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("JSON output lacks a trailing newline: %q", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", b)
	}
	return doc
}

func TestPrintText(t *testing.T) {
	p, out, errb := newTest(false, false)
	p.Warnf("slow %s", "bridge")
	if err := p.Print(listResult{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "a\nb\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := errb.String(); got != "Warning: slow bridge\n" {
		t.Errorf("stderr = %q", got)
	}
}

func TestPrintJSON(t *testing.T) {
	tests := []struct {
		name     string
		res      listResult
		warn     []string
		wantRes  string
		wantWarn string
	}{
		{"empty list, no warnings", nil, nil, `[]`, `[]`},
		{"list and warnings", listResult{"x"}, []string{"w1", "w<2>"}, `["x"]`, `["w1","w<2>"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, errb := newTest(true, false)
			for _, w := range tt.warn {
				p.Warnf("%s", w)
			}
			if err := p.Print(tt.res); err != nil {
				t.Fatal(err)
			}
			doc := decodeOne(t, out.Bytes())
			if got := compact(t, doc["result"]); got != tt.wantRes {
				t.Errorf("result = %s, want %s", got, tt.wantRes)
			}
			if got := compact(t, doc["warnings"]); got != tt.wantWarn {
				t.Errorf("warnings = %s, want %s", got, tt.wantWarn)
			}
			if errb.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", errb)
			}
			if !strings.Contains(out.String(), "\n  ") {
				t.Errorf("document is not indented:\n%s", out)
			}
		})
	}
}

func compact(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

func TestLateWarningKeepsStdoutOneDocument(t *testing.T) {
	p, out, errb := newTest(true, false)
	p.Print(listResult{})
	p.Warnf("after")
	p.PrintError(errors.New("also after"))
	decodeOne(t, out.Bytes())
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stderr lines = %q", lines)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("stderr line is not JSON: %q", l)
		}
	}
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name          string
		json, verbose bool
		want          string
	}{
		{"text", false, false, "connecting\n"},
		{"text verbose", false, true, "connecting\nsync try 2\n"},
		{"json", true, false, `{"info":"connecting"}` + "\n"},
		{"json verbose", true, true, `{"info":"connecting"}` + "\n" + `{"debug":"sync try 2"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, errb := newTest(tt.json, tt.verbose)
			p.Infof("connecting")
			p.Debugf("sync try %d", 2)
			if errb.String() != tt.want {
				t.Errorf("stderr = %q, want %q", errb, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
}

func TestPrintErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("boom"), "Error: boom\n"},
		{"with hint", &port.Error{Kind: port.KindBusy, Port: "COM3", Op: "open"},
			"Error: open COM3: port is busy (another program has it open)\n" +
				"Hint: close the other program using the port (a serial monitor, another mos) and try again\n"},
		{"interrupted", fmt.Errorf("write: %w", contextCanceled()), "Interrupted.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, errb := newTest(false, false)
			p.PrintError(tt.err)
			if errb.String() != tt.want {
				t.Errorf("stderr = %q, want %q", errb, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout = %q", out)
			}
		})
	}
}

func TestPrintErrorJSON(t *testing.T) {
	p, out, errb := newTest(true, false)
	p.Warnf("w")
	p.PrintError(fmt.Errorf("flash: %w", &port.Error{Kind: port.KindNotFound, Port: "/dev/ttyUSB9", Op: "open"}))
	doc := decodeOne(t, out.Bytes())
	e, ok := doc["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", out)
	}
	if e["code"] != float64(ExitPortNotFound) || e["name"] != "port_not_found" ||
		e["message"] != "flash: open /dev/ttyUSB9: no such port" || e["hint"] == "" {
		t.Errorf("error = %v", e)
	}
	if compact(t, doc["warnings"]) != `["w"]` {
		t.Errorf("warnings = %v", doc["warnings"])
	}
	if errb.Len() != 0 {
		t.Errorf("stderr = %q", errb)
	}
}

type badResult struct{}

func (badResult) Text() string { return "" }
func (badResult) Data() any    { return func() {} }

func TestUnencodableResultLeavesRoomForError(t *testing.T) {
	p, out, _ := newTest(true, false)
	err := p.Print(badResult{})
	if err == nil {
		t.Fatal("Print of a func value succeeded")
	}
	p.PrintError(err)
	doc := decodeOne(t, out.Bytes())
	if _, ok := doc["error"]; !ok {
		t.Errorf("want an error document, got %s", out)
	}
}

// A failed or interrupted command's partial result travels with its error:
// in JSON both keys are in the one document, in text the result comes
// first on stdout.
func TestPrintErrorWithResult(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		json     bool
		wantCode int
		wantOut  string // text: stdout; JSON: compact "result"
		wantErr  string // text: stderr; JSON: error name
	}{
		{"interrupted, text", WithResult(fmt.Errorf("write: %w", contextCanceled()), listResult{"app verified"}), false,
			ExitInterrupted, "app verified\n", "Interrupted.\n"},
		{"failed, text", WithResult(errors.New("boom"), listResult{"boot verified"}), false,
			ExitFailure, "boot verified\n", "Error: boom\n"},
		{"interrupted, JSON", WithResult(fmt.Errorf("write: %w", contextCanceled()), listResult{"app"}), true,
			ExitInterrupted, `["app"]`, "interrupted"},
		{"failed wrapped, JSON", fmt.Errorf("flash: %w", WithResult(&UsageError{Err: errors.New("x")}, listResult{"a"})), true,
			ExitUsage, `["a"]`, "usage"},
		{"unencodable result, JSON", WithResult(errors.New("boom"), badResult{}), true,
			ExitFailure, "", "failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := ExitCode(tt.err); code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			p, out, errb := newTest(tt.json, false)
			p.PrintError(tt.err)
			if !tt.json {
				if out.String() != tt.wantOut || errb.String() != tt.wantErr {
					t.Errorf("stdout %q stderr %q, want %q %q", out, errb, tt.wantOut, tt.wantErr)
				}
				return
			}
			doc := decodeOne(t, out.Bytes())
			e, ok := doc["error"].(map[string]any)
			if !ok || e["name"] != tt.wantErr {
				t.Errorf("error = %v, want name %q", doc["error"], tt.wantErr)
			}
			res, has := doc["result"]
			switch {
			case tt.wantOut == "" && has:
				t.Errorf("result %v, want none", res)
			case tt.wantOut != "" && compact(t, res) != tt.wantOut:
				t.Errorf("result %v, want %s", res, tt.wantOut)
			}
			if errb.Len() != 0 {
				t.Errorf("stderr = %q", errb)
			}
		})
	}
}

func TestUserText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`open sim://esp32?board=x: bad port address: sim: unknown board "x"`, `open sim://esp32?board=x: bad port address: unknown board "x"`},
		{`fwbundle: Validate needs the chip`, `Validate needs the chip`},
		{`invalid argument "abc" for "--baud" flag: strconv.ParseInt: parsing "abc": invalid syntax`, `invalid argument "abc" for "--baud" flag: "abc" is not a number`},
		{`invalid argument "9e99" for "--baud" flag: strconv.ParseInt: parsing "9e99": value out of range`, `invalid argument "9e99" for "--baud" flag: "9e99" is out of range`},
		{`invalid argument "y" for "--json" flag: strconv.ParseBool: parsing "y": invalid syntax`, `invalid argument "y" for "--json" flag: "y" is not true or false`},
		{`invalid argument "5" for "--timeout" flag: time: missing unit in duration "5"`, `invalid argument "5" for "--timeout" flag: "5" is not a duration (such as 500ms, 20s or 2m)`},
		{`FS.Put: bad file name "a" (code 400)`, `FS.Put: bad file name "a" (code 400)`},
		{`rfc2217://host:1: cannot connect`, `rfc2217://host:1: cannot connect`},
	}
	for _, tt := range tests {
		if got := userText(tt.in); got != tt.want {
			t.Errorf("userText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
