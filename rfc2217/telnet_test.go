package rfc2217

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// parseChunks feeds chunks to a fresh parser and returns the events, with
// their slices copied and neighbouring data events merged, so results from
// different splits of the same stream compare equal. It fails t if the
// parser makes no progress.
func parseChunks(t testing.TB, chunks ...[]byte) ([]Event, *Parser) {
	t.Helper()
	var p Parser
	var events []Event
	for _, in := range chunks {
		steps, limit := 0, 3*len(in)+1
		for len(in) > 0 {
			if steps++; steps > limit {
				t.Fatalf("parser makes no progress on %q", in)
			}
			ev, n := p.Next(in)
			if n < 0 || n > len(in) {
				t.Fatalf("Next consumed %d of %d bytes", n, len(in))
			}
			if n == 0 && ev.Kind == EventNone {
				t.Fatalf("Next returned nothing and consumed nothing on %q", in)
			}
			if len(p.sb) > MaxSubnegotiation || cap(p.sb) > MaxSubnegotiation {
				t.Fatalf("subnegotiation buffer grew to len %d cap %d", len(p.sb), cap(p.sb))
			}
			in = in[n:]
			events = appendEvent(events, ev)
		}
	}
	return events, &p
}

func appendEvent(events []Event, ev Event) []Event {
	switch ev.Kind {
	case EventNone:
		return events
	case EventData:
		if last := len(events) - 1; last >= 0 && events[last].Kind == EventData {
			events[last].Data = append(events[last].Data, ev.Data...)
			return events
		}
	}
	ev.Data = bytes.Clone(ev.Data)
	ev.Payload = bytes.Clone(ev.Payload)
	ev.ComPort.Text = bytes.Clone(ev.ComPort.Text)
	return append(events, ev)
}

// bytewise splits b into one-byte chunks.
func bytewise(b []byte) [][]byte {
	var chunks [][]byte
	for i := range b {
		chunks = append(chunks, b[i:i+1])
	}
	return chunks
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func data(s string) Event { return Event{Kind: EventData, Data: []byte(s)} }

func neg(verb, opt byte) Event { return Event{Kind: EventNegotiation, Command: verb, Option: opt} }

func comPort(payload []byte, c Command) Event {
	return Event{Kind: EventComPort, Option: OptComPort, Payload: payload, ComPort: c}
}

func protoErr(opt byte, err error) Event { return Event{Kind: EventError, Option: opt, Err: err} }

func TestParser(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, MaxSubnegotiation+1)
	tests := []struct {
		name string
		in   []byte
		want []Event
	}{
		{"plain data", []byte("hello\r\n\x00"), []Event{data("hello\r\n\x00")}},
		{"CR NUL and CR LF untouched", []byte("a\r\x00b\r\nc"), []Event{data("a\r\x00b\r\nc")}},
		{"escaped IAC", []byte{'a', IAC, IAC, 'b', IAC, IAC}, []Event{data("a\xffb\xff")}},
		{"negotiation", []byte{IAC, WILL, OptBinary, IAC, DO, OptComPort, IAC, WONT, OptEcho, IAC, DONT, OptSGA},
			[]Event{neg(WILL, OptBinary), neg(DO, OptComPort), neg(WONT, OptEcho), neg(DONT, OptSGA)}},
		{"lone commands", []byte{IAC, NOP, 'a', IAC, BRK, IAC, GA},
			[]Event{{Kind: EventCommand, Command: NOP}, data("a"), {Kind: EventCommand, Command: BRK}, {Kind: EventCommand, Command: GA}}},
		{"set baud rate", []byte{IAC, SB, OptComPort, CmdSetBaudRate, 0, 1, 0xc2, 0, IAC, SE, 'z'},
			[]Event{comPort([]byte{1, 0, 1, 0xc2, 0}, Command{Code: CmdSetBaudRate, Baud: 115200}), data("z")}},
		{"escaped IAC inside SB", []byte{IAC, SB, OptComPort, CmdSetBaudRate + ServerOffset, 0, IAC, IAC, 0, IAC, IAC, IAC, SE},
			[]Event{comPort([]byte{101, 0, 0xff, 0, 0xff}, Command{Code: 101, Baud: 0x00ff00ff})}},
		{"set control DTR on", []byte{IAC, SB, OptComPort, CmdSetControl, ControlDTROn, IAC, SE},
			[]Event{comPort([]byte{5, 8}, Command{Code: CmdSetControl, Value: ControlDTROn})}},
		{"purge reply", []byte{IAC, SB, OptComPort, CmdPurgeData + ServerOffset, PurgeBoth, IAC, SE},
			[]Event{comPort([]byte{112, 3}, Command{Code: 112, Value: PurgeBoth})}},
		{"flow control suspend", []byte{IAC, SB, OptComPort, CmdFlowControlSuspend, IAC, SE},
			[]Event{comPort([]byte{8}, Command{Code: CmdFlowControlSuspend})}},
		{"signature", cat([]byte{IAC, SB, OptComPort, 100}, []byte("ser2net"), []byte{IAC, SE}),
			[]Event{comPort([]byte("dser2net"), Command{Code: 100, Text: []byte("ser2net")})}},
		{"other option's subnegotiation", []byte{IAC, SB, 24, 0, 'v', 't', IAC, SE},
			[]Event{{Kind: EventSubnegotiation, Option: 24, Payload: []byte{0, 'v', 't'}}}},
		{"baud rate too short", []byte{IAC, SB, OptComPort, CmdSetBaudRate, 1, 2, 3, IAC, SE, 'a'},
			[]Event{{Kind: EventError, Option: OptComPort, Payload: []byte{1, 1, 2, 3}, Err: ErrCommandLength}, data("a")}},
		{"unknown command", []byte{IAC, SB, OptComPort, 50, 1, IAC, SE},
			[]Event{{Kind: EventError, Option: OptComPort, Payload: []byte{50, 1}, Err: ErrUnknownCommand}}},
		{"empty command", []byte{IAC, SB, OptComPort, IAC, SE},
			[]Event{{Kind: EventError, Option: OptComPort, Payload: []byte{}, Err: ErrEmptyCommand}}},
		{"stray IAC keeps the next byte", []byte{'a', IAC, 'b', 'c'},
			[]Event{data("a"), protoErr(0, ErrStrayIAC), data("bc")}},
		{"stray SE", []byte{IAC, SE, 'a'}, []Event{protoErr(0, ErrStraySE), data("a")}},
		{"SB ended by a command", []byte{IAC, SB, OptComPort, 1, 2, IAC, WILL, OptEcho, 'a'},
			[]Event{protoErr(OptComPort, ErrUnterminatedSB), neg(WILL, OptEcho), data("a")}},
		{"SB without option", []byte{IAC, SB, IAC, DO, OptBinary},
			[]Event{protoErr(0, ErrUnterminatedSB), neg(DO, OptBinary)}},
		{"SB too long", cat([]byte{IAC, SB, 24}, long, []byte{IAC, IAC, 'y', IAC, SE, 'a'}),
			[]Event{protoErr(24, ErrSubnegotiationTooLong), data("a")}},
		{"SB too long ended by a command", cat([]byte{IAC, SB, 24}, long, []byte{IAC, NOP, 'a'}),
			[]Event{protoErr(24, ErrSubnegotiationTooLong), {Kind: EventCommand, Command: NOP}, data("a")}},
		{"SB exactly at the limit", cat([]byte{IAC, SB, 24}, long[1:], []byte{IAC, SE}),
			[]Event{{Kind: EventSubnegotiation, Option: 24, Payload: long[1:]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole, p := parseChunks(t, tt.in)
			checkEvents(t, whole, tt.want)
			if err := p.End(); err != nil {
				t.Errorf("End() = %v, want nil", err)
			}
			split, _ := parseChunks(t, bytewise(tt.in)...)
			checkEvents(t, split, tt.want)
		})
	}
}

// checkEvents compares events, matching errors with errors.Is.
func checkEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !errors.Is(g.Err, w.Err) {
			t.Errorf("event %d: error %v, want %v", i, g.Err, w.Err)
		}
		g.Err, w.Err = nil, nil
		if len(w.Payload) == 0 && len(g.Payload) == 0 {
			g.Payload, w.Payload = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestParserEnd(t *testing.T) {
	for _, in := range [][]byte{
		{IAC},
		{IAC, WILL},
		{IAC, SB},
		{IAC, SB, OptComPort, CmdSetBaudRate, 0},
		{IAC, SB, OptComPort, CmdSetBaudRate, IAC},
		cat([]byte{IAC, SB, 24}, bytes.Repeat([]byte{1}, 2*MaxSubnegotiation)),
	} {
		_, p := parseChunks(t, in)
		if err := p.End(); !errors.Is(err, ErrTruncated) {
			t.Errorf("End after %v = %v, want ErrTruncated", in, err)
		}
		// End resets: the parser takes a new stream.
		events, _ := parseChunks(t, []byte("ok"))
		checkEvents(t, events, []Event{data("ok")})
	}
}

func TestAppendEscaped(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{nil, nil},
		{[]byte("abc"), []byte("abc")},
		{[]byte{IAC}, []byte{IAC, IAC}},
		{[]byte{1, IAC, IAC, 2, IAC}, []byte{1, IAC, IAC, IAC, IAC, 2, IAC, IAC}},
	}
	for _, tt := range tests {
		got := AppendEscaped([]byte("pre"), tt.in)
		if want := cat([]byte("pre"), tt.want); !bytes.Equal(got, want) {
			t.Errorf("AppendEscaped(%v) = %v, want %v", tt.in, got, want)
		}
	}
}

func TestAppendSubnegotiation(t *testing.T) {
	got := AppendSubnegotiation(nil, OptComPort, []byte{1, IAC, 2})
	want := []byte{IAC, SB, OptComPort, 1, IAC, IAC, 2, IAC, SE}
	if !bytes.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := AppendNegotiation(nil, WILL, OptComPort); !bytes.Equal(got, []byte{IAC, WILL, OptComPort}) {
		t.Errorf("AppendNegotiation = %v", got)
	}
}
