package rfc2217

import (
	"bytes"
	"testing"
)

// exchange delivers the negotiation bytes in b to n and returns its answers.
func exchange(t *testing.T, n *Negotiator, b []byte) []byte {
	t.Helper()
	events, _ := parseChunks(t, b)
	var out []byte
	for _, ev := range events {
		if ev.Kind != EventNegotiation {
			t.Fatalf("unexpected event %+v", ev)
		}
		out = append(out, n.Receive(ev.Command, ev.Option)...)
	}
	return out
}

func TestClientServerNegotiation(t *testing.T) {
	client, server := NewClientNegotiator(), NewServerNegotiator()
	toServer, toClient := client.Start(), server.Start()
	for round := 0; len(toServer)+len(toClient) > 0; round++ {
		if round > 10 {
			t.Fatal("negotiation does not end")
		}
		toServer, toClient = exchange(t, client, toClient), exchange(t, server, toServer)
	}
	for _, opt := range []byte{OptBinary, OptSGA} {
		if !client.Ours(opt) || !client.Theirs(opt) || !server.Ours(opt) || !server.Theirs(opt) {
			t.Errorf("option %d not on both ways", opt)
		}
	}
	if !client.Ours(OptComPort) || !server.Theirs(OptComPort) {
		t.Error("COM-PORT-OPTION not agreed")
	}
	for _, opt := range []byte{OptBinary, OptSGA, OptComPort} {
		if !client.Settled(opt) || !server.Settled(opt) {
			t.Errorf("option %d not settled", opt)
		}
	}
}

func TestNegotiatorAnswers(t *testing.T) {
	tests := []struct {
		name  string
		setup func(n *Negotiator)
		in    []byte // verb, option
		want  []byte
	}{
		{"accept allowed WILL", nil, []byte{WILL, OptBinary}, []byte{IAC, DO, OptBinary}},
		{"accept allowed DO", nil, []byte{DO, OptSGA}, []byte{IAC, WILL, OptSGA}},
		{"refuse WILL", nil, []byte{WILL, OptEcho}, []byte{IAC, DONT, OptEcho}},
		{"refuse DO", nil, []byte{DO, OptEcho}, []byte{IAC, WONT, OptEcho}},
		{"WONT for an option off", nil, []byte{WONT, OptBinary}, nil},
		{"DONT for an option off", nil, []byte{DONT, OptBinary}, nil},
		{"answer to our WILL", func(n *Negotiator) { n.Will(OptComPort) }, []byte{DO, OptComPort}, nil},
		{"refusal of our DO", func(n *Negotiator) { n.Do(OptBinary) }, []byte{WONT, OptBinary}, nil},
		{"WILL again once on", func(n *Negotiator) { n.Receive(WILL, OptBinary) }, []byte{WILL, OptBinary}, nil},
		{"WONT for an option on", func(n *Negotiator) { n.Receive(WILL, OptBinary) }, []byte{WONT, OptBinary}, []byte{IAC, DONT, OptBinary}},
		{"DONT for an option on", func(n *Negotiator) { n.Receive(DO, OptBinary) }, []byte{DONT, OptBinary}, []byte{IAC, WONT, OptBinary}},
		{"not a verb", nil, []byte{NOP, OptBinary}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NewNegotiator([]byte{OptSGA, OptComPort, OptBinary}, []byte{OptBinary})
			if tt.setup != nil {
				tt.setup(n)
			}
			if got := n.Receive(tt.in[0], tt.in[1]); !bytes.Equal(got, tt.want) {
				t.Errorf("Receive(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNegotiatorRequests(t *testing.T) {
	n := NewNegotiator([]byte{OptComPort}, nil)
	if got := n.Will(OptComPort); !bytes.Equal(got, []byte{IAC, WILL, OptComPort}) {
		t.Errorf("Will = %v", got)
	}
	if got := n.Will(OptComPort); got != nil {
		t.Errorf("second Will while pending = %v, want nothing", got)
	}
	if n.Settled(OptComPort) {
		t.Error("settled while waiting for the answer")
	}
	n.Receive(DONT, OptComPort)
	if !n.Settled(OptComPort) || n.Ours(OptComPort) {
		t.Error("refusal not recorded")
	}
	if got := n.Do(OptEcho); !bytes.Equal(got, []byte{IAC, DO, OptEcho}) {
		t.Errorf("Do = %v", got)
	}
	n.Receive(WILL, OptEcho)
	if !n.Theirs(OptEcho) {
		t.Error("peer's agreement not recorded")
	}
}
