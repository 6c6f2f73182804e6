package rfc2217

// optionState is one side of one option: on, off, or asked for and not
// answered yet.
type optionState uint8

const (
	optionOff optionState = iota
	optionOn
	optionWanted // we sent WILL (our side) or DO (their side) and wait for the answer
)

// Negotiator keeps the state of telnet options at one end of a connection
// and answers the peer's WILL/WONT/DO/DONT. It follows RFC 854's rule against
// negotiation loops: a request for the state an option is already in gets no
// answer, nor does the answer to our own request.
//
// Options are only ever turned on here; a peer's WONT or DONT turns them off.
// A Negotiator is not safe for concurrent use.
type Negotiator struct {
	ours, theirs           [256]optionState // ours: we perform it (WILL); theirs: the peer does (DO)
	allowOurs, allowTheirs [256]bool
	start                  []byte
}

// NewNegotiator returns a Negotiator that agrees to perform the options in
// ours, lets the peer perform those in theirs and refuses all others.
func NewNegotiator(ours, theirs []byte) *Negotiator {
	n := &Negotiator{}
	for _, opt := range ours {
		n.allowOurs[opt] = true
	}
	for _, opt := range theirs {
		n.allowTheirs[opt] = true
	}
	return n
}

// NewClientNegotiator returns the client end: it asks for BINARY in both
// directions, suppress-go-ahead and offers COM-PORT-OPTION. It also accepts
// a server that offers COM-PORT-OPTION itself (some servers do).
func NewClientNegotiator() *Negotiator {
	both := []byte{OptBinary, OptSGA, OptComPort}
	n := NewNegotiator(both, both)
	n.start = n.Will(OptBinary)
	n.start = append(n.start, n.Do(OptBinary)...)
	n.start = append(n.start, n.Will(OptSGA)...)
	n.start = append(n.start, n.Do(OptSGA)...)
	n.start = append(n.start, n.Will(OptComPort)...)
	return n
}

// NewServerNegotiator returns the access-server end: it offers BINARY both
// ways and suppress-go-ahead and asks the client for COM-PORT-OPTION (a
// client sends WILL COM-PORT-OPTION on its own as well; the two cross
// harmlessly).
func NewServerNegotiator() *Negotiator {
	both := []byte{OptBinary, OptSGA, OptComPort}
	n := NewNegotiator(both, both)
	n.start = n.Will(OptBinary)
	n.start = append(n.start, n.Do(OptBinary)...)
	n.start = append(n.start, n.Will(OptSGA)...)
	n.start = append(n.start, n.Do(OptComPort)...)
	return n
}

// Start returns the requests the constructor made, to send first on the
// connection. It is empty for a Negotiator from NewNegotiator.
func (n *Negotiator) Start() []byte { return n.start }

// Will asks to perform opt (IAC WILL opt) and returns the bytes to send,
// nothing if opt is already on or asked for.
func (n *Negotiator) Will(opt byte) []byte {
	if n.ours[opt] != optionOff {
		return nil
	}
	n.ours[opt] = optionWanted
	return AppendNegotiation(nil, WILL, opt)
}

// Do asks the peer to perform opt (IAC DO opt) and returns the bytes to
// send, nothing if opt is already on or asked for.
func (n *Negotiator) Do(opt byte) []byte {
	if n.theirs[opt] != optionOff {
		return nil
	}
	n.theirs[opt] = optionWanted
	return AppendNegotiation(nil, DO, opt)
}

// Receive updates the state for the peer's verb (WILL, WONT, DO or DONT)
// about opt and returns the answer to send, if any.
func (n *Negotiator) Receive(verb, opt byte) []byte {
	switch verb {
	case WILL:
		return answer(&n.theirs[opt], true, n.allowTheirs[opt], DO, DONT, opt)
	case WONT:
		return answer(&n.theirs[opt], false, false, DO, DONT, opt)
	case DO:
		return answer(&n.ours[opt], true, n.allowOurs[opt], WILL, WONT, opt)
	case DONT:
		return answer(&n.ours[opt], false, false, WILL, WONT, opt)
	}
	return nil
}

// answer moves one side of an option after the peer asked for it to be on
// (wantOn) or off, and returns the reply: yes or no followed by opt.
func answer(state *optionState, wantOn, allowed bool, yes, no, opt byte) []byte {
	switch {
	case *state == optionWanted:
		// The answer to our own request: accept it either way, say nothing.
		*state = optionOff
		if wantOn {
			*state = optionOn
		}
		return nil
	case wantOn && *state == optionOn, !wantOn && *state == optionOff:
		return nil // already there: answering could start a loop
	case wantOn && allowed:
		*state = optionOn
		return AppendNegotiation(nil, yes, opt)
	case wantOn:
		return AppendNegotiation(nil, no, opt)
	default: // the peer turns off an option that was on
		*state = optionOff
		return AppendNegotiation(nil, no, opt)
	}
}

// Ours reports whether we perform opt (the peer agreed to our WILL or we
// agreed to its DO).
func (n *Negotiator) Ours(opt byte) bool { return n.ours[opt] == optionOn }

// Theirs reports whether the peer performs opt.
func (n *Negotiator) Theirs(opt byte) bool { return n.theirs[opt] == optionOn }

// Settled reports whether no request of ours about opt awaits an answer.
func (n *Negotiator) Settled(opt byte) bool {
	return n.ours[opt] != optionWanted && n.theirs[opt] != optionWanted
}
