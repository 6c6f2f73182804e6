package rfc2217

import (
	"bytes"
	"reflect"
	"testing"
)

// splitBy cuts b into chunks whose lengths cycle through sizes (each taken
// mod 17, plus one), so one fuzz input explores many ways a TCP stream can
// be split.
func splitBy(b, sizes []byte) [][]byte {
	if len(sizes) == 0 {
		return [][]byte{b}
	}
	var chunks [][]byte
	for i := 0; len(b) > 0; i++ {
		n := min(int(sizes[i%len(sizes)]%17)+1, len(b))
		chunks = append(chunks, b[:n])
		b = b[n:]
	}
	return chunks
}

func parserSeeds(f *testing.F) {
	baud := AppendCommand(nil, Command{Code: CmdSetBaudRate, Baud: 0x01ff00ff})
	for _, seed := range [][]byte{
		[]byte("plain data\r\n\r\x00"),
		cat(NewClientNegotiator().Start(), NewServerNegotiator().Start()),
		cat([]byte("ab"), baud, []byte{IAC, IAC, 'c'}),
		AppendCommand(nil, Command{Code: CmdSetControl, Value: ControlDTROn}),
		AppendCommand(nil, Command{Code: CmdPurgeData + ServerOffset, Value: PurgeBoth}),
		AppendCommand(nil, Command{Code: CmdSignature, Text: []byte("a\xffb")}),
		baud[:len(baud)-1], // truncated SB: IAC without SE
		baud[:5],           // truncated SB: value cut
		{IAC, SB, OptComPort, IAC, IAC, IAC, IAC, IAC, SE},                                             // embedded IAC IAC
		cat([]byte{IAC, SB, OptComPort}, bytes.Repeat([]byte{1}, 2*MaxSubnegotiation), []byte("tail")), // no SE, past the limit
		cat([]byte{IAC, SB, 24}, bytes.Repeat([]byte{IAC, IAC}, MaxSubnegotiation+1), []byte{IAC, SE, 'x'}),
		{'a', IAC},               // stray IAC at the end
		{IAC, 'x', IAC, SE, IAC}, // stray IAC and SE
		{IAC, SB, IAC, WILL, 1},  // SB without option
		{IAC, SB, OptComPort, 1, 2, IAC, DO, OptBinary},
	} {
		f.Add(seed, []byte{3, 0, 16})
	}
}

// FuzzParser feeds arbitrary bytes, split arbitrarily: the parser must not
// panic, must make progress, must keep its buffer bounded (parseChunks
// checks those) and must give the same events however the input is split.
func FuzzParser(f *testing.F) {
	parserSeeds(f)
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		whole, p1 := parseChunks(t, stream)
		split, p2 := parseChunks(t, splitBy(stream, sizes)...)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("events depend on the split:\nwhole %+v\nsplit %+v", whole, split)
		}
		if (p1.End() == nil) != (p2.End() == nil) {
			t.Fatal("End disagrees between splits")
		}
		for _, ev := range whole {
			if ev.Kind == EventComPort {
				// What was decoded encodes back to a parseable command.
				again, _ := parseChunks(t, AppendCommand(nil, ev.ComPort))
				if len(again) != 1 || !reflect.DeepEqual(again[0].ComPort, ev.ComPort) {
					t.Fatalf("%v does not survive re-encoding: %+v", ev.ComPort, again)
				}
			}
		}
	})
}

// FuzzRoundTrip escapes arbitrary data, mixes in well-formed telnet
// commands and checks the parser gives back exactly the data and commands.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte{0, 1, 2})
	f.Add([]byte{0xff, 0xff, 0, 0xff}, []byte{5, 7, 9, 250})
	f.Add(bytes.Repeat([]byte{0xff}, 300), []byte{200, 100, 3})
	f.Add([]byte("\r\x00\r\n"), []byte{})
	f.Fuzz(func(t *testing.T, payload, script []byte) {
		// script picks, for each byte, an item to insert before the next
		// slice of data.
		var stream []byte
		var want []Event
		rest := payload
		for i, s := range script {
			n := min(int(s)%8, len(rest))
			stream = AppendEscaped(stream, rest[:n])
			want = appendData(want, rest[:n])
			rest = rest[n:]
			switch i % 3 {
			case 0:
				ev := neg(WILL+s%4, s)
				stream = AppendNegotiation(stream, ev.Command, ev.Option)
				want = append(want, ev)
			case 1:
				c := Command{Code: CmdSetBaudRate, Baud: uint32(s) * 0x01010101}
				stream = AppendCommand(stream, c)
				want = append(want, comPort(nil, c))
			case 2:
				c := Command{Code: CmdSetControl + ServerOffset, Value: s}
				stream = AppendCommand(stream, c)
				want = append(want, comPort(nil, c))
			}
		}
		stream = AppendEscaped(stream, rest)
		want = appendData(want, rest)

		got, p := parseChunks(t, splitBy(stream, script)...)
		if err := p.End(); err != nil {
			t.Fatalf("End: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d", len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			g.Payload, w.Payload = nil, nil // checked through ComPort
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("event %d: got %+v, want %+v", i, g, w)
			}
		}
	})
}

func appendData(events []Event, b []byte) []Event {
	if len(b) == 0 {
		return events
	}
	return appendEvent(events, Event{Kind: EventData, Data: b})
}
