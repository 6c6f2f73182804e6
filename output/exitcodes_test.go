package output

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mos-tool/mos/port"
)

// wifiError stands for a later package's typed error: it implements
// ExitCoder and Hinter without importing output.
type wifiError struct{ ssid string }

func (e *wifiError) Error() string { return "network " + e.ssid + " not found" }
func (e *wifiError) ExitCode() int { return ExitWiFiNotFound }
func (e *wifiError) Hint() string  { return "check the SSID; ESP chips see 2.4 GHz networks only" }

type zeroCoder struct{ err error }

func (z zeroCoder) Error() string { return z.err.Error() }
func (z zeroCoder) Unwrap() error { return z.err }
func (zeroCoder) ExitCode() int   { return 0 }

func portErr(k port.ErrorKind) error {
	return &port.Error{Kind: k, Port: "/dev/ttyUSB0", Op: "open", Err: errors.New("x")}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitFailure},
		{"port not found", portErr(port.KindNotFound), ExitPortNotFound},
		{"port busy", portErr(port.KindBusy), ExitPortBusy},
		{"port permission", portErr(port.KindPermission), ExitPermission},
		{"port bad address", portErr(port.KindBadAddress), ExitUsage},
		{"port unreachable", portErr(port.KindUnreachable), ExitNoAnswer},
		{"port disconnected", portErr(port.KindDisconnected), ExitNoAnswer},
		{"port other", portErr(port.KindOther), ExitFailure},
		{"port other wrapping timeout", &port.Error{Kind: port.KindOther, Op: "read", Err: port.ErrTimeout}, ExitTimeout},
		{"wrapped port error", fmt.Errorf("flash: %w", portErr(port.KindBusy)), ExitPortBusy},
		{"canceled", context.Canceled, ExitInterrupted},
		{"wrapped canceled", fmt.Errorf("sync: %w", context.Canceled), ExitInterrupted},
		{"canceled beats coder", &UsageError{Err: context.Canceled}, ExitInterrupted},
		{"deadline", context.DeadlineExceeded, ExitTimeout},
		{"wrapped deadline", fmt.Errorf("connect: %w", context.DeadlineExceeded), ExitTimeout},
		{"os deadline", os.ErrDeadlineExceeded, ExitTimeout},
		{"usage", Usagef("bad baud %d", -1), ExitUsage},
		{"wrapped usage", fmt.Errorf("x: %w", &UsageError{Err: errors.New("y")}), ExitUsage},
		{"typed coder", fmt.Errorf("wifi: %w", &wifiError{"home"}), ExitWiFiNotFound},
		{"outer coder wins", WithExitCode(fmt.Errorf("no sync: %w", context.DeadlineExceeded), ExitNoAnswer), ExitNoAnswer},
		{"outer deadline wins over inner coder", fmt.Errorf("%w: %w", context.DeadlineExceeded, &wifiError{"a"}), ExitTimeout},
		{"zero coder ignored", zeroCoder{portErr(port.KindBusy)}, ExitPortBusy},
		{"joined", errors.Join(errors.New("a"), portErr(port.KindNotFound)), ExitPortNotFound},
		{"fs permission", &fs.PathError{Op: "open", Path: "fw.zip", Err: syscall.EACCES}, ExitPermission},
		{"with exit code", WithExitCode(errors.New("md5 mismatch"), ExitVerifyFailed), ExitVerifyFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"none", errors.New("boom"), ""},
		{"port", fmt.Errorf("flash: %w", portErr(port.KindNotFound)), (&port.Error{Kind: port.KindNotFound}).Hint()},
		{"port other has none", portErr(port.KindOther), ""},
		{"typed", &wifiError{"x"}, (&wifiError{}).Hint()},
		{"usage default", Usagef("bad"), "run `mos --help` for usage"},
		{"usage command", &UsageError{Err: errors.New("bad"), Command: "mos flash"}, "run `mos flash --help` for usage"},
		{"outer first", WithHint(&wifiError{"x"}, "outer"), "outer"},
		{"empty hint skipped", WithHint(&wifiError{"x"}, ""), (&wifiError{}).Hint()},
		{"deadline fallback", fmt.Errorf("x: %w", context.DeadlineExceeded), "the operation took too long: try a longer --timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Hint(tt.err); got != tt.want {
				t.Errorf("Hint(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestCodesUniqueAndNamed(t *testing.T) {
	seenCode := map[int]bool{}
	seenName := map[string]bool{}
	for _, c := range Codes() {
		if seenCode[c.Code] || seenName[c.Name] {
			t.Errorf("exit code %d %q reused", c.Code, c.Name)
		}
		seenCode[c.Code], seenName[c.Name] = true, true
		if CodeName(c.Code) != c.Name {
			t.Errorf("CodeName(%d) = %q, want %q", c.Code, CodeName(c.Code), c.Name)
		}
	}
	if CodeName(99) != "failure" {
		t.Errorf("CodeName(99) = %q", CodeName(99))
	}
}

// The documented table must list every code with its number and name.
func TestExitCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/exit-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 3 {
			rows[strings.TrimSpace(cells[1])+" "+strings.Trim(strings.TrimSpace(cells[2]), "`")] = true
		}
	}
	for _, c := range Codes() {
		if key := strconv.Itoa(c.Code) + " " + c.Name; !rows[key] {
			t.Errorf("docs/exit-codes.md has no row for %d `%s`", c.Code, c.Name)
		}
	}
}
