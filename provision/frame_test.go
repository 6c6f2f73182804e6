package provision

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEncodeFrameCRCVector(t *testing.T) {
	got := string(encodeFrame([]byte(`{"method":"Sys.GetInfo"}`)))
	want := "\n\"\"\"{\"method\":\"Sys.GetInfo\"}010a4ff9\"\"\"\n"
	if got != want {
		t.Fatalf("frame %q, want %q", got, want)
	}
}

func TestEncodeFrameWireExample(t *testing.T) {
	// The annotated exchange of the wire reference, byte for byte.
	js := `{"src":"mos","id":1398765432101,"method":"Config.Get","params":{"key":"device.id"}}`
	if got := string(encodeFrame([]byte(js))); !strings.Contains(got, js+"045ed510\"\"\"") {
		t.Fatalf("frame %q lacks CRC 045ed510", got)
	}
}

func TestASCIIJSON(t *testing.T) {
	js, err := asciiJSON(map[string]string{"ssid": "Café 🙂", "pass": "a\nb\x13\x11"})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range js {
		if b >= 0x80 || b == '\n' || b == xon || b == xoff || b == eot {
			t.Fatalf("byte 0x%02x in %s", b, js)
		}
	}
	if !strings.Contains(string(js), `Caf\u00e9 \ud83d\ude42`) {
		t.Fatalf("escaping: %s", js)
	}
	var back map[string]string
	if err := json.Unmarshal(js, &back); err != nil || back["ssid"] != "Café 🙂" || back["pass"] != "a\nb\x13\x11" {
		t.Fatalf("round trip: %v %q", err, back)
	}
}

func TestSplitFrame(t *testing.T) {
	tests := []struct {
		body string
		js   string
		err  error
	}{
		{`{"id":1,"result":null}`, `{"id":1,"result":null}`, nil},
		{`{"method":"Sys.GetInfo"}010a4ff9`, `{"method":"Sys.GetInfo"}`, nil},
		{`{"method":"Sys.GetInfo"}010A4FF9`, `{"method":"Sys.GetInfo"}`, nil}, // either case
		{`{"method":"Sys.GetInfo"}010a4ff9,meta`, `{"method":"Sys.GetInfo"}`, nil},
		{`{"method":"Sys.GetInfo"}010a4ff8`, `{"method":"Sys.GetInfo"}`, errBadCRC},
		{`{"method":"Sys.GetInfo"}zz`, `{"method":"Sys.GetInfo"}`, errBadCRC},
		{`{"method":"Sys.Get`, "", errNotJSON},
		{`mgos_init.c:33 Init done`, "", errNotJSON},
	}
	for _, tt := range tests {
		js, err := splitFrame([]byte(tt.body))
		if !errors.Is(err, tt.err) || (tt.js != "" && string(js) != tt.js) {
			t.Errorf("splitFrame(%q) = %q, %v; want %q, %v", tt.body, js, err, tt.js, tt.err)
		}
	}
}
