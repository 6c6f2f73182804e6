// Package endpoint names the local endpoint through which a process that
// holds a port (a running `mos console`) lends it to other mos commands,
// and holds the few lines both ends exchange before RFC 2217 takes over.
// It is shared by package port (the borrowing side) and package
// port/share (the lending side), which cannot import each other.
package endpoint

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Greeting starts a borrower's first line; the version lets a later mos
// refuse an older console's protocol cleanly instead of misreading it.
const Greeting = "MOS-BORROW 1"

// Replies a lender sends to the greeting, each on a line of its own:
//
//	OK <who lends the line>     RFC 2217 starts right after the newline
//	BUSY <message>              another command has the line
//	OTHER <port>                this endpoint lends another port (a hash collision)
const (
	ReplyOK    = "OK"
	ReplyBusy  = "BUSY"
	ReplyOther = "OTHER"
)

// HelloTimeout bounds the exchange of those lines: a lender that accepts
// a connection but does not answer (a stopped process) is not waited for.
const HelloTimeout = 3 * time.Second

// Canonical is the form of a port name the endpoint is named after, so
// that /dev/ttyUSB0, serial:///dev/ttyUSB0 and a /dev/serial/by-id link to
// it find the same console.
func Canonical(name string) string {
	name = strings.TrimSpace(name)
	if rest, ok := strings.CutPrefix(name, "serial://"); ok {
		name = rest
	}
	if i := strings.Index(name, "://"); i >= 0 {
		scheme, rest := strings.ToLower(name[:i]), name[i+3:]
		if scheme == "rfc2217" || scheme == "socket" || scheme == "tcp" {
			// Host names are case-insensitive; the rest is HOST:PORT.
			rest = strings.ToLower(rest)
		}
		return scheme + "://" + rest
	}
	if p, err := filepath.EvalSymlinks(name); err == nil {
		name = p
	}
	if abs, err := filepath.Abs(name); err == nil && !strings.HasPrefix(name, `\\.\`) {
		name = abs
	}
	return name
}

// Dir returns the directory the endpoints live in, creating it when
// create is set (a lender): mos/ in $XDG_RUNTIME_DIR (private to the user
// by the XDG specification), else mos-UID/ in the temporary directory. It
// must belong to the user and be closed to everyone else: whoever can
// connect gets the serial line, and whoever can put a socket there gets
// the commands.
func Dir(create bool) (string, error) {
	var dir string
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		dir = filepath.Join(x, "mos")
	} else {
		dir = filepath.Join(os.TempDir(), "mos")
		if uid := os.Getuid(); uid >= 0 { // -1 on Windows, where %TEMP% is the user's
			// /tmp is shared: one directory per user.
			dir += fmt.Sprintf("-%d", uid)
		}
	}
	if !create {
		// A borrower only looks: opening a port must not leave
		// directories behind.
		if _, err := os.Lstat(dir); err != nil {
			return "", err
		}
	} else if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create the directory for port sharing: %w", err)
	}
	if err := checkPrivate(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Path returns the Unix socket path of the endpoint for the port name,
// creating the directory when create is set (see Dir). A hash keeps it
// short: a socket path is limited to about 100 bytes.
func Path(name string, create bool) (string, error) {
	dir, err := Dir(create)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(Canonical(name)))
	return filepath.Join(dir, "port-"+hex.EncodeToString(sum[:8])+".sock"), nil
}

// Field makes s safe as one field of a hello line.
func Field(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Hello is a borrower's first line, parsed.
type Hello struct {
	Port string // canonical name of the port wanted
	Who  string // the command, for the console to show
	PID  int
}

// Line renders h as the borrower sends it.
func (h Hello) Line() string {
	return fmt.Sprintf("%s\t%s\t%d\t%s\n", Greeting, Field(h.Port), h.PID, Field(h.Who))
}

// ReadHello reads a borrower's first line.
func ReadHello(r *bufio.Reader) (Hello, error) {
	line, err := readLine(r)
	if err != nil {
		return Hello{}, err
	}
	f := strings.SplitN(line, "\t", 4)
	if len(f) != 4 || f[0] != Greeting {
		return Hello{}, fmt.Errorf("not a mos borrower greeting: %.60q", line)
	}
	var pid int
	fmt.Sscanf(f[2], "%d", &pid)
	return Hello{Port: f[1], PID: pid, Who: f[3]}, nil
}

// ReadReply reads a lender's answer: its kind and the text after it.
func ReadReply(r *bufio.Reader) (kind, text string, err error) {
	line, err := readLine(r)
	if err != nil {
		return "", "", err
	}
	kind, text, _ = strings.Cut(line, "\t")
	return kind, text, nil
}

// Reply renders a lender's answer.
func Reply(kind, text string) string { return kind + "\t" + Field(text) + "\n" }

// maxLine bounds a hello line, so a stray client cannot make a lender
// buffer without end.
const maxLine = 4096

func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		b = append(b, frag...)
		if err == nil {
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) || len(b) > maxLine {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("line too long")
			}
			return "", err
		}
	}
}

// BufferedConn is the connection once the lines above were exchanged: it
// reads first what the bufio.Reader that read them took beyond them (the
// start of the RFC 2217 negotiation).
type BufferedConn struct {
	net.Conn
	R *bufio.Reader
}

func (c *BufferedConn) Read(b []byte) (int, error) { return c.R.Read(b) }

// Dial connects to the endpoint at path. A socket file nobody listens on
// (left by a console that was killed) is removed, and reported as no
// endpoint at all: ok is false with a nil error.
func Dial(path string) (conn net.Conn, ok bool, err error) {
	before, err := os.Lstat(path)
	if err != nil {
		return nil, false, nil // no console offers this port
	}
	if before.Mode()&os.ModeSocket == 0 {
		return nil, false, nil // not ours; leave it alone
	}
	conn, err = net.DialTimeout("unix", path, HelloTimeout)
	if err == nil {
		return conn, true, nil
	}
	if isRefused(err) {
		// Stale. Remove it only if it is still the file that refused us,
		// not one a console has just put in its place.
		if now, serr := os.Lstat(path); serr == nil && os.SameFile(before, now) {
			os.Remove(path)
		}
		return nil, false, nil
	}
	return nil, false, err
}
