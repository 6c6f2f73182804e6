package output

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/muesli/termenv"
	"golang.org/x/term"
)

// Printer writes everything a command shows. It is safe for concurrent use:
// progress may come from library goroutines while the command logs.
type Printer struct {
	mu      sync.Mutex
	stdout  io.Writer
	stderr  io.Writer
	json    bool
	verbose bool
	tty     bool             // stderr is a terminal: progress is one redrawn line
	now     func() time.Time // replaced in tests
	// termWidth reads the terminal's width (nil: not a terminal); asked
	// at each redraw, as the window may be resized.
	termWidth func() int

	warnings []string // collected in JSON mode until the document is printed
	printed  bool     // the JSON document has gone to stdout
	prog     progressState
	taskSeq  int             // numbers Tasks, so a finished one's ticker stops drawing
	colors   termenv.Profile // of the progress bar
}

// New returns a Printer. json selects the --json contract (see the package
// documentation); verbose enables Debugf. Progress is drawn as an updating
// bar only when stderr is a terminal.
func New(stdout, stderr io.Writer, json, verbose bool) *Printer {
	p := &Printer{
		stdout:  stdout,
		stderr:  stderr,
		json:    json,
		verbose: verbose,
		tty:     isTerminalWriter(stderr),
		now:     time.Now,
	}
	p.colors = colorProfile(stderr, p.tty)
	if f, ok := stderr.(*os.File); ok && p.tty {
		p.termWidth = func() int {
			w, _, _ := term.GetSize(int(f.Fd())) // 0 when it cannot tell
			return w
		}
	}
	return p
}

// JSON reports whether the Printer is in --json mode.
func (p *Printer) JSON() bool { return p.json }

// Verbose reports whether Debugf messages are shown.
func (p *Printer) Verbose() bool { return p.verbose }

// Out and Err are the raw streams, for commands that stream rather than
// print one result (the console). Writing to them bypasses the --json
// contract, so such commands must handle JSON mode themselves.
func (p *Printer) Out() io.Writer { return p.stdout }
func (p *Printer) Err() io.Writer { return p.stderr }

// Print writes a command's result to stdout. Call it once per command: in
// JSON mode it emits the one document, carrying the warnings collected so far.
func (p *Printer) Print(r Result) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBarLocked()
	if !p.json {
		return writeText(p.stdout, r.Text())
	}
	doc := struct {
		Result   any      `json:"result"`
		Warnings []string `json:"warnings"`
	}{r.Data(), p.warningsLocked()}
	b, err := encodeJSON(doc, true)
	if err != nil {
		return err // nothing printed: the error document can still follow
	}
	p.printed = true
	_, err = p.stdout.Write(b)
	return err
}

// Warnf reports something the user should know that did not stop the
// command. In JSON mode it becomes part of the document's "warnings".
func (p *Printer) Warnf(format string, a ...any) {
	msg := userText(fmt.Sprintf(format, a...))
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.json:
		p.lineLocked("Warning: " + msg)
	case p.printed: // too late for the document; don't lose it
		p.jsonLineLocked("warning", msg)
	default:
		p.warnings = append(p.warnings, msg)
	}
}

// Infof writes a message about what mos is doing to stderr.
func (p *Printer) Infof(format string, a ...any) {
	p.message("info", fmt.Sprintf(format, a...))
}

// Debugf is Infof shown only with -v.
func (p *Printer) Debugf(format string, a ...any) {
	if p.verbose {
		p.message("debug", fmt.Sprintf(format, a...))
	}
}

func (p *Printer) message(kind, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		p.jsonLineLocked(kind, msg)
		return
	}
	p.lineLocked(msg)
}

// errorDoc is the "error" object of a failed command in JSON mode.
type errorDoc struct {
	Message string `json:"message"`
	Code    int    `json:"code"` // the process exit code
	Name    string `json:"name"` // its stable name, see CodeName
	Hint    string `json:"hint"`
}

// PrintError reports the error that ends the command: "Error: ..." and a
// hint line on stderr, or in JSON mode an {"error": ...} document on stdout
// (on stderr as a JSON line if a result document was already printed, so
// stdout still holds a single document). A partial result attached with
// WithResult is printed too: its text on stdout before the error, or as
// "result" in the same JSON document, so an interrupted or failed command
// still says what it got done.
func (p *Printer) PrintError(err error) {
	if err == nil {
		return
	}
	code := ExitCode(err)
	e := errorDoc{Message: errorMessage(err), Code: code, Name: CodeName(code), Hint: Hint(err)}
	partial := ResultOf(err)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBarLocked()
	if !p.json {
		if partial != nil && !p.printed {
			p.printed = true
			_ = writeText(p.stdout, partial.Text())
		}
		if code == ExitInterrupted {
			p.lineLocked("Interrupted.")
			return
		}
		p.lineLocked("Error: " + e.Message)
		if e.Hint != "" {
			p.lineLocked("Hint: " + e.Hint)
		}
		return
	}
	if p.printed {
		_ = writeJSON(p.stderr, map[string]any{"error": e}, false)
		return
	}
	doc := struct {
		Result   any      `json:"result,omitempty"`
		Error    errorDoc `json:"error"`
		Warnings []string `json:"warnings"`
	}{nil, e, p.warningsLocked()}
	if partial != nil {
		doc.Result = partial.Data()
	}
	b, jerr := encodeJSON(doc, true)
	if jerr != nil { // the partial result does not encode: the error still must
		doc.Result = nil
		b, _ = encodeJSON(doc, true)
	}
	p.printed = true
	_, _ = p.stdout.Write(b)
}

// errorMessage replaces the bare context errors, whose text means nothing
// to a user, by what happened, and takes out the Go package names that
// libraries put in their errors ("sim: ", "strconv.ParseInt: ...").
func errorMessage(err error) string {
	switch {
	case err == context.Canceled:
		return "interrupted"
	case err == context.DeadlineExceeded:
		return "timed out"
	}
	return userText(err.Error())
}

// Package prefixes as Go libraries write them ("sim: flash file: ..."):
// meaningful to a programmer, noise to a user. Only mos's own packages and
// the standard library's parsers, so that a device's or a server's own
// words are left alone.
var (
	pkgPrefix = regexp.MustCompile(`(^|: )(sim|fwbundle|fwimage|flasher|provision|port|slip|rfc2217|serve|chips|emulator|console|cloud|ca|broker|atca|doctor|output): `)
	strconvRe = regexp.MustCompile(`strconv\.Parse(Int|Uint|Float|Bool): parsing ("(?:[^"\\]|\\.)*"): (invalid syntax|value out of range)`)
	durRe     = regexp.MustCompile(`time: (?:invalid|missing unit in) duration ("(?:[^"\\]|\\.)*")`)
)

func userText(s string) string {
	s = pkgPrefix.ReplaceAllString(s, "$1")
	s = strconvRe.ReplaceAllStringFunc(s, func(m string) string {
		g := strconvRe.FindStringSubmatch(m)
		switch {
		case g[3] == "value out of range":
			return g[2] + " is out of range"
		case g[1] == "Bool":
			return g[2] + " is not true or false"
		}
		return g[2] + " is not a number"
	})
	return durRe.ReplaceAllString(s, "$1 is not a duration (such as 500ms, 20s or 2m)")
}

func (p *Printer) warningsLocked() []string {
	if p.warnings == nil {
		return []string{} // "warnings": [] rather than null
	}
	return p.warnings
}

// lineLocked writes one human line to stderr, first erasing a progress bar
// so the message does not land in the middle of it.
func (p *Printer) lineLocked(s string) {
	p.clearBarLocked()
	_ = writeText(p.stderr, s)
}

func (p *Printer) jsonLineLocked(key string, v any) {
	_ = writeJSON(p.stderr, map[string]any{key: v}, false)
}

func writeText(w io.Writer, s string) error {
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	_, err := io.WriteString(w, s)
	return err
}

func writeJSON(w io.Writer, v any, indent bool) error {
	b, err := encodeJSON(v, indent)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// encodeJSON renders v as an indented document or, for stderr's JSON Lines,
// a compact line; both end in a newline. HTML escaping is off so that "<"
// in a message stays readable.
func encodeJSON(v any, indent bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding JSON output: %w", err)
	}
	return buf.Bytes(), nil
}

// isTerminalWriter reports whether w is a terminal (on Windows a console:
// those since Windows 10 understand the "\r" and ESC[K the progress bar
// uses). TERM=dumb (Emacs shell, some CI log viewers) cannot redraw a
// line, so it counts as not one.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
