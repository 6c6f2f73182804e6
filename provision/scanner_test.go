package provision

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// scan feeds input to a scanner in pieces of size step and returns what it
// found, frames marked with "F:".
func scan(input string, step int) []string {
	var out []string
	s := newScanner(func(b []byte) bool {
		if len(b) > 0 && b[0] == '{' && !bytes.HasPrefix(b, []byte(`{"id"`)) {
			return false // not a reply: console text
		}
		out = append(out, "F:"+string(b))
		return true
	}, func(l []byte) { out = append(out, string(l)) })
	for i := 0; i < len(input); i += step {
		s.feed([]byte(input[i:min(i+step, len(input))]))
	}
	return out
}

func TestScannerSeparatesFramesFromLog(t *testing.T) {
	input := "rst:0x1 (POWERON_RESET),boot:0x13\r\n" +
		"mgos_init.c:33          Init done\r\n" +
		"\n\"\"\"\x04\"\"\"\n\n" + // handshake echo
		"\n\"\"\"{\"id\":1,\"result\":null}abcdef01\"\"\"\n" + // old delimiters
		"\n" + // a bare newline answering an empty frame
		"mgos_wifi.c:70          WiFi STA: Disconnected, reason: 202\n" +
		"\n{\"id\":2,\"result\":{\"a\":\"x\\\"\"}}\n" + // new delimiters, an escaped quote before the closing one
		"{not json, a log line}\n" +
		"text with \"\"\"quotes\"\"\" in it\n" +
		"partial"
	want := []string{
		"rst:0x1 (POWERON_RESET),boot:0x13",
		"mgos_init.c:33          Init done",
		"F:\x04",
		"F:{\"id\":1,\"result\":null}abcdef01",
		"mgos_wifi.c:70          WiFi STA: Disconnected, reason: 202",
		"F:{\"id\":2,\"result\":{\"a\":\"x\\\"\"}}",
		"{not json, a log line}",
		"text with \"\"\"quotes\"\"\" in it",
	}
	for _, step := range []int{1, 2, 3, 7, len(input)} {
		if got := scan(input, step); !slices.Equal(got, want) {
			t.Errorf("step %d:\n got %q\nwant %q", step, got, want)
		}
	}
}

func TestScannerLogInterleavedMidLine(t *testing.T) {
	// A frame after """ in the middle of a line: the text around it stays one line.
	got := scan("before \"\"\"{\"id\":3,\"result\":1}\"\"\" after\n", 1)
	want := []string{"F:{\"id\":3,\"result\":1}", "before  after"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestScannerOversizedCandidateIsText(t *testing.T) {
	long := "{" + strings.Repeat("x", maxReplyFrame+10)
	got := scan(long+"\n", 4096)
	if len(got) == 0 || strings.HasPrefix(got[0], "F:") {
		t.Fatalf("a brace followed by 64 KiB without a delimiter must be text, got %d items", len(got))
	}
}
