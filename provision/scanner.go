package provision

import "bytes"

// Limits on what the scanner holds before deciding. A frame candidate
// longer than maxReplyFrame without a delimiter was never a frame; a
// console line longer than maxLine is passed on in pieces.
const (
	maxReplyFrame = 64 << 10
	maxLine       = 4 << 10
)

// scanner splits the bytes from the device into RPC frames and console
// lines. A frame starts only at a delimiter (a newline, `"""`, or the start
// of the stream) directly followed by `{` or 0x04, and ends at the next
// delimiter; everything else is console text.
//
// Frames are passed to onFrame, which reports whether the body really was
// one; a body it refuses (a log line that starts with `{`) becomes console
// text. Console text goes to onLine one line at a time, without its line
// ending. Blank lines are dropped: the device sends bare newlines around
// every frame and in answer to the host's.
type scanner struct {
	onFrame func(body []byte) bool
	onLine  func(line []byte)

	line    []byte // console text since the last newline
	frame   []byte // the frame being read, when inFrame
	inFrame bool
	atDelim bool // the last thing read was a delimiter
}

func newScanner(onFrame func([]byte) bool, onLine func([]byte)) *scanner {
	return &scanner{onFrame: onFrame, onLine: onLine, atDelim: true}
}

func (s *scanner) feed(p []byte) {
	for _, b := range p {
		s.feedByte(b)
	}
}

func (s *scanner) feedByte(b byte) {
	if s.inFrame {
		s.frame = append(s.frame, b)
		switch {
		case b == '\n':
			s.endFrame(len(s.frame) - 1)
		case b == '"' && bytes.HasSuffix(s.frame, []byte(delim)):
			s.endFrame(len(s.frame) - len(delim))
		case len(s.frame) > maxReplyFrame:
			s.inFrame = false
			s.line = append(s.line, s.frame...)
			s.frame = s.frame[:0]
			s.atDelim = false
		}
		return
	}
	if s.atDelim && (b == '{' || b == eot) {
		// The """ that opened the frame is framing, not text.
		s.line = bytes.TrimSuffix(s.line, []byte(delim))
		s.inFrame = true
		s.frame = append(s.frame[:0], b)
		return
	}
	s.atDelim = false
	if b == '\n' {
		s.emitLine()
		s.atDelim = true
		return
	}
	s.line = append(s.line, b)
	if b == '"' && bytes.HasSuffix(s.line, []byte(delim)) {
		s.atDelim = true
	}
	if len(s.line) >= maxLine {
		s.emitLine()
	}
}

// endFrame finishes the frame whose body is s.frame[:n].
func (s *scanner) endFrame(n int) {
	s.inFrame = false
	s.atDelim = true
	body := s.frame[:n]
	if !s.onFrame(body) {
		s.line = append(s.line, body...)
		s.emitLine()
	}
	s.frame = s.frame[:0]
}

func (s *scanner) emitLine() {
	line := bytes.TrimRight(s.line, "\r")
	if len(bytes.TrimSpace(line)) > 0 {
		s.onLine(line)
	}
	s.line = s.line[:0]
}
